/*
 * fp16.h — IEEE half and bfloat16 conversions (scalar reference; exact for
 * every input, round-to-nearest-even on the way down, NaN kept NaN).
 */
#ifndef SLM_UTIL_FP16_H
#define SLM_UTIL_FP16_H

#include <stdint.h>
#include <string.h>

static inline float slm_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t slm_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float slm_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            man &= 0x3ff;
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return slm_f32_from_bits(u);
}

static inline uint16_t slm_f32_to_fp16(float f) {
    uint32_t u = slm_bits_from_f32(f);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t absu = u & 0x7fffffffu;
    if (absu > 0x7f800000u) return (uint16_t)(sign | 0x7e00); /* NaN */
    if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow to inf */
    if (absu < 0x38800000u) { /* subnormal or zero in half */
        if (absu < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absu >> 23, m = (absu & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;             /* value / 2^-24 = m * 2^(e-126) */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absu >> 13) - (112u << 10));
    uint32_t rem = absu & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float slm_bf16_to_f32(uint16_t h) { return slm_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t slm_f32_to_bf16(float f) {
    uint32_t u = slm_bits_from_f32(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

#endif
