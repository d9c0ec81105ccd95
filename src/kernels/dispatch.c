/*
 * dispatch.c — picks the kernels for this CPU, once.
 *
 * On first use (pthread_once) the dispatcher asks the CPU what it has
 * (__builtin_cpu_supports, which also checks that the OS saves the vector
 * registers) and builds one table per instruction set the CPU can run:
 *   scalar   the reference table of types.c, copied;
 *   avx2     scalar + what x86/avx2.c, avx2_k.c install (needs AVX2, FMA, F16C);
 *   avx512   avx2 + what x86/avx512.c, avx512_k.c install (needs AVX-512 F, BW, VL,
 *            DQ and VNNI).
 * slm_type_traits_get returns entries of the best of these, or of the best
 * one at or below SLM_ISA (scalar|avx2|avx512) when that is set in the
 * environment; other values of SLM_ISA are ignored. The tables are written
 * once before any reader sees them and are read-only afterwards, so any
 * thread may read them without locks.
 *
 * The x86 files are compiled, and SLM_X86_KERNELS defined, only for x86-64
 * targets (see the Makefile); elsewhere only the scalar table exists.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/types.h"

#if defined(SLM_X86_KERNELS)
#include <cpuid.h>
#endif

enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_COUNT };

static const char *const isa_names[ISA_COUNT] = { "scalar", "avx2", "avx512" };
static const char *const isa_labels[ISA_COUNT] = { "scalar", "avx2", "avx512-vnni" };

typedef struct kernel_tables {
    int n_isa;                                        /* sets the CPU runs: 1..ISA_COUNT */
    int active;                                       /* the one _get uses              */
    slm_type_traits table[ISA_COUNT][SLM_N_TRAITS];   /* per set, by type id            */
} kernel_tables;

static kernel_tables tables;   /* written once under `once`, then read-only */
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(SLM_X86_KERNELS)
/* F16C from CPUID directly: not every compiler's __builtin_cpu_supports
 * knows it (clang 14 does not). */
static bool has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* The best set this CPU and OS run. */
static int detect(void) {
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())) return ISA_SCALAR;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
          __builtin_cpu_supports("avx512vnni")))
        return ISA_AVX2;
    return ISA_AVX512;
}

static void install(int isa, slm_type_traits *t) {
    if (isa >= ISA_AVX2) {
        slm_x86_avx2_install(t);
        slm_x86_avx2_install_k(t);
    }
    if (isa >= ISA_AVX512) {
        slm_x86_avx512_install(t);
        slm_x86_avx512_install_k(t);
    }
}
#else
static int detect(void) { return ISA_SCALAR; }

static void install(int isa, slm_type_traits *t) { (void)isa, (void)t; }
#endif

static int isa_by_name(const char *name) {
    for (int i = 0; i < ISA_COUNT; i++)
        if (name && !strcmp(name, isa_names[i])) return i;
    return -1;
}

static void build(void) {
    int best = detect();
    for (int isa = 0; isa <= best; isa++) {
        slm_type_traits *t = tables.table[isa];
        for (int32_t id = 0; id < SLM_N_TRAITS; id++) {
            const slm_type_traits *ref = slm_type_traits_ref(id);
            if (ref) t[id] = *ref;
        }
        install(isa, t);
    }
    tables.n_isa = best + 1;
    int cap = isa_by_name(getenv("SLM_ISA"));
    tables.active = cap >= 0 && cap < best ? cap : best;
}

static const kernel_tables *get_tables(void) {
    pthread_once(&once, build);
    return &tables;
}

static const slm_type_traits *entry(int isa, int32_t type) {
    if (!slm_type_traits_ref(type)) return NULL;
    return &get_tables()->table[isa][type];
}

const slm_type_traits *slm_type_traits_get(int32_t type) {
    return entry(get_tables()->active, type);
}

const slm_type_traits *slm_type_traits_isa(int32_t type, const char *isa) {
    int i = isa_by_name(isa);
    if (i < 0 || i >= get_tables()->n_isa) return NULL;
    return entry(i, type);
}

const char *slm_kernels_isa(void) {
    return isa_labels[get_tables()->active];
}
