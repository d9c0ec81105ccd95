/*
 * ledger.c — the ledger front (spend cache, locking) and its SQLite store.
 * One connection, one mutex (a leaf lock: nothing else is taken while it
 * is held); every append is its own transaction, committed with
 * synchronous=FULL so the WAL is fsync'd before append returns.
 */
#include "gateway/ledger.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/err.h"

typedef struct spend {
    char *team;
    double day_start, month_start;  /* the periods the sums are for          */
    double day, month;              /* spent in them                         */
} spend;

struct slm_gw_ledger {
    pthread_mutex_t mu;             /* guards everything below; leaf lock    */
    const slm_gw_ledger_ops *ops;
    void *impl;
    spend *sp; int n_sp, cap_sp;
};

/* ---- SQLite store ---------------------------------------------------------- */

typedef struct sqlite_impl {
    sqlite3 *db;
    sqlite3_stmt *ins, *sum;
} sqlite_impl;

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS ledger ("
    " id INTEGER PRIMARY KEY, time REAL NOT NULL, request_id TEXT NOT NULL, team TEXT, route TEXT, task TEXT,"
    " tier TEXT, upstream TEXT, model TEXT, tokens_in INTEGER, tokens_out INTEGER, latency_ms REAL,"
    " status INTEGER, cost REAL, counterfactual_cost REAL, error TEXT, private_data TEXT);"
    "CREATE INDEX IF NOT EXISTS ledger_team_time ON ledger(team, time);";

static int sq_fail(sqlite_impl *s, slm_err *err, const char *what) {
    return slm_err_set(err, SLM_EIO, "ledger: %s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no database");
}

static void sq_close(void *impl) {
    sqlite_impl *s = impl;
    if (!s) return;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->sum);
    sqlite3_close(s->db);
    slm_free(s);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
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
    int rc = sqlite3_step(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "append");
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

static const slm_gw_ledger_ops SQLITE_OPS = { "sqlite", sq_append, sq_sum_since, sq_close };

int slm_gw_ledger_open_sqlite(const char *path, slm_gw_ledger **out, slm_err *err) {
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
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO ledger(time,request_id,team,route,task,tier,upstream,model,tokens_in,"
                           "tokens_out,latency_ms,status,cost,counterfactual_cost,error,private_data)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &s->ins, NULL) ||
        sqlite3_prepare_v2(s->db, "SELECT COALESCE(SUM(cost),0) FROM ledger WHERE team=? AND time>=?", -1, &s->sum,
                           NULL)) {
        rc = sq_fail(s, err, "prepare");
        goto fail;
    }
    slm_gw_ledger *l = slm_calloc(1, sizeof *l);
    if (!l) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto fail; }
    pthread_mutex_init(&l->mu, NULL);
    l->ops = &SQLITE_OPS;
    l->impl = s;
    *out = l;
    return 0;
fail:
    sq_close(s);
    return rc;
}

/* ---- front ----------------------------------------------------------------- */

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

/* The cache entry for team, current for now (seeded from the store). Called
 * with l->mu held. */
static spend *spend_for(slm_gw_ledger *l, const char *team, double now, slm_err *err) {
    double d0, m0;
    periods(now, &d0, &m0);
    spend *e = NULL;
    for (int i = 0; i < l->n_sp && !e; i++)
        if (!strcmp(l->sp[i].team, team)) e = &l->sp[i];
    if (!e) {
        if (l->n_sp == l->cap_sp) {
            int nc = l->cap_sp ? l->cap_sp * 2 : 8;
            spend *ns = slm_realloc(l->sp, (size_t)nc * sizeof *ns);
            if (!ns) { slm_err_set(err, SLM_ENOMEM, "out of memory"); return NULL; }
            l->sp = ns;
            l->cap_sp = nc;
        }
        e = &l->sp[l->n_sp];
        *e = (spend){ .team = slm_strdup(team), .day_start = -1, .month_start = -1 };
        if (!e->team) { slm_err_set(err, SLM_ENOMEM, "out of memory"); return NULL; }
        l->n_sp++;
    }
    if (e->day_start != d0) {
        if (l->ops->sum_since(l->impl, team, d0, &e->day, err)) return NULL;
        e->day_start = d0;
    }
    if (e->month_start != m0) {
        if (l->ops->sum_since(l->impl, team, m0, &e->month, err)) return NULL;
        e->month_start = m0;
    }
    return e;
}

int slm_gw_ledger_append(slm_gw_ledger *l, const slm_gw_ledger_row *row, slm_err *err) {
    pthread_mutex_lock(&l->mu);
    int rc = l->ops->append(l->impl, row, err);
    if (rc == 0 && row->team && row->cost > 0) {
        /* advance a cached sum only if it covers this row's period; an
         * absent or stale entry is seeded from the store, which has the row */
        double d0, m0;
        periods(row->time, &d0, &m0);
        for (int i = 0; i < l->n_sp; i++)
            if (!strcmp(l->sp[i].team, row->team)) {
                if (l->sp[i].day_start == d0) l->sp[i].day += row->cost;
                if (l->sp[i].month_start == m0) l->sp[i].month += row->cost;
            }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int slm_gw_ledger_spend(slm_gw_ledger *l, const char *team, double now, double *day, double *month, slm_err *err) {
    pthread_mutex_lock(&l->mu);
    spend *e = spend_for(l, team, now, err);
    if (e) { *day = e->day; *month = e->month; }
    pthread_mutex_unlock(&l->mu);
    return e ? 0 : (err && err->code ? err->code : SLM_ENOMEM);
}
