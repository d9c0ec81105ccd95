/*
 * test_gateway_e2e.c — `slm gateway` in front of two real `slm serve`
 * replicas (a synth model) and a fake frontier provider, driven by the
 * official `openai` Node client (tests/js/gateway.e2e.mjs): chat,
 * completions, streams, routing to the frontier, private data kept local,
 * errors. Then one replica is killed (SIGKILL) and requests keep being
 * answered by the other; the frontier must never have seen the private
 * data; every answered request has its ledger row.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw_test.h"
#include "helpers.h"

/* ---- the fake frontier ----------------------------------------------------------- */

typedef struct frontier {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    char *seen; size_t seen_len;    /* every request body, concatenated        */
    int count;
} frontier;

typedef struct fbody { char buf[16384]; size_t len; } fbody;

static enum MHD_Result fr_req(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                              const char *version, const char *up, size_t *up_size, void **st) {
    frontier *f = cls;
    fbody *b = *st;
    if (!b) { *st = calloc(1, sizeof *b); return MHD_YES; }
    if (*up_size) {
        size_t n = *up_size < sizeof b->buf - 1 - b->len ? *up_size : sizeof b->buf - 1 - b->len;
        memcpy(b->buf + b->len, up, n);
        b->len += n;
        *up_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&f->mu);
    f->count++;
    f->seen = realloc(f->seen, f->seen_len + b->len + 2);
    memcpy(f->seen + f->seen_len, b->buf, b->len);
    f->seen_len += b->len;
    f->seen[f->seen_len++] = '\n';
    f->seen[f->seen_len] = 0;
    pthread_mutex_unlock(&f->mu);
    const char *out = "{\"id\":\"chatcmpl-f\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"big\","
                      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"from the frontier\"},"
                      "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,"
                      "\"total_tokens\":15}}";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(out), (void *)out, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(mc, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static void fr_done(void *cls, struct MHD_Connection *c, void **st, enum MHD_RequestTerminationCode t) {
    free(*st);
    *st = NULL;
}

/* ---- processes -------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct proc { pid_t pid; int port; char log[600]; } proc;

/* Runs `slm ARGS` with stderr to a log; waits for `marker` + port in it. */
static proc spawn(const char *name, const char *args, const char *marker) {
    proc p = { 0 };
    snprintf(p.log, sizeof p.log, "%s.log", th_tmp(name));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s %s 2>%s >/dev/null", th_slm_bin(), args, p.log);
    p.pid = fork();
    if (p.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = now_s();
    while (!p.port && now_s() - t0 < 30) {
        char *log = th_read_file(p.log, NULL);
        const char *at = log ? strstr(log, marker) : NULL;
        if (at) p.port = atoi(at + strlen(marker));
        int st;
        if (!p.port && waitpid(p.pid, &st, WNOHANG) == p.pid) cr_assert_fail("slm %s exited: %s", args, log ? log : "");
        free(log);
        if (!p.port) usleep(20000);
    }
    cr_assert(p.port > 0, "slm %s did not start", args);
    return p;
}

static void reap(proc *p, int sig) {
    kill(p->pid, sig);
    int st;
    waitpid(p->pid, &st, 0);
}

static gwt_resp post(int port, const char *body) {
    return gwt_post(port, "/v1/chat/completions", "sk-team-a", NULL, body);
}

static long sql_count(const char *db, const char *q) { return (long)gwt_sql_num(db, q); }

Test(gateway_e2e, openai_client_through_gateway_to_slm_serve, .timeout = 300) {
    if (th_run("command -v node >/dev/null 2>&1", NULL) != 0) {
        cr_skip_test("node is not installed: the OpenAI-client gateway test is skipped");
        return;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, "tests");
    char probe[1200];
    snprintf(probe, sizeof probe, "test -d %s/js/node_modules/openai", dir);
    cr_assert_eq(th_run(probe, NULL), 0, "tests/js/node_modules is missing: run `npm ci --prefix tests/js`");
    curl_global_init(CURL_GLOBAL_DEFAULT);

    const char *model = th_synth("llama", "f32", "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --vocab-size 300");
    char args[1400];
    snprintf(args, sizeof args, "serve -m %s --port 0 -t 1 --alias tiny", model);
    proc a = spawn("e2e-a", args, "listening on http://127.0.0.1:");
    proc b = spawn("e2e-b", args, "listening on http://127.0.0.1:");
    frontier fr = { 0 };
    pthread_mutex_init(&fr.mu, NULL);
    fr.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
                            NULL, fr_req, &fr, MHD_OPTION_NOTIFY_COMPLETED, fr_done, &fr, MHD_OPTION_END);
    cr_assert_not_null(fr.d);
    fr.port = MHD_get_daemon_info(fr.d, MHD_DAEMON_INFO_BIND_PORT)->port;

    char db[600], cfg[600], yaml[4096];
    snprintf(db, sizeof db, "%s", th_tmp("e2e-ledger.db"));
    unlink(db);
    snprintf(cfg, sizeof cfg, "%s", th_tmp("e2e.yaml"));
    snprintf(yaml, sizeof yaml,
             "listen: {host: 127.0.0.1, port: 0}\n"
             "health: {interval_ms: 200, timeout_ms: 500}\n"
             "retry: {attempts: 1, backoff_ms: 10}\n"
             "breaker: {failures: 2, cooldown_ms: 60000}\n"
             "ledger: {sqlite: %s}\n"
             "counterfactual_tier: frontier\n"
             "tiers:\n"
             "  - name: local\n    kind: local\n    cost_per_replica_hour: 1.0\n    upstreams:\n"
             "      - {name: a, url: 'http://127.0.0.1:%d', timeout_ms: 60000}\n"
             "      - {name: b, url: 'http://127.0.0.1:%d', timeout_ms: 60000}\n"
             "  - name: frontier\n    kind: frontier\n    price_in: 2.5\n    price_out: 10\n    upstreams:\n"
             "      - {name: f, url: 'http://127.0.0.1:%d/v1', model: big}\n"
             "routes:\n"
             "  - {name: private, match: {private_data: true}, tiers: [local], private_data: local_only}\n"
             "  - {name: big, match: {model: [gpt-big]}, tiers: [frontier]}\n"
             "  - {name: default, tiers: [local, frontier]}\n"
             "teams:\n  - {name: a, keys: [sk-team-a]}\n",
             db, a.port, b.port, fr.port);
    cr_assert_eq(th_write_file(cfg, yaml, strlen(yaml)), 0);
    char gargs[700];
    snprintf(gargs, sizeof gargs, "gateway -c %s", cfg);
    proc g = spawn("e2e-gw", gargs, "listening on port ");

    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "cd %s/js && GW_BASE_URL=http://127.0.0.1:%d/v1 node --test gateway.e2e.mjs 2>&1", dir,
             g.port);
    int rc = th_run(cmd, &out);
    cr_assert_eq(rc, 0, "node tests failed:\n%s", out);
    free(out);

    /* one replica dies: the other answers everything */
    reap(&a, SIGKILL);
    const char *body = "{\"model\":\"tiny\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    for (int i = 0; i < 6; i++) {
        gwt_resp r = post(g.port, body);
        cr_assert_eq(r.status, 200, "request %d after the kill: %ld", i, r.status);
        cr_assert_str_eq(r.upstream, "b", "request %d", i);
    }
    reap(&g, SIGTERM);
    pthread_mutex_lock(&fr.mu);
    cr_assert(fr.count >= 1, "the frontier route was not used");
    cr_assert_null(strstr(fr.seen, "jane.doe"), "private data reached the frontier");
    cr_assert_null(strstr(fr.seen, "4111"), "private data reached the frontier");
    pthread_mutex_unlock(&fr.mu);
    cr_assert_eq(sql_count(db, "SELECT count(*) FROM ledger WHERE status=200 AND upstream='f'"), fr.count);
    cr_assert_geq(sql_count(db, "SELECT count(*) FROM ledger WHERE status=200"), 6 + 6);
    reap(&b, SIGTERM);
    MHD_stop_daemon(fr.d);
    free(fr.seen);
}
