/*
 * proxy.c — one request through the gateway:
 *   1. auth: the bearer key names a team (when teams are configured);
 *   2. parse the body, find the task (X-SLM-Task or metadata.task), gather
 *      the prompt text, scan it for private data, estimate prompt tokens;
 *   3. route: the first route whose match holds (model alias, task, token
 *      bounds, private data, keywords);
 *   4. budget: over its daily or monthly budget a team gets 429, or only the
 *      local tiers when the route says over_budget: local;
 *   5. private data: local_only keeps the request on local tiers (503 if
 *      none is up: it fails closed), redact masks it, allow passes it; the
 *      decision goes to the audit log (kinds only, never the data);
 *   6. fallback: the route's tiers in order; within a tier, upstreams by
 *      least outstanding requests, skipping unhealthy ones and open
 *      breakers. A connect error, timeout, reset, 5xx or 429 moves on to the
 *      next; when all failed, the chain is tried again after an exponential
 *      backoff with jitter, up to retry.attempts more rounds. A stream
 *      counts as answered at its first body byte: until then every failure
 *      (including no first byte within first_byte_timeout_ms) falls back
 *      like any other; after it, the bytes go to the client as they come
 *      (stream.c). A cascade route answers from its first tier, with the
 *      token logprobs asked for, and escalates to the rest of the chain when
 *      the answer fails a check (cascade.c);
 *   7. cost and counterfactual cost, one ledger row, made durable before the
 *      reply goes back (a ledger failure turns the reply into a 503); a
 *      sampled copy for the route's shadow tier (shadow.c).
 */
#include "gateway/gw.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gateway/adapter.h"
#include "gateway/proxy.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"

typedef slm_gw_call req_ctx;

/* ---- replies --------------------------------------------------------------- */

static void reply_error(req_ctx *c, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(req_ctx *c, int status, const char *type, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "error");
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "message"); slm_jw_str(&w, c->error);
    slm_jw_key(&w, "type"); slm_jw_str(&w, type);
    slm_jw_key(&w, "request_id"); slm_jw_str(&w, c->rp->request_id);
    slm_jw_obj_close(&w);
    slm_jw_obj_close(&w);
    slm_free(c->rp->body);
    c->rp->body = slm_jw_take(&w, &c->rp->len);
    c->rp->status = status;
    snprintf(c->rp->content_type, sizeof c->rp->content_type, "application/json");
}

/* ---- request analysis ------------------------------------------------------ */

static int text_add(req_ctx *c, const char *s) {
    size_t n = strlen(s);
    if (c->text_len + n + 2 > c->text_cap) {
        size_t nc = c->text_cap ? c->text_cap : 1024;
        while (nc < c->text_len + n + 2) nc *= 2;
        char *nt = slm_realloc(c->text, nc);
        if (!nt) return SLM_ENOMEM;
        c->text = nt;
        c->text_cap = nc;
    }
    memcpy(c->text + c->text_len, s, n);
    c->text_len += n;
    c->text[c->text_len++] = '\n';
    c->text[c->text_len] = 0;
    return 0;
}

/* Calls fn on every prompt string node: messages[].content (a string or
 * text parts) and prompt (a string or a list of strings). */
typedef int (*str_fn)(req_ctx *c, cJSON *node);

static int each_string(req_ctx *c, str_fn fn) {
    cJSON *m, *p;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c->json, "messages")) {
        cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(content)) { int rc = fn(c, content); if (rc) return rc; }
        else cJSON_ArrayForEach(p, content) {
            cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (cJSON_IsString(t)) { int rc = fn(c, t); if (rc) return rc; }
        }
    }
    cJSON *prompt = cJSON_GetObjectItemCaseSensitive(c->json, "prompt");
    if (cJSON_IsString(prompt)) return fn(c, prompt);
    cJSON_ArrayForEach(p, prompt)
        if (cJSON_IsString(p)) { int rc = fn(c, p); if (rc) return rc; }
    return 0;
}

static int gather(req_ctx *c, cJSON *n) { return text_add(c, n->valuestring); }

