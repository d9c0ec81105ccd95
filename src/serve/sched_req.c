/*
 * sched_req.c — one request's life outside the batch: copying what the
 * caller submitted, the event queue the HTTP thread reads (each event owns
 * copies of its text and alternatives), and freeing when both the scheduler
 * and the caller are done (a reference count of two).
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "serve/sched_internal.h"
#include "util/alloc.h"
#include "util/err.h"

int req_push_tokens(sched_handle *h, const int32_t *t, int32_t n) {
    if (h->n_tokens + n > h->cap_tokens) {
        int32_t nc = h->cap_tokens ? h->cap_tokens : 64;
        while (nc < h->n_tokens + n) nc *= 2;
        int32_t *nt = slm_realloc(h->tokens, (size_t)nc * sizeof *nt);
        if (!nt) return SLM_ENOMEM;
        h->tokens = nt;
        h->cap_tokens = nc;
    }
    memcpy(h->tokens + h->n_tokens, t, (size_t)n * sizeof *t);
    h->n_tokens += n;
    return 0;
}

int req_init(sched_handle *h, const slm_vocab *v, const sched_req *r, slm_err *err) {
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    atomic_store(&h->refs, 2);
    h->seq = -1;
    h->constraint = r->constraint;
    if (r->n_prompt <= 0) return slm_err_set(err, SLM_EINVAL, "the prompt is empty");
    if (r->top_logprobs > 20) return slm_err_set(err, SLM_EINVAL, "top_logprobs must be at most 20");
    int32_t nv = slm_vocab_n_tokens(v);
    for (int32_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= nv)
            return slm_err_set(err, SLM_EINVAL, "prompt token %d is out of range (vocabulary of %d)", r->prompt[i], nv);
    if (req_push_tokens(h, r->prompt, r->n_prompt)) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    h->n_prompt = r->n_prompt;
    h->sample = r->sample;
    if (r->sample.n_logit_bias > 0) {
        h->bias = slm_malloc((size_t)r->sample.n_logit_bias * sizeof *h->bias);
        if (!h->bias) return slm_err_set(err, SLM_ENOMEM, "out of memory");
        memcpy(h->bias, r->sample.logit_bias, (size_t)r->sample.n_logit_bias * sizeof *h->bias);
        h->sample.logit_bias = h->bias;
    }
    h->max_tokens = r->max_tokens;
    h->top_logprobs = r->top_logprobs;
    h->echo = r->echo_logprobs;
    h->deadline_s = r->deadline_s;
    h->arrival_s = r->arrival_s;
    if (slm_sampler_new(&h->sample, nv, &h->sampler))
        return slm_err_set(err, SLM_EINVAL, "invalid sampling parameters");
    if (slm_detok_new(v, &h->detok) || !(h->stopper = slm_stopper_new(r->stops, r->n_stops)))
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    return 0;
}

static void free_event(owned_event *e) {
    slm_free(e->text);
    slm_free(e->top);
    memset(e, 0, sizeof *e);
}

static void req_free(sched_handle *h) {
    for (int32_t i = h->head; i < h->n_events; i++) free_event(&h->events[i]);
    free_event(&h->current);
    slm_free(h->events);
    slm_free(h->tokens);
    slm_free(h->bias);
    slm_sampler_free(h->sampler);
    slm_detok_free(h->detok);
    slm_stopper_free(h->stopper);
    slm_constraint_free(h->constraint);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    slm_free(h);
}

void req_unref(sched_handle *h) {
    if (atomic_fetch_sub(&h->refs, 1) == 1) req_free(h);
}

/* Queues a copy of ev for the reader. Out of memory drops the event and
 * turns the request into an error (the reader always sees an end). */
void req_emit(sched_handle *h, const sched_event *ev) {
    owned_event e = { *ev, NULL, NULL };
    bool ok = true;
    if (ev->text && ev->text_len) {
        e.text = slm_strndup(ev->text, ev->text_len);
        ok &= e.text != NULL;
    }
    if (ev->n_top > 0) {
        e.top = slm_malloc((size_t)ev->n_top * sizeof *e.top);
        ok &= e.top != NULL;
        if (e.top) memcpy(e.top, ev->top, (size_t)ev->n_top * sizeof *e.top);
    }
    e.ev.text = e.text ? e.text : "";
    e.ev.top = e.top;
    e.ev.error = NULL;
    if (ev->kind == SCHED_EV_ERROR && ev->error) {
        e.text = slm_strdup(ev->error);
        e.ev.error = e.text ? e.text : "error";
        e.ev.text = "";
        e.ev.text_len = 0;
    }
    pthread_mutex_lock(&h->mu);
    if (h->finished) {
        pthread_mutex_unlock(&h->mu);
        free_event(&e);
        return;
    }
    if (ok && h->n_events == h->cap_events) {
        if (h->head > 0) { /* compact */
            memmove(h->events, h->events + h->head, (size_t)(h->n_events - h->head) * sizeof *h->events);
            h->n_events -= h->head;
            h->head = 0;
        }
        if (h->n_events == h->cap_events) {
            int32_t nc = h->cap_events ? h->cap_events * 2 : 16;
            owned_event *ne = slm_realloc(h->events, (size_t)nc * sizeof *ne);
            if (ne) {
                h->events = ne;
                h->cap_events = nc;
            } else {
                ok = false;
            }
        }
    }
    if (!ok) {
        free_event(&e);
        h->finished = true; /* the reader gets a synthetic error (see sched_next) */
    } else {
        h->events[h->n_events++] = e;
        if (ev->kind == SCHED_EV_DONE || ev->kind == SCHED_EV_ERROR) h->finished = true;
    }
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void req_emit_error(sched_handle *h, int code, const char *msg) {
    sched_event ev = { .kind = SCHED_EV_ERROR, .code = code, .error = msg, .logprob = NAN };
    req_emit(h, &ev);
}

int sched_next(sched_handle *h, int timeout_ms, sched_event *ev) {
    pthread_mutex_lock(&h->mu);
    free_event(&h->current);
    if (h->head == h->n_events && !h->finished && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        while (h->head == h->n_events && !h->finished)
            if (pthread_cond_timedwait(&h->cv, &h->mu, &ts)) break;
    }
    int rc = 0;
    if (h->head < h->n_events) {
        h->current = h->events[h->head++];
        *ev = h->current.ev;
    } else if (h->finished) { /* finished without an end event: out of memory */
        memset(ev, 0, sizeof *ev);
        ev->kind = SCHED_EV_ERROR;
        ev->code = SLM_ENOMEM;
        ev->error = "out of memory";
        ev->text = "";
    } else {
        rc = SLM_ETIMEDOUT;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}
