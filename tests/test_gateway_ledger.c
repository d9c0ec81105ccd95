/*
 * test_gateway_ledger.c — the gateway's ledger: the store API against
 * SQLite and PostgreSQL (append, budget sums, the spend cache, idempotent
 * schema creation, reconnecting after the server drops a connection,
 * passwords masked in errors), the ledger section of the config, and end
 * to end with `slm gateway` processes: two instances sharing one
 * PostgreSQL ledger enforce one team budget together, and a kill -9 in the
 * middle of a load loses no acknowledged row (SQLite and PostgreSQL).
 *
 * PostgreSQL tests need SLM_TEST_PG (a conninfo; .ci/run starts a
 * throwaway server and sets it) and are skipped without it. Each test works
 * in its own schema (dropped and made afresh; the conninfo's search_path
 * points at it), so tests can run in parallel on one database.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <math.h>
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
#include <unistd.h>

#include "gateway/config.h"
#include "gateway/ledger.h"
#include "gateway/proxy.h"
#include "gw_test.h"
#include "helpers.h"

/* ---- PostgreSQL helpers ---------------------------------------------------------- */

static const char *pg_base(void) {
    const char *b = getenv("SLM_TEST_PG");
    return b && b[0] ? b : NULL;
}

#define SKIP_WITHOUT_PG()                                                                              \
    do {                                                                                               \
        if (!pg_base()) {                                                                              \
            cr_skip_test("SLM_TEST_PG is not set (a PostgreSQL conninfo; .ci/run starts a server and " \
                         "sets it): PostgreSQL ledger test skipped");                                  \
            return;                                                                                    \
        }                                                                                              \
    } while (0)

/* The test conninfo with search_path set to schema (and application_name
 * to app when given); a static rotating buffer. */
static const char *pg_url(const char *schema, const char *app) {
    static char b[4][1024];
    static int k;
    char *o = b[k++ & 3];
    const char *base = pg_base();
    if (!strncmp(base, "postgres", 8))
        snprintf(o, 1024, "%s%coptions=-csearch_path%%3D%s%s%s", base, strchr(base, '?') ? '&' : '?', schema,
                 app ? "&application_name=" : "", app ? app : "");
    else
        snprintf(o, 1024, "%s options='-csearch_path=%s'%s%s", base, schema, app ? " application_name=" : "",
                 app ? app : "");
    return o;
}

/* Runs sql on a fresh connection to schema's conninfo; returns the first
 * value as a number (-1 on error, 0 when no row). */
static double pg_num(const char *schema, const char *sql) {
    PGconn *c = PQconnectdb(pg_url(schema, NULL));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    double v = -1;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtod(PQgetvalue(r, 0, 0), NULL) : 0;
    else if (st == PGRES_COMMAND_OK) v = 0;
    else cr_log_error("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* A fresh, empty schema for one test. */
static void pg_schema(const char *schema) {
    char sql[256];
    snprintf(sql, sizeof sql, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
             schema, schema);
    cr_assert_eq(pg_num(schema, sql), 0, "cannot make schema %s", schema);
}

#define sql_num gwt_sql_num

/* ---- the store API ----------------------------------------------------------------- */

/* 2024-03-15 12:00 UTC: a day and a month with room on both sides. */
#define NOW 1710504000.0

static slm_gw_ledger_row row_at(const char *id, const char *team, double t, double cost) {
    return (slm_gw_ledger_row){ .time = t, .request_id = id, .team = team, .route = "r", .tier = "frontier",
                                .upstream = "u", .model = "m", .tokens_in = 10, .tokens_out = 5, .latency_ms = 1.5,
                                .status = 200, .cost = cost, .counterfactual_cost = cost, .private_data = "" };
}

static void append_ok(slm_gw_ledger *l, slm_gw_ledger_row r) {
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_ledger_append(l, &r, &err), 0, "append %s: %s", r.request_id, err.msg);
}

static void spend_is(slm_gw_ledger *l, const char *team, double day, double month) {
    double d = -1, m = -1;
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_ledger_spend(l, team, NOW, &d, &m, &err), 0, "%s", err.msg);
    cr_assert_float_eq(d, day, 1e-9, "%s day: %g, want %g", team, d, day);
    cr_assert_float_eq(m, month, 1e-9, "%s month: %g, want %g", team, m, month);
}

