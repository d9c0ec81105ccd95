/*
 * server.c — the server's life cycle. Signals first: SIGINT, SIGTERM and
 * SIGPIPE are blocked before any thread starts, so every thread inherits
 * the mask and the calling thread alone takes the first two with
 * sigtimedwait (no handler, no global flag). Then bind (so /health answers
 * 503 "loading" at once), load the model, start the scheduler (it runs a
 * warm-up pass), and mark the server ready. On a signal: refuse new API
 * requests with 503, wait up to --drain-timeout for in-flight ones, tell
 * any still running to give up, stop HTTP (joining its threads), free the
 * scheduler and the model.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve/srv.h"
#include "util/alloc.h"
#include "util/err.h"

slm_server_params slm_server_default_params(void) {
    return (slm_server_params){
        .host = "127.0.0.1", .port = 8080, .n_parallel = 4, .max_queue = 64,
        .drain_timeout_s = 30, .request_timeout_s = 600, .max_body = 4u << 20,
        .max_messages = 1024, .max_connections = 256,
    };
}

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t mix64(uint64_t x) {   /* splitmix64's finalizer */
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t srv_random(srv *s) {
    return mix64(s->salt ^ mix64(atomic_fetch_add(&s->counter, 1)));
}

/* The file's base name without ".gguf": the default served name. */
static char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
    return slm_strndup(b, n);
}

static int check_params(const slm_server_params *p, slm_err *err) {
    if (!p->model_path) return slm_err_set(err, SLM_EINVAL, "no model path");
    if (!p->host || !*p->host) return slm_err_set(err, SLM_EINVAL, "no host");
    if (p->port < 0 || p->port > 65535) return slm_err_set(err, SLM_EINVAL, "port %d out of range", p->port);
    if (p->n_parallel < 1 || p->max_queue < 0 || p->n_ctx < 0 || p->n_threads < 0 || p->max_body < 1 ||
        p->max_tokens_cap < 0 || p->max_messages < 0 || p->max_connections < 1 || p->drain_timeout_s < 0 ||
        p->request_timeout_s < 0 || p->n_api_keys < 0 || (p->n_api_keys > 0 && !p->api_keys))
        return slm_err_set(err, SLM_EINVAL, "invalid server parameters");
    for (int32_t i = 0; i < p->n_api_keys; i++)
        if (!p->api_keys[i] || !p->api_keys[i][0]) return slm_err_set(err, SLM_EINVAL, "an API key is empty");
    return 0;
}

/* True when SIGINT or SIGTERM arrived (waiting up to ms). */
static bool signalled(const sigset_t *set, int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    int sig;
    do sig = sigtimedwait(set, NULL, &ts);
    while (sig < 0 && errno == EINTR);
    return sig > 0;
}

static slm_chat_family pick_family(const srv *s, slm_err *err) {
    if (s->p.chat_template) {
        slm_chat_family f = slm_chat_family_from_name(s->p.chat_template);
        if (!f)
            slm_err_set(err, SLM_EINVAL,
                        "unknown chat template '%s' (llama2, llama3, chatml, phi3, mistral, gemma, zephyr)",
                        s->p.chat_template);
        return f;
    }
    slm_model_info in;
    slm_model_get_info(s->model, &in);
    slm_chat_family f = in.chat_template ? slm_chat_detect(in.chat_template) : SLM_CHAT_UNKNOWN;
    if (!f) {
        fprintf(stderr, "slm: warning: %s; chat requests use chatml (choose with --chat-template NAME)\n",
                in.chat_template ? "the model's chat template is not one slm recognises" : "the model has no chat template");
        f = SLM_CHAT_CHATML;
    }
    return f;
}

