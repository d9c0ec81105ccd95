/*
 * speed.h — the two speeds a quantization table reports next to quality:
 * prompt processing (n_pp random tokens decoded as one batch into an empty
 * cache) and generation (n_tg tokens decoded one at a time). Each is run
 * once as a warm-up (pages faulted in, caches warm) and then timed three
 * times, keeping the fastest (the least disturbed by other processes);
 * `slm bench` is the tool for careful measurements (mean ± sd).
 */
#ifndef SLM_QUALITY_SPEED_H
#define SLM_QUALITY_SPEED_H

#include <stdint.h>

#include "slm/slm.h"

typedef struct slm_speed {
    int32_t n_pp, n_tg;       /* tokens timed                                  */
    double  pp_tps, tg_tps;   /* tokens per second (0 when n is 0)             */
} slm_speed;

/* Measures model's speeds on n_threads threads (0: all cores). */
int slm_speed_measure(slm_model *model, int32_t n_pp, int32_t n_tg, int32_t n_threads, slm_speed *out, slm_err *err);

#endif
