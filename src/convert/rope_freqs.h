/*
 * rope_freqs.h — Llama 3.1-style RoPE frequency factors, the
 * rope_freqs.weight tensor a GGUF carries for models whose config.json
 * says rope_type "llama3" (written by `slm convert`, and by `slm synth
 * --llama3-rope` with Llama 3.2's settings).
 */
#ifndef SLM_CONVERT_ROPE_FREQS_H
#define SLM_CONVERT_ROPE_FREQS_H

#include <stdint.h>

/* Fills out[head_dim / 2]: for rotary frequency i (base^(-2i/head_dim)),
 * 1 when its wavelength is shorter than orig_ctx / high, factor when it is
 * longer than orig_ctx / low, and a smooth interpolation between. The model
 * divides each rotation angle by these. */
void slm_rope_llama3_factors(float *out, int32_t head_dim, float base, double factor, double low, double high,
                             double orig_ctx);

#endif
