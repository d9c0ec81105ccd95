/*
 * dispatch.h — the interface between the dispatcher (dispatch.c) and the
 * per-instruction-set kernel files (the x86 folder), private to
 * src/kernels.
 *
 * An installer receives a copy of the scalar table (indexed by type id,
 * SLM_N_TRAITS entries) and replaces the function pointers it has faster
 * versions of; it never changes sizes, names or vec_dot_type, and every
 * from_float it installs writes the same bytes as the reference.
 */
#ifndef SLM_KERNELS_DISPATCH_H
#define SLM_KERNELS_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

#define SLM_N_TRAITS (SLM_TYPE_BF16 + 1)

/* AVX2 + FMA + F16C: x86/avx2.c (float types, 32-element formats, the
 * activation quantizers) and x86/avx2_k.c (K-quants). */
void slm_x86_avx2_install(slm_type_traits t[SLM_N_TRAITS]);
void slm_x86_avx2_install_k(slm_type_traits t[SLM_N_TRAITS]);
/* AVX-512 F/BW/VL/DQ + VNNI: x86/avx512.c and x86/avx512_k.c, split the
 * same way. Installed over a table that already has the AVX2 kernels. */
void slm_x86_avx512_install(slm_type_traits t[SLM_N_TRAITS]);
void slm_x86_avx512_install_k(slm_type_traits t[SLM_N_TRAITS]);

/* Packed layouts (packed.h): the AVX-512 products of SLM_LAYOUT_Q4_0_P16
 * and SLM_LAYOUT_Q4_K_P16 (x86/avx512_packed.c). */
void slm_x86_avx512_q4_0_p16_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                  int nr, int nc);
void slm_x86_avx512_q4_K_p16_tile(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                  int nr, int nc);

#endif