static int redact_node(req_ctx *c, cJSON *n) {
    char *out = NULL;
    unsigned mask = 0;
    int rc = slm_gw_redact(c->gw->det, n->valuestring, strlen(n->valuestring), &out, &mask);
    if (rc) return rc;
    if (mask) {
        char *copy = cJSON_malloc(strlen(out) + 1);
        if (!copy) { slm_free(out); return SLM_ENOMEM; }
        strcpy(copy, out);
        cJSON_free(n->valuestring);
        n->valuestring = copy;
    }
    slm_free(out);
    return 0;
}

static bool has_keyword(const char *text, const char *kw) {
    size_t k = strlen(kw);
    for (const char *p = text; *p; p++)
        if (!strncasecmp(p, kw, k)) return true;
    return false;
}

static bool in_list(char **l, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(l[i], s)) return true;
    return false;
}

static const slm_gw_route_cfg *pick_route(req_ctx *c) {
    for (int i = 0; i < c->cfg->n_routes; i++) {
        const slm_gw_route_cfg *r = &c->cfg->routes[i];
        if (r->n_models && !in_list(r->models, r->n_models, c->model)) continue;
        if (r->n_tasks && !in_list(r->tasks, r->n_tasks, c->task)) continue;
        if (r->min_prompt_tokens >= 0 && c->prompt_est < r->min_prompt_tokens) continue;
        if (r->max_prompt_tokens >= 0 && c->prompt_est > r->max_prompt_tokens) continue;
        if (r->private_data >= 0 && (c->pd_mask != 0) != (r->private_data == 1)) continue;
        if (r->n_keywords) {
            bool any = false;
            for (int k = 0; k < r->n_keywords && !any; k++) any = has_keyword(c->text ? c->text : "", r->keywords[k]);
            if (!any) continue;
        }
        return r;
    }
    return NULL;
}

static void kinds_text(unsigned mask, char *buf, size_t cap) {
    buf[0] = 0;
    for (int k = 0; k < SLM_GW_PD_N_KINDS; k++)
        if (mask & (1u << k))
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? "," : "", slm_gw_pd_kind_name(k));
}

static void audit(req_ctx *c, const char *decision) {
    char kinds[128];
    kinds_text(c->pd_mask, kinds, sizeof kinds);
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "time"); slm_jw_num(&w, slm_gw_wall());
    slm_jw_key(&w, "request_id"); slm_jw_str(&w, c->rp->request_id);
    slm_jw_key(&w, "team"); slm_jw_str(&w, c->team ? c->team->name : NULL);
    slm_jw_key(&w, "route"); slm_jw_str(&w, c->route ? c->route->name : NULL);
    slm_jw_key(&w, "private_data"); slm_jw_str(&w, kinds);
    slm_jw_key(&w, "decision"); slm_jw_str(&w, decision);
    slm_jw_obj_close(&w);
    size_t n;
    char *line = slm_jw_take(&w, &n);
    if (!line) return;
    pthread_mutex_lock(&c->gw->audit_mu);
    FILE *f = c->gw->audit ? c->gw->audit : stderr;
    fprintf(f, "%s\n", line);
    fflush(f);
    pthread_mutex_unlock(&c->gw->audit_mu);
    slm_free(line);
}

/* ---- upstream attempts ------------------------------------------------------ */

typedef enum { ATT_OK, ATT_CLIENT_ERROR, ATT_FAILED, ATT_SKIPPED } att_result;

static bool retryable(const slm_gw_http_resp *rs) {
    return rs->fail != SLM_GW_FAIL_NONE || rs->status >= 500 || rs->status == 429 || rs->status == 0;
}

/* Sends the request to upstream i. On ATT_OK / ATT_CLIENT_ERROR the reply
 * is filled. */
