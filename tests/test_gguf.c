/*
 * test_gguf.c — the GGUF reader and writer.
 *
 * Valid files: every value type round-trips (the writer for the types it has
 * setters for, hand-built bytes from fuzz/gguf_bytes.h for the rest and for
 * nested arrays), getters check types and ranges, copy_kv re-encodes every
 * kind of value byte for byte, versions 2 and 3 parse, tensors come back
 * with their shape, size, data and alignment.
 *
 * Malformed files: every prefix of a valid model, absurd counts, bad tensor
 * headers and bad metadata each fail with SLM_EFORMAT (or EUNSUPPORTED for
 * v1) and one line naming what is wrong, without big allocations and
 * without leaking. Out of memory: every allocation the open makes is made to
 * fail in turn. The fuzz corpus (fuzz/corpus/gguf) is replayed through the
 * fuzz harness's own walk, and the fixture models are read when present.
 *
 * Buffers handed to slm_gguf_open_mem are copied to exact-size allocations
 * so that ASan (make asan) catches any read past the end.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "helpers.h"
#include "kernels/types.h"
#include "util/alloc.h"

#include "../fuzz/fuzz_gguf.c"  /* fuzz_gguf_walk: the corpus replay uses the harness itself */
#include "../fuzz/gguf_bytes.h"

/* ---- helpers --------------------------------------------------------------- */

/* Exact-size copy (malloc(0) avoided: one spare byte that is never counted). */
static uint8_t *exact_copy(const void *p, size_t n) {
    uint8_t *q = malloc(n ? n : 1);
    cr_assert(q);
    if (n) memcpy(q, p, n);
    return q;
}

/* Writes w to a temp file and reads it back (caller frees with free()). */
static uint8_t *write_mem(slm_gguf_writer *w, const char *name, size_t *len) {
    slm_err err = { 0 };
    const char *path = th_tmp(name);
    int rc = slm_gguf_writer_write(w, path, &err);
    cr_assert_eq(rc, 0, "write %s: %s", path, err.msg);
    uint8_t *b = (uint8_t *)th_read_file(path, len);
    cr_assert(b, "cannot read back %s", path);
    return b;
}

/* Opens a buffer that must be valid; the buffer must outlive the handle. */
static slm_gguf *open_ok(const void *buf, size_t len) {
    slm_gguf *g = NULL;
    slm_err err = { 0 };
    int rc = slm_gguf_open_mem(buf, len, &g, &err);
    cr_assert_eq(rc, 0, "open failed (%d): %s", rc, err.msg);
    cr_assert(g);
    return g;
}

/* Opens len bytes of p (exact-size copy) and checks the failure: code, one
 * non-empty line containing want, nothing returned, nothing leaked. */
static void expect_fail_n(const void *p, size_t len, int code, const char *want) {
    uint8_t *buf = exact_copy(p, len);
    size_t mem0 = slm_mem_used();
    slm_gguf *g = (slm_gguf *)1;
    slm_err err = { 0 };
    int rc = slm_gguf_open_mem(buf, len, &g, &err);
    cr_assert_eq(rc, code, "len %zu: rc %d, expected %d (msg: %s)", len, rc, code, err.msg);
    cr_assert_null(g, "len %zu: handle returned on failure", len);
    cr_assert_eq(err.code, code);
    cr_assert(err.msg[0], "len %zu: empty error message", len);
    cr_assert_null(strchr(err.msg, '\n'), "len %zu: message is not one line: %s", len, err.msg);
    if (want) cr_assert(strstr(err.msg, want), "len %zu: message '%s' lacks '%s'", len, err.msg, want);
    cr_assert_eq(slm_mem_used(), mem0, "len %zu: leaked %zu bytes", len, slm_mem_used() - mem0);
    free(buf);
}

static void expect_fail(const gb *b, int code, const char *want) { expect_fail_n(b->p, b->len, code, want); }

/* Allocations slm_gguf_open_mem makes on this input: fails the k-th one for
 * k = 1, 2, ... until the open no longer reports SLM_ENOMEM. */
static int count_allocs(const void *p, size_t len) {
    for (int k = 1; k < 10000; k++) {
        slm_alloc_fail_after(k);
        slm_gguf *g = NULL;
        slm_err err = { 0 };
        int rc = slm_gguf_open_mem(p, len, &g, &err);
        slm_alloc_fail_after(0);
        slm_gguf_close(g);
        if (rc != SLM_ENOMEM) return k - 1;
    }
    cr_assert_fail("open never stops allocating");
    return -1;
}

/* An absurd count must fail as malformed after at most max_allocs small
 * allocations (the handle, the kv table of a one-kv file): a count-driven
 * allocation would either fail (ENOMEM, caught here) or add to the count. */
static void expect_absurd(const gb *b, const char *want, int max_allocs) {
    expect_fail(b, SLM_EFORMAT, want);
    size_t mem0 = slm_mem_used();
    int n = count_allocs(b->p, b->len);
    cr_assert_leq(n, max_allocs, "%d allocations for '%s' (at most %d expected)", n, want, max_allocs);
    cr_assert_eq(slm_mem_used(), mem0);
}

static bool str_is(slm_gguf_str s, const void *want, size_t n) {
    return s.len == n && (n == 0 || !memcmp(s.ptr, want, n));
}

/* A file with one tensor info "w" and zeroed data of data_len bytes. */
static void one_tensor(gb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset, size_t data_len) {
    gb_hdr(b, 3, 1, 0);
    gb_tinfo(b, "w", n_dims, ne, type, offset);
    gb_pad(b, 32);
    for (size_t i = 0; i < data_len; i++) gb_u8(b, 0);
}

/* A file with a single kv whose key is k and whose type+value bytes are in v. */
static void one_kv(gb *b, const char *k, const gb *v) {
    gb_hdr(b, 3, 0, 1);
    gb_str(b, k);
    gb_raw(b, v->p, v->len);
}

/* ---- scalars and getters --------------------------------------------------- */

Test(gguf, writer_scalars_round_trip) {
    size_t mem0 = slm_mem_used();
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert(w);
    cr_assert_eq(slm_gguf_set_u32(w, "a.u32", 4000000000u), 0);
    cr_assert_eq(slm_gguf_set_i32(w, "a.i32", -7), 0);
    cr_assert_eq(slm_gguf_set_u64(w, "a.u64", 1ull << 50), 0);
    cr_assert_eq(slm_gguf_set_f32(w, "a.f32", -0.125f), 0);
    cr_assert_eq(slm_gguf_set_bool(w, "a.bool", true), 0);
    cr_assert_eq(slm_gguf_set_bool(w, "a.false", false), 0);
    cr_assert_eq(slm_gguf_set_str(w, "a.str", "héllo wörld"), 0);
    cr_assert_eq(slm_gguf_set_str(w, "a.empty", ""), 0);
    cr_assert_eq(slm_gguf_set_u32(w, "a.replaced", 1), 0);
    cr_assert_eq(slm_gguf_set_str(w, "a.replaced", "second"), 0); /* replaces, even with another type */
    size_t len;
    uint8_t *buf = write_mem(w, "scalars.gguf", &len);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_ok(buf, len);
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_version(g), 3);
    cr_assert_eq(slm_gguf_n_kv(g), 9);
    cr_assert_eq(slm_gguf_n_tensors(g), 0);
    cr_assert_eq(slm_gguf_file_size(g), len);

    uint32_t u32; int64_t i64; float f; bool b; slm_gguf_str s; char *dup;
    cr_assert_eq(slm_gguf_get_u32(g, "a.u32", &u32, &err), 0); cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(slm_gguf_get_i64(g, "a.u32", &i64, &err), 0); cr_assert_eq(i64, 4000000000ll);
    cr_assert_eq(slm_gguf_get_i64(g, "a.i32", &i64, &err), 0); cr_assert_eq(i64, -7);
    cr_assert_eq(slm_gguf_get_i64(g, "a.u64", &i64, &err), 0); cr_assert_eq(i64, 1ll << 50);
    cr_assert_eq(slm_gguf_get_f32(g, "a.f32", &f, &err), 0); cr_assert_eq(f, -0.125f);
    cr_assert_eq(slm_gguf_get_bool(g, "a.bool", &b, &err), 0); cr_assert(b);
    cr_assert_eq(slm_gguf_get_bool(g, "a.false", &b, &err), 0); cr_assert(!b);
    cr_assert_eq(slm_gguf_get_str(g, "a.str", &s, &err), 0);
    cr_assert(slm_gguf_str_eq(s, "héllo wörld"));
    cr_assert_eq(slm_gguf_get_str_dup(g, "a.str", &dup, &err), 0);
    cr_assert_str_eq(dup, "héllo wörld");
    slm_free(dup);
    cr_assert_eq(slm_gguf_get_str(g, "a.empty", &s, &err), 0); cr_assert_eq(s.len, 0);
    cr_assert_eq(slm_gguf_get_str_dup(g, "a.empty", &dup, &err), 0); cr_assert_str_eq(dup, "");
    slm_free(dup);
    cr_assert_eq(slm_gguf_get_str(g, "a.replaced", &s, &err), 0); cr_assert(slm_gguf_str_eq(s, "second"));

    /* by index */
    int64_t i = slm_gguf_find_key(g, "a.f32");
    cr_assert_geq(i, 0);
    cr_assert(slm_gguf_str_eq(slm_gguf_key(g, i), "a.f32"));
    cr_assert_eq(slm_gguf_kv_type(g, i), SLM_GGUF_F32);
    cr_assert_eq(slm_gguf_kv_number(g, i), -0.125);
    cr_assert_eq(slm_gguf_kv_arr_n(g, i), 0);
    cr_assert_null(slm_gguf_arr_data(g, i));
    cr_assert_eq(slm_gguf_kv_str(g, i).len, 0); /* not a string */
    i = slm_gguf_find_key(g, "a.str");
    cr_assert(slm_gguf_str_eq(slm_gguf_kv_str(g, i), "héllo wörld"));

    /* absent keys */
    cr_assert_eq(slm_gguf_find_key(g, "nope"), -1);
    cr_assert_eq(slm_gguf_find_key(g, ""), -1);
    cr_assert_eq(slm_gguf_get_u32(g, "nope", &u32, &err), SLM_ENOTFOUND);
    cr_assert(strstr(err.msg, "'nope'"), "%s", err.msg);
    cr_assert_eq(slm_gguf_get_str(g, "nope", &s, &err), SLM_ENOTFOUND);
    slm_gguf_close(g);
    free(buf);
    cr_assert_eq(slm_mem_used(), mem0);
}

