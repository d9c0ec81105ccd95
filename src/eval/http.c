/*
 * http.c — see http.h. The handle is reset before each request (options
 * only; its connection cache survives), headers are read line by line for
 * Retry-After, and curl's result code maps to slm_gw_fail as the gateway's
 * client maps it.
 */
#include "eval/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/alloc.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct xfer {
    slm_eval_http_resp *rs;
    size_t cap, max;
    bool oom, too_big;
} xfer;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg) {
    xfer *x = arg;
    size_t n = size * nmemb;
    if (x->rs->len + n > x->max) { x->too_big = true; return 0; }
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

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg) {
    xfer *x = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name && n < 256 && !strncasecmp(p, name, sizeof name - 1)) {
        char v[256];
        size_t vl = n - (sizeof name - 1);
        memcpy(v, p + sizeof name - 1, vl);
        v[vl] = 0;
        char *s = v;
        while (*s == ' ' || *s == '\t') s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) *--e = 0;
        char *end;
        double secs = strtod(s, &end);
        if (end != s && !*end && secs >= 0) {
            x->rs->retry_after_s = secs;
        } else {
            time_t when = curl_getdate(s, NULL);
            if (when != (time_t)-1) {
                double d = difftime(when, time(NULL));
                x->rs->retry_after_s = d > 0 ? d : 0;
            }
        }
    }
    return n;
}

int slm_eval_http_post(slm_eval_http *h, const char *url, const char *const *headers, int n_headers, const char *body,
                       size_t len, int timeout_ms, size_t max_response, slm_eval_http_resp *rs) {
    memset(rs, 0, sizeof *rs);
    rs->retry_after_s = -1;
    pthread_once(&g_once, init_once);
    if (!h->curl && !(h->curl = curl_easy_init())) return SLM_ENOMEM;
    CURL *c = h->curl;
    curl_easy_reset(c);
    struct curl_slist *hdrs = NULL;
    for (int i = 0; i < n_headers; i++) {
        struct curl_slist *nh = curl_slist_append(hdrs, headers[i]);
        if (!nh) { curl_slist_free_all(hdrs); return SLM_ENOMEM; }
        hdrs = nh;
    }
    struct curl_slist *nh = curl_slist_append(hdrs, "Expect:");
    if (nh) hdrs = nh;
    xfer x = { .rs = rs, .max = max_response ? max_response : (size_t)64 << 20 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    if (timeout_ms > 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    }
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    rs->status = (int)status;
    switch (cc) {
    case CURLE_OK: rs->fail = SLM_GW_FAIL_NONE; break;
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_SSL_CONNECT_ERROR:
        rs->fail = SLM_GW_FAIL_CONNECT; break;
    case CURLE_OPERATION_TIMEDOUT: rs->fail = SLM_GW_FAIL_TIMEOUT; break;
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
        rs->fail = SLM_GW_FAIL_RESET; break;
    default: rs->fail = SLM_GW_FAIL_OTHER; break;
    }
    if (cc != CURLE_OK) {
        snprintf(rs->error, sizeof rs->error, "%s", x.too_big ? "response too large" : curl_easy_strerror(cc));
        rs->status = 0;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (x.oom) { slm_eval_http_resp_clear(rs); return SLM_ENOMEM; }
    return 0;
}

void slm_eval_http_resp_clear(slm_eval_http_resp *rs) {
    slm_free(rs->body);
    rs->body = NULL;
    rs->len = 0;
}

void slm_eval_http_close(slm_eval_http *h) {
    if (h && h->curl) {
        curl_easy_cleanup(h->curl);
        h->curl = NULL;
    }
}