static int load(srv *s, const sigset_t *stop, slm_err *err) {
    slm_model_params mp = slm_model_default_params();
    int rc = slm_model_load(s->p.model_path, &mp, &s->model, err);
    if (rc) return rc;
    s->vocab = slm_model_vocab(s->model);
    slm_chat_family fam = pick_family(s, err);
    if (!fam) return SLM_EINVAL;
    if (signalled(stop, 0)) return SLM_ECANCELED;
    sched_params sp = sched_default_params();
    sp.n_parallel = s->p.n_parallel;
    sp.max_queue = s->p.max_queue;
    sp.n_ctx = s->p.n_ctx;
    sp.kv_mem = s->p.kv_mem;
    sp.n_threads = s->p.n_threads;
    sp.metrics = s->metrics;
    if ((rc = sched_new(s->model, &sp, &s->sched, err))) return rc;
    if ((rc = slm_constraint_vocab_new(s->vocab, &s->cvocab, err))) return rc;
    sched_stats st;
    sched_get_stats(s->sched, &st);
    slm_model_info in;
    slm_model_get_info(s->model, &in);
    snprintf(s->fingerprint, sizeof s->fingerprint, "fp_slm_%08llx",
             (unsigned long long)(mix64(in.file_size ^ (in.n_params << 1)) & 0xffffffffull));
    s->actx = (api_ctx){
        .model = s->model, .family = fam, .served_model = s->served, .strict_model = s->p.strict_model,
        .n_ctx = st.n_ctx, .max_tokens_cap = s->p.max_tokens_cap, .max_messages = s->p.max_messages,
        .keep_prompt_json = s->p.log_prompts,
    };
    fprintf(stderr, "slm: ready: model '%s' (%s, %s chat template), context %d, %d parallel, %d KV blocks of %d\n",
            s->served, in.arch, slm_chat_family_name(fam), st.n_ctx, st.n_parallel, st.kv_blocks_total,
            st.block_tokens);
    return 0;
}

static void drain(srv *s, const sigset_t *stop) {
    atomic_store(&s->state, SRV_DRAINING);
    fprintf(stderr, "slm: stopping: new requests get 503; waiting up to %.0f s for %lld in flight\n",
            s->p.drain_timeout_s, (long long)atomic_load(&s->inflight));
    double deadline = srv_now() + s->p.drain_timeout_s;
    while (atomic_load(&s->inflight) > 0 || (s->sched && !sched_idle(s->sched))) {
        if (srv_now() >= deadline) {
            fprintf(stderr, "slm: drain timeout: ending %lld requests\n", (long long)atomic_load(&s->inflight));
            break;
        }
        if (signalled(stop, 20)) {
            fprintf(stderr, "slm: second signal: ending %lld requests now\n", (long long)atomic_load(&s->inflight));
            break;
        }
    }
    atomic_store(&s->give_up, 1);
}

int slm_server_run(const slm_server_params *p, slm_err *err) {
    int rc = check_params(p, err);
    if (rc) return rc;
    sigset_t stop, block, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    block = stop;
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    srv *s = slm_calloc(1, sizeof *s);
    if (!s) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
        goto done;
    }
    s->p = *p;
    s->created = (int64_t)time(NULL);
    s->salt = mix64((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s ^
                    (uint64_t)(srv_now() * 1e9));
    atomic_init(&s->state, SRV_LOADING);
    s->served = p->alias ? slm_strdup(p->alias) : base_name(p->model_path);
    s->metrics = slm_metrics_new();
    if (!s->served || !s->metrics) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = http_start(s, err))) goto done;
    fprintf(stderr, "slm: listening on http://%s%s%s:%d (loading %s)\n", strchr(p->host, ':') ? "[" : "", p->host,
            strchr(p->host, ':') ? "]" : "", s->p.port, p->model_path);
    rc = load(s, &stop, err);
    if (rc == SLM_ECANCELED) {
        rc = 0;                          /* stopped while loading: a clean exit */
        goto done;
    }
    if (rc) goto done;
    atomic_store_explicit(&s->state, SRV_READY, memory_order_release);
    while (!signalled(&stop, 1000)) {}
    drain(s, &stop);
    rc = 0;
done:
    if (s) {
        atomic_store(&s->give_up, 1);
        http_stop(s);
        sched_free(s->sched);
        slm_constraint_vocab_free(s->cvocab);
        slm_model_free(s->model);
        slm_metrics_free(s->metrics);
        slm_free(s->served);
        slm_free(s);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) fprintf(stderr, "slm: stopped\n");
    return rc;
}
