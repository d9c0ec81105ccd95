/*
 * report_html.c — the HTML report: one file, inline CSS, inline SVG charts,
 * no script and no external reference (every ':' in text is written as
 * &#58;, so not even a URL quoted from a target's endpoint appears
 * literally). Charts are horizontal bar charts drawn by one function:
 * groups of bars (one bar per target, a colour each), an optional whisker
 * per bar (the 95% interval), an axis from 0 to a rounded maximum.
 *   - score by target, with its bootstrap interval;
 *   - score by tag and target, with intervals;
 *   - latency p50 (bar) and p95 (whisker end) by target;
 *   - cost per correct answer by target (targets without a price say so).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eval/report.h"
#include "eval/sbuf.h"
#include "util/alloc.h"

static const char *const PALETTE[] = { "#3b6fb6", "#d9822b", "#3a9a5b", "#b8455a", "#7b5cb3", "#8c6d3f", "#2f9aa8", "#9a9a2f" };
#define N_PALETTE (sizeof PALETTE / sizeof PALETTE[0])

typedef struct bar {
    double v;                /* bar length; NAN: no bar ("n/a")          */
    double lo, hi;           /* whisker; NAN: none                       */
} bar;

/* A nice axis maximum >= v (1, 2, 2.5, 5 × 10^k). */
static double nice_max(double v) {
    if (!(v > 0) || !isfinite(v)) return 1;
    double e = pow(10, floor(log10(v)));
    const double steps[] = { 1, 2, 2.5, 5, 10 };
    for (int i = 0; i < 5; i++)
        if (steps[i] * e >= v * (1 - 1e-12)) return steps[i] * e;
    return 10 * e;
}

