/* json.c — see json.h. */
#include "util/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

static void put(slm_jw *w, const char *s, size_t n) {
    if (w->oom || n == 0) return;
    if (w->len + n + 1 > w->cap) {
        size_t nc = w->cap ? w->cap : 256;
        while (nc < w->len + n + 1) {
            if (nc > SIZE_MAX / 2) { w->oom = true; return; }
            nc *= 2;
        }
        char *np = slm_realloc(w->p, nc);
        if (!np) { w->oom = true; return; }
        w->p = np;
        w->cap = nc;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = 0;
}

static void putc1(slm_jw *w, char c) { put(w, &c, 1); }

/* Before any value or key: a comma unless it is the first element. */
static void sep(slm_jw *w) {
    if (w->after_key) { w->after_key = false; return; }
    if (w->depth <= 0 || w->depth > SLM_JW_MAX_DEPTH) return;
    uint64_t bit = 1ull << (w->depth - 1);
    if (w->has_items & bit) putc1(w, ',');
    w->has_items |= bit;
}

static void nest_open(slm_jw *w, char c) {
    sep(w);
    putc1(w, c);
    w->depth++;
    if (w->depth <= SLM_JW_MAX_DEPTH) w->has_items &= ~(1ull << (w->depth - 1));
}

static void nest_close(slm_jw *w, char c) {
    putc1(w, c);
    if (w->depth > 0) w->depth--;
}

void slm_jw_obj_open(slm_jw *w) { nest_open(w, '{'); }
void slm_jw_obj_close(slm_jw *w) { nest_close(w, '}'); }
void slm_jw_arr_open(slm_jw *w) { nest_open(w, '['); }
void slm_jw_arr_close(slm_jw *w) { nest_close(w, ']'); }

/* Length of the UTF-8 sequence starting at s (1..4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { k = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; cp = c & 0x07; }
    else return 0;
    if (k > n) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

size_t slm_utf8_valid_prefix(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (!k) break;
        i += k;
    }
    return i;
}

static void put_escaped(slm_jw *w, const char *s, size_t n) {
    putc1(w, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[8];
        size_t k = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20) { snprintf(ubuf, sizeof ubuf, "\\u%04x", c); esc = ubuf; }
        else if (c >= 0x80) {
            k = utf8_len((const unsigned char *)s + i, n - i);
            if (!k) { esc = "\xEF\xBF\xBD"; k = 1; }
        }
        if (esc) {
            put(w, s + run, i - run);
            put(w, esc, strlen(esc));
            run = i + k;
        }
        i += k;
    }
    put(w, s + run, n - run);
    putc1(w, '"');
}

void slm_jw_key(slm_jw *w, const char *key) {
    sep(w);
    put_escaped(w, key, strlen(key));
    putc1(w, ':');
    w->after_key = true;
}

void slm_jw_strn(slm_jw *w, const char *s, size_t n) {
    sep(w);
    put_escaped(w, s ? s : "", s ? n : 0);
}

void slm_jw_str(slm_jw *w, const char *s) {
    if (!s) { slm_jw_null(w); return; }
    slm_jw_strn(w, s, strlen(s));
}

void slm_jw_int(slm_jw *w, int64_t v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    sep(w);
    put(w, b, (size_t)n);
}

void slm_jw_num(slm_jw *w, double v) {
    if (!isfinite(v)) { slm_jw_null(w); return; }
    char b[40];
    int n = snprintf(b, sizeof b, "%.9g", v);
    sep(w);
    put(w, b, (size_t)n);
}

void slm_jw_bool(slm_jw *w, bool v) {
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void slm_jw_null(slm_jw *w) {
    sep(w);
    put(w, "null", 4);
}

void slm_jw_raw(slm_jw *w, const char *json, size_t n) {
    sep(w);
    put(w, json, n);
}

void slm_jw_text(slm_jw *w, const char *s, size_t n) { put(w, s, n); }

char *slm_jw_take(slm_jw *w, size_t *len) {
    char *p = w->oom ? NULL : w->p;
    if (p == NULL && !w->oom) p = slm_strdup("");
    if (len) *len = p ? w->len : 0;
    if (w->oom) slm_free(w->p);
    memset(w, 0, sizeof *w);
    return p;
}

void slm_jw_free(slm_jw *w) {
    slm_free(w->p);
    memset(w, 0, sizeof *w);
}
