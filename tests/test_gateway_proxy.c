/*
 * test_gateway_proxy.c — `slm gateway` end to end, as a client sees it.
 * Fake upstreams run inside this process (libmicrohttpd): they record what
 * they receive and fail on command (500, 429, a reset connection, a stall).
 * The gateway binary runs as a child process on a generated config, and
 * libcurl plays the client. Covered: routing by model and task, fallback,
 * retries, the circuit breaker, least-outstanding balancing, private data
 * (local_only never reaches the frontier, fails closed; redact masks),
 * ledger rows with costs, budgets, and no acknowledged row lost to kill -9.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw_test.h"
#include "helpers.h"

/* ---- fake upstreams ---------------------------------------------------------- */

enum { OK, E500, E429, RESET, STALL, SLOW };

typedef struct fake {
    char name[32];
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    int script[32], n_script, pos;   /* modes for the next requests, then OK    */
    int count;                       /* chat requests received                  */
    char last_body[8192];
    char last_auth[256];
    _Atomic bool down;               /* /health answers 503                     */
    _Atomic int slow_ms;
} fake;

typedef struct fbody { char buf[8192]; size_t len; } fbody;

static enum MHD_Result fake_req(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                const char *version, const char *up, size_t *up_size, void **st) {
    fake *f = cls;
    fbody *b = *st;
    if (!b) { *st = calloc(1, sizeof *b); return MHD_YES; }
    if (*up_size) {
        size_t n = *up_size < sizeof b->buf - 1 - b->len ? *up_size : sizeof b->buf - 1 - b->len;
        memcpy(b->buf + b->len, up, n);
        b->len += n;
        *up_size = 0;
        return MHD_YES;
    }
    int status = 200, mode = OK;
    char out[1024];
    if (!strcmp(url, "/health")) {
        snprintf(out, sizeof out, "{\"status\":\"ok\"}");
        status = atomic_load(&f->down) ? 503 : 200;
    } else {
        pthread_mutex_lock(&f->mu);
        if (f->pos < f->n_script) mode = f->script[f->pos++];
        f->count++;
        snprintf(f->last_body, sizeof f->last_body, "%s", b->buf);
        const char *a = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
        snprintf(f->last_auth, sizeof f->last_auth, "%s", a ? a : "");
        pthread_mutex_unlock(&f->mu);
        if (mode == RESET) return MHD_NO;
        if (mode == STALL) sleep(3);
        int slow = atomic_load(&f->slow_ms);
        if (slow) usleep((useconds_t)slow * 1000);
        status = mode == E500 ? 500 : mode == E429 ? 429 : 200;
        snprintf(out, sizeof out,
                 "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"%s\",\"choices\":[{\"index\":0,"
                 "\"message\":{\"role\":\"assistant\",\"content\":\"from %s\"},\"finish_reason\":\"stop\"}],"
                 "\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500,\"total_tokens\":1500}}",
                 f->name, f->name);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static void fake_done(void *cls, struct MHD_Connection *c, void **st, enum MHD_RequestTerminationCode t) {
    free(*st);
    *st = NULL;
}

static fake *fake_start(const char *name) {
    fake *f = calloc(1, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    pthread_mutex_init(&f->mu, NULL);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
                            NULL, fake_req, f, MHD_OPTION_NOTIFY_COMPLETED, fake_done, f, MHD_OPTION_END);
    cr_assert_not_null(f->d);
    f->port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return f;
}

static void fake_script(fake *f, int n, const int *modes) {
    pthread_mutex_lock(&f->mu);
    memcpy(f->script, modes, (size_t)n * sizeof *modes);
    f->n_script = n;
    f->pos = 0;
    pthread_mutex_unlock(&f->mu);
}

static int fake_count(fake *f) {
    pthread_mutex_lock(&f->mu);
    int n = f->count;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void fake_stop(fake *f) {
    MHD_stop_daemon(f->d);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---- the gateway process ------------------------------------------------------ */

typedef gwt_proc gwp;
typedef gwt_resp resp;

static gwp gw_start(const char *name, const char *yaml) {
    return gwt_start(name, yaml, "SLM_GW_TEST_KEY", "sk-upstream-secret-abcdef");
}
#define gw_stop gwt_stop

/* POSTs body to the gateway's chat endpoint. */
static resp post(int port, const char *key, const char *task, const char *body) {
    return gwt_post(port, "/v1/chat/completions", key, task, body);
}

static const char *chat(const char *model, const char *text) {
    static char b[4][2048];
    static int k;
    char *o = b[k++ & 3];
    snprintf(o, 2048, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", model, text);
    return o;
}

/* A config with one local tier (the given upstreams) and one frontier. */
static char *config(const char *extra_top, fake **local, int n_local, fake *frontier, const char *routes) {
    static char y[8192];
    int n = snprintf(y, sizeof y,
                     "listen: {host: 127.0.0.1, port: 0}\n"
                     "health: {interval_ms: 100, timeout_ms: 200}\n"
                     "%s"
                     "tiers:\n  - name: local\n    kind: local\n    cost_per_replica_hour: 3.6\n    upstreams:\n",
                     extra_top);
    for (int i = 0; i < n_local; i++)
        n += snprintf(y + n, sizeof y - (size_t)n,
                      "      - {name: %s, url: 'http://127.0.0.1:%d', model: small, timeout_ms: 1000}\n",
                      local[i]->name, local[i]->port);
    n += snprintf(y + n, sizeof y - (size_t)n,
                  "  - name: frontier\n    kind: frontier\n    price_in: 2\n    price_out: 10\n    upstreams:\n"
                  "      - {name: %s, url: 'http://127.0.0.1:%d/v1', model: big, api_key_env: SLM_GW_TEST_KEY}\n"
                  "routes:\n%s",
                  frontier->name, frontier->port, routes);
    return y;
}

static void init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
TestSuite(gw_proxy, .init = init);

Test(gw_proxy, routes_by_model_and_task) {
    fake *l = fake_start("loc"), *f = fake_start("front");
    gwp g = gw_start("route", config("", &l, 1, f,
                                     "  - {name: extract, match: {task: [extract]}, tiers: [local]}\n"
                                     "  - {name: big, match: {model: [gpt-big]}, tiers: [frontier]}\n"
                                     "  - {name: default, tiers: [local]}\n"));
    resp r = post(g.port, NULL, NULL, chat("gpt-big", "hello"));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.upstream, "front");
    cr_assert(strstr(f->last_body, "\"model\":\"big\""), "%s", f->last_body);
    cr_assert_str_eq(f->last_auth, "Bearer sk-upstream-secret-abcdef");
    r = post(g.port, NULL, "extract", chat("gpt-big", "hello"));
    cr_assert_str_eq(r.upstream, "loc", "X-SLM-Task wins: %s", r.body);
    r = post(g.port, NULL, NULL,
             "{\"model\":\"gpt-big\",\"metadata\":{\"task\":\"extract\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    cr_assert_str_eq(r.upstream, "loc", "metadata.task: %s", r.body);
    r = post(g.port, NULL, NULL, chat("other", "hello"));
    cr_assert_str_eq(r.upstream, "loc");
    r = post(g.port, NULL, NULL, "not json");
    cr_assert_eq(r.status, 400);
    gw_stop(&g, SIGTERM);
    char *log = th_read_file(g.log, NULL);
    cr_assert_null(strstr(log, "sk-upstream-secret"), "an upstream key was logged");
    free(log);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_proxy, falls_back_on_500_429_reset_and_timeout) {
    fake *l = fake_start("loc"), *f = fake_start("front");
    gwp g = gw_start("fallback", config("retry: {attempts: 0}\nbreaker: {failures: 100}\n", &l, 1, f,
                                        "  - {name: default, tiers: [local, frontier]}\n"));
    /* libcurl itself resends once when a reused connection dies before any
     * answer, so a reset is scripted twice */
    int modes[] = { E500, E429, RESET, STALL };
    for (int i = 0; i < 4; i++) {
        int m2[2] = { modes[i], modes[i] };
        fake_script(l, 2, m2);
        resp r = post(g.port, NULL, NULL, chat("m", "hi"));
        cr_assert_eq(r.status, 200, "case %d: %ld %s", i, r.status, r.body);
        cr_assert_str_eq(r.upstream, "front", "case %d", i);
        fake_script(l, 0, m2);
    }
    cr_assert_geq(fake_count(l), 4);
    resp r = post(g.port, NULL, NULL, chat("m", "hi"));
    cr_assert_str_eq(r.upstream, "loc");
    gw_stop(&g, SIGTERM);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_proxy, retries_after_backoff_then_502) {
    fake *l = fake_start("loc"), *f = fake_start("front");
    gwp g = gw_start("retry", config("retry: {attempts: 2, backoff_ms: 20, max_backoff_ms: 100}\nbreaker: {failures: 100}\n",
                                     &l, 1, f, "  - {name: default, tiers: [local]}\n"));
    int modes[] = { E500, E500 };
    fake_script(l, 2, modes);
    resp r = post(g.port, NULL, NULL, chat("m", "hi"));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(fake_count(l), 3);
    int all[] = { E500, E500, E500 };
    fake_script(l, 3, all);
    r = post(g.port, NULL, NULL, chat("m", "hi"));
    cr_assert_eq(r.status, 502, "%s", r.body);
    cr_assert(strstr(r.body, "HTTP 500"), "%s", r.body);
    gw_stop(&g, SIGTERM);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_proxy, breaker_opens_and_recovers) {
    fake *l = fake_start("loc"), *f = fake_start("front");
    gwp g = gw_start("breaker", config("retry: {attempts: 0}\nbreaker: {failures: 2, cooldown_ms: 400}\n", &l, 1, f,
                                       "  - {name: default, tiers: [local, frontier]}\n"));
    int modes[] = { E500, E500 };
    fake_script(l, 2, modes);
    post(g.port, NULL, NULL, chat("m", "a"));
    post(g.port, NULL, NULL, chat("m", "b"));
    cr_assert_eq(fake_count(l), 2);
    resp r = post(g.port, NULL, NULL, chat("m", "c"));   /* open: loc is not asked */
    cr_assert_str_eq(r.upstream, "front");
    cr_assert_eq(fake_count(l), 2);
    usleep(500000);                                      /* half-open probe succeeds */
    r = post(g.port, NULL, NULL, chat("m", "d"));
    cr_assert_str_eq(r.upstream, "loc");
    gw_stop(&g, SIGTERM);
    fake_stop(l);
    fake_stop(f);
}

typedef struct par { int port; resp r; } par;
static void *par_post(void *arg) {
    par *p = arg;
    p->r = post(p->port, NULL, NULL, chat("m", "x"));
    return NULL;
}

Test(gw_proxy, least_outstanding_spreads_concurrent_requests) {
    fake *a = fake_start("a"), *b = fake_start("b"), *f = fake_start("front");
    atomic_store(&a->slow_ms, 300);
    atomic_store(&b->slow_ms, 300);
    fake *ls[] = { a, b };
    gwp g = gw_start("balance", config("", ls, 2, f, "  - {name: default, tiers: [local]}\n"));
    pthread_t th[6];
    par ps[6];
    for (int i = 0; i < 6; i++) {
        ps[i].port = g.port;
        pthread_create(&th[i], NULL, par_post, &ps[i]);
        usleep(20000);
    }
    for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
    cr_assert_eq(fake_count(a), 3, "a got %d, b got %d", fake_count(a), fake_count(b));
    cr_assert_eq(fake_count(b), 3);
    /* an unhealthy replica gets nothing */
    atomic_store(&a->slow_ms, 0);
    atomic_store(&b->slow_ms, 0);
    atomic_store(&a->down, true);
    usleep(400000);
    for (int i = 0; i < 4; i++) cr_assert_str_eq(post(g.port, NULL, NULL, chat("m", "y")).upstream, "b");
    gw_stop(&g, SIGTERM);
    fake_stop(a);
    fake_stop(b);
    fake_stop(f);
}

Test(gw_proxy, private_data_stays_local_or_is_redacted) {
    fake *l = fake_start("loc"), *f = fake_start("front");
    char audit[600], top[700];
    snprintf(audit, sizeof audit, "%s", th_tmp("audit.log"));
    snprintf(top, sizeof top, "audit_log: %s\n", audit);
    gwp g = gw_start("private", config(top, &l, 1, f,
                                       "  - {name: pii, match: {model: [keep]}, tiers: [frontier, local], private_data: local_only}\n"
                                       "  - {name: red, match: {model: [red]}, tiers: [frontier], private_data: redact}\n"));
    resp r = post(g.port, NULL, NULL, chat("keep", "card 4111 1111 1111 1111 please"));
    cr_assert_str_eq(r.upstream, "loc", "%s", r.body);
    cr_assert_eq(fake_count(f), 0, "the frontier saw private data");
    r = post(g.port, NULL, NULL, chat("keep", "no secrets here"));
    cr_assert_str_eq(r.upstream, "front");
    r = post(g.port, NULL, NULL, chat("red", "mail bob@example.org now"));
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(f->last_body, "[REDACTED_email]") && !strstr(f->last_body, "bob@"), "%s", f->last_body);
    /* local down: fail closed */
    atomic_store(&l->down, true);
    usleep(400000);
    int before = fake_count(f);
    r = post(g.port, NULL, NULL, chat("keep", "ssn 078-05-1120"));
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert_eq(fake_count(f), before, "the frontier saw private data");
    gw_stop(&g, SIGTERM);
    char *log = th_read_file(audit, NULL);
    cr_assert(log && strstr(log, "\"decision\":\"local_only\"") && strstr(log, "\"private_data\":\"card\""), "%s", log);
    cr_assert(strstr(log, "\"decision\":\"redact\""), "%s", log);
    /* the data itself, not digits that a timestamp or a request id may hold */
    cr_assert(!strstr(log, "4111 1111 1111 1111") && !strstr(log, "078-05-1120") && !strstr(log, "bob@"),
              "the audit log holds the data: %s", log);
    free(log);
    fake_stop(l);
    fake_stop(f);
}

#define sql_num gwt_sql_num

Test(gw_proxy, ledger_costs_and_budgets) {
    fake *l = fake_start("loc"), *f = fake_start("front");
    char db[600], top[1200];
    snprintf(db, sizeof db, "%s", th_tmp("ledger.db"));
    snprintf(top, sizeof top,
             "ledger: {sqlite: %s}\ncounterfactual_tier: frontier\n"
             "teams:\n  - {name: alpha, keys: [k-alpha], budget: {daily: 0.015}}\n"
             "  - {name: beta, keys: [k-beta], budget: {daily: 0.015}}\n", db);
    gwp g = gw_start("ledger", config(top, &l, 1, f,
                                      "  - {name: hard, match: {model: [hard]}, tiers: [frontier]}\n"
                                      "  - {name: soft, tiers: [frontier, local], over_budget: local}\n"));
    cr_assert_eq(post(g.port, NULL, NULL, chat("hard", "x")).status, 401);
    cr_assert_eq(post(g.port, "wrong", NULL, chat("hard", "x")).status, 401);
    /* 1000 in × 2 + 500 out × 10 per million = 0.007 each */
    cr_assert_eq(post(g.port, "k-alpha", NULL, chat("hard", "x")).status, 200);
    cr_assert_eq(post(g.port, "k-alpha", NULL, chat("hard", "x")).status, 200);
    cr_assert_eq(post(g.port, "k-alpha", NULL, chat("hard", "x")).status, 200);  /* 0.014 < 0.015 */
    resp r = post(g.port, "k-alpha", NULL, chat("hard", "x"));
    cr_assert_eq(r.status, 429, "%s", r.body);
    cr_assert(strstr(r.body, "daily"), "%s", r.body);
    r = post(g.port, "k-alpha", NULL, chat("soft", "x"));                       /* over: local instead */
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.upstream, "loc");
    cr_assert_eq(post(g.port, "k-beta", NULL, chat("hard", "x")).status, 200);   /* other team unaffected */
    gw_stop(&g, SIGTERM);
    cr_assert_eq(sql_num(db, "SELECT count(*) FROM ledger"), 8);
    cr_assert_float_eq(sql_num(db, "SELECT sum(cost) FROM ledger WHERE team='alpha' AND tier='frontier'"), 0.021, 1e-9);
    cr_assert_float_eq(sql_num(db, "SELECT counterfactual_cost FROM ledger WHERE upstream='loc'"), 0.007, 1e-9);
    cr_assert(sql_num(db, "SELECT cost FROM ledger WHERE upstream='loc'") > 0, "local is not free");
    cr_assert_eq(sql_num(db, "SELECT count(*) FROM ledger WHERE status=429 AND team='alpha'"), 1);
    cr_assert_eq(sql_num(db, "SELECT count(*) FROM ledger WHERE status=401"), 2);
    cr_assert_eq(sql_num(db, "SELECT tokens_in + tokens_out FROM ledger WHERE team='beta'"), 1500);
    fake_stop(l);
    fake_stop(f);
}

typedef struct loader { int port; _Atomic bool stop; char ids[400][64]; int n; } loader;
static void *load_main(void *arg) {
    loader *ld = arg;
    while (!atomic_load(&ld->stop) && ld->n < 400) {
        resp r = post(ld->port, NULL, NULL, chat("m", "x"));
        if (r.status == 200 && r.id[0]) snprintf(ld->ids[ld->n++], 64, "%s", r.id);
    }
    return NULL;
}

Test(gw_proxy, kill_9_loses_no_acknowledged_row) {
    fake *l = fake_start("loc"), *f = fake_start("front");
    char db[600], top[700];
    snprintf(db, sizeof db, "%s", th_tmp("kill.db"));
    snprintf(top, sizeof top, "ledger: {sqlite: %s}\n", db);
    gwp g = gw_start("kill", config(top, &l, 1, f, "  - {name: default, tiers: [local]}\n"));
    static loader ld[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        ld[i].port = g.port;
        ld[i].n = 0;
        atomic_store(&ld[i].stop, false);
        pthread_create(&th[i], NULL, load_main, &ld[i]);
    }
    usleep(400000);
    gw_stop(&g, SIGKILL);
    for (int i = 0; i < 3; i++) { atomic_store(&ld[i].stop, true); pthread_join(th[i], NULL); }
    int total = 0;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < ld[i].n; k++) {
            char q[256];
            snprintf(q, sizeof q, "SELECT count(*) FROM ledger WHERE request_id='%s'", ld[i].ids[k]);
            cr_assert_eq(sql_num(db, q), 1, "acknowledged %s is missing", ld[i].ids[k]);
            total++;
        }
    cr_assert(total > 5, "only %d requests were acknowledged", total);
    fake_stop(l);
    fake_stop(f);
}
