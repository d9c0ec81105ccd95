/*
 * eval.c — `slm eval init|run|compare|report|runs`: the evaluator's front
 * end. It parses options, opens the suite, the targets and the database,
 * hands the run to src/eval/run.c, and prints what src/eval/report.c and
 * compare.c render. Progress: one line per target on a terminal (the
 * least advanced target's line is shown; a finished target leaves a
 * one-line note); nothing without a terminal; --json prints one JSON object
 * on stdout instead of the table. SIGINT stops the run after the calls in
 * flight (the rest are recorded as cancelled); a second SIGINT kills.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "eval/compare.h"
#include "eval/db.h"
#include "eval/report.h"
#include "eval/run.h"
#include "eval/suite.h"
#include "eval/summary.h"
#include "eval/target.h"
#include "util/alloc.h"
#include "util/progress.h"

#define MAX_TARGETS 32
#define MAX_TAGS 32
#define DEFAULT_DB "slm.db"

static volatile sig_atomic_t g_cancel;   /* the only global: a signal handler needs one */

static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
    signal(SIGINT, SIG_DFL);   /* a second Ctrl-C ends the process */
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return cli_fail("cannot write '%s': %s", path, strerror(errno));
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok ? 0 : cli_fail("cannot write '%s'", path);
}

static int open_db(const char *path, slm_eval_db **db) {
    slm_err err = { 0 };
    if (slm_eval_db_open(path, db, &err)) return cli_fail("%s", err.msg);
    return 0;
}

/* Loads run ref and its summary. */
static int load_summary(slm_eval_db *db, const char *ref, slm_eval_rundata *d, slm_eval_summary *s) {
    slm_err err = { 0 };
    char id[SLM_EVAL_RUN_ID_LEN + 1];
    if (slm_eval_db_resolve(db, ref, id, &err) || slm_eval_db_load(db, id, d, &err)) return cli_fail("%s", err.msg);
    if (slm_eval_summary_compute(d, s, &err)) {
        slm_eval_rundata_clear(d);
        return cli_fail("%s", err.msg);
    }
    return 0;
}

/* Writes the text table (or JSON) to stdout and the --md/--html files. */
static int emit_reports(const slm_eval_summary *s, const slm_eval_gate *gate, bool json, const char *md, const char *html) {
    char *text = json ? slm_eval_report_json(s, gate) : slm_eval_report_text(s);
    if (!text) return cli_fail("out of memory");
    fputs(text, stdout);
    if (json) fputc('\n', stdout);
    slm_free(text);
    int rc = 0;
    if (md) {
        char *m = slm_eval_report_md(s);
        rc = m ? write_file(md, m) : cli_fail("out of memory");
        slm_free(m);
    }
    if (!rc && html) {
        char *h = slm_eval_report_html(s);
        rc = h ? write_file(html, h) : cli_fail("out of memory");
        slm_free(h);
    }
    fflush(stdout);
    return rc;
}

/* ---- init ------------------------------------------------------------------------- */

static int eval_init(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    if (argc > 2) return cli_usage("eval", "init takes at most one directory");
    char *path = NULL;
    slm_err err = { 0 };
    if (slm_eval_suite_write_example(dir, &path, &err)) return cli_fail("%s", err.msg);
    printf("wrote %s\ntry: slm eval run %s --target local=MODEL.gguf   (or --target NAME=http://HOST:PORT/v1,model=M)\n", path, path);
    slm_free(path);
    return 0;
}

/* ---- run ---------------------------------------------------------------------------- */

typedef struct progress_state {
    slm_progress *p;
    int n, focus;               /* the target whose line is on screen        */
    bool tty;
    bool *finished;
    slm_eval_target *const *targets;
} progress_state;

static void on_progress(void *ud, int ti, int64_t done, int64_t total) {
    progress_state *ps = ud;
    if (!ps->tty) return;
    ps->p[ti].done = done;
    if (done >= total && !ps->finished[ti]) {
        ps->finished[ti] = true;
        slm_progress_end(&ps->p[ps->focus]);   /* clear the line for the note */
        char el[16];
        slm_progress_fmt_time(slm_now() - ps->p[ti].t_start, el, sizeof el);
        fprintf(stderr, "%s: %lld cases done in %s\n", ps->targets[ti]->cfg.name, (long long)total, el);
        if (ti == ps->focus) {
            /* show the least advanced target still running */
            int best = -1;
            for (int i = 0; i < ps->n; i++)
                if (!ps->finished[i] && (best < 0 || ps->p[i].done < ps->p[best].done)) best = i;
            if (best >= 0) {
                ps->focus = best;
                ps->p[best].enabled = true;
            }
        }
        return;
    }
    if (ti == ps->focus) slm_progress_set(&ps->p[ti], done);
}

