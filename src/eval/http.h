/*
 * http.h — one HTTP POST for the evaluator's OpenAI-compatible targets.
 *
 * The gateway's client (gateway/client.h) pools handles and collects bodies
 * but does not hand back response headers, and an evaluator must honour a
 * 429's Retry-After. This is the smallest call that does: libcurl, one easy
 * handle per worker thread (kept between calls, so keep-alive connections
 * are reused as the pool would), the body collected up to a limit, and
 * Retry-After (seconds, or an HTTP date) parsed from the headers. Failure
 * kinds reuse the client's slm_gw_fail so both read the same.
 */
#ifndef SLM_EVAL_HTTP_H
#define SLM_EVAL_HTTP_H

#include <stddef.h>
#include "gateway/client.h"

typedef struct slm_eval_http {
    void *curl;                   /* CURL easy handle, NULL until first use    */
} slm_eval_http;

typedef struct slm_eval_http_resp {
    int status;                   /* HTTP status, 0 when none                   */
    slm_gw_fail fail;             /* NONE when a response came back             */
    double retry_after_s;         /* Retry-After, seconds; < 0 when absent      */
    char *body; size_t len;       /* collected body (slm_free), NUL-terminated  */
    char error[256];              /* what went wrong                            */
} slm_eval_http_resp;

/* POSTs body to url with the "Name: value" headers. timeout_ms bounds the
 * whole request. Returns 0 when the exchange finished (look at rs->fail and
 * rs->status), SLM_ENOMEM otherwise. Free rs with slm_eval_http_resp_clear. */
int  slm_eval_http_post(slm_eval_http *h, const char *url, const char *const *headers, int n_headers,
                        const char *body, size_t len, int timeout_ms, size_t max_response, slm_eval_http_resp *rs);
void slm_eval_http_resp_clear(slm_eval_http_resp *rs);
void slm_eval_http_close(slm_eval_http *h);   /* frees the handle; h stays valid */

#endif
