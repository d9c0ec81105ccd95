/*
 * shadow.c — shadow traffic: a sampled copy of a route's answered requests
 * goes to a candidate tier, off the request's path, and both answers are
 * stored with how well they agree. This is how a team measures a local
 * model against the frontier baseline on production traffic before it
 * switches a task over (or the other way round).
 *
 * slm_gw_shadow_offer runs on the request's thread after its reply is
 * final: it decides by the route's sample (a hash of the request id, so the
 * choice is reproducible), serializes the request as it was sent upstream
 * (after redaction; a request that must stay local is never shadowed to a
 * frontier tier) and pushes a job onto a bounded queue; a full queue drops
 * the job and counts it (slm_gw_shadow_dropped_total) rather than delaying
 * anyone. Two worker threads send the jobs (one attempt per candidate
 * upstream, least outstanding first), compute the agreement and write one
 * shadow row through the ledger.
 *
 * Lock order: sh->mu is a leaf (held only to push or pop a job).
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gateway/adapter.h"
#include "gateway/proxy.h"
#include "util/alloc.h"
#include "util/err.h"

#define SHADOW_THREADS 2
#define SHADOW_QUEUE 256

typedef struct job {
    struct job *next;
    slm_gw_snap *snap;           /* a reference: the config the request used  */
    int tier;                    /* candidate tier                            */
    char endpoint[32];
    char *body;                  /* the request JSON (slm_malloc'd)           */
    char *primary;               /* the answer the client got                 */
    char request_id[40], route[64], task[64], primary_tier[64], primary_upstream[64];
} job;

struct slm_gw_shadow {
    pthread_mutex_t mu;          /* guards head, tail, n, stop (leaf lock)    */
    pthread_cond_t cv;
    job *head, *tail;
    int n;
    bool stop;
    pthread_t th[SHADOW_THREADS];
    int n_th;
};

/* ---- agreement --------------------------------------------------------------- */

/* Lower-case ASCII, one space for any run of white space, no leading or
 * trailing space, no trailing . ! ? */
static char *normalize(const char *s) {
    size_t n = strlen(s), k = 0;
    char *o = slm_malloc(n + 1);
    if (!o) return NULL;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isspace(ch)) { space = k > 0; continue; }
        if (space) o[k++] = ' ';
        space = false;
        o[k++] = (char)tolower(ch);
    }
    while (k && (o[k - 1] == '.' || o[k - 1] == '!' || o[k - 1] == '?')) k--;
    o[k] = 0;
    return o;
}

static cJSON *parse_object(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    if (!strncmp(s, "```", 3)) {   /* a fenced block: its inside */
        const char *nl = strchr(s, '\n'), *end = nl ? strstr(nl, "```") : NULL;
        if (nl && end) return cJSON_ParseWithLength(nl + 1, (size_t)(end - nl - 1));
    }
    cJSON *o = cJSON_Parse(s);
    if (o && !cJSON_IsObject(o)) { cJSON_Delete(o); o = NULL; }
    return o;
}

void slm_gw_agreement(const char *a, const char *b, double *exact, double *normalized, double *json_fields) {
    *exact = !strcmp(a, b);
    char *na = normalize(a), *nb = normalize(b);
    *normalized = na && nb ? !strcmp(na, nb) : NAN;
    slm_free(na);
    slm_free(nb);
    *json_fields = NAN;
    cJSON *ja = parse_object(a), *jb = parse_object(b), *f;
    if (cJSON_IsObject(ja) && cJSON_IsObject(jb)) {
        int uni = 0, same = 0;
        cJSON_ArrayForEach(f, ja) {
            uni++;
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(jb, f->string);
            if (g && cJSON_Compare(f, g, true)) same++;
        }
        cJSON_ArrayForEach(f, jb)
            if (!cJSON_GetObjectItemCaseSensitive(ja, f->string)) uni++;
        *json_fields = uni ? (double)same / uni : 1.0;
    }
    cJSON_Delete(ja);
    cJSON_Delete(jb);
}

/* ---- the queue --------------------------------------------------------------- */

static void job_free(job *j) {
    if (!j) return;
    slm_gw_snap_put(j->snap);
    slm_free(j->body);
    slm_free(j->primary);
    slm_free(j);
}

/* The candidate tier's least loaded available upstream, or -1. */
static int pick(slm_gw_snap *s, int t) {
    int *cand = slm_malloc((size_t)s->cfg->tiers[t].n_upstreams * sizeof *cand);
    int best = cand && slm_gw_candidates(s, t, 0, cand) > 0 ? cand[0] : -1;
    slm_free(cand);
    return best;
}

