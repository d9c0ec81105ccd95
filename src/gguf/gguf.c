/*
 * gguf.c — GGUF v2/v3 reader.
 *
 * The file is mapped read-only and parsed with a cursor that refuses to read
 * past the end: every read goes through take(), which checks the bytes left.
 * Counts that drive allocations (key/values, tensors, string-array elements)
 * are first checked against the bytes that the smallest possible encoding of
 * that many items would need, so a hostile count fails before anything is
 * allocated. Values are not copied: the kv and tensor tables point into the
 * mapping. String arrays get an offsets table (bounded by the file size) so
 * that element j is O(1).
 */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/types.h"
#include "util/alloc.h"
#include "util/err.h"

#define MAX_ARRAY_DEPTH 8
#define MAX_NAME_LEN 65535   /* keys and tensor names; ggml's limit is 64 but files in the wild vary */

typedef struct kv {
    slm_gguf_str key;
    slm_gguf_vtype type;
    const uint8_t *val;       /* start of the encoded value                   */
    /* arrays */
    slm_gguf_vtype etype;
    uint64_t n;               /* element count                                */
    const uint8_t *adata;     /* first element                                */
    uint64_t *str_off;        /* string arrays: offset of element j from adata */
} kv;

struct slm_gguf {
    const uint8_t *base;      /* mapping or caller buffer                     */
    size_t size;
    bool mapped;              /* true: munmap on close                        */
    uint32_t version;
    uint64_t alignment, data_offset;
    int64_t n_kv, n_tensors;
    kv *kvs;
    slm_gguf_tensor *tensors;
    int64_t *kv_index, *t_index; /* open-addressing name → index tables     */
    uint64_t kv_mask, t_mask;    /* table size - 1 (power of two)            */
    uint64_t hash_seed;          /* per open, unknown to the file's author   */
};

typedef struct cursor {
    const uint8_t *p, *end;
    slm_err *err;
} cursor;

static const char *const vtype_names[SLM_GGUF_NTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *slm_gguf_vtype_name(slm_gguf_vtype t) {
    return (unsigned)t < SLM_GGUF_NTYPES ? vtype_names[t] : "invalid";
}

size_t slm_gguf_vtype_size(slm_gguf_vtype t) {
    switch (t) {
    case SLM_GGUF_U8: case SLM_GGUF_I8: case SLM_GGUF_BOOL: return 1;
    case SLM_GGUF_U16: case SLM_GGUF_I16: return 2;
    case SLM_GGUF_U32: case SLM_GGUF_I32: case SLM_GGUF_F32: return 4;
    case SLM_GGUF_U64: case SLM_GGUF_I64: case SLM_GGUF_F64: return 8;
    default: return 0;
    }
}

static size_t left(const cursor *c) { return (size_t)(c->end - c->p); }

static const uint8_t *take(cursor *c, uint64_t n) {
    if (n > left(c)) return NULL;
    const uint8_t *r = c->p;
    c->p += n;
    return r;
}

static int rd_u32(cursor *c, uint32_t *v) {
    const uint8_t *b = take(c, 4);
    if (!b) return -1;
    memcpy(v, b, 4);
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v) {
    const uint8_t *b = take(c, 8);
    if (!b) return -1;
    memcpy(v, b, 8);
    return 0;
}

static int rd_str(cursor *c, slm_gguf_str *s) {
    uint64_t n;
    if (rd_u64(c, &n)) return -1;
    const uint8_t *b = take(c, n);
    if (!b) return -1;
    s->ptr = (const char *)b;
    s->len = n;
    return 0;
}

static int name_fmt(slm_gguf_str s, char *buf, size_t cap) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        buf[i] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    buf[n] = 0;
    return (int)n;
}

/* Skips one value of type t (validating it); depth bounds nested arrays. */
static int skip_value(cursor *c, slm_gguf_vtype t, int depth, const char *key);