/* groups × series bars: vals[g * n_series + s]. fmt formats a value label. */
static void hbar_chart(slm_sbuf *b, const char *title, const char *const *groups, int n_groups, const char *const *series,
                       int n_series, const bar *vals, double vmax, const char *fmt, const char *unit) {
    const int label_w = 190, plot_w = 460, bar_h = 14, gap = 10, top = 28, right = 90;
    int legend_h = n_series > 1 ? 22 : 0;
    int height = top + legend_h + n_groups * (n_series * (bar_h + 3) + gap) + 28;
    double max = 0;
    for (int i = 0; i < n_groups * n_series; i++) {
        if (isfinite(vals[i].v) && vals[i].v > max) max = vals[i].v;
        if (isfinite(vals[i].hi) && vals[i].hi > max) max = vals[i].hi;
    }
    max = vmax > 0 ? vmax : nice_max(max);
    slm_sbuf_printf(b, "<figure><svg class=\"chart\" role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
                    label_w + plot_w + right, height, label_w + plot_w + right, height);
    slm_sbuf_puts(b, "<title>");
    slm_sbuf_html(b, title);
    slm_sbuf_puts(b, "</title>\n<text x=\"0\" y=\"16\" class=\"ct\">");
    slm_sbuf_html(b, title);
    slm_sbuf_puts(b, "</text>\n");
    int y = top;
    if (n_series > 1) {
        int x = label_w;
        for (int s = 0; s < n_series; s++) {
            slm_sbuf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" class=\"lg\">", x,
                            y, PALETTE[s % N_PALETTE], x + 16, y + 10);
            slm_sbuf_html(b, series[s]);
            slm_sbuf_puts(b, "</text>\n");
            x += 24 + 7 * (int)strlen(series[s]);
        }
        y += legend_h;
    }
    int plot_top = y;
    /* grid lines at 0, 25, 50, 75, 100 % of the axis */
    int plot_bottom = plot_top + n_groups * (n_series * (bar_h + 3) + gap);
    for (int k = 0; k <= 4; k++) {
        double x = label_w + plot_w * k / 4.0;
        char lab[32];
        snprintf(lab, sizeof lab, fmt, max * k / 4.0);
        slm_sbuf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>", x, plot_top - 2, x, plot_bottom);
        slm_sbuf_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">", x, plot_bottom + 14);
        slm_sbuf_html(b, lab);
        slm_sbuf_puts(b, "</text>\n");
    }
    if (unit && *unit) {
        slm_sbuf_printf(b, "<text x=\"%d\" y=\"%d\" class=\"ax\">", label_w + plot_w + 36, plot_bottom + 14);
        slm_sbuf_html(b, unit);
        slm_sbuf_puts(b, "</text>\n");
    }
    for (int g = 0; g < n_groups; g++) {
        int gy = y;
        for (int s = 0; s < n_series; s++) {
            const bar *v = &vals[g * n_series + s];
            int by = y;
            if (isfinite(v->v)) {
                double w = plot_w * (v->v > max ? 1 : v->v < 0 ? 0 : v->v / max);
                slm_sbuf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>", label_w, by, w, bar_h,
                                PALETTE[s % N_PALETTE]);
                slm_sbuf_html(b, series[s]);
                char t[96];
                snprintf(t, sizeof t, fmt, v->v);
                slm_sbuf_puts(b, " ");
                slm_sbuf_html(b, t);
                if (isfinite(v->lo) && isfinite(v->hi)) {
                    char lo[32], hi[32];
                    snprintf(lo, sizeof lo, fmt, v->lo);
                    snprintf(hi, sizeof hi, fmt, v->hi);
                    slm_sbuf_puts(b, " [");
                    slm_sbuf_html(b, lo);
                    slm_sbuf_puts(b, ", ");
                    slm_sbuf_html(b, hi);
                    slm_sbuf_puts(b, "]");
                }
                slm_sbuf_puts(b, "</title></rect>");
                double tx = label_w + w + 4;
                if (isfinite(v->lo) && isfinite(v->hi)) {
                    double x1 = label_w + plot_w * fmin(fmax(v->lo / max, 0), 1), x2 = label_w + plot_w * fmin(fmax(v->hi / max, 0), 1);
                    double cy = by + bar_h / 2.0;
                    slm_sbuf_printf(b, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f\" class=\"wh\"/>", x1, cy, x2, x1, cy - 4,
                                    cy + 4, x2, cy - 4, cy + 4);
                    if (x2 + 4 > tx) tx = x2 + 4;
                }
                slm_sbuf_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"val\">", tx, by + 11);
                slm_sbuf_html(b, t);
                slm_sbuf_puts(b, "</text>\n");
            } else {
                slm_sbuf_printf(b, "<text x=\"%d\" y=\"%d\" class=\"val\">n/a</text>\n", label_w + 4, by + 11);
            }
            y += bar_h + 3;
        }
        int cy = gy + (y - gy) / 2 + 4;
        slm_sbuf_printf(b, "<text x=\"%d\" y=\"%d\" class=\"gl\" text-anchor=\"end\">", label_w - 8, cy);
        char lab[64];
        snprintf(lab, sizeof lab, "%.28s%s", groups[g], strlen(groups[g]) > 28 ? "…" : "");
        slm_sbuf_html(b, lab);
        slm_sbuf_puts(b, "</text>\n");
        y += gap;
    }
    slm_sbuf_puts(b, "</svg></figure>\n");
}

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;margin:24px auto;max-width:1040px;padding:0 16px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}"
    ".meta{color:#666}table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}"
    "th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}"
    "figure{margin:8px 0 16px}svg.chart text{font:12px system-ui,sans-serif;fill:#333}svg.chart .ct{font-weight:600;font-size:13px}"
    "svg.chart .ax{fill:#777;font-size:11px}svg.chart .grid{stroke:#e4e4e4}svg.chart .wh{stroke:#222;stroke-width:1.3;fill:none}"
    ".err{color:#a33}code{background:#f4f4f4;padding:1px 4px;border-radius:3px}";

static void cell_num(slm_sbuf *b, const char *fmt, double v) {
    if (isfinite(v)) slm_sbuf_printf(b, fmt, v);
    else slm_sbuf_puts(b, "n/a");
}