static att_result attempt(req_ctx *c, int i) {
    const slm_gw_upstream_cfg *u = &c->cfg->upstreams[i];
    slm_gw_upstate *st = c->snap->ups[i];
    double now = slm_gw_now();
    if (!slm_gw_breaker_allow(&st->breaker, now)) return ATT_SKIPPED;
    const slm_gw_adapter *ad = slm_gw_adapter_find(u->adapter);
    if (c->stream && ad && !ad->streams) {
        snprintf(c->error, sizeof c->error, "upstream %s (%s adapter) cannot stream", u->name, ad->name);
        return ATT_SKIPPED;
    }
    cJSON *model = cJSON_GetObjectItemCaseSensitive(c->json, "model");
    if (u->model) {
        if (model) cJSON_ReplaceItemInObjectCaseSensitive(c->json, "model", cJSON_CreateString(u->model));
        else cJSON_AddStringToObject(c->json, "model", u->model);
    }
    slm_gw_up_request ur = { 0 };
    int rc = ad ? ad->build(u, c->endpoint, c->json, &ur) : SLM_EUNSUPPORTED;
    if (rc) {
        slm_gw_breaker_record(&st->breaker, true, now, c->cfg->breaker_failures, c->cfg->breaker_cooldown_ms);
        snprintf(c->error, sizeof c->error, "upstream %s cannot serve %s", u->name, c->endpoint);
        slm_gw_up_request_clear(&ur);
        return ATT_FAILED;
    }
    slm_gw_http_req hr = { .method = "POST", .url = ur.url, .headers = ur.headers, .n_headers = ur.n_headers,
                           .body = ur.body, .len = ur.len, .timeout_ms = u->timeout_ms,
                           .connect_timeout_ms = u->connect_timeout_ms, .max_response = 64u << 20 };
    slm_gw_http_resp rs;
    c->load_at_start = atomic_fetch_add(&st->outstanding, 1) + 1;
    atomic_fetch_add(&st->n_requests, 1);
    slm_gw_stream *up = NULL;
    if (c->stream) {
        hr.first_byte_timeout_ms = u->first_byte_timeout_ms;
        hr.max_response = 1u << 20;
        rc = slm_gw_stream_open(c->gw->client, &hr, u->stream_idle_timeout_ms, &up, &rs);
        if (!rc && (rs.fail != SLM_GW_FAIL_NONE || rs.status / 100 != 2)) { slm_gw_stream_close(up); up = NULL; }
    } else {
        rc = slm_gw_client_do(c->gw->client, &hr, &rs);
    }
    if (!up) atomic_fetch_sub(&st->outstanding, 1);   /* a live stream holds it until it ends */
    slm_gw_up_request_clear(&ur);
    if (rc) return ATT_FAILED;
    if (up) {   /* live: the front reads the rest (stream.c) */
        slm_gw_breaker_record(&st->breaker, true, slm_gw_now(), c->cfg->breaker_failures, c->cfg->breaker_cooldown_ms);
        if (ad->stream_event) {
            c->sse = slm_calloc(1, sizeof *c->sse);
            if (!c->sse) {
                atomic_fetch_sub(&st->outstanding, 1);
                slm_gw_stream_close(up);
                snprintf(c->error, sizeof c->error, "out of memory");
                return ATT_FAILED;
            }
            c->sse->tokens_in = c->sse->tokens_out = -1;
            c->tr = ad;
        }
        c->up = up;
        c->up_index = i;
        c->rp->status = rs.status;
        snprintf(c->rp->content_type, sizeof c->rp->content_type, "%s",
                 rs.content_type[0] ? rs.content_type : "text/event-stream");
        return ATT_OK;
    }
    bool failed = retryable(&rs);
    slm_gw_breaker_record(&st->breaker, !failed, slm_gw_now(), c->cfg->breaker_failures, c->cfg->breaker_cooldown_ms);
    if (failed) {
        atomic_fetch_add(&st->n_failures, 1);
        if (rs.fail != SLM_GW_FAIL_NONE) snprintf(c->error, sizeof c->error, "upstream %.60s: %.180s", u->name, rs.error);
        else snprintf(c->error, sizeof c->error, "upstream %.60s: HTTP %d", u->name, rs.status);
        slm_gw_http_resp_clear(&rs);
        return ATT_FAILED;
    }
    char *tr = NULL;
    size_t tr_len = 0;
    if (rs.status / 100 == 2 && ad->translate(u, rs.body, rs.len, &tr, &tr_len)) {
        /* an answer the adapter cannot read is the upstream's failure */
        snprintf(c->error, sizeof c->error, "upstream %s: unreadable answer", u->name);
        slm_gw_http_resp_clear(&rs);
        return ATT_FAILED;
    }
    slm_gw_reply *rp = c->rp;
    slm_free(rp->body);
    if (tr) {
        rp->body = slm_strndup(tr, tr_len);
        rp->len = tr_len;
        cJSON_free(tr);
        slm_gw_http_resp_clear(&rs);
    } else {
        rp->body = rs.body ? rs.body : slm_strdup("");
        rp->len = rs.len;
    }
    rp->status = rs.status;
    snprintf(rp->content_type, sizeof rp->content_type, "%s", rs.content_type[0] ? rs.content_type : "application/json");
    c->up_index = i;
    return rs.status / 100 == 2 ? ATT_OK : ATT_CLIENT_ERROR;
}

