/*
 * rng.h — the sampler's own pseudo-random generator: xoshiro256** (Blackman
 * and Vigna), its 256-bit state filled from the 64-bit seed with splitmix64.
 * Only integer arithmetic on fixed-width types, so the same seed gives the
 * same stream on every compiler and platform (unlike rand() or the C++
 * <random> distributions). Not for cryptography.
 */
#ifndef SLM_SAMPLE_RNG_H
#define SLM_SAMPLE_RNG_H

#include <stdint.h>

typedef struct slm_rng {
    uint64_t s[4];    /* xoshiro256** state; never all zero after seeding */
} slm_rng;

/* splitmix64 step: advances *x and returns a well-mixed 64-bit value. */
static inline uint64_t slm_rng_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seeds the state from any 64-bit value (0 included). splitmix64 never
 * yields four zero words in a row, so the state is always valid. */
static inline void slm_rng_seed(slm_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = slm_rng_splitmix64(&x);
}

static inline uint64_t slm_rng_rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

/* Next 64 random bits. */
static inline uint64_t slm_rng_next(slm_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = slm_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = slm_rng_rotl(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double slm_rng_uniform(slm_rng *r) {
    return (double)(slm_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