Test(gguf, every_scalar_type) {
    gb b = { 0 };
    gb_all_scalars(&b);
    uint8_t *buf = exact_copy(b.p, b.len);
    slm_gguf *g = open_ok(buf, b.len);
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_n_kv(g), GB_ALL_SCALARS_N_KV);
    static const struct { const char *key; slm_gguf_vtype t; double v; } want[] = {
        { "t.u8", SLM_GGUF_U8, 200 },           { "t.i8", SLM_GGUF_I8, -100 },
        { "t.u16", SLM_GGUF_U16, 60000 },       { "t.i16", SLM_GGUF_I16, -30000 },
        { "t.u32", SLM_GGUF_U32, 4000000000.0 }, { "t.i32", SLM_GGUF_I32, -2000000000.0 },
        { "t.f32", SLM_GGUF_F32, 1.5 },         { "t.bool", SLM_GGUF_BOOL, 1 },
        { "t.u64", SLM_GGUF_U64, 1099511627783.0 }, { "t.i64", SLM_GGUF_I64, -1099511627783.0 },
        { "t.f64", SLM_GGUF_F64, -2.25 },
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        int64_t i = slm_gguf_find_key(g, want[k].key);
        cr_assert_geq(i, 0, "%s missing", want[k].key);
        cr_assert_eq(slm_gguf_kv_type(g, i), want[k].t, "%s: type %s", want[k].key,
                     slm_gguf_vtype_name(slm_gguf_kv_type(g, i)));
        cr_assert_eq(slm_gguf_kv_number(g, i), want[k].v, "%s: %g != %g", want[k].key,
                     slm_gguf_kv_number(g, i), want[k].v);
        int64_t i64;
        int rc = slm_gguf_get_i64(g, want[k].key, &i64, &err);
        bool is_int = want[k].t <= SLM_GGUF_I32 || want[k].t == SLM_GGUF_U64 || want[k].t == SLM_GGUF_I64;
        if (is_int) {
            cr_assert_eq(rc, 0, "%s: %s", want[k].key, err.msg);
            cr_assert_eq((double)i64, want[k].v, "%s: %lld", want[k].key, (long long)i64);
        } else {
            cr_assert_eq(rc, SLM_EFORMAT, "%s: integer getter accepted %s", want[k].key,
                         slm_gguf_vtype_name(want[k].t));
            cr_assert(strstr(err.msg, want[k].key), "%s", err.msg);
        }
    }
    float f;
    cr_assert_eq(slm_gguf_get_f32(g, "t.f64", &f, &err), 0); cr_assert_eq(f, -2.25f);
    cr_assert_eq(slm_gguf_get_f32(g, "t.f32", &f, &err), 0); cr_assert_eq(f, 1.5f);
    bool bv;
    cr_assert_eq(slm_gguf_get_bool(g, "t.bool", &bv, &err), 0); cr_assert(bv);
    slm_gguf_str s;
    cr_assert_eq(slm_gguf_get_str(g, "t.str", &s, &err), 0); cr_assert(slm_gguf_str_eq(s, "hello"));
    cr_assert_eq(slm_gguf_get_str(g, "t.str_empty", &s, &err), 0); cr_assert_eq(s.len, 0);
    int64_t i64;
    cr_assert_eq(slm_gguf_get_i64(g, "t.i64_min", &i64, &err), 0); cr_assert_eq(i64, INT64_MIN);
    slm_gguf_close(g);
    free(buf);
    gb_free(&b);
}

Test(gguf, integer_getters_check_range) {
    gb b = { 0 };
    gb_all_scalars(&b);
    slm_gguf *g = open_ok(b.p, b.len);
    slm_err err = { 0 };
    uint32_t u32 = 12345;
    int64_t i64 = 12345;
    /* fits in u32 */
    cr_assert_eq(slm_gguf_get_u32(g, "t.u8", &u32, &err), 0); cr_assert_eq(u32, 200);
    cr_assert_eq(slm_gguf_get_u32(g, "t.u16", &u32, &err), 0); cr_assert_eq(u32, 60000);
    cr_assert_eq(slm_gguf_get_u32(g, "t.u32", &u32, &err), 0); cr_assert_eq(u32, 4000000000u);
    /* negative or too big for u32 */
    const char *bad_u32[] = { "t.i8", "t.i16", "t.i32", "t.u64", "t.i64", "t.u64_big", "t.i64_min" };
    for (size_t k = 0; k < sizeof bad_u32 / sizeof *bad_u32; k++) {
        u32 = 12345;
        err.msg[0] = 0;
        cr_assert_eq(slm_gguf_get_u32(g, bad_u32[k], &u32, &err), SLM_EFORMAT, "%s accepted as u32", bad_u32[k]);
        cr_assert(strstr(err.msg, bad_u32[k]) && strstr(err.msg, "out of range"), "%s", err.msg);
        cr_assert_eq(u32, 12345, "output written on error");
    }
    /* u64 above INT64_MAX does not fit i64 */
    cr_assert_eq(slm_gguf_get_i64(g, "t.u64_big", &i64, &err), SLM_EFORMAT);
    cr_assert(strstr(err.msg, "'t.u64_big' = 9223372036854775809 is out of range"), "%s", err.msg);
    cr_assert_eq(i64, 12345);
    slm_gguf_close(g);
    gb_free(&b);
}

