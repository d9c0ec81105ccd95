/*
 * compare.c — see compare.h. Per-case items come straight from the run
 * data (score 0 / fail for a failed call); stats.h pairs them by id and runs
 * McNemar and the paired bootstrap. Rendering lists every flipped case up to
 * FLIP_SHOW per direction and counts the rest.
 */
#include "eval/compare.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/sbuf.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"

#define FLIP_SHOW 200

static int items_of(const slm_eval_summary *s, const slm_eval_target_sum *t, slm_eval_stats_item **out, size_t *n) {
    const slm_eval_rundata *d = s->d;
    *n = 0;
    *out = slm_calloc((size_t)(d->n_results ? d->n_results : 1), sizeof **out);
    if (!*out) return SLM_ENOMEM;
    for (int i = 0; i < d->n_results; i++) {
        const slm_eval_db_result *r = &d->results[i];
        if (strcmp(r->target, t->t->name)) continue;
        (*out)[(*n)++] = (slm_eval_stats_item){ r->case_id, r->scored ? r->score : 0, r->scored && r->pass };
    }
    return 0;
}

static int tag_pos(const slm_eval_summary *s, const char *tag) {
    for (int i = 0; i < s->n_tags; i++)
        if (!strcmp(s->tags[i], tag)) return i;
    return -1;
}

static int cmp_target(const slm_eval_cmp *c, slm_eval_cmp_target *ct, slm_err *err) {
    slm_eval_stats_item *ia = NULL, *ib = NULL;
    size_t na, nb;
    int rc = items_of(c->a, ct->a, &ia, &na);
    if (!rc) rc = items_of(c->b, ct->b, &ib, &nb);
    if (rc) {
        slm_free(ia);
        slm_free(ib);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    rc = slm_eval_stats_paired_compare(ia, na, ib, nb, 0, SLM_EVAL_BOOT_SEED, &ct->paired, err);
    slm_free(ia);
    slm_free(ib);
    if (rc) return rc;
    /* tags: A's, then those only B has */
    int cap = c->a->n_tags + c->b->n_tags;
    ct->tags = slm_calloc((size_t)(cap ? cap : 1), sizeof *ct->tags);
    if (!ct->tags) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int pass = 0; pass < 2; pass++) {
        const slm_eval_summary *s = pass ? c->b : c->a;
        for (int i = 0; i < s->n_tags; i++) {
            if (pass && tag_pos(c->a, s->tags[i]) >= 0) continue;
            slm_eval_cmp_tag *t = &ct->tags[ct->n_tags++];
            t->tag = s->tags[i];
            int ka = tag_pos(c->a, t->tag), kb = tag_pos(c->b, t->tag);
            t->n_a = ka >= 0 ? ct->a->tags[ka].n : 0;
            t->n_b = kb >= 0 ? ct->b->tags[kb].n : 0;
            t->a = t->n_a ? ct->a->tags[ka].score.mean : NAN;
            t->b = t->n_b ? ct->b->tags[kb].score.mean : NAN;
        }
    }
    return 0;
}

int slm_eval_compare(const slm_eval_summary *a, const slm_eval_summary *b, slm_eval_cmp *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    out->a = a;
    out->b = b;
    out->ts = slm_calloc((size_t)(a->n_ts ? a->n_ts : 1), sizeof *out->ts);
    if (!out->ts) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int i = 0; i < a->n_ts; i++) {
        int k = slm_eval_summary_pair(a, i, b);
        if (k < 0) {
            out->n_unpaired++;
            continue;
        }
        slm_eval_cmp_target *ct = &out->ts[out->n_ts++];
        ct->a = &a->ts[i];
        ct->b = &b->ts[k];
        int rc = cmp_target(out, ct, err);
        if (rc) {
            slm_eval_cmp_clear(out);
            return rc;
        }
    }
    if (!out->n_ts) {
        slm_eval_cmp_clear(out);
        return slm_err_set(err, SLM_EINVAL, "runs %s and %s share no target name (compare pairs targets by name)", a->d->run.id,
                           b->d->run.id);
    }
    return 0;
}

void slm_eval_cmp_clear(slm_eval_cmp *c) {
    if (!c) return;
    for (int i = 0; i < c->n_ts; i++) {
        slm_eval_stats_paired_clear(&c->ts[i].paired);
        slm_free(c->ts[i].tags);
    }
    slm_free(c->ts);
    memset(c, 0, sizeof *c);
}

/* ---- rendering ------------------------------------------------------------------ */

