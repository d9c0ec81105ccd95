/*
 * config.c — YAML tree to slm_gw_config, with validation. Every key of
 * every mapping is checked against the keys that place allows (a typo is an
 * error, not a silently ignored line), every scalar against its type and
 * range, every name reference (a route's tiers, counterfactual_tier)
 * against what is defined. The first problem stops the load and is
 * reported as "FILE:LINE: where: what".
 */
#include "gateway/config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/ledger.h"
#include "gateway/yaml.h"
#include "util/alloc.h"
#include "util/err.h"

typedef struct vctx {
    const char *file;
    slm_err *err;
    slm_gw_config *c;
} vctx;

static int fail(vctx *v, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(vctx *v, int line, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return slm_err_set(v->err, SLM_EINVAL, "%s:%d: %s", v->file, line, msg);
}

static int oom(vctx *v) { return slm_err_set(v->err, SLM_ENOMEM, "%s: out of memory", v->file); }

static const char *kind_name(const slm_gw_ynode *n) {
    return n->kind == SLM_GW_Y_MAP ? "a mapping" : n->kind == SLM_GW_Y_SEQ ? "a list" : "a scalar";
}

static int want(vctx *v, const slm_gw_ynode *n, slm_gw_ykind k, const char *where) {
    if (n->kind == k) return 0;
    return fail(v, n->line, "%s must be %s, not %s", where,
                k == SLM_GW_Y_MAP ? "a mapping" : k == SLM_GW_Y_SEQ ? "a list" : "a scalar", kind_name(n));
}

/* Unknown keys are errors: allowed is a NULL-terminated list. */
static int check_keys(vctx *v, const slm_gw_ynode *map, const char *where, const char *const *allowed) {
    for (int i = 0; i < map->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, map->keys[i]);
        if (!ok) return fail(v, map->key_lines[i], "%s: unknown key '%s'", where, map->keys[i]);
    }
    return 0;
}

static int get_str(vctx *v, const slm_gw_ynode *map, const char *key, const char *where, bool required, char **out) {
    int line = map->line;
    const slm_gw_ynode *n = slm_gw_ymap_get(map, key, &line);
    if (!n) return required ? fail(v, map->line, "%s: '%s' is required", where, key) : 0;
    char w[160];
    snprintf(w, sizeof w, "%s.%s", where, key);
    if (want(v, n, SLM_GW_Y_SCALAR, w)) return v->err->code;
    if (!n->str[0]) return fail(v, n->line, "%s must not be empty", w);
    slm_free(*out);
    if (!(*out = slm_strdup(n->str))) return oom(v);
    return 0;
}

static int get_num(vctx *v, const slm_gw_ynode *map, const char *key, const char *where, double lo, double hi,
                   bool integer, double *out) {
    const slm_gw_ynode *n = slm_gw_ymap_get(map, key, NULL);
    if (!n) return 0;
    char w[160];
    snprintf(w, sizeof w, "%s.%s", where, key);
    if (want(v, n, SLM_GW_Y_SCALAR, w)) return v->err->code;
    char *end;
    errno = 0;
    double d = strtod(n->str, &end);
    if (n->quoted || end == n->str || *end || errno || !isfinite(d))
        return fail(v, n->line, "%s: '%s' is not a number", w, n->str);
    if (integer && d != floor(d)) return fail(v, n->line, "%s: '%s' is not a whole number", w, n->str);
    if (d < lo || d > hi) return fail(v, n->line, "%s: %s is out of range [%g, %g]", w, n->str, lo, hi);
    *out = d;
    return 0;
}

static int get_int(vctx *v, const slm_gw_ynode *map, const char *key, const char *where, int lo, int hi, int *out) {
    double d = *out;
    int rc = get_num(v, map, key, where, lo, hi, true, &d);
    if (!rc) *out = (int)d;
    return rc;
}

static int get_bool(vctx *v, const slm_gw_ynode *map, const char *key, const char *where, bool *out) {
    const slm_gw_ynode *n = slm_gw_ymap_get(map, key, NULL);
    if (!n) return 0;
    char w[160];
    snprintf(w, sizeof w, "%s.%s", where, key);
    if (want(v, n, SLM_GW_Y_SCALAR, w)) return v->err->code;
    if (!n->quoted && (!strcmp(n->str, "true") || !strcmp(n->str, "yes"))) *out = true;
    else if (!n->quoted && (!strcmp(n->str, "false") || !strcmp(n->str, "no"))) *out = false;
    else return fail(v, n->line, "%s: '%s' is not true or false", w, n->str);
    return 0;
}