/* Upstreams of tier t that may take a request, least outstanding first
 * (ties broken by a rotating start so equal replicas share the load). */
int slm_gw_candidates(slm_gw_snap *snap, int t, unsigned rot, int *out) {
    const slm_gw_tier_cfg *tier = &snap->cfg->tiers[t];
    int n = 0;
    double now = slm_gw_now();
    for (int k = 0; k < tier->n_upstreams; k++) {
        int i = tier->first_upstream + (int)((rot + (unsigned)k) % (unsigned)tier->n_upstreams);
        slm_gw_upstate *st = snap->ups[i];
        if (!atomic_load(&st->healthy) || !slm_gw_breaker_peek(&st->breaker, now)) continue;
        int load = atomic_load(&st->outstanding), j = n++;
        while (j > 0 && atomic_load(&snap->ups[out[j - 1]]->outstanding) > load) { out[j] = out[j - 1]; j--; }
        out[j] = i;
    }
    return n;
}

static void backoff_sleep(const slm_gw_config *cfg, int round, unsigned *seed) {
    double ms = cfg->backoff_ms;
    for (int i = 0; i < round && ms < cfg->max_backoff_ms; i++) ms *= 2;
    if (ms > cfg->max_backoff_ms) ms = cfg->max_backoff_ms;
    ms *= 0.5 + 0.5 * (double)rand_r(seed) / RAND_MAX;   /* jitter: 50–100% */
    struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6) };
    nanosleep(&ts, NULL);
}

/* Runs the fallback chain over the route's tiers [k0, k1) for up to
 * `rounds` rounds; fills the reply. True when an upstream answered (2xx or
 * a client error it reported). */
static bool forward_range(req_ctx *c, int k0, int k1, int rounds) {
    const slm_gw_route_cfg *r = c->route;
    int *cand = slm_malloc((size_t)(c->cfg->n_upstreams + 1) * sizeof *cand);
    if (!cand) { reply_error(c, 500, "server_error", "out of memory"); return false; }
    unsigned seed = (unsigned)(slm_gw_now() * 1e6) ^ (unsigned)atomic_load(&c->gw->seq);
    bool any_tried = false, first = true;
    for (int round = 0; round < rounds; round++) {
        if (round > 0) {
            atomic_fetch_add(&c->gw->m.retries, 1);
            backoff_sleep(c->cfg, round - 1, &seed);
        }
        for (int k = k0; k < k1; k++) {
            int t = r->tiers[k];
            if (c->local_only && c->cfg->tiers[t].kind != SLM_GW_LOCAL) continue;
            int n = slm_gw_candidates(c->snap, t, (unsigned)atomic_load(&c->gw->seq), cand);
            for (int j = 0; j < n; j++) {
                if (!first) atomic_fetch_add(&c->gw->m.fallbacks, 1);
                att_result a = attempt(c, cand[j]);
                if (a == ATT_SKIPPED) continue;
                any_tried = true;
                first = false;
                if (a == ATT_OK || a == ATT_CLIENT_ERROR) { slm_free(cand); return true; }
            }
        }
    }
    slm_free(cand);
    if (!any_tried && c->local_only)
        reply_error(c, 503, "unavailable", "no local upstream is available and this request must stay local (%s)",
                    c->restrict_reason);
    else if (!any_tried)
        reply_error(c, 503, "unavailable", "no upstream of route '%s' is available", r->name);
    else {
        char last[200];
        snprintf(last, sizeof last, "%.199s", c->error);
        reply_error(c, 502, "upstream_error", "all upstreams failed; last: %s", last);
    }
    return false;
}

static void forward(req_ctx *c) { forward_range(c, 0, c->route->n_tiers, c->cfg->retry_attempts + 1); }

/* Sets (or, with value NULL, restores) the logprobs request field. */
static void set_logprobs(req_ctx *c, cJSON *saved) {
    cJSON_DeleteItemFromObjectCaseSensitive(c->json, "logprobs");
    if (saved) cJSON_AddItemToObject(c->json, "logprobs", saved);
}