static slm_gw_ledger *open_store(const char *sqlite_path, const char *pg, int cache_ms) {
    slm_gw_ledger_params p = slm_gw_ledger_default_params();
    p.sqlite_path = sqlite_path;
    p.postgres = pg;
    p.spend_cache_ms = cache_ms;
    slm_gw_ledger *l = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_ledger_open(&p, &l, &err), 0, "open: %s", err.msg);
    return l;
}

/* What every store must do: rows in and out of the periods, the cache
 * advanced by appends, a second handle (another instance) on the same
 * store, shadow rows. */
static void store_contract(const char *sqlite_path, const char *pg) {
    slm_gw_ledger *a = open_store(sqlite_path, pg, -1);
    append_ok(a, row_at("r1", "alpha", NOW, 1.0));
    append_ok(a, row_at("r2", "alpha", NOW - 86400, 2.0));      /* same month, day before */
    append_ok(a, row_at("r3", "alpha", NOW - 40 * 86400, 4.0)); /* month before           */
    append_ok(a, row_at("r4", "beta", NOW, 8.0));
    spend_is(a, "alpha", 1.0, 3.0);
    spend_is(a, "beta", 8.0, 8.0);
    spend_is(a, "nobody", 0, 0);
    append_ok(a, row_at("r5", "alpha", NOW + 60, 0.5));         /* advances the cache      */
    spend_is(a, "alpha", 1.5, 3.5);
    /* another instance: a handle that re-reads on every check, and one that
     * trusts what it read for a minute */
    slm_gw_ledger *b = open_store(sqlite_path, pg, 0), *c = open_store(sqlite_path, pg, 60000);
    spend_is(b, "alpha", 1.5, 3.5);
    spend_is(c, "alpha", 1.5, 3.5);
    append_ok(a, row_at("r6", "alpha", NOW + 120, 0.25));
    spend_is(b, "alpha", 1.75, 3.75);
    spend_is(c, "alpha", 1.5, 3.5);                              /* cached: not yet seen    */
    append_ok(c, row_at("r7", "alpha", NOW + 180, 0.125));       /* its own rows it sees    */
    spend_is(c, "alpha", 1.625, 3.625);
    spend_is(b, "alpha", 1.875, 3.875);
    slm_gw_shadow_row sr = { .time = NOW, .request_id = "r1", .route = "r", .primary_tier = "local",
                             .candidate_tier = "frontier", .primary_output = "a", .candidate_output = "b",
                             .exact = 0, .normalized = NAN, .json_fields = NAN, .tokens_in = -1, .tokens_out = 3,
                             .latency_ms = 2, .cost = 0.01, .status = 200 };
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_ledger_append_shadow(a, &sr, &err), 0, "%s", err.msg);
    slm_gw_ledger_close(b);
    slm_gw_ledger_close(c);
    slm_gw_ledger_close(a);
    /* reopening finds the schema and the rows */
    a = open_store(sqlite_path, pg, -1);
    spend_is(a, "alpha", 1.875, 3.875);
    slm_gw_ledger_close(a);
}

static void init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
TestSuite(gw_ledger, .init = init);

Test(gw_ledger, sqlite_store) {
    char db[600];
    snprintf(db, sizeof db, "%s", th_tmp("store.db"));
    store_contract(db, NULL);
    cr_assert_eq(sql_num(db, "SELECT count(*) FROM ledger"), 7);
    cr_assert_eq(sql_num(db, "SELECT count(*) FROM shadow WHERE normalized IS NULL AND tokens_in IS NULL"), 1);
}

