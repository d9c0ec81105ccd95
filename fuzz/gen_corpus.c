/*
 * gen_corpus.c — writes the seed corpus of the GGUF fuzzer (fuzz/corpus/gguf).
 *
 * A one-off tool, not part of the build: the corpus is committed, and this
 * program says how its seeds were made. valid-* files must open, bad-* files
 * must be rejected (tests/test_gguf.c replays them all and checks both);
 * crash-* files, added by hand, are inputs the fuzzer once found.
 *
 * Build it with cc -std=c11 -D_GNU_SOURCE -pthread -Iinclude -Isrc over this
 * file and the .c files of src/gguf, src/util and src/kernels (-lm), then
 *   build/gen_corpus fuzz/corpus/gguf
 *
 * Seeds stay small (libFuzzer's default max_len is 4096) and cover every
 * value type, nested arrays, both versions, alignment, tensors of several
 * types and shapes, and one of each kind of malformation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "kernels/types.h"
#include "slm/slm.h"

#include "gguf_bytes.h"

static const char *g_dir;

static const char *out_path(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static void save(const char *name, const gb *b) {
    FILE *f = fopen(out_path(name), "wb");
    if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f)) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", out_path(name));
        exit(1);
    }
}

static void save_writer(const char *name, slm_gguf_writer *w) {
    slm_err err = { 0 };
    if (!w || slm_gguf_writer_write(w, out_path(name), &err)) {
        fprintf(stderr, "gen_corpus: %s: %s\n", name, w ? err.msg : "out of memory");
        exit(1);
    }
    slm_gguf_writer_free(w);
}

/* Reads back a file this program wrote. */
static gb load(const char *name) {
    gb b = { 0 };
    FILE *f = fopen(out_path(name), "rb");
    if (!f) exit(1);
    uint8_t tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) gb_raw(&b, tmp, n);
    fclose(f);
    return b;
}

static void valid_files(void) {
    gb b = { 0 };
    gb_all_scalars(&b);
    save("valid-all-scalars.gguf", &b);
    gb_free(&b);

    gb_nested(&b);
    save("valid-nested-arrays.gguf", &b);
    gb_free(&b);

    /* vocabulary only: no tensors, ends after the kvs */
    const char *tokens[] = { "<unk>", "<s>", "</s>", "", "\xe2\x96\x81the", "<0x0A>", "a", "b" };
    const float scores[8] = { 0, 0, 0, -1, -2, -3, -4, -5 };
    const int32_t ttypes[8] = { 2, 3, 3, 1, 1, 6, 1, 1 };
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w || slm_gguf_set_str(w, "general.architecture", "llama") ||
        slm_gguf_set_str(w, "tokenizer.ggml.model", "llama") ||
        slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, NULL, 8) ||
        slm_gguf_set_arr(w, "tokenizer.ggml.scores", SLM_GGUF_F32, scores, 8) ||
        slm_gguf_set_arr(w, "tokenizer.ggml.token_type", SLM_GGUF_I32, ttypes, 8) ||
        slm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1) ||
        slm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2))
        exit(1);
    save_writer("valid-vocab-only.gguf", w);

    /* arrays of every fixed type, string arrays with empty elements, empty arrays */
    static const slm_gguf_vtype fixed[] = { SLM_GGUF_U8, SLM_GGUF_I8, SLM_GGUF_U16, SLM_GGUF_I16,
                                            SLM_GGUF_U32, SLM_GGUF_I32, SLM_GGUF_F32, SLM_GGUF_BOOL,
                                            SLM_GGUF_U64, SLM_GGUF_I64, SLM_GGUF_F64 };
    uint8_t data[5 * 8] = { 1, 0, 1, 1, 0 };
    for (size_t i = 5; i < sizeof data; i++) data[i] = (uint8_t)(i * 37);
    const char *strs[] = { "", "x", "", "yz" };
    w = slm_gguf_writer_new();
    if (!w) exit(1);
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", slm_gguf_vtype_name(fixed[k]));
        if (slm_gguf_set_arr(w, key, fixed[k], data, 5)) exit(1);
    }
    if (slm_gguf_set_arr_str(w, "a.strs", strs, NULL, 4) || slm_gguf_set_arr_str(w, "a.no_strs", strs, NULL, 0) ||
        slm_gguf_set_arr(w, "a.no_u8", SLM_GGUF_U8, data, 0))
        exit(1);
    save_writer("valid-arrays.gguf", w);

    /* the tiny two-tensor model (q8_0 + f32) */
    save_writer("valid-tiny-model.gguf", gb_model_writer());

    /* alignment 64, tensors of 1 to 4 dims, f16, an empty tensor */
    static uint16_t h[2 * 3 * 2 * 2];
    static float f[5];
    for (int i = 0; i < 24; i++) h[i] = (uint16_t)(0x3c00 + i);
    for (int i = 0; i < 5; i++) f[i] = (float)i;
    const int64_t ne4[4] = { 2, 3, 2, 2 }, ne1[1] = { 5 }, ne_empty[2] = { 4, 0 };
    w = slm_gguf_writer_new();
    if (!w || slm_gguf_writer_set_alignment(w, 64) || slm_gguf_set_str(w, "general.architecture", "llama") ||
        slm_gguf_add_tensor(w, "t4", SLM_TYPE_F16, 4, ne4, h, sizeof h) ||
        slm_gguf_add_tensor(w, "t1", SLM_TYPE_F32, 1, ne1, f, sizeof f) ||
        slm_gguf_add_tensor(w, "empty", SLM_TYPE_F32, 2, ne_empty, f, 0))
        exit(1);
    save_writer("valid-align64-shapes.gguf", w);

    /* version 2, hand-built, with a tensor */
    const uint64_t ne8[1] = { 8 };
    gb_hdr(&b, 2, 1, 2);
    gb_key(&b, "general.architecture", SLM_GGUF_STR); gb_str(&b, "llama");
    gb_key(&b, "v2.i64", SLM_GGUF_I64); gb_u64(&b, (uint64_t)-5);
    gb_tinfo(&b, "w", 1, ne8, SLM_TYPE_F32, 0);
    gb_pad(&b, 32);
    for (int i = 0; i < 8; i++) gb_f32(&b, (float)i);
    save("valid-v2.gguf", &b);
    gb_free(&b);

    /* header only */
    gb_hdr(&b, 3, 0, 0);
    save("valid-empty.gguf", &b);
    gb_free(&b);
}

