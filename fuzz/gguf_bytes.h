/*
 * gguf_bytes.h — building GGUF files byte by byte, for tests and the fuzz
 * corpus generator (fuzz/gen_corpus.c, tests/test_gguf.c).
 *
 * The writer (src/gguf/gguf_write.c) makes only well-formed v3 files from the
 * types it has setters for; these helpers write anything: every value type,
 * nested arrays, other versions, and deliberately wrong counts, types and
 * offsets. A gb is a growing buffer on plain malloc (not slm_malloc, so
 * slm_mem_used() sees only what the library allocates); it aborts on OOM.
 *
 * Also here, so that the test and the corpus hold the same bytes: the
 * canonical "every scalar type" and "nested arrays" files, and the tiny
 * two-tensor model built with the writer.
 */
#ifndef SLM_FUZZ_GGUF_BYTES_H
#define SLM_FUZZ_GGUF_BYTES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "kernels/types.h"

typedef struct gb {
    uint8_t *p;        /* bytes (malloc)   */
    size_t len, cap;   /* used, allocated  */
} gb;

static inline void gb_raw(gb *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n) nc *= 2;
        uint8_t *q = realloc(b->p, nc);
        if (!q) abort();
        b->p = q;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}
static inline void gb_u8(gb *b, uint8_t v) { gb_raw(b, &v, 1); }
static inline void gb_u16(gb *b, uint16_t v) { gb_raw(b, &v, 2); }
static inline void gb_u32(gb *b, uint32_t v) { gb_raw(b, &v, 4); }
static inline void gb_u64(gb *b, uint64_t v) { gb_raw(b, &v, 8); }
static inline void gb_f32(gb *b, float v) { gb_raw(b, &v, 4); }
static inline void gb_f64(gb *b, double v) { gb_raw(b, &v, 8); }
/* A GGUF string: u64 length, then the bytes (no NUL). */
static inline void gb_strn(gb *b, const void *s, uint64_t n) { gb_u64(b, n); gb_raw(b, s, (size_t)n); }
static inline void gb_str(gb *b, const char *s) { gb_strn(b, s, strlen(s)); }
static inline void gb_free(gb *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

/* Magic, version and the two counts. */
static inline void gb_hdr(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_raw(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
/* Key string and value type; the value follows. */
static inline void gb_key(gb *b, const char *key, uint32_t vtype) { gb_str(b, key); gb_u32(b, vtype); }
/* Array header (after a key of type ARR, or as a nested element). */
static inline void gb_arr(gb *b, uint32_t etype, uint64_t n) { gb_u32(b, etype); gb_u64(b, n); }
/* One tensor info. */
static inline void gb_tinfo(gb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                            uint64_t offset) {
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gb_u64(b, ne[d]);
    gb_u32(b, type);
    gb_u64(b, offset);
}
/* Zero bytes up to a multiple of align. */
static inline void gb_pad(gb *b, size_t align) {
    while (b->len % align) gb_u8(b, 0);
}

/* ---- canonical files ---------------------------------------------------- */

/* v3, no tensors, one kv per scalar type (15 kvs):
 *   t.u8 = 200, t.i8 = -100, t.u16 = 60000, t.i16 = -30000,
 *   t.u32 = 4000000000, t.i32 = -2000000000, t.f32 = 1.5, t.bool = true,
 *   t.str = "hello", t.u64 = 2^40 + 7, t.i64 = -(2^40 + 7), t.f64 = -2.25,
 *   t.str_empty = "", t.u64_big = 2^63 + 1, t.i64_min = INT64_MIN. */
#define GB_ALL_SCALARS_N_KV 15
static inline void gb_all_scalars(gb *b) {
    gb_hdr(b, 3, 0, GB_ALL_SCALARS_N_KV);
    gb_key(b, "t.u8", SLM_GGUF_U8);    gb_u8(b, 200);
    gb_key(b, "t.i8", SLM_GGUF_I8);    gb_u8(b, (uint8_t)(int8_t)-100);
    gb_key(b, "t.u16", SLM_GGUF_U16);  gb_u16(b, 60000);
    gb_key(b, "t.i16", SLM_GGUF_I16);  gb_u16(b, (uint16_t)(int16_t)-30000);
    gb_key(b, "t.u32", SLM_GGUF_U32);  gb_u32(b, 4000000000u);
    gb_key(b, "t.i32", SLM_GGUF_I32);  gb_u32(b, (uint32_t)(int32_t)-2000000000);
    gb_key(b, "t.f32", SLM_GGUF_F32);  gb_f32(b, 1.5f);
    gb_key(b, "t.bool", SLM_GGUF_BOOL); gb_u8(b, 1);
    gb_key(b, "t.str", SLM_GGUF_STR);  gb_str(b, "hello");
    gb_key(b, "t.u64", SLM_GGUF_U64);  gb_u64(b, (1ull << 40) + 7);
    gb_key(b, "t.i64", SLM_GGUF_I64);  gb_u64(b, (uint64_t)-(int64_t)((1ull << 40) + 7));
    gb_key(b, "t.f64", SLM_GGUF_F64);  gb_f64(b, -2.25);
    gb_key(b, "t.str_empty", SLM_GGUF_STR); gb_str(b, "");
    gb_key(b, "t.u64_big", SLM_GGUF_U64); gb_u64(b, (1ull << 63) + 1);
    gb_key(b, "t.i64_min", SLM_GGUF_I64); gb_u64(b, 1ull << 63);
}

/* levels nested arrays, the innermost one holding a single u8 7:
 * levels = 1 is [7], levels = 2 is [[7]], ... */
static inline void gb_deep_value(gb *b, int levels) {
    for (int l = 1; l < levels; l++) gb_arr(b, SLM_GGUF_ARR, 1);
    gb_arr(b, SLM_GGUF_U8, 1);
    gb_u8(b, 7);
}

/* v3, no tensors, nested arrays (5 kvs):
 *   n.arr_arr_str = [["a", ""], [], ["xyz"]]      (array of string arrays)
 *   n.arr_arr_i32 = [[1, 2, 3], []]               (array of i32 arrays)
 *   n.arr_arr_arr = [[[1.0f], []], []]            (three levels, f32 inside)
 *   n.deep        = [[[[[[[[7]]]]]]]]             (8 levels: the limit)
 *   n.after       = "end"                         (parsing resumes after) */
#define GB_NESTED_N_KV 5
static inline void gb_nested(gb *b) {
    gb_hdr(b, 3, 0, GB_NESTED_N_KV);
    gb_key(b, "n.arr_arr_str", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_ARR, 3);
    gb_arr(b, SLM_GGUF_STR, 2); gb_str(b, "a"); gb_str(b, "");
    gb_arr(b, SLM_GGUF_STR, 0);
    gb_arr(b, SLM_GGUF_STR, 1); gb_str(b, "xyz");
    gb_key(b, "n.arr_arr_i32", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_ARR, 2);
    gb_arr(b, SLM_GGUF_I32, 3); gb_u32(b, 1); gb_u32(b, 2); gb_u32(b, 3);
    gb_arr(b, SLM_GGUF_I32, 0);
    gb_key(b, "n.arr_arr_arr", SLM_GGUF_ARR);
    gb_arr(b, SLM_GGUF_ARR, 2);
    gb_arr(b, SLM_GGUF_ARR, 2);
    gb_arr(b, SLM_GGUF_F32, 1); gb_f32(b, 1.0f);
    gb_arr(b, SLM_GGUF_F32, 0);
    gb_arr(b, SLM_GGUF_ARR, 0);
    gb_key(b, "n.deep", SLM_GGUF_ARR);
    gb_deep_value(b, 8);
    gb_key(b, "n.after", SLM_GGUF_STR); gb_str(b, "end");
}

/* The tiny model, made by the writer: kvs of several types (string array
 * tokens with an empty one, f32/i32 arrays), then two tensors:
 *   "blk.0.attn_q.weight" q8_0 [64, 2]: 136 bytes, padded to 160;
 *   "token_embd.weight"   f32  [8, 4]:  128 bytes, last, ends the file
 * (its size is a multiple of 32, so the file has no trailing padding and
 * every shorter prefix is truncated). Tensor data lives in static storage.
 * Returns a writer to write and free, or NULL on OOM. */
#define GB_MODEL_N_KV 9
#define GB_MODEL_N_VOCAB 6
static inline slm_gguf_writer *gb_model_writer(void) {
    static uint8_t q8[2 * 2 * 34];
    static float f32[8 * 4];
    static const char *const tokens[GB_MODEL_N_VOCAB] = { "<unk>", "<s>", "</s>", "", "hello", " world" };
    static const float scores[GB_MODEL_N_VOCAB] = { 0, 0, 0, -1, -2, -3 };
    static const int32_t ttypes[GB_MODEL_N_VOCAB] = { 2, 3, 3, 1, 1, 1 };
    for (int blk = 0; blk < 4; blk++) {
        uint8_t *p = q8 + blk * 34;
        p[0] = 0x00; p[1] = 0x38;            /* d = 0.5 as fp16 */
        for (int i = 0; i < 32; i++) p[2 + i] = (uint8_t)(int8_t)(i - 16 + blk);
    }
    for (int i = 0; i < 32; i++) f32[i] = (float)i * 0.25f;
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) return NULL;
    const int64_t ne_q[2] = { 64, 2 }, ne_f[2] = { 8, 4 };
    int rc = slm_gguf_set_str(w, "general.architecture", "llama") ||
             slm_gguf_set_str(w, "general.name", "tiny") ||
             slm_gguf_set_u32(w, "llama.context_length", 64) ||
             slm_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f) ||
             slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, NULL, GB_MODEL_N_VOCAB) ||
             slm_gguf_set_arr(w, "tokenizer.ggml.scores", SLM_GGUF_F32, scores, GB_MODEL_N_VOCAB) ||
             slm_gguf_set_arr(w, "tokenizer.ggml.token_type", SLM_GGUF_I32, ttypes, GB_MODEL_N_VOCAB) ||
             slm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true) ||
             slm_gguf_set_u64(w, "general.file_type", 7) ||
             slm_gguf_add_tensor(w, "blk.0.attn_q.weight", SLM_TYPE_Q8_0, 2, ne_q, q8, sizeof q8) ||
             slm_gguf_add_tensor(w, "token_embd.weight", SLM_TYPE_F32, 2, ne_f, f32, sizeof f32);
    if (rc) {
        slm_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

#endif
