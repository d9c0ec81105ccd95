/*
 * fuzz_gguf.c — libFuzzer harness for the GGUF reader.
 *
 * Each input is parsed with slm_gguf_open_mem. A failed open must say why:
 * a known code and one non-empty line, and every byte it took given back. A
 * successful open is walked completely: every key through every getter,
 * each string-array element, each kv copied into a writer (which re-walks
 * nested arrays), and the first and last byte of every tensor's data, so
 * that ASan sees any pointer that strays outside the input. A broken promise
 * aborts, which libFuzzer reports as a crash.
 *
 * Build with `make fuzz` (this and the tokenizer harness), or alone with
 * clang -fsanitize=fuzzer,address,undefined over this file and the .c files
 * of src/gguf, src/util and src/kernels; run as
 *   build/fuzz_gguf -max_total_time=180 fuzz/out/gguf fuzz/corpus/gguf
 *
 * tests/test_gguf.c includes this file and replays fuzz/corpus/gguf through
 * fuzz_gguf_walk, so the normal suite re-checks every saved input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "util/alloc.h"

#define FZ_CHECK(cond)                                                                  \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static volatile uint8_t fz_sink; /* reads land here so they are not optimised away */

static void fz_touch(const void *p, uint64_t n) {
    if (!n) return;
    fz_sink ^= ((const volatile uint8_t *)p)[0];
    fz_sink ^= ((const volatile uint8_t *)p)[n - 1];
}

static bool fz_in(const void *p, uint64_t n, const uint8_t *base, size_t size) {
    const uint8_t *q = p;
    return q >= base && (uint64_t)(q - base) <= size && n <= size - (uint64_t)(q - base);
}

/* A getter either succeeds or fails with SLM_EFORMAT and says why. */
static void fz_getter_rc(int rc, bool should_succeed, const slm_err *err) {
    if (should_succeed) {
        FZ_CHECK(rc == 0 || rc == SLM_EFORMAT); /* EFORMAT: integer out of range */
    } else {
        FZ_CHECK(rc == SLM_EFORMAT);
    }
    if (rc) FZ_CHECK(err->msg[0] != 0);
}

static void fz_walk_kv(const slm_gguf *g, int64_t i, const uint8_t *base, size_t size, slm_gguf_writer *w) {
    slm_gguf_str k = slm_gguf_key(g, i);
    FZ_CHECK(k.len > 0 && fz_in(k.ptr, k.len, base, size));
    slm_gguf_vtype t = slm_gguf_kv_type(g, i);
    FZ_CHECK((unsigned)t < SLM_GGUF_NTYPES);
    (void)slm_gguf_kv_number(g, i);
    slm_gguf_str s = slm_gguf_kv_str(g, i);
    if (t == SLM_GGUF_STR) {
        FZ_CHECK(fz_in(s.ptr, s.len, base, size));
        fz_touch(s.ptr, s.len);
    }
    if (t == SLM_GGUF_ARR) {
        slm_gguf_vtype et = slm_gguf_kv_arr_type(g, i);
        uint64_t n = slm_gguf_kv_arr_n(g, i);
        FZ_CHECK((unsigned)et < SLM_GGUF_NTYPES);
        size_t es = slm_gguf_vtype_size(et);
        const void *data = slm_gguf_arr_data(g, i);
        if (es) {
            FZ_CHECK(n <= size / es && fz_in(data, n * es, base, size));
            fz_touch(data, n * es);
        }
        for (uint64_t j = 0; et == SLM_GGUF_STR && j < n; j++) {
            slm_gguf_str e = slm_gguf_arr_str(g, i, j);
            FZ_CHECK(fz_in(e.ptr, e.len, base, size));
            fz_touch(e.ptr, e.len);
        }
        FZ_CHECK(slm_gguf_arr_str(g, i, n).len == 0);
    }
    /* the by-name getters, when the key is a C string */
    static char key[65536];
    if (k.len < sizeof key && !memchr(k.ptr, 0, k.len)) {
        memcpy(key, k.ptr, k.len);
        key[k.len] = 0;
        FZ_CHECK(slm_gguf_find_key(g, key) == i);
        slm_err err = { 0 };
        uint32_t u32;
        int64_t i64;
        float f;
        bool b;
        slm_gguf_str str;
        slm_gguf_vtype et;
        uint64_t n;
        char *dup = NULL;
        bool is_int = t <= SLM_GGUF_I32 || t == SLM_GGUF_U64 || t == SLM_GGUF_I64;
        fz_getter_rc(slm_gguf_get_u32(g, key, &u32, &err), is_int, &err);
        fz_getter_rc(slm_gguf_get_i64(g, key, &i64, &err), is_int, &err);
        fz_getter_rc(slm_gguf_get_f32(g, key, &f, &err), t == SLM_GGUF_F32 || t == SLM_GGUF_F64, &err);
        fz_getter_rc(slm_gguf_get_bool(g, key, &b, &err), t == SLM_GGUF_BOOL, &err);
        fz_getter_rc(slm_gguf_get_str(g, key, &str, &err), t == SLM_GGUF_STR, &err);
        int rc = slm_gguf_get_str_dup(g, key, &dup, &err);
        fz_getter_rc(rc, t == SLM_GGUF_STR, &err);
        if (!rc) {
            FZ_CHECK(strlen(dup) <= str.len);
            slm_free(dup);
        }
        fz_getter_rc(slm_gguf_get_arr(g, key, &et, &n, &err), t == SLM_GGUF_ARR, &err);
    }
    if (w) {
        int rc = slm_gguf_copy_kv(w, g, i);
        FZ_CHECK(rc == 0 || rc == SLM_EINVAL); /* EINVAL: key too long for the writer */
    }
}