Test(gguf, type_mismatch_names_the_key) {
    gb b = { 0 };
    gb_all_scalars(&b);
    slm_gguf *g = open_ok(b.p, b.len);
    slm_err err = { 0 };
    uint32_t u32; int64_t i64; float f; bool bv; slm_gguf_str s; char *dup = NULL;
    slm_gguf_vtype et; uint64_t n;
    cr_assert_eq(slm_gguf_get_str(g, "t.u32", &s, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.u32' has type u32, expected string");
    cr_assert_eq(slm_gguf_get_str_dup(g, "t.f64", &dup, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.f64' has type f64, expected string");
    cr_assert_null(dup);
    cr_assert_eq(slm_gguf_get_u32(g, "t.str", &u32, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.str' has type string, expected an integer");
    cr_assert_eq(slm_gguf_get_i64(g, "t.bool", &i64, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.bool' has type bool, expected an integer");
    cr_assert_eq(slm_gguf_get_i64(g, "t.f32", &i64, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.f32' has type f32, expected an integer");
    cr_assert_eq(slm_gguf_get_f32(g, "t.i32", &f, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.i32' has type i32, expected f32");
    cr_assert_eq(slm_gguf_get_bool(g, "t.u8", &bv, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.u8' has type u8, expected bool");
    cr_assert_eq(slm_gguf_get_arr(g, "t.i16", &et, &n, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 't.i16' has type i16, expected array");
    slm_gguf_close(g);
    gb_free(&b);
    /* and the other way round: an array is not a scalar */
    gb_nested(&b);
    g = open_ok(b.p, b.len);
    cr_assert_eq(slm_gguf_get_str(g, "n.deep", &s, &err), SLM_EFORMAT);
    cr_assert_str_eq(err.msg, "key 'n.deep' has type array, expected string");
    cr_assert_eq(slm_gguf_get_u32(g, "n.deep", &u32, &err), SLM_EFORMAT);
    slm_gguf_close(g);
    gb_free(&b);
    cr_assert_str_eq(slm_gguf_vtype_name(SLM_GGUF_NTYPES), "invalid");
    cr_assert_eq(slm_gguf_vtype_size(SLM_GGUF_STR), 0);
    cr_assert_eq(slm_gguf_vtype_size(SLM_GGUF_F64), 8);
}

/* ---- arrays -------------------------------------------------------------------- */

Test(gguf, fixed_arrays_of_each_type) {
    static const slm_gguf_vtype types[] = { SLM_GGUF_U8, SLM_GGUF_I8, SLM_GGUF_U16, SLM_GGUF_I16, SLM_GGUF_U32,
                                            SLM_GGUF_I32, SLM_GGUF_F32, SLM_GGUF_BOOL, SLM_GGUF_U64, SLM_GGUF_I64,
                                            SLM_GGUF_F64 };
    enum { NT = sizeof types / sizeof types[0], N = 37 };
    uint8_t data[N * 8];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < N; i++) data[i] = (uint8_t)(i & 1); /* valid bools for the bool array */
    slm_gguf_writer *w = slm_gguf_writer_new();
    char key[64];
    for (int k = 0; k < NT; k++) {
        snprintf(key, sizeof key, "arr.%s", slm_gguf_vtype_name(types[k]));
        cr_assert_eq(slm_gguf_set_arr(w, key, types[k], data, N), 0);
        snprintf(key, sizeof key, "arr0.%s", slm_gguf_vtype_name(types[k]));
        cr_assert_eq(slm_gguf_set_arr(w, key, types[k], data, 0), 0);
    }
    cr_assert_eq(slm_gguf_set_arr(w, "arr.bad", SLM_GGUF_STR, data, 1), SLM_EINVAL);
    cr_assert_eq(slm_gguf_set_arr(w, "arr.bad", SLM_GGUF_ARR, data, 1), SLM_EINVAL);
    size_t len;
    uint8_t *buf = write_mem(w, "arrays.gguf", &len);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_ok(buf, len);
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_n_kv(g), 2 * NT);
    for (int k = 0; k < NT; k++) {
        slm_gguf_vtype et;
        uint64_t n;
        snprintf(key, sizeof key, "arr.%s", slm_gguf_vtype_name(types[k]));
        cr_assert_eq(slm_gguf_get_arr(g, key, &et, &n, &err), 0, "%s", err.msg);
        cr_assert_eq(et, types[k]);
        cr_assert_eq(n, N);
        int64_t i = slm_gguf_find_key(g, key);
        cr_assert_eq(slm_gguf_kv_type(g, i), SLM_GGUF_ARR);
        cr_assert_eq(slm_gguf_kv_arr_type(g, i), types[k]);
        cr_assert_eq(slm_gguf_kv_arr_n(g, i), N);
        cr_assert(!memcmp(slm_gguf_arr_data(g, i), data, N * slm_gguf_vtype_size(types[k])), "%s data", key);
        cr_assert_eq(slm_gguf_arr_str(g, i, 0).len, 0, "string element of a %s array", key);
        snprintf(key, sizeof key, "arr0.%s", slm_gguf_vtype_name(types[k]));
        cr_assert_eq(slm_gguf_get_arr(g, key, &et, &n, &err), 0);
        cr_assert_eq(et, types[k]);
        cr_assert_eq(n, 0);
    }
    slm_gguf_close(g);
    free(buf);
}

Test(gguf, string_arrays) {
    const char *strs[] = { "", "a", "", "hello world", "ünïcödé", "" };
    const char with_nul[] = { 'x', 0, 'y' };
    const char *raw[] = { with_nul, "" };
    const uint64_t raw_lens[] = { 3, 0 };
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_set_arr_str(w, "s.words", strs, NULL, 6), 0);
    cr_assert_eq(slm_gguf_set_arr_str(w, "s.none", strs, NULL, 0), 0);
    cr_assert_eq(slm_gguf_set_arr_str(w, "s.raw", raw, raw_lens, 2), 0);
    cr_assert_eq(slm_gguf_set_arr_str(w, "s.one_empty", strs, NULL, 1), 0);
    size_t len;
    uint8_t *buf = write_mem(w, "strarr.gguf", &len);
    slm_gguf_writer_free(w);
    uint8_t *copy = exact_copy(buf, len);
    slm_gguf *g = open_ok(copy, len);
    slm_err err = { 0 };
    slm_gguf_vtype et;
    uint64_t n;
    cr_assert_eq(slm_gguf_get_arr(g, "s.words", &et, &n, &err), 0);
    cr_assert_eq(et, SLM_GGUF_STR);
    cr_assert_eq(n, 6);
    int64_t i = slm_gguf_find_key(g, "s.words");
    for (uint64_t j = 0; j < 6; j++) {
        slm_gguf_str s = slm_gguf_arr_str(g, i, j);
        cr_assert(slm_gguf_str_eq(s, strs[j]), "element %llu: '%.*s' != '%s'", (unsigned long long)j,
                  (int)s.len, s.ptr, strs[j]);
    }
    cr_assert_eq(slm_gguf_arr_str(g, i, 6).len, 0, "past the end");
    cr_assert_eq(slm_gguf_arr_str(g, i, UINT64_MAX).len, 0);
    cr_assert_eq(slm_gguf_get_arr(g, "s.none", &et, &n, &err), 0);
    cr_assert_eq(et, SLM_GGUF_STR);
    cr_assert_eq(n, 0);
    cr_assert_eq(slm_gguf_arr_str(g, slm_gguf_find_key(g, "s.none"), 0).len, 0);
    i = slm_gguf_find_key(g, "s.raw");
    cr_assert(str_is(slm_gguf_arr_str(g, i, 0), with_nul, 3));
    cr_assert(str_is(slm_gguf_arr_str(g, i, 1), "", 0));
    i = slm_gguf_find_key(g, "s.one_empty");
    cr_assert_eq(slm_gguf_kv_arr_n(g, i), 1);
    cr_assert_eq(slm_gguf_arr_str(g, i, 0).len, 0);
    slm_gguf_close(g);
    free(copy);
    free(buf);
}

Test(gguf, nested_arrays) {
    gb b = { 0 };
    gb_nested(&b);
    uint8_t *buf = exact_copy(b.p, b.len);
    slm_gguf *g = open_ok(buf, b.len);
    slm_err err = { 0 };
    slm_gguf_vtype et;
    uint64_t n;
    cr_assert_eq(slm_gguf_n_kv(g), GB_NESTED_N_KV);
    cr_assert_eq(slm_gguf_get_arr(g, "n.arr_arr_str", &et, &n, &err), 0);
    cr_assert_eq(et, SLM_GGUF_ARR);
    cr_assert_eq(n, 3);
    cr_assert_eq(slm_gguf_get_arr(g, "n.arr_arr_i32", &et, &n, &err), 0);
    cr_assert_eq(et, SLM_GGUF_ARR);
    cr_assert_eq(n, 2);
    cr_assert_eq(slm_gguf_get_arr(g, "n.arr_arr_arr", &et, &n, &err), 0);
    cr_assert_eq(et, SLM_GGUF_ARR);
    cr_assert_eq(n, 2);
    cr_assert_eq(slm_gguf_get_arr(g, "n.deep", &et, &n, &err), 0);
    cr_assert_eq(et, SLM_GGUF_ARR);
    cr_assert_eq(n, 1);
    int64_t i = slm_gguf_find_key(g, "n.arr_arr_str");
    cr_assert_not_null(slm_gguf_arr_data(g, i));
    cr_assert_eq(slm_gguf_arr_str(g, i, 0).len, 0, "nested arrays have no string elements");
    /* the key after the nested values is where it should be */
    slm_gguf_str s;
    cr_assert_eq(slm_gguf_get_str(g, "n.after", &s, &err), 0);
    cr_assert(slm_gguf_str_eq(s, "end"));
    slm_gguf_close(g);
    free(buf);
    gb_free(&b);
}

/* Copying every kv of a file into a writer and writing it gives the same
 * bytes (no tensors, v3, no general.alignment: the writer's layout). */
static void copy_round_trip(const uint8_t *src, size_t len, const char *name) {
    slm_gguf *g = open_ok(src, len);
    slm_gguf_writer *w = slm_gguf_writer_new();
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) {
        int rc = slm_gguf_copy_kv(w, g, i);
        cr_assert_eq(rc, 0, "%s: copy of kv %lld failed: %d", name, (long long)i, rc);
    }
    size_t out_len;
    uint8_t *out = write_mem(w, name, &out_len);
    cr_assert_eq(out_len, len, "%s: copy is %zu bytes, original %zu", name, out_len, len);
    cr_assert(!memcmp(out, src, len), "%s: copy differs", name);
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
    free(out);
}

Test(gguf, copy_kv_every_type) {
    size_t mem0 = slm_mem_used();
    gb b = { 0 };
    gb_all_scalars(&b);
    copy_round_trip(b.p, b.len, "copy-scalars.gguf");
    gb_free(&b);
    gb_nested(&b);
    copy_round_trip(b.p, b.len, "copy-nested.gguf");
    gb_free(&b);
    /* fixed and string arrays, as the writer makes them */
    const char *strs[] = { "x", "", "yz" };
    const double f64s[] = { 1.0, -2.0 };
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_set_arr_str(w, "c.strs", strs, NULL, 3), 0);
    cr_assert_eq(slm_gguf_set_arr_str(w, "c.none", strs, NULL, 0), 0);
    cr_assert_eq(slm_gguf_set_arr(w, "c.f64", SLM_GGUF_F64, f64s, 2), 0);
    cr_assert_eq(slm_gguf_set_arr(w, "c.u16", SLM_GGUF_U16, f64s, 3), 0);
    size_t len;
    uint8_t *buf = write_mem(w, "copy-src.gguf", &len);
    slm_gguf_writer_free(w);
    copy_round_trip(buf, len, "copy-arrays.gguf");
    free(buf);
    /* keys the writer cannot reproduce are refused, not altered */
    gb_hdr(&b, 3, 0, 2);
    gb_strn(&b, "a\0b", 3); gb_u32(&b, SLM_GGUF_U8); gb_u8(&b, 1);
    gb_u64(&b, 2000);
    for (int i = 0; i < 2000; i++) gb_u8(&b, 'k');
    gb_u32(&b, SLM_GGUF_U8); gb_u8(&b, 2);
    slm_gguf *g = open_ok(b.p, b.len);
    w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_copy_kv(w, g, 0), SLM_EINVAL, "key with a NUL byte");
    cr_assert_eq(slm_gguf_copy_kv(w, g, 1), SLM_EINVAL, "2000-byte key");
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
    gb_free(&b);
    cr_assert_eq(slm_mem_used(), mem0);
}

Test(gguf, copy_kv_leaves_alignment_to_the_writer) {
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_writer_set_alignment(w, 64), 0);
    cr_assert_eq(slm_gguf_set_u32(w, "k", 5), 0);
    size_t len;
    uint8_t *buf = write_mem(w, "align-src.gguf", &len);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_ok(buf, len);
    cr_assert_eq(slm_gguf_alignment(g), 64);
    w = slm_gguf_writer_new();
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) cr_assert_eq(slm_gguf_copy_kv(w, g, i), 0);
    slm_gguf_close(g);
    free(buf);
    buf = write_mem(w, "align-copy.gguf", &len);
    slm_gguf_writer_free(w);
    g = open_ok(buf, len);
    cr_assert_eq(slm_gguf_n_kv(g), 1);
    cr_assert_eq(slm_gguf_find_key(g, "general.alignment"), -1);
    cr_assert_eq(slm_gguf_alignment(g), SLM_GGUF_DEFAULT_ALIGN);
    slm_gguf_close(g);
    free(buf);
}

/* ---- header: versions, magic, short files -------------------------------------- */

Test(gguf, versions_2_and_3_parse) {
    for (uint32_t v = 2; v <= 3; v++) {
        gb b = { 0 };
        gb_all_scalars(&b);
        memcpy(b.p + 4, &v, 4);
        slm_gguf *g = open_ok(b.p, b.len);
        cr_assert_eq(slm_gguf_version(g), v);
        cr_assert_eq(slm_gguf_n_kv(g), GB_ALL_SCALARS_N_KV);
        slm_gguf_close(g);
        gb_free(&b);
    }
    /* a v2 file with a tensor */
    gb b = { 0 };
    const uint64_t ne[1] = { 8 };
    gb_hdr(&b, 2, 1, 1);
    gb_key(&b, "general.architecture", SLM_GGUF_STR);
    gb_str(&b, "llama");
    gb_tinfo(&b, "w", 1, ne, SLM_TYPE_F32, 0);
    gb_pad(&b, 32);
    for (int i = 0; i < 8; i++) gb_f32(&b, (float)i);
    slm_gguf *g = open_ok(b.p, b.len);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, "w");
    cr_assert_not_null(t);
    cr_assert_eq(t->nbytes, 32);
    cr_assert_eq(((const float *)t->data)[7], 7.0f);
    slm_gguf_close(g);
    gb_free(&b);
}

Test(gguf, bad_versions) {
    gb b = { 0 };
    gb_all_scalars(&b);
    uint32_t v = 1;
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, SLM_EUNSUPPORTED, "GGUF version 1 is not supported");
    v = 0;
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, SLM_EFORMAT, "unknown GGUF version 0");
    v = 4;
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, SLM_EFORMAT, "unknown GGUF version 4");
    v = 0x03000000; /* big-endian v3 */
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, SLM_EFORMAT, "unknown GGUF version 50331648");
    gb_free(&b);
}

Test(gguf, bad_magic_and_short_files) {
    gb b = { 0 };
    gb_all_scalars(&b);
    b.p[0] = 'g';
    expect_fail(&b, SLM_EFORMAT, "not a GGUF file (bad magic)");
    memcpy(b.p, "GGML", 4);
    expect_fail(&b, SLM_EFORMAT, "bad magic");
    gb_free(&b);
    expect_fail_n("", 0, SLM_EFORMAT, "too short");
    slm_gguf *g = (slm_gguf *)1;
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_open_mem(NULL, 0, &g, &err), SLM_EFORMAT, "NULL, 0 is an empty file: %s", err.msg);
    cr_assert_null(g);
    cr_assert_eq(slm_gguf_open_mem(NULL, 8, &g, &err), SLM_EINVAL);
    expect_fail_n("GGU", 3, SLM_EFORMAT, "too short");
    expect_fail_n("GGUF", 4, SLM_EFORMAT, "(version)");
    expect_fail_n("GGUF\3\0\0\0", 8, SLM_EFORMAT, "(counts)");
    expect_fail_n("\x7f" "ELF\2\1\1\0\0\0\0\0\0\0\0\0", 16, SLM_EFORMAT, "bad magic");
}

Test(gguf, open_path_errors) {
    slm_gguf *g = (slm_gguf *)1;
    slm_err err = { 0 };
    const char *empty = th_tmp("empty.gguf");
    cr_assert_eq(th_write_file(empty, "", 0), 0);
    cr_assert_eq(slm_gguf_open(empty, &g, &err), SLM_EFORMAT);
    cr_assert_null(g);
    cr_assert(strstr(err.msg, "is empty"), "%s", err.msg);
    cr_assert_eq(slm_gguf_open(th_tmp("does-not-exist.gguf"), &g, &err), SLM_EIO);
    cr_assert(strstr(err.msg, "cannot open"), "%s", err.msg);
    cr_assert_eq(slm_gguf_open(th_tmpdir(), &g, &err), SLM_EIO);
    cr_assert(strstr(err.msg, "not a regular file"), "%s", err.msg);
    const char *junk = th_tmp("junk.gguf");
    cr_assert_eq(th_write_file(junk, "GGUF\1\0\0\0", 8), 0);
    cr_assert_eq(slm_gguf_open(junk, &g, &err), SLM_EUNSUPPORTED);
    cr_assert_null(g);
    slm_gguf_close(NULL); /* accepts NULL */
}

Test(gguf, vocab_only_file) {
    const char *tokens[] = { "<unk>", "<s>", "</s>", "a", "" };
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_set_str(w, "general.architecture", "llama"), 0);
    cr_assert_eq(slm_gguf_set_str(w, "tokenizer.ggml.model", "llama"), 0);
    cr_assert_eq(slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, NULL, 5), 0);
    const char *path = th_tmp("vocab.gguf");
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_writer_write(w, path, &err), 0, "%s", err.msg);
    slm_gguf_writer_free(w);
    /* through the mmap path */
    slm_gguf *g = NULL;
    cr_assert_eq(slm_gguf_open(path, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(slm_gguf_n_tensors(g), 0);
    cr_assert_null(slm_gguf_tensor_at(g, 0));
    cr_assert_null(slm_gguf_find_tensor(g, "token_embd.weight"));
    cr_assert_eq(slm_gguf_kv_arr_n(g, slm_gguf_find_key(g, "tokenizer.ggml.tokens")), 5);
    size_t len;
    char *buf = th_read_file(path, &len);
    cr_assert_eq(slm_gguf_file_size(g), len);
    /* the file ends right after the kv section (tokens "a", ""): no padding, no data */
    cr_assert(len > 17 && !memcmp(buf + len - 17, "\1\0\0\0\0\0\0\0a\0\0\0\0\0\0\0\0", 17),
              "file does not end with the last token");
    slm_gguf_close(g);
    /* and hand-built: header only, nothing else */
    gb b = { 0 };
    gb_hdr(&b, 3, 0, 0);
    g = open_ok(b.p, b.len);
    cr_assert_eq(slm_gguf_n_kv(g), 0);
    cr_assert_eq(slm_gguf_n_tensors(g), 0);
    cr_assert_eq(slm_gguf_find_key(g, "general.architecture"), -1);
    slm_gguf_close(g);
    gb_free(&b);
    free(buf);
}

/* ---- tensors --------------------------------------------------------------------- */

static void check_model(const slm_gguf *g, const uint8_t *base) {
    cr_assert_eq(slm_gguf_n_tensors(g), 2);
    cr_assert_eq(slm_gguf_n_kv(g), GB_MODEL_N_KV);
    cr_assert_eq(slm_gguf_alignment(g), 32);
    cr_assert_eq(slm_gguf_data_offset(g) % 32, 0);

    const slm_gguf_tensor *q = slm_gguf_tensor_at(g, 0);
    cr_assert(slm_gguf_str_eq(q->name, "blk.0.attn_q.weight"));
    cr_assert_eq(slm_gguf_find_tensor(g, "blk.0.attn_q.weight"), q);
    cr_assert_eq(q->type, SLM_TYPE_Q8_0);
    cr_assert_eq(q->n_dims, 2);
    cr_assert_eq(q->ne[0], 64); cr_assert_eq(q->ne[1], 2); cr_assert_eq(q->ne[2], 1); cr_assert_eq(q->ne[3], 1);
    cr_assert_eq(q->nbytes, 4 * 34);
    cr_assert_eq(q->offset, 0);
    const uint8_t *qd = q->data;
    if (base) cr_assert_eq(qd, base + slm_gguf_data_offset(g));
    for (int blk = 0; blk < 4; blk++) {
        cr_assert_eq(qd[blk * 34 + 0], 0x00);
        cr_assert_eq(qd[blk * 34 + 1], 0x38);
        for (int i = 0; i < 32; i++) cr_assert_eq((int8_t)qd[blk * 34 + 2 + i], i - 16 + blk);
    }

    const slm_gguf_tensor *f = slm_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_eq(f, slm_gguf_tensor_at(g, 1));
    cr_assert_eq(f->type, SLM_TYPE_F32);
    cr_assert_eq(f->n_dims, 2);
    cr_assert_eq(f->ne[0], 8); cr_assert_eq(f->ne[1], 4); cr_assert_eq(f->ne[2], 1);
    cr_assert_eq(f->nbytes, 128);
    cr_assert_eq(f->offset, 160, "q8_0 data (136 bytes) padded to 160");
    cr_assert_eq((uintptr_t)f->data % 4, 0);
    for (int i = 0; i < 32; i++) cr_assert_eq(((const float *)f->data)[i], (float)i * 0.25f);
    cr_assert_eq(slm_gguf_data_offset(g) + f->offset + f->nbytes, slm_gguf_file_size(g), "no trailing bytes");
    cr_assert_null(slm_gguf_find_tensor(g, "token_embd"));
    cr_assert_null(slm_gguf_tensor_at(g, 2));
    cr_assert_null(slm_gguf_tensor_at(g, -1));
}

Test(gguf, tensors_round_trip) {
    size_t mem0 = slm_mem_used();
    slm_gguf_writer *w = gb_model_writer();
    cr_assert(w);
    const char *path = th_tmp("model.gguf");
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_writer_write(w, path, &err), 0, "%s", err.msg);
    slm_gguf_writer_free(w);
    slm_gguf *g = NULL;
    cr_assert_eq(slm_gguf_open(path, &g, &err), 0, "%s", err.msg);
    check_model(g, NULL);
    cr_assert_eq((uintptr_t)slm_gguf_tensor_at(g, 0)->data % 32, 0, "mmapped data aligned");
    slm_gguf_close(g);
    size_t len;
    char *buf = th_read_file(path, &len);
    uint8_t *copy = exact_copy(buf, len);
    g = open_ok(copy, len);
    check_model(g, copy);
    /* the metadata next to the tensors */
    slm_gguf_str s;
    cr_assert_eq(slm_gguf_get_str(g, "general.architecture", &s, &err), 0);
    cr_assert(slm_gguf_str_eq(s, "llama"));
    int64_t ft;
    cr_assert_eq(slm_gguf_get_i64(g, "general.file_type", &ft, &err), 0);
    cr_assert_eq(ft, 7);
    slm_gguf_close(g);
    free(copy);
    free(buf);
    cr_assert_eq(slm_mem_used(), mem0);
}

