/*
 * stop.c — see stop.h. The text accumulates in one buffer; `sent` marks
 * how much was released. After each push the buffer is searched for each
 * stop string from just before `sent` (a stop string may straddle the
 * boundary), and the longest suffix that is a prefix of some stop string
 * is held back.
 */
#include "sample/stop.h"

#include <string.h>

#include "slm/slm.h"
#include "util/alloc.h"

struct slm_stopper {
    char **stops; size_t *lens; int n;
    char *buf; size_t len, cap, sent, taken;
    size_t max_len;
    bool hit;
};

slm_stopper *slm_stopper_new(const char *const *stops, int n_stops) {
    slm_stopper *s = slm_calloc(1, sizeof *s);
    if (!s) return NULL;
    if (n_stops > 0) {
        s->stops = slm_calloc((size_t)n_stops, sizeof *s->stops);
        s->lens = slm_calloc((size_t)n_stops, sizeof *s->lens);
        if (!s->stops || !s->lens) goto fail;
    }
    for (int i = 0; i < n_stops; i++) {
        if (!stops[i] || !stops[i][0]) continue;
        if (!(s->stops[s->n] = slm_strdup(stops[i]))) goto fail;
        s->lens[s->n] = strlen(stops[i]);
        if (s->lens[s->n] > s->max_len) s->max_len = s->lens[s->n];
        s->n++;
    }
    s->cap = 256;
    if (!(s->buf = slm_malloc(s->cap))) goto fail;
    s->buf[0] = 0;
    return s;
fail:
    slm_stopper_free(s);
    return NULL;
}

void slm_stopper_free(slm_stopper *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) slm_free(s->stops[i]);
    slm_free(s->stops);
    slm_free(s->lens);
    slm_free(s->buf);
    slm_free(s);
}

int slm_stopper_push(slm_stopper *s, const char *text, size_t len) {
    if (s->hit) return 1;
    if (s->len + len + 1 > s->cap) {
        size_t nc = s->cap;
        while (nc < s->len + len + 1) nc *= 2;
        char *nb = slm_realloc(s->buf, nc);
        if (!nb) return SLM_ENOMEM;
        s->buf = nb;
        s->cap = nc;
    }
    memcpy(s->buf + s->len, text, len);
    s->len += len;
    s->buf[s->len] = 0;
    size_t from = s->sent > s->max_len ? s->sent - s->max_len : 0;
    size_t cut = s->len + 1;
    for (int i = 0; i < s->n; i++) {
        char *hit = memmem(s->buf + from, s->len - from, s->stops[i], s->lens[i]);
        if (hit && (size_t)(hit - s->buf) < cut) cut = (size_t)(hit - s->buf);
    }
    if (cut <= s->len) {
        s->len = cut < s->sent ? s->sent : cut;
        s->buf[s->len] = 0;
        s->hit = true;
        s->sent = s->len;
        return 1;
    }
    size_t safe = s->len;
    for (int i = 0; i < s->n; i++)
        for (size_t k = s->lens[i] - 1; k > 0; k--)
            if (k <= s->len && !memcmp(s->buf + s->len - k, s->stops[i], k)) {
                if (s->len - k < safe) safe = s->len - k;
                break;
            }
    if (safe > s->sent) s->sent = safe;
    return 0;
}

void slm_stopper_take(slm_stopper *s, bool final, const char **out, size_t *len) {
    if (final) s->sent = s->len;
    *out = s->buf + s->taken;
    *len = s->sent - s->taken;
    s->taken = s->sent;
}

bool slm_stopper_hit(const slm_stopper *s) { return s->hit; }

const char *slm_stopper_text(const slm_stopper *s, size_t *len) {
    if (len) *len = s->len;
    return s->buf;
}