/* A list of non-empty scalars; a single scalar counts as a list of one. */
static int get_list(vctx *v, const slm_gw_ynode *map, const char *key, const char *where, char ***out, int *n_out) {
    const slm_gw_ynode *n = slm_gw_ymap_get(map, key, NULL);
    if (!n) return 0;
    char w[160];
    snprintf(w, sizeof w, "%s.%s", where, key);
    const slm_gw_ynode *const *items = (const slm_gw_ynode *const *)n->kids;
    int cnt = n->n;
    if (n->kind == SLM_GW_Y_SCALAR) { items = (const slm_gw_ynode *const *)&n; cnt = 1; }
    else if (want(v, n, SLM_GW_Y_SEQ, w)) return v->err->code;
    if (cnt == 0) return fail(v, n->line, "%s must not be empty", w);
    char **l = slm_calloc((size_t)cnt, sizeof *l);
    if (!l) return oom(v);
    *out = l;
    for (int i = 0; i < cnt; i++) {
        if (want(v, items[i], SLM_GW_Y_SCALAR, w)) return v->err->code;
        if (!items[i]->str[0]) return fail(v, items[i]->line, "%s[%d] must not be empty", w, i);
        if (!(l[i] = slm_strdup(items[i]->str))) return oom(v);
        *n_out = i + 1;
    }
    return 0;
}

static int get_enum(vctx *v, const slm_gw_ynode *map, const char *key, const char *where, const char *const *names,
                    int *out) {
    const slm_gw_ynode *n = slm_gw_ymap_get(map, key, NULL);
    if (!n) return 0;
    char w[160];
    snprintf(w, sizeof w, "%s.%s", where, key);
    if (want(v, n, SLM_GW_Y_SCALAR, w)) return v->err->code;
    char choices[200] = "";
    for (int i = 0; names[i]; i++) {
        if (!strcmp(n->str, names[i])) { *out = i; return 0; }
        snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s", i ? ", " : "", names[i]);
    }
    return fail(v, n->line, "%s: '%s' is not one of %s", w, n->str, choices);
}

/* A sub-mapping that may be absent; *out NULL then. */
static int get_map(vctx *v, const slm_gw_ynode *map, const char *key, const char *where, const char *const *allowed,
                   const slm_gw_ynode **out) {
    *out = NULL;
    const slm_gw_ynode *n = slm_gw_ymap_get(map, key, NULL);
    if (!n) return 0;
    char w[160];
    snprintf(w, sizeof w, "%s%s%s", where, where[0] ? "." : "", key);
    if (want(v, n, SLM_GW_Y_MAP, w) || check_keys(v, n, w, allowed)) return v->err->code;
    *out = n;
    return 0;
}

/* ---- sections ------------------------------------------------------------ */

