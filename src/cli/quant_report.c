/*
 * quant_report.c — `slm quant-report BASE -f TEXT --types …`: what each
 * quantization of a model costs and buys, in one table.
 *
 * For each type the base model is quantized with slm_quantize_file
 * (src/quant/) into a private temporary folder (or PREFIX-TYPE.gguf with
 * --keep), loaded, timed (prompt: --pp random tokens in one batch;
 * generation: --tg single-token decodes; quality/speed.c) and compared with
 * the base over the text exactly as `slm kld` compares (quality/kld.c: the
 * same windows, by default the second half of each --ctx window), then
 * unloaded and deleted, so at most the base and one quantized file exist
 * and are mapped at a time. The base is measured as the first row. The
 * rows, sorted by file size (largest first), go to the terminal as a table
 * and to PREFIX.md (Markdown) and PREFIX.json (an array of objects). A type
 * that fails is reported with its error and the others still run; the exit
 * status is then 1. Progress (quantize, then kld, per type) is drawn on a
 * terminal only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/ppl_opts.h"
#include "quality/kld.h"
#include "quality/speed.h"
#include "quant/quantize.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/progress.h"

#define MIB (1024.0 * 1024.0)
#define MAX_TYPES 32
#define DEFAULT_TYPES "q8_0,q6_k,q5_k_m,q4_k_m,q4_0,q3_k_m"

typedef struct qrow {
    char     name[32];          /* "Q4_K_M", or "F32 (base)"                      */
    bool     base;              /* the unquantized input                          */
    int32_t  ftype;             /* slm_ftype (−1 for the base)                    */
    char     path[4096];        /* the file measured                              */
    uint64_t file_size;         /* bytes on disk                                  */
    double   bpw;               /* tensor bits per weight                         */
    double   quantize_s;        /* time slm_quantize_file took                    */
    slm_speed speed;
    slm_kld_result kld;         /* against the base (base row: the base's PPL)    */
    bool     measured;          /* kld filled                                     */
    char     error[600];        /* "" when the row is complete                    */
} qrow;

typedef struct report {
    const char *base_path, *text_path, *imatrix, *prefix;
    slm_ppl_params pp;
    int32_t n_pp, n_tg, n_text_tokens;
    slm_ppl_plan plan;
    qrow rows[MAX_TYPES + 1];
    int n_rows;
} report;

typedef struct kld_view {
    slm_progress bar;
    int32_t n_ctx;
} kld_view;

static int on_window(void *ud, int32_t n_done, int32_t n_windows, const slm_kld_result *r) {
    kld_view *v = ud;
    (void)n_windows;
    (void)r;
    slm_progress_set(&v->bar, (int64_t)n_done * v->n_ctx);
    return 0;
}

/* Whether progress bars are drawn (util/progress.h's rule: a terminal, or
 * SLM_PROGRESS=1; SLM_PROGRESS=0 turns them off). */
static bool bars_on(void) {
    const char *e = getenv("SLM_PROGRESS");
    return e && *e ? e[0] == '1' : isatty(STDERR_FILENO);
}

static void set_error(qrow *row, const char *what, const slm_err *err) {
    snprintf(row->error, sizeof row->error, "%s: %s", what, err->msg[0] ? err->msg : slm_strerror(err->code));
}

/* Size, bits per weight and speed of the model at row->path. */
static int measure_file(report *rp, qrow *row, slm_model *m) {
    struct stat st;
    if (stat(row->path, &st) == 0) row->file_size = (uint64_t)st.st_size;
    slm_model_info in;
    slm_model_get_info(m, &in);
    row->bpw = in.n_params ? 8.0 * (double)in.tensor_bytes / (double)in.n_params : 0;
    slm_err err = { 0 };
    if (slm_speed_measure(m, rp->n_pp, rp->n_tg, rp->pp.n_threads, &row->speed, &err)) {
        set_error(row, "speed", &err);
        return 1;
    }
    return 0;
}

