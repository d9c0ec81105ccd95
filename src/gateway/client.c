/*
 * client.c — see client.h. Blocking requests and pulled streams. The pool is a stack of idle CURL easy handles
 * behind a mutex (a leaf lock, held only to push or pop); a request pops
 * one (or makes a new one), resets its options, performs, and pushes it
 * back so its connection cache survives. curl_global_init runs once per
 * process through pthread_once, as libcurl requires.
 */
#include "gateway/client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/alloc.h"
#include "util/err.h"

#define POOL_MAX 256

struct slm_gw_client {
    pthread_mutex_t mu;      /* guards idle, n_idle; leaf lock */
    CURL *idle[POOL_MAX];
    int n_idle;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int slm_gw_client_new(slm_gw_client **out, slm_err *err) {
    pthread_once(&g_curl_once, curl_init_once);
    slm_gw_client *cl = slm_calloc(1, sizeof *cl);
    if (!cl) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    pthread_mutex_init(&cl->mu, NULL);
    *out = cl;
    return 0;
}

void slm_gw_client_free(slm_gw_client *cl) {
    if (!cl) return;
    for (int i = 0; i < cl->n_idle; i++) curl_easy_cleanup(cl->idle[i]);
    pthread_mutex_destroy(&cl->mu);
    slm_free(cl);
}

void slm_gw_http_resp_clear(slm_gw_http_resp *rs) {
    slm_free(rs->body);
    rs->body = NULL;
    rs->len = 0;
}

typedef struct xfer {
    const slm_gw_http_req *rq;
    slm_gw_http_resp *rs;
    CURL *h;
    size_t cap;
    bool oom, too_big, sink_stop;
    double t0;               /* for the first-byte deadline */
} xfer;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg) {
    xfer *x = arg;
    size_t n = size * nmemb;
    if (x->rq->sink) {
        long st = 0;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
        x->rs->got_body_byte |= n > 0;
        if (!x->rq->sink(x->rq->sink_arg, (int)st, p, n)) { x->sink_stop = true; return 0; }
        return n;
    }
    if (x->rs->len + n > x->rq->max_response) { x->too_big = true; return 0; }
    if (x->rs->len + n + 1 > x->cap) {
        size_t nc = x->cap ? x->cap : 4096;
        while (nc < x->rs->len + n + 1) nc *= 2;
        char *nb = slm_realloc(x->rs->body, nc);
        if (!nb) { x->oom = true; return 0; }
        x->rs->body = nb;
        x->cap = nc;
    }
    memcpy(x->rs->body + x->rs->len, p, n);
    x->rs->len += n;
    x->rs->body[x->rs->len] = 0;
    return n;
}

/* Enforces the first-byte deadline of streams. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    xfer *x = arg;
    if (x->rq->first_byte_timeout_ms > 0 && !x->rs->got_body_byte && dlnow == 0 &&
        now_s() - x->t0 > x->rq->first_byte_timeout_ms / 1000.0)
        return 1;
    return 0;
}

static slm_gw_fail map_fail(CURLcode cc, bool sink_stop) {
    switch (cc) {
    case CURLE_OK: return SLM_GW_FAIL_NONE;
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_SSL_CONNECT_ERROR:
        return SLM_GW_FAIL_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: return SLM_GW_FAIL_TIMEOUT;
    case CURLE_ABORTED_BY_CALLBACK: return SLM_GW_FAIL_TIMEOUT;   /* first-byte deadline */
    case CURLE_WRITE_ERROR: return sink_stop ? SLM_GW_FAIL_ABORTED : SLM_GW_FAIL_OTHER;
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
        return SLM_GW_FAIL_RESET;
    default: return SLM_GW_FAIL_OTHER;
    }
}

static CURL *take(slm_gw_client *cl) {
    CURL *h = NULL;
    pthread_mutex_lock(&cl->mu);
    if (cl->n_idle) h = cl->idle[--cl->n_idle];
    pthread_mutex_unlock(&cl->mu);
    if (h) curl_easy_reset(h);
    else h = curl_easy_init();
    return h;
}

static void give_back(slm_gw_client *cl, CURL *h) {
    pthread_mutex_lock(&cl->mu);
    if (cl->n_idle < POOL_MAX) { cl->idle[cl->n_idle++] = h; h = NULL; }
    pthread_mutex_unlock(&cl->mu);
    if (h) curl_easy_cleanup(h);
}