static int load_upstream(vctx *v, const slm_gw_ynode *n, const char *where, int tier, slm_gw_upstream_cfg *u) {
    static const char *const keys[] = { "name", "url", "model", "adapter", "api_key_env", "timeout_ms",
                                        "connect_timeout_ms", "first_byte_timeout_ms", "stream_idle_timeout_ms",
                                        "health_check", NULL };
    slm_gw_config *c = v->c;
    if (want(v, n, SLM_GW_Y_MAP, where) || check_keys(v, n, where, keys)) return v->err->code;
    u->line = n->line;
    u->tier = tier;
    u->timeout_ms = 30000;
    u->connect_timeout_ms = 2000;
    u->first_byte_timeout_ms = 15000;
    u->stream_idle_timeout_ms = 30000;
    u->health_check = c->tiers[tier].kind == SLM_GW_LOCAL;
    if (get_str(v, n, "name", where, true, &u->name) || get_str(v, n, "url", where, true, &u->url) ||
        get_str(v, n, "model", where, false, &u->model) || get_str(v, n, "adapter", where, false, &u->adapter) ||
        get_str(v, n, "api_key_env", where, false, &u->api_key_env) ||
        get_int(v, n, "timeout_ms", where, 1, 3600000, &u->timeout_ms) ||
        get_int(v, n, "connect_timeout_ms", where, 1, 600000, &u->connect_timeout_ms) ||
        get_int(v, n, "first_byte_timeout_ms", where, 1, 3600000, &u->first_byte_timeout_ms) ||
        get_int(v, n, "stream_idle_timeout_ms", where, 1, 3600000, &u->stream_idle_timeout_ms) ||
        get_bool(v, n, "health_check", where, &u->health_check))
        return v->err->code;
    const slm_gw_ynode *un = slm_gw_ymap_get(n, "url", NULL);
    if (strncmp(u->url, "http://", 7) && strncmp(u->url, "https://", 8))
        return fail(v, un->line, "%s.url: '%s' must start with http:// or https://", where, u->url);
    size_t len = strlen(u->url);
    while (len > 8 && u->url[len - 1] == '/') u->url[--len] = 0;
    if (!u->adapter && !(u->adapter = slm_strdup("openai"))) return oom(v);
    if (strcmp(u->adapter, "openai") && strcmp(u->adapter, "anthropic"))
        return fail(v, slm_gw_ymap_get(n, "adapter", NULL)->line, "%s.adapter: '%s' is not one of openai, anthropic",
                    where, u->adapter);
    if (u->api_key_env) {
        const char *val = getenv(u->api_key_env);
        if (!val || !val[0])
            return fail(v, slm_gw_ymap_get(n, "api_key_env", NULL)->line,
                        "%s.api_key_env: environment variable %s is not set", where, u->api_key_env);
        if (!(u->api_key = slm_strdup(val))) return oom(v);
    }
    return 0;
}

static int load_tiers(vctx *v, const slm_gw_ynode *seq) {
    static const char *const keys[] = { "name", "kind", "price_in", "price_out", "cost_per_replica_hour", "upstreams",
                                        NULL };
    static const char *const kinds[] = { "local", "frontier", NULL };
    slm_gw_config *c = v->c;
    if (want(v, seq, SLM_GW_Y_SEQ, "tiers")) return v->err->code;
    if (seq->n == 0) return fail(v, seq->line, "tiers: at least one tier is required");
    int n_ups = 0;
    for (int i = 0; i < seq->n; i++) {
        const slm_gw_ynode *u = slm_gw_ymap_get(seq->kids[i], "upstreams", NULL);
        if (u && u->kind == SLM_GW_Y_SEQ) n_ups += u->n;
    }
    if (!(c->tiers = slm_calloc((size_t)seq->n, sizeof *c->tiers))) return oom(v);
    if (n_ups && !(c->upstreams = slm_calloc((size_t)n_ups, sizeof *c->upstreams))) return oom(v);
    for (int i = 0; i < seq->n; i++) {
        const slm_gw_ynode *n = seq->kids[i];
        slm_gw_tier_cfg *t = &c->tiers[i];
        char w[64];
        snprintf(w, sizeof w, "tiers[%d]", i);
        c->n_tiers = i + 1;
        if (want(v, n, SLM_GW_Y_MAP, w) || check_keys(v, n, w, keys)) return v->err->code;
        t->line = n->line;
        int kind = -1;
        if (get_str(v, n, "name", w, true, &t->name) || get_enum(v, n, "kind", w, kinds, &kind) ||
            get_num(v, n, "price_in", w, 0, 1e6, false, &t->price_in) ||
            get_num(v, n, "price_out", w, 0, 1e6, false, &t->price_out) ||
            get_num(v, n, "cost_per_replica_hour", w, 0, 1e6, false, &t->cost_per_replica_hour))
            return v->err->code;
        if (kind < 0) return fail(v, n->line, "%s: 'kind' is required (local or frontier)", w);
        t->kind = (slm_gw_tier_kind)kind;
        for (int j = 0; j < i; j++)
            if (!strcmp(c->tiers[j].name, t->name))
                return fail(v, n->line, "%s: tier name '%s' is already used on line %d", w, t->name, c->tiers[j].line);
        const slm_gw_ynode *ups = slm_gw_ymap_get(n, "upstreams", NULL);
        if (!ups) return fail(v, n->line, "%s: 'upstreams' is required", w);
        if (want(v, ups, SLM_GW_Y_SEQ, "upstreams")) return v->err->code;
        if (ups->n == 0) return fail(v, ups->line, "%s.upstreams: at least one upstream is required", w);
        t->first_upstream = c->n_upstreams;
        for (int j = 0; j < ups->n; j++) {
            char wu[96];
            snprintf(wu, sizeof wu, "%s.upstreams[%d]", w, j);
            slm_gw_upstream_cfg *u = &c->upstreams[c->n_upstreams++];
            t->n_upstreams++;
            if (load_upstream(v, ups->kids[j], wu, i, u)) return v->err->code;
            for (int k = 0; k < c->n_upstreams - 1; k++)
                if (!strcmp(c->upstreams[k].name, u->name))
                    return fail(v, u->line, "%s: upstream name '%s' is already used on line %d", wu, u->name,
                                c->upstreams[k].line);
        }
    }
    return 0;
}