Test(gguf, tensor_shapes) {
    /* 1 to 4 dims, f16, a zero-size tensor */
    static uint16_t h[2 * 3 * 4 * 5];
    static float v[3];
    const int64_t ne4[4] = { 2, 3, 4, 5 }, ne1[1] = { 3 }, ne0[2] = { 4, 0 };
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_add_tensor(w, "h4", SLM_TYPE_F16, 4, ne4, h, sizeof h), 0);
    cr_assert_eq(slm_gguf_add_tensor(w, "v1", SLM_TYPE_F32, 1, ne1, v, sizeof v), 0);
    cr_assert_eq(slm_gguf_add_tensor(w, "empty", SLM_TYPE_F32, 2, ne0, v, 0), 0);
    cr_assert_eq(slm_gguf_add_tensor(w, "bad", SLM_TYPE_F32, 1, ne1, v, 8), SLM_EINVAL, "size mismatch");
    cr_assert_eq(slm_gguf_add_tensor(w, "bad", SLM_TYPE_F32, 5, ne4, v, 8), SLM_EINVAL, "5 dims");
    cr_assert_eq(slm_gguf_add_tensor(w, "bad", 99, 1, ne1, v, 12), SLM_EINVAL, "unknown type");
    size_t len;
    uint8_t *buf = write_mem(w, "shapes.gguf", &len);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_ok(buf, len);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, "h4");
    cr_assert_eq(t->n_dims, 4);
    for (int d = 0; d < 4; d++) cr_assert_eq(t->ne[d], ne4[d]);
    cr_assert_eq(t->nbytes, sizeof h);
    t = slm_gguf_find_tensor(g, "v1");
    cr_assert_eq(t->n_dims, 1);
    cr_assert_eq(t->ne[0], 3); cr_assert_eq(t->ne[1], 1);
    cr_assert_eq(t->nbytes, 12);
    cr_assert_eq(t->offset % 32, 0);
    t = slm_gguf_find_tensor(g, "empty");
    cr_assert_eq(t->nbytes, 0);
    cr_assert_eq(t->ne[1], 0);
    slm_gguf_close(g);
    free(buf);
}