char *slm_eval_report_html(const slm_eval_summary *s) {
    const slm_eval_db_run *r = &s->d->run;
    slm_sbuf b = { 0 };
    int nt = s->n_ts;
    const char **names = slm_calloc((size_t)(nt ? nt : 1), sizeof *names);
    bar *vals = slm_calloc((size_t)(nt ? nt : 1) * (size_t)(s->n_tags > 2 ? s->n_tags : 2), sizeof *vals);
    if (!names || !vals) {
        slm_free(names);
        slm_free(vals);
        return NULL;
    }
    for (int i = 0; i < nt; i++) names[i] = s->ts[i].t->name;
    char started[64];
    time_t st = (time_t)r->started;
    struct tm tm;
    gmtime_r(&st, &tm);
    strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S UTC", &tm);

    slm_sbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Evaluation ");
    slm_sbuf_html(&b, r->suite_name);
    slm_sbuf_printf(&b, " %s</title>\n<style>%s</style></head><body>\n<h1>Evaluation: ", r->id, CSS);
    slm_sbuf_html(&b, r->suite_name);
    slm_sbuf_printf(&b, "</h1>\n<p class=\"meta\">run <code>%s</code> · %d cases · suite hash <code>", r->id, r->n_cases);
    slm_sbuf_html(&b, r->suite_hash);
    slm_sbuf_puts(&b, "</code> · ");
    slm_sbuf_html(&b, started);
    slm_sbuf_printf(&b, " · %.1f s · ", s->duration_s);
    slm_sbuf_html(&b, r->status);
    if (r->baseline) slm_sbuf_printf(&b, " · baseline <code>%s</code>", r->baseline);
    int scored = 0, errors = 0, retried = 0;
    for (int i = 0; i < nt; i++) scored += s->ts[i].n_scored, errors += s->ts[i].n_errors, retried += s->ts[i].n_retried;
    slm_sbuf_printf(&b, "</p>\n<p>Results: <b>%d scored</b>, <b%s>%d errors</b>, %d retried.</p>\n", scored,
                    errors ? " class=\"err\"" : "", errors, retried);

    /* summary table */
    slm_sbuf_puts(&b, "<h2>Targets</h2>\n<table><tr><th class=\"l\">target</th><th>score</th><th>95% CI</th><th>pass</th>"
                      "<th>scored</th><th>errors</th><th>retried</th><th>p50 ms</th><th>p95 ms</th><th>tokens in</th>"
                      "<th>tokens out</th><th>cost $</th><th>$ / correct</th></tr>\n");
    for (int i = 0; i < nt; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        slm_sbuf_puts(&b, "<tr><td class=\"l\">");
        slm_sbuf_html(&b, t->t->name);
        slm_sbuf_puts(&b, "</td><td>");
        cell_num(&b, "%.1f", 100 * t->score.mean);
        slm_sbuf_puts(&b, "</td><td>");
        if (isfinite(t->score.lo)) slm_sbuf_printf(&b, "%.1f – %.1f", 100 * t->score.lo, 100 * t->score.hi);
        else slm_sbuf_puts(&b, "n/a");
        slm_sbuf_printf(&b, "</td><td>%d/%d</td><td>%d</td><td>%d</td><td>%d</td><td>", t->n_pass, t->n, t->n_scored, t->n_errors,
                        t->n_retried);
        cell_num(&b, "%.0f", t->p50_ms);
        slm_sbuf_puts(&b, "</td><td>");
        cell_num(&b, "%.0f", t->p95_ms);
        slm_sbuf_printf(&b, "</td><td>%ld</td><td>%ld</td><td>", t->tokens_in, t->tokens_out);
        cell_num(&b, "%.4f", t->cost);
        slm_sbuf_puts(&b, "</td><td>");
        cell_num(&b, "%.6f", t->cost_per_correct);
        slm_sbuf_puts(&b, "</td></tr>\n");
    }
    slm_sbuf_puts(&b, "</table>\n");

    /* charts */
    slm_sbuf_puts(&b, "<h2>Charts</h2>\n");
    for (int i = 0; i < nt; i++)
        vals[i] = (bar){ 100 * s->ts[i].score.mean, 100 * s->ts[i].score.lo, 100 * s->ts[i].score.hi };
    const char *one[] = { "score" };
    hbar_chart(&b, "Score by target (%, 95% bootstrap interval)", names, nt, one, 1, vals, 100, "%.1f", "%");
    if (s->n_tags) {
        const char **tags = (const char **)s->tags;
        for (int g = 0; g < s->n_tags; g++)
            for (int i = 0; i < nt; i++) {
                const slm_eval_tag_sum *ts = &s->ts[i].tags[g];
                vals[g * nt + i] = ts->n ? (bar){ 100 * ts->score.mean, 100 * ts->score.lo, 100 * ts->score.hi } : (bar){ NAN, NAN, NAN };
            }
        hbar_chart(&b, "Score by tag and target (%, 95% interval)", tags, s->n_tags, names, nt, vals, 100, "%.1f", "%");
    }
    for (int i = 0; i < nt; i++) vals[i] = (bar){ s->ts[i].p50_ms, s->ts[i].p50_ms, s->ts[i].p95_ms };
    hbar_chart(&b, "Latency by target (bar: p50, whisker to p95)", names, nt, one, 1, vals, 0, "%.0f", "ms");
    for (int i = 0; i < nt; i++) vals[i] = (bar){ s->ts[i].cost_per_correct, NAN, NAN };
    hbar_chart(&b, "Cost per correct answer (n/a: no price, or nothing correct)", names, nt, one, 1, vals, 0, "$%.6f", "$");

    /* tags table, labels, fields, errors */
    if (s->n_tags) {
        slm_sbuf_puts(&b, "<h2>By tag</h2>\n<table><tr><th class=\"l\">tag</th>");
        for (int i = 0; i < nt; i++) {
            slm_sbuf_puts(&b, "<th>");
            slm_sbuf_html(&b, names[i]);
            slm_sbuf_puts(&b, "</th>");
        }
        slm_sbuf_puts(&b, "</tr>\n");
        for (int g = 0; g < s->n_tags; g++) {
            slm_sbuf_puts(&b, "<tr><td class=\"l\">");
            slm_sbuf_html(&b, s->tags[g]);
            slm_sbuf_puts(&b, "</td>");
            for (int i = 0; i < nt; i++) {
                const slm_eval_tag_sum *ts = &s->ts[i].tags[g];
                if (ts->n) slm_sbuf_printf(&b, "<td>%.1f (n=%d)</td>", 100 * ts->score.mean, ts->n);
                else slm_sbuf_puts(&b, "<td>–</td>");
            }
            slm_sbuf_puts(&b, "</tr>\n");
        }
        slm_sbuf_puts(&b, "</table>\n");
    }
    for (int i = 0; i < nt; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        if (t->has_labels) {
            const slm_eval_stats_labels *l = &t->labels;
            slm_sbuf_puts(&b, "<h2>Labels: ");
            slm_sbuf_html(&b, names[i]);
            slm_sbuf_printf(&b, "</h2>\n<p>accuracy %.1f · macro-F1 %.1f</p>\n<table><tr><th class=\"l\">gold \\ predicted</th>",
                            100 * l->accuracy, 100 * l->macro_f1);
            for (size_t j = 0; j < l->n_labels; j++) {
                slm_sbuf_puts(&b, "<th>");
                slm_sbuf_html(&b, l->labels[j]);
                slm_sbuf_puts(&b, "</th>");
            }
            slm_sbuf_puts(&b, "<th>precision</th><th>recall</th><th>F1</th></tr>\n");
            for (size_t k = 0; k < l->n_labels; k++) {
                slm_sbuf_puts(&b, "<tr><td class=\"l\">");
                slm_sbuf_html(&b, l->labels[k]);
                slm_sbuf_puts(&b, "</td>");
                for (size_t j = 0; j < l->n_labels; j++) slm_sbuf_printf(&b, "<td>%ld</td>", l->confusion[k * l->n_labels + j]);
                slm_sbuf_printf(&b, "<td>%.1f</td><td>%.1f</td><td>%.1f</td></tr>\n", 100 * l->per_label[k].precision,
                                100 * l->per_label[k].recall, 100 * l->per_label[k].f1);
            }
            slm_sbuf_puts(&b, "</table>\n");
        }
        if (t->has_fields) {
            const slm_eval_stats_fields *f = &t->fields;
            slm_sbuf_puts(&b, "<h2>Fields: ");
            slm_sbuf_html(&b, names[i]);
            slm_sbuf_printf(&b, "</h2>\n<p>micro P %.1f · R %.1f · F1 %.1f · macro-F1 %.1f</p>\n<table><tr><th class=\"l\">field</th>"
                                "<th>precision</th><th>recall</th><th>F1</th></tr>\n",
                            100 * f->micro.precision, 100 * f->micro.recall, 100 * f->micro.f1, 100 * f->macro_f1);
            for (size_t k = 0; k < f->n_fields; k++) {
                slm_sbuf_puts(&b, "<tr><td class=\"l\">");
                slm_sbuf_html(&b, f->names[k]);
                slm_sbuf_printf(&b, "</td><td>%.1f</td><td>%.1f</td><td>%.1f</td></tr>\n", 100 * f->per_field[k].precision,
                                100 * f->per_field[k].recall, 100 * f->per_field[k].f1);
            }
            slm_sbuf_puts(&b, "</table>\n");
        }
    }
    if (errors) {
        slm_sbuf_puts(&b, "<h2>Errors</h2>\n<ul>\n");
        for (int i = 0; i < nt; i++)
            if (s->ts[i].n_errors) {
                slm_sbuf_puts(&b, "<li><b>");
                slm_sbuf_html(&b, names[i]);
                slm_sbuf_printf(&b, "</b>: %d errors, e.g. <code>", s->ts[i].n_errors);
                slm_sbuf_html(&b, s->ts[i].first_error);
                slm_sbuf_puts(&b, "</code></li>\n");
            }
        slm_sbuf_puts(&b, "</ul>\n");
    }
    slm_sbuf_puts(&b, "<h2>Target details</h2>\n<table><tr><th class=\"l\">target</th><th class=\"l\">kind</th>"
                      "<th class=\"l\">endpoint</th><th class=\"l\">model</th><th>price in / out ($/M)</th></tr>\n");
    for (int i = 0; i < nt; i++) {
        const slm_eval_db_target *t = s->ts[i].t;
        slm_sbuf_puts(&b, "<tr><td class=\"l\">");
        slm_sbuf_html(&b, t->name);
        slm_sbuf_puts(&b, "</td><td class=\"l\">");
        slm_sbuf_html(&b, t->kind);
        slm_sbuf_puts(&b, "</td><td class=\"l\"><code>");
        slm_sbuf_html(&b, t->endpoint);
        slm_sbuf_puts(&b, "</code></td><td class=\"l\">");
        slm_sbuf_html(&b, t->model);
        slm_sbuf_puts(&b, "</td><td>");
        if (t->has_price) slm_sbuf_printf(&b, "%g / %g", t->price_in, t->price_out);
        else slm_sbuf_puts(&b, "n/a");
        slm_sbuf_puts(&b, "</td></tr>\n");
    }
    slm_sbuf_puts(&b, "</table>\n<p class=\"meta\">Generated by slm eval. Scores count failed calls as 0.</p>\n</body></html>\n");
    slm_free(names);
    slm_free(vals);
    return slm_sbuf_take(&b);
}