/* A route's cascade and shadow sections (after its tiers are known). */
static int load_cascade_shadow(vctx *v, const slm_gw_ynode *n, const char *w, slm_gw_route_cfg *r,
                               const char *const *cascade_keys, const char *const *shadow_keys) {
    const slm_gw_ynode *cs, *sh;
    char wc[96], ws[96];
    snprintf(wc, sizeof wc, "%s.cascade", w);
    snprintf(ws, sizeof ws, "%s.shadow", w);
    if (get_map(v, n, "cascade", w, cascade_keys, &cs) || get_map(v, n, "shadow", w, shadow_keys, &sh))
        return v->err->code;
    if (cs) {
        r->cascade = true;
        double lp = NAN;
        if (get_num(v, cs, "min_mean_logprob", wc, -1e6, 0, false, &lp) || get_bool(v, cs, "json", wc, &r->cascade_json) ||
            get_list(v, cs, "refusal", wc, &r->cascade_refusals, &r->n_cascade_refusals))
            return v->err->code;
        if (slm_gw_ymap_get(cs, "min_mean_logprob", NULL)) r->cascade_min_logprob = lp;
        for (int k = 0; k < r->n_cascade_refusals; k++) {
            int ec;
            PCRE2_SIZE off;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)r->cascade_refusals[k], PCRE2_ZERO_TERMINATED,
                                           PCRE2_UTF | PCRE2_CASELESS, &ec, &off, NULL);
            if (!re) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(ec, msg, sizeof msg);
                return fail(v, slm_gw_ymap_get(cs, "refusal", NULL)->line, "%s.refusal[%d]: bad regex at %zu: %s", wc, k,
                            (size_t)off, (const char *)msg);
            }
            pcre2_code_free(re);
        }
        if (r->n_tiers < 2) return fail(v, cs->line, "%s: a cascade needs a tier to escalate to (tiers has %d)", wc, r->n_tiers);
        if (isnan(r->cascade_min_logprob) && !r->cascade_json && !r->n_cascade_refusals)
            return fail(v, cs->line, "%s: give at least one check (min_mean_logprob, json, refusal)", wc);
    }
    if (sh) {
        char *tier = NULL;
        double sample = 1.0;
        if (get_str(v, sh, "tier", ws, true, &tier) || get_num(v, sh, "sample", ws, 0, 1, false, &sample)) {
            slm_free(tier);
            return v->err->code;
        }
        r->shadow_tier = slm_gw_config_tier(v->c, tier);
        r->shadow_sample = sample;
        int bad = r->shadow_tier < 0;
        if (bad) fail(v, sh->line, "%s.tier: no tier named '%s'", ws, tier);
        slm_free(tier);
        if (bad) return v->err->code;
    }
    return 0;
}

