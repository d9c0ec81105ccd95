/*
 * http.c — the HTTP side: libmicrohttpd with one thread per connection, so
 * a handler may block while its request generates. Routing, API-key
 * checks, body limits, the plain endpoints (/health, /metrics, /v1/models)
 * and the hand-off of API requests to job.c live here, as does the access
 * log: one JSON line per request on stderr, written when libmicrohttpd
 * reports the request complete.
 *
 * A request's first callback has only the headers: it routes, checks the
 * key, the declared Content-Length and the server's state, and may answer
 * at once (401, 404, 405, 413, 503) without reading the body. Body chunks
 * are appended up to --max-body; the last callback parses and runs.
 * Streaming responses pull SSE bytes from the job through a content reader;
 * the reader's free callback cancels whatever still generates (a client
 * that went away), and the job also peeks at the socket while it waits.
 */
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "serve/srv.h"
#include "util/alloc.h"
#include "util/err.h"

typedef enum route {
    R_NONE, R_CHAT, R_COMPLETIONS, R_MODELS, R_MODEL, R_HEALTH, R_METRICS,
} route;

typedef struct conn {
    srv *s;
    double arrival_s;
    char method[16];
    char *path;                     /* owned copy for the log                       */
    route rt;
    const char *endpoint;           /* metrics label                                */
    char *body; size_t len, cap;    /* request body so far                          */
    bool too_big;                   /* the body passed --max-body                   */
    bool answered;                  /* a response is queued                         */
    bool inflight;                  /* counted in s->inflight                       */
    int status;
    char id[48];
    char error[512];                /* the error message for the log                */
    job *job;
} conn;

typedef struct stream_ctx { job *j; int fd; } stream_ctx;

static const char JSON_TYPE[] = "application/json";

/* ---- responses ----------------------------------------------------------- */

static enum MHD_Result reply(conn *q, struct MHD_Connection *c, int status, const char *type, char *body,
                             size_t len, int retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (char *)"", MHD_RESPMEM_MUST_COPY);
    slm_free(body);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == 405) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, q->rt == R_CHAT || q->rt == R_COMPLETIONS ? "POST" : "GET");
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    q->status = status;
    q->answered = true;
    return rc;
}

static enum MHD_Result reply_error(conn *q, struct MHD_Connection *c, const api_error *e) {
    size_t len = 0;
    char *body = api_render_error(e, &len);
    snprintf(q->error, sizeof q->error, "%s", e->message);
    if (!body) return MHD_NO;
    return reply(q, c, e->status, JSON_TYPE, body, len, e->retry_after);
}

