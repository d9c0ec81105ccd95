/*
 * report.c — the terminal table, Markdown and JSON forms of a run summary
 * (report_html.c draws the HTML page). Scores print as percentages with one
 * decimal, "n/a" where a number does not exist (no price, nothing passed);
 * the same numbers appear in every form.
 */
#include "eval/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eval/sbuf.h"
#include "util/alloc.h"
#include "util/json.h"

static void when(double t, char *buf, size_t n) {
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void num(slm_sbuf *b, const char *fmt, double v, int width) {
    if (isfinite(v)) {
        char t[64];
        snprintf(t, sizeof t, fmt, v);
        slm_sbuf_printf(b, "%*s", width, t);
    } else {
        slm_sbuf_printf(b, "%*s", width, "n/a");
    }
}

static void money(slm_sbuf *b, double v, int width) {
    num(b, v >= 0.01 || v == 0 ? "$%.4f" : "$%.6f", v, width);
}

static void ci(slm_sbuf *b, const slm_eval_stats_ci *c, int width) {
    char t[64];
    if (isfinite(c->lo) && isfinite(c->hi)) snprintf(t, sizeof t, "[%.1f, %.1f]", 100 * c->lo, 100 * c->hi);
    else snprintf(t, sizeof t, "n/a");
    slm_sbuf_printf(b, "%-*s", width, t);
}

static int total(const slm_eval_summary *s, int which) {
    int n = 0;
    for (int i = 0; i < s->n_ts; i++) n += which == 0 ? s->ts[i].n_scored : which == 1 ? s->ts[i].n_errors : s->ts[i].n_retried;
    return n;
}

/* ---- terminal --------------------------------------------------------------------- */

char *slm_eval_report_text(const slm_eval_summary *s) {
    const slm_eval_db_run *r = &s->d->run;
    slm_sbuf b = { 0 };
    char started[64];
    when(r->started, started, sizeof started);
    slm_sbuf_printf(&b, "run %s  suite %s (%d cases, %s)  %s  %.1f s  %s\n\n", r->id, r->suite_name, r->n_cases,
                    r->suite_hash ? r->suite_hash : "?", started, s->duration_s, r->status ? r->status : "");
    slm_sbuf_printf(&b, "%-20s %6s  %-14s %9s %6s %6s %7s %8s %8s %9s %9s %10s %10s\n", "target", "score", "95% CI", "pass",
                    "errors", "retry", "scored", "p50 ms", "p95 ms", "tok in", "tok out", "cost", "$/correct");
    for (int i = 0; i < s->n_ts; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        char pass[32];
        snprintf(pass, sizeof pass, "%d/%d", t->n_pass, t->n);
        slm_sbuf_printf(&b, "%-20.20s ", t->t->name);
        num(&b, "%.1f", 100 * t->score.mean, 6);
        slm_sbuf_puts(&b, "  ");
        ci(&b, &t->score, 14);
        slm_sbuf_printf(&b, " %9s %6d %6d %7d ", pass, t->n_errors, t->n_retried, t->n_scored);
        num(&b, "%.0f", t->p50_ms, 8);
        slm_sbuf_puts(&b, " ");
        num(&b, "%.0f", t->p95_ms, 8);
        slm_sbuf_printf(&b, " %9ld %9ld ", t->tokens_in, t->tokens_out);
        money(&b, t->cost, 10);
        slm_sbuf_puts(&b, " ");
        money(&b, t->cost_per_correct, 10);
        slm_sbuf_puts(&b, "\n");
    }
    slm_sbuf_printf(&b, "\nresults: %d scored, %d errors, %d retried\n", total(s, 0), total(s, 1), total(s, 2));
    for (int i = 0; i < s->n_ts; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        if (t->n_errors) slm_sbuf_printf(&b, "  %s: %d errors, e.g. %.160s\n", t->t->name, t->n_errors, t->first_error ? t->first_error : "?");
        if (t->n_score_errors) slm_sbuf_printf(&b, "  %s: %d answers the scorer could not score\n", t->t->name, t->n_score_errors);
    }
    if (s->n_tags) {
        slm_sbuf_printf(&b, "\n%-24s", "tag");
        for (int i = 0; i < s->n_ts; i++) slm_sbuf_printf(&b, " %14.14s", s->ts[i].t->name);
        slm_sbuf_puts(&b, "\n");
        for (int k = 0; k < s->n_tags; k++) {
            slm_sbuf_printf(&b, "%-24.24s", s->tags[k]);
            for (int i = 0; i < s->n_ts; i++) {
                const slm_eval_tag_sum *g = &s->ts[i].tags[k];
                char cell[40];
                if (g->n) snprintf(cell, sizeof cell, "%.1f (n=%d)", 100 * g->score.mean, g->n);
                else snprintf(cell, sizeof cell, "-");
                slm_sbuf_printf(&b, " %14s", cell);
            }
            slm_sbuf_puts(&b, "\n");
        }
    }
    for (int i = 0; i < s->n_ts; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        if (t->has_labels) {
            const slm_eval_stats_labels *l = &t->labels;
            slm_sbuf_printf(&b, "\nlabels (%s): accuracy %.1f  macro-F1 %.1f\n", t->t->name, 100 * l->accuracy, 100 * l->macro_f1);
            slm_sbuf_printf(&b, "  %-16s %9s %9s %9s %8s   confusion (gold row, predicted column)\n", "label", "precision", "recall", "F1", "support");
            for (size_t k = 0; k < l->n_labels; k++) {
                slm_sbuf_printf(&b, "  %-16.16s %9.1f %9.1f %9.1f %8ld  ", l->labels[k], 100 * l->per_label[k].precision,
                                100 * l->per_label[k].recall, 100 * l->per_label[k].f1, l->support[k]);
                for (size_t j = 0; j < l->n_labels; j++) slm_sbuf_printf(&b, " %6ld", l->confusion[k * l->n_labels + j]);
                slm_sbuf_puts(&b, "\n");
            }
        }
        if (t->has_fields) {
            const slm_eval_stats_fields *f = &t->fields;
            slm_sbuf_printf(&b, "\nfields (%s): micro P %.1f  R %.1f  F1 %.1f  macro-F1 %.1f\n", t->t->name, 100 * f->micro.precision,
                            100 * f->micro.recall, 100 * f->micro.f1, 100 * f->macro_f1);
            for (size_t k = 0; k < f->n_fields; k++)
                slm_sbuf_printf(&b, "  %-24.24s P %5.1f  R %5.1f  F1 %5.1f\n", f->names[k], 100 * f->per_field[k].precision,
                                100 * f->per_field[k].recall, 100 * f->per_field[k].f1);
        }
    }
    return slm_sbuf_take(&b);
}

/* ---- Markdown ------------------------------------------------------------------------ */

static void md_num(slm_sbuf *b, const char *fmt, double v) { num(b, fmt, v, 0); }

char *slm_eval_report_md(const slm_eval_summary *s) {
    const slm_eval_db_run *r = &s->d->run;
    slm_sbuf b = { 0 };
    char started[64];
    when(r->started, started, sizeof started);
    slm_sbuf_printf(&b, "# Evaluation: %s\n\n", r->suite_name);
    slm_sbuf_printf(&b, "Run `%s` · suite `%s` (%d cases, hash `%s`) · %s · %.1f s · %s", r->id, r->suite_name, r->n_cases,
                    r->suite_hash ? r->suite_hash : "?", started, s->duration_s, r->status ? r->status : "");
    if (r->baseline) slm_sbuf_printf(&b, " · baseline `%s`", r->baseline);
    slm_sbuf_printf(&b, "\n\nResults: %d scored, %d errors, %d retried.\n\n", total(s, 0), total(s, 1), total(s, 2));
    slm_sbuf_puts(&b, "| target | score | 95% CI | pass | scored | errors | retried | p50 ms | p95 ms | tokens in | tokens out | cost | cost / correct |\n");
    slm_sbuf_puts(&b, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < s->n_ts; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        slm_sbuf_puts(&b, "| ");
        slm_sbuf_md_cell(&b, t->t->name, 0);
        slm_sbuf_puts(&b, " | ");
        md_num(&b, "%.1f", 100 * t->score.mean);
        slm_sbuf_puts(&b, " | ");
        ci(&b, &t->score, 0);
        slm_sbuf_printf(&b, " | %d/%d | %d | %d | %d | ", t->n_pass, t->n, t->n_scored, t->n_errors, t->n_retried);
        md_num(&b, "%.0f", t->p50_ms);
        slm_sbuf_puts(&b, " | ");
        md_num(&b, "%.0f", t->p95_ms);
        slm_sbuf_printf(&b, " | %ld | %ld | ", t->tokens_in, t->tokens_out);
        money(&b, t->cost, 0);
        slm_sbuf_puts(&b, " | ");
        money(&b, t->cost_per_correct, 0);
        slm_sbuf_puts(&b, " |\n");
    }
    bool any_err = false;
    for (int i = 0; i < s->n_ts; i++) any_err |= s->ts[i].n_errors > 0;
    if (any_err) {
        slm_sbuf_puts(&b, "\n## Errors\n\n");
        for (int i = 0; i < s->n_ts; i++)
            if (s->ts[i].n_errors) {
                slm_sbuf_printf(&b, "- **%s**: %d errors, e.g. `", s->ts[i].t->name, s->ts[i].n_errors);
                slm_sbuf_md_cell(&b, s->ts[i].first_error, 200);
                slm_sbuf_puts(&b, "`\n");
            }
    }
    if (s->n_tags) {
        slm_sbuf_puts(&b, "\n## By tag\n\n| tag |");
        for (int i = 0; i < s->n_ts; i++) {
            slm_sbuf_puts(&b, " ");
            slm_sbuf_md_cell(&b, s->ts[i].t->name, 0);
            slm_sbuf_puts(&b, " |");
        }
        slm_sbuf_puts(&b, "\n|---|");
        for (int i = 0; i < s->n_ts; i++) slm_sbuf_puts(&b, "---:|");
        slm_sbuf_puts(&b, "\n");
        for (int k = 0; k < s->n_tags; k++) {
            slm_sbuf_puts(&b, "| ");
            slm_sbuf_md_cell(&b, s->tags[k], 60);
            slm_sbuf_puts(&b, " |");
            for (int i = 0; i < s->n_ts; i++) {
                const slm_eval_tag_sum *g = &s->ts[i].tags[k];
                if (g->n) slm_sbuf_printf(&b, " %.1f (n=%d) |", 100 * g->score.mean, g->n);
                else slm_sbuf_puts(&b, " – |");
            }
            slm_sbuf_puts(&b, "\n");
        }
    }
    for (int i = 0; i < s->n_ts; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        if (t->has_labels) {
            const slm_eval_stats_labels *l = &t->labels;
            slm_sbuf_printf(&b, "\n## Labels: %s\n\nAccuracy %.1f, macro-F1 %.1f.\n\n| gold \\ predicted |", t->t->name,
                            100 * l->accuracy, 100 * l->macro_f1);
            for (size_t j = 0; j < l->n_labels; j++) {
                slm_sbuf_puts(&b, " ");
                slm_sbuf_md_cell(&b, l->labels[j], 40);
                slm_sbuf_puts(&b, " |");
            }
            slm_sbuf_puts(&b, " precision | recall | F1 |\n|---|");
            for (size_t j = 0; j < l->n_labels + 3; j++) slm_sbuf_puts(&b, "---:|");
            slm_sbuf_puts(&b, "\n");
            for (size_t k = 0; k < l->n_labels; k++) {
                slm_sbuf_puts(&b, "| ");
                slm_sbuf_md_cell(&b, l->labels[k], 40);
                slm_sbuf_puts(&b, " |");
                for (size_t j = 0; j < l->n_labels; j++) slm_sbuf_printf(&b, " %ld |", l->confusion[k * l->n_labels + j]);
                slm_sbuf_printf(&b, " %.1f | %.1f | %.1f |\n", 100 * l->per_label[k].precision, 100 * l->per_label[k].recall,
                                100 * l->per_label[k].f1);
            }
        }
        if (t->has_fields) {
            const slm_eval_stats_fields *f = &t->fields;
            slm_sbuf_printf(&b, "\n## Fields: %s\n\nMicro P %.1f, R %.1f, F1 %.1f; macro-F1 %.1f.\n\n| field | precision | recall | F1 |\n|---|---:|---:|---:|\n",
                            t->t->name, 100 * f->micro.precision, 100 * f->micro.recall, 100 * f->micro.f1, 100 * f->macro_f1);
            for (size_t k = 0; k < f->n_fields; k++) {
                slm_sbuf_puts(&b, "| ");
                slm_sbuf_md_cell(&b, f->names[k], 60);
                slm_sbuf_printf(&b, " | %.1f | %.1f | %.1f |\n", 100 * f->per_field[k].precision, 100 * f->per_field[k].recall,
                                100 * f->per_field[k].f1);
            }
        }
    }
    slm_sbuf_puts(&b, "\n## Targets\n\n| target | kind | endpoint | model | price in / out ($/M tokens) |\n|---|---|---|---|---|\n");
    for (int i = 0; i < s->n_ts; i++) {
        const slm_eval_db_target *t = s->ts[i].t;
        slm_sbuf_puts(&b, "| ");
        slm_sbuf_md_cell(&b, t->name, 0);
        slm_sbuf_printf(&b, " | %s | `", t->kind ? t->kind : "");
        slm_sbuf_md_cell(&b, t->endpoint, 200);
        slm_sbuf_puts(&b, "` | ");
        slm_sbuf_md_cell(&b, t->model ? t->model : "", 100);
        if (t->has_price) slm_sbuf_printf(&b, " | %g / %g |\n", t->price_in, t->price_out);
        else slm_sbuf_puts(&b, " | n/a |\n");
    }
    return slm_sbuf_take(&b);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void jnum(slm_jw *w, const char *k, double v) {
    slm_jw_key(w, k);
    slm_jw_num(w, v);
}

static void jint(slm_jw *w, const char *k, int64_t v) {
    slm_jw_key(w, k);
    slm_jw_int(w, v);
}

char *slm_eval_report_json(const slm_eval_summary *s, const slm_eval_gate *g) {
    const slm_eval_db_run *r = &s->d->run;
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "run");
    slm_jw_str(&w, r->id);
    slm_jw_key(&w, "status");
    slm_jw_str(&w, r->status);
    slm_jw_key(&w, "suite");
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "name");
    slm_jw_str(&w, r->suite_name);
    slm_jw_key(&w, "path");
    slm_jw_str(&w, r->suite_path);
    slm_jw_key(&w, "hash");
    slm_jw_str(&w, r->suite_hash);
    jint(&w, "cases", r->n_cases);
    slm_jw_obj_close(&w);
    jnum(&w, "started", r->started);
    jnum(&w, "duration_s", s->duration_s);
    jint(&w, "scored", total(s, 0));
    jint(&w, "errors", total(s, 1));
    jint(&w, "retried", total(s, 2));
    slm_jw_key(&w, "targets");
    slm_jw_arr_open(&w);
    for (int i = 0; i < s->n_ts; i++) {
        const slm_eval_target_sum *t = &s->ts[i];
        slm_jw_obj_open(&w);
        slm_jw_key(&w, "name");
        slm_jw_str(&w, t->t->name);
        slm_jw_key(&w, "kind");
        slm_jw_str(&w, t->t->kind);
        slm_jw_key(&w, "model");
        slm_jw_str(&w, t->t->model);
        jnum(&w, "score", 100 * t->score.mean);
        jnum(&w, "ci_lo", 100 * t->score.lo);
        jnum(&w, "ci_hi", 100 * t->score.hi);
        jint(&w, "n", t->n);
        jint(&w, "pass", t->n_pass);
        jint(&w, "scored", t->n_scored);
        jint(&w, "errors", t->n_errors);
        jint(&w, "score_errors", t->n_score_errors);
        jint(&w, "retried", t->n_retried);
        jint(&w, "attempts", t->attempts);
        jnum(&w, "p50_ms", t->p50_ms);
        jnum(&w, "p95_ms", t->p95_ms);
        jint(&w, "tokens_in", t->tokens_in);
        jint(&w, "tokens_out", t->tokens_out);
        jnum(&w, "cost", t->cost);
        jnum(&w, "cost_per_correct", t->cost_per_correct);
        if (t->has_labels) {
            jnum(&w, "accuracy", 100 * t->labels.accuracy);
            jnum(&w, "macro_f1", 100 * t->labels.macro_f1);
        }
        if (t->has_fields) {
            jnum(&w, "micro_f1", 100 * t->fields.micro.f1);
            jnum(&w, "fields_macro_f1", 100 * t->fields.macro_f1);
        }
        slm_jw_key(&w, "tags");
        slm_jw_obj_open(&w);
        for (int k = 0; k < s->n_tags; k++) {
            slm_jw_key(&w, s->tags[k]);
            slm_jw_obj_open(&w);
            jint(&w, "n", t->tags[k].n);
            jnum(&w, "score", 100 * t->tags[k].score.mean);
            jnum(&w, "ci_lo", 100 * t->tags[k].score.lo);
            jnum(&w, "ci_hi", 100 * t->tags[k].score.hi);
            slm_jw_obj_close(&w);
        }
        slm_jw_obj_close(&w);
        slm_jw_obj_close(&w);
    }
    slm_jw_arr_close(&w);
    if (g) {
        slm_jw_key(&w, "gate");
        slm_jw_obj_open(&w);
        slm_jw_key(&w, "pass");
        slm_jw_bool(&w, !g->fail);
        slm_jw_key(&w, "baseline");
        slm_jw_str(&w, g->base_id);
        jnum(&w, "max_drop", g->max_drop);
        slm_jw_key(&w, "targets");
        slm_jw_arr_open(&w);
        for (int i = 0; i < g->n_rows; i++) {
            slm_jw_obj_open(&w);
            slm_jw_key(&w, "target");
            slm_jw_str(&w, g->rows[i].target);
            jnum(&w, "score", g->rows[i].score);
            jnum(&w, "baseline_score", g->rows[i].base);
            jnum(&w, "drop", g->rows[i].drop);
            slm_jw_key(&w, "pass");
            slm_jw_bool(&w, !g->rows[i].fail);
            slm_jw_obj_close(&w);
        }
        slm_jw_arr_close(&w);
        slm_jw_obj_close(&w);
    }
    slm_jw_obj_close(&w);
    return slm_jw_take(&w, NULL);
}
