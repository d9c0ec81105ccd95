/*
 * gateway.c — lifecycle of a gateway: building a config snapshot (and the
 * upstream state it refers to, found by name in a registry that outlives
 * reloads), the active health checker (one thread probing GET url/health
 * of every upstream with health_check, every interval), reload by snapshot
 * swap, and the /metrics text.
 */
#include "gateway/gw.h"
#include "gateway/proxy.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/err.h"

double slm_gw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double slm_gw_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

slm_gw_snap *slm_gw_snap_get(slm_gw *gw) {
    pthread_mutex_lock(&gw->mu);
    slm_gw_snap *s = gw->snap;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&gw->mu);
    return s;
}

void slm_gw_snap_put(slm_gw_snap *s) {
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    slm_gw_config_free(s->cfg);
    slm_free(s->ups);
    slm_free(s);
}

/* The registry entry for name, created if new. Called with gw->mu held. */
static slm_gw_upstate *upstate_for(slm_gw *gw, const char *name) {
    for (int i = 0; i < gw->n_reg; i++)
        if (!strcmp(gw->reg[i]->name, name)) return gw->reg[i];
    slm_gw_upstate **nr = slm_realloc(gw->reg, (size_t)(gw->n_reg + 1) * sizeof *nr);
    if (!nr) return NULL;
    gw->reg = nr;
    slm_gw_upstate *u = slm_calloc(1, sizeof *u);
    if (!u || !(u->name = slm_strdup(name))) { slm_free(u); return NULL; }
    atomic_store(&u->healthy, true);
    slm_gw_breaker_init(&u->breaker);
    gw->reg[gw->n_reg++] = u;
    return u;
}

/* Builds a snapshot for cfg (owned by it on success). */
static int snap_new(slm_gw *gw, slm_gw_config *cfg, slm_gw_snap **out, slm_err *err) {
    slm_gw_snap *s = slm_calloc(1, sizeof *s);
    if (s && cfg->n_upstreams) s->ups = slm_calloc((size_t)cfg->n_upstreams, sizeof *s->ups);
    if (!s || (cfg->n_upstreams && !s->ups)) goto oom;
    pthread_mutex_lock(&gw->mu);
    for (int i = 0; i < cfg->n_upstreams; i++)
        if (!(s->ups[i] = upstate_for(gw, cfg->upstreams[i].name))) {
            pthread_mutex_unlock(&gw->mu);
            goto oom;
        }
    pthread_mutex_unlock(&gw->mu);
    s->cfg = cfg;
    atomic_store(&s->refs, 1);
    *out = s;
    return 0;
oom:
    if (s) slm_free(s->ups);
    slm_free(s);
    return slm_err_set(err, SLM_ENOMEM, "out of memory");
}

int slm_gw_new(slm_gw_config *cfg, slm_gw **out, slm_err *err) {
    *out = NULL;
    slm_gw *gw = slm_calloc(1, sizeof *gw);
    if (!gw) { slm_gw_config_free(cfg); return slm_err_set(err, SLM_ENOMEM, "out of memory"); }
    pthread_mutex_init(&gw->mu, NULL);
    pthread_mutex_init(&gw->audit_mu, NULL);
    pthread_mutex_init(&gw->rstat_mu, NULL);
    pthread_mutex_init(&gw->stop_mu, NULL);
    pthread_cond_init(&gw->stop_cv, NULL);
    uint64_t salt = (uint64_t)(slm_gw_wall() * 1e6) ^ ((uint64_t)getpid() << 32);
    gw->id_salt = salt * 0x9E3779B97F4A7C15ull;
    int rc = snap_new(gw, cfg, &gw->snap, err);
    if (rc) { slm_gw_config_free(cfg); goto fail; }
    if ((rc = slm_gw_detector_new(&gw->det, err)) || (rc = slm_gw_client_new(&gw->client, err))) goto fail;
    if (cfg->ledger_path || cfg->ledger_postgres) {
        slm_gw_ledger_params lp = slm_gw_ledger_default_params();
        lp.sqlite_path = cfg->ledger_path;
        lp.postgres = cfg->ledger_postgres;
        lp.pool_size = cfg->ledger_pool_size;
        lp.spend_cache_ms = cfg->ledger_spend_cache_ms;
        if ((rc = slm_gw_ledger_open(&lp, &gw->ledger, err))) goto fail;
    }
    if (cfg->audit_path && !(gw->audit = fopen(cfg->audit_path, "a"))) {
        rc = slm_err_set(err, SLM_EIO, "audit log %s: cannot open", cfg->audit_path);
        goto fail;
    }
    *out = gw;
    return 0;
fail:
    slm_gw_free(gw);
    return rc;
}

