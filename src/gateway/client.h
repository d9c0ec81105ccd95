/*
 * client.h — the upstream HTTP client (libcurl). A pool of easy handles,
 * each keeping its own connections alive between requests: a worker thread
 * takes a handle, makes one request and gives it back, so keep-alive
 * connections to upstreams are reused without a handle per request. The
 * response body is collected up to a limit, or handed chunk by chunk to a
 * callback (streaming) as it arrives.
 */
#ifndef SLM_GATEWAY_CLIENT_H
#define SLM_GATEWAY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include "slm/slm.h"

typedef enum slm_gw_fail {
    SLM_GW_FAIL_NONE,        /* an HTTP response came back (any status)       */
    SLM_GW_FAIL_CONNECT,     /* could not connect (refused, DNS, TLS)          */
    SLM_GW_FAIL_TIMEOUT,     /* connect or total timeout                       */
    SLM_GW_FAIL_RESET,       /* the connection broke mid-way                   */
    SLM_GW_FAIL_ABORTED,     /* the data callback asked to stop                */
    SLM_GW_FAIL_OTHER,
} slm_gw_fail;

/* Streaming sink: called with each chunk of the body; return false to
 * abort the transfer. status is the HTTP status of the response. */
typedef bool (*slm_gw_sink_fn)(void *arg, int status, const char *data, size_t n);

typedef struct slm_gw_http_req {
    const char *method;           /* "POST" or "GET"                             */
    const char *url;
    const char *const *headers;   /* "Name: value" lines                          */
    int n_headers;
    const char *body; size_t len; /* POST body                                    */
    int timeout_ms;               /* whole request (0: none)                      */
    int connect_timeout_ms;
    int first_byte_timeout_ms;    /* streaming: no body byte by then is a timeout */
    size_t max_response;          /* collected body limit                         */
    slm_gw_sink_fn sink; void *sink_arg; /* non-NULL: stream the body there       */
} slm_gw_http_req;

typedef struct slm_gw_http_resp {
    int status;                   /* HTTP status, 0 when none                     */
    slm_gw_fail fail;
    char *body; size_t len;       /* collected body (slm_free), NUL-terminated    */
    bool got_body_byte;           /* streaming: the sink saw at least one byte    */
    char content_type[128];
    char error[256];              /* what went wrong, for logs                    */
} slm_gw_http_resp;

typedef struct slm_gw_client slm_gw_client;

int  slm_gw_client_new(slm_gw_client **out, slm_err *err);
void slm_gw_client_free(slm_gw_client *cl);
/* Makes one request. Returns 0 when the exchange finished (look at
 * rs->fail and rs->status), SLM_ENOMEM otherwise. rs->body is owned by the
 * caller; free it with slm_gw_http_resp_clear. */
int  slm_gw_client_do(slm_gw_client *cl, const slm_gw_http_req *rq, slm_gw_http_resp *rs);
void slm_gw_http_resp_clear(slm_gw_http_resp *rs);

#endif