static int parse_price(const char *s, slm_eval_target_cfg *cfgs, int n) {
    const char *eq = strchr(s, '=');
    const char *comma = eq ? strchr(eq, ',') : NULL;
    char *end1, *end2;
    if (!eq || !comma) return cli_usage("eval", "--price wants NAME=IN_PER_M,OUT_PER_M (dollars per million tokens)");
    double in = strtod(eq + 1, &end1), out = strtod(comma + 1, &end2);
    if (end1 != comma || *end2 || !(in >= 0) || !(out >= 0) || !isfinite(in) || !isfinite(out))
        return cli_usage("eval", "--price %s: prices must be numbers >= 0", s);
    for (int i = 0; i < n; i++)
        if (strlen(cfgs[i].name) == (size_t)(eq - s) && !strncmp(cfgs[i].name, s, (size_t)(eq - s))) {
            cfgs[i].has_price = true;
            cfgs[i].price_in = in;
            cfgs[i].price_out = out;
            return 0;
        }
    return cli_usage("eval", "--price %.*s: no --target or --judge has that name", (int)(eq - s), s);
}

typedef struct run_args {
    const char *suite, *db, *baseline, *md, *html;
    const char *targets[MAX_TARGETS]; int n_targets;
    const char *judges[MAX_TARGETS]; int n_judges;
    const char *prices[MAX_TARGETS]; int n_prices;
    const char *tags[MAX_TAGS]; int n_tags;
    int32_t limit, concurrency, retries;
    float rps, timeout, max_drop;
    bool json, has_max_drop;
} run_args;

static int parse_run_args(int argc, char **argv, run_args *a) {
    memset(a, 0, sizeof *a);
    a->db = DEFAULT_DB;
    a->retries = -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = o[0] == '-' && strcmp(o, "--json");
        if (takes && !v) return cli_usage("eval", "%s needs a value", o);
        if (!strcmp(o, "--json")) a->json = true;
        else if (!strcmp(o, "--suite") || !strcmp(o, "-s")) a->suite = v;
        else if (!strcmp(o, "--target") || !strcmp(o, "-t")) {
            if (a->n_targets == MAX_TARGETS) return cli_usage("eval", "at most %d targets", MAX_TARGETS);
            a->targets[a->n_targets++] = v;
        } else if (!strcmp(o, "--judge")) {
            if (a->n_judges == MAX_TARGETS) return cli_usage("eval", "at most %d judges", MAX_TARGETS);
            a->judges[a->n_judges++] = v;
        } else if (!strcmp(o, "--price")) {
            if (a->n_prices == MAX_TARGETS) return cli_usage("eval", "too many --price");
            a->prices[a->n_prices++] = v;
        } else if (!strcmp(o, "--tag")) {
            if (a->n_tags == MAX_TAGS) return cli_usage("eval", "at most %d --tag", MAX_TAGS);
            a->tags[a->n_tags++] = v;
        } else if (!strcmp(o, "--db")) a->db = v;
        else if (!strcmp(o, "--baseline")) a->baseline = v;
        else if (!strcmp(o, "--md")) a->md = v;
        else if (!strcmp(o, "--html")) a->html = v;
        else if (!strcmp(o, "--limit") || !strcmp(o, "-n")) {
            if (!cli_parse_i32(v, 1, 1 << 30, &a->limit)) return cli_usage("eval", "--limit: a count >= 1");
        } else if (!strcmp(o, "--concurrency") || !strcmp(o, "-c")) {
            if (!cli_parse_i32(v, 1, 256, &a->concurrency)) return cli_usage("eval", "--concurrency: 1..256");
        } else if (!strcmp(o, "--retries")) {
            if (!cli_parse_i32(v, 0, 100, &a->retries)) return cli_usage("eval", "--retries: 0..100");
        } else if (!strcmp(o, "--rps")) {
            if (!cli_parse_f32(v, 0.001f, 1e6f, &a->rps)) return cli_usage("eval", "--rps: requests per second > 0");
        } else if (!strcmp(o, "--timeout")) {
            if (!cli_parse_f32(v, 0.001f, 86400, &a->timeout)) return cli_usage("eval", "--timeout: seconds > 0");
        } else if (!strcmp(o, "--max-drop")) {
            if (!cli_parse_f32(v, 0, 100, &a->max_drop)) return cli_usage("eval", "--max-drop: percentage points, 0..100");
            a->has_max_drop = true;
        } else if (o[0] != '-' && !a->suite) {
            a->suite = o;
            continue;
        } else {
            return cli_usage("eval", "unknown option '%s'", o);
        }
        if (takes) i++;
    }
    if (!a->suite) return cli_usage("eval", "run needs a suite: slm eval run SUITE.jsonl --target NAME=…");
    if (!a->n_targets) return cli_usage("eval", "run needs at least one --target NAME=URL,model=M or NAME=MODEL.gguf");
    if (a->has_max_drop && !a->baseline) return cli_usage("eval", "--max-drop needs --baseline RUN");
    if (a->baseline && !a->has_max_drop) a->max_drop = 1.0f;
    return 0;
}

