/*
 * ledger_pg.c — the PostgreSQL ledger store (libpq), for several gateway
 * instances sharing one ledger.
 *
 * Connections: a small pool (pool_size, default 4) rather than one
 * connection under a mutex. Every append waits for its commit to be
 * flushed (synchronous_commit on: the client's 200 implies a durable row),
 * a network round trip plus a WAL flush; one connection would queue every
 * request of the instance behind that, while a pool lets concurrent
 * requests commit together (PostgreSQL groups their flushes). The first
 * connection is made at open, the rest on demand. A thread checks out a
 * connection for one statement and returns it; the pool's mutex is a leaf
 * held only for that.
 *
 * Schema: created if missing at open, in one transaction under an advisory
 * lock (two instances starting at once do not race): tables ledger (the
 * same columns as the SQLite ledger), shadow, and ledger_schema (the schema
 * version; a newer version than this build knows is an error). The index
 * on (team, time) INCLUDE (cost) makes the budget sums index-only scans;
 * the one on request_id serves lookups by X-SLM-Request-Id and the retry
 * below. Tables are created in the connection's search_path.
 *
 * Failures: a statement that fails on a broken connection (server
 * restarted, connection killed) is retried once on a fresh connection. An
 * append is retried as "insert unless a row with this request id and time
 * is there", since the first attempt may have committed before the
 * connection broke. Any other failure is returned (the request gets 503).
 * The conninfo is a secret: it is never printed, and the password in it is
 * masked in every message this file writes.
 */
#include "gateway/ledger.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/proxy.h"
#include "util/alloc.h"
#include "util/err.h"

#define SCHEMA_VERSION 1
#define MAX_SECRETS 4

typedef struct pg_store {
    char *conninfo;                 /* a secret: wiped on close              */
    char *secrets[MAX_SECRETS];     /* passwords in it, masked in messages   */
    int n_secrets;
    pthread_mutex_t mu;             /* guards free_ids, n_free; leaf lock    */
    pthread_cond_t cv;              /* signalled when a connection returns   */
    PGconn **conns;                 /* NULL: not connected (yet or any more) */
    int n_conns;
    int *free_ids, n_free;          /* connections not checked out           */
} pg_store;

static const char SCHEMA_SQL[] =
    "BEGIN;"
    "SELECT pg_advisory_xact_lock(7236828150340198258);"
    "CREATE TABLE IF NOT EXISTS ledger_schema (version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ledger ("
    " id bigserial PRIMARY KEY, time double precision NOT NULL, request_id text NOT NULL, team text, route text,"
    " task text, tier text, upstream text, model text, tokens_in bigint, tokens_out bigint,"
    " latency_ms double precision, status integer, cost double precision, counterfactual_cost double precision,"
    " error text, private_data text);"
    "ALTER TABLE ledger ADD COLUMN IF NOT EXISTS cascade text;"
    "CREATE INDEX IF NOT EXISTS ledger_team_time ON ledger (team, time) INCLUDE (cost);"
    "CREATE INDEX IF NOT EXISTS ledger_request_id ON ledger (request_id);"
    "CREATE TABLE IF NOT EXISTS shadow ("
    " id bigserial PRIMARY KEY, time double precision NOT NULL, request_id text NOT NULL, route text, task text,"
    " primary_tier text, primary_upstream text, candidate_tier text, candidate_upstream text,"
    " primary_output text, candidate_output text, exact double precision, normalized double precision,"
    " json_fields double precision, tokens_in bigint, tokens_out bigint, latency_ms double precision,"
    " cost double precision, status integer, error text);"
    "CREATE INDEX IF NOT EXISTS shadow_route_time ON shadow (route, time);"
    "INSERT INTO ledger_schema (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM ledger_schema);"
    "COMMIT;"
    "SELECT max(version) FROM ledger_schema;";

/* Per session: never weaker than synchronous_commit on (only 'off' is not
 * durable), and a statement timeout unless the server or conninfo sets one. */