/* Quantizes, measures and compares one type; errors land in row->error. */
static void run_type(report *rp, slm_model *base, const int32_t *ids, qrow *row, int k, int n_types, const char *tmpdir,
                     bool keep, bool requant) {
    char name[sizeof row->name];
    memcpy(name, row->name, sizeof name);
    int n = keep ? snprintf(row->path, sizeof row->path, "%s-%s.gguf", rp->prefix, name)
                 : snprintf(row->path, sizeof row->path, "%s/%s.gguf", tmpdir, name);
    if (n < 0 || (size_t)n >= sizeof row->path) {
        snprintf(row->error, sizeof row->error, "the output path is too long");
        row->path[0] = 0;
        return;
    }
    slm_quantize_params qp = slm_quantize_default_params();
    qp.ftype = row->ftype;
    qp.imatrix_path = rp->imatrix;
    qp.n_threads = rp->pp.n_threads;
    qp.allow_requantize = requant;
    qp.progress = bars_on();
    if (qp.progress) fprintf(stderr, "[%d/%d] %s: quantizing\n", k, n_types, row->name);
    slm_quantize_stats qs;
    slm_err err = { 0 };
    slm_model *m = NULL;
    if (slm_quantize_file(rp->base_path, row->path, &qp, &qs, &err)) {
        set_error(row, "quantize", &err);
        goto done;
    }
    row->quantize_s = qs.seconds;
    if (!(m = cli_load_model(row->path, false))) {
        snprintf(row->error, sizeof row->error, "cannot load the quantized file");
        goto done;
    }
    if (measure_file(rp, row, m)) goto done;
    kld_view view = { .n_ctx = rp->plan.n_ctx };
    char label[48];
    snprintf(label, sizeof label, "[%d/%d] %s kld", k, n_types, row->name);
    slm_progress_begin(&view.bar, label, "tok", (int64_t)rp->plan.n_windows * rp->plan.n_ctx);
    int rc = slm_kld_run(base, m, ids, rp->n_text_tokens, &rp->pp, on_window, &view, &row->kld, &err);
    slm_progress_end(&view.bar);
    if (rc) {
        set_error(row, "kld", &err);
        goto done;
    }
    row->measured = true;
    if (view.bar.enabled)
        fprintf(stderr, "[%d/%d] %s: %.1f MiB, %.2f bpw, PPL %.4f (ratio %.5f), KLD %.6f, top-1 %.2f%%\n", k, n_types,
                row->name, (double)row->file_size / MIB, row->bpw, row->kld.quant.ppl, row->kld.ppl_ratio,
                row->kld.kld_mean, 100.0 * row->kld.top1_agreement);
done:
    slm_model_free(m);
    if (!keep) unlink(row->path);
}

static int by_size_desc(const void *a, const void *b) {
    const qrow *x = a, *y = b;
    if (x->base != y->base) return x->base ? -1 : 1;
    return (x->file_size < y->file_size) - (x->file_size > y->file_size);
}