/* A cascade: the first tier answers (one round, logprobs on); a failed
 * check escalates to the rest of the chain, unless the request must stay
 * local. If the escalation fails too, the local answer stands. */
static void cascade(req_ctx *c) {
    const slm_gw_route_cfg *r = c->route;
    bool chat = !strcmp(c->endpoint, "/chat/completions");
    cJSON *orig = cJSON_DetachItemFromObjectCaseSensitive(c->json, "logprobs");
    bool client_lp = orig && !cJSON_IsFalse(orig) && !cJSON_IsNull(orig);
    if (!client_lp) cJSON_AddItemToObject(c->json, "logprobs", chat ? cJSON_CreateTrue() : cJSON_CreateNumber(1));
    else cJSON_AddItemToObject(c->json, "logprobs", cJSON_Duplicate(orig, true));
    bool answered = forward_range(c, 0, 1, 1);
    set_logprobs(c, orig);
    if (!answered || c->rp->status / 100 != 2) {   /* the first tier failed: plain fallback */
        if (c->rp->status / 100 != 2) {
            snprintf(c->cascade, sizeof c->cascade, "first_tier_failed");
            forward_range(c, 1, r->n_tiers, c->cfg->retry_attempts + 1);
        }
        return;
    }
    double lp;
    const char *why = slm_gw_cascade_check(r, c->json, c->rp->body, c->rp->len, &lp);
    if (!client_lp) slm_gw_strip_logprobs(&c->rp->body, &c->rp->len);
    if (!why) {
        snprintf(c->cascade, sizeof c->cascade, "accepted");
        atomic_fetch_add(&c->gw->m.cascade_accepted, 1);
        return;
    }
    if (c->local_only) {   /* nowhere to escalate to: the local answer stands */
        snprintf(c->cascade, sizeof c->cascade, "kept_local:%s", why);
        return;
    }
    atomic_fetch_add(&c->gw->m.cascade_escalated, 1);
    slm_gw_reply keep = *c->rp;
    int keep_up = c->up_index;
    c->rp->body = NULL;
    c->rp->len = 0;
    if (forward_range(c, 1, r->n_tiers, c->cfg->retry_attempts + 1) && c->rp->status / 100 == 2) {
        snprintf(c->cascade, sizeof c->cascade, "escalated:%s", why);
        slm_free(keep.body);
        return;
    }
    slm_free(c->rp->body);   /* the escalation failed: answer with what we had */
    *c->rp = keep;
    c->up_index = keep_up;
    snprintf(c->cascade, sizeof c->cascade, "escalation_failed:%s", why);
}

/* ---- cost ---------------------------------------------------------------- */

double slm_gw_tier_cost(const slm_gw_tier_cfg *t, long in, long out, double seconds, int sharing) {
    if (t->kind == SLM_GW_FRONTIER)
        return in < 0 || out < 0 ? 0 : ((double)in * t->price_in + (double)out * t->price_out) / 1e6;
    /* the replica's time, shared by the requests it ran at once */
    return t->cost_per_replica_hour * seconds / 3600.0 / (sharing > 0 ? sharing : 1);
}

/* Tokens (from usage, else estimated) and the cost of the answer, plus the
 * counterfactual cost at the frontier tier. A live stream counts what
 * passed through it (stream.c); a plain answer reads its usage. */
static void price(req_ctx *c, double latency_s) {
    long in = -1, out = -1;
    if (c->up) {
        in = c->s_in;
        out = c->s_out >= 0 ? c->s_out : c->s_chunks;
    } else {
        if (c->up_index >= 0 && c->rp->status / 100 == 2) slm_gw_usage(c->rp->body, c->rp->len, &in, &out);
        if (out < 0) out = c->rp->status / 100 == 2 ? (long)(c->rp->len / 4) : 0;
    }
    if (in < 0) in = c->prompt_est;
    c->tok_in = in;
    c->tok_out = out;
    if (c->up_index >= 0)
        c->cost = slm_gw_tier_cost(&c->cfg->tiers[c->cfg->upstreams[c->up_index].tier], in, out, latency_s,
                                   c->load_at_start);
    if (c->cfg->counterfactual_tier >= 0)
        c->cf_cost = slm_gw_tier_cost(&c->cfg->tiers[c->cfg->counterfactual_tier], in, out, 0, 1);
}