static enum MHD_Result fail(conn *q, struct MHD_Connection *c, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result fail(conn *q, struct MHD_Connection *c, int status, const char *param, const char *fmt, ...) {
    api_error e;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_fail(&e, status, param, "%s", msg);
    if (status == 401) { e.type = "authentication_error"; e.code = "invalid_api_key"; }
    if (status == 413) e.code = "request_too_large";
    if (status == 503) { e.retry_after = 1; }
    return reply_error(q, c, &e);
}

/* ---- routing and checks -------------------------------------------------- */

static route route_of(const char *url, const char **endpoint) {
    static const struct { const char *path; route rt; } R[] = {
        { "/v1/chat/completions", R_CHAT }, { "/v1/completions", R_COMPLETIONS }, { "/v1/models", R_MODELS },
        { "/health", R_HEALTH }, { "/metrics", R_METRICS },
    };
    for (size_t i = 0; i < sizeof R / sizeof R[0]; i++)
        if (!strcmp(url, R[i].path)) {
            *endpoint = R[i].path;
            return R[i].rt;
        }
    if (!strncmp(url, "/v1/models/", 11) && url[11]) {
        *endpoint = "/v1/models";
        return R_MODEL;
    }
    *endpoint = "other";
    return R_NONE;
}

/* Compares the bearer token with every key, each over its whole length and
 * without an early exit, so the time taken says nothing about the keys. */
static bool key_ok(const srv *s, const char *given) {
    size_t gl = strlen(given);
    unsigned ok = 0;
    for (int32_t k = 0; k < s->p.n_api_keys; k++) {
        const char *key = s->p.api_keys[k];
        size_t kl = strlen(key);
        unsigned diff = gl != kl;
        for (size_t i = 0; i < kl; i++) diff |= (unsigned char)key[i] ^ (unsigned char)given[i < gl ? i : gl];
        ok |= diff == 0;
    }
    return ok != 0;
}

static bool authorized(const srv *s, struct MHD_Connection *c) {
    if (s->p.n_api_keys <= 0) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    while (*h == ' ') h++;
    return key_ok(s, h);
}

/* ---- plain endpoints ----------------------------------------------------- */

static enum MHD_Result serve_health(conn *q, struct MHD_Connection *c) {
    int st = atomic_load(&q->s->state);
    const char *body = st == SRV_READY ? "{\"status\":\"ok\"}" : st == SRV_LOADING ? "{\"status\":\"loading\"}"
                                                                                   : "{\"status\":\"draining\"}";
    return reply(q, c, st == SRV_READY ? 200 : 503, JSON_TYPE, slm_strdup(body), strlen(body), st == SRV_READY ? 0 : 1);
}

static enum MHD_Result serve_metrics(conn *q, struct MHD_Connection *c) {
    srv *s = q->s;
    if (atomic_load_explicit(&s->state, memory_order_acquire) != SRV_LOADING) {
        sched_stats st;
        sched_get_stats(s->sched, &st);
        slm_metrics_set(s->metrics, SLM_GAUGE_QUEUE, st.queued);
        slm_metrics_set(s->metrics, SLM_GAUGE_ACTIVE, st.active);
        slm_metrics_set(s->metrics, SLM_GAUGE_KV_USED, st.kv_blocks_used);
        slm_metrics_set(s->metrics, SLM_GAUGE_KV_TOTAL, st.kv_blocks_total);
    }
    char *text = NULL;
    size_t len = 0;
    if (slm_metrics_render(s->metrics, &text, &len)) return fail(q, c, 500, NULL, "out of memory");
    return reply(q, c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, 0);
}

static void model_obj(slm_jw *w, const srv *s) {
    slm_jw_obj_open(w);
    slm_jw_key(w, "id");
    slm_jw_str(w, s->served);
    slm_jw_key(w, "object");
    slm_jw_str(w, "model");
    slm_jw_key(w, "created");
    slm_jw_int(w, s->created);
    slm_jw_key(w, "owned_by");
    slm_jw_str(w, "slm");
    slm_jw_obj_close(w);
}

static enum MHD_Result serve_models(conn *q, struct MHD_Connection *c, const char *url) {
    slm_jw w = { 0 };
    if (q->rt == R_MODEL) {
        const char *name = url + strlen("/v1/models/");
        if (strcmp(name, q->s->served) && q->s->p.strict_model) {
            api_error e;
            api_fail(&e, 404, "model", "The model '%.200s' does not exist; this server serves '%.200s'", name,
                     q->s->served);
            e.code = "model_not_found";
            return reply_error(q, c, &e);
        }
        model_obj(&w, q->s);
    } else {
        slm_jw_obj_open(&w);
        slm_jw_key(&w, "object");
        slm_jw_str(&w, "list");
        slm_jw_key(&w, "data");
        slm_jw_arr_open(&w);
        model_obj(&w, q->s);
        slm_jw_arr_close(&w);
        slm_jw_obj_close(&w);
    }
    size_t len;
    char *body = slm_jw_take(&w, &len);
    if (!body) return fail(q, c, 500, NULL, "out of memory");
    return reply(q, c, 200, JSON_TYPE, body, len, 0);
}

/* ---- API requests --------------------------------------------------------- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *sc = cls;
    ssize_t n = job_stream(sc->j, sc->fd, buf, max);
    if (n == -1) return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls) {
    stream_ctx *sc = cls;
    job_cancel(sc->j);   /* a no-op for finished choices; stops a gone client's */
    job_unref(sc->j);
    slm_free(sc);
}

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static enum MHD_Result serve_api(conn *q, struct MHD_Connection *c) {
    srv *s = q->s;
    if (q->too_big)
        return fail(q, c, 413, NULL, "the request body is larger than %zu bytes (--max-body)", s->p.max_body);
    api_request r;
    api_error e;
    api_kind kind = q->rt == R_CHAT ? API_CHAT : API_COMPLETIONS;
    if (api_parse(kind, q->body ? q->body : "", q->len, &s->actx, &r, &e)) return reply_error(q, c, &e);
    uint64_t rnd = srv_random(s);
    static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char tail[25];
    for (int i = 0; i < 24; i++) {
        if (i == 12) rnd = srv_random(s);
        tail[i] = ALNUM[rnd % 62];
        rnd /= 62;
    }
    tail[24] = 0;
    snprintf(q->id, sizeof q->id, "%s-%s", kind == API_CHAT ? "chatcmpl" : "cmpl", tail);
    bool stream = r.stream;
    if (job_start(s, &r, q->id, q->arrival_s, &q->job, &e)) return reply_error(q, c, &e);
    int fd = conn_fd(c);
    if (stream) {
        stream_ctx *sc = slm_malloc(sizeof *sc);
        if (!sc) return fail(q, c, 500, NULL, "out of memory");
        *sc = (stream_ctx){ q->job, fd };
        job_ref(q->job);
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, sc,
                                                                      stream_free);
        if (!resp) {
            stream_free(sc);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        enum MHD_Result rc = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        q->status = 200;
        q->answered = true;
        return rc;
    }
    if (job_wait(q->job, fd, &e)) {
        if (e.status == 499) { /* nobody to answer: close the connection */
            q->status = 499;
            snprintf(q->error, sizeof q->error, "%s", e.message);
            return MHD_NO;
        }
        return reply_error(q, c, &e);
    }
    size_t len = 0;
    char *body = job_body(q->job, &len);
    if (!body) return fail(q, c, 500, NULL, "out of memory");
    return reply(q, c, 200, JSON_TYPE, body, len, 0);
}

