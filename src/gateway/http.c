/*
 * http.c — the gateway's HTTP front (libmicrohttpd, one thread per
 * connection, so a handler may block on its upstream). POST
 * /v1/chat/completions and /v1/completions go through proxy.c; GET /health
 * reports every upstream (health, breaker, outstanding); GET /metrics is
 * Prometheus text. Bodies are collected up to max_body (413 beyond).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gw.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"

typedef struct conn {
    char *body; size_t len, cap;
    bool too_big;
} conn;

static enum MHD_Result send_reply(struct MHD_Connection *mc, int status, const char *type, const char *body, size_t len,
                                  const slm_gw_reply *rp) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (rp) {
        MHD_add_response_header(r, "X-SLM-Request-Id", rp->request_id);
        if (rp->route[0]) MHD_add_response_header(r, "X-SLM-Route", rp->route);
        if (rp->tier[0]) MHD_add_response_header(r, "X-SLM-Tier", rp->tier);
        if (rp->upstream[0]) MHD_add_response_header(r, "X-SLM-Upstream", rp->upstream);
        if (rp->cascade[0]) MHD_add_response_header(r, "X-SLM-Cascade", rp->cascade);
        if (rp->retry_after > 0) {
            char ra[24];
            snprintf(ra, sizeof ra, "%d", rp->retry_after);
            MHD_add_response_header(r, "Retry-After", ra);
        }
    }
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A live stream: MHD pulls the bytes on this connection's thread. */
typedef struct live { slm_gw_call *call; bool ended; } live;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    live *l = cls;
    long n = slm_gw_call_pull(l->call, buf, max);
    if (n > 0) return (ssize_t)n;
    l->ended = true;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls) {
    live *l = cls;
    slm_gw_call_done(l->call, !l->ended);   /* the ledger row, the upstream closed */
    slm_free(l);
}

static enum MHD_Result send_stream(struct MHD_Connection *mc, slm_gw_reply *rp) {
    live *l = slm_calloc(1, sizeof *l);
    if (!l) { slm_gw_call_done(rp->stream, true); return MHD_NO; }
    l->call = rp->stream;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, l, stream_free);
    if (!r) { stream_free(l); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", rp->content_type[0] ? rp->content_type : "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-SLM-Request-Id", rp->request_id);
    if (rp->route[0]) MHD_add_response_header(r, "X-SLM-Route", rp->route);
    if (rp->tier[0]) MHD_add_response_header(r, "X-SLM-Tier", rp->tier);
    if (rp->upstream[0]) MHD_add_response_header(r, "X-SLM-Upstream", rp->upstream);
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)rp->status, r);
    MHD_destroy_response(r);   /* stream_free runs when MHD is done with it */
    return ok;
}

static enum MHD_Result send_text(struct MHD_Connection *mc, int status, const char *type, const char *text) {
    return send_reply(mc, status, type, text, strlen(text), NULL);
}

static const char *bstate_name(slm_gw_bstate s) {
    return s == SLM_GW_CLOSED ? "closed" : s == SLM_GW_OPEN ? "open" : "half_open";
}

static enum MHD_Result health(slm_gw *gw, struct MHD_Connection *mc) {
    slm_gw_snap *s = slm_gw_snap_get(gw);
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "status"); slm_jw_str(&w, "ok");
    slm_jw_key(&w, "upstreams");
    slm_jw_arr_open(&w);
    for (int i = 0; i < s->cfg->n_upstreams; i++) {
        slm_gw_upstate *u = s->ups[i];
        slm_jw_obj_open(&w);
        slm_jw_key(&w, "name"); slm_jw_str(&w, u->name);
        slm_jw_key(&w, "tier"); slm_jw_str(&w, s->cfg->tiers[s->cfg->upstreams[i].tier].name);
        slm_jw_key(&w, "healthy"); slm_jw_bool(&w, atomic_load(&u->healthy));
        slm_jw_key(&w, "breaker"); slm_jw_str(&w, bstate_name(slm_gw_breaker_state(&u->breaker)));
        slm_jw_key(&w, "outstanding"); slm_jw_int(&w, atomic_load(&u->outstanding));
        slm_jw_obj_close(&w);
    }
    slm_jw_arr_close(&w);
    slm_jw_obj_close(&w);
    slm_gw_snap_put(s);
    size_t n;
    char *body = slm_jw_take(&w, &n);
    if (!body) return MHD_NO;
    enum MHD_Result r = send_reply(mc, 200, "application/json", body, n, NULL);
    slm_free(body);
    return r;
}

