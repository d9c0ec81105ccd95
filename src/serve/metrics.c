/*
 * metrics.c — see metrics.h. Every number is a C11 atomic, so the HTTP
 * threads and the scheduler thread update them without locks; rendering
 * reads each one once (a scrape is a consistent-enough snapshot, as in any
 * Prometheus client).
 *
 * Requests are counted in a fixed table: one row per known endpoint (plus
 * "other" for every unknown path, so a scanner cannot grow the table) and
 * one column per HTTP status 100..599. Histogram sums are kept in
 * nanoseconds (an integer atomic) and rendered in seconds.
 */
#include "serve/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

static const char *const ENDPOINTS[] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "other",
};
#define N_ENDPOINTS (sizeof ENDPOINTS / sizeof ENDPOINTS[0])
#define STATUS_LO 100
#define N_STATUS 500

/* Bucket upper bounds in seconds, 5 ms to 60 s; +Inf is implicit. */
static const double BUCKETS[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

typedef struct hist {
    atomic_uint_fast64_t bucket[N_BUCKETS + 1]; /* non-cumulative; last is +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
} hist;

struct slm_metrics {
    atomic_uint_fast64_t requests[N_ENDPOINTS][N_STATUS]; /* by endpoint and status */
    atomic_uint_fast64_t ctr[SLM_CTR_COUNT];
    atomic_int_fast64_t  gauge[SLM_GAUGE_COUNT];
    hist                 hist[SLM_HIST_COUNT];
};

static const struct { const char *name, *help; } HIST_INFO[SLM_HIST_COUNT] = {
    [SLM_HIST_TTFT]  = { "slm_time_to_first_token_seconds", "Time from arrival to the first generated token." },
    [SLM_HIST_ITL]   = { "slm_inter_token_latency_seconds", "Time between consecutive generated tokens." },
    [SLM_HIST_QUEUE] = { "slm_queue_time_seconds", "Time a request waited before its first prefill step." },
    [SLM_HIST_E2E]   = { "slm_request_duration_seconds", "Time from arrival to the last byte of the response." },
};

static const struct { const char *name, *help; } CTR_INFO[SLM_CTR_COUNT] = {
    [SLM_CTR_PROMPT_TOKENS] = { "slm_prompt_tokens_total", "Prompt tokens processed (prefix-cache hits excluded)." },
    [SLM_CTR_CACHED_TOKENS] = { "slm_prompt_tokens_cached_total", "Prompt tokens served from the prefix cache." },
    [SLM_CTR_GEN_TOKENS]    = { "slm_generation_tokens_total", "Tokens generated." },
    [SLM_CTR_PREEMPTIONS]   = { "slm_preemptions_total", "Sequences paused because KV blocks ran out." },
};

static const struct { const char *name, *help; } GAUGE_INFO[SLM_GAUGE_COUNT] = {
    [SLM_GAUGE_QUEUE]    = { "slm_queue_depth", "Requests waiting to be admitted." },
    [SLM_GAUGE_ACTIVE]   = { "slm_active_sequences", "Sequences decoding." },
    [SLM_GAUGE_KV_USED]  = { "slm_kv_blocks_used", "KV cache blocks in use." },
    [SLM_GAUGE_KV_TOTAL] = { "slm_kv_blocks_total", "KV cache blocks in the pool." },
};

slm_metrics *slm_metrics_new(void) {
    slm_metrics *m = slm_malloc(sizeof *m);
    if (!m) return NULL;
    /* all-zero bytes are a valid zero for lock-free atomic integers */
    memset(m, 0, sizeof *m);
    return m;
}

void slm_metrics_free(slm_metrics *m) { slm_free(m); }

void slm_metrics_observe(slm_metrics *m, slm_hist h, double seconds) {
    if (!m || (unsigned)h >= SLM_HIST_COUNT || !(seconds >= 0) || !isfinite(seconds)) return;
    hist *x = &m->hist[h];
    size_t b = 0;
    while (b < N_BUCKETS && seconds > BUCKETS[b]) b++;
    atomic_fetch_add_explicit(&x->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&x->count, 1, memory_order_relaxed);
    double ns = seconds * 1e9;
    atomic_fetch_add_explicit(&x->sum_ns, ns < 1.8e19 ? (uint_fast64_t)ns : 0, memory_order_relaxed);
}

void slm_metrics_add(slm_metrics *m, slm_counter c, uint64_t n) {
    if (!m || (unsigned)c >= SLM_CTR_COUNT) return;
    atomic_fetch_add_explicit(&m->ctr[c], n, memory_order_relaxed);
}

void slm_metrics_set(slm_metrics *m, slm_gauge g, int64_t v) {
    if (!m || (unsigned)g >= SLM_GAUGE_COUNT) return;
    atomic_store_explicit(&m->gauge[g], v, memory_order_relaxed);
}

void slm_metrics_request(slm_metrics *m, const char *endpoint, int status) {
    if (!m || status < STATUS_LO || status >= STATUS_LO + N_STATUS) return;
    size_t e = N_ENDPOINTS - 1;
    for (size_t i = 0; endpoint && i + 1 < N_ENDPOINTS; i++)
        if (!strcmp(endpoint, ENDPOINTS[i])) { e = i; break; }
    atomic_fetch_add_explicit(&m->requests[e][status - STATUS_LO], 1, memory_order_relaxed);
}

typedef struct sbuf { char *p; size_t len, cap; bool oom; } sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = true; return; }
        if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
        size_t nc = b->cap * 2 + (size_t)n;
        char *np = slm_realloc(b->p, nc);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = nc;
    }
}