/* ---- the request ----------------------------------------------------------- */

static const slm_gw_team_cfg *find_team(const slm_gw_config *cfg, const char *auth) {
    if (!auth || strncasecmp(auth, "Bearer ", 7)) return NULL;
    const char *key = auth + 7;
    while (*key == ' ') key++;
    for (int i = 0; i < cfg->n_teams; i++)
        for (int k = 0; k < cfg->teams[i].n_keys; k++)
            if (!strcmp(cfg->teams[i].keys[k], key)) return &cfg->teams[i];
    return NULL;
}

static void handle(req_ctx *c) {
    const slm_gw_config *cfg = c->cfg;
    if (cfg->n_teams && !(c->team = find_team(cfg, c->rq->authorization))) {
        reply_error(c, 401, "invalid_api_key", "missing or unknown API key");
        return;
    }
    c->json = cJSON_ParseWithLength(c->rq->body, c->rq->len);
    if (!cJSON_IsObject(c->json)) { reply_error(c, 400, "invalid_request_error", "the body is not a JSON object"); return; }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(c->json, "model");
    snprintf(c->model, sizeof c->model, "%s", cJSON_IsString(model) ? model->valuestring : "");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c->json, "metadata"), "task");
    if (c->rq->task && c->rq->task[0]) snprintf(c->task, sizeof c->task, "%s", c->rq->task);
    else if (cJSON_IsString(task)) snprintf(c->task, sizeof c->task, "%s", task->valuestring);
    c->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->json, "stream"));
    if (each_string(c, gather)) { reply_error(c, 500, "server_error", "out of memory"); return; }
    c->prompt_est = (long)(c->text_len / 4) + 1;
    slm_gw_pd_hits hits = { 0 };
    if (c->text && slm_gw_detect(c->gw->det, c->text, c->text_len, &hits)) {
        slm_gw_pd_hits_free(&hits);
        reply_error(c, 500, "server_error", "out of memory");
        return;
    }
    c->pd_mask = hits.mask;
    slm_gw_pd_hits_free(&hits);
    if (!(c->route = pick_route(c))) {
        reply_error(c, 404, "model_not_found", "no route for model '%s'%s%s", c->model, c->task[0] ? " and task " : "",
                    c->task);
        return;
    }
    snprintf(c->rp->route, sizeof c->rp->route, "%s", c->route->name);
    if (c->team && c->gw->ledger && (c->team->daily >= 0 || c->team->monthly >= 0)) {
        double day = 0, month = 0;
        slm_err err = { 0 };
        if (slm_gw_ledger_spend(c->gw->ledger, c->team->name, slm_gw_wall(), &day, &month, &err)) {
            reply_error(c, 503, "unavailable", "ledger unavailable: %s", err.msg);
            return;
        }
        bool over = (c->team->daily >= 0 && day >= c->team->daily) || (c->team->monthly >= 0 && month >= c->team->monthly);
        if (over && c->route->over_budget == SLM_GW_OVER_REJECT) {
            atomic_fetch_add(&c->gw->m.rejected_budget, 1);
            c->rp->retry_after = 3600;
            reply_error(c, 429, "budget_exceeded", "team '%s' is over its %s budget", c->team->name,
                        c->team->daily >= 0 && day >= c->team->daily ? "daily" : "monthly");
            return;
        }
        if (over) { c->local_only = true; c->restrict_reason = "budget"; }
    }
    if (c->pd_mask) {
        switch (c->route->pd_policy) {
        case SLM_GW_PD_LOCAL_ONLY:
            c->local_only = true;
            c->restrict_reason = "private_data";
            atomic_fetch_add(&c->gw->m.private_local, 1);
            audit(c, "local_only");
            break;
        case SLM_GW_PD_REDACT:
            if (each_string(c, redact_node)) { reply_error(c, 500, "server_error", "out of memory"); return; }
            atomic_fetch_add(&c->gw->m.private_redacted, 1);
            audit(c, "redact");
            break;
        case SLM_GW_PD_ALLOW: audit(c, "allow"); break;
        }
    }
    if (c->route->cascade && !c->stream) cascade(c);   /* a stream cannot be judged before it is sent */
    else forward(c);
}

static const double LAT_BOUNDS[12] = { .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10 };