static int load_routes(vctx *v, const slm_gw_ynode *seq) {
    static const char *const keys[] = { "name", "match", "tiers", "private_data", "over_budget", "cascade", "shadow",
                                        NULL };
    static const char *const cascade_keys[] = { "min_mean_logprob", "json", "refusal", NULL };
    static const char *const shadow_keys[] = { "tier", "sample", NULL };
    static const char *const match_keys[] = { "model", "task", "keywords", "min_prompt_tokens", "max_prompt_tokens",
                                              "private_data", NULL };
    static const char *const pd[] = { "allow", "redact", "local_only", NULL };
    static const char *const ob[] = { "reject", "local", NULL };
    slm_gw_config *c = v->c;
    if (want(v, seq, SLM_GW_Y_SEQ, "routes")) return v->err->code;
    if (seq->n == 0) return fail(v, seq->line, "routes: at least one route is required");
    if (!(c->routes = slm_calloc((size_t)seq->n, sizeof *c->routes))) return oom(v);
    for (int i = 0; i < seq->n; i++) {
        const slm_gw_ynode *n = seq->kids[i], *m;
        slm_gw_route_cfg *r = &c->routes[i];
        char w[64], wm[80];
        snprintf(w, sizeof w, "routes[%d]", i);
        snprintf(wm, sizeof wm, "routes[%d].match", i);
        c->n_routes = i + 1;
        r->min_prompt_tokens = r->max_prompt_tokens = -1;
        r->private_data = -1;
        r->shadow_tier = -1;
        r->cascade_min_logprob = NAN;
        if (want(v, n, SLM_GW_Y_MAP, w) || check_keys(v, n, w, keys)) return v->err->code;
        r->line = n->line;
        int pol = SLM_GW_PD_ALLOW, over = SLM_GW_OVER_REJECT;
        char **tier_names = NULL;
        int n_tier_names = 0;
        int rc = get_str(v, n, "name", w, true, &r->name) || get_map(v, n, "match", w, match_keys, &m) ||
                 get_enum(v, n, "private_data", w, pd, &pol) || get_enum(v, n, "over_budget", w, ob, &over) ||
                 get_list(v, n, "tiers", w, &tier_names, &n_tier_names);
        r->pd_policy = (slm_gw_pd_policy)pol;
        r->over_budget = (slm_gw_over_budget)over;
        if (!rc && !tier_names) rc = fail(v, n->line, "%s: 'tiers' is required (the fallback chain)", w);
        if (!rc && !(r->tiers = slm_calloc((size_t)n_tier_names, sizeof *r->tiers))) rc = oom(v);
        for (int j = 0; !rc && j < n_tier_names; j++) {
            int t = slm_gw_config_tier(c, tier_names[j]);
            if (t < 0) rc = fail(v, slm_gw_ymap_get(n, "tiers", NULL)->line, "%s.tiers: no tier named '%s'", w, tier_names[j]);
            r->tiers[r->n_tiers++] = t;
        }
        for (int j = 0; j < n_tier_names; j++) slm_free(tier_names[j]);
        slm_free(tier_names);
        if (rc) return v->err->code;
        for (int j = 0; j < i; j++)
            if (!strcmp(c->routes[j].name, r->name))
                return fail(v, n->line, "%s: route name '%s' is already used on line %d", w, r->name, c->routes[j].line);
        if (m) {
            double lo = -1, hi = -1;
            bool has_pd = false;
            if (get_list(v, m, "model", wm, &r->models, &r->n_models) ||
                get_list(v, m, "task", wm, &r->tasks, &r->n_tasks) ||
                get_list(v, m, "keywords", wm, &r->keywords, &r->n_keywords) ||
                get_num(v, m, "min_prompt_tokens", wm, 0, 1e9, true, &lo) ||
                get_num(v, m, "max_prompt_tokens", wm, 0, 1e9, true, &hi) || get_bool(v, m, "private_data", wm, &has_pd))
                return v->err->code;
            r->min_prompt_tokens = (long)lo;
            r->max_prompt_tokens = (long)hi;
            if (slm_gw_ymap_get(m, "private_data", NULL)) r->private_data = has_pd;
            if (lo >= 0 && hi >= 0 && lo > hi)
                return fail(v, m->line, "%s: min_prompt_tokens %ld is above max_prompt_tokens %ld", wm,
                            r->min_prompt_tokens, r->max_prompt_tokens);
        }
        if (load_cascade_shadow(v, n, w, r, cascade_keys, shadow_keys)) return v->err->code;
        if (r->pd_policy == SLM_GW_PD_LOCAL_ONLY) {
            bool any_local = false;
            for (int j = 0; j < r->n_tiers; j++) any_local |= c->tiers[r->tiers[j]].kind == SLM_GW_LOCAL;
            if (!any_local)
                return fail(v, n->line, "%s: private_data is local_only but none of its tiers is local", w);
        }
    }
    return 0;
}