int slm_gw_port(const slm_gw *gw) { return gw->port; }

static void probe_all(slm_gw *gw) {
    slm_gw_snap *s = slm_gw_snap_get(gw);
    for (int i = 0; i < s->cfg->n_upstreams; i++) {
        const slm_gw_upstream_cfg *u = &s->cfg->upstreams[i];
        if (!u->health_check) continue;
        char url[1100];
        size_t n = strlen(u->url);
        /* slm serve answers /health at the root, also when the URL has /v1 */
        snprintf(url, sizeof url, "%.*s/health", (int)(n >= 3 && !strcmp(u->url + n - 3, "/v1") ? n - 3 : n), u->url);
        slm_gw_http_req rq = { .method = "GET", .url = url, .timeout_ms = s->cfg->health_timeout_ms,
                               .connect_timeout_ms = s->cfg->health_timeout_ms, .max_response = 1 << 16 };
        slm_gw_http_resp rs;
        if (slm_gw_client_do(gw->client, &rq, &rs) == 0) {
            atomic_store(&s->ups[i]->healthy, rs.fail == SLM_GW_FAIL_NONE && rs.status == 200);
            slm_gw_http_resp_clear(&rs);
        }
    }
    slm_gw_snap_put(s);
}

static void *health_main(void *arg) {
    slm_gw *gw = arg;
    for (;;) {
        slm_gw_snap *s = slm_gw_snap_get(gw);
        int interval = s->cfg->health_interval_ms;
        slm_gw_snap_put(s);
        if (interval > 0) probe_all(gw);
        else interval = 1000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += interval / 1000;
        ts.tv_nsec += (long)(interval % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_mutex_lock(&gw->stop_mu);
        while (!gw->stopping && pthread_cond_timedwait(&gw->stop_cv, &gw->stop_mu, &ts) == 0) {}
        bool stop = gw->stopping;
        pthread_mutex_unlock(&gw->stop_mu);
        if (stop) return NULL;
    }
}

int slm_gw_start(slm_gw *gw, slm_err *err) {
    int rc = slm_gw_shadow_start(gw, err);
    if (rc) return rc;
    slm_gw_snap *s = slm_gw_snap_get(gw);
    rc = slm_gw_http_start(gw, s->cfg->host, s->cfg->port, err);
    slm_gw_snap_put(s);
    if (rc) { slm_gw_shadow_stop(gw); return rc; }
    if (pthread_create(&gw->health_thread, NULL, health_main, gw)) {
        slm_gw_http_stop(gw);
        slm_gw_shadow_stop(gw);
        return slm_err_set(err, SLM_ENOMEM, "cannot start the health checker");
    }
    gw->health_running = true;
    return 0;
}

int slm_gw_reload(slm_gw *gw, slm_gw_config *cfg, slm_err *err) {
    slm_gw_snap *s = NULL;
    int rc = snap_new(gw, cfg, &s, err);
    if (rc) { slm_gw_config_free(cfg); return rc; }
    pthread_mutex_lock(&gw->mu);
    slm_gw_snap *old = gw->snap;
    gw->snap = s;
    pthread_mutex_unlock(&gw->mu);
    slm_gw_snap_put(old);
    return 0;
}

void slm_gw_stop(slm_gw *gw) {
    if (!gw) return;
    slm_gw_http_stop(gw);
    pthread_mutex_lock(&gw->stop_mu);
    gw->stopping = true;
    pthread_cond_broadcast(&gw->stop_cv);
    pthread_mutex_unlock(&gw->stop_mu);
    if (gw->health_running) pthread_join(gw->health_thread, NULL);
    gw->health_running = false;
    slm_gw_shadow_stop(gw);   /* sends what is queued, then joins */
}

void slm_gw_free(slm_gw *gw) {
    if (!gw) return;
    slm_gw_stop(gw);
    slm_gw_snap_put(gw->snap);
    for (int i = 0; i < gw->n_reg; i++) {
        slm_gw_breaker_destroy(&gw->reg[i]->breaker);
        slm_free(gw->reg[i]->name);
        slm_free(gw->reg[i]);
    }
    slm_free(gw->reg);
    slm_gw_detector_free(gw->det);
    slm_gw_client_free(gw->client);
    slm_gw_ledger_close(gw->ledger);
    if (gw->audit) fclose(gw->audit);
    pthread_mutex_destroy(&gw->mu);
    pthread_mutex_destroy(&gw->audit_mu);
    pthread_mutex_destroy(&gw->rstat_mu);
    slm_free(gw->rstats);
    pthread_mutex_destroy(&gw->stop_mu);
    pthread_cond_destroy(&gw->stop_cv);
    slm_free(gw);
}