Test(gguf, alignment_64) {
    static float d[3 * 5];
    const int64_t ne[2] = { 3, 5 };
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_writer_set_alignment(w, 48), SLM_EINVAL);
    cr_assert_eq(slm_gguf_writer_set_alignment(w, 0), SLM_EINVAL);
    cr_assert_eq(slm_gguf_writer_set_alignment(w, 1u << 21), SLM_EINVAL);
    cr_assert_eq(slm_gguf_set_str(w, "general.alignment", "64"), SLM_EINVAL);
    cr_assert_eq(slm_gguf_set_i32(w, "general.alignment", 64), SLM_EINVAL);
    cr_assert_eq(slm_gguf_set_u64(w, "general.alignment", 64), SLM_EINVAL);
    cr_assert_eq(slm_gguf_set_u32(w, "general.alignment", 16), 0, "set_u32 goes through set_alignment");
    cr_assert_eq(slm_gguf_writer_set_alignment(w, 64), 0);
    cr_assert_eq(slm_gguf_set_str(w, "x", "y"), 0);
    cr_assert_eq(slm_gguf_add_tensor(w, "a", SLM_TYPE_F32, 2, ne, d, sizeof d), 0); /* 60 bytes */
    cr_assert_eq(slm_gguf_add_tensor(w, "b", SLM_TYPE_F32, 2, ne, d, sizeof d), 0);
    size_t len;
    uint8_t *buf = write_mem(w, "align64.gguf", &len);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_ok(buf, len);
    slm_err err = { 0 };
    uint32_t a;
    cr_assert_eq(slm_gguf_get_u32(g, "general.alignment", &a, &err), 0);
    cr_assert_eq(a, 64);
    cr_assert_eq(slm_gguf_n_kv(g), 2, "the replaced alignment kv is gone");
    cr_assert_eq(slm_gguf_alignment(g), 64);
    cr_assert_eq(slm_gguf_data_offset(g) % 64, 0);
    cr_assert_eq(slm_gguf_find_tensor(g, "a")->offset, 0);
    cr_assert_eq(slm_gguf_find_tensor(g, "b")->offset, 64);
    cr_assert_eq((const uint8_t *)slm_gguf_find_tensor(g, "b")->data - buf, (ptrdiff_t)(slm_gguf_data_offset(g) + 64));
    slm_gguf_close(g);
    free(buf);

    /* hand-built: alignment 64 with a tensor at 32 is misaligned, at 64 fine */
    for (uint64_t off = 32; off <= 64; off += 32) {
        gb b = { 0 };
        const uint64_t ne1[1] = { 8 };
        gb_hdr(&b, 3, 1, 1);
        gb_key(&b, "general.alignment", SLM_GGUF_U32);
        gb_u32(&b, 64);
        gb_tinfo(&b, "w", 1, ne1, SLM_TYPE_F32, off);
        gb_pad(&b, 64);
        for (int i = 0; i < 128; i++) gb_u8(&b, (uint8_t)i);
        if (off == 32) {
            expect_fail(&b, SLM_EFORMAT, "tensor 'w' data offset 32 is not aligned to 64");
        } else {
            g = open_ok(b.p, b.len);
            cr_assert_eq(slm_gguf_data_offset(g) % 64, 0);
            cr_assert_eq(((const uint8_t *)slm_gguf_find_tensor(g, "w")->data)[0], 64);
            slm_gguf_close(g);
        }
        gb_free(&b);
    }
    /* alignment 1 is a power of two too */
    gb b = { 0 };
    const uint64_t ne1[1] = { 1 };
    gb_hdr(&b, 3, 1, 1);
    gb_key(&b, "general.alignment", SLM_GGUF_U32);
    gb_u32(&b, 1);
    gb_tinfo(&b, "w", 1, ne1, SLM_TYPE_F32, 0);
    gb_f32(&b, 3.0f);
    g = open_ok(b.p, b.len);
    cr_assert_eq(slm_gguf_data_offset(g), b.len - 4);
    slm_gguf_close(g);
    gb_free(&b);
}

/* ---- malformed files ------------------------------------------------------------- */

