/* breaker.c — see breaker.h. */
#include "gateway/breaker.h"

void slm_gw_breaker_init(slm_gw_breaker *b) {
    pthread_mutex_init(&b->mu, NULL);
    b->state = SLM_GW_CLOSED;
    b->n_failed = 0;
    b->open_until = 0;
    b->probing = false;
}

void slm_gw_breaker_destroy(slm_gw_breaker *b) { pthread_mutex_destroy(&b->mu); }

bool slm_gw_breaker_allow(slm_gw_breaker *b, double now) {
    pthread_mutex_lock(&b->mu);
    bool ok = true;
    if (b->state == SLM_GW_OPEN) {
        if (now >= b->open_until) { b->state = SLM_GW_HALF_OPEN; b->probing = true; }
        else ok = false;
    } else if (b->state == SLM_GW_HALF_OPEN) {
        if (b->probing) ok = false;
        else b->probing = true;
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

bool slm_gw_breaker_peek(slm_gw_breaker *b, double now) {
    pthread_mutex_lock(&b->mu);
    bool ok = b->state == SLM_GW_CLOSED || (b->state == SLM_GW_OPEN && now >= b->open_until) ||
              (b->state == SLM_GW_HALF_OPEN && !b->probing);
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void slm_gw_breaker_record(slm_gw_breaker *b, bool ok, double now, int failures, int cooldown_ms) {
    pthread_mutex_lock(&b->mu);
    if (ok) {
        b->state = SLM_GW_CLOSED;
        b->n_failed = 0;
        b->probing = false;
    } else if (b->state == SLM_GW_HALF_OPEN || ++b->n_failed >= failures) {
        b->state = SLM_GW_OPEN;
        b->open_until = now + cooldown_ms / 1000.0;
        b->probing = false;
        b->n_failed = 0;
    }
    pthread_mutex_unlock(&b->mu);
}

slm_gw_bstate slm_gw_breaker_state(slm_gw_breaker *b) {
    pthread_mutex_lock(&b->mu);
    slm_gw_bstate s = b->state;
    pthread_mutex_unlock(&b->mu);
    return s;
}
