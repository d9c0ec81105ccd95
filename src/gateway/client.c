/*
 * client.c — see client.h. The pool is a stack of idle CURL easy handles
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
    switch (cc) {
    case CURLE_OK: rs->fail = SLM_GW_FAIL_NONE; break;
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_SSL_CONNECT_ERROR:
        rs->fail = SLM_GW_FAIL_CONNECT; break;
    case CURLE_OPERATION_TIMEDOUT: rs->fail = SLM_GW_FAIL_TIMEOUT; break;
    case CURLE_ABORTED_BY_CALLBACK: rs->fail = SLM_GW_FAIL_TIMEOUT; break;   /* first-byte deadline */
    case CURLE_WRITE_ERROR: rs->fail = x.sink_stop ? SLM_GW_FAIL_ABORTED : SLM_GW_FAIL_OTHER; break;
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
        rs->fail = SLM_GW_FAIL_RESET; break;
    default: rs->fail = SLM_GW_FAIL_OTHER; break;
    }
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