static void print_table(FILE *f, const report *rp, bool markdown) {
    if (markdown) {
        fprintf(f, "# Quantization report: %s\n\n", rp->base_path);
        fprintf(f, "Text `%s`: %d tokens, %d windows of %d scoring %d tokens each (%lld scored); speed: prompt %d "
                   "tokens in one batch, generation %d single-token decodes%s%s.\n\n",
                rp->text_path, rp->n_text_tokens, rp->plan.n_windows, rp->plan.n_ctx, rp->plan.n_scored,
                (long long)rp->plan.n_windows * rp->plan.n_scored, rp->n_pp, rp->n_tg, rp->imatrix ? "; imatrix " : "",
                rp->imatrix ? rp->imatrix : "");
    }
    const char *hdr[] = { "type", "size MiB", "bits/w", "PPL", "PPL ratio", "KLD mean", "KLD p99", "top-1 %",
                          "Δp %", "pp t/s", "tg t/s" };
    if (markdown) {
        fprintf(f, "|");
        for (int i = 0; i < 11; i++) fprintf(f, " %s |", hdr[i]);
        fprintf(f, "\n| --- |");
        for (int i = 1; i < 11; i++) fprintf(f, " ---: |");
        fprintf(f, "\n");
    } else {
        fprintf(f, "%-12s %9s %7s %11s %9s %10s %10s %8s %8s %8s %8s\n", hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5],
                hdr[6], hdr[7], "dp %", hdr[9], hdr[10]);
    }
    for (int i = 0; i < rp->n_rows; i++) {
        const qrow *r = &rp->rows[i];
        if (r->error[0]) {
            if (markdown)
                fprintf(f, "| %s | failed: %s |||||||||\n", r->name, r->error);
            else
                fprintf(f, "%-12s failed: %s\n", r->name, r->error);
            continue;
        }
        const slm_kld_result *k = &r->kld;
        double ppl = r->base ? k->base.ppl : k->quant.ppl;
        if (markdown)
            fprintf(f, "| %s | %.2f | %.2f | %.4f | %.5f | %.6f | %.6f | %.2f | %+.3f | %.1f | %.2f |\n", r->name,
                    (double)r->file_size / MIB, r->bpw, ppl, r->base ? 1.0 : k->ppl_ratio, k->kld_mean, k->kld_p99,
                    100.0 * k->top1_agreement, 100.0 * k->dp_mean, r->speed.pp_tps, r->speed.tg_tps);
        else
            fprintf(f, "%-12s %9.2f %7.2f %11.4f %9.5f %10.6f %10.6f %8.2f %+8.3f %8.1f %8.2f\n", r->name,
                    (double)r->file_size / MIB, r->bpw, ppl, r->base ? 1.0 : k->ppl_ratio, k->kld_mean, k->kld_p99,
                    100.0 * k->top1_agreement, 100.0 * k->dp_mean, r->speed.pp_tps, r->speed.tg_tps);
    }
}

static char *report_json(const report *rp) {
    slm_jw w = { 0 };
    slm_jw_arr_open(&w);
    for (int i = 0; i < rp->n_rows; i++) {
        const qrow *r = &rp->rows[i];
        slm_jw_obj_open(&w);
        slm_jw_key(&w, "type");
        slm_jw_str(&w, r->base ? "base" : r->name);
        slm_jw_key(&w, "base");
        slm_jw_bool(&w, r->base);
        slm_jw_key(&w, "file");
        slm_jw_str(&w, r->path);
        slm_jw_key(&w, "size");
        slm_jw_int(&w, (int64_t)r->file_size);
        slm_jw_key(&w, "bpw");
        slm_jw_num(&w, r->bpw);
        slm_jw_key(&w, "pp_tps");
        slm_jw_num(&w, r->speed.pp_tps);
        slm_jw_key(&w, "tg_tps");
        slm_jw_num(&w, r->speed.tg_tps);
        if (!r->base) {
            slm_jw_key(&w, "quantize_s");
            slm_jw_num(&w, r->quantize_s);
        }
        if (r->measured) {
            slm_kld_result_json(&w, &r->kld);
        }
        slm_jw_key(&w, "ctx");
        slm_jw_int(&w, rp->plan.n_ctx);
        slm_jw_key(&w, "n_chunks");
        slm_jw_int(&w, rp->plan.n_windows);
        if (r->error[0]) {
            slm_jw_key(&w, "error");
            slm_jw_str(&w, r->error);
        }
        slm_jw_obj_close(&w);
    }
    slm_jw_arr_close(&w);
    return slm_jw_take(&w, NULL);
}

static int write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail("cannot create '%s': %s", path, strerror(errno));
    bool bad = fputs(s, f) < 0;
    if (fclose(f) || bad) return cli_fail("cannot write '%s'", path);
    return 0;
}

static int write_markdown(const char *path, const report *rp) {
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail("cannot create '%s': %s", path, strerror(errno));
    print_table(f, rp, true);
    bool bad = ferror(f);
    if (fclose(f) || bad) return cli_fail("cannot write '%s'", path);
    return 0;
}

/* Whether PREFIX.md and PREFIX.json can be written (checked before the long
 * run, so a typo in -o does not cost the whole report); prints the error. */