/* The options worth keeping with the run, as JSON. */
static char *run_params_json(const run_args *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON *tags = cJSON_AddArrayToObject(o, "tags");
    for (int i = 0; tags && i < a->n_tags; i++) cJSON_AddItemToArray(tags, cJSON_CreateString(a->tags[i]));
    if (a->limit) cJSON_AddNumberToObject(o, "limit", a->limit);
    cJSON *ts = cJSON_AddArrayToObject(o, "targets");
    /* specs without key material: key_env names a variable, never a key */
    for (int i = 0; ts && i < a->n_targets; i++) cJSON_AddItemToArray(ts, cJSON_CreateString(a->targets[i]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = s ? slm_strdup(s) : NULL;
    cJSON_free(s);
    return out;
}

static int eval_run(int argc, char **argv) {
    run_args a;
    int rc = parse_run_args(argc, argv, &a);
    if (rc) return rc;
    int n_cfg = a.n_targets + a.n_judges;
    slm_eval_target_cfg cfgs[2 * MAX_TARGETS];
    slm_eval_target *targets[2 * MAX_TARGETS] = { 0 };
    int n_open = 0;
    slm_eval_suite *suite = NULL;
    slm_eval_db *db = NULL;
    slm_eval_rundata cur = { 0 }, base = { 0 };
    slm_eval_summary scur = { 0 }, sbase = { 0 };
    slm_eval_gate gate = { 0 };
    bool have_gate = false;
    slm_progress *bars = NULL;
    bool *finished = NULL;
    char *params = NULL;
    slm_err err = { 0 };
    memset(cfgs, 0, sizeof cfgs);
    rc = 1;
    for (int i = 0; i < n_cfg; i++) {
        const char *spec = i < a.n_targets ? a.targets[i] : a.judges[i - a.n_targets];
        if (slm_eval_target_cfg_parse(spec, &cfgs[i], &err)) {
            for (int k = 0; k < i; k++) slm_eval_target_cfg_clear(&cfgs[k]);
            return cli_usage("eval", "%s", err.msg);
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(cfgs[k].name, cfgs[i].name)) {
                for (int j = 0; j <= i; j++) slm_eval_target_cfg_clear(&cfgs[j]);
                return cli_usage("eval", "two targets are named '%s'", cfgs[i].name);
            }
        if (!cfgs[i].concurrency) cfgs[i].concurrency = a.concurrency;
        if (cfgs[i].retries < 0) cfgs[i].retries = a.retries;
        if (cfgs[i].rps <= 0) cfgs[i].rps = a.rps;
        if (cfgs[i].timeout_s <= 0) cfgs[i].timeout_s = a.timeout;
    }
    for (int i = 0; i < a.n_prices; i++)
        if ((rc = parse_price(a.prices[i], cfgs, n_cfg))) goto done;
    rc = 1;
    if (slm_eval_suite_load(a.suite, &suite, &err)) {
        cli_fail("%s", err.msg);
        goto done;
    }
    slm_eval_suite_filter(suite, a.tags, a.n_tags, a.limit);
    if (!suite->n_cases) {
        cli_fail("%s: no case carries %s", a.suite, a.n_tags == 1 ? "that tag" : "any of those tags");
        goto done;
    }
    if (open_db(a.db, &db)) goto done;
    /* the baseline is checked before spending time on the run */
    char base_id[SLM_EVAL_RUN_ID_LEN + 1] = "";
    if (a.baseline && slm_eval_db_resolve(db, a.baseline, base_id, &err)) {
        cli_fail("--baseline: %s", err.msg);
        goto done;
    }
    for (; n_open < n_cfg; n_open++)
        if (slm_eval_target_open(&cfgs[n_open], &targets[n_open], &err)) {
            cli_fail("%s", err.msg);
            goto done;
        }
    if (!(params = run_params_json(&a)) || !(bars = slm_calloc((size_t)a.n_targets, sizeof *bars)) ||
        !(finished = slm_calloc((size_t)a.n_targets, sizeof *finished))) {
        cli_fail("out of memory");
        goto done;
    }
    progress_state ps = { .p = bars, .n = a.n_targets, .finished = finished, .targets = targets };
    for (int i = 0; i < a.n_targets; i++) {
        char label[48];
        snprintf(label, sizeof label, "%.40s", targets[i]->cfg.name);
        slm_progress_begin(&bars[i], label, "cases", suite->n_cases);
        if (i == 0) ps.tty = bars[0].enabled;
        if (i > 0) bars[i].enabled = false;
    }
    g_cancel = 0;
    void (*old)(int) = signal(SIGINT, on_sigint);
    slm_eval_run_opts ro = { .suite = suite, .targets = targets, .n_targets = a.n_targets, .judges = targets + a.n_targets,
                             .n_judges = a.n_judges, .db = db, .baseline = base_id[0] ? base_id : NULL, .run_params = params,
                             .cancel = &g_cancel, .progress = on_progress, .progress_ud = &ps };
    char id[SLM_EVAL_RUN_ID_LEN + 1];
    int run_rc = slm_eval_run(&ro, id, &err);
    signal(SIGINT, old);
    for (int i = 0; i < a.n_targets; i++)
        if (!finished[i]) slm_progress_end(&bars[i]);
    if (run_rc) {
        cli_fail("%s%s%s", err.msg, id[0] ? "; run " : "", id);
        goto done;
    }
    if (g_cancel) fprintf(stderr, "slm: interrupted: run %s keeps the cases finished so far; the rest are recorded as cancelled\n", id);
    if (load_summary(db, id, &cur, &scur)) goto done;
    if (base_id[0]) {
        if (load_summary(db, base_id, &base, &sbase)) goto done;
        if (slm_eval_gate_check(&scur, &sbase, a.max_drop, &gate, &err)) {
            cli_fail("%s", err.msg);
            goto done;
        }
        have_gate = true;
    }
    if (emit_reports(&scur, have_gate ? &gate : NULL, a.json, a.md, a.html)) goto done;
    rc = g_cancel ? 1 : 0;
    if (have_gate) {
        char *line = slm_eval_gate_line(&gate);
        fprintf(a.json ? stderr : stdout, "%s\n", line ? line : gate.fail ? "gate: FAIL" : "gate: PASS");
        slm_free(line);
        if (gate.fail) rc = 1;
    }
done:
    slm_eval_gate_clear(&gate);
    slm_eval_summary_clear(&scur);
    slm_eval_summary_clear(&sbase);
    slm_eval_rundata_clear(&cur);
    slm_eval_rundata_clear(&base);
    for (int i = 0; i < n_open; i++) slm_eval_target_free(targets[i]);
    for (int i = n_open; i < n_cfg; i++) slm_eval_target_cfg_clear(&cfgs[i]);
    slm_eval_suite_free(suite);
    slm_eval_db_close(db);
    slm_free(params);
    slm_free(bars);
    slm_free(finished);
    return rc;
}

/* ---- report / compare / runs ------------------------------------------------------------ */

static int eval_report(int argc, char **argv) {
    const char *ref = NULL, *dbp = DEFAULT_DB, *md = NULL, *html = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--json")) json = true;
        else if ((!strcmp(o, "--db") || !strcmp(o, "--md") || !strcmp(o, "--html")) && !v) return cli_usage("eval", "%s needs a value", o);
        else if (!strcmp(o, "--db")) dbp = argv[++i];
        else if (!strcmp(o, "--md")) md = argv[++i];
        else if (!strcmp(o, "--html")) html = argv[++i];
        else if (o[0] != '-' && !ref) ref = o;
        else return cli_usage("eval", "unknown option '%s'", o);
    }
    if (!ref) return cli_usage("eval", "report needs a run id (see slm eval runs), or \"latest\"");
    slm_eval_db *db = NULL;
    if (open_db(dbp, &db)) return 1;
    slm_eval_rundata d = { 0 };
    slm_eval_summary s = { 0 };
    int rc = load_summary(db, ref, &d, &s);
    if (!rc) rc = emit_reports(&s, NULL, json, md, html);
    slm_eval_summary_clear(&s);
    slm_eval_rundata_clear(&d);
    slm_eval_db_close(db);
    return rc;
}

static int eval_compare(int argc, char **argv) {
    const char *refs[2] = { 0 }, *dbp = DEFAULT_DB, *md = NULL;
    int n_refs = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--json")) json = true;
        else if ((!strcmp(o, "--db") || !strcmp(o, "--md")) && !v) return cli_usage("eval", "%s needs a value", o);
        else if (!strcmp(o, "--db")) dbp = argv[++i];
        else if (!strcmp(o, "--md")) md = argv[++i];
        else if (o[0] != '-' && n_refs < 2) refs[n_refs++] = o;
        else return cli_usage("eval", "unknown option '%s'", o);
    }
    if (n_refs != 2) return cli_usage("eval", "compare needs two runs: slm eval compare RUN_A RUN_B");
    slm_eval_db *db = NULL;
    if (open_db(dbp, &db)) return 1;
    slm_eval_rundata da = { 0 }, dbb = { 0 };
    slm_eval_summary sa = { 0 }, sb = { 0 };
    slm_eval_cmp cmp = { 0 };
    slm_err err = { 0 };
    int rc = load_summary(db, refs[0], &da, &sa);
    if (!rc) rc = load_summary(db, refs[1], &dbb, &sb);
    if (!rc && slm_eval_compare(&sa, &sb, &cmp, &err)) rc = cli_fail("%s", err.msg);
    if (!rc) {
        char *text = json ? slm_eval_cmp_json(&cmp) : slm_eval_cmp_render(&cmp, false);
        if (!text) rc = cli_fail("out of memory");
        else printf("%s%s", text, json ? "\n" : "");
        slm_free(text);
    }
    if (!rc && md) {
        char *m = slm_eval_cmp_render(&cmp, true);
        rc = m ? write_file(md, m) : cli_fail("out of memory");
        slm_free(m);
    }
    slm_eval_cmp_clear(&cmp);
    slm_eval_summary_clear(&sa);
    slm_eval_summary_clear(&sb);
    slm_eval_rundata_clear(&da);
    slm_eval_rundata_clear(&dbb);
    slm_eval_db_close(db);
    return rc;
}