static int load_teams(vctx *v, const slm_gw_ynode *seq) {
    static const char *const keys[] = { "name", "keys", "key_env", "budget", NULL };
    static const char *const bkeys[] = { "daily", "monthly", NULL };
    slm_gw_config *c = v->c;
    if (want(v, seq, SLM_GW_Y_SEQ, "teams")) return v->err->code;
    if (seq->n && !(c->teams = slm_calloc((size_t)seq->n, sizeof *c->teams))) return oom(v);
    for (int i = 0; i < seq->n; i++) {
        const slm_gw_ynode *n = seq->kids[i], *b;
        slm_gw_team_cfg *t = &c->teams[i];
        char w[64];
        snprintf(w, sizeof w, "teams[%d]", i);
        c->n_teams = i + 1;
        t->daily = t->monthly = -1;
        if (want(v, n, SLM_GW_Y_MAP, w) || check_keys(v, n, w, keys)) return v->err->code;
        t->line = n->line;
        char *key_env = NULL;
        int rc = get_str(v, n, "name", w, true, &t->name) || get_list(v, n, "keys", w, &t->keys, &t->n_keys) ||
                 get_str(v, n, "key_env", w, false, &key_env) || get_map(v, n, "budget", w, bkeys, &b);
        if (!rc && b) {
            char wb[80];
            snprintf(wb, sizeof wb, "%s.budget", w);
            rc = get_num(v, b, "daily", wb, 0, 1e12, false, &t->daily) ||
                 get_num(v, b, "monthly", wb, 0, 1e12, false, &t->monthly);
        }
        if (!rc && key_env) {
            const char *val = getenv(key_env);
            if (!val || !val[0]) rc = fail(v, n->line, "%s.key_env: environment variable %s is not set", w, key_env);
            int old = t->n_keys;
            char **nk = rc ? NULL : slm_realloc(t->keys, (size_t)(old + 1) * sizeof *nk);
            if (!rc && !nk) rc = oom(v);
            if (!rc) { t->keys = nk; t->keys[old] = slm_strdup(val); if (!t->keys[old]) rc = oom(v); else t->n_keys++; }
        }
        slm_free(key_env);
        if (rc) return v->err->code;
        if (t->n_keys == 0) return fail(v, n->line, "%s: 'keys' or 'key_env' is required", w);
        for (int j = 0; j < i; j++) {
            if (!strcmp(c->teams[j].name, t->name))
                return fail(v, n->line, "%s: team name '%s' is already used on line %d", w, t->name, c->teams[j].line);
            for (int a = 0; a < c->teams[j].n_keys; a++)
                for (int k = 0; k < t->n_keys; k++)
                    if (!strcmp(c->teams[j].keys[a], t->keys[k]))
                        return fail(v, n->line, "%s: a key of team '%s' is also a key of team '%s'", w, t->name,
                                    c->teams[j].name);
        }
    }
    return 0;
}

/* ledger: exactly one store; a conninfo is a secret (never in a message). */
static int load_ledger(vctx *v, const slm_gw_ynode *m) {
    slm_gw_config *c = v->c;
    char *env = NULL;
    const slm_gw_ynode *pg = slm_gw_ymap_get(m, "postgres", NULL), *pe = slm_gw_ymap_get(m, "postgres_env", NULL);
    int n_stores = !!slm_gw_ymap_get(m, "sqlite", NULL) + !!pg + !!pe;
    if (n_stores != 1)
        return fail(v, m->line, "ledger: give %s of sqlite, postgres, postgres_env", n_stores ? "only one" : "one");
    if (get_str(v, m, "sqlite", "ledger", false, &c->ledger_path) ||
        get_str(v, m, "postgres", "ledger", false, &c->ledger_postgres) ||
        get_str(v, m, "postgres_env", "ledger", false, &env) ||
        get_int(v, m, "pool_size", "ledger", 1, 256, &c->ledger_pool_size) ||
        get_int(v, m, "spend_cache_ms", "ledger", 0, 3600000, &c->ledger_spend_cache_ms)) {
        slm_free(env);
        return v->err->code;
    }
    if (env) {
        const char *val = getenv(env);
        int bad = !val || !val[0];
        if (bad) fail(v, pe->line, "ledger.postgres_env: environment variable %s is not set", env);
        slm_free(env);
        if (bad) return v->err->code;
        if (!(c->ledger_postgres = slm_strdup(val))) return oom(v);
    }
    char msg[300];
    if (c->ledger_postgres && slm_gw_ledger_pg_check(c->ledger_postgres, msg, sizeof msg))
        return fail(v, (pg ? pg : pe)->line, "ledger.%s: not a valid PostgreSQL connection string: %s",
                    pg ? "postgres" : "postgres_env", msg);
    if (!c->ledger_postgres && slm_gw_ymap_get(m, "pool_size", NULL))
        return fail(v, slm_gw_ymap_get(m, "pool_size", NULL)->line, "ledger.pool_size: only a postgres ledger has a pool");
    return 0;
}