char *slm_gw_metrics_text(slm_gw *gw, size_t *len) {
    static const char *const le[12] = { "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                        "1", "2.5", "10" };
    slm_gw_metrics *m = &gw->m;
    slm_jw w = { 0 };   /* used as a text buffer */
    char line[2048];
#define OUT(...) do { int k_ = snprintf(line, sizeof line, __VA_ARGS__);                       \
                      if (k_ >= (int)sizeof line) k_ = (int)sizeof line - 1;                     \
                      if (k_ > 0) slm_jw_text(&w, line, (size_t)k_); } while (0)
    OUT("# TYPE slm_gw_requests_total counter\nslm_gw_requests_total %llu\n", (unsigned long long)m->requests);
    OUT("# TYPE slm_gw_errors_total counter\nslm_gw_errors_total %llu\n", (unsigned long long)m->errors);
    OUT("# TYPE slm_gw_fallbacks_total counter\nslm_gw_fallbacks_total %llu\n", (unsigned long long)m->fallbacks);
    OUT("# TYPE slm_gw_retry_rounds_total counter\nslm_gw_retry_rounds_total %llu\n", (unsigned long long)m->retries);
    OUT("# TYPE slm_gw_budget_rejections_total counter\nslm_gw_budget_rejections_total %llu\n",
        (unsigned long long)m->rejected_budget);
    OUT("# TYPE slm_gw_private_data_total counter\nslm_gw_private_data_total{decision=\"local_only\"} %llu\n"
        "slm_gw_private_data_total{decision=\"redact\"} %llu\n",
        (unsigned long long)m->private_local, (unsigned long long)m->private_redacted);
    OUT("# TYPE slm_gw_streams_total counter\nslm_gw_streams_total %llu\n"
        "# TYPE slm_gw_streams_broken_total counter\nslm_gw_streams_broken_total %llu\n",
        (unsigned long long)m->streams, (unsigned long long)m->streams_broken);
    OUT("# TYPE slm_gw_cascade_total counter\nslm_gw_cascade_total{outcome=\"accepted\"} %llu\n"
        "slm_gw_cascade_total{outcome=\"escalated\"} %llu\n",
        (unsigned long long)m->cascade_accepted, (unsigned long long)m->cascade_escalated);
    OUT("# TYPE slm_gw_shadow_total counter\nslm_gw_shadow_total{outcome=\"compared\"} %llu\n"
        "slm_gw_shadow_total{outcome=\"failed\"} %llu\nslm_gw_shadow_total{outcome=\"dropped\"} %llu\n",
        (unsigned long long)m->shadow_sent, (unsigned long long)m->shadow_failed,
        (unsigned long long)m->shadow_dropped);
    OUT("# TYPE slm_gw_tokens_total counter\nslm_gw_tokens_total{dir=\"in\"} %llu\nslm_gw_tokens_total{dir=\"out\"} %llu\n",
        (unsigned long long)m->tokens_in, (unsigned long long)m->tokens_out);
    OUT("# TYPE slm_gw_cost_total counter\nslm_gw_cost_total %.6f\n", (double)m->cost_micros / 1e6);
    OUT("# TYPE slm_gw_savings_total counter\nslm_gw_savings_total %.6f\n",
        ((double)m->counterfactual_micros - (double)m->cost_micros) / 1e6);
    OUT("# TYPE slm_gw_latency_seconds histogram\n");
    for (int i = 0; i < 12; i++)
        OUT("slm_gw_latency_seconds_bucket{le=\"%s\"} %llu\n", le[i], (unsigned long long)m->lat_buckets[i]);
    OUT("slm_gw_latency_seconds_bucket{le=\"+Inf\"} %llu\nslm_gw_latency_seconds_sum %.6f\nslm_gw_latency_seconds_count %llu\n",
        (unsigned long long)m->lat_count, (double)m->lat_sum_us / 1e6, (unsigned long long)m->lat_count);
    int n_rs = atomic_load(&gw->n_rstats);
    OUT("# TYPE slm_gw_route_requests_total counter\n");
    for (int i = 0; i < n_rs; i++)
        OUT("slm_gw_route_requests_total{route=\"%s\",tier=\"%s\"} %llu\n", gw->rstats[i].route, gw->rstats[i].tier,
            (unsigned long long)gw->rstats[i].requests);
    OUT("# TYPE slm_gw_route_errors_total counter\n");
    for (int i = 0; i < n_rs; i++)
        OUT("slm_gw_route_errors_total{route=\"%s\",tier=\"%s\"} %llu\n", gw->rstats[i].route, gw->rstats[i].tier,
            (unsigned long long)gw->rstats[i].errors);
    OUT("# TYPE slm_gw_route_tokens_total counter\n");
    for (int i = 0; i < n_rs; i++)
        OUT("slm_gw_route_tokens_total{route=\"%s\",tier=\"%s\",dir=\"in\"} %llu\n"
            "slm_gw_route_tokens_total{route=\"%s\",tier=\"%s\",dir=\"out\"} %llu\n",
            gw->rstats[i].route, gw->rstats[i].tier, (unsigned long long)gw->rstats[i].tokens_in, gw->rstats[i].route,
            gw->rstats[i].tier, (unsigned long long)gw->rstats[i].tokens_out);
    OUT("# TYPE slm_gw_route_cost_total counter\n");
    for (int i = 0; i < n_rs; i++)
        OUT("slm_gw_route_cost_total{route=\"%s\",tier=\"%s\"} %.6f\n", gw->rstats[i].route, gw->rstats[i].tier,
            (double)gw->rstats[i].cost_micros / 1e6);
    OUT("# TYPE slm_gw_route_latency_seconds histogram\n");
    for (int i = 0; i < n_rs; i++) {
        const slm_gw_rstat *e = &gw->rstats[i];
        for (int k = 0; k < 12; k++)
            OUT("slm_gw_route_latency_seconds_bucket{route=\"%s\",tier=\"%s\",le=\"%s\"} %llu\n", e->route, e->tier,
                le[k], (unsigned long long)e->lat_buckets[k]);
        OUT("slm_gw_route_latency_seconds_bucket{route=\"%s\",tier=\"%s\",le=\"+Inf\"} %llu\n"
            "slm_gw_route_latency_seconds_sum{route=\"%s\",tier=\"%s\"} %.6f\n"
            "slm_gw_route_latency_seconds_count{route=\"%s\",tier=\"%s\"} %llu\n",
            e->route, e->tier, (unsigned long long)e->lat_count, e->route, e->tier, (double)e->lat_sum_us / 1e6,
            e->route, e->tier, (unsigned long long)e->lat_count);
    }
    slm_gw_snap *s = slm_gw_snap_get(gw);
    OUT("# TYPE slm_gw_upstream_breaker_open gauge\n");
    for (int i = 0; i < s->cfg->n_upstreams; i++)
        OUT("slm_gw_upstream_breaker_open{upstream=\"%s\"} %d\n", s->ups[i]->name,
            slm_gw_breaker_state(&s->ups[i]->breaker) != SLM_GW_CLOSED);
    OUT("# TYPE slm_gw_upstream_healthy gauge\n");
    for (int i = 0; i < s->cfg->n_upstreams; i++)
        OUT("slm_gw_upstream_healthy{upstream=\"%s\"} %d\n", s->ups[i]->name, (int)atomic_load(&s->ups[i]->healthy));
    OUT("# TYPE slm_gw_upstream_requests_total counter\n");
    for (int i = 0; i < s->cfg->n_upstreams; i++)
        OUT("slm_gw_upstream_requests_total{upstream=\"%s\"} %llu\nslm_gw_upstream_failures_total{upstream=\"%s\"} %llu\n",
            s->ups[i]->name, (unsigned long long)s->ups[i]->n_requests, s->ups[i]->name,
            (unsigned long long)s->ups[i]->n_failures);
    slm_gw_snap_put(s);
#undef OUT
    return slm_jw_take(&w, len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state) {
    slm_gw *gw = cls;
    conn *c = *state;
    if (!c) {
        if (!(c = slm_calloc(1, sizeof *c))) return MHD_NO;
        *state = c;
        return MHD_YES;
    }
    if (*upload_size) {
        slm_gw_snap *s = slm_gw_snap_get(gw);
        size_t limit = (size_t)s->cfg->max_body;
        slm_gw_snap_put(s);
        if (c->too_big || c->len + *upload_size > limit) {
            c->too_big = true;
        } else {
            if (c->len + *upload_size + 1 > c->cap) {
                size_t nc = c->cap ? c->cap : 4096;
                while (nc < c->len + *upload_size + 1) nc *= 2;
                char *nb = slm_realloc(c->body, nc);
                if (!nb) return MHD_NO;
                c->body = nb;
                c->cap = nc;
            }
            memcpy(c->body + c->len, upload, *upload_size);
            c->len += *upload_size;
            c->body[c->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    const char *endpoint = NULL;
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) endpoint = "/chat/completions";
    else if (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")) endpoint = "/completions";
    if (!strcmp(method, "GET") && !strcmp(url, "/health")) return health(gw, mc);
    if (!strcmp(method, "GET") && !strcmp(url, "/metrics")) {
        size_t n;
        char *t = slm_gw_metrics_text(gw, &n);
        if (!t) return MHD_NO;
        enum MHD_Result r = send_reply(mc, 200, "text/plain; version=0.0.4", t, n, NULL);
        slm_free(t);
        return r;
    }
    if (!endpoint)
        return send_text(mc, 404, "application/json", "{\"error\":{\"message\":\"not found\",\"type\":\"not_found\"}}");
    if (strcmp(method, "POST"))
        return send_text(mc, 405, "application/json", "{\"error\":{\"message\":\"use POST\",\"type\":\"invalid_request_error\"}}");
    if (c->too_big)
        return send_text(mc, 413, "application/json",
                         "{\"error\":{\"message\":\"request body too large\",\"type\":\"invalid_request_error\"}}");
    slm_gw_request rq = {
        .endpoint = endpoint,
        .authorization = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization"),
        .task = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-SLM-Task"),
        .body = c->body ? c->body : "", .len = c->len,
    };
    slm_gw_reply rp;
    if (slm_gw_proxy(gw, &rq, &rp)) { slm_free(rp.body); return MHD_NO; }
    if (rp.stream) return send_stream(mc, &rp);
    enum MHD_Result r = send_reply(mc, rp.status, rp.content_type, rp.body, rp.len, &rp);
    slm_free(rp.body);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **state, enum MHD_RequestTerminationCode code) {
    conn *c = *state;
    if (!c) return;
    slm_free(c->body);
    slm_free(c);
    *state = NULL;
}

int slm_gw_http_start(slm_gw *gw, const char *host, int port, slm_err *err) {
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return slm_err_set(err, SLM_EINVAL, "listen.host '%s' is not an IPv4 address", host);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, (uint16_t)port, NULL, NULL,
        on_request, gw, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, gw,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!d) return slm_err_set(err, SLM_EIO, "cannot listen on %s:%d", host, port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = info ? info->port : port;
    gw->daemon = d;
    return 0;
}

void slm_gw_http_stop(slm_gw *gw) {
    if (!gw->daemon) return;
    MHD_stop_daemon(gw->daemon);
    gw->daemon = NULL;
}