static void run_job(slm_gw *gw, job *j) {
    const slm_gw_config *cfg = j->snap->cfg;
    double t0 = slm_gw_now();
    int i = pick(j->snap, j->tier);
    slm_gw_shadow_row row = {
        .time = slm_gw_wall(), .request_id = j->request_id, .route = j->route, .task = j->task[0] ? j->task : NULL,
        .primary_tier = j->primary_tier, .primary_upstream = j->primary_upstream,
        .candidate_tier = cfg->tiers[j->tier].name, .primary_output = j->primary,
        .exact = NAN, .normalized = NAN, .json_fields = NAN, .tokens_in = -1, .tokens_out = -1,
    };
    char err_text[256] = "";
    char *answer = NULL;
    cJSON *req = cJSON_Parse(j->body);
    if (i < 0) {
        snprintf(err_text, sizeof err_text, "no upstream of tier %s is available", cfg->tiers[j->tier].name);
    } else if (!req) {
        snprintf(err_text, sizeof err_text, "out of memory");
    } else {
        const slm_gw_upstream_cfg *u = &cfg->upstreams[i];
        slm_gw_upstate *st = j->snap->ups[i];
        row.candidate_upstream = u->name;
        if (u->model) {
            cJSON_DeleteItemFromObjectCaseSensitive(req, "model");
            cJSON_AddStringToObject(req, "model", u->model);
        }
        const slm_gw_adapter *ad = slm_gw_adapter_find(u->adapter);
        slm_gw_up_request ur = { 0 };
        if (!ad || ad->build(u, j->endpoint, req, &ur)) {
            snprintf(err_text, sizeof err_text, "upstream %s cannot serve %s", u->name, j->endpoint);
        } else {
            slm_gw_http_req hr = { .method = "POST", .url = ur.url, .headers = ur.headers, .n_headers = ur.n_headers,
                                   .body = ur.body, .len = ur.len, .timeout_ms = u->timeout_ms,
                                   .connect_timeout_ms = u->connect_timeout_ms, .max_response = 16u << 20 };
            slm_gw_http_resp rs;
            atomic_fetch_add(&st->outstanding, 1);
            int rc = slm_gw_client_do(gw->client, &hr, &rs);
            atomic_fetch_sub(&st->outstanding, 1);
            row.status = rs.status;
            if (rc) snprintf(err_text, sizeof err_text, "out of memory");
            else if (rs.fail != SLM_GW_FAIL_NONE) snprintf(err_text, sizeof err_text, "%s", rs.error);
            else if (rs.status / 100 != 2) snprintf(err_text, sizeof err_text, "HTTP %d", rs.status);
            else {
                char *tr = NULL;
                size_t tr_len = 0;
                if (ad->translate(u, rs.body, rs.len, &tr, &tr_len)) snprintf(err_text, sizeof err_text, "unreadable answer");
                const char *b = tr ? tr : rs.body;
                size_t bl = tr ? tr_len : rs.len;
                if (!err_text[0]) {
                    answer = slm_gw_answer_text(b, bl);
                    slm_gw_usage(b, bl, &row.tokens_in, &row.tokens_out);
                    if (!answer) snprintf(err_text, sizeof err_text, "no answer text");
                }
                if (tr) cJSON_free(tr);
            }
            slm_gw_breaker_record(&st->breaker, !err_text[0] || rs.status / 100 == 4, slm_gw_now(),
                                  cfg->breaker_failures, cfg->breaker_cooldown_ms);
            slm_gw_http_resp_clear(&rs);
        }
        slm_gw_up_request_clear(&ur);
    }
    cJSON_Delete(req);
    row.latency_ms = (slm_gw_now() - t0) * 1e3;
    if (answer) {
        row.candidate_output = answer;
        slm_gw_agreement(j->primary, answer, &row.exact, &row.normalized, &row.json_fields);
        row.cost = slm_gw_tier_cost(&cfg->tiers[j->tier], row.tokens_in, row.tokens_out, row.latency_ms / 1e3, 1);
        atomic_fetch_add(&gw->m.shadow_sent, 1);
    } else {
        row.error = err_text;
        atomic_fetch_add(&gw->m.shadow_failed, 1);
    }
    if (gw->ledger) {
        slm_err err = { 0 };
        if (slm_gw_ledger_append_shadow(gw->ledger, &row, &err)) {
            pthread_mutex_lock(&gw->audit_mu);
            fprintf(gw->audit ? gw->audit : stderr, "{\"shadow_error\":\"ledger write failed\",\"request_id\":\"%s\"}\n",
                    j->request_id);
            pthread_mutex_unlock(&gw->audit_mu);
        }
    }
    slm_free(answer);
}