static void pct(slm_sbuf *b, double v, int width) {
    if (isfinite(v)) slm_sbuf_printf(b, "%*.1f", width, 100 * v);
    else slm_sbuf_printf(b, "%*s", width, "n/a");
}

static void delta(slm_sbuf *b, double a, double bb, int width) {
    if (isfinite(a) && isfinite(bb)) slm_sbuf_printf(b, "%+*.1f", width, 100 * (bb - a));
    else slm_sbuf_printf(b, "%*s", width, "n/a");
}

static void pval(slm_sbuf *b, double p, int width) {
    if (!isfinite(p)) slm_sbuf_printf(b, "%*s", width, "n/a");
    else if (p < 0.001) slm_sbuf_printf(b, "%*s", width, "<0.001");
    else slm_sbuf_printf(b, "%*.3f", width, p);
}

static void flips(slm_sbuf *b, const char *what, char **ids, size_t n, bool md) {
    slm_sbuf_printf(b, md ? "\n**%s** (%zu):" : "  %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < FLIP_SHOW; i++) {
        slm_sbuf_puts(b, i ? ", " : " ");
        if (md) slm_sbuf_puts(b, "`");
        slm_sbuf_md_cell(b, ids[i], 80);
        if (md) slm_sbuf_puts(b, "`");
    }
    if (n > FLIP_SHOW) slm_sbuf_printf(b, ", … and %zu more", n - FLIP_SHOW);
    slm_sbuf_puts(b, "\n");
}