Test(gguf, truncated_at_every_offset) {
    slm_gguf_writer *w = gb_model_writer();
    cr_assert(w);
    size_t len;
    uint8_t *full = write_mem(w, "trunc.gguf", &len);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_ok(full, len);
    uint64_t data_off = slm_gguf_data_offset(g);
    uint64_t q_end = data_off + slm_gguf_tensor_at(g, 0)->nbytes;   /* end of the q8_0 data  */
    uint64_t f_start = data_off + slm_gguf_tensor_at(g, 1)->offset; /* start of the f32 data */
    cr_assert_eq(f_start + slm_gguf_tensor_at(g, 1)->nbytes, len);
    slm_gguf_close(g);
    /* end of the tensor infos: after the last one ("token_embd.weight", 2 dims) */
    const char *last = "token_embd.weight";
    const uint8_t *at = memmem(full, len, last, strlen(last));
    cr_assert(at);
    uint64_t infos_end = (uint64_t)(at - full) + strlen(last) + 4 + 2 * 8 + 4 + 8;
    cr_assert_leq(infos_end, data_off);
    cr_assert_gt(data_off - infos_end, 0, "choose kvs so that there is padding before the data");

    size_t mem0 = slm_mem_used();
    for (size_t n = 0; n < len; n++) {
        const char *want = NULL;
        if (n >= infos_end) {
            /* the first tensor whose data does not fit is named */
            want = n < q_end ? "tensor 'blk.0.attn_q.weight' data ends past end of file"
                             : "tensor 'token_embd.weight' data ends past end of file";
        }
        uint8_t *buf = exact_copy(full, n);
        slm_gguf *h = (slm_gguf *)1;
        slm_err err = { 0 };
        int rc = slm_gguf_open_mem(buf, n, &h, &err);
        cr_assert_eq(rc, SLM_EFORMAT, "prefix of %zu/%zu bytes: rc %d (%s)", n, len, rc, err.msg);
        cr_assert_null(h);
        cr_assert(err.msg[0] && !strchr(err.msg, '\n'), "prefix %zu: message '%s'", n, err.msg);
        if (want) cr_assert_str_eq(err.msg, want, "prefix %zu", n);
        else cr_assert_null(strstr(err.msg, "data ends past"), "prefix %zu (in the header): %s", n, err.msg);
        cr_assert_eq(slm_mem_used(), mem0, "prefix %zu leaked", n);
        free(buf);
    }
    g = open_ok(full, len);
    slm_gguf_close(g);
    free(full);
}

Test(gguf, absurd_counts) {
    gb b = { 0 };
    gb_hdr(&b, 3, 0, 1ull << 62);
    gb_key(&b, "k", SLM_GGUF_U8); gb_u8(&b, 1);
    expect_absurd(&b, "metadata count 4611686018427387904 exceeds what the file can hold", 1);
    gb_free(&b);

    gb_hdr(&b, 3, 1ull << 40, 0);
    for (int i = 0; i < 64; i++) gb_u8(&b, 0);
    expect_absurd(&b, "tensor count 1099511627776 exceeds what the file can hold", 1);
    gb_free(&b);

    gb_hdr(&b, 3, UINT64_MAX, UINT64_MAX);
    expect_absurd(&b, "exceeds what the file can hold", 1);
    gb_free(&b);

    /* arrays: 2^61 of u8, u32 (2^63 bytes) and u64 (wraps 64 bits), strings, arrays */
    static const struct { uint32_t et; const char *want; } arrs[] = {
        { SLM_GGUF_U8, "key 'a': array of 2305843009213693952 u8 ends past end of file" },
        { SLM_GGUF_U32, "key 'a': array of 2305843009213693952 u32 ends past end of file" },
        { SLM_GGUF_U64, "key 'a': array of 2305843009213693952 u64 ends past end of file" },
        { SLM_GGUF_STR, "key 'a': array count 2305843009213693952 exceeds the file" },
        { SLM_GGUF_ARR, "key 'a': array count 2305843009213693952 exceeds the file" },
    };
    for (size_t k = 0; k < sizeof arrs / sizeof *arrs; k++) {
        gb_hdr(&b, 3, 0, 1);
        gb_key(&b, "a", SLM_GGUF_ARR);
        gb_arr(&b, arrs[k].et, 1ull << 61);
        for (int i = 0; i < 64; i++) gb_u8(&b, 0);
        expect_absurd(&b, arrs[k].want, 2);
        gb_free(&b);
    }
    /* a string array whose count fits but one element's length does not */
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "a", SLM_GGUF_ARR);
    gb_arr(&b, SLM_GGUF_STR, 2);
    gb_str(&b, "ok");
    gb_u64(&b, 1ull << 63);
    gb_str(&b, "more bytes here");
    expect_absurd(&b, "key 'a': string ends past end of file", 2);
    gb_free(&b);

    /* a nested array count inside a valid outer one */
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "a", SLM_GGUF_ARR);
    gb_arr(&b, SLM_GGUF_ARR, 1);
    gb_arr(&b, SLM_GGUF_STR, 1ull << 61);
    for (int i = 0; i < 64; i++) gb_u8(&b, 0);
    expect_absurd(&b, "key 'a': array count 2305843009213693952 exceeds the file", 2);
    gb_free(&b);

    /* string length 2^63: a value, a key, a tensor name */
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "s", SLM_GGUF_STR);
    gb_u64(&b, 1ull << 63);
    gb_raw(&b, "abcdefgh", 8);
    expect_absurd(&b, "key 's': string ends past end of file", 2);
    gb_free(&b);
    gb_hdr(&b, 3, 0, 1);
    gb_u64(&b, 1ull << 63);
    for (int i = 0; i < 32; i++) gb_u8(&b, 'k');
    expect_absurd(&b, "metadata key 0 ends past end of file", 2);
    gb_free(&b);
    gb_hdr(&b, 3, 0, 1);
    gb_u64(&b, UINT64_MAX);
    for (int i = 0; i < 32; i++) gb_u8(&b, 'k');
    expect_absurd(&b, "metadata key 0 ends past end of file", 2);
    gb_free(&b);
    gb_hdr(&b, 3, 1, 0);
    gb_u64(&b, 1ull << 63);
    for (int i = 0; i < 64; i++) gb_u8(&b, 't');
    expect_absurd(&b, "tensor 0: name ends past end of file", 3);
    gb_free(&b);
}