/* ---- the access handler --------------------------------------------------- */

/* First callback (headers only): answers what can be answered without the
 * body; returns MHD_YES with q->answered false to go on reading. */
static enum MHD_Result first_call(conn *q, struct MHD_Connection *c, const char *url, const char *method) {
    srv *s = q->s;
    bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool api = q->rt == R_CHAT || q->rt == R_COMPLETIONS;
    if (q->rt == R_NONE) return fail(q, c, 404, NULL, "Unknown request URL: %.16s %.200s", method, url);
    if ((api && !post) || (!api && !get))
        return fail(q, c, 405, NULL, "%.16s is not allowed on %.200s; use %s", method, url, api ? "POST" : "GET");
    if (q->rt == R_HEALTH) return serve_health(q, c);
    if (q->rt == R_METRICS) return serve_metrics(q, c);
    if (!authorized(s, c))
        return fail(q, c, 401, NULL, "Incorrect or missing API key; send it as 'Authorization: Bearer KEY'");
    int st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (st == SRV_LOADING) return fail(q, c, 503, NULL, "the model is loading; retry shortly");
    if (st == SRV_DRAINING) return fail(q, c, 503, NULL, "the server is shutting down");
    if (q->rt == R_MODELS || q->rt == R_MODEL) return serve_models(q, c, url);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end && !*end && n > s->p.max_body)
            return fail(q, c, 413, NULL, "the request body is %llu bytes; this server takes at most %zu (--max-body)", n,
                        s->p.max_body);
    }
    atomic_fetch_add(&s->inflight, 1);
    q->inflight = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    srv *s = cls;
    conn *q = *con_cls;
    if (!q) {
        if (!(q = slm_calloc(1, sizeof *q))) return MHD_NO;
        *con_cls = q;
        q->s = s;
        q->arrival_s = srv_now();
        snprintf(q->method, sizeof q->method, "%s", method);
        q->path = slm_strndup(url, 512);
        q->rt = route_of(url, &q->endpoint);
        return first_call(q, c, url, method);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->answered || q->too_big) return MHD_YES;
        if (q->len + n > s->p.max_body) {
            q->too_big = true;
            slm_free(q->body);
            q->body = NULL;
            q->len = q->cap = 0;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t nc = q->cap ? q->cap : 4096;
            while (nc < q->len + n + 1) nc *= 2;
            char *nb = slm_realloc(q->body, nc);
            if (!nb) return MHD_NO;
            q->body = nb;
            q->cap = nc;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        q->body[q->len] = 0;
        return MHD_YES;
    }
    if (q->answered) return MHD_YES;
    return serve_api(q, c);
}