static void *worker(void *arg) {
    slm_gw *gw = arg;
    struct slm_gw_shadow *sh = gw->shadow;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        while (!sh->head && !sh->stop) pthread_cond_wait(&sh->cv, &sh->mu);
        job *j = sh->head;
        if (j) {
            sh->head = j->next;
            if (!sh->head) sh->tail = NULL;
            sh->n--;
        }
        pthread_mutex_unlock(&sh->mu);
        if (!j) return NULL;   /* stopping and drained */
        run_job(gw, j);
        job_free(j);
    }
}

int slm_gw_shadow_start(slm_gw *gw, slm_err *err) {
    struct slm_gw_shadow *sh = slm_calloc(1, sizeof *sh);
    if (!sh) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->cv, NULL);
    gw->shadow = sh;
    for (int i = 0; i < SHADOW_THREADS; i++) {
        if (pthread_create(&sh->th[i], NULL, worker, gw)) {
            slm_gw_shadow_stop(gw);
            return slm_err_set(err, SLM_EIO, "cannot start the shadow workers");
        }
        sh->n_th++;
    }
    return 0;
}

void slm_gw_shadow_stop(slm_gw *gw) {
    struct slm_gw_shadow *sh = gw->shadow;
    if (!sh) return;
    pthread_mutex_lock(&sh->mu);
    sh->stop = true;   /* workers finish the queue, then exit */
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    for (int i = 0; i < sh->n_th; i++) pthread_join(sh->th[i], NULL);
    for (job *j = sh->head, *n; j; j = n) { n = j->next; job_free(j); }
    pthread_cond_destroy(&sh->cv);
    pthread_mutex_destroy(&sh->mu);
    slm_free(sh);
    gw->shadow = NULL;
}

/* A stable uniform number in [0, 1) from the request id. */
static double sample_point(const char *id) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (double)(h >> 11) / 9007199254740992.0;
}

void slm_gw_shadow_offer(slm_gw_call *c, const char *primary_answer) {
    const slm_gw_route_cfg *r = c->route;
    struct slm_gw_shadow *sh = c->gw->shadow;
    if (!sh || r->shadow_tier < 0 || sample_point(c->rp->request_id) >= r->shadow_sample) return;
    const slm_gw_tier_cfg *t = &c->cfg->tiers[r->shadow_tier];
    if (c->local_only && t->kind != SLM_GW_LOCAL) return;   /* private data never leaves */
    if (c->up_index >= 0 && c->cfg->upstreams[c->up_index].tier == r->shadow_tier) return;   /* served by it */
    job *j = slm_calloc(1, sizeof *j);
    if (!j) { atomic_fetch_add(&c->gw->m.shadow_dropped, 1); return; }
    cJSON *req = cJSON_Duplicate(c->json, true);
    if (req) {
        cJSON_DeleteItemFromObjectCaseSensitive(req, "stream");
        cJSON_DeleteItemFromObjectCaseSensitive(req, "stream_options");
        char *t2 = cJSON_PrintUnformatted(req);
        if (t2) { j->body = slm_strdup(t2); cJSON_free(t2); }
        cJSON_Delete(req);
    }
    j->primary = slm_strdup(primary_answer);
    if (!j->body || !j->primary) { job_free(j); atomic_fetch_add(&c->gw->m.shadow_dropped, 1); return; }
    j->tier = r->shadow_tier;
    snprintf(j->endpoint, sizeof j->endpoint, "%s", c->endpoint);
    snprintf(j->request_id, sizeof j->request_id, "%s", c->rp->request_id);
    snprintf(j->route, sizeof j->route, "%s", r->name);
    snprintf(j->task, sizeof j->task, "%s", c->task);
    snprintf(j->primary_tier, sizeof j->primary_tier, "%s", c->rp->tier);
    snprintf(j->primary_upstream, sizeof j->primary_upstream, "%s", c->rp->upstream);
    atomic_fetch_add(&c->snap->refs, 1);   /* the job keeps the request's config */
    j->snap = c->snap;
    pthread_mutex_lock(&sh->mu);
    bool full = sh->n >= SHADOW_QUEUE || sh->stop;
    if (!full) {
        if (sh->tail) sh->tail->next = j;
        else sh->head = j;
        sh->tail = j;
        sh->n++;
        pthread_cond_signal(&sh->cv);
    }
    pthread_mutex_unlock(&sh->mu);
    if (full) {
        job_free(j);
        atomic_fetch_add(&c->gw->m.shadow_dropped, 1);
    }
}
