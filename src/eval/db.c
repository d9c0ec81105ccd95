/*
 * db.c — see db.h. One connection, used by one thread at a time (the run's
 * collector writes; reports read). WAL with synchronous=NORMAL: a crash may
 * lose the last results of a run, never corrupt earlier ones. Tags are
 * stored as a JSON array in the cases table; per-field counts as JSON in the
 * results table. Strings read back are copied with slm_strdup.
 */
#include "eval/db.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/suite.h"
#include "util/alloc.h"
#include "util/err.h"

struct slm_eval_db {
    sqlite3 *db;
    char *path;
};

static const char SCHEMA_V1[] =
    "CREATE TABLE IF NOT EXISTS runs ("
    " id TEXT PRIMARY KEY, suite_name TEXT NOT NULL, suite_path TEXT, suite_hash TEXT, n_cases INTEGER,"
    " targets TEXT, params TEXT, started REAL NOT NULL, finished REAL, status TEXT NOT NULL, baseline TEXT);"
    "CREATE TABLE IF NOT EXISTS run_targets ("
    " run_id TEXT NOT NULL REFERENCES runs(id), ord INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT, endpoint TEXT, model TEXT,"
    " price_in REAL, price_out REAL, concurrency INTEGER, retries INTEGER, timeout_s REAL, rps REAL,"
    " PRIMARY KEY (run_id, name));"
    "CREATE TABLE IF NOT EXISTS cases ("
    " run_id TEXT NOT NULL REFERENCES runs(id), idx INTEGER NOT NULL, case_id TEXT NOT NULL, input TEXT, messages TEXT,"
    " expected TEXT, scorer TEXT, tags TEXT, PRIMARY KEY (run_id, case_id));"
    "CREATE TABLE IF NOT EXISTS results ("
    " run_id TEXT NOT NULL REFERENCES runs(id), target TEXT NOT NULL, case_id TEXT NOT NULL, idx INTEGER,"
    " output TEXT, score REAL, pass INTEGER, scorer_name TEXT, agg INTEGER, score_error TEXT, detail TEXT,"
    " pred_label TEXT, gold_label TEXT, fields TEXT, error TEXT, http_status INTEGER, attempts INTEGER,"
    " latency_ms REAL, tokens_in INTEGER, tokens_out INTEGER, cost REAL, finished REAL,"
    " PRIMARY KEY (run_id, target, case_id));"
    "CREATE INDEX IF NOT EXISTS runs_started ON runs(started);";

static int sq_fail(slm_eval_db *db, slm_err *err, const char *what) {
    return slm_err_set(err, SLM_EIO, "%s: %s: %s", db && db->path ? db->path : "database", what,
                       db && db->db ? sqlite3_errmsg(db->db) : "not open");
}