static int eval_runs(int argc, char **argv) {
    const char *dbp = DEFAULT_DB;
    int32_t limit = 20;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--json")) json = true;
        else if (!strcmp(o, "--db") && v) dbp = argv[++i];
        else if ((!strcmp(o, "-n") || !strcmp(o, "--limit")) && v) {
            if (!cli_parse_i32(argv[++i], 1, 1 << 30, &limit)) return cli_usage("eval", "%s: a count >= 1", o);
        } else return cli_usage("eval", "unknown option '%s'", o);
    }
    slm_eval_db *db = NULL;
    if (open_db(dbp, &db)) return 1;
    slm_eval_db_run *runs = NULL;
    int n = 0, rc = 0;
    slm_err err = { 0 };
    if (slm_eval_db_list(db, limit, &runs, &n, &err)) {
        slm_eval_db_close(db);
        return cli_fail("%s", err.msg);
    }
    if (json) printf("[");
    else printf("%-12s  %-20s  %-24s %6s  %-11s  %s\n", "run", "started (UTC)", "suite", "cases", "status", "scores");
    for (int i = 0; i < n && !rc; i++) {
        slm_eval_rundata d = { 0 };
        slm_eval_summary s = { 0 };
        if ((rc = load_summary(db, runs[i].id, &d, &s))) break;
        char when[32];
        time_t t = (time_t)runs[i].started;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, json ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
        if (json) {
            char *obj = slm_eval_report_json(&s, NULL);
            printf("%s%s", i ? "," : "", obj ? obj : "null");
            slm_free(obj);
        } else {
            printf("%-12s  %-20s  %-24.24s %6d  %-11s ", runs[i].id, when, runs[i].suite_name, runs[i].n_cases,
                   runs[i].status ? runs[i].status : "");
            for (int k = 0; k < s.n_ts; k++)
                printf(" %s %.1f%s", s.ts[k].t->name, 100 * s.ts[k].score.mean, s.ts[k].n_errors ? "*" : "");
            printf("\n");
        }
        slm_eval_summary_clear(&s);
        slm_eval_rundata_clear(&d);
    }
    if (json) printf("]\n");
    else if (!n) printf("(no runs in %s)\n", dbp);
    slm_eval_db_runs_free(runs, n);
    slm_eval_db_close(db);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2) return cli_usage("eval", "give a subcommand: init, run, compare, report or runs");
    const char *sub = argv[1];
    if (!strcmp(sub, "init")) return eval_init(argc - 1, argv + 1);
    if (!strcmp(sub, "run")) return eval_run(argc - 1, argv + 1);
    if (!strcmp(sub, "compare")) return eval_compare(argc - 1, argv + 1);
    if (!strcmp(sub, "report")) return eval_report(argc - 1, argv + 1);
    if (!strcmp(sub, "runs")) return eval_runs(argc - 1, argv + 1);
    return cli_usage("eval", "unknown subcommand '%s' (init, run, compare, report, runs)", sub);
}
