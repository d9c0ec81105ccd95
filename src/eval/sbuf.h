/*
 * sbuf.h — a growing text buffer for the evaluator's reports: printf-style
 * appends, out of memory sticky (later appends do nothing and take returns
 * NULL), and escapes for Markdown table cells and HTML text.
 */
#ifndef SLM_EVAL_SBUF_H
#define SLM_EVAL_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct slm_sbuf {
    char  *p;             /* NUL-terminated while not oom                      */
    size_t len, cap;
    bool   oom;
} slm_sbuf;

void  slm_sbuf_printf(slm_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void  slm_sbuf_puts(slm_sbuf *b, const char *s);
void  slm_sbuf_putn(slm_sbuf *b, const char *s, size_t n);
/* Text for HTML (& < > " ' escaped; ':' as &#58; so no URL appears
 * literally in a report). */
void  slm_sbuf_html(slm_sbuf *b, const char *s);
/* One Markdown table cell: | and newlines escaped, cut to max bytes
 * (0: no limit) on a UTF-8 boundary with "…". */
void  slm_sbuf_md_cell(slm_sbuf *b, const char *s, size_t max);
/* Hands the text to the caller (slm_free); NULL after oom. */
char *slm_sbuf_take(slm_sbuf *b);
void  slm_sbuf_free(slm_sbuf *b);

#endif