static int skip_array(cursor *c, int depth, const char *key, slm_gguf_vtype *etype_out,
                      uint64_t *n_out, const uint8_t **data_out) {
    uint32_t et;
    uint64_t n;
    if (rd_u32(c, &et) || rd_u64(c, &n))
        return slm_err_set(c->err, SLM_EFORMAT, "key '%s': array header ends past end of file", key);
    if (et >= SLM_GGUF_NTYPES)
        return slm_err_set(c->err, SLM_EFORMAT, "key '%s': array element type %u is invalid", key, et);
    if (depth >= MAX_ARRAY_DEPTH)
        return slm_err_set(c->err, SLM_EFORMAT, "key '%s': arrays nested deeper than %d", key, MAX_ARRAY_DEPTH);
    if (etype_out) *etype_out = (slm_gguf_vtype)et;
    if (n_out) *n_out = n;
    if (data_out) *data_out = c->p;
    size_t es = slm_gguf_vtype_size((slm_gguf_vtype)et);
    if (es) {
        size_t nb;
        if (!slm_mul_ok(n, es, &nb) || nb > left(c))
            return slm_err_set(c->err, SLM_EFORMAT,
                               "key '%s': array of %llu %s ends past end of file", key,
                               (unsigned long long)n, vtype_names[et]);
        c->p += nb;
        return 0;
    }
    /* strings need >= 8 bytes each, arrays >= 12 */
    uint64_t min_each = et == SLM_GGUF_STR ? 8 : 12;
    if (n > left(c) / min_each)
        return slm_err_set(c->err, SLM_EFORMAT, "key '%s': array count %llu exceeds the file", key,
                           (unsigned long long)n);
    for (uint64_t j = 0; j < n; j++) {
        int rc = skip_value(c, (slm_gguf_vtype)et, depth + 1, key);
        if (rc) return rc;
    }
    return 0;
}

static int skip_value(cursor *c, slm_gguf_vtype t, int depth, const char *key) {
    if (t == SLM_GGUF_STR) {
        slm_gguf_str s;
        if (rd_str(c, &s))
            return slm_err_set(c->err, SLM_EFORMAT, "key '%s': string ends past end of file", key);
        return 0;
    }
    if (t == SLM_GGUF_ARR) return skip_array(c, depth, key, NULL, NULL, NULL);
    size_t sz = slm_gguf_vtype_size(t);
    if (!sz) return slm_err_set(c->err, SLM_EFORMAT, "key '%s': value type %u is invalid", key, (unsigned)t);
    if (!take(c, sz)) return slm_err_set(c->err, SLM_EFORMAT, "key '%s': value ends past end of file", key);
    return 0;
}

static int parse_kv(cursor *c, slm_gguf *g, int64_t i) {
    kv *e = &g->kvs[i];
    if (rd_str(c, &e->key))
        return slm_err_set(c->err, SLM_EFORMAT, "metadata key %lld ends past end of file", (long long)i);
    char key[128];
    name_fmt(e->key, key, sizeof key);
    if (e->key.len == 0 || e->key.len > MAX_NAME_LEN)
        return slm_err_set(c->err, SLM_EFORMAT, "metadata key %lld has invalid length %llu", (long long)i,
                           (unsigned long long)e->key.len);
    uint32_t t;
    if (rd_u32(c, &t)) return slm_err_set(c->err, SLM_EFORMAT, "key '%s': type ends past end of file", key);
    if (t >= SLM_GGUF_NTYPES) return slm_err_set(c->err, SLM_EFORMAT, "key '%s': value type %u is invalid", key, t);
    e->type = (slm_gguf_vtype)t;
    e->val = c->p;
    if (t != SLM_GGUF_ARR) return skip_value(c, e->type, 0, key);
    int rc = skip_array(c, 0, key, &e->etype, &e->n, &e->adata);
    if (rc) return rc;
    if (e->etype == SLM_GGUF_STR && e->n > 0) {
        /* n was bounded by the bytes left (8 per string), so this is bounded by the file size */
        e->str_off = slm_calloc(e->n, sizeof *e->str_off);
        if (!e->str_off) return slm_err_set(c->err, SLM_ENOMEM, "key '%s': out of memory", key);
        const uint8_t *p = e->adata;
        for (uint64_t j = 0; j < e->n; j++) {
            e->str_off[j] = (uint64_t)(p - e->adata);
            uint64_t len;
            memcpy(&len, p, 8);
            p += 8 + len; /* already validated by skip_array */
        }
    }
    return 0;
}