static const char SESSION_SQL[] =
    "SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off';"
    "SELECT set_config('statement_timeout', '15s', false) WHERE current_setting('statement_timeout') = '0';";

#define LEDGER_COLS "time,request_id,team,route,task,tier,upstream,model,tokens_in,tokens_out,latency_ms,status," \
                    "cost,counterfactual_cost,error,private_data,cascade"
#define LEDGER_PARAMS "$1::float8,$2::text,$3::text,$4::text,$5::text,$6::text,$7::text,$8::text,$9::int8," \
                      "$10::int8,$11::float8,$12::int4,$13::float8,$14::float8,$15::text,$16::text,$17::text"
#define SHADOW_COLS "time,request_id,route,task,primary_tier,primary_upstream,candidate_tier,candidate_upstream," \
                    "primary_output,candidate_output,exact,normalized,json_fields,tokens_in,tokens_out,latency_ms," \
                    "cost,status,error"
#define SHADOW_PARAMS "$1::float8,$2::text,$3::text,$4::text,$5::text,$6::text,$7::text,$8::text,$9::text," \
                      "$10::text,$11::float8,$12::float8,$13::float8,$14::int8,$15::int8,$16::float8,$17::float8," \
                      "$18::int4,$19::text"

static const struct { const char *name, *sql; int n_params; } STMTS[] = {
    { "slm_ins", "INSERT INTO ledger (" LEDGER_COLS ") VALUES (" LEDGER_PARAMS ")", 17 },
    { "slm_ins_absent",
      "INSERT INTO ledger (" LEDGER_COLS ") SELECT " LEDGER_PARAMS
      " WHERE NOT EXISTS (SELECT 1 FROM ledger WHERE request_id = $2::text AND time = $1::float8)", 17 },
    { "slm_shadow", "INSERT INTO shadow (" SHADOW_COLS ") VALUES (" SHADOW_PARAMS ")", 19 },
    { "slm_shadow_absent",
      "INSERT INTO shadow (" SHADOW_COLS ") SELECT " SHADOW_PARAMS
      " WHERE NOT EXISTS (SELECT 1 FROM shadow WHERE request_id = $2::text AND time = $1::float8)", 19 },
    { "slm_sum", "SELECT COALESCE(SUM(cost), 0) FROM ledger WHERE team = $1::text AND time >= $2::float8", 2 },
    { "slm_sum2",
      "SELECT COALESCE(SUM(cost) FILTER (WHERE time >= $2::float8), 0), COALESCE(SUM(cost), 0)"
      " FROM ledger WHERE team = $1::text AND time >= $3::float8", 3 },
};

/* ---- secrets ------------------------------------------------------------------ */

static void wipe(char *s) {
    if (!s) return;
    volatile char *p = s;
    while (*p) *p++ = 0;
    slm_free(s);
}

static void add_secret(char **out, int *n, const char *s, size_t len) {
    if (!len || *n >= MAX_SECRETS) return;
    for (int i = 0; i < *n; i++)
        if (strlen(out[i]) == len && !memcmp(out[i], s, len)) return;
    char *c = slm_strndup(s, len);
    if (c) out[(*n)++] = c;
}

/* The passwords in conninfo: what libpq parses, and, textually (also when
 * it does not parse), the user:PASSWORD@ of a URI and every password=VALUE. */
static int collect_secrets(const char *ci, char **out) {
    int n = 0;
    PQconninfoOption *opts = PQconninfoParse(ci, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val) add_secret(out, &n, o->val, strlen(o->val));
    PQconninfoFree(opts);
    const char *p = strstr(ci, "://");
    if (p) {
        p += 3;
        size_t hl = strcspn(p, "/?");
        const char *at = NULL;
        for (const char *q = p; q < p + hl; q++)
            if (*q == '@') at = q;
        const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
        if (colon) add_secret(out, &n, colon + 1, (size_t)(at - colon - 1));
    }
    for (const char *q = ci; (q = strstr(q, "password")); q += 8) {
        const char *v = q + 8;
        while (*v == ' ' || *v == '\t') v++;
        if (*v != '=') continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        if (*v == '\'') {
            const char *e = v + 1;
            while (*e && *e != '\'') e += e[0] == '\\' && e[1] ? 2 : 1;
            add_secret(out, &n, v + 1, (size_t)(e - v - 1));
        } else {
            add_secret(out, &n, v, strcspn(v, " \t\n&"));
        }
    }
    return n;
}