static void observe_latency(slm_gw_metrics *m, double s) {
    for (int i = 0; i < 12; i++)
        if (s <= LAT_BOUNDS[i]) atomic_fetch_add(&m->lat_buckets[i], 1);
    atomic_fetch_add(&m->lat_count, 1);
    atomic_fetch_add(&m->lat_sum_us, (uint64_t)(s * 1e6));
}

slm_gw_rstat *slm_gw_rstat_get(slm_gw *gw, const char *route, const char *tier) {
    int n = atomic_load(&gw->n_rstats);
    for (int i = 0; i < n; i++)
        if (!strcmp(gw->rstats[i].route, route) && !strcmp(gw->rstats[i].tier, tier)) return &gw->rstats[i];
    slm_gw_rstat *e = NULL;
    pthread_mutex_lock(&gw->rstat_mu);
    if (!gw->rstats) gw->rstats = slm_calloc(SLM_GW_MAX_RSTATS, sizeof *gw->rstats);
    n = atomic_load(&gw->n_rstats);
    for (int i = 0; i < n && !e; i++)
        if (!strcmp(gw->rstats[i].route, route) && !strcmp(gw->rstats[i].tier, tier)) e = &gw->rstats[i];
    if (!e && gw->rstats && n < SLM_GW_MAX_RSTATS) {
        e = &gw->rstats[n];
        snprintf(e->route, sizeof e->route, "%s", route);
        snprintf(e->tier, sizeof e->tier, "%s", tier);
        atomic_store(&gw->n_rstats, n + 1);   /* published after the names */
    }
    pthread_mutex_unlock(&gw->rstat_mu);
    return e;
}

static void observe_route(req_ctx *c, int status, double latency) {
    slm_gw_rstat *e = slm_gw_rstat_get(c->gw, c->route ? c->route->name : "", c->rp->tier);
    if (!e) return;
    atomic_fetch_add(&e->requests, 1);
    if (status / 100 != 2) atomic_fetch_add(&e->errors, 1);
    atomic_fetch_add(&e->tokens_in, (uint64_t)(c->tok_in > 0 ? c->tok_in : 0));
    atomic_fetch_add(&e->tokens_out, (uint64_t)(c->tok_out > 0 ? c->tok_out : 0));
    atomic_fetch_add(&e->cost_micros, (uint64_t)(c->cost * 1e6));
    for (int i = 0; i < 12; i++)
        if (latency <= LAT_BOUNDS[i]) atomic_fetch_add(&e->lat_buckets[i], 1);
    atomic_fetch_add(&e->lat_count, 1);
    atomic_fetch_add(&e->lat_sum_us, (uint64_t)(latency * 1e6));
}