static bool writable_dir_of(const char *prefix) {
    char dir[4096];
    if (strlen(prefix) > 4096) {
        cli_fail("-o %.40s…: the prefix is longer than 4096 bytes", prefix);
        return false;
    }
    const char *slash = strrchr(prefix, '/');
    size_t n = slash ? (size_t)(slash - prefix) : 0;
    if (n >= sizeof dir) n = sizeof dir - 1;
    if (slash && n == 0) n = 1;   /* "/name": the root */
    memcpy(dir, slash ? prefix : ".", slash ? n : 1);
    dir[slash ? n : 1] = 0;
    if (access(dir, W_OK) != 0) {
        cli_fail("cannot write the report as '%s.md': folder '%s': %s", prefix, dir, strerror(errno));
        return false;
    }
    return true;
}

/* The most common tensor type of a model, for the base row's name. */
static const char *main_type(const slm_model *m) {
    slm_model_info in;
    slm_model_get_info(m, &in);
    int best = 0;
    for (int t = 1; t < 40; t++)
        if (in.type_count[t] > in.type_count[best]) best = t;
    return slm_type_name(best);
}

int cmd_quant_report(int argc, char **argv) {
    report *rp = slm_calloc(1, sizeof *rp);
    if (!rp) return cli_fail("out of memory");
    rp->pp = slm_ppl_default_params();
    rp->prefix = "quant-report";
    rp->n_pp = 256;
    rp->n_tg = 64;
    const char *types = DEFAULT_TYPES;
    bool keep = false, requant = false, ctx_given = false;
    int orc = 0;
    int rc = 2;
    char *text = NULL, *json = NULL, tmpdir[4096] = "";
    int32_t *ids = NULL;
    slm_model *base = NULL;
    slm_err err = { 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) { keep = true; continue; }
        if (!strcmp(a, "--allow-requantize")) { requant = true; continue; }
        if (a[0] != '-') {
            if (rp->base_path) { cli_usage("quant-report", "unexpected argument '%s'", a); goto done; }
            rp->base_path = a;
            continue;
        }
        if (!v) { cli_usage("quant-report", "unknown or incomplete option '%s'", a); goto done; }
        i++;
        if (!strcmp(a, "-f")) rp->text_path = v;
        else if (!strcmp(a, "--types")) types = v;
        else if (!strcmp(a, "--imatrix")) rp->imatrix = v;
        else if (!strcmp(a, "-o")) rp->prefix = v;
        else if (cli_ppl_option("quant-report", a, v, false, &rp->pp, &ctx_given, &orc)) {
            if (orc) goto done;
        } else if (!strcmp(a, "--pp")) {
            if (!cli_parse_i32(v, 0, 4096, &rp->n_pp)) { cli_usage("quant-report", "--pp wants 0..4096"); goto done; }
        } else if (!strcmp(a, "--tg")) {
            if (!cli_parse_i32(v, 0, 4096, &rp->n_tg)) { cli_usage("quant-report", "--tg wants 0..4096"); goto done; }
        } else { cli_usage("quant-report", "unknown option '%s'", a); goto done; }
    }
    if (!rp->base_path || !rp->text_path) { cli_usage("quant-report", "BASE.gguf and -f TEXT are required"); goto done; }

    /* the types, checked before anything runs */
    int n_types = 0;
    char *list = slm_strdup(types), *save = NULL;
    if (!list) { rc = cli_fail("out of memory"); goto done; }
    rp->rows[0].base = true;
    rp->rows[0].ftype = -1;
    for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int32_t ft;
        if (n_types == MAX_TYPES) { slm_free(list); cli_usage("quant-report", "more than %d types", MAX_TYPES); goto done; }
        if (slm_quantize_ftype_parse(t, &ft)) {
            cli_usage("quant-report", "unknown type '%s' in --types (q8_0 q6_k q5_k_m q5_k_s q4_k_m q4_k_s q4_0 q4_1 "
                                      "q5_0 q5_1 q3_k_l q3_k_m q3_k_s q2_k f16 bf16)", t);
            slm_free(list);
            goto done;
        }
        qrow *row = &rp->rows[1 + n_types++];
        row->ftype = ft;
        snprintf(row->name, sizeof row->name, "%s", slm_quantize_ftype_name(ft));
    }
    slm_free(list);
    if (n_types == 0) { cli_usage("quant-report", "--types names no type"); goto done; }
    rp->n_rows = 1 + n_types;

    rc = 1;
    if (!writable_dir_of(rp->prefix)) goto done;
    if (!(text = cli_read_file(rp->text_path, NULL))) goto done;
    if (!(base = cli_load_model(rp->base_path, false))) goto done;
    slm_model_info in;
    slm_model_get_info(base, &in);
    if (!ctx_given && in.n_ctx_train > 0 && in.n_ctx_train < rp->pp.n_ctx) rp->pp.n_ctx = in.n_ctx_train;
    if (cli_tokenize(slm_model_vocab(base), text, true, false, &ids, &rp->n_text_tokens)) goto done;
    if (slm_ppl_plan_init(&rp->plan, &rp->pp, rp->n_text_tokens, slm_ppl_model_bos(base), &err)) {
        cli_fail("%s: %s", rp->text_path, err.msg);
        goto done;
    }
    if (!keep) {
        const char *td = getenv("TMPDIR");
        int n = snprintf(tmpdir, sizeof tmpdir, "%s/slm-quant-report-XXXXXX", td && *td ? td : "/tmp");
        if (n < 0 || (size_t)n >= sizeof tmpdir || !mkdtemp(tmpdir)) {
            cli_fail("cannot create a temporary folder '%s': %s", tmpdir, strerror(errno));
            tmpdir[0] = 0;
            goto done;
        }
    }

    /* the base: size, speed; its PPL comes with the first comparison */
    qrow *b = &rp->rows[0];
    snprintf(b->name, sizeof b->name, "%s (base)", main_type(base));
    snprintf(b->path, sizeof b->path, "%s", rp->base_path);
    measure_file(rp, b, base);
    for (int k = 1; k <= n_types; k++) run_type(rp, base, ids, &rp->rows[k], k, n_types, tmpdir, keep, requant);
    for (int k = 1; k <= n_types; k++)
        if (rp->rows[k].measured) {
            const slm_kld_result *q = &rp->rows[k].kld;
            b->kld.base = b->kld.quant = q->base;
            b->kld.n_tokens = q->n_tokens;
            b->kld.n_windows = q->n_windows;
            b->kld.top1_agreement = 1.0;
            b->kld.ppl_ratio = 1.0;
            b->measured = true;
            break;
        }
    if (!b->measured && !b->error[0]) {
        /* every type failed: the base's own perplexity still goes in the report */
        slm_ppl_result pr;
        if (slm_ppl_run(base, ids, rp->n_text_tokens, &rp->pp, NULL, NULL, &pr, &err) == 0) {
            b->kld.base = b->kld.quant = pr;
            b->kld.n_tokens = pr.n_tokens;
            b->kld.top1_agreement = b->kld.ppl_ratio = 1.0;
            b->measured = true;
        } else {
            set_error(b, "perplexity", &err);
        }
    }

    qsort(rp->rows, (size_t)rp->n_rows, sizeof rp->rows[0], by_size_desc);
    print_table(stdout, rp, false);
    char path[4200];   /* the prefix is at most 4096 bytes (writable_dir_of) */
    snprintf(path, sizeof path, "%s.md", rp->prefix);
    if (write_markdown(path, rp)) goto done;
    if (!(json = report_json(rp))) { cli_fail("out of memory"); goto done; }
    snprintf(path, sizeof path, "%s.json", rp->prefix);
    size_t jl = strlen(json);
    char *jn = slm_realloc(json, jl + 2);
    if (!jn) { cli_fail("out of memory"); goto done; }
    json = jn;
    memcpy(json + jl, "\n", 2);
    if (write_text(path, json)) goto done;
    printf("wrote %s.md and %s.json\n", rp->prefix, rp->prefix);
    rc = 0;
    for (int i = 0; i < rp->n_rows; i++)
        if (rp->rows[i].error[0]) {
            cli_fail("%s: %s", rp->rows[i].name, rp->rows[i].error);
            rc = 1;
        }
done:
    if (tmpdir[0]) rmdir(tmpdir);
    slm_free(json);
    slm_free(text);
    slm_free(ids);
    slm_model_free(base);
    slm_free(rp);
    return rc;
}