static bool is_word(char ch) { return isalnum((unsigned char)ch) || ch == '_'; }

/* Copies msg into out (cap bytes), whitespace runs folded to one space and
 * every secret replaced by "***" (a secret shorter than 4 characters only
 * where it stands alone, so that "x" does not mangle every word). */
static void masked(char *out, size_t cap, const char *msg, char *const *secrets, int n_secrets) {
    size_t o = 0;
    bool space = false;
    for (const char *p = msg; *p && o + 1 < cap;) {
        size_t hit = 0;
        for (int i = 0; i < n_secrets && !hit; i++) {
            size_t k = strlen(secrets[i]);
            if (k && !strncmp(p, secrets[i], k) &&
                (k >= 4 || ((p == msg || !is_word(p[-1])) && !is_word(p[k]))))
                hit = k;
        }
        if (hit) {
            for (const char *r = "***"; *r && o + 1 < cap; r++) out[o++] = *r;
            p += hit;
            space = false;
        } else if (isspace((unsigned char)*p)) {
            if (!space && o) out[o++] = ' ';
            space = true;
            p++;
        } else {
            out[o++] = *p++;
            space = false;
        }
    }
    while (o && out[o - 1] == ' ') o--;
    out[o] = 0;
}

int slm_gw_ledger_pg_check(const char *conninfo, char *msg, size_t cap) {
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    if (opts) {
        PQconninfoFree(opts);
        return 0;
    }
    char *secrets[MAX_SECRETS];
    int n = collect_secrets(conninfo, secrets);
    masked(msg, cap, errmsg ? errmsg : "out of memory", secrets, n);
    for (int i = 0; i < n; i++) wipe(secrets[i]);
    PQfreemem(errmsg);
    return SLM_EINVAL;
}

/* Sets err to "ledger (postgres): what: <libpq's message, masked>". */
static int pg_fail(const pg_store *s, const char *what, const char *msg, slm_err *err) {
    char m[400];
    masked(m, sizeof m, msg && msg[0] ? msg : "unknown error", (char *const *)s->secrets, s->n_secrets);
    return slm_err_set(err, SLM_EIO, "ledger (postgres): %s: %s", what, m);
}

/* ---- connections ---------------------------------------------------------------- */

static void quiet(void *arg, const char *message) { (void)arg; (void)message; }

/* One PQexec of sql that must succeed; *out (if given) receives the last
 * result, else it is cleared. */
static int exec_simple(const pg_store *s, PGconn *c, const char *sql, const char *what, PGresult **out, slm_err *err) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int rc = pg_fail(s, what, r ? PQresultErrorMessage(r) : PQerrorMessage(c), err);
        PQclear(r);
        return rc;
    }
    if (out) *out = r;
    else PQclear(r);
    return 0;
}

/* Creates the schema if missing and checks its version. */
static int create_schema(const pg_store *s, PGconn *c, slm_err *err) {
    PGresult *r = NULL;
    int rc = exec_simple(s, c, SCHEMA_SQL, "schema", &r, err);
    if (rc) {
        PQclear(PQexec(c, "ROLLBACK"));
        return rc;
    }
    int version = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    if (version != SCHEMA_VERSION)
        return slm_err_set(err, SLM_EUNSUPPORTED, "ledger (postgres): schema version %d, this slm knows %d", version,
                           SCHEMA_VERSION);
    return 0;
}

/* A new session: connected, set up, statements prepared (schema: create
 * the schema first). */
