/*
 * gguf.h — reading GGUF v2/v3 files.
 *
 * slm_gguf_open mmaps the file read-only and parses the header, the metadata
 * key/values (every type, arrays nested to any depth) and the tensor table.
 * Every length, count, offset, dimension and type is checked against the
 * bytes left and against overflow before use; nothing is allocated from an
 * unchecked count. On failure the error names the offending key or tensor.
 *
 * Values are not copied: strings and array data point into the mapping and
 * stay valid while the slm_gguf lives. Strings are NOT NUL-terminated; use
 * the (ptr, len) pairs, or slm_gguf_get_str_dup.
 */
#ifndef SLM_GGUF_GGUF_H
#define SLM_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "slm/slm.h"

typedef enum slm_gguf_vtype {
    SLM_GGUF_U8 = 0, SLM_GGUF_I8 = 1, SLM_GGUF_U16 = 2, SLM_GGUF_I16 = 3,
    SLM_GGUF_U32 = 4, SLM_GGUF_I32 = 5, SLM_GGUF_F32 = 6, SLM_GGUF_BOOL = 7,
    SLM_GGUF_STR = 8, SLM_GGUF_ARR = 9, SLM_GGUF_U64 = 10, SLM_GGUF_I64 = 11,
    SLM_GGUF_F64 = 12, SLM_GGUF_NTYPES
} slm_gguf_vtype;

#define SLM_GGUF_MAX_DIMS 4
#define SLM_GGUF_DEFAULT_ALIGN 32

typedef struct slm_gguf_str { const char *ptr; uint64_t len; } slm_gguf_str;

typedef struct slm_gguf_tensor {
    slm_gguf_str name;
    int32_t  type;                      /* GGUF/ggml tensor type id            */
    uint32_t n_dims;
    int64_t  ne[SLM_GGUF_MAX_DIMS];     /* elements per dim, ne[0] innermost   */
    uint64_t offset;                    /* relative to the data section        */
    uint64_t nbytes;                    /* checked: fits in the file           */
    const void *data;                   /* points into the mapping             */
} slm_gguf_tensor;

typedef struct slm_gguf slm_gguf;

/* Opens path with mmap. *out owns the mapping; free with slm_gguf_close. */
int  slm_gguf_open(const char *path, slm_gguf **out, slm_err *err);
/* Parses a buffer the caller keeps alive (fuzzing, tests). Not copied. */
int  slm_gguf_open_mem(const void *buf, size_t size, slm_gguf **out, slm_err *err);
void slm_gguf_close(slm_gguf *g);

uint32_t slm_gguf_version(const slm_gguf *g);
uint64_t slm_gguf_file_size(const slm_gguf *g);
uint64_t slm_gguf_alignment(const slm_gguf *g);
uint64_t slm_gguf_data_offset(const slm_gguf *g);  /* start of tensor data */
/* Offset in the file of a pointer into the mapping (tensor data), or -1
 * when p is not inside it. */
int64_t slm_gguf_file_offset(const slm_gguf *g, const void *p);

/* ---- metadata ---- */
int64_t slm_gguf_n_kv(const slm_gguf *g);
int64_t slm_gguf_find_key(const slm_gguf *g, const char *key); /* -1: absent */
slm_gguf_str slm_gguf_key(const slm_gguf *g, int64_t i);
slm_gguf_vtype slm_gguf_kv_type(const slm_gguf *g, int64_t i);

/* Typed scalar getters: return SLM_ENOTFOUND if the key is absent and
 * SLM_EFORMAT (err names the key) if it has another type. Integer getters
 * accept any integer type whose value fits. */
int slm_gguf_get_u32(const slm_gguf *g, const char *key, uint32_t *out, slm_err *err);
int slm_gguf_get_i64(const slm_gguf *g, const char *key, int64_t *out, slm_err *err);
int slm_gguf_get_f32(const slm_gguf *g, const char *key, float *out, slm_err *err);   /* f32 or f64 */
int slm_gguf_get_bool(const slm_gguf *g, const char *key, bool *out, slm_err *err);
int slm_gguf_get_str(const slm_gguf *g, const char *key, slm_gguf_str *out, slm_err *err);
/* NUL-terminated copy (caller frees with slm_free). */
int slm_gguf_get_str_dup(const slm_gguf *g, const char *key, char **out, slm_err *err);

/* Arrays: element type and count; for fixed-size element types, a pointer to
 * the packed little-endian elements; for strings, per-element access. Nested
 * arrays are parsed and validated but exposed only by type/count. */
int slm_gguf_get_arr(const slm_gguf *g, const char *key, slm_gguf_vtype *etype,
                     uint64_t *n, slm_err *err);
const void  *slm_gguf_arr_data(const slm_gguf *g, int64_t kv_index);
slm_gguf_str slm_gguf_arr_str(const slm_gguf *g, int64_t kv_index, uint64_t j);
/* Scalar value of key i as double (numbers and bools), for printing. */
double slm_gguf_kv_number(const slm_gguf *g, int64_t i);
/* Raw value access for kv i: scalar string. */
slm_gguf_str slm_gguf_kv_str(const slm_gguf *g, int64_t i);
/* Array element type/count for kv i (0 if not an array). */
slm_gguf_vtype slm_gguf_kv_arr_type(const slm_gguf *g, int64_t i);
uint64_t slm_gguf_kv_arr_n(const slm_gguf *g, int64_t i);

size_t slm_gguf_vtype_size(slm_gguf_vtype t); /* 0 for STR/ARR */
const char *slm_gguf_vtype_name(slm_gguf_vtype t);

/* ---- tensors ---- */
int64_t slm_gguf_n_tensors(const slm_gguf *g);
const slm_gguf_tensor *slm_gguf_tensor_at(const slm_gguf *g, int64_t i);
const slm_gguf_tensor *slm_gguf_find_tensor(const slm_gguf *g, const char *name); /* NULL: absent */

/* True when a gguf string equals a C string. */
static inline bool slm_gguf_str_eq(slm_gguf_str s, const char *c) {
    size_t n = 0;
    while (c[n]) n++;
    if (s.len != n) return false;
    for (size_t i = 0; i < n; i++) if (s.ptr[i] != c[i]) return false;
    return true;
}

#endif
