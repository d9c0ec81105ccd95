/*
 * rope_freqs.c — Llama 3.1 RoPE frequency factors (see rope_freqs.h), as
 * Meta's reference code and Hugging Face's "llama3" rope type define them:
 * long wavelengths are slowed by the scaling factor, short ones kept, and
 * the band between interpolated by how many wavelengths fit in the
 * original context.
 */
#include "convert/rope_freqs.h"

#include <math.h>

void slm_rope_llama3_factors(float *out, int32_t head_dim, float base, double factor, double low, double high,
                             double orig_ctx) {
    for (int32_t i = 0; i < head_dim / 2; i++) {
        double freq = 1.0 / pow(base, 2.0 * i / head_dim), wavelen = 2 * M_PI / freq;
        if (wavelen < orig_ctx / high) {
            out[i] = 1.0f;
        } else if (wavelen > orig_ctx / low) {
            out[i] = (float)factor;
        } else {
            double smooth = (orig_ctx / wavelen - low) / (high - low);
            out[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
}