/* ---- access log and completion ------------------------------------------ */

static void access_log(const conn *q, enum MHD_RequestTerminationCode toe) {
    double dur = srv_now() - q->arrival_s;
    slm_jw w = { 0 };
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "ts");
    slm_jw_str(&w, ts);
    if (q->id[0]) {
        slm_jw_key(&w, "id");
        slm_jw_str(&w, q->id);
    }
    slm_jw_key(&w, "method");
    slm_jw_str(&w, q->method);
    slm_jw_key(&w, "path");
    slm_jw_str(&w, q->path ? q->path : "");
    slm_jw_key(&w, "status");
    slm_jw_int(&w, q->status);
    if (q->job) {
        int64_t pt, ct;
        double ttft;
        job_stats(q->job, &pt, &ct, &ttft);
        const api_request *r = job_request(q->job);
        slm_jw_key(&w, "prompt_tokens");
        slm_jw_int(&w, pt);
        slm_jw_key(&w, "completion_tokens");
        slm_jw_int(&w, ct);
        slm_jw_key(&w, "ttft_ms");
        if (ttft >= 0) slm_jw_num(&w, round(ttft * 1e6) / 1e3);
        else slm_jw_null(&w);
        slm_jw_key(&w, "stream");
        slm_jw_bool(&w, r->stream);
        slm_jw_key(&w, "n");
        slm_jw_int(&w, (int64_t)r->n * r->n_prompts);
        if (r->user) {
            slm_jw_key(&w, "user");
            slm_jw_str(&w, r->user);
        }
        if (r->prompt_json) {
            slm_jw_key(&w, "prompt");
            slm_jw_raw(&w, r->prompt_json, strlen(r->prompt_json));
        }
    }
    slm_jw_key(&w, "duration_ms");
    slm_jw_num(&w, round(dur * 1e6) / 1e3);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        slm_jw_key(&w, "aborted");
        slm_jw_bool(&w, true);
    }
    if (q->error[0]) {
        slm_jw_key(&w, "error");
        slm_jw_str(&w, q->error);
    }
    slm_jw_obj_close(&w);
    slm_jw_text(&w, "\n", 1);
    size_t len;
    char *line = slm_jw_take(&w, &len);
    if (line) {
        flockfile(stderr);
        fwrite(line, 1, len, stderr);
        fflush(stderr);
        funlockfile(stderr);
        slm_free(line);
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    srv *s = cls;
    conn *q = *con_cls;
    if (!q) return;
    *con_cls = NULL;
    if (!q->status) q->status = 499;  /* the client left before an answer */
    access_log(q, toe);
    slm_metrics_request(s->metrics, q->endpoint, q->status);
    if (q->job) {
        job_cancel(q->job);
        job_unref(q->job);
    }
    if (q->inflight) atomic_fetch_sub(&s->inflight, 1);
    slm_free(q->body);
    slm_free(q->path);
    slm_free(q);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    fprintf(stderr, "slm: http: %s\n", msg);
}

/* ---- start and stop -------------------------------------------------------- */

int http_start(srv *s, slm_err *err) {
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->p.port);
    int gai = getaddrinfo(s->p.host, port, &hints, &ai);
    if (gai) return slm_err_set(err, SLM_EINVAL, "cannot resolve --host '%s': %s", s->p.host, gai_strerror(gai));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->p.port, NULL, NULL, on_request, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->p.max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                 MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon)
        return slm_err_set(err, SLM_EIO, "cannot listen on %s:%d (address in use, or not this machine's?)", s->p.host,
                           s->p.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di && di->port) s->p.port = di->port;
    return 0;
}

void http_stop(srv *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
