/*
 * report.h — a run's summary (summary.h) as text: a terminal table, a
 * Markdown document, a self-contained HTML page with inline SVG charts (no
 * script, no external style sheet, font or image: it opens offline and can
 * be mailed), and one JSON object for scripts. Every function returns a new
 * string (slm_free), or NULL when out of memory.
 */
#ifndef SLM_EVAL_REPORT_H
#define SLM_EVAL_REPORT_H

#include "eval/compare.h"
#include "eval/summary.h"

char *slm_eval_report_text(const slm_eval_summary *s);
char *slm_eval_report_md(const slm_eval_summary *s);
char *slm_eval_report_html(const slm_eval_summary *s);
/* gate may be NULL (no baseline given). */
char *slm_eval_report_json(const slm_eval_summary *s, const slm_eval_gate *gate);

#endif
