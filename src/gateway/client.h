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

/* ---- pulled streams (client_stream.c) --------------------------------------
 * A request whose body is read piece by piece as the caller asks for it, on
 * the caller's thread (curl's multi interface drives one easy handle): no
 * thread and no buffering beyond the chunk curl just received, and a slow
 * reader slows the upstream (TCP backpressure) instead of filling memory.
 *
 * slm_gw_stream_open runs the request until the response is decided: the
 * first body byte of a 2xx answer (the stream is then "live" and its status
 * known), or the whole (bounded) body of a non-2xx answer, or a failure
 * (connect error, first_byte_timeout_ms, reset). rs tells which; read the
 * live body with slm_gw_stream_read. idle_timeout_ms (the request's
 * timeout_ms is the whole-transfer bound) limits the silence between two
 * chunks: a stalled upstream ends the stream with SLM_GW_FAIL_TIMEOUT. */
typedef struct slm_gw_stream slm_gw_stream;

/* Returns 0 and *out (close it in every case), or SLM_ENOMEM. rs is filled
 * as slm_gw_client_do fills it; for a live stream rs->body holds nothing. */
int  slm_gw_stream_open(slm_gw_client *cl, const slm_gw_http_req *rq, int idle_timeout_ms, slm_gw_stream **out,
                        slm_gw_http_resp *rs);
/* Copies up to cap body bytes into buf: > 0 bytes, 0 at the clean end, < 0
 * when the transfer failed (slm_gw_stream_fail says how). Blocks until
 * data, the end, a failure or the idle deadline. */
long slm_gw_stream_read(slm_gw_stream *s, char *buf, size_t cap);
slm_gw_fail slm_gw_stream_fail(const slm_gw_stream *s, const char **why);
/* Aborts a transfer still running and frees everything; NULL is fine. */
void slm_gw_stream_close(slm_gw_stream *s);

#endif