char *slm_eval_cmp_render(const slm_eval_cmp *c, bool md) {
    slm_sbuf b = { 0 };
    const slm_eval_db_run *ra = &c->a->d->run, *rb = &c->b->d->run;
    if (md) {
        slm_sbuf_printf(&b, "# Comparison: `%s` → `%s`\n\n", ra->id, rb->id);
        slm_sbuf_printf(&b, "A: run `%s`, suite **%s** (%d cases, %s)  \nB: run `%s`, suite **%s** (%d cases, %s)\n\n", ra->id,
                        ra->suite_name, ra->n_cases, ra->suite_hash ? ra->suite_hash : "", rb->id, rb->suite_name, rb->n_cases,
                        rb->suite_hash ? rb->suite_hash : "");
        if (ra->suite_hash && rb->suite_hash && strcmp(ra->suite_hash, rb->suite_hash))
            slm_sbuf_puts(&b, "> The suites differ (hashes); only cases present in both runs are paired.\n\n");
        slm_sbuf_puts(&b, "| target | A score | B score | Δ pts | pairs | pass→fail | fail→pass | McNemar p | paired Δ [95% CI] | bootstrap p |\n");
        slm_sbuf_puts(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
    } else {
        slm_sbuf_printf(&b, "compare %s (suite %s, %d cases) -> %s (suite %s, %d cases)\n", ra->id, ra->suite_name, ra->n_cases,
                        rb->id, rb->suite_name, rb->n_cases);
        if (ra->suite_hash && rb->suite_hash && strcmp(ra->suite_hash, rb->suite_hash))
            slm_sbuf_puts(&b, "note: the suites differ (hashes); only cases present in both runs are paired\n");
        slm_sbuf_printf(&b, "\n%-24s %8s %8s %7s %6s %9s %9s %9s  %-22s %8s\n", "target", "A score", "B score", "delta", "pairs",
                        "pass>fail", "fail>pass", "McNemar", "paired delta [95% CI]", "boot p");
    }
    for (int i = 0; i < c->n_ts; i++) {
        const slm_eval_cmp_target *t = &c->ts[i];
        const slm_eval_stats_paired *p = &t->paired;
        char name[160];
        if (strcmp(t->a->t->name, t->b->t->name)) snprintf(name, sizeof name, "%s -> %s", t->a->t->name, t->b->t->name);
        else snprintf(name, sizeof name, "%s", t->a->t->name);
        char ci[64];
        if (isfinite(p->diff.mean))
            snprintf(ci, sizeof ci, "%+.1f [%+.1f, %+.1f]", 100 * p->diff.mean, 100 * p->diff.lo, 100 * p->diff.hi);
        else
            snprintf(ci, sizeof ci, "n/a");
        if (md) {
            slm_sbuf_puts(&b, "| ");
            slm_sbuf_md_cell(&b, name, 0);
            slm_sbuf_puts(&b, " | ");
            pct(&b, t->a->score.mean, 0);
            slm_sbuf_puts(&b, " | ");
            pct(&b, t->b->score.mean, 0);
            slm_sbuf_puts(&b, " | ");
            delta(&b, t->a->score.mean, t->b->score.mean, 0);
            slm_sbuf_printf(&b, " | %zu | %ld | %ld | ", p->n_pairs, p->b_disc, p->c_disc);
            pval(&b, p->mcnemar_p, 0);
            slm_sbuf_printf(&b, " | %s | ", ci);
            pval(&b, p->diff_p, 0);
            slm_sbuf_puts(&b, " |\n");
        } else {
            slm_sbuf_printf(&b, "%-24.24s ", name);
            pct(&b, t->a->score.mean, 8);
            slm_sbuf_puts(&b, " ");
            pct(&b, t->b->score.mean, 8);
            slm_sbuf_puts(&b, " ");
            delta(&b, t->a->score.mean, t->b->score.mean, 7);
            slm_sbuf_printf(&b, " %6zu %9ld %9ld ", p->n_pairs, p->b_disc, p->c_disc);
            pval(&b, p->mcnemar_p, 9);
            slm_sbuf_printf(&b, "  %-22s ", ci);
            pval(&b, p->diff_p, 8);
            slm_sbuf_puts(&b, "\n");
        }
    }
    if (c->n_unpaired) slm_sbuf_printf(&b, md ? "\n%d target(s) of A have no counterpart in B.\n" : "(%d target(s) of A have no counterpart in B)\n", c->n_unpaired);
    for (int i = 0; i < c->n_ts; i++) {
        const slm_eval_cmp_target *t = &c->ts[i];
        if (t->n_tags) {
            if (md) {
                slm_sbuf_printf(&b, "\n## By tag: %s\n\n| tag | n A | A | n B | B | Δ pts |\n|---|---:|---:|---:|---:|---:|\n", t->a->t->name);
            } else {
                slm_sbuf_printf(&b, "\nby tag (%s)\n%-24s %6s %8s %6s %8s %7s\n", t->a->t->name, "tag", "n A", "A", "n B", "B", "delta");
            }
            for (int k = 0; k < t->n_tags; k++) {
                const slm_eval_cmp_tag *g = &t->tags[k];
                if (md) {
                    slm_sbuf_puts(&b, "| ");
                    slm_sbuf_md_cell(&b, g->tag, 60);
                    slm_sbuf_printf(&b, " | %d | ", g->n_a);
                    pct(&b, g->a, 0);
                    slm_sbuf_printf(&b, " | %d | ", g->n_b);
                    pct(&b, g->b, 0);
                    slm_sbuf_puts(&b, " | ");
                    delta(&b, g->a, g->b, 0);
                    slm_sbuf_puts(&b, " |\n");
                } else {
                    slm_sbuf_printf(&b, "%-24.24s %6d ", g->tag, g->n_a);
                    pct(&b, g->a, 8);
                    slm_sbuf_printf(&b, " %6d ", g->n_b);
                    pct(&b, g->b, 8);
                    slm_sbuf_puts(&b, " ");
                    delta(&b, g->a, g->b, 7);
                    slm_sbuf_puts(&b, "\n");
                }
            }
        }
        slm_sbuf_printf(&b, md ? "\n## Flipped cases: %s\n" : "\nflipped (%s)\n", t->a->t->name);
        flips(&b, "pass -> fail", t->paired.pass_to_fail, t->paired.n_pass_to_fail, md);
        flips(&b, "fail -> pass", t->paired.fail_to_pass, t->paired.n_fail_to_pass, md);
    }
    return slm_sbuf_take(&b);
}

static void jw_ids(slm_jw *w, const char *key, char **ids, size_t n) {
    slm_jw_key(w, key);
    slm_jw_arr_open(w);
    for (size_t i = 0; i < n; i++) slm_jw_str(w, ids[i]);
    slm_jw_arr_close(w);
}

static void jw_pct(slm_jw *w, const char *key, double v) {
    slm_jw_key(w, key);
    slm_jw_num(w, 100 * v);
}

char *slm_eval_cmp_json(const slm_eval_cmp *c) {
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "a");
    slm_jw_str(&w, c->a->d->run.id);
    slm_jw_key(&w, "b");
    slm_jw_str(&w, c->b->d->run.id);
    slm_jw_key(&w, "targets");
    slm_jw_arr_open(&w);
    for (int i = 0; i < c->n_ts; i++) {
        const slm_eval_cmp_target *t = &c->ts[i];
        const slm_eval_stats_paired *p = &t->paired;
        slm_jw_obj_open(&w);
        slm_jw_key(&w, "a_target");
        slm_jw_str(&w, t->a->t->name);
        slm_jw_key(&w, "b_target");
        slm_jw_str(&w, t->b->t->name);
        jw_pct(&w, "a_score", t->a->score.mean);
        jw_pct(&w, "b_score", t->b->score.mean);
        jw_pct(&w, "delta", t->b->score.mean - t->a->score.mean);
        slm_jw_key(&w, "pairs");
        slm_jw_int(&w, (int64_t)p->n_pairs);
        slm_jw_key(&w, "mcnemar_p");
        slm_jw_num(&w, p->mcnemar_p);
        slm_jw_key(&w, "mcnemar_exact");
        slm_jw_bool(&w, p->mcnemar_exact);
        jw_pct(&w, "paired_diff", p->diff.mean);
        jw_pct(&w, "paired_diff_lo", p->diff.lo);
        jw_pct(&w, "paired_diff_hi", p->diff.hi);
        slm_jw_key(&w, "bootstrap_p");
        slm_jw_num(&w, p->diff_p);
        jw_ids(&w, "pass_to_fail", p->pass_to_fail, p->n_pass_to_fail);
        jw_ids(&w, "fail_to_pass", p->fail_to_pass, p->n_fail_to_pass);
        slm_jw_key(&w, "tags");
        slm_jw_obj_open(&w);
        for (int k = 0; k < t->n_tags; k++) {
            slm_jw_key(&w, t->tags[k].tag);
            slm_jw_obj_open(&w);
            jw_pct(&w, "a", t->tags[k].a);
            jw_pct(&w, "b", t->tags[k].b);
            slm_jw_key(&w, "n_a");
            slm_jw_int(&w, t->tags[k].n_a);
            slm_jw_key(&w, "n_b");
            slm_jw_int(&w, t->tags[k].n_b);
            slm_jw_obj_close(&w);
        }
        slm_jw_obj_close(&w);
        slm_jw_obj_close(&w);
    }
    slm_jw_arr_close(&w);
    slm_jw_obj_close(&w);
    return slm_jw_take(&w, NULL);
}