static int parse_tensor(cursor *c, slm_gguf *g, int64_t i) {
    slm_gguf_tensor *t = &g->tensors[i];
    if (rd_str(c, &t->name))
        return slm_err_set(c->err, SLM_EFORMAT, "tensor %lld: name ends past end of file", (long long)i);
    char name[128];
    name_fmt(t->name, name, sizeof name);
    if (t->name.len == 0 || t->name.len > MAX_NAME_LEN)
        return slm_err_set(c->err, SLM_EFORMAT, "tensor %lld: invalid name length %llu", (long long)i,
                           (unsigned long long)t->name.len);
    if (rd_u32(c, &t->n_dims))
        return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': header ends past end of file", name);
    if (t->n_dims == 0 || t->n_dims > SLM_GGUF_MAX_DIMS)
        return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': %u dimensions (1 to %d allowed)", name,
                           t->n_dims, SLM_GGUF_MAX_DIMS);
    int64_t n_el = 1;
    for (uint32_t d = 0; d < SLM_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        if (rd_u64(c, &v)) return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': header ends past end of file", name);
        if (v > (uint64_t)INT64_MAX)
            return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': dimension %u is negative", name, d);
        t->ne[d] = (int64_t)v;
        if (t->ne[d] != 0 && n_el > INT64_MAX / t->ne[d])
            return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': element count overflows", name);
        n_el *= t->ne[d];
    }
    uint32_t type;
    uint64_t off;
    if (rd_u32(c, &type) || rd_u64(c, &off))
        return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': header ends past end of file", name);
    t->type = (int32_t)type;
    t->offset = off;
    if (type >= SLM_TYPE_COUNT || !slm_type_known((int32_t)type))
        return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': unknown tensor type id %u", name, type);
    int64_t bs = slm_type_blck_size((int32_t)type);
    if (t->ne[0] % bs)
        return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': row length %lld is not a multiple of %s block size %lld",
                           name, (long long)t->ne[0], slm_type_name((int)type), (long long)bs);
    /* row bytes computed here with an overflow check: ne[0] can be near
     * INT64_MAX, and blocks × block bytes would wrap to a small size */
    uint64_t rows = (uint64_t)(t->ne[0] ? n_el / t->ne[0] : 0);
    size_t row, nb;
    if (!slm_mul_ok((size_t)(t->ne[0] / bs), slm_type_size((int32_t)type), &row) || !slm_mul_ok(row, rows, &nb))
        return slm_err_set(c->err, SLM_EFORMAT, "tensor '%s': size overflows", name);
    t->nbytes = nb;
    return 0;
}

