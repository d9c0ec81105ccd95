/*
 * ledger.h — one row per request: time, request id, team, route, task,
 * tier, upstream, model, tokens in and out, latency, status, cost and the
 * counterfactual cost had the frontier tier served it. The store is
 * pluggable (a struct of function pointers); SQLite in WAL mode with
 * synchronous=FULL is the default, so a row is on disk before append
 * returns and before the client sees its response: a kill -9 loses no
 * acknowledged request.
 *
 * The ledger also answers "how much has this team spent today / this month"
 * (UTC days and months) for budgets, from a per-team cache seeded from the
 * store and advanced by each append.
 */
#ifndef SLM_GATEWAY_LEDGER_H
#define SLM_GATEWAY_LEDGER_H

#include <stdbool.h>
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
} slm_gw_ledger_row;

typedef struct slm_gw_ledger slm_gw_ledger;

/* A ledger store: what a backend provides. */
typedef struct slm_gw_ledger_ops {
    const char *name;
    int  (*append)(void *impl, const slm_gw_ledger_row *row, slm_err *err);
    /* Sum of cost for team with time >= since. */
    int  (*sum_since)(void *impl, const char *team, double since, double *out, slm_err *err);
    void (*close)(void *impl);
} slm_gw_ledger_ops;

/* Opens (creating if needed) the SQLite ledger at path. */
int  slm_gw_ledger_open_sqlite(const char *path, slm_gw_ledger **out, slm_err *err);
void slm_gw_ledger_close(slm_gw_ledger *l);
/* Appends one row; 0 means it is durable. Thread-safe. */
int  slm_gw_ledger_append(slm_gw_ledger *l, const slm_gw_ledger_row *row, slm_err *err);
/* What team has spent in the UTC day and month containing now. */
int  slm_gw_ledger_spend(slm_gw_ledger *l, const char *team, double now, double *day, double *month, slm_err *err);

#endif
