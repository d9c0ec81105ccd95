/*
 * config.h — the gateway's configuration, loaded from one YAML file and
 * validated as a whole before anything starts: every problem is reported as
 * "FILE:LINE: what is wrong". A loaded config is immutable; a SIGHUP reload
 * builds a new one and swaps it in (see gateway.c).
 *
 * Shape (see tests/gw/example.yaml):
 *   listen: {host, port}        audit_log: PATH
 *   ledger: {sqlite: PATH} or {postgres: CONNINFO} or {postgres_env: VAR},
 *           with spend_cache_ms (budgets: how long a team's spend read from
 *           the store is trusted) and pool_size (postgres connections)
 *   retry: {attempts, backoff_ms, max_backoff_ms}
 *   breaker: {failures, cooldown_ms}   health: {interval_ms, timeout_ms}
 *   counterfactual_tier: NAME   (the frontier tier every row is also priced at)
 *   tiers: [{name, kind: local|frontier, price_in, price_out (per million
 *            tokens), cost_per_replica_hour, upstreams: [{name, url, model,
 *            adapter: openai|anthropic, api_key_env, timeout_ms,
 *            connect_timeout_ms, first_byte_timeout_ms,
 *            stream_idle_timeout_ms, health_check}]}]
 *   routes: [{name, match: {model: [..], task: [..], min_prompt_tokens,
 *             max_prompt_tokens, private_data: true|false, keywords: [..]},
 *             tiers: [NAME, ..], private_data: allow|redact|local_only,
 *             over_budget: reject|local,
 *             cascade: {min_mean_logprob, json: bool, refusal: [regex, ..]},
 *             shadow: {tier: NAME, sample: 0..1}}]
 *   teams: [{name, keys: [..] or key_env, budget: {daily, monthly}}]
 * Upstream API keys and a postgres_env conninfo are read from the
 * environment at load time; they and any conninfo are never printed,
 * logged or written to the ledger.
 */
#ifndef SLM_GATEWAY_CONFIG_H
#define SLM_GATEWAY_CONFIG_H

#include <stdbool.h>
#include "slm/slm.h"

typedef enum slm_gw_tier_kind { SLM_GW_LOCAL, SLM_GW_FRONTIER } slm_gw_tier_kind;
typedef enum slm_gw_pd_policy { SLM_GW_PD_ALLOW, SLM_GW_PD_REDACT, SLM_GW_PD_LOCAL_ONLY } slm_gw_pd_policy;
typedef enum slm_gw_over_budget { SLM_GW_OVER_REJECT, SLM_GW_OVER_LOCAL } slm_gw_over_budget;

typedef struct slm_gw_upstream_cfg {
    char *name;              /* unique across the config                        */
    char *url;               /* base URL, no trailing slash ("http://h:p")      */
    char *model;             /* model name sent upstream; NULL keeps the client's */
    char *adapter;           /* "openai" or "anthropic"                         */
    char *api_key;           /* secret from api_key_env, NULL when none         */
    char *api_key_env;       /* the variable's name (safe to print)             */
    int timeout_ms;          /* whole request                                   */
    int connect_timeout_ms;  /* TCP connect                                     */
    bool health_check;       /* probe GET url/health (default: local tiers)     */
    int first_byte_timeout_ms;   /* streams: no first byte by then = failure    */
    int stream_idle_timeout_ms;  /* streams: longest silence between chunks     */
    int tier;                /* index of its tier                               */
    int line;                /* where it is defined                             */
} slm_gw_upstream_cfg;

typedef struct slm_gw_tier_cfg {
    char *name;
    slm_gw_tier_kind kind;
    double price_in, price_out;    /* money per million tokens (frontier)       */
    double cost_per_replica_hour;  /* money per replica-hour (local)            */
    int first_upstream, n_upstreams; /* range in slm_gw_config.upstreams        */
    int line;
} slm_gw_tier_cfg;

typedef struct slm_gw_route_cfg {
    char *name;
    char **models; int n_models;     /* match on the request's model alias       */
    char **tasks;  int n_tasks;      /* match on X-SLM-Task / metadata.task      */
    char **keywords; int n_keywords; /* match when the prompt has any (ASCII case-insensitive) */
    long min_prompt_tokens;          /* -1: no bound                             */
    long max_prompt_tokens;          /* -1: no bound                             */
    int private_data;                /* -1 any, 0 only without, 1 only with      */
    int *tiers; int n_tiers;         /* fallback chain: indexes into tiers       */
    slm_gw_pd_policy pd_policy;
    slm_gw_over_budget over_budget;
    /* cascade: answer from the first tier; when the answer fails a check,
     * escalate to the rest of the chain (non-streaming requests) */
    bool cascade;
    double cascade_min_logprob;      /* mean token logprob below it fails; NAN: off */
    bool cascade_json;               /* invalid JSON for a JSON request fails    */
    char **cascade_refusals; int n_cascade_refusals; /* PCRE2 patterns (caseless) */
    /* shadow: a sample of answered requests is also sent to this tier */
    int shadow_tier;                 /* index or -1                              */
    double shadow_sample;            /* fraction 0..1                            */
    int line;
} slm_gw_route_cfg;

typedef struct slm_gw_team_cfg {
    char *name;
    char **keys; int n_keys;         /* gateway API keys (secrets)               */
    double daily, monthly;           /* budgets in money; < 0: none              */
    int line;
} slm_gw_team_cfg;

typedef struct slm_gw_config {
    char *path;                      /* the file it came from                    */
    char *host; int port;            /* listen address; port 0 picks one         */
    char *ledger_path;               /* SQLite file; NULL: none                  */
    char *ledger_postgres;           /* PostgreSQL conninfo (a secret); NULL: none */
    int ledger_pool_size;            /* PostgreSQL connections                   */
    int ledger_spend_cache_ms;       /* -1: the store's default (ledger.h)       */
    char *audit_path;                /* private-data decisions; NULL: stderr     */
    int retry_attempts;              /* extra rounds over the chain after the first */
    int backoff_ms, max_backoff_ms;  /* exponential backoff base and cap         */
    int breaker_failures;            /* consecutive failures that open it        */
    int breaker_cooldown_ms;         /* open time before a half-open probe       */
    int health_interval_ms, health_timeout_ms;
    long max_body;                   /* request body limit in bytes              */
    int counterfactual_tier;         /* index or -1                              */
    slm_gw_tier_cfg *tiers; int n_tiers;
    slm_gw_upstream_cfg *upstreams; int n_upstreams;
    slm_gw_route_cfg *routes; int n_routes;
    slm_gw_team_cfg *teams; int n_teams;
} slm_gw_config;

/* Loads and validates the file at path. On success *out owns the config
 * (free with slm_gw_config_free). On failure err reads "PATH:LINE: …". */
int slm_gw_config_load(const char *path, slm_gw_config **out, slm_err *err);
/* The same from text in memory; name is used in messages. */
int slm_gw_config_parse(const char *text, size_t len, const char *name, slm_gw_config **out, slm_err *err);
void slm_gw_config_free(slm_gw_config *c);

int slm_gw_config_tier(const slm_gw_config *c, const char *name); /* index or -1 */
int slm_gw_config_upstream(const slm_gw_config *c, const char *name);

#endif