static int load_root(vctx *v, const slm_gw_ynode *root) {
    static const char *const keys[] = { "listen", "ledger", "audit_log", "retry", "breaker", "health",
                                        "counterfactual_tier", "max_body", "tiers", "routes", "teams", NULL };
    static const char *const lkeys[] = { "host", "port", NULL };
    static const char *const ledkeys[] = { "sqlite", "postgres", "postgres_env", "spend_cache_ms", "pool_size", NULL };
    static const char *const rkeys[] = { "attempts", "backoff_ms", "max_backoff_ms", NULL };
    static const char *const bkeys[] = { "failures", "cooldown_ms", NULL };
    static const char *const hkeys[] = { "interval_ms", "timeout_ms", NULL };
    slm_gw_config *c = v->c;
    const slm_gw_ynode *m, *t;
    if (want(v, root, SLM_GW_Y_MAP, "the config") || check_keys(v, root, "config", keys)) return v->err->code;
    if (get_map(v, root, "listen", "", lkeys, &m)) return v->err->code;
    if (m && (get_str(v, m, "host", "listen", false, &c->host) || get_int(v, m, "port", "listen", 0, 65535, &c->port)))
        return v->err->code;
    if (!c->host && !(c->host = slm_strdup("127.0.0.1"))) return oom(v);
    if (get_map(v, root, "ledger", "", ledkeys, &m) || (m && load_ledger(v, m))) return v->err->code;
    if (get_str(v, root, "audit_log", "config", false, &c->audit_path)) return v->err->code;
    if (get_map(v, root, "retry", "", rkeys, &m) ||
        (m && (get_int(v, m, "attempts", "retry", 0, 10, &c->retry_attempts) ||
               get_int(v, m, "backoff_ms", "retry", 0, 60000, &c->backoff_ms) ||
               get_int(v, m, "max_backoff_ms", "retry", 0, 600000, &c->max_backoff_ms))))
        return v->err->code;
    if (get_map(v, root, "breaker", "", bkeys, &m) ||
        (m && (get_int(v, m, "failures", "breaker", 1, 1000, &c->breaker_failures) ||
               get_int(v, m, "cooldown_ms", "breaker", 1, 3600000, &c->breaker_cooldown_ms))))
        return v->err->code;
    if (get_map(v, root, "health", "", hkeys, &m) ||
        (m && (get_int(v, m, "interval_ms", "health", 0, 3600000, &c->health_interval_ms) ||
               get_int(v, m, "timeout_ms", "health", 1, 600000, &c->health_timeout_ms))))
        return v->err->code;
    double mb = (double)c->max_body;
    if (get_num(v, root, "max_body", "config", 1024, 1e9, true, &mb)) return v->err->code;
    c->max_body = (long)mb;
    if (!(t = slm_gw_ymap_get(root, "tiers", NULL))) return fail(v, root->line, "config: 'tiers' is required");
    if (load_tiers(v, t)) return v->err->code;
    if (!(t = slm_gw_ymap_get(root, "routes", NULL))) return fail(v, root->line, "config: 'routes' is required");
    if (load_routes(v, t)) return v->err->code;
    if ((t = slm_gw_ymap_get(root, "teams", NULL)) && load_teams(v, t)) return v->err->code;
    char *cf = NULL;
    if (get_str(v, root, "counterfactual_tier", "config", false, &cf)) return v->err->code;
    if (cf) {
        c->counterfactual_tier = slm_gw_config_tier(c, cf);
        int line = slm_gw_ymap_get(root, "counterfactual_tier", NULL)->line;
        bool bad = c->counterfactual_tier < 0 || c->tiers[c->counterfactual_tier].kind != SLM_GW_FRONTIER;
        if (bad) fail(v, line, "counterfactual_tier: '%s' is not a frontier tier", cf);
        slm_free(cf);
        if (bad) return v->err->code;
    } else {
        for (int i = 0; i < c->n_tiers && c->counterfactual_tier < 0; i++)
            if (c->tiers[i].kind == SLM_GW_FRONTIER) c->counterfactual_tier = i;
    }
    return 0;
}