static void render_hist(sbuf *b, const char *name, const char *help, hist *x) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += atomic_load_explicit(&x->bucket[i], memory_order_relaxed);
        sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, BUCKETS[i], (unsigned long long)cum);
    }
    cum += atomic_load_explicit(&x->bucket[N_BUCKETS], memory_order_relaxed);
    /* the count is the +Inf bucket, so the two always agree */
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    sb_printf(b, "%s_sum %.6f\n", name, (double)atomic_load_explicit(&x->sum_ns, memory_order_relaxed) * 1e-9);
    sb_printf(b, "%s_count %llu\n", name, (unsigned long long)cum);
}

int slm_metrics_render(slm_metrics *m, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    if (!m) return SLM_EINVAL;
    sbuf b = { .cap = 8192 };
    if (!(b.p = slm_malloc(b.cap))) return SLM_ENOMEM;
    b.p[0] = 0;
    sb_printf(&b, "# HELP slm_requests_total HTTP requests by endpoint and status.\n"
                  "# TYPE slm_requests_total counter\n");
    for (size_t e = 0; e < N_ENDPOINTS; e++)
        for (int s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&m->requests[e][s], memory_order_relaxed);
            if (v)
                sb_printf(&b, "slm_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", ENDPOINTS[e],
                          s + STATUS_LO, (unsigned long long)v);
        }
    for (int c = 0; c < SLM_CTR_COUNT; c++)
        sb_printf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", CTR_INFO[c].name, CTR_INFO[c].help,
                  CTR_INFO[c].name, CTR_INFO[c].name,
                  (unsigned long long)atomic_load_explicit(&m->ctr[c], memory_order_relaxed));
    for (int g = 0; g < SLM_GAUGE_COUNT; g++)
        sb_printf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", GAUGE_INFO[g].name, GAUGE_INFO[g].help,
                  GAUGE_INFO[g].name, GAUGE_INFO[g].name,
                  (long long)atomic_load_explicit(&m->gauge[g], memory_order_relaxed));
    sb_printf(&b, "# HELP slm_memory_bytes Bytes allocated through slm's allocator.\n"
                  "# TYPE slm_memory_bytes gauge\nslm_memory_bytes %zu\n", slm_mem_used());
    for (int h = 0; h < SLM_HIST_COUNT; h++) render_hist(&b, HIST_INFO[h].name, HIST_INFO[h].help, &m->hist[h]);
    if (b.oom) {
        slm_free(b.p);
        return SLM_ENOMEM;
    }
    *out = b.p;
    if (len) *len = b.len;
    return 0;
}
