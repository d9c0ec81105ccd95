/*
 * ledger.h — one row per request: time, request id, team, route, task,
 * tier, upstream, model, tokens in and out, latency, status, cost and the
 * counterfactual cost had the frontier tier served it; and one row per
 * shadow comparison. The store is pluggable (a struct of function
 * pointers):
 *   - SQLite in WAL mode with synchronous=FULL (the default, one process);
 *   - PostgreSQL through libpq (ledger_pg.c) when several gateway instances
 *     share one ledger; every append is its own transaction with
 *     synchronous_commit on.
 * Either way a row is durable before append returns and so before the
 * client sees its response: a kill -9 of the gateway loses no acknowledged
 * request.
 *
 * The ledger also answers "how much has this team spent today / this month"
 * (UTC days and months) for budgets, from a per-team cache:
 *   - spend_cache_ms < 0 (the SQLite default): the cache is read from the
 *     store once per period and then advanced by this process's appends;
 *     right when this process is the only writer.
 *   - spend_cache_ms >= 0 (the PostgreSQL default is 1000): a cached sum
 *     older than that is read again from the store (SUM(cost) over the
 *     (team, time) index), so every instance sees the others' spend; this
 *     process's own appends still advance it in between. A budget can then
 *     be overshot by at most the cost of the requests in flight on all
 *     instances plus those other instances finished within the last
 *     spend_cache_ms (0: re-read on every check; only in-flight requests).
 */
#ifndef SLM_GATEWAY_LEDGER_H
#define SLM_GATEWAY_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include "slm/slm.h"

typedef struct slm_gw_ledger_row {
    double time;                /* unix seconds                                */
    const char *request_id, *team, *route, *task, *tier, *upstream, *model;
    long tokens_in, tokens_out;
    double latency_ms;
    int status;                 /* HTTP status the client got                  */
    double cost;                /* what this request cost                      */
    double counterfactual_cost; /* priced at the counterfactual frontier tier  */
    const char *error;          /* NULL or a short reason                      */
    const char *private_data;   /* kinds found, "email,card", or ""            */
    const char *cascade;        /* NULL, or the cascade outcome ("accepted",
                                 * "escalated:low_logprob", …)               */
} slm_gw_ledger_row;

struct slm_gw_shadow_row;       /* one shadow comparison (gateway/proxy.h)     */

typedef struct slm_gw_ledger slm_gw_ledger;

/* A ledger store: what a backend provides. */
typedef struct slm_gw_ledger_ops {
    const char *name;
    bool concurrent;            /* the ops may run on several threads at once;
                                 * else the front calls them under its mutex */
    int  (*append)(void *impl, const slm_gw_ledger_row *row, slm_err *err);
    int  (*append_shadow)(void *impl, const struct slm_gw_shadow_row *row, slm_err *err);
    /* Sum of cost for team with time >= since. */
    int  (*sum_since)(void *impl, const char *team, double since, double *out, slm_err *err);
    /* Optional: both budget sums in one query (day0 >= month0). */
    int  (*sum_periods)(void *impl, const char *team, double day0, double month0, double *day, double *month,
                        slm_err *err);
    void (*close)(void *impl);
} slm_gw_ledger_ops;

typedef struct slm_gw_ledger_params {
    const char *sqlite_path;    /* the SQLite file, or                         */
    const char *postgres;       /* a libpq conninfo (a secret: never printed)  */
    int pool_size;              /* PostgreSQL connections (default 4)          */
    int spend_cache_ms;         /* see above; -1: the store's default          */
} slm_gw_ledger_params;

slm_gw_ledger_params slm_gw_ledger_default_params(void);
/* Opens (creating the schema if needed) the store p names. */
int  slm_gw_ledger_open(const slm_gw_ledger_params *p, slm_gw_ledger **out, slm_err *err);
/* The same for an SQLite file with the defaults. */
int  slm_gw_ledger_open_sqlite(const char *path, slm_gw_ledger **out, slm_err *err);
void slm_gw_ledger_close(slm_gw_ledger *l);
/* Appends one row; 0 means it is durable. Thread-safe. */
int  slm_gw_ledger_append(slm_gw_ledger *l, const slm_gw_ledger_row *row, slm_err *err);
/* Appends one shadow comparison (table shadow). Thread-safe. */
int  slm_gw_ledger_append_shadow(slm_gw_ledger *l, const struct slm_gw_shadow_row *row, slm_err *err);
/* What team has spent in the UTC day and month containing now. */
int  slm_gw_ledger_spend(slm_gw_ledger *l, const char *team, double now, double *day, double *month, slm_err *err);

/* ---- the PostgreSQL store (ledger_pg.c) ------------------------------------ */

/* Connects (one connection now, up to pool_size on demand), creates the
 * schema if missing and prepares the statements. Errors never contain the
 * conninfo's password. */
int  slm_gw_ledger_pg_store(const char *conninfo, int pool_size, const slm_gw_ledger_ops **ops, void **impl,
                            slm_err *err);
/* Checks that conninfo parses (a URI or key=value pairs) without
 * connecting; on failure writes why to msg, with any password masked. */
int  slm_gw_ledger_pg_check(const char *conninfo, char *msg, size_t cap);

#endif
