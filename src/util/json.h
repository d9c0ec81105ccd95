/*
 * json.h — a small streaming JSON writer. Values are appended to a growing
 * buffer; commas are placed from a per-depth "first element" bit, so callers
 * write `obj_open, key, value, key, value, obj_close` and never think about
 * separators. Strings take a length (embedded NUL bytes are written as
 * \u0000) and invalid UTF-8 is replaced by U+FFFD, so the output is always
 * valid JSON whatever bytes a model produced. NaN and infinities become null.
 *
 * Out of memory is sticky: every call after a failed allocation does nothing
 * and slm_jw_take returns NULL.
 */
#ifndef SLM_UTIL_JSON_H
#define SLM_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLM_JW_MAX_DEPTH 64

typedef struct slm_jw {
    char    *p;          /* output, NUL-terminated while not oom             */
    size_t   len, cap;   /* bytes written / allocated                        */
    bool     oom;        /* an allocation failed: the output is lost          */
    bool     after_key;  /* the next value follows a key: no comma           */
    int      depth;      /* open objects and arrays                          */
    uint64_t has_items;  /* bit d: depth d already holds an element           */
} slm_jw;

void slm_jw_obj_open(slm_jw *w);
void slm_jw_obj_close(slm_jw *w);
void slm_jw_arr_open(slm_jw *w);
void slm_jw_arr_close(slm_jw *w);
void slm_jw_key(slm_jw *w, const char *key);
void slm_jw_str(slm_jw *w, const char *s);             /* NULL writes null  */
void slm_jw_strn(slm_jw *w, const char *s, size_t n);
void slm_jw_int(slm_jw *w, int64_t v);
void slm_jw_num(slm_jw *w, double v);                   /* non-finite: null  */
void slm_jw_bool(slm_jw *w, bool v);
void slm_jw_null(slm_jw *w);
/* Appends already-serialized JSON text as one value. */
void slm_jw_raw(slm_jw *w, const char *json, size_t n);
/* Appends bytes outside the JSON structure (SSE framing around a value). */
void slm_jw_text(slm_jw *w, const char *s, size_t n);

/* Hands the buffer to the caller (slm_free) and resets w; NULL after oom. */
char *slm_jw_take(slm_jw *w, size_t *len);
void  slm_jw_free(slm_jw *w);

/* Length of the longest prefix of s[0..n) that is valid UTF-8. */
size_t slm_utf8_valid_prefix(const char *s, size_t n);

#endif