static int exec(slm_eval_db *db, const char *sql, slm_err *err) {
    char *msg = NULL;
    if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = slm_err_set(err, SLM_EIO, "%s: %s", db->path, msg ? msg : sqlite3_errmsg(db->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int slm_eval_db_open(const char *path, slm_eval_db **out, slm_err *err) {
    *out = NULL;
    slm_eval_db *db = slm_calloc(1, sizeof *db);
    if (!db || !(db->path = slm_strdup(path))) {
        slm_free(db);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    int rc;
    if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = sq_fail(db, err, "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(db->db, 10000);
    if ((rc = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", err))) goto fail;
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(db->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < 0) {
        rc = sq_fail(db, err, "cannot read the schema version (not a database?)");
        goto fail;
    }
    if (version > SLM_EVAL_DB_SCHEMA) {
        rc = slm_err_set(err, SLM_EUNSUPPORTED, "%s: schema version %d is newer than this slm understands (%d)", path, version,
                         SLM_EVAL_DB_SCHEMA);
        goto fail;
    }
    if (version < SLM_EVAL_DB_SCHEMA) {
        char sql[sizeof SCHEMA_V1 + 128];
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; %s PRAGMA user_version=%d; COMMIT;", SCHEMA_V1, SLM_EVAL_DB_SCHEMA);
        if ((rc = exec(db, sql, err))) {
            sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    *out = db;
    return 0;
fail:
    slm_eval_db_close(db);
    return rc;
}

void slm_eval_db_close(slm_eval_db *db) {
    if (!db) return;
    sqlite3_close(db->db);
    slm_free(db->path);
    slm_free(db);
}

int slm_eval_db_begin(slm_eval_db *db, slm_err *err) { return exec(db, "BEGIN IMMEDIATE", err); }
int slm_eval_db_commit(slm_eval_db *db, slm_err *err) { return exec(db, "COMMIT", err); }
void slm_eval_db_rollback(slm_eval_db *db) { sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL); }

/* ---- writing ------------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static void bind_num(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

static void bind_count(sqlite3_stmt *st, int i, long v) {
    if (v >= 0) sqlite3_bind_int64(st, i, v);
    else sqlite3_bind_null(st, i);
}

/* Prepares sql, lets fill() bind, steps once; 0 or SLM_EIO. */
static int run1(slm_eval_db *db, const char *sql, void (*fill)(sqlite3_stmt *, const void *), const void *arg,
                const char *what, slm_err *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) return sq_fail(db, err, what);
    fill(st, arg);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(db, err, what);
}

int slm_eval_db_new_id(slm_eval_db *db, const char *seed, char id[SLM_EVAL_RUN_ID_LEN + 1], slm_err *err) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t h = slm_eval_fnv1a(SLM_FNV_BASIS, seed ? seed : "", seed ? strlen(seed) : 0);
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t parts[4] = { (uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)getpid(), (uint64_t)attempt };
        uint64_t x = slm_eval_fnv1a(h, parts, sizeof parts);
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 32;
        snprintf(id, SLM_EVAL_RUN_ID_LEN + 1, "%012llx", (unsigned long long)(x & 0xffffffffffffULL));
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db->db, "SELECT 1 FROM runs WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
            return sq_fail(db, err, "new run id");
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE) return 0;
    }
    return slm_err_set(err, SLM_EIO, "could not make a unique run id");
}

static void fill_run(sqlite3_stmt *st, const void *p) {
    const slm_eval_db_run *r = p;
    bind_text(st, 1, r->id);
    bind_text(st, 2, r->suite_name);
    bind_text(st, 3, r->suite_path);
    bind_text(st, 4, r->suite_hash);
    sqlite3_bind_int(st, 5, r->n_cases);
    bind_text(st, 6, r->targets);
    bind_text(st, 7, r->params);
    sqlite3_bind_double(st, 8, r->started);
    bind_num(st, 9, r->finished > 0 ? r->finished : NAN);
    bind_text(st, 10, r->status ? r->status : "running");
    bind_text(st, 11, r->baseline);
}

int slm_eval_db_add_run(slm_eval_db *db, const slm_eval_db_run *r, slm_err *err) {
    return run1(db,
                "INSERT INTO runs (id, suite_name, suite_path, suite_hash, n_cases, targets, params, started, finished, status, "
                "baseline) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                fill_run, r, "add run", err);
}

typedef struct fin_args { const char *id, *status; double finished; } fin_args;
static void fill_fin(sqlite3_stmt *st, const void *p) {
    const fin_args *a = p;
    sqlite3_bind_double(st, 1, a->finished);
    bind_text(st, 2, a->status);
    bind_text(st, 3, a->id);
}

int slm_eval_db_finish_run(slm_eval_db *db, const char *id, double finished, const char *status, slm_err *err) {
    fin_args a = { id, status, finished };
    return run1(db, "UPDATE runs SET finished = ?, status = ? WHERE id = ?", fill_fin, &a, "finish run", err);
}

typedef struct tgt_args { const char *run_id; const slm_eval_db_target *t; } tgt_args;
static void fill_target(sqlite3_stmt *st, const void *p) {
    const tgt_args *a = p;
    const slm_eval_db_target *t = a->t;
    bind_text(st, 1, a->run_id);
    bind_text(st, 2, t->name);
    bind_text(st, 3, t->kind);
    bind_text(st, 4, t->endpoint);
    bind_text(st, 5, t->model);
    bind_num(st, 6, t->has_price ? t->price_in : NAN);
    bind_num(st, 7, t->has_price ? t->price_out : NAN);
    sqlite3_bind_int(st, 8, t->concurrency);
    sqlite3_bind_int(st, 9, t->retries);
    sqlite3_bind_double(st, 10, t->timeout_s);
    sqlite3_bind_double(st, 11, t->rps);
}

int slm_eval_db_add_target(slm_eval_db *db, const char *run_id, const slm_eval_db_target *t, slm_err *err) {
    tgt_args a = { run_id, t };
    return run1(db,
                "INSERT INTO run_targets (run_id, ord, name, kind, endpoint, model, price_in, price_out, concurrency, retries, "
                "timeout_s, rps) VALUES (?1, (SELECT COUNT(*) FROM run_targets WHERE run_id = ?1), ?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                fill_target, &a, "add target", err);
}

typedef struct case_args { const char *run_id; const slm_eval_db_case *c; char *tags; } case_args;
static void fill_case(sqlite3_stmt *st, const void *p) {
    const case_args *a = p;
    const slm_eval_db_case *c = a->c;
    bind_text(st, 1, a->run_id);
    sqlite3_bind_int(st, 2, c->idx);
    bind_text(st, 3, c->case_id);
    bind_text(st, 4, c->input);
    bind_text(st, 5, c->messages);
    bind_text(st, 6, c->expected);
    bind_text(st, 7, c->scorer);
    bind_text(st, 8, a->tags);
}

int slm_eval_db_add_case(slm_eval_db *db, const char *run_id, const slm_eval_db_case *c, slm_err *err) {
    cJSON *tags = cJSON_CreateArray();
    for (int i = 0; tags && i < c->n_tags; i++) cJSON_AddItemToArray(tags, cJSON_CreateString(c->tags[i]));
    char *tj = tags ? cJSON_PrintUnformatted(tags) : NULL;
    cJSON_Delete(tags);
    if (!tj) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    case_args a = { run_id, c, tj };
    int rc = run1(db, "INSERT INTO cases (run_id, idx, case_id, input, messages, expected, scorer, tags) VALUES (?,?,?,?,?,?,?,?)",
                  fill_case, &a, "add case", err);
    cJSON_free(tj);
    return rc;
}

typedef struct res_args { const char *run_id; const slm_eval_db_result *r; } res_args;
static void fill_result(sqlite3_stmt *st, const void *p) {
    const res_args *a = p;
    const slm_eval_db_result *r = a->r;
    bind_text(st, 1, a->run_id);
    bind_text(st, 2, r->target);
    bind_text(st, 3, r->case_id);
    sqlite3_bind_int(st, 4, r->idx);
    bind_text(st, 5, r->output);
    bind_num(st, 6, r->scored ? r->score : NAN);
    if (r->scored) sqlite3_bind_int(st, 7, r->pass);
    else sqlite3_bind_null(st, 7);
    bind_text(st, 8, r->scorer_name);
    sqlite3_bind_int(st, 9, r->agg);
    bind_text(st, 10, r->score_error);
    bind_text(st, 11, r->detail);
    bind_text(st, 12, r->pred_label);
    bind_text(st, 13, r->gold_label);
    bind_text(st, 14, r->fields);
    bind_text(st, 15, r->error);
    sqlite3_bind_int(st, 16, r->http_status);
    sqlite3_bind_int(st, 17, r->attempts);
    sqlite3_bind_double(st, 18, r->latency_ms);
    bind_count(st, 19, r->tokens_in);
    bind_count(st, 20, r->tokens_out);
    bind_num(st, 21, r->cost);
    sqlite3_bind_double(st, 22, r->finished);
}

int slm_eval_db_add_result(slm_eval_db *db, const char *run_id, const slm_eval_db_result *r, slm_err *err) {
    res_args a = { run_id, r };
    return run1(db,
                "INSERT OR REPLACE INTO results (run_id, target, case_id, idx, output, score, pass, scorer_name, agg, score_error, "
                "detail, pred_label, gold_label, fields, error, http_status, attempts, latency_ms, tokens_in, tokens_out, cost, "
                "finished) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                fill_result, &a, "add result", err);
}

/* ---- reading ------------------------------------------------------------------- */

static char *col_str(sqlite3_stmt *st, int i, bool *oom) {
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t) return NULL;
    char *s = slm_strdup((const char *)t);
    if (!s) *oom = true;
    return s;
}

static double col_num(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static long col_count(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : (long)sqlite3_column_int64(st, i);
}

int slm_eval_db_resolve(slm_eval_db *db, const char *ref, char id[SLM_EVAL_RUN_ID_LEN + 1], slm_err *err) {
    sqlite3_stmt *st = NULL;
    bool latest = !strcmp(ref, "latest") || !strcmp(ref, "last");
    if (!latest) {
        size_t n = strlen(ref);
        bool hex = n >= 4 && n <= SLM_EVAL_RUN_ID_LEN;
        for (size_t i = 0; hex && i < n; i++) hex = (ref[i] >= '0' && ref[i] <= '9') || (ref[i] >= 'a' && ref[i] <= 'f');
        if (!hex)
            return slm_err_set(err, SLM_EINVAL, "'%s' is not a run id (4 to 12 hex digits, or \"latest\"); see slm eval runs", ref);
    }
    const char *sql = latest ? "SELECT id FROM runs ORDER BY started DESC LIMIT 1"
                             : "SELECT id FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY started DESC LIMIT 6";
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) return sq_fail(db, err, "find run");
    if (!latest) sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
    int n = 0;
    char found[6][SLM_EVAL_RUN_ID_LEN + 1];
    while (n < 6 && sqlite3_step(st) == SQLITE_ROW)
        snprintf(found[n++], SLM_EVAL_RUN_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (n == 0) return slm_err_set(err, SLM_ENOTFOUND, "%s: no run %s%s", db->path, latest ? "yet" : "matches ", latest ? "" : ref);
    if (n > 1) {
        char list[128] = "";
        for (int i = 0; i < n && i < 5; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", found[i]);
        return slm_err_set(err, SLM_EINVAL, "run id '%s' is ambiguous: %s%s", ref, list, n > 5 ? ", …" : "");
    }
    memcpy(id, found[0], SLM_EVAL_RUN_ID_LEN + 1);
    return 0;
}

static void run_clear(slm_eval_db_run *r) {
    slm_free(r->suite_name);
    slm_free(r->suite_path);
    slm_free(r->suite_hash);
    slm_free(r->targets);
    slm_free(r->params);
    slm_free(r->status);
    slm_free(r->baseline);
    memset(r, 0, sizeof *r);
}

#define RUN_COLS "id, suite_name, suite_path, suite_hash, n_cases, targets, params, started, finished, status, baseline"

static void read_run(sqlite3_stmt *st, slm_eval_db_run *r, bool *oom) {
    snprintf(r->id, sizeof r->id, "%s", (const char *)sqlite3_column_text(st, 0));
    r->suite_name = col_str(st, 1, oom);
    r->suite_path = col_str(st, 2, oom);
    r->suite_hash = col_str(st, 3, oom);
    r->n_cases = sqlite3_column_int(st, 4);
    r->targets = col_str(st, 5, oom);
    r->params = col_str(st, 6, oom);
    r->started = sqlite3_column_double(st, 7);
    double f = col_num(st, 8);
    r->finished = isfinite(f) ? f : 0;
    r->status = col_str(st, 9, oom);
    r->baseline = col_str(st, 10, oom);
}

int slm_eval_db_list(slm_eval_db *db, int limit, slm_eval_db_run **runs, int *n, slm_err *err) {
    *runs = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, "SELECT " RUN_COLS " FROM runs ORDER BY started DESC LIMIT ?", -1, &st, NULL) != SQLITE_OK)
        return sq_fail(db, err, "list runs");
    sqlite3_bind_int(st, 1, limit > 0 ? limit : -1);
    int cap = 0, rc = 0;
    bool oom = false;
    slm_eval_db_run *out = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            int nc = cap ? cap * 2 : 16;
            slm_eval_db_run *nr = slm_realloc(out, (size_t)nc * sizeof *nr);
            if (!nr) { oom = true; break; }
            out = nr;
            cap = nc;
        }
        memset(&out[*n], 0, sizeof out[*n]);
        read_run(st, &out[(*n)++], &oom);
    }
    sqlite3_finalize(st);
    if (oom || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        slm_eval_db_runs_free(out, *n);
        *n = 0;
        return oom ? slm_err_set(err, SLM_ENOMEM, "out of memory") : sq_fail(db, err, "list runs");
    }
    *runs = out;
    return 0;
}

void slm_eval_db_runs_free(slm_eval_db_run *runs, int n) {
    for (int i = 0; i < n; i++) run_clear(&runs[i]);
    slm_free(runs);
}

/* Grows *arr (elements of size sz) to hold n + 1. */
static bool grow(void **arr, int n, int *cap, size_t sz) {
    if (n < *cap) return true;
    int nc = *cap ? *cap * 2 : 32;
    void *na = slm_realloc(*arr, (size_t)nc * sz);
    if (!na) return false;
    *arr = na;
    *cap = nc;
    return true;
}

static char **parse_tags(const char *json, int *n, bool *oom) {
    *n = 0;
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    int k = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    char **tags = k ? slm_calloc((size_t)k, sizeof *tags) : NULL;
    if (k && !tags) *oom = true;
    for (const cJSON *t = tags ? a->child : NULL; t; t = t->next)
        if (cJSON_IsString(t)) {
            if (!(tags[*n] = slm_strdup(t->valuestring))) *oom = true;
            else (*n)++;
        }
    cJSON_Delete(a);
    return tags;
}

int slm_eval_db_load(slm_eval_db *db, const char *id, slm_eval_rundata *d, slm_err *err) {
    memset(d, 0, sizeof *d);
    sqlite3_stmt *st = NULL;
    bool oom = false;
    int rc = SLM_ENOTFOUND, step, cap;
    if (sqlite3_prepare_v2(db->db, "SELECT " RUN_COLS " FROM runs WHERE id = ?", -1, &st, NULL) != SQLITE_OK) goto sqfail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return slm_err_set(err, SLM_ENOTFOUND, "%s: no run %s", db->path, id);
    }
    read_run(st, &d->run, &oom);
    sqlite3_finalize(st);

    if (sqlite3_prepare_v2(db->db,
                           "SELECT name, kind, endpoint, model, price_in, price_out, concurrency, retries, timeout_s, rps "
                           "FROM run_targets WHERE run_id = ? ORDER BY ord", -1, &st, NULL) != SQLITE_OK) goto sqfail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    cap = 0;
    while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow((void **)&d->targets, d->n_targets, &cap, sizeof *d->targets)) { oom = true; break; }
        slm_eval_db_target *t = &d->targets[d->n_targets++];
        memset(t, 0, sizeof *t);
        t->name = col_str(st, 0, &oom);
        t->kind = col_str(st, 1, &oom);
        t->endpoint = col_str(st, 2, &oom);
        t->model = col_str(st, 3, &oom);
        t->price_in = col_num(st, 4);
        t->price_out = col_num(st, 5);
        t->has_price = isfinite(t->price_in) && isfinite(t->price_out);
        t->concurrency = sqlite3_column_int(st, 6);
        t->retries = sqlite3_column_int(st, 7);
        t->timeout_s = sqlite3_column_double(st, 8);
        t->rps = sqlite3_column_double(st, 9);
    }
    sqlite3_finalize(st);

    if (sqlite3_prepare_v2(db->db, "SELECT idx, case_id, input, messages, expected, scorer, tags FROM cases WHERE run_id = ? ORDER BY idx",
                           -1, &st, NULL) != SQLITE_OK) goto sqfail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    cap = 0;
    while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow((void **)&d->cases, d->n_cases, &cap, sizeof *d->cases)) { oom = true; break; }
        slm_eval_db_case *c = &d->cases[d->n_cases++];
        memset(c, 0, sizeof *c);
        c->idx = sqlite3_column_int(st, 0);
        c->case_id = col_str(st, 1, &oom);
        c->input = col_str(st, 2, &oom);
        c->messages = col_str(st, 3, &oom);
        c->expected = col_str(st, 4, &oom);
        c->scorer = col_str(st, 5, &oom);
        c->tags = parse_tags((const char *)sqlite3_column_text(st, 6), &c->n_tags, &oom);
    }
    sqlite3_finalize(st);

    if (sqlite3_prepare_v2(db->db,
                           "SELECT r.target, r.case_id, r.idx, r.output, r.score, r.pass, r.scorer_name, r.agg, r.score_error, r.detail, "
                           "r.pred_label, r.gold_label, r.fields, r.error, r.http_status, r.attempts, r.latency_ms, r.tokens_in, "
                           "r.tokens_out, r.cost, r.finished FROM results r JOIN run_targets t ON t.run_id = r.run_id AND "
                           "t.name = r.target WHERE r.run_id = ? ORDER BY t.ord, r.idx", -1, &st, NULL) != SQLITE_OK) goto sqfail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    cap = 0;
    while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow((void **)&d->results, d->n_results, &cap, sizeof *d->results)) { oom = true; break; }
        slm_eval_db_result *r = &d->results[d->n_results++];
        memset(r, 0, sizeof *r);
        r->target = col_str(st, 0, &oom);
        r->case_id = col_str(st, 1, &oom);
        r->idx = sqlite3_column_int(st, 2);
        r->output = col_str(st, 3, &oom);
        r->score = col_num(st, 4);
        r->scored = isfinite(r->score);
        if (!r->scored) r->score = 0;
        r->pass = sqlite3_column_int(st, 5) != 0;
        r->scorer_name = col_str(st, 6, &oom);
        r->agg = sqlite3_column_int(st, 7);
        r->score_error = col_str(st, 8, &oom);
        r->detail = col_str(st, 9, &oom);
        r->pred_label = col_str(st, 10, &oom);
        r->gold_label = col_str(st, 11, &oom);
        r->fields = col_str(st, 12, &oom);
        r->error = col_str(st, 13, &oom);
        r->http_status = sqlite3_column_int(st, 14);
        r->attempts = sqlite3_column_int(st, 15);
        r->latency_ms = sqlite3_column_double(st, 16);
        r->tokens_in = col_count(st, 17);
        r->tokens_out = col_count(st, 18);
        r->cost = col_num(st, 19);
        r->finished = sqlite3_column_double(st, 20);
    }
    sqlite3_finalize(st);
    if (oom) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
        goto fail;
    }
    return 0;