static int pg_connect(const pg_store *s, bool schema, PGconn **out, slm_err *err) {
    /* defaults first: a key the conninfo (expanded from dbname) also sets wins */
    static const char *const keys[] = { "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                        "keepalives_count", "tcp_user_timeout", "application_name", "dbname", NULL };
    const char *vals[] = { "5", "1", "10", "5", "3", "10000", "slm-gateway", s->conninfo, NULL };
    *out = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) return slm_err_set(err, SLM_ENOMEM, "ledger (postgres): out of memory");
    int rc = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        rc = pg_fail(s, "connect", PQerrorMessage(c), err);
        goto fail;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    if ((rc = exec_simple(s, c, SESSION_SQL, "session setup", NULL, err))) goto fail;
    if (schema && (rc = create_schema(s, c, err))) goto fail;
    for (size_t i = 0; i < sizeof STMTS / sizeof STMTS[0]; i++) {
        PGresult *r = PQprepare(c, STMTS[i].name, STMTS[i].sql, STMTS[i].n_params, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = pg_fail(s, "prepare", r ? PQresultErrorMessage(r) : PQerrorMessage(c), err);
            PQclear(r);
            goto fail;
        }
        PQclear(r);
    }
    *out = c;
    return 0;
fail:
    PQfinish(c);
    return rc;
}

static int checkout(pg_store *s) {
    pthread_mutex_lock(&s->mu);
    while (s->n_free == 0) pthread_cond_wait(&s->cv, &s->mu);
    int id = s->free_ids[--s->n_free];
    pthread_mutex_unlock(&s->mu);
    return id;
}

static void checkin(pg_store *s, int id) {
    pthread_mutex_lock(&s->mu);
    s->free_ids[s->n_free++] = id;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Runs the prepared statement name with n text parameters (NULL: SQL NULL)
 * on a pooled connection. When it fails because the connection broke, the
 * connection is made again and retry_name runs once. *out (if given)
 * receives the result; the caller clears it. */
static int run(pg_store *s, const char *name, const char *retry_name, int n, const char *const *vals,
               const char *what, PGresult **out, slm_err *err) {
    int id = checkout(s);
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        if (!s->conns[id] && (rc = pg_connect(s, false, &s->conns[id], err))) break;
        PGconn *c = s->conns[id];
        PGresult *r = PQexecPrepared(c, attempt ? retry_name : name, n, vals, NULL, NULL, 0);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            if (out) *out = r;
            else PQclear(r);
            rc = 0;
            break;
        }
        rc = pg_fail(s, what, r ? PQresultErrorMessage(r) : PQerrorMessage(c), err);
        PQclear(r);
        if (PQstatus(c) != CONNECTION_BAD) break;
        PQfinish(c);
        s->conns[id] = NULL;
        if (attempt) break;
    }
    checkin(s, id);
    return rc;
}

/* ---- ops ------------------------------------------------------------------------ */

typedef struct params { char buf[12][32]; int n_buf; } params;

static const char *num(params *p, double v) {
    if (isnan(v)) return NULL;
    char *b = p->buf[p->n_buf++];
    snprintf(b, sizeof p->buf[0], "%.17g", v);
    return b;
}

static const char *integer(params *p, long v) {
    char *b = p->buf[p->n_buf++];
    snprintf(b, sizeof p->buf[0], "%ld", v);
    return b;
}

/* A negative count (unknown) is stored as NULL. */
static const char *count(params *p, long v) { return v < 0 ? NULL : integer(p, v); }

static int pg_append(void *impl, const slm_gw_ledger_row *r, slm_err *err) {
    params p = { .n_buf = 0 };
    const char *v[17] = {
        num(&p, r->time), r->request_id, r->team, r->route, r->task, r->tier, r->upstream, r->model,
        integer(&p, r->tokens_in), integer(&p, r->tokens_out),
        num(&p, r->latency_ms), integer(&p, r->status), num(&p, r->cost), num(&p, r->counterfactual_cost), r->error,
        r->private_data, r->cascade,
    };
    return run(impl, "slm_ins", "slm_ins_absent", 17, v, "append", NULL, err);
}