int slm_gw_client_do(slm_gw_client *cl, const slm_gw_http_req *rq, slm_gw_http_resp *rs) {
    memset(rs, 0, sizeof *rs);
    CURL *h = take(cl);
    if (!h) return SLM_ENOMEM;
    struct curl_slist *hdrs = NULL;
    for (int i = 0; i < rq->n_headers; i++) {
        struct curl_slist *nh = curl_slist_append(hdrs, rq->headers[i]);
        if (!nh) { curl_slist_free_all(hdrs); give_back(cl, h); return SLM_ENOMEM; }
        hdrs = nh;
    }
    struct curl_slist *nh = curl_slist_append(hdrs, "Expect:");   /* no 100-continue round trip */
    if (nh) hdrs = nh;
    xfer x = { .rq = rq, .rs = rs, .h = h, .t0 = now_s() };
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rq->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
    if (rq->connect_timeout_ms > 0) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)rq->connect_timeout_ms);
    if (rq->first_byte_timeout_ms > 0) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    }
    if (rq->method && !strcmp(rq->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(rs->content_type, sizeof rs->content_type, "%s", ct);
    rs->status = (int)status;
    rs->fail = map_fail(cc, x.sink_stop);
    if (cc != CURLE_OK) {
        snprintf(rs->error, sizeof rs->error, "%s", x.too_big ? "response too large" : curl_easy_strerror(cc));
        if (rs->fail != SLM_GW_FAIL_NONE) rs->status = rs->fail == SLM_GW_FAIL_ABORTED ? rs->status : 0;
    }
    curl_slist_free_all(hdrs);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    give_back(cl, h);
    if (x.oom) { slm_gw_http_resp_clear(rs); return SLM_ENOMEM; }
    return 0;
}

/* ---- pulled streams -------------------------------------------------------- */

struct slm_gw_stream {
    slm_gw_client *cl;
    CURL *h;
    CURLM *m;
    struct curl_slist *hdrs;
    char *buf; size_t len, pos, cap;  /* body bytes received, not yet read     */
    size_t collected;                 /* non-2xx body bytes kept               */
    size_t max_collect;
    long status;                      /* HTTP status once headers are in       */
    bool got_byte, done, oom, too_big;
    slm_gw_fail fail;
    char error[256];
    double t0, t_last;                /* start; last body byte                 */
    int first_byte_ms, idle_ms;
};

static size_t on_stream_body(char *p, size_t size, size_t nmemb, void *arg) {
    slm_gw_stream *s = arg;
    size_t n = size * nmemb;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status / 100 != 2) {
        if (s->collected + n > s->max_collect) { s->too_big = true; return 0; }
        s->collected += n;
    }
    if (s->pos == s->len) s->pos = s->len = 0;
    if (s->len + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 16384;
        while (nc < s->len + n + 1) nc *= 2;
        char *nb = slm_realloc(s->buf, nc);
        if (!nb) { s->oom = true; return 0; }
        s->buf = nb;
        s->cap = nc;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = 0;
    if (n) { s->got_byte = true; s->t_last = now_s(); }
    return n;
}

static void stream_end(slm_gw_stream *s, slm_gw_fail fail, const char *why) {
    s->done = true;
    s->fail = fail;
    if (fail != SLM_GW_FAIL_NONE) snprintf(s->error, sizeof s->error, "%s", why);
}

/* One round of transfer work, waiting at most wait_ms for the socket. */
static void pump(slm_gw_stream *s, int wait_ms) {
    int running = 0;
    curl_multi_perform(s->m, &running);
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(s->m, &left)))
        if (msg->msg == CURLMSG_DONE) {
            CURLcode cc = msg->data.result;
            curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
            if (s->oom) stream_end(s, SLM_GW_FAIL_OTHER, "out of memory");
            else if (s->too_big) stream_end(s, SLM_GW_FAIL_OTHER, "response too large");
            else stream_end(s, map_fail(cc, false), curl_easy_strerror(cc));
        }
    if (s->done) return;
    double now = now_s();
    if (!s->got_byte && s->first_byte_ms > 0 && now - s->t0 > s->first_byte_ms / 1000.0) {
        stream_end(s, SLM_GW_FAIL_TIMEOUT, "no first byte in time");
        return;
    }
    if (s->got_byte && s->idle_ms > 0 && now - s->t_last > s->idle_ms / 1000.0) {
        stream_end(s, SLM_GW_FAIL_TIMEOUT, "stream stalled");
        return;
    }
    if (s->pos == s->len && running) curl_multi_poll(s->m, NULL, 0, wait_ms, NULL);
}