static void bad_files(void) {
    gb b = { 0 };
    /* truncated inside the last tensor's data */
    gb m = load("valid-tiny-model.gguf");
    m.len -= 5;
    save("bad-truncated-data.gguf", &m);
    /* truncated inside the kvs */
    m.len = 100;
    save("bad-truncated-kv.gguf", &m);
    gb_free(&m);

    gb_hdr(&b, 3, 0, 1ull << 62);
    gb_key(&b, "k", SLM_GGUF_U8); gb_u8(&b, 1);
    save("bad-huge-kv-count.gguf", &b);
    gb_free(&b);

    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "a", SLM_GGUF_ARR); gb_arr(&b, SLM_GGUF_STR, 1ull << 61);
    gb_str(&b, "one"); gb_str(&b, "two");
    save("bad-huge-array-count.gguf", &b);
    gb_free(&b);

    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "k", SLM_GGUF_ARR); gb_deep_value(&b, 9);
    save("bad-nested-too-deep.gguf", &b);
    gb_free(&b);

    gb_hdr(&b, 3, 0, 2);
    gb_key(&b, "k", SLM_GGUF_U32); gb_u32(&b, 1);
    gb_key(&b, "k", SLM_GGUF_STR); gb_str(&b, "dup");
    save("bad-duplicate-key.gguf", &b);
    gb_free(&b);

    const uint64_t ne32[1] = { 32 }, ne_big[2] = { 1ull << 32, 1ull << 32 };
    gb_hdr(&b, 3, 1, 0);
    gb_tinfo(&b, "w", 1, ne32, 99, 0);
    gb_pad(&b, 32);
    for (int i = 0; i < 128; i++) gb_u8(&b, 0);
    save("bad-tensor-type.gguf", &b);
    gb_free(&b);

    gb_hdr(&b, 3, 1, 0);
    gb_tinfo(&b, "w", 1, ne32, SLM_TYPE_F32, 8);
    gb_pad(&b, 32);
    for (int i = 0; i < 192; i++) gb_u8(&b, 0);
    save("bad-misaligned-offset.gguf", &b);
    gb_free(&b);

    gb_hdr(&b, 3, 1, 0);
    gb_tinfo(&b, "w", 2, ne_big, SLM_TYPE_F32, 0);
    gb_pad(&b, 32);
    save("bad-element-overflow.gguf", &b);
    gb_free(&b);

    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "general.alignment", SLM_GGUF_U32); gb_u32(&b, 48);
    save("bad-alignment.gguf", &b);
    gb_free(&b);

    gb_hdr(&b, 1, 0, 0);
    save("bad-version1.gguf", &b);
    gb_free(&b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    valid_files();
    bad_files();
    return 0;
}