Test(gw_ledger, postgres_store) {
    SKIP_WITHOUT_PG();
    pg_schema("t_store");
    store_contract(NULL, pg_url("t_store", NULL));
    cr_assert_eq(pg_num("t_store", "SELECT count(*) FROM ledger"), 7);
    cr_assert_eq(pg_num("t_store", "SELECT count(*) FROM ledger WHERE request_id = 'r1' AND tokens_in = 10 AND"
                                   " tokens_out = 5 AND status = 200 AND model = 'm' AND task IS NULL"), 1);
    cr_assert_eq(pg_num("t_store", "SELECT count(*) FROM shadow WHERE normalized IS NULL AND tokens_in IS NULL"), 1);
    /* created once: one version row, the budget index in place */
    cr_assert_eq(pg_num("t_store", "SELECT count(*) FROM ledger_schema"), 1);
    cr_assert_eq(pg_num("t_store", "SELECT max(version) FROM ledger_schema"), 1);
    cr_assert_eq(pg_num("t_store", "SELECT count(*) FROM pg_indexes WHERE schemaname = 't_store' AND"
                                   " indexname = 'ledger_team_time'"), 1);
}

typedef struct opener { const char *url; int rc; } opener;
static void *open_main(void *arg) {
    opener *o = arg;
    slm_gw_ledger_params p = slm_gw_ledger_default_params();
    p.postgres = o->url;
    slm_gw_ledger *l = NULL;
    slm_err err = { 0 };
    o->rc = slm_gw_ledger_open(&p, &l, &err);
    if (o->rc) cr_log_error("open: %s", err.msg);
    slm_gw_ledger_close(l);
    return NULL;
}

