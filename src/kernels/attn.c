/*
 * attn.c — scalar attention kernels (the reference) and the choice of the
 * set to use (see attn.h).
 */
#include "kernels/attn.h"

#include <math.h>
#include <string.h>

#include "kernels/types.h"
#include "util/fp16.h"

#ifdef SLM_X86_KERNELS
const slm_attn_kernels *slm_x86_avx512_attn(void);
#endif

static float ref_scores(const float *kt, int ld, int hd, int cnt, const float *q, float scale, float *s) {
    for (int t = 0; t < cnt; t++) s[t] = 0.0f;
    for (int d = 0; d < hd; d++) {
        const float *row = kt + (size_t)d * ld;
        float qd = q[d];
        for (int t = 0; t < cnt; t++) s[t] += row[t] * qd;
    }
    float mx = -INFINITY;
    for (int t = 0; t < cnt; t++) {
        s[t] *= scale;
        mx = s[t] > mx ? s[t] : mx;
    }
    return mx;
}

static float ref_exp_sum(float *s, int cnt, float m) {
    float sum = 0.0f;
    for (int t = 0; t < cnt; t++) {
        s[t] = expf(s[t] - m);
        sum += s[t];
    }
    return sum;
}

static void ref_accum(const float *vt, int hd, int cnt, const float *p, float corr, float *o) {
    for (int d = 0; d < hd; d++) o[d] *= corr;
    for (int t = 0; t < cnt; t++) {
        const float *row = vt + (size_t)t * hd;
        float pt = p[t];
        for (int d = 0; d < hd; d++) o[d] += pt * row[d];
    }
}

static void ref_f16_to_f32(const uint16_t *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = slm_fp16_to_f32(x[i]);
}

static const slm_attn_kernels REF = { "scalar", ref_scores, ref_exp_sum, ref_accum, ref_f16_to_f32 };

const slm_attn_kernels *slm_attn_kernels_ref(void) { return &REF; }

const slm_attn_kernels *slm_attn_kernels_isa(const char *isa) {
    if (!strcmp(isa, "scalar")) return &REF;
#ifdef SLM_X86_KERNELS
    if (!strcmp(isa, "avx512") && slm_type_traits_isa(SLM_TYPE_F32, "avx512")) return slm_x86_avx512_attn();
#endif
    return NULL;
}

const slm_attn_kernels *slm_attn_kernels_get(void) {
#ifdef SLM_X86_KERNELS
    if (!strcmp(slm_kernels_isa(), "avx512-vnni")) return slm_x86_avx512_attn();
#endif
    return &REF;
}
