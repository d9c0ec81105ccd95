/*
 * ledger.c — the ledger front (per-team spend cache, locking) and its
 * SQLite store.
 *
 * The front: l->mu guards the spend cache. A store whose ops are not
 * concurrent (SQLite: one connection, shared prepared statements) is also
 * called under l->mu, so a store read and the cache update that follows it
 * are one step. A concurrent store (PostgreSQL: a connection pool) is
 * called without it, so requests do not queue behind each other's network
 * round trips; a cache refresh then races with this process's own appends
 * at worst by leaving out a row until the next refresh (within the
 * overshoot bound ledger.h states). l->mu is a leaf lock.
 *
 * The SQLite store: one connection; every append is its own transaction,
 * committed with synchronous=FULL so the WAL is fsync'd before append
 * returns.
 */
#include "gateway/ledger.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <time.h>

#include "gateway/proxy.h"
#include "util/alloc.h"
#include "util/err.h"

typedef struct spend {
    char *team;
    double day_start, month_start;  /* the periods the sums are for          */
    double day, month;              /* spent in them                         */
    double read_at;                 /* monotonic seconds of the store read   */
    bool reading;                   /* a thread is re-reading them           */
} spend;

struct slm_gw_ledger {
    pthread_mutex_t mu;             /* guards sp (and a non-concurrent store); leaf lock */
    const slm_gw_ledger_ops *ops;
    void *impl;
    int spend_cache_ms;             /* < 0: read once per period             */
    spend *sp; int n_sp, cap_sp;
};

/* ---- SQLite store ---------------------------------------------------------- */

