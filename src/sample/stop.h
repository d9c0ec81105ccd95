/*
 * stop.h — stop strings over streamed text. Text is appended piece by
 * piece; what can no longer be the start of a stop string is released for
 * output, the rest is held back, and when a stop string appears the text is
 * cut before it and nothing after it is ever released.
 */
#ifndef SLM_SAMPLE_STOP_H
#define SLM_SAMPLE_STOP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct slm_stopper slm_stopper;

/* Copies the stop strings (empty ones are ignored). NULL on OOM. */
slm_stopper *slm_stopper_new(const char *const *stops, int n_stops);
void slm_stopper_free(slm_stopper *s);

/* Appends text; returns 0, 1 when a stop string was found (the text now
 * ends before it and later pushes are ignored), or SLM_ENOMEM. */
int slm_stopper_push(slm_stopper *s, const char *text, size_t len);
/* Text released since the last call: *out points into the stopper (valid
 * until the next push), *len bytes. final: release everything held back
 * (end of generation). */
void slm_stopper_take(slm_stopper *s, bool final, const char **out, size_t *len);
bool slm_stopper_hit(const slm_stopper *s);
/* The whole text so far (released or not), NUL-terminated. */
const char *slm_stopper_text(const slm_stopper *s, size_t *len);

#endif