static uint64_t mix64(uint64_t h) { /* murmur3's finalizer */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Seeded FNV-1a, finalized so that the table slot depends on every bit.
 * In plain FNV-1a the low k bits of the hash are a function of the low k
 * bits of the state and bytes alone (multiplication carries only upward),
 * so a file can be built whose keys all share one slot, making the open
 * quadratic: 65536 such keys (1.2 MB) took 8 s. With a seed the file cannot
 * know, it cannot aim. */
static uint64_t hash_str(uint64_t seed, const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return mix64(h);
}

/* Builds a name → index table over n items whose first field is a
 * slm_gguf_str (kv and slm_gguf_tensor both are); fails on a duplicate. */
static int build_index(uint64_t seed, const void *items, size_t stride, int64_t n, int64_t **table, uint64_t *mask,
                       const char *what, slm_err *err) {
    uint64_t size = 16;
    while (size < (uint64_t)n * 2) size <<= 1;
    int64_t *t = slm_malloc(size * sizeof *t);
    if (!t) return slm_err_set(err, SLM_ENOMEM, "out of memory indexing %ss", what);
    memset(t, 0xff, size * sizeof *t);
    for (int64_t i = 0; i < n; i++) {
        const slm_gguf_str *s = (const slm_gguf_str *)((const char *)items + (size_t)i * stride);
        uint64_t h = hash_str(seed, s->ptr, s->len) & (size - 1);
        while (t[h] >= 0) {
            const slm_gguf_str *o = (const slm_gguf_str *)((const char *)items + (size_t)t[h] * stride);
            if (o->len == s->len && !memcmp(o->ptr, s->ptr, s->len)) {
                char name[128];
                name_fmt(*s, name, sizeof name);
                slm_free(t);
                return slm_err_set(err, SLM_EFORMAT, "duplicate %s '%s'", what, name);
            }
            h = (h + 1) & (size - 1);
        }
        t[h] = i;
    }
    *table = t;
    *mask = size - 1;
    return 0;
}

static int64_t index_find(uint64_t seed, const void *items, size_t stride, const int64_t *table, uint64_t mask,
                          const char *name) {
    if (!table) return -1;
    size_t n = strlen(name);
    uint64_t h = hash_str(seed, name, n) & mask;
    while (table[h] >= 0) {
        const slm_gguf_str *o = (const slm_gguf_str *)((const char *)items + (size_t)table[h] * stride);
        if (o->len == n && !memcmp(o->ptr, name, n)) return table[h];
        h = (h + 1) & mask;
    }
    return -1;
}

static int parse(slm_gguf *g, slm_err *err) {
    cursor c = { g->base, g->base + g->size, err };
    uint32_t magic;
    if (g->size < 4 || rd_u32(&c, &magic))
        return slm_err_set(err, SLM_EFORMAT, "file is too short to be GGUF (%zu bytes)", g->size);
    if (memcmp(g->base, "GGUF", 4))
        return slm_err_set(err, SLM_EFORMAT, "not a GGUF file (bad magic)");
    if (rd_u32(&c, &g->version))
        return slm_err_set(err, SLM_EFORMAT, "header ends past end of file (version)");
    if (g->version == 1)
        return slm_err_set(err, SLM_EUNSUPPORTED, "GGUF version 1 is not supported (convert the file to v3)");
    if (g->version != 2 && g->version != 3)
        return slm_err_set(err, SLM_EFORMAT, "unknown GGUF version %u", g->version);
    uint64_t nt, nkv;
    if (rd_u64(&c, &nt) || rd_u64(&c, &nkv))
        return slm_err_set(err, SLM_EFORMAT, "header ends past end of file (counts)");
    /* a key/value needs >= 8+1+4+1 bytes, a tensor info >= 8+1+4+8+4+8 */
    if (nkv > left(&c) / 14)
        return slm_err_set(err, SLM_EFORMAT, "metadata count %llu exceeds what the file can hold", (unsigned long long)nkv);
    if (nt > left(&c) / 33)
        return slm_err_set(err, SLM_EFORMAT, "tensor count %llu exceeds what the file can hold", (unsigned long long)nt);
    g->n_kv = (int64_t)nkv;
    g->n_tensors = (int64_t)nt;
    if (nkv && !(g->kvs = slm_calloc(nkv, sizeof *g->kvs)))
        return slm_err_set(err, SLM_ENOMEM, "out of memory reading metadata");
    for (int64_t i = 0; i < g->n_kv; i++) {
        int rc = parse_kv(&c, g, i);
        if (rc) return rc;
    }
    /* heap and stack addresses differ from run to run (ASLR) */
    g->hash_seed = mix64((uint64_t)(uintptr_t)g ^ ((uint64_t)(uintptr_t)&c << 17));
    int rc0 = build_index(g->hash_seed, g->kvs, sizeof *g->kvs, g->n_kv, &g->kv_index, &g->kv_mask, "metadata key", err);
    if (rc0) return rc0;
    g->alignment = SLM_GGUF_DEFAULT_ALIGN;
    int64_t ai = slm_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        uint32_t a;
        if (g->kvs[ai].type != SLM_GGUF_U32)
            return slm_err_set(err, SLM_EFORMAT, "key 'general.alignment' has type %s, expected u32",
                               vtype_names[g->kvs[ai].type]);
        memcpy(&a, g->kvs[ai].val, 4);
        if (a == 0 || (a & (a - 1)) || a > (1u << 20))
            return slm_err_set(err, SLM_EFORMAT, "key 'general.alignment' = %u is not a power of two up to 1 MiB", a);
        g->alignment = a;
    }
    if (nt && !(g->tensors = slm_calloc(nt, sizeof *g->tensors)))
        return slm_err_set(err, SLM_ENOMEM, "out of memory reading the tensor table");
    for (int64_t i = 0; i < g->n_tensors; i++) {
        int rc = parse_tensor(&c, g, i);
        if (rc) return rc;
    }
    rc0 = build_index(g->hash_seed, g->tensors, sizeof *g->tensors, g->n_tensors, &g->t_index, &g->t_mask, "tensor name", err);
    if (rc0) return rc0;
    uint64_t pos = (uint64_t)(c.p - g->base);
    g->data_offset = (pos + g->alignment - 1) / g->alignment * g->alignment;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        slm_gguf_tensor *t = &g->tensors[i];
        char name[128];
        name_fmt(t->name, name, sizeof name);
        if (t->offset % g->alignment)
            return slm_err_set(err, SLM_EFORMAT, "tensor '%s' data offset %llu is not aligned to %llu", name,
                               (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (g->data_offset > g->size || t->offset > g->size - g->data_offset ||
            t->nbytes > g->size - g->data_offset - t->offset)
            return slm_err_set(err, SLM_EFORMAT, "tensor '%s' data ends past end of file", name);
        t->data = g->base + g->data_offset + t->offset;
    }
    return 0;
}

static int open_common(slm_gguf *g, slm_gguf **out, slm_err *err) {
    int rc = parse(g, err);
    if (rc) {
        slm_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int slm_gguf_open_mem(const void *buf, size_t size, slm_gguf **out, slm_err *err) {
    *out = NULL;
    static const uint8_t no_bytes[1];
    if (!buf && size) return slm_err_set(err, SLM_EINVAL, "NULL buffer of %zu bytes", size);
    if (!buf) buf = no_bytes; /* NULL + 0 is undefined behaviour; empty is just too short */
    slm_gguf *g = slm_calloc(1, sizeof *g);
    if (!g) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    g->base = buf;
    g->size = size;
    return open_common(g, out, err);
}

int slm_gguf_open(const char *path, slm_gguf **out, slm_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return slm_err_set(err, SLM_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return slm_err_set(err, SLM_EIO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return slm_err_set(err, SLM_EIO, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return slm_err_set(err, SLM_EFORMAT, "'%s' is empty", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return slm_err_set(err, SLM_EIO, "cannot map '%s': %s", path, strerror(e));
    slm_gguf *g = slm_calloc(1, sizeof *g);
    if (!g) {
        munmap(m, (size_t)st.st_size);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    g->base = m;
    g->size = (size_t)st.st_size;
    g->mapped = true;
    return open_common(g, out, err);
}

void slm_gguf_close(slm_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; g->kvs && i < g->n_kv; i++) slm_free(g->kvs[i].str_off);
    slm_free(g->kvs);
    slm_free(g->tensors);
    slm_free(g->kv_index);
    slm_free(g->t_index);
    if (g->mapped) munmap((void *)g->base, g->size);
    slm_free(g);
}

uint32_t slm_gguf_version(const slm_gguf *g) { return g->version; }
uint64_t slm_gguf_file_size(const slm_gguf *g) { return g->size; }
uint64_t slm_gguf_alignment(const slm_gguf *g) { return g->alignment; }
uint64_t slm_gguf_data_offset(const slm_gguf *g) { return g->data_offset; }

int64_t slm_gguf_file_offset(const slm_gguf *g, const void *p) {
    const uint8_t *q = p;
    if (!g->mapped || q < g->base || q >= g->base + g->size) return -1;
    return (int64_t)(q - g->base);
}
int64_t slm_gguf_n_kv(const slm_gguf *g) { return g->n_kv; }
int64_t slm_gguf_n_tensors(const slm_gguf *g) { return g->n_tensors; }

int64_t slm_gguf_find_key(const slm_gguf *g, const char *key) {
    return index_find(g->hash_seed, g->kvs, sizeof *g->kvs, g->kv_index, g->kv_mask, key);
}

slm_gguf_str slm_gguf_key(const slm_gguf *g, int64_t i) { return g->kvs[i].key; }
slm_gguf_vtype slm_gguf_kv_type(const slm_gguf *g, int64_t i) { return g->kvs[i].type; }
slm_gguf_vtype slm_gguf_kv_arr_type(const slm_gguf *g, int64_t i) { return g->kvs[i].etype; }
uint64_t slm_gguf_kv_arr_n(const slm_gguf *g, int64_t i) { return g->kvs[i].type == SLM_GGUF_ARR ? g->kvs[i].n : 0; }

slm_gguf_str slm_gguf_kv_str(const slm_gguf *g, int64_t i) {
    slm_gguf_str s = { "", 0 };
    if (g->kvs[i].type == SLM_GGUF_STR) {
        memcpy(&s.len, g->kvs[i].val, 8);
        s.ptr = (const char *)g->kvs[i].val + 8;
    }
    return s;
}

static double num_at(slm_gguf_vtype t, const uint8_t *p) {
    switch (t) {
    case SLM_GGUF_U8: return *p;
    case SLM_GGUF_I8: return (int8_t)*p;
    case SLM_GGUF_BOOL: return *p != 0;
    case SLM_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case SLM_GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case SLM_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case SLM_GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SLM_GGUF_F32: { float v; memcpy(&v, p, 4); return v; }
    case SLM_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    case SLM_GGUF_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case SLM_GGUF_F64: { double v; memcpy(&v, p, 8); return v; }
    default: return 0;
    }
}

double slm_gguf_kv_number(const slm_gguf *g, int64_t i) { return num_at(g->kvs[i].type, g->kvs[i].val); }

static int lookup(const slm_gguf *g, const char *key, int64_t *i, slm_err *err) {
    *i = slm_gguf_find_key(g, key);
    if (*i < 0) return slm_err_set(err, SLM_ENOTFOUND, "key '%s' is missing", key);
    return 0;
}

static int wrong_type(const slm_gguf *g, int64_t i, const char *key, const char *want, slm_err *err) {
    return slm_err_set(err, SLM_EFORMAT, "key '%s' has type %s, expected %s", key,
                       slm_gguf_vtype_name(g->kvs[i].type), want);
}

static int get_int(const slm_gguf *g, const char *key, int64_t *out, int64_t *idx, slm_err *err) {
    int rc = lookup(g, key, idx, err);
    if (rc) return rc;
    const kv *e = &g->kvs[*idx];
    const uint8_t *p = e->val;
    switch (e->type) {
    case SLM_GGUF_U8: *out = *p; return 0;
    case SLM_GGUF_I8: *out = (int8_t)*p; return 0;
    case SLM_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case SLM_GGUF_I16: { int16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case SLM_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case SLM_GGUF_I32: { int32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case SLM_GGUF_I64: { int64_t v; memcpy(&v, p, 8); *out = v; return 0; }
    case SLM_GGUF_U64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX) return slm_err_set(err, SLM_EFORMAT, "key '%s' = %llu is out of range", key, (unsigned long long)v);
        *out = (int64_t)v;
        return 0;
    }
    default: return wrong_type(g, *idx, key, "an integer", err);
    }
}

int slm_gguf_get_i64(const slm_gguf *g, const char *key, int64_t *out, slm_err *err) {
    int64_t i;
    return get_int(g, key, out, &i, err);
}

int slm_gguf_get_u32(const slm_gguf *g, const char *key, uint32_t *out, slm_err *err) {
    int64_t v, i;
    int rc = get_int(g, key, &v, &i, err);
    if (rc) return rc;
    if (v < 0 || v > (int64_t)UINT32_MAX)
        return slm_err_set(err, SLM_EFORMAT, "key '%s' = %lld is out of range", key, (long long)v);
    *out = (uint32_t)v;
    return 0;
}

int slm_gguf_get_f32(const slm_gguf *g, const char *key, float *out, slm_err *err) {
    int64_t i;
    int rc = lookup(g, key, &i, err);
    if (rc) return rc;
    if (g->kvs[i].type != SLM_GGUF_F32 && g->kvs[i].type != SLM_GGUF_F64)
        return wrong_type(g, i, key, "f32", err);
    *out = (float)num_at(g->kvs[i].type, g->kvs[i].val);
    return 0;
}

int slm_gguf_get_bool(const slm_gguf *g, const char *key, bool *out, slm_err *err) {
    int64_t i;
    int rc = lookup(g, key, &i, err);
    if (rc) return rc;
    if (g->kvs[i].type != SLM_GGUF_BOOL) return wrong_type(g, i, key, "bool", err);
    *out = g->kvs[i].val[0] != 0;
    return 0;
}

int slm_gguf_get_str(const slm_gguf *g, const char *key, slm_gguf_str *out, slm_err *err) {
    int64_t i;
    int rc = lookup(g, key, &i, err);
    if (rc) return rc;
    if (g->kvs[i].type != SLM_GGUF_STR) return wrong_type(g, i, key, "string", err);
    *out = slm_gguf_kv_str(g, i);
    return 0;
}

int slm_gguf_get_str_dup(const slm_gguf *g, const char *key, char **out, slm_err *err) {
    slm_gguf_str s;
    int rc = slm_gguf_get_str(g, key, &s, err);
    if (rc) return rc;
    *out = slm_strndup(s.ptr, (size_t)s.len);
    return *out ? 0 : slm_err_set(err, SLM_ENOMEM, "out of memory");
}

int slm_gguf_get_arr(const slm_gguf *g, const char *key, slm_gguf_vtype *etype, uint64_t *n, slm_err *err) {
    int64_t i;
    int rc = lookup(g, key, &i, err);
    if (rc) return rc;
    if (g->kvs[i].type != SLM_GGUF_ARR) return wrong_type(g, i, key, "array", err);
    *etype = g->kvs[i].etype;
    *n = g->kvs[i].n;
    return 0;
}

const void *slm_gguf_arr_data(const slm_gguf *g, int64_t i) {
    return g->kvs[i].type == SLM_GGUF_ARR ? g->kvs[i].adata : NULL;
}

slm_gguf_str slm_gguf_arr_str(const slm_gguf *g, int64_t i, uint64_t j) {
    slm_gguf_str s = { "", 0 };
    const kv *e = &g->kvs[i];
    if (e->type != SLM_GGUF_ARR || e->etype != SLM_GGUF_STR || j >= e->n) return s;
    const uint8_t *p = e->adata + e->str_off[j];
    memcpy(&s.len, p, 8);
    s.ptr = (const char *)p + 8;
    return s;
}

const slm_gguf_tensor *slm_gguf_tensor_at(const slm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const slm_gguf_tensor *slm_gguf_find_tensor(const slm_gguf *g, const char *name) {
    int64_t i = index_find(g->hash_seed, g->tensors, sizeof *g->tensors, g->t_index, g->t_mask, name);
    return i >= 0 ? &g->tensors[i] : NULL;
}