Test(gw_ledger, postgres_schema_creation_is_idempotent_and_race_free) {
    SKIP_WITHOUT_PG();
    pg_schema("t_race");
    pthread_t th[4];
    opener o[4];
    for (int i = 0; i < 4; i++) {
        o[i] = (opener){ pg_url("t_race", NULL), -1 };
        pthread_create(&th[i], NULL, open_main, &o[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(o[i].rc, 0, "instance %d could not open", i);
    }
    cr_assert_eq(pg_num("t_race", "SELECT count(*) FROM ledger_schema"), 1);
    /* a schema from a newer slm is refused */
    pg_num("t_race", "UPDATE ledger_schema SET version = 99");
    slm_gw_ledger_params p = slm_gw_ledger_default_params();
    p.postgres = pg_url("t_race", NULL);
    slm_gw_ledger *l = NULL;
    slm_err err = { 0 };
    cr_assert_neq(slm_gw_ledger_open(&p, &l, &err), 0);
    cr_assert(strstr(err.msg, "schema version 99"), "%s", err.msg);
}

Test(gw_ledger, postgres_reconnects_after_the_connection_drops) {
    SKIP_WITHOUT_PG();
    pg_schema("t_reconnect");
    slm_gw_ledger_params p = slm_gw_ledger_default_params();
    p.postgres = pg_url("t_reconnect", "slm_t_reconnect");
    p.pool_size = 1;
    p.spend_cache_ms = 0;
    slm_gw_ledger *l = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_ledger_open(&p, &l, &err), 0, "%s", err.msg);
    append_ok(l, row_at("a1", "alpha", NOW, 1.0));
    const char *kill_sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                           " WHERE application_name = 'slm_t_reconnect'";
    cr_assert_eq(pg_num("t_reconnect", kill_sql), 1, "the ledger's connection was not found");
    append_ok(l, row_at("a2", "alpha", NOW, 2.0));               /* on a new connection    */
    cr_assert_eq(pg_num("t_reconnect", kill_sql), 1);
    spend_is(l, "alpha", 3.0, 3.0);                              /* the sums reconnect too */
    cr_assert_eq(pg_num("t_reconnect", "SELECT count(*) FROM ledger"), 2);
    slm_gw_ledger_close(l);
}

Test(gw_ledger, postgres_errors_never_show_the_password) {
    /* needs no server: nothing listens on port 1 */
    const char *bad[] = {
        "postgresql://slm:Sup3rSecretPw@127.0.0.1:1/db?connect_timeout=2",
        "host=127.0.0.1 port=1 user=slm password=Sup3rSecretPw dbname=db",
        "host=127.0.0.1 password='Sup3rSecretPw",                  /* does not parse          */
        "postgresql://slm:Sup3rSecretPw@127.0.0.1:1/db?nosuchoption=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        slm_gw_ledger_params p = slm_gw_ledger_default_params();
        p.postgres = bad[i];
        slm_gw_ledger *l = NULL;
        slm_err err = { 0 };
        cr_assert_neq(slm_gw_ledger_open(&p, &l, &err), 0, "case %zu opened", i);
        cr_assert_null(l);
        cr_assert(err.msg[0], "case %zu: no message", i);
        cr_assert_null(strstr(err.msg, "Sup3rSecret"), "case %zu shows the password: %s", i, err.msg);
    }
}

/* ---- config ------------------------------------------------------------------------ */

#define TIERS "tiers:\n  - name: l\n    kind: local\n    upstreams:\n      - {name: a, url: 'http://127.0.0.1:1'}\n" \
              "routes:\n  - {name: r, tiers: [l]}\n"

static int parse(const char *ledger, slm_gw_config **c, slm_err *err) {
    char text[2048];
    snprintf(text, sizeof text, "listen: {port: 0}\n%s" TIERS, ledger);
    *c = NULL;
    return slm_gw_config_parse(text, strlen(text), "t.yaml", c, err);
}

static void refuse(const char *ledger, const char *want) {
    slm_gw_config *c;
    slm_err err = { 0 };
    cr_assert_neq(parse(ledger, &c, &err), 0, "accepted: %s", ledger);
    cr_assert(strstr(err.msg, want), "message \"%s\" lacks \"%s\"", err.msg, want);
    cr_assert_null(strstr(err.msg, "Sup3rSecret"), "the password is in \"%s\"", err.msg);
}

Test(gw_ledger, config_ledger_section) {
    slm_gw_config *c;
    slm_err err = { 0 };
    cr_assert_eq(parse("ledger: {sqlite: /tmp/x.db}\n", &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c->ledger_path, "/tmp/x.db");
    cr_assert_null(c->ledger_postgres);
    cr_assert_eq(c->ledger_spend_cache_ms, -1);
    slm_gw_config_free(c);
    cr_assert_eq(parse("ledger: {postgres: 'postgresql://u@127.0.0.1:5/db', spend_cache_ms: 250, pool_size: 8}\n", &c,
                       &err), 0, "%s", err.msg);
    cr_assert_str_eq(c->ledger_postgres, "postgresql://u@127.0.0.1:5/db");
    cr_assert_eq(c->ledger_spend_cache_ms, 250);
    cr_assert_eq(c->ledger_pool_size, 8);
    slm_gw_config_free(c);
    setenv("SLM_T_LEDGER_PG", "host=127.0.0.1 password=Sup3rSecretPw dbname=x", 1);
    cr_assert_eq(parse("ledger: {postgres_env: SLM_T_LEDGER_PG}\n", &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c->ledger_postgres, "host=127.0.0.1 password=Sup3rSecretPw dbname=x");
    cr_assert_eq(c->ledger_pool_size, 4);
    slm_gw_config_free(c);

    refuse("ledger: {sqlite: /tmp/x.db, postgres: 'postgresql://h/db'}\n", "t.yaml:2: ledger: give only one of");
    refuse("ledger: {spend_cache_ms: 5}\n", "t.yaml:2: ledger: give one of sqlite, postgres, postgres_env");
    refuse("ledger: {postgres_env: SLM_T_NOT_SET_ANYWHERE}\n",
           "t.yaml:2: ledger.postgres_env: environment variable SLM_T_NOT_SET_ANYWHERE is not set");
    refuse("ledger:\n  sqlite: /tmp/x.db\n  pool_size: 3\n", "t.yaml:4: ledger.pool_size: only a postgres ledger");
    refuse("ledger: {postgres: 'postgresql://h/db', spend_cache_ms: -1}\n", "ledger.spend_cache_ms: -1 is out of range");
    refuse("ledger: {postgres: 'postgresql://h/db', pool: 3}\n", "unknown key 'pool'");
    refuse("ledger:\n  postgres: \"host=h password='Sup3rSecretPw\"\n",
           "t.yaml:3: ledger.postgres: not a valid PostgreSQL connection string");
    setenv("SLM_T_LEDGER_PG", "postgresql://u:Sup3rSecretPw@h/db?nosuch=1", 1);
    refuse("ledger: {postgres_env: SLM_T_LEDGER_PG}\n", "ledger.postgres_env: not a valid PostgreSQL connection string");
}

/* ---- end to end: gateway processes and fake upstreams ----------------------------------- */

typedef struct fake {
    char name[32];
    struct MHD_Daemon *d;
    int port;
    _Atomic int slow_ms;
} fake;

typedef struct fbody { size_t len; } fbody;

static enum MHD_Result fake_req(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                const char *version, const char *up, size_t *up_size, void **st) {
    fake *f = cls;
    if (!*st) { *st = calloc(1, sizeof(fbody)); return MHD_YES; }
    if (*up_size) { *up_size = 0; return MHD_YES; }
    char out[1024];
    if (!strcmp(url, "/health")) {
        snprintf(out, sizeof out, "{\"status\":\"ok\"}");
    } else {
        int slow = atomic_load(&f->slow_ms);
        if (slow) usleep((useconds_t)slow * 1000);
        snprintf(out, sizeof out,
                 "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"%s\",\"choices\":[{\"index\":0,"
                 "\"message\":{\"role\":\"assistant\",\"content\":\"from %s\"},\"finish_reason\":\"stop\"}],"
                 "\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500,\"total_tokens\":1500}}",
                 f->name, f->name);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(mc, 200, r);
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
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
                            NULL, fake_req, f, MHD_OPTION_NOTIFY_COMPLETED, fake_done, f, MHD_OPTION_END);
    cr_assert_not_null(f->d);
    f->port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return f;
}

static void fake_stop(fake *f) {
    MHD_stop_daemon(f->d);
    free(f);
}

typedef gwt_proc gwp;

/* Starts `slm gateway` on yaml; SLM_GW_TEST_PG holds the PostgreSQL test
 * conninfo for configs that name it with postgres_env. */
static gwp gw_start(const char *name, const char *yaml, const char *pg_env) {
    return gwt_start(name, yaml, pg_env ? "SLM_GW_TEST_PG" : NULL, pg_env);
}
#define gw_stop gwt_stop

/* The log holds no part of the test conninfo's password. */
static void log_is_clean(const gwp *g) {
    char *log = th_read_file(g->log, NULL);
    cr_assert_not_null(log);
    cr_assert_null(strstr(log, "slm-test-pw"), "the gateway logged the ledger password: %s", log);
    free(log);
}

typedef gwt_resp resp;

static resp post(int port, const char *key, const char *model) {
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
    return gwt_post(port, "/v1/chat/completions", key, NULL, body);
}

/* One local tier (loc) and one frontier (front: 1000 in at 2 + 500 out at
 * 10 per million = 0.007 a request). */
static char *config(const char *top, const fake *loc, const fake *front, const char *routes) {
    static char y[8192];
    snprintf(y, sizeof y,
             "listen: {host: 127.0.0.1, port: 0}\n"
             "health: {interval_ms: 100, timeout_ms: 200}\n"
             "%s"
             "tiers:\n"
             "  - name: local\n    kind: local\n    cost_per_replica_hour: 3.6\n    upstreams:\n"
             "      - {name: loc, url: 'http://127.0.0.1:%d', model: small, timeout_ms: 5000}\n"
             "  - name: frontier\n    kind: frontier\n    price_in: 2\n    price_out: 10\n    upstreams:\n"
             "      - {name: front, url: 'http://127.0.0.1:%d/v1', model: big, health_check: false}\n"
             "routes:\n%s",
             top, loc->port, front->port, routes);
    return y;
}

typedef struct loader {
    int port;
    const char *key;
    int max;                      /* requests to send (stop also ends it)  */
    _Atomic bool stop;
    char ids[400][64];
    _Atomic int n_ok;             /* answered 200, ids[0..n_ok)             */
    int n_sent;
} loader;

static void *load_main(void *arg) {
    loader *ld = arg;
    while (!atomic_load(&ld->stop) && ld->n_sent < ld->max) {
        resp r = post(ld->port, ld->key, "m");
        ld->n_sent++;
        if (r.status == 200 && r.id[0]) {
            snprintf(ld->ids[atomic_load(&ld->n_ok)], 64, "%s", r.id);
            atomic_fetch_add(&ld->n_ok, 1);
        }
    }
    return NULL;
}

Test(gw_ledger, two_gateways_share_a_postgres_ledger_and_its_budgets) {
    SKIP_WITHOUT_PG();
    pg_schema("t_two");
    fake *loc = fake_start("loc"), *front = fake_start("front");
    char top[1600];
    snprintf(top, sizeof top,
             "ledger: {postgres_env: SLM_GW_TEST_PG, spend_cache_ms: 0, pool_size: 3}\n"
             "counterfactual_tier: frontier\n"
             "teams:\n  - {name: alpha, keys: [k-alpha], budget: {daily: 0.05}}\n"
             "  - {name: beta, keys: [k-beta]}\n");
    const char *y = config(top, loc, front,
                           "  - {name: hard, match: {model: [hard]}, tiers: [frontier]}\n"
                           "  - {name: soft, tiers: [frontier, local], over_budget: local}\n");
    const char *url = pg_url("t_two", NULL);
    gwp g[2] = { gw_start("two-a", y, url), gw_start("two-b", y, url) };

    /* concurrent load through both: one row per acknowledged response */
    static loader ld[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&ld[i], 0, sizeof ld[i]);
        ld[i].port = g[i & 1].port;
        ld[i].key = "k-beta";
        ld[i].max = 8;
        pthread_create(&th[i], NULL, load_main, &ld[i]);
    }
    int acked = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        acked += ld[i].n_ok;
    }
    cr_assert_eq(acked, 32, "only %d of 32 requests were answered", acked);
    cr_assert_eq(pg_num("t_two", "SELECT count(*) FROM ledger WHERE team = 'beta'"), acked);
    cr_assert_eq(pg_num("t_two", "SELECT count(DISTINCT request_id) FROM ledger"), acked);

    /* alpha's daily budget of 0.05 holds across both: 0.007 a request, so
     * the 8th (at 0.049 spent) is the last admitted, whichever instance
     * served the others; a per-process view would admit 8 on each */
    int ok = 0, first_429 = -1;
    for (int i = 0; i < 30 && first_429 < 0; i++) {
        resp r = post(g[i & 1].port, "k-alpha", "hard");
        if (r.status == 200) ok++;
        else if (r.status == 429) first_429 = i;
        else cr_assert_fail("request %d: %ld %s", i, r.status, r.body);
    }
    cr_assert_eq(ok, 8, "%d requests were admitted before the first 429", ok);
    for (int k = 0; k < 2; k++) {
        resp r = post(g[k].port, "k-alpha", "hard");
        cr_assert_eq(r.status, 429, "instance %d: %ld %s", k, r.status, r.body);
        cr_assert(strstr(r.body, "daily"), "%s", r.body);
        r = post(g[k].port, "k-alpha", "soft");                 /* over_budget: local     */
        cr_assert_eq(r.status, 200, "instance %d: %ld %s", k, r.status, r.body);
        cr_assert_str_eq(r.upstream, "loc", "instance %d", k);
        cr_assert_eq(post(g[k].port, "k-beta", "hard").status, 200, "beta has no budget");
    }
    cr_assert_float_eq(pg_num("t_two", "SELECT sum(cost) FROM ledger WHERE team = 'alpha' AND tier = 'frontier'"),
                       8 * 0.007, 1e-9);
    cr_assert_eq(pg_num("t_two", "SELECT count(*) FROM ledger WHERE team = 'alpha' AND status = 429"), 3);
    for (int k = 0; k < 2; k++) {
        gw_stop(&g[k], SIGTERM);
        log_is_clean(&g[k]);
    }
    fake_stop(loc);
    fake_stop(front);
}

/* Load on a gateway, SIGKILL in the middle: every 200 has its row.
 * present(id) says whether the ledger holds the row. */
static void kill_9_under_load(const char *name, const char *top, const char *pg_env, bool (*present)(const char *)) {
    fake *loc = fake_start("loc"), *front = fake_start("front");
    atomic_store(&loc->slow_ms, 2);
    gwp g = gw_start(name, config(top, loc, front, "  - {name: default, tiers: [local]}\n"), pg_env);
    static loader ld[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        memset(&ld[i], 0, sizeof ld[i]);
        ld[i].port = g.port;
        ld[i].max = 400;
        pthread_create(&th[i], NULL, load_main, &ld[i]);
    }
    /* kill once some requests are through, with more in flight */
    for (int i = 0; i < 200 && atomic_load(&ld[0].n_ok) + atomic_load(&ld[1].n_ok) + atomic_load(&ld[2].n_ok) < 20; i++)
        usleep(10000);
    usleep(100000);
    gw_stop(&g, SIGKILL);
    for (int i = 0; i < 3; i++) {
        atomic_store(&ld[i].stop, true);
        pthread_join(th[i], NULL);
    }
    int total = 0;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < ld[i].n_ok; k++, total++)
            cr_assert(present(ld[i].ids[k]), "acknowledged %s is missing from the ledger", ld[i].ids[k]);
    cr_assert(total > 5, "only %d requests were acknowledged", total);
    fake_stop(loc);
    fake_stop(front);
}