/* Cost, ledger row, metrics, shadow copy; frees the call. */
static void finish(req_ctx *c) {
    slm_gw *gw = c->gw;
    slm_gw_reply *rp = c->rp;
    double latency = slm_gw_now() - c->t0;
    price(c, latency);
    if (c->up_index >= 0) {
        const slm_gw_upstream_cfg *u = &c->cfg->upstreams[c->up_index];
        snprintf(rp->upstream, sizeof rp->upstream, "%s", u->name);
        snprintf(rp->tier, sizeof rp->tier, "%s", c->cfg->tiers[u->tier].name);
    }
    snprintf(rp->cascade, sizeof rp->cascade, "%s", c->cascade);
    /* a stream that broke after its headers went out: the client saw 200 and
     * an error event; the ledger says what happened */
    int status = rp->status;
    const char *error = rp->status / 100 == 2 ? NULL : c->error;
    if (c->stream && c->up && c->s_failed) { status = 502; error = c->error; }
    else if (c->stream && c->up && c->client_gone && !c->s_done) { status = 499; error = "client disconnected"; }
    if (gw->ledger) {
        char kinds[128];
        kinds_text(c->pd_mask, kinds, sizeof kinds);
        const slm_gw_upstream_cfg *u = c->up_index >= 0 ? &c->cfg->upstreams[c->up_index] : NULL;
        slm_gw_ledger_row row = {
            .time = slm_gw_wall(), .request_id = rp->request_id, .team = c->team ? c->team->name : NULL,
            .route = c->route ? c->route->name : NULL, .task = c->task[0] ? c->task : NULL,
            .tier = u ? rp->tier : NULL, .upstream = u ? u->name : NULL,
            .model = u && u->model ? u->model : (c->model[0] ? c->model : NULL),
            .tokens_in = c->tok_in, .tokens_out = c->tok_out, .latency_ms = latency * 1e3, .status = status,
            .cost = c->cost, .counterfactual_cost = c->cf_cost,
            .error = error, .private_data = kinds, .cascade = c->cascade[0] ? c->cascade : NULL,
        };
        slm_err err = { 0 };
        if (slm_gw_ledger_append(gw->ledger, &row, &err) && !c->up) {
            /* never acknowledge what the ledger does not hold (a stream's
             * bytes are already out: its row failure is only logged) */
            c->up_index = -1;
            reply_error(c, 503, "unavailable", "ledger write failed: %s", err.msg);
        }
    }
    if (status / 100 != 2) atomic_fetch_add(&gw->m.errors, 1);
    if (c->stream && c->up) {
        atomic_fetch_add(&gw->m.streams, 1);
        if (c->s_failed) atomic_fetch_add(&gw->m.streams_broken, 1);
    }
    atomic_fetch_add(&gw->m.tokens_in, (uint64_t)c->tok_in);
    atomic_fetch_add(&gw->m.tokens_out, (uint64_t)c->tok_out);
    atomic_fetch_add(&gw->m.cost_micros, (uint64_t)(c->cost * 1e6));
    atomic_fetch_add(&gw->m.counterfactual_micros, (uint64_t)(c->cf_cost * 1e6));
    observe_latency(&gw->m, latency);
    observe_route(c, status, latency);
    if (c->route && c->route->shadow_tier >= 0 && rp->status / 100 == 2 && status / 100 == 2 && c->up_index >= 0) {
        if (c->stream) {
            slm_gw_shadow_offer(c, c->answer ? c->answer : "");
        } else {
            char *ans = slm_gw_answer_text(rp->body, rp->len);
            slm_gw_shadow_offer(c, ans ? ans : "");
            slm_free(ans);
        }
    }
    if (c->up) {
        atomic_fetch_sub(&c->snap->ups[c->up_index]->outstanding, 1);
        slm_gw_stream_close(c->up);
    }
    cJSON_Delete(c->json);
    slm_free(c->text);
    slm_free(c->out_line.p);
    slm_free(c->answer);
    slm_free(c->s_pending);
    slm_free(c->sse);
    slm_free(c->up_line.p);
    slm_free(c->t_out);
    slm_gw_snap_put(c->snap);
    slm_free(c);
}

int slm_gw_proxy(slm_gw *gw, const slm_gw_request *rq, slm_gw_reply *rp) {
    memset(rp, 0, sizeof *rp);
    req_ctx *c = slm_calloc(1, sizeof *c);
    if (!c) return SLM_ENOMEM;
    c->gw = gw;
    c->rq = rq;
    c->rp = rp;
    c->t0 = slm_gw_now();
    c->up_index = -1;
    c->s_in = c->s_out = -1;
    snprintf(c->endpoint, sizeof c->endpoint, "%s", rq->endpoint);
    c->snap = slm_gw_snap_get(gw);
    c->cfg = c->snap->cfg;
    uint64_t seq = atomic_fetch_add(&gw->seq, 1) + 1;
    snprintf(rp->request_id, sizeof rp->request_id, "gw-%016llx", (unsigned long long)(gw->id_salt + seq));
    atomic_fetch_add(&gw->m.requests, 1);
    handle(c);
    if (c->up) {   /* a live stream: the front reads it, then calls slm_gw_call_done */
        if (c->up_index >= 0) {
            const slm_gw_upstream_cfg *u = &c->cfg->upstreams[c->up_index];
            snprintf(rp->upstream, sizeof rp->upstream, "%s", u->name);
            snprintf(rp->tier, sizeof rp->tier, "%s", c->cfg->tiers[u->tier].name);
        }
        c->own_rp = *rp;
        c->rp = &c->own_rp;
        c->rq = NULL;
        rp->stream = c;
        return 0;
    }
    int rc = 0;
    finish(c);
    if (!rp->body) rc = SLM_ENOMEM;
    return rc;
}

void slm_gw_call_done(slm_gw_call *c, bool client_gone) {
    if (!c) return;
    c->client_gone = client_gone;
    finish(c);
}