sqfail:
    rc = sq_fail(db, err, "load run");
fail:
    slm_eval_rundata_clear(d);
    return rc;
}

void slm_eval_db_result_clear(slm_eval_db_result *r) {
    slm_free(r->target);
    slm_free(r->case_id);
    slm_free(r->output);
    slm_free(r->scorer_name);
    slm_free(r->score_error);
    slm_free(r->detail);
    slm_free(r->pred_label);
    slm_free(r->gold_label);
    slm_free(r->fields);
    slm_free(r->error);
    memset(r, 0, sizeof *r);
}

void slm_eval_rundata_clear(slm_eval_rundata *d) {
    if (!d) return;
    run_clear(&d->run);
    for (int i = 0; i < d->n_targets; i++) {
        slm_eval_db_target *t = &d->targets[i];
        slm_free(t->name);
        slm_free(t->kind);
        slm_free(t->endpoint);
        slm_free(t->model);
    }
    slm_free(d->targets);
    for (int i = 0; i < d->n_cases; i++) {
        slm_eval_db_case *c = &d->cases[i];
        slm_free(c->case_id);
        slm_free(c->input);
        slm_free(c->messages);
        slm_free(c->expected);
        slm_free(c->scorer);
        for (int k = 0; k < c->n_tags; k++) slm_free(c->tags[k]);
        slm_free(c->tags);
    }
    slm_free(d->cases);
    for (int i = 0; i < d->n_results; i++) slm_eval_db_result_clear(&d->results[i]);
    slm_free(d->results);
    memset(d, 0, sizeof *d);
}
