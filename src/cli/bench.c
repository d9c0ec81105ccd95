/*
 * bench.c — `slm bench`: prompt-processing and generation speed, the way
 * llama-bench measures them, so the two can be compared on one file.
 *
 *   pp N: N prompt tokens decoded as one batch into an empty cache
 *   tg N: N tokens decoded one at a time from an empty cache
 *
 * Each test runs once as a warm-up and then -r times; the figures are the
 * mean and standard deviation of tokens per second over the repetitions,
 * plus the process's peak resident memory.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "util/alloc.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One run: seconds for pp (n_tok in one batch) or tg (n_tok steps). */
static int one_run(slm_ctx *ctx, int32_t n_vocab, int32_t n_tok, bool pp, float *logits, double *secs) {
    int32_t toks[4096];
    uint64_t s = 12345;
    for (int32_t i = 0; i < n_tok && i < 4096; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((s >> 33) % (uint64_t)n_vocab);
    }
    slm_kv_truncate(ctx, 0, 0);
    slm_err err = { 0 };
    double t0 = now_s();
    if (pp) {
        if (slm_decode(ctx, 0, toks, n_tok, 0, false, logits, &err)) return cli_fail("%s", err.msg);
    } else {
        for (int32_t i = 0; i < n_tok; i++)
            if (slm_decode(ctx, 0, &toks[i], 1, i, false, logits, &err)) return cli_fail("%s", err.msg);
    }
    *secs = now_s() - t0;
    return 0;
}

typedef struct result { const char *test; int32_t n; double mean, sd; } result;

int cmd_bench(int argc, char **argv) {
    const char *path = NULL;
    int32_t n_pp = 512, n_tg = 128, threads = 0, reps = 3;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!v) return cli_usage("bench", "unknown or incomplete option '%s'", a);
        i++;
        if (!strcmp(a, "-m")) path = v;
        else if (!strcmp(a, "-p")) { if (!cli_parse_i32(v, 0, 4096, &n_pp)) return cli_usage("bench", "-p wants 0..4096"); }
        else if (!strcmp(a, "-n")) { if (!cli_parse_i32(v, 0, 4096, &n_tg)) return cli_usage("bench", "-n wants 0..4096"); }
        else if (!strcmp(a, "-t")) { if (!cli_parse_i32(v, 1, 512, &threads)) return cli_usage("bench", "-t wants 1..512"); }
        else if (!strcmp(a, "-r")) { if (!cli_parse_i32(v, 1, 1000, &reps)) return cli_usage("bench", "-r wants 1..1000"); }
        else return cli_usage("bench", "unknown option '%s'", a);
    }
    if (!path) return cli_usage("bench", "-m MODEL is required");
    double t_load = now_s();
    slm_model_params mp = slm_model_default_params();
    slm_model *m = NULL;
    slm_err err = { 0 };
    if (slm_model_load(path, &mp, &m, &err)) return cli_fail("%s: %s", path, err.msg);
    slm_model_info in;
    slm_model_get_info(m, &in);
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_threads = threads;
    cp.n_ctx = (n_pp > n_tg ? n_pp : n_tg) + 1;
    cp.n_batch = n_pp > 0 ? n_pp : 1;
    slm_ctx *ctx = NULL;
    float *logits = slm_malloc((size_t)in.n_vocab * sizeof *logits);
    int rc = 1;
    if (!logits || slm_ctx_new(m, &cp, &ctx, &err)) { cli_fail("%s", logits ? err.msg : "out of memory"); goto done; }
    double load_s = now_s() - t_load;
    result res[2];
    int n_res = 0;
    for (int k = 0; k < 2; k++) {
        bool pp = k == 0;
        int32_t n = pp ? n_pp : n_tg;
        if (n <= 0) continue;
        double secs, sum = 0, sum2 = 0;
        if (one_run(ctx, in.n_vocab, n, pp, logits, &secs)) goto done; /* warm-up */
        for (int32_t r = 0; r < reps; r++) {
            if (one_run(ctx, in.n_vocab, n, pp, logits, &secs)) goto done;
            double tps = n / secs;
            sum += tps;
            sum2 += tps * tps;
        }
        double mean = sum / reps, var = reps > 1 ? (sum2 - sum * sum / reps) / (reps - 1) : 0;
        res[n_res++] = (result){ pp ? "pp" : "tg", n, mean, var > 0 ? sqrt(var) : 0 };
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = ru.ru_maxrss / 1024.0;
    int nth = threads ? threads : 0;
    if (json) {
        printf("{\"model\":\"%s\",\"arch\":\"%s\",\"size\":%llu,\"n_params\":%llu,\"threads\":%d,\"load_s\":%.3f,"
               "\"peak_rss_mib\":%.1f,\"results\":[",
               path, in.arch, (unsigned long long)in.file_size, (unsigned long long)in.n_params, nth, load_s, rss_mib);
        for (int i = 0; i < n_res; i++)
            printf("%s{\"test\":\"%s%d\",\"n\":%d,\"tps\":%.3f,\"tps_sd\":%.3f}", i ? "," : "", res[i].test, res[i].n,
                   res[i].n, res[i].mean, res[i].sd);
        printf("]}\n");
    } else {
        printf("| model | size | params | threads | test | t/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (int i = 0; i < n_res; i++)
            printf("| %s %s | %.2f MiB | %.2f M | %d | %s%d | %.2f ± %.2f |\n", in.arch, in.name, in.file_size / 1048576.0,
                   in.n_params / 1e6, nth, res[i].test, res[i].n, res[i].mean, res[i].sd);
        printf("peak RSS %.1f MiB, load + context %.3f s\n", rss_mib, load_s);
    }
    rc = 0;
done:
    slm_free(logits);
    slm_ctx_free(ctx);
    slm_model_free(m);
    return rc;
}