static char kill_db[600];
static bool in_sqlite(const char *id) {
    char q[256];
    snprintf(q, sizeof q, "SELECT count(*) FROM ledger WHERE request_id = '%s'", id);
    return sql_num(kill_db, q) == 1;
}

Test(gw_ledger, kill_9_loses_no_acknowledged_row_sqlite) {
    snprintf(kill_db, sizeof kill_db, "%s", th_tmp("kill.db"));
    char top[800];
    snprintf(top, sizeof top, "ledger: {sqlite: %s}\n", kill_db);
    kill_9_under_load("kill-sqlite", top, NULL, in_sqlite);
}

static bool in_postgres(const char *id) {
    char q[256];
    snprintf(q, sizeof q, "SELECT count(*) FROM ledger WHERE request_id = '%s'", id);
    return pg_num("t_kill", q) == 1;
}

Test(gw_ledger, kill_9_loses_no_acknowledged_row_postgres) {
    SKIP_WITHOUT_PG();
    pg_schema("t_kill");
    char top[1400];
    snprintf(top, sizeof top, "ledger: {postgres: \"%s\"}\n", pg_url("t_kill", NULL));
    kill_9_under_load("kill-pg", top, NULL, in_postgres);
}

Test(gw_ledger, a_failing_postgres_ledger_answers_503) {
    SKIP_WITHOUT_PG();
    pg_schema("t_fail");
    fake *loc = fake_start("loc"), *front = fake_start("front");
    char top[1600];
    snprintf(top, sizeof top,
             "ledger: {postgres_env: SLM_GW_TEST_PG}\n"
             "teams:\n  - {name: alpha, keys: [k-alpha], budget: {daily: 10}}\n  - {name: beta, keys: [k-beta]}\n");
    gwp g = gw_start("fail", config(top, loc, front, "  - {name: default, tiers: [local]}\n"), pg_url("t_fail", NULL));
    cr_assert_eq(post(g.port, "k-beta", "m").status, 200);
    cr_assert_eq(pg_num("t_fail", "SET client_min_messages = warning; DROP TABLE ledger CASCADE"), 0);
    /* never acknowledged without its row: the write fails, so does the budget check */
    resp r = post(g.port, "k-beta", "m");
    cr_assert_eq(r.status, 503, "%ld %s", r.status, r.body);
    cr_assert(strstr(r.body, "ledger"), "%s", r.body);
    r = post(g.port, "k-alpha", "m");
    cr_assert_eq(r.status, 503, "%ld %s", r.status, r.body);
    cr_assert_null(strstr(r.body, "slm-test-pw"), "%s", r.body);
    gw_stop(&g, SIGTERM);
    log_is_clean(&g);
    fake_stop(loc);
    fake_stop(front);
}
