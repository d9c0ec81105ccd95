/*
 * srv.h — the server's private state, shared by server.c (life cycle:
 * bind, load, run, drain), http.c (connections, routing, auth, limits,
 * access log) and job.c (one API request in flight: its scheduler handles,
 * the events they produce, the response or the SSE stream).
 *
 * Threads: libmicrohttpd runs one thread per connection; the scheduler runs
 * its own; the thread that called slm_server_run waits for signals. The
 * model, vocabulary and scheduler are written once before `state` becomes
 * SRV_READY (a release store) and only read after a handler sees READY
 * (an acquire load). Everything else shared is atomic; there are no locks
 * here, so there is no lock order to keep.
 */
#ifndef SLM_SERVE_SRV_H
#define SLM_SERVE_SRV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "serve/api.h"
#include "serve/metrics.h"
#include "sample/constraint.h"
#include "serve/sched.h"
#include "serve/server.h"

typedef enum srv_state { SRV_LOADING, SRV_READY, SRV_DRAINING } srv_state;

typedef struct srv {
    slm_server_params p;            /* as given (strings not owned)                     */
    char *served;                   /* model name requests use (owned)                  */
    char fingerprint[40];           /* system_fingerprint                               */
    int64_t created;                /* Unix seconds the server started                  */
    atomic_int state;               /* srv_state                                        */
    atomic_int give_up;             /* drain timed out: in-flight requests end now      */
    atomic_int_fast64_t inflight;   /* API requests accepted and not yet completed      */
    atomic_uint_fast64_t counter;   /* ids and unseeded request seeds                   */
    uint64_t salt;                  /* mixed into ids and seeds                         */
    slm_model *model;               /* valid once READY                                 */
    const slm_vocab *vocab;
    slm_constraint_vocab *cvocab;   /* token trie for response_format, built at load    */
    slm_sched *sched;
    slm_metrics *metrics;           /* from the start (owned)                           */
    api_ctx actx;                   /* parser settings, valid once READY                */
    struct MHD_Daemon *daemon;
} srv;

double srv_now(void);               /* monotonic seconds */
uint64_t srv_random(srv *s);        /* a fresh 64-bit value (ids, seeds)                */

/* http.c */
int  http_start(srv *s, slm_err *err);
void http_stop(srv *s);

/* job.c — one API request in flight. */
typedef struct job job;

/* Submits r's choices (n per prompt) to the scheduler; takes r (zeroed on
 * return either way). 0 with *out (one reference, the caller's), or -1 with
 * e (429 when the queue is full, 400 for a bad schema, …). */
int  job_start(srv *s, api_request *r, const char *id, double arrival_s, job **out, api_error *e);
void job_ref(job *j);
void job_unref(job *j);              /* the last reference cancels what still runs */
void job_cancel(job *j);
/* Waits for every choice (non-streaming), checking the client socket fd for
 * a disconnect; 0, or -1 with e. */
int  job_wait(job *j, int fd, api_error *e);
/* The response body of a finished job (slm_free), NULL when out of memory. */
char *job_body(job *j, size_t *len);
/* SSE: copies up to max bytes of the stream into buf, waiting for events;
 * returns the count, 0 never, -1 at the end of the stream, -2 when the
 * client went away (everything is cancelled then). */
ssize_t job_stream(job *j, int fd, char *buf, size_t max);
bool job_streaming(const job *j);
/* For the access log. */
void job_stats(const job *j, int64_t *prompt_tokens, int64_t *completion_tokens, double *ttft_s);
const api_request *job_request(const job *j);

#endif