/* ---- the regression gate ------------------------------------------------------------ */

int slm_eval_gate_check(const slm_eval_summary *cur, const slm_eval_summary *base, double max_drop, slm_eval_gate *g,
                        slm_err *err) {
    memset(g, 0, sizeof *g);
    g->max_drop = max_drop;
    g->base_id = base->d->run.id;
    g->rows = slm_calloc((size_t)(cur->n_ts ? cur->n_ts : 1), sizeof *g->rows);
    if (!g->rows) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int i = 0; i < cur->n_ts; i++) {
        int k = slm_eval_summary_pair(cur, i, base);
        if (k < 0) continue;
        slm_eval_gate_row *r = &g->rows[g->n_rows++];
        r->target = cur->ts[i].t->name;
        r->base_target = base->ts[k].t->name;
        r->score = 100 * cur->ts[i].score.mean;
        r->base = 100 * base->ts[k].score.mean;
        r->drop = r->base - r->score;
        if (!isfinite(r->drop)) r->drop = isfinite(r->base) ? INFINITY : 0;
        r->fail = r->drop > max_drop + 1e-9;
        g->fail |= r->fail;
    }
    if (!g->n_rows) g->fail = true;
    return 0;
}

void slm_eval_gate_clear(slm_eval_gate *g) {
    if (!g) return;
    slm_free(g->rows);
    memset(g, 0, sizeof *g);
}

char *slm_eval_gate_line(const slm_eval_gate *g) {
    slm_sbuf b = { 0 };
    slm_sbuf_printf(&b, "gate: %s", g->fail ? "FAIL" : "PASS");
    if (!g->n_rows) {
        slm_sbuf_printf(&b, ": no target of this run matches one of baseline %s", g->base_id);
        return slm_sbuf_take(&b);
    }
    for (int i = 0; i < g->n_rows; i++) {
        const slm_eval_gate_row *r = &g->rows[i];
        slm_sbuf_printf(&b, "%s %s %.1f vs baseline %s %.1f (%+.1f pts, max drop %.1f)", i ? ";" : ":", r->target, r->score,
                        g->base_id, r->base, -r->drop, g->max_drop);
    }
    return slm_sbuf_take(&b);
}
