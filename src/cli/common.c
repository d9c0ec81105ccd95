/* common.c — CLI helpers: errors, strict number parsing, loading. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/prompt.h"
#include "cli/cli.h"
#include "util/alloc.h"

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("slm: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "slm %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see `slm help %s`)\n", cmd);
    va_end(ap);
    return 2;
}

bool cli_parse_i32(const char *s, int32_t lo, int32_t hi, int32_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

bool cli_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool cli_parse_f32(const char *s, float lo, float hi, float *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

slm_model *cli_load_model(const char *path, bool vocab_only) {
    slm_model_params mp = slm_model_default_params();
    mp.vocab_only = vocab_only;
    slm_model *m = NULL;
    slm_err err = { 0 };
    if (slm_model_load(path, &mp, &m, &err)) {
        cli_fail("%s: %s", path, err.msg[0] ? err.msg : slm_strerror(err.code));
        return NULL;
    }
    return m;
}

char *cli_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_fail("cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = slm_malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (cap - n < 2) {
            char *nb = slm_realloc(buf, cap * 2);
            if (!nb) { slm_free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        slm_free(buf);
        cli_fail("cannot read '%s'", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int cli_tokenize(const slm_vocab *v, const char *text, bool add_bos, bool parse_special, int32_t **out, int32_t *n) {
    slm_err err = { 0 };
    int rc = slm_prompt_tokenize(v, text, strlen(text), add_bos, parse_special, out, n, &err);
    if (rc) return cli_fail("cannot tokenize the input: %s", err.msg[0] ? err.msg : slm_strerror(rc));
    return 0;
}