typedef struct sqlite_impl {
    sqlite3 *db;
    sqlite3_stmt *ins, *sum, *shadow;
} sqlite_impl;

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS ledger ("
    " id INTEGER PRIMARY KEY, time REAL NOT NULL, request_id TEXT NOT NULL, team TEXT, route TEXT, task TEXT,"
    " tier TEXT, upstream TEXT, model TEXT, tokens_in INTEGER, tokens_out INTEGER, latency_ms REAL,"
    " status INTEGER, cost REAL, counterfactual_cost REAL, error TEXT, private_data TEXT);"
    "CREATE INDEX IF NOT EXISTS ledger_team_time ON ledger(team, time);"
    "CREATE TABLE IF NOT EXISTS shadow ("
    " id INTEGER PRIMARY KEY, time REAL NOT NULL, request_id TEXT NOT NULL, route TEXT, task TEXT,"
    " primary_tier TEXT, primary_upstream TEXT, candidate_tier TEXT, candidate_upstream TEXT,"
    " primary_output TEXT, candidate_output TEXT, exact REAL, normalized REAL, json_fields REAL,"
    " tokens_in INTEGER, tokens_out INTEGER, latency_ms REAL, cost REAL, status INTEGER, error TEXT);"
    "CREATE INDEX IF NOT EXISTS shadow_route_time ON shadow(route, time);";

static int sq_fail(sqlite_impl *s, slm_err *err, const char *what) {
    return slm_err_set(err, SLM_EIO, "ledger: %s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no database");
}

static void sq_close(void *impl) {
    sqlite_impl *s = impl;
    if (!s) return;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->sum);
    sqlite3_finalize(s->shadow);
    sqlite3_close(s->db);
    slm_free(s);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

/* NAN (not computed) is stored as NULL. */
static void bind_real(sqlite3_stmt *st, int i, double v) {
    if (isnan(v)) sqlite3_bind_null(st, i);
    else sqlite3_bind_double(st, i, v);
}

/* A negative count (unknown) is stored as NULL. */
static void bind_count(sqlite3_stmt *st, int i, long v) {
    if (v < 0) sqlite3_bind_null(st, i);
    else sqlite3_bind_int64(st, i, v);
}

static int sq_append(void *impl, const slm_gw_ledger_row *r, slm_err *err) {
    sqlite_impl *s = impl;
    sqlite3_stmt *st = s->ins;
    sqlite3_reset(st);
    sqlite3_bind_double(st, 1, r->time);
    bind_text(st, 2, r->request_id);
    bind_text(st, 3, r->team);
    bind_text(st, 4, r->route);
    bind_text(st, 5, r->task);
    bind_text(st, 6, r->tier);
    bind_text(st, 7, r->upstream);
    bind_text(st, 8, r->model);
    sqlite3_bind_int64(st, 9, r->tokens_in);
    sqlite3_bind_int64(st, 10, r->tokens_out);
    sqlite3_bind_double(st, 11, r->latency_ms);
    sqlite3_bind_int(st, 12, r->status);
    sqlite3_bind_double(st, 13, r->cost);
    sqlite3_bind_double(st, 14, r->counterfactual_cost);
    bind_text(st, 15, r->error);
    bind_text(st, 16, r->private_data);
    bind_text(st, 17, r->cascade);
    int rc = sqlite3_step(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "append");
}

static int sq_append_shadow(void *impl, const slm_gw_shadow_row *r, slm_err *err) {
    sqlite_impl *s = impl;
    sqlite3_stmt *st = s->shadow;
    sqlite3_reset(st);
    sqlite3_bind_double(st, 1, r->time);
    bind_text(st, 2, r->request_id);
    bind_text(st, 3, r->route);
    bind_text(st, 4, r->task);
    bind_text(st, 5, r->primary_tier);
    bind_text(st, 6, r->primary_upstream);
    bind_text(st, 7, r->candidate_tier);
    bind_text(st, 8, r->candidate_upstream);
    bind_text(st, 9, r->primary_output);
    bind_text(st, 10, r->candidate_output);
    bind_real(st, 11, r->exact);
    bind_real(st, 12, r->normalized);
    bind_real(st, 13, r->json_fields);
    bind_count(st, 14, r->tokens_in);
    bind_count(st, 15, r->tokens_out);
    sqlite3_bind_double(st, 16, r->latency_ms);
    sqlite3_bind_double(st, 17, r->cost);
    sqlite3_bind_int(st, 18, r->status);
    bind_text(st, 19, r->error);
    int rc = sqlite3_step(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "append shadow");
}

static int sq_sum_since(void *impl, const char *team, double since, double *out, slm_err *err) {
    sqlite_impl *s = impl;
    sqlite3_reset(s->sum);
    sqlite3_bind_text(s->sum, 1, team, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s->sum, 2, since);
    int rc = sqlite3_step(s->sum);
    if (rc != SQLITE_ROW) return sq_fail(s, err, "sum");
    *out = sqlite3_column_double(s->sum, 0);
    sqlite3_reset(s->sum);
    return 0;
}

static const slm_gw_ledger_ops SQLITE_OPS = {
    .name = "sqlite", .concurrent = false, .append = sq_append, .append_shadow = sq_append_shadow,
    .sum_since = sq_sum_since, .close = sq_close,
};

static int sqlite_store(const char *path, void **out, slm_err *err) {
    *out = NULL;
    sqlite_impl *s = slm_calloc(1, sizeof *s);
    if (!s) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    int rc = 0;
    char *msg = NULL;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL)) {
        rc = slm_err_set(err, SLM_EIO, "ledger %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        rc = slm_err_set(err, SLM_EIO, "ledger %s: %s", path, msg ? msg : "schema");
        sqlite3_free(msg);
        goto fail;
    }
    /* a file from before the cascade column: add it (the error when it is
     * already there is expected and ignored) */
    sqlite3_exec(s->db, "ALTER TABLE ledger ADD COLUMN cascade TEXT", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO ledger(time,request_id,team,route,task,tier,upstream,model,tokens_in,"
                           "tokens_out,latency_ms,status,cost,counterfactual_cost,error,private_data,cascade)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &s->ins, NULL) ||
        sqlite3_prepare_v2(s->db, "SELECT COALESCE(SUM(cost),0) FROM ledger WHERE team=? AND time>=?", -1, &s->sum,
                           NULL) ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO shadow(time,request_id,route,task,primary_tier,primary_upstream,"
                           "candidate_tier,candidate_upstream,primary_output,candidate_output,exact,normalized,"
                           "json_fields,tokens_in,tokens_out,latency_ms,cost,status,error)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &s->shadow, NULL)) {
        rc = sq_fail(s, err, "prepare");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    sq_close(s);
    return rc;
}

/* ---- front ----------------------------------------------------------------- */

slm_gw_ledger_params slm_gw_ledger_default_params(void) {
    return (slm_gw_ledger_params){ .pool_size = 4, .spend_cache_ms = -1 };
}

int slm_gw_ledger_open(const slm_gw_ledger_params *p, slm_gw_ledger **out, slm_err *err) {
    *out = NULL;
    const slm_gw_ledger_ops *ops = &SQLITE_OPS;
    void *impl = NULL;
    int rc, cache_ms = p->spend_cache_ms;
    if (p->postgres) {
        rc = slm_gw_ledger_pg_store(p->postgres, p->pool_size > 0 ? p->pool_size : 4, &ops, &impl, err);
        if (cache_ms < 0) cache_ms = 1000;
    } else if (p->sqlite_path) {
        rc = sqlite_store(p->sqlite_path, &impl, err);
    } else {
        rc = slm_err_set(err, SLM_EINVAL, "ledger: no store given (sqlite or postgres)");
    }
    if (rc) return rc;
    slm_gw_ledger *l = slm_calloc(1, sizeof *l);
    if (!l) {
        ops->close(impl);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&l->mu, NULL);
    l->ops = ops;
    l->impl = impl;
    l->spend_cache_ms = cache_ms;
    *out = l;
    return 0;
}

int slm_gw_ledger_open_sqlite(const char *path, slm_gw_ledger **out, slm_err *err) {
    slm_gw_ledger_params p = slm_gw_ledger_default_params();
    p.sqlite_path = path;
    return slm_gw_ledger_open(&p, out, err);
}

void slm_gw_ledger_close(slm_gw_ledger *l) {
    if (!l) return;
    l->ops->close(l->impl);
    for (int i = 0; i < l->n_sp; i++) slm_free(l->sp[i].team);
    slm_free(l->sp);
    pthread_mutex_destroy(&l->mu);
    slm_free(l);
}

/* Start of the UTC day and month containing t. */
static void periods(double t, double *day0, double *month0) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    *day0 = (double)timegm(&tm);
    tm.tm_mday = 1;
    *month0 = (double)timegm(&tm);
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The cache entry for team, created if new (day_start -1: not read yet), or
 * NULL out of memory. Called with l->mu held; the pointer is valid until
 * l->mu is released. */
static spend *entry_for(slm_gw_ledger *l, const char *team) {
    for (int i = 0; i < l->n_sp; i++)
        if (!strcmp(l->sp[i].team, team)) return &l->sp[i];
    if (l->n_sp == l->cap_sp) {
        int nc = l->cap_sp ? l->cap_sp * 2 : 8;
        spend *ns = slm_realloc(l->sp, (size_t)nc * sizeof *ns);
        if (!ns) return NULL;
        l->sp = ns;
        l->cap_sp = nc;
    }
    spend *e = &l->sp[l->n_sp];
    *e = (spend){ .team = slm_strdup(team), .day_start = -1, .month_start = -1 };
    if (!e->team) return NULL;
    l->n_sp++;
    return e;
}

/* Both sums from the store. */
static int read_sums(slm_gw_ledger *l, const char *team, double d0, double m0, double *day, double *month,
                     slm_err *err) {
    if (l->ops->sum_periods) return l->ops->sum_periods(l->impl, team, d0, m0, day, month, err);
    int rc = l->ops->sum_since(l->impl, team, d0, day, err);
    return rc ? rc : l->ops->sum_since(l->impl, team, m0, month, err);
}

int slm_gw_ledger_append(slm_gw_ledger *l, const slm_gw_ledger_row *row, slm_err *err) {
    bool serial = !l->ops->concurrent;
    if (serial) pthread_mutex_lock(&l->mu);
    int rc = l->ops->append(l->impl, row, err);
    if (rc == 0 && row->team && row->cost > 0) {
        /* advance a cached sum only if it covers this row's period; an
         * absent or stale entry is read from the store, which has the row */
        if (!serial) pthread_mutex_lock(&l->mu);
        double d0, m0;
        periods(row->time, &d0, &m0);
        for (int i = 0; i < l->n_sp; i++)
            if (!strcmp(l->sp[i].team, row->team)) {
                if (l->sp[i].day_start == d0) l->sp[i].day += row->cost;
                if (l->sp[i].month_start == m0) l->sp[i].month += row->cost;
            }
        if (!serial) pthread_mutex_unlock(&l->mu);
    }
    if (serial) pthread_mutex_unlock(&l->mu);
    return rc;
}

int slm_gw_ledger_append_shadow(slm_gw_ledger *l, const slm_gw_shadow_row *row, slm_err *err) {
    bool serial = !l->ops->concurrent;
    if (serial) pthread_mutex_lock(&l->mu);
    int rc = l->ops->append_shadow(l->impl, row, err);
    if (serial) pthread_mutex_unlock(&l->mu);
    return rc;
}

int slm_gw_ledger_spend(slm_gw_ledger *l, const char *team, double now, double *day, double *month, slm_err *err) {
    double d0, m0, t = mono(), cache_s = l->spend_cache_ms / 1e3;
    periods(now, &d0, &m0);
    pthread_mutex_lock(&l->mu);
    spend *e = entry_for(l, team);
    if (!e) {
        pthread_mutex_unlock(&l->mu);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    bool current = e->day_start == d0 && e->month_start == m0;
    /* a current entry is good enough when it never expires, is young, or
     * (with a cache window) another thread is re-reading it right now */
    if (current && (l->spend_cache_ms < 0 || t - e->read_at < cache_s || (cache_s > 0 && e->reading))) {
        *day = e->day;
        *month = e->month;
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    double sd = 0, sm = 0;
    int rc;
    if (!l->ops->concurrent) {
        rc = read_sums(l, team, d0, m0, &sd, &sm, err);
    } else {
        e->reading = true;
        pthread_mutex_unlock(&l->mu);
        rc = read_sums(l, team, d0, m0, &sd, &sm, err);
        pthread_mutex_lock(&l->mu);
        e = entry_for(l, team);   /* the array may have moved */
        if (!e) {
            pthread_mutex_unlock(&l->mu);
            return rc ? rc : slm_err_set(err, SLM_ENOMEM, "out of memory");
        }
        e->reading = false;
    }
    if (rc == 0) {
        *e = (spend){ .team = e->team, .day_start = d0, .month_start = m0, .day = sd, .month = sm, .read_at = t };
        *day = sd;
        *month = sm;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}
