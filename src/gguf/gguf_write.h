/*
 * gguf_write.h — building and writing a GGUF v3 file (slm synth, quantize,
 * convert, tests that make malformed files).
 *
 * The writer keeps copies of keys and values; tensor data is referenced, not
 * copied, and must stay valid until slm_gguf_writer_write returns.
 */
#ifndef SLM_GGUF_WRITE_H
#define SLM_GGUF_WRITE_H

#include <stdbool.h>
#include <stdint.h>
#include "gguf/gguf.h"

typedef struct slm_gguf_writer slm_gguf_writer;

slm_gguf_writer *slm_gguf_writer_new(void);   /* NULL on OOM */
void slm_gguf_writer_free(slm_gguf_writer *w);

/* Setters return 0 or SLM_ENOMEM. A later set of the same key replaces it
 * (on failure the earlier value stays). "general.alignment" is reserved:
 * slm_gguf_set_u32 of it is slm_gguf_writer_set_alignment, other setters
 * refuse it with SLM_EINVAL. */
int slm_gguf_set_u32(slm_gguf_writer *w, const char *key, uint32_t v);
int slm_gguf_set_i32(slm_gguf_writer *w, const char *key, int32_t v);
int slm_gguf_set_u64(slm_gguf_writer *w, const char *key, uint64_t v);
int slm_gguf_set_f32(slm_gguf_writer *w, const char *key, float v);
int slm_gguf_set_bool(slm_gguf_writer *w, const char *key, bool v);
int slm_gguf_set_str(slm_gguf_writer *w, const char *key, const char *v);
/* Array of fixed-size elements (n × vtype size bytes, copied). */
int slm_gguf_set_arr(slm_gguf_writer *w, const char *key, slm_gguf_vtype etype,
                     const void *data, uint64_t n);
/* Array of strings: lens may be NULL for NUL-terminated strings. */
int slm_gguf_set_arr_str(slm_gguf_writer *w, const char *key, const char *const *strs,
                         const uint64_t *lens, uint64_t n);
/* Tensor data alignment (a power of two up to 1 MiB, default 32); also
 * writes the general.alignment key. Returns 0, SLM_EINVAL or SLM_ENOMEM. */
int slm_gguf_writer_set_alignment(slm_gguf_writer *w, uint32_t alignment);
/* Copies kv i of an open file (any type, arrays included). SLM_EINVAL for
 * a key of 1024 bytes or more or one holding a NUL byte. */
int slm_gguf_copy_kv(slm_gguf_writer *w, const slm_gguf *src, int64_t i);

/* Adds a tensor; data (nbytes, must match type and shape) is referenced. */
int slm_gguf_add_tensor(slm_gguf_writer *w, const char *name, int32_t type,
                        uint32_t n_dims, const int64_t *ne, const void *data, uint64_t nbytes);

int slm_gguf_writer_write(slm_gguf_writer *w, const char *path, slm_err *err);

#endif