int slm_gw_stream_open(slm_gw_client *cl, const slm_gw_http_req *rq, int idle_timeout_ms, slm_gw_stream **out,
                       slm_gw_http_resp *rs) {
    memset(rs, 0, sizeof *rs);
    *out = NULL;
    slm_gw_stream *s = slm_calloc(1, sizeof *s);
    if (!s) return SLM_ENOMEM;
    s->cl = cl;
    s->h = take(cl);
    s->m = curl_multi_init();
    if (!s->h || !s->m) { slm_gw_stream_close(s); return SLM_ENOMEM; }
    for (int i = 0; i < rq->n_headers; i++) {
        struct curl_slist *nh = curl_slist_append(s->hdrs, rq->headers[i]);
        if (!nh) { slm_gw_stream_close(s); return SLM_ENOMEM; }
        s->hdrs = nh;
    }
    struct curl_slist *nh = curl_slist_append(s->hdrs, "Expect:");
    if (nh) s->hdrs = nh;
    s->max_collect = rq->max_response ? rq->max_response : (1u << 20);
    s->first_byte_ms = rq->first_byte_timeout_ms;
    s->idle_ms = idle_timeout_ms;
    s->t0 = s->t_last = now_s();
    CURL *h = s->h;
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rq->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
    if (rq->connect_timeout_ms > 0) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)rq->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
    if (curl_multi_add_handle(s->m, h) != CURLM_OK) { slm_gw_stream_close(s); return SLM_ENOMEM; }
    /* until the answer is decided: a 2xx with a body byte, or the end */
    while (!s->done && !(s->status / 100 == 2 && s->got_byte)) pump(s, 50);
    if (s->oom) { slm_gw_stream_close(s); return SLM_ENOMEM; }
    rs->status = (int)s->status;
    rs->got_body_byte = s->got_byte;
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(rs->content_type, sizeof rs->content_type, "%s", ct);
    if (s->done && s->fail != SLM_GW_FAIL_NONE) {
        rs->fail = s->fail;
        rs->status = 0;
        snprintf(rs->error, sizeof rs->error, "%s", s->error);
    } else if (s->status / 100 != 2) {
        /* the whole error body, for the caller to pass on or judge */
        rs->body = slm_strndup(s->buf ? s->buf + s->pos : "", s->len - s->pos);
        if (!rs->body) { slm_gw_stream_close(s); return SLM_ENOMEM; }
        rs->len = s->len - s->pos;
        s->pos = s->len;
    }
    *out = s;
    return 0;
}

long slm_gw_stream_read(slm_gw_stream *s, char *buf, size_t cap) {
    while (s->pos == s->len && !s->done) pump(s, 100);
    if (s->pos < s->len) {
        size_t n = s->len - s->pos < cap ? s->len - s->pos : cap;
        memcpy(buf, s->buf + s->pos, n);
        s->pos += n;
        return (long)n;
    }
    return s->fail == SLM_GW_FAIL_NONE ? 0 : -1;
}

slm_gw_fail slm_gw_stream_fail(const slm_gw_stream *s, const char **why) {
    if (why) *why = s->error;
    return s->fail;
}

void slm_gw_stream_close(slm_gw_stream *s) {
    if (!s) return;
    if (s->m && s->h) curl_multi_remove_handle(s->m, s->h);
    if (s->m) curl_multi_cleanup(s->m);
    if (s->h) {
        curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, NULL);
        if (s->done && s->fail == SLM_GW_FAIL_NONE) give_back(s->cl, s->h);
        else curl_easy_cleanup(s->h);   /* an aborted transfer's connection is not reusable */
    }
    curl_slist_free_all(s->hdrs);
    slm_free(s->buf);
    slm_free(s);
}