static void fz_walk_tensor(const slm_gguf *g, int64_t i, const uint8_t *base, size_t size) {
    const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
    FZ_CHECK(t != NULL);
    FZ_CHECK(t->name.len > 0 && fz_in(t->name.ptr, t->name.len, base, size));
    FZ_CHECK(t->n_dims >= 1 && t->n_dims <= SLM_GGUF_MAX_DIMS);
    for (int d = 0; d < SLM_GGUF_MAX_DIMS; d++) FZ_CHECK(t->ne[d] >= 0 && (d < (int)t->n_dims || t->ne[d] == 1));
    FZ_CHECK(t->offset % slm_gguf_alignment(g) == 0);
    FZ_CHECK((const uint8_t *)t->data == base + slm_gguf_data_offset(g) + t->offset);
    FZ_CHECK(fz_in(t->data, t->nbytes, base, size));
    fz_touch(t->data, t->nbytes);
    static char name[65536];
    if (t->name.len < sizeof name && !memchr(t->name.ptr, 0, t->name.len)) {
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = 0;
        FZ_CHECK(slm_gguf_find_tensor(g, name) == t);
    }
}

/* Opens and walks one input; returns the open's status (err says why). */
static int fuzz_gguf_walk(const uint8_t *data, size_t size, slm_err *err) {
    size_t mem0 = slm_mem_used();
    slm_gguf *g = NULL;
    err->code = 0;
    err->msg[0] = 0;
    int rc = slm_gguf_open_mem(data, size, &g, err);
    if (rc) {
        FZ_CHECK(g == NULL);
        FZ_CHECK(rc == SLM_EFORMAT || rc == SLM_EUNSUPPORTED);
        FZ_CHECK(err->code == rc && err->msg[0] != 0 && !strchr(err->msg, '\n'));
        FZ_CHECK(slm_mem_used() == mem0);
        return rc;
    }
    FZ_CHECK(g != NULL);
    uint32_t version = slm_gguf_version(g);
    FZ_CHECK(version == 2 || version == 3);
    uint64_t align = slm_gguf_alignment(g);
    FZ_CHECK(align && !(align & (align - 1)) && slm_gguf_data_offset(g) % align == 0);
    FZ_CHECK(slm_gguf_file_size(g) == size);
    slm_gguf_writer *w = slm_gguf_writer_new();
    FZ_CHECK(w != NULL);
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) fz_walk_kv(g, i, data, size, w);
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) fz_walk_tensor(g, i, data, size);
    FZ_CHECK(slm_gguf_tensor_at(g, slm_gguf_n_tensors(g)) == NULL);
    FZ_CHECK(slm_gguf_tensor_at(g, -1) == NULL);
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
    FZ_CHECK(slm_mem_used() == mem0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slm_err err;
    fuzz_gguf_walk(data, size, &err);
    return 0;
}
