/* sbuf.c — see sbuf.h. */
#include "eval/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

static bool reserve(slm_sbuf *b, size_t more) {
    if (b->oom) return false;
    if (b->len + more + 1 <= b->cap) return true;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + more + 1) nc *= 2;
    char *np = slm_realloc(b->p, nc);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = nc;
    return true;
}

void slm_sbuf_putn(slm_sbuf *b, const char *s, size_t n) {
    if (!reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void slm_sbuf_puts(slm_sbuf *b, const char *s) { slm_sbuf_putn(b, s ? s : "", s ? strlen(s) : 0); }

void slm_sbuf_printf(slm_sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void slm_sbuf_html(slm_sbuf *b, const char *s) {
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&': slm_sbuf_puts(b, "&amp;"); break;
        case '<': slm_sbuf_puts(b, "&lt;"); break;
        case '>': slm_sbuf_puts(b, "&gt;"); break;
        case '"': slm_sbuf_puts(b, "&quot;"); break;
        case '\'': slm_sbuf_puts(b, "&#39;"); break;
        case ':': slm_sbuf_puts(b, "&#58;"); break;
        default: slm_sbuf_putn(b, p, 1);
        }
    }
}

void slm_sbuf_md_cell(slm_sbuf *b, const char *s, size_t max) {
    size_t n = 0;
    for (const char *p = s ? s : ""; *p; p++, n++) {
        if (max && n >= max && ((unsigned char)*p & 0xC0) != 0x80) {
            slm_sbuf_puts(b, "…");
            return;
        }
        if (*p == '|') slm_sbuf_puts(b, "\\|");
        else if (*p == '\n' || *p == '\r' || *p == '\t') slm_sbuf_puts(b, " ");
        else slm_sbuf_putn(b, p, 1);
    }
}

char *slm_sbuf_take(slm_sbuf *b) {
    char *p = b->oom ? NULL : b->p;
    if (b->oom) slm_free(b->p);
    else if (!p) p = slm_strdup("");
    memset(b, 0, sizeof *b);
    return p;
}

void slm_sbuf_free(slm_sbuf *b) {
    slm_free(b->p);
    memset(b, 0, sizeof *b);
}