static int pg_append_shadow(void *impl, const slm_gw_shadow_row *r, slm_err *err) {
    params p = { .n_buf = 0 };
    const char *v[19] = {
        num(&p, r->time), r->request_id, r->route, r->task, r->primary_tier, r->primary_upstream, r->candidate_tier,
        r->candidate_upstream, r->primary_output, r->candidate_output, num(&p, r->exact), num(&p, r->normalized),
        num(&p, r->json_fields), count(&p, r->tokens_in), count(&p, r->tokens_out), num(&p, r->latency_ms),
        num(&p, r->cost), integer(&p, r->status), r->error,
    };
    return run(impl, "slm_shadow", "slm_shadow_absent", 19, v, "append shadow", NULL, err);
}

static int pg_sum_since(void *impl, const char *team, double since, double *out, slm_err *err) {
    params p = { .n_buf = 0 };
    const char *v[2] = { team, num(&p, since) };
    PGresult *r = NULL;
    int rc = run(impl, "slm_sum", "slm_sum", 2, v, "sum", &r, err);
    if (rc) return rc;
    *out = PQntuples(r) == 1 ? strtod(PQgetvalue(r, 0, 0), NULL) : 0;
    PQclear(r);
    return 0;
}

static int pg_sum_periods(void *impl, const char *team, double day0, double month0, double *day, double *month,
                          slm_err *err) {
    params p = { .n_buf = 0 };
    const char *v[3] = { team, num(&p, day0), num(&p, month0 < day0 ? month0 : day0) };
    PGresult *r = NULL;
    int rc = run(impl, "slm_sum2", "slm_sum2", 3, v, "sum", &r, err);
    if (rc) return rc;
    bool one = PQntuples(r) == 1 && PQnfields(r) == 2;
    *day = one ? strtod(PQgetvalue(r, 0, 0), NULL) : 0;
    *month = one ? strtod(PQgetvalue(r, 0, 1), NULL) : 0;
    PQclear(r);
    return 0;
}

static void pg_close(void *impl) {
    pg_store *s = impl;
    if (!s) return;
    for (int i = 0; i < s->n_conns; i++) PQfinish(s->conns[i]);
    for (int i = 0; i < s->n_secrets; i++) wipe(s->secrets[i]);
    wipe(s->conninfo);
    slm_free(s->conns);
    slm_free(s->free_ids);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    slm_free(s);
}

static const slm_gw_ledger_ops PG_OPS = {
    .name = "postgres", .concurrent = true, .append = pg_append, .append_shadow = pg_append_shadow,
    .sum_since = pg_sum_since, .sum_periods = pg_sum_periods, .close = pg_close,
};

int slm_gw_ledger_pg_store(const char *conninfo, int pool_size, const slm_gw_ledger_ops **ops, void **impl,
                           slm_err *err) {
    *impl = NULL;
    if (pool_size < 1 || pool_size > 256) return slm_err_set(err, SLM_EINVAL, "ledger (postgres): pool size %d", pool_size);
    char msg[300];
    if (slm_gw_ledger_pg_check(conninfo, msg, sizeof msg))
        return slm_err_set(err, SLM_EINVAL, "ledger (postgres): bad conninfo: %s", msg);
    pg_store *s = slm_calloc(1, sizeof *s);
    if (!s) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->n_conns = pool_size;
    s->conninfo = slm_strdup(conninfo);
    s->conns = slm_calloc((size_t)pool_size, sizeof *s->conns);
    s->free_ids = slm_calloc((size_t)pool_size, sizeof *s->free_ids);
    if (!s->conninfo || !s->conns || !s->free_ids) {
        pg_close(s);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    s->n_secrets = collect_secrets(conninfo, s->secrets);
    /* id 0 is used first (the stack pops from the top) */
    for (int i = 0; i < pool_size; i++) s->free_ids[s->n_free++] = pool_size - 1 - i;
    int rc = pg_connect(s, true, &s->conns[0], err);
    if (rc) {
        pg_close(s);
        return rc;
    }
    *ops = &PG_OPS;
    *impl = s;
    return 0;
}