int slm_gw_config_parse(const char *text, size_t len, const char *name, slm_gw_config **out, slm_err *err) {
    slm_err local = { 0 };
    if (!err) err = &local;
    *out = NULL;
    slm_gw_ynode *root = NULL;
    int rc = slm_gw_yaml_parse(text, len, &root, err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return slm_err_set(err, rc, "%s:%s", name, msg);
    }
    slm_gw_config *c = slm_calloc(1, sizeof *c);
    vctx v = { name, err, c };
    if (!c) { slm_gw_ynode_free(root); return oom(&v); }
    c->retry_attempts = 1;
    c->backoff_ms = 50;
    c->max_backoff_ms = 2000;
    c->breaker_failures = 5;
    c->breaker_cooldown_ms = 10000;
    c->health_interval_ms = 2000;
    c->health_timeout_ms = 1000;
    c->max_body = 8 << 20;
    c->counterfactual_tier = -1;
    c->ledger_pool_size = 4;
    c->ledger_spend_cache_ms = -1;
    if (!(c->path = slm_strdup(name))) rc = oom(&v);
    if (!rc) rc = load_root(&v, root);
    slm_gw_ynode_free(root);
    if (rc) { slm_gw_config_free(c); return rc; }
    *out = c;
    return 0;
}

int slm_gw_config_load(const char *path, slm_gw_config **out, slm_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return slm_err_set(err, SLM_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0, r;
    int rc = 0;
    do {
        if (cap - len < 4096) {
            if (cap > (64u << 20)) { rc = slm_err_set(err, SLM_ERANGE, "%s: larger than 64 MiB", path); break; }
            char *nb = slm_realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!nb) { rc = slm_err_set(err, SLM_ENOMEM, "%s: out of memory", path); break; }
            buf = nb;
        }
        r = fread(buf + len, 1, cap - len, f);
        len += r;
    } while (r > 0);
    if (!rc && ferror(f)) rc = slm_err_set(err, SLM_EIO, "%s: read error", path);
    fclose(f);
    if (!rc) rc = slm_gw_config_parse(buf, len, path, out, err);
    slm_free(buf);
    return rc;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) slm_free(l[i]);
    slm_free(l);
}

/* Overwrites a secret before freeing it. */
static void free_secret(char *s) {
    if (!s) return;
    volatile char *p = s;
    while (*p) *p++ = 0;
    slm_free(s);
}

void slm_gw_config_free(slm_gw_config *c) {
    if (!c) return;
    for (int i = 0; i < c->n_upstreams; i++) {
        slm_gw_upstream_cfg *u = &c->upstreams[i];
        slm_free(u->name); slm_free(u->url); slm_free(u->model); slm_free(u->adapter);
        free_secret(u->api_key); slm_free(u->api_key_env);
    }
    for (int i = 0; i < c->n_tiers; i++) slm_free(c->tiers[i].name);
    for (int i = 0; i < c->n_routes; i++) {
        slm_gw_route_cfg *r = &c->routes[i];
        slm_free(r->name);
        free_list(r->models, r->n_models);
        free_list(r->tasks, r->n_tasks);
        free_list(r->keywords, r->n_keywords);
        free_list(r->cascade_refusals, r->n_cascade_refusals);
        slm_free(r->tiers);
    }
    for (int i = 0; i < c->n_teams; i++) {
        slm_gw_team_cfg *t = &c->teams[i];
        slm_free(t->name);
        for (int k = 0; k < t->n_keys; k++) free_secret(t->keys[k]);
        slm_free(t->keys);
    }
    slm_free(c->upstreams); slm_free(c->tiers); slm_free(c->routes); slm_free(c->teams);
    slm_free(c->path); slm_free(c->host); slm_free(c->ledger_path); slm_free(c->audit_path);
    free_secret(c->ledger_postgres);
    slm_free(c);
}

int slm_gw_config_tier(const slm_gw_config *c, const char *name) {
    for (int i = 0; i < c->n_tiers; i++)
        if (!strcmp(c->tiers[i].name, name)) return i;
    return -1;
}

int slm_gw_config_upstream(const slm_gw_config *c, const char *name) {
    for (int i = 0; i < c->n_upstreams; i++)
        if (!strcmp(c->upstreams[i].name, name)) return i;
    return -1;
}