Test(gguf, bad_tensor_headers) {
    gb b = { 0 };
    uint64_t ne[5] = { 8, 1, 1, 1, 1 };

    ne[0] = 1ull << 63;
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': dimension 0 is negative");
    gb_free(&b);
    ne[0] = 8; ne[1] = UINT64_MAX;
    one_tensor(&b, 2, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': dimension 1 is negative");
    gb_free(&b);

    ne[1] = 1;
    one_tensor(&b, 0, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': 0 dimensions (1 to 4 allowed)");
    gb_free(&b);
    one_tensor(&b, 5, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': 5 dimensions (1 to 4 allowed)");
    gb_free(&b);

    /* element count: 2^32 × 2^32 overflows int64 */
    ne[0] = 1ull << 32; ne[1] = 1ull << 32;
    one_tensor(&b, 2, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': element count overflows");
    gb_free(&b);
    ne[0] = 1ull << 20; ne[1] = 1ull << 20; ne[2] = 1ull << 20; ne[3] = 1ull << 20;
    one_tensor(&b, 4, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': element count overflows");
    gb_free(&b);
    /* elements fit int64 but bytes do not fit 64 bits */
    ne[0] = 1ull << 62; ne[1] = ne[2] = ne[3] = 1;
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': size overflows");
    gb_free(&b);
    one_tensor(&b, 1, ne, SLM_TYPE_Q8_0, 0, 64); /* 2^57 blocks of 34 bytes: < 2^64 */
    expect_fail(&b, SLM_EFORMAT, "tensor 'w' data ends past end of file");
    gb_free(&b);
    ne[0] = 1ull << 31; ne[1] = 1ull << 31;
    one_tensor(&b, 2, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': size overflows");
    gb_free(&b);
    /* fits in 64 bits, not in the file */
    ne[0] = 1ull << 40; ne[1] = 1;
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 0, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w' data ends past end of file");
    gb_free(&b);

    /* types */
    ne[0] = 32;
    one_tensor(&b, 1, ne, 99, 0, 256);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': unknown tensor type id 99");
    gb_free(&b);
    one_tensor(&b, 1, ne, UINT32_MAX, 0, 256);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': unknown tensor type id 4294967295");
    gb_free(&b);
    one_tensor(&b, 1, ne, SLM_TYPE_COUNT, 0, 256);
    expect_fail(&b, SLM_EFORMAT, "unknown tensor type id 40");
    gb_free(&b);
    ne[0] = 33;
    one_tensor(&b, 1, ne, SLM_TYPE_Q8_0, 0, 256);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': row length 33 is not a multiple of");
    gb_free(&b);
    ne[0] = 128;
    one_tensor(&b, 1, ne, SLM_TYPE_Q4_K, 0, 256);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w': row length 128 is not a multiple of");
    gb_free(&b);

    /* offsets */
    ne[0] = 8;
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 8, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w' data offset 8 is not aligned to 32");
    gb_free(&b);
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 1ull << 62, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w' data ends past end of file");
    gb_free(&b);
    one_tensor(&b, 1, ne, SLM_TYPE_F32, UINT64_MAX - 31, 64);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w' data ends past end of file");
    gb_free(&b);
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 32, 63);
    expect_fail(&b, SLM_EFORMAT, "tensor 'w' data ends past end of file");
    gb_free(&b);
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 32, 64); /* and exactly fitting is fine */
    slm_gguf *g = open_ok(b.p, b.len);
    slm_gguf_close(g);
    gb_free(&b);

    /* names */
    gb_hdr(&b, 3, 2, 0);
    gb_tinfo(&b, "w", 1, ne, SLM_TYPE_F32, 0);
    gb_tinfo(&b, "w", 1, ne, SLM_TYPE_F32, 32);
    gb_pad(&b, 32);
    for (int i = 0; i < 64; i++) gb_u8(&b, 0);
    expect_fail(&b, SLM_EFORMAT, "duplicate tensor name 'w'");
    gb_free(&b);
    one_tensor(&b, 1, ne, SLM_TYPE_F32, 0, 64);
    memcpy(b.p + 24, "\0\0\0\0\0\0\0\0", 8); /* name length 0: the 'w' becomes part of n_dims */
    expect_fail(&b, SLM_EFORMAT, "tensor 0: invalid name length 0");
    gb_free(&b);
    /* a long, non-printable name is shown shortened and escaped */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    longname[0] = '\n';
    gb_hdr(&b, 3, 1, 0);
    gb_tinfo(&b, longname, 5, ne, SLM_TYPE_F32, 0);
    expect_fail(&b, SLM_EFORMAT, "tensor '?nnnn");
    gb_free(&b);
}

Test(gguf, bad_metadata) {
    gb b = { 0 }, v = { 0 };

    gb_hdr(&b, 3, 0, 3);
    gb_key(&b, "a", SLM_GGUF_U8); gb_u8(&b, 1);
    gb_key(&b, "b", SLM_GGUF_U8); gb_u8(&b, 1);
    gb_key(&b, "a", SLM_GGUF_STR); gb_str(&b, "again");
    expect_fail(&b, SLM_EFORMAT, "duplicate metadata key 'a'");
    gb_free(&b);

    /* invalid value types, top level and as array elements */
    gb_u32(&v, 13); gb_u8(&v, 0);
    one_kv(&b, "k", &v);
    expect_fail(&b, SLM_EFORMAT, "key 'k': value type 13 is invalid");
    gb_free(&b); gb_free(&v);
    gb_u32(&v, UINT32_MAX); gb_u64(&v, 0);
    one_kv(&b, "k", &v);
    expect_fail(&b, SLM_EFORMAT, "key 'k': value type 4294967295 is invalid");
    gb_free(&b); gb_free(&v);
    gb_u32(&v, SLM_GGUF_ARR); gb_arr(&v, 13, 1); gb_u64(&v, 0);
    one_kv(&b, "k", &v);
    expect_fail(&b, SLM_EFORMAT, "key 'k': array element type 13 is invalid");
    gb_free(&b); gb_free(&v);
    gb_u32(&v, SLM_GGUF_ARR); gb_arr(&v, SLM_GGUF_ARR, 1); gb_arr(&v, 200, 0);
    one_kv(&b, "k", &v);
    expect_fail(&b, SLM_EFORMAT, "key 'k': array element type 200 is invalid");
    gb_free(&b); gb_free(&v);

    /* nesting: 8 levels load (see gb_nested), 9 do not */
    gb_u32(&v, SLM_GGUF_ARR); gb_deep_value(&v, 9);
    one_kv(&b, "k", &v);
    expect_fail(&b, SLM_EFORMAT, "key 'k': arrays nested deeper than 8");
    gb_free(&b); gb_free(&v);
    gb_u32(&v, SLM_GGUF_ARR); gb_deep_value(&v, 8);
    one_kv(&b, "k", &v);
    slm_gguf *g = open_ok(b.p, b.len);
    slm_gguf_close(g);
    gb_free(&b); gb_free(&v);
    /* deep nesting with no payload: fails on depth, not on recursion */
    gb_u32(&v, SLM_GGUF_ARR);
    for (int i = 0; i < 10000; i++) gb_arr(&v, SLM_GGUF_ARR, 1);
    one_kv(&b, "k", &v);
    expect_fail(&b, SLM_EFORMAT, "nested deeper than 8");
    gb_free(&b); gb_free(&v);

    /* keys */
    gb_hdr(&b, 3, 0, 1);
    gb_str(&b, "");
    gb_u32(&b, SLM_GGUF_U32); gb_u32(&b, 1);
    expect_fail(&b, SLM_EFORMAT, "metadata key 0 has invalid length 0");
    gb_free(&b);
    gb_hdr(&b, 3, 0, 2);
    gb_key(&b, "ok", SLM_GGUF_U8); gb_u8(&b, 1);
    gb_u64(&b, 70000);
    for (int i = 0; i < 70000; i++) gb_u8(&b, 'k');
    gb_u32(&b, SLM_GGUF_U8); gb_u8(&b, 1);
    expect_fail(&b, SLM_EFORMAT, "metadata key 1 has invalid length 70000");
    gb_free(&b);

    /* truncated values */
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "k", SLM_GGUF_U64); gb_u32(&b, 0);
    expect_fail(&b, SLM_EFORMAT, "key 'k': value ends past end of file");
    gb_free(&b);
    gb_hdr(&b, 3, 0, 1);
    gb_str(&b, "kkkk"); gb_u16(&b, 0); /* 14 bytes: the least a kv can take */
    expect_fail(&b, SLM_EFORMAT, "key 'kkkk': type ends past end of file");
    gb_free(&b);
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "k", SLM_GGUF_ARR); gb_u32(&b, SLM_GGUF_U8);
    expect_fail(&b, SLM_EFORMAT, "key 'k': array header ends past end of file");
    gb_free(&b);

    /* general.alignment: power of two up to 1 MiB, u32 only */
    static const uint32_t bad_align[] = { 0, 3, 48, 1u << 21, UINT32_MAX };
    for (size_t k = 0; k < sizeof bad_align / sizeof *bad_align; k++) {
        char want[128];
        snprintf(want, sizeof want, "key 'general.alignment' = %u is not a power of two", bad_align[k]);
        gb_hdr(&b, 3, 0, 1);
        gb_key(&b, "general.alignment", SLM_GGUF_U32); gb_u32(&b, bad_align[k]);
        expect_fail(&b, SLM_EFORMAT, want);
        gb_free(&b);
    }
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "general.alignment", SLM_GGUF_U32); gb_u32(&b, 1u << 20);
    g = open_ok(b.p, b.len);
    cr_assert_eq(slm_gguf_alignment(g), 1u << 20);
    slm_gguf_close(g);
    gb_free(&b);
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "general.alignment", SLM_GGUF_U64); gb_u64(&b, 64);
    expect_fail(&b, SLM_EFORMAT, "key 'general.alignment' has type u64, expected u32");
    gb_free(&b);
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "general.alignment", SLM_GGUF_STR); gb_str(&b, "32");
    expect_fail(&b, SLM_EFORMAT, "key 'general.alignment' has type string, expected u32");
    gb_free(&b);
    gb_hdr(&b, 3, 0, 1);
    gb_key(&b, "general.alignment", SLM_GGUF_ARR); gb_arr(&b, SLM_GGUF_U32, 1); gb_u32(&b, 32);
    expect_fail(&b, SLM_EFORMAT, "key 'general.alignment' has type array, expected u32");
    gb_free(&b);
}

/* Keys built so that plain FNV-1a puts them all in slot 0 of a table of
 * `size` slots: a 3-byte prefix, then 2 bytes steering the low bits of the
 * state to 0 (multiplication by the odd FNV prime is invertible mod 2^k). */
static void colliding_keys(gb *b, uint64_t n) {
    uint64_t size = 16;
    while (size < n * 2) size <<= 1;
    const uint64_t mask = size - 1, prime = 1099511628211ull, basis = 1469598103934665603ull;
    uint64_t inv = prime;
    for (int i = 0; i < 6; i++) inv *= 2 - prime * inv; /* Newton: prime^-1 mod 2^64 */
    int32_t *steer = malloc(size * sizeof *steer);      /* low state -> 2 bytes to 0 */
    cr_assert(steer);
    memset(steer, 0xff, size * sizeof *steer);
    for (int b1 = 0; b1 < 256; b1++)
        for (int b0 = 0; b0 < 256; b0++) steer[((((0 * inv) ^ (uint64_t)b1) * inv) ^ (uint64_t)b0) & mask] = b0 << 8 | b1;
    gb_hdr(b, 3, 0, n);
    uint64_t made = 0;
    for (uint32_t pre = 0; pre < (1u << 24) && made < n; pre++) {
        uint8_t k[5] = { (uint8_t)pre, (uint8_t)(pre >> 8), (uint8_t)(pre >> 16), 0, 0 };
        uint64_t h = basis;
        for (int i = 0; i < 3; i++) h = (h ^ k[i]) * prime;
        int32_t s = steer[h & mask];
        if (s < 0) continue;
        k[3] = (uint8_t)(s >> 8);
        k[4] = (uint8_t)s;
        for (int i = 3; i < 5; i++) h = (h ^ k[i]) * prime;
        cr_assert_eq(h & mask, 0);
        gb_strn(b, k, 5);
        gb_u32(b, SLM_GGUF_U8);
        gb_u8(b, 1);
        made++;
    }
    cr_assert_eq(made, n);
    free(steer);
}

Test(gguf, colliding_keys_stay_fast) {
    gb b = { 0 };
    colliding_keys(&b, 65536); /* 1.2 MB; unseeded FNV-1a took 8 s (-O2) to index these */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    slm_gguf *g = open_ok(b.p, b.len);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    cr_assert_eq(slm_gguf_n_kv(g), 65536);
    cr_assert_lt(s, 2.0, "open took %.2f s: keys built to collide make the index quadratic", s);
    slm_gguf_close(g);
    gb_free(&b);
}

/* ---- out of memory ---------------------------------------------------------------- */

Test(gguf, out_of_memory_at_every_allocation) {
    slm_gguf_writer *w = gb_model_writer();
    cr_assert(w);
    size_t len;
    uint8_t *buf = write_mem(w, "oom.gguf", &len);
    slm_gguf_writer_free(w);
    const char *path = th_tmp("oom.gguf");
    size_t mem0 = slm_mem_used();
    int n_alloc = count_allocs(buf, len);
    /* handle, kv table, one string-array offsets table, kv index, tensor table, tensor index */
    cr_assert_eq(n_alloc, 6, "the open makes %d allocations", n_alloc);
    for (int via_path = 0; via_path <= 1; via_path++) {
        for (int n = 1; n <= n_alloc + 1; n++) {
            slm_gguf *g = (slm_gguf *)1;
            slm_err err = { 0 };
            slm_alloc_fail_after(n);
            int rc = via_path ? slm_gguf_open(path, &g, &err) : slm_gguf_open_mem(buf, len, &g, &err);
            slm_alloc_fail_after(0);
            if (n <= n_alloc) {
                cr_assert_eq(rc, SLM_ENOMEM, "allocation %d failing: rc %d (%s)", n, rc, err.msg);
                cr_assert_null(g);
                cr_assert(err.msg[0] && strstr(err.msg, "out of memory"), "allocation %d: '%s'", n, err.msg);
            } else {
                cr_assert_eq(rc, 0, "%s", err.msg);
                check_model(g, via_path ? NULL : buf);
                slm_gguf_close(g);
            }
            cr_assert_eq(slm_mem_used(), mem0, "allocation %d failing leaked %zu bytes", n, slm_mem_used() - mem0);
        }
    }
    /* getters that allocate */
    slm_gguf *g = open_ok(buf, len);
    slm_err err = { 0 };
    char *dup = (char *)1;
    slm_alloc_fail_after(1);
    cr_assert_eq(slm_gguf_get_str_dup(g, "general.name", &dup, &err), SLM_ENOMEM);
    slm_alloc_fail_after(0);
    cr_assert_null(dup);
    slm_gguf_close(g);
    free(buf);
    cr_assert_eq(slm_mem_used(), mem0);
}

Test(gguf, writer_out_of_memory) {
    size_t mem0 = slm_mem_used();
    int n;
    for (n = 1; n < 1000; n++) {
        slm_alloc_fail_after(n);
        slm_gguf_writer *w = gb_model_writer();
        slm_alloc_fail_after(0);
        if (w) {
            slm_gguf_writer_free(w);
            break;
        }
        cr_assert_eq(slm_mem_used(), mem0, "allocation %d failing leaked", n);
    }
    cr_assert_gt(n, 3, "the writer allocates");
    cr_assert_lt(n, 1000);
    cr_assert_eq(slm_mem_used(), mem0);
    /* a failed replacement keeps the old value */
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert_eq(slm_gguf_set_str(w, "k", "old"), 0);
    slm_alloc_fail_after(1);
    cr_assert_eq(slm_gguf_set_str(w, "k", "new"), SLM_ENOMEM);
    slm_alloc_fail_after(0);
    size_t len;
    uint8_t *buf = write_mem(w, "oom-replace.gguf", &len);
    slm_gguf_writer_free(w);
    slm_gguf *g = open_ok(buf, len);
    slm_gguf_str s;
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_n_kv(g), 1);
    cr_assert_eq(slm_gguf_get_str(g, "k", &s, &err), 0, "%s", err.msg);
    cr_assert(slm_gguf_str_eq(s, "old"));
    slm_gguf_close(g);
    free(buf);
    cr_assert_eq(slm_mem_used(), mem0);
}

/* ---- fixtures and the fuzz corpus ---------------------------------------------- */

/* Reads a file and puts it through the fuzz harness's walk; must open. */
static void walk_file_ok(const char *path) {
    size_t len;
    char *buf = th_read_file(path, &len);
    cr_assert(buf, "cannot read %s", path);
    slm_err err;
    int rc = fuzz_gguf_walk((const uint8_t *)buf, len, &err);
    cr_assert_eq(rc, 0, "%s: %s", path, err.msg);
    free(buf);
}

Test(gguf, fixture_stories260K) {
    SKIP_WITHOUT_FIXTURE(path, "models/stories260K.gguf");
    slm_gguf *g = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_open(path, &g, &err), 0, "%s", err.msg);
    cr_assert_gt(slm_gguf_n_tensors(g), 0);
    slm_gguf_str s;
    cr_assert_eq(slm_gguf_get_str(g, "general.architecture", &s, &err), 0, "%s", err.msg);
    cr_assert(slm_gguf_str_eq(s, "llama"));
    slm_gguf_vtype et;
    uint64_t n;
    cr_assert_eq(slm_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(et, SLM_GGUF_STR);
    cr_assert_eq(n, 512);
    int64_t ti = slm_gguf_find_key(g, "tokenizer.ggml.tokens");
    cr_assert(slm_gguf_str_eq(slm_gguf_arr_str(g, ti, 1), "<s>"), "token 1");
    cr_assert(slm_gguf_str_eq(slm_gguf_arr_str(g, ti, 2), "</s>"), "token 2");
    uint32_t dim;
    cr_assert_eq(slm_gguf_get_u32(g, "llama.embedding_length", &dim, &err), 0, "%s", err.msg);
    cr_assert_eq(dim, 64);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_not_null(t);
    cr_assert_eq(t->type, SLM_TYPE_F32);
    cr_assert_eq(t->ne[0], 64);
    cr_assert_eq(t->ne[1], 512);
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *u = slm_gguf_tensor_at(g, i);
        cr_assert_leq(slm_gguf_data_offset(g) + u->offset + u->nbytes, slm_gguf_file_size(g));
    }
    slm_gguf_close(g);
    walk_file_ok(path);
}

Test(gguf, fixture_vocab_gpt2) {
    SKIP_WITHOUT_FIXTURE(path, "vocab/ggml-vocab-gpt-2.gguf");
    size_t len;
    char *buf = th_read_file(path, &len);
    cr_assert(buf);
    slm_gguf *g = open_ok(buf, len);
    cr_assert_eq(slm_gguf_n_tensors(g), 0);
    slm_err err = { 0 };
    slm_gguf_str s;
    cr_assert_eq(slm_gguf_get_str(g, "general.architecture", &s, &err), 0, "%s", err.msg);
    cr_assert(slm_gguf_str_eq(s, "gpt2"), "'%.*s'", (int)s.len, s.ptr);
    slm_gguf_vtype et;
    uint64_t n;
    cr_assert_eq(slm_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(et, SLM_GGUF_STR);
    cr_assert_eq(n, 50257);
    int64_t ti = slm_gguf_find_key(g, "tokenizer.ggml.tokens");
    cr_assert(slm_gguf_str_eq(slm_gguf_arr_str(g, ti, 0), "!"));
    bool plain = slm_gguf_version(g) == 3 && slm_gguf_find_key(g, "general.alignment") < 0;
    slm_gguf_close(g);
    /* a real vocabulary copied kv by kv is the same file */
    if (plain) copy_round_trip((const uint8_t *)buf, len, "copy-gpt2.gguf");
    free(buf);
    walk_file_ok(path);
}

#define CORPUS_DIR "fuzz/corpus/gguf"

Test(gguf, fuzz_corpus_replay) {
    DIR *d = opendir(CORPUS_DIR);
    cr_assert(d, CORPUS_DIR " not found: run the tests from the repository root");
    int n_files = 0, n_valid = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        size_t len;
        char *raw = th_read_file(path, &len);
        cr_assert(raw, "cannot read %s", path);
        uint8_t *buf = exact_copy(raw, len);
        free(raw);
        slm_err err;
        int rc = fuzz_gguf_walk(buf, len, &err); /* aborts on a broken promise */
        if (!strncmp(e->d_name, "valid-", 6)) {
            cr_assert_eq(rc, 0, "%s should open: %s", path, err.msg);
            n_valid++;
        } else if (!strncmp(e->d_name, "bad-", 4)) {
            cr_assert_neq(rc, 0, "%s should be rejected", path);
        }
        free(buf);
        n_files++;
    }
    closedir(d);
    cr_assert_geq(n_files, 8, "only %d corpus files in " CORPUS_DIR, n_files);
    cr_assert_geq(n_valid, 6, "only %d valid corpus files", n_valid);
}
