/*
 * safetensors.c — the .safetensors reader (see safetensors.h).
 *
 * Format: u64 little-endian header length N, N bytes of JSON, then the data
 * section. The JSON maps each tensor name to {"dtype", "shape",
 * "data_offsets": [begin, end]} with offsets relative to the data section;
 * an optional "__metadata__" entry holds strings and is skipped. The file is
 * mmapped read-only and nothing is trusted: N must fit in the file (and stay
 * under the format's 100 MB header limit), every shape entry must be a
 * non-negative integer, the element count times the element size must not
 * overflow and must equal end - begin, and end must lie inside the data
 * section. Tensor data is then read in place; reads go through memcpy
 * because the format does not align tensors.
 *
 * Lookup is a linear scan: a checkpoint holds at most a few thousand
 * tensors and convert looks each one up once.
 */
#include "convert/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/fp16.h"

#define ST_MAX_HEADER 100000000ull

typedef struct st_file {
    char *path;         /* owned                                  */
    void *map;          /* the whole file, PROT_READ              */
    size_t size;        /* bytes                                  */
} st_file;

typedef struct st_alias {
    char *name, *target;   /* owned: a name saved once under another's */
} st_alias;

struct slm_st {
    st_file *files;  int32_t n_files, cap_files;
    slm_st_tensor *ts; int32_t n_ts, cap_ts;
    st_alias *aliases; int32_t n_aliases, cap_aliases;
};

static const struct { const char *name; size_t size; } DTYPES[SLM_ST_NDTYPES] = {
    [SLM_ST_F32] = { "F32", 4 },   [SLM_ST_F16] = { "F16", 2 },   [SLM_ST_BF16] = { "BF16", 2 },
    [SLM_ST_F64] = { "F64", 8 },   [SLM_ST_I64] = { "I64", 8 },   [SLM_ST_I32] = { "I32", 4 },
    [SLM_ST_I16] = { "I16", 2 },   [SLM_ST_I8] = { "I8", 1 },     [SLM_ST_U64] = { "U64", 8 },
    [SLM_ST_U32] = { "U32", 4 },   [SLM_ST_U16] = { "U16", 2 },   [SLM_ST_U8] = { "U8", 1 },
    [SLM_ST_BOOL] = { "BOOL", 1 }, [SLM_ST_F8_E4M3] = { "F8_E4M3", 1 }, [SLM_ST_F8_E5M2] = { "F8_E5M2", 1 },
};

const char *slm_st_dtype_name(slm_st_dtype t) {
    return (unsigned)t < SLM_ST_NDTYPES ? DTYPES[t].name : "?";
}

bool slm_st_dtype_readable(slm_st_dtype t) {
    return t == SLM_ST_F32 || t == SLM_ST_F16 || t == SLM_ST_BF16;
}

int slm_st_new(slm_st **out, slm_err *err) {
    *out = slm_calloc(1, sizeof **out);
    return *out ? 0 : slm_err_set(err, SLM_ENOMEM, "out of memory");
}

void slm_st_close(slm_st *st) {
    if (!st) return;
    for (int32_t i = 0; i < st->n_ts; i++) slm_free(st->ts[i].name);
    for (int32_t i = 0; i < st->n_aliases; i++) {
        slm_free(st->aliases[i].name);
        slm_free(st->aliases[i].target);
    }
    slm_free(st->aliases);
    for (int32_t i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        slm_free(st->files[i].path);
    }
    slm_free(st->ts);
    slm_free(st->files);
    slm_free(st);
}

int32_t slm_st_n_tensors(const slm_st *st) { return st->n_ts; }

const slm_st_tensor *slm_st_tensor_at(const slm_st *st, int32_t i) {
    return i >= 0 && i < st->n_ts ? &st->ts[i] : NULL;
}

static const slm_st_tensor *find_direct(const slm_st *st, const char *name) {
    for (int32_t i = 0; i < st->n_ts; i++)
        if (!strcmp(st->ts[i].name, name)) return &st->ts[i];
    return NULL;
}

const slm_st_tensor *slm_st_find(const slm_st *st, const char *name) {
    const slm_st_tensor *t = find_direct(st, name);
    for (int32_t i = 0; !t && i < st->n_aliases; i++)
        if (!strcmp(st->aliases[i].name, name)) t = find_direct(st, st->aliases[i].target);
    return t;
}

const char *slm_st_file_path(const slm_st *st, int32_t file) {
    return file >= 0 && file < st->n_files ? st->files[file].path : "?";
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool json_u53(const cJSON *e, uint64_t *out) {
    if (!cJSON_IsNumber(e)) return false;
    double d = e->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

/* Parses one header entry into t (name already set); *begin: the data's
 * offset in the data section. */
static int parse_entry(const cJSON *e, const char *path, uint64_t data_size, slm_st_tensor *t, uint64_t *begin_out,
                       slm_err *err) {
    const char *name = t->name;
    if (!cJSON_IsObject(e)) return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    const char *dt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "dtype"));
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dt) return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s' has no dtype", path, name);
    int k;
    for (k = 0; k < SLM_ST_NDTYPES; k++)
        if (!strcmp(dt, DTYPES[k].name)) break;
    if (k == SLM_ST_NDTYPES)
        return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s' has unknown dtype '%.32s'", path, name, dt);
    t->dtype = (slm_st_dtype)k;
    if (!cJSON_IsArray(shape)) return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s' has no shape array", path, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > SLM_ST_MAX_DIMS)
        return slm_err_set(err, SLM_EUNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most %d)", path, name, nd,
                           SLM_ST_MAX_DIMS);
    t->n_dims = (uint32_t)nd;
    uint64_t n = 1, nbytes;
    for (int d = 0; d < nd; d++) {
        uint64_t v;
        if (!json_u53(cJSON_GetArrayItem(shape, d), &v) || v > (uint64_t)INT64_MAX)
            return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
        t->shape[d] = (int64_t)v;
        if (__builtin_mul_overflow(n, v, &n) || n > (uint64_t)INT64_MAX)
            return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s': element count overflows", path, name);
    }
    for (int d = nd; d < SLM_ST_MAX_DIMS; d++) t->shape[d] = 1;
    t->n_elems = (int64_t)n;
    if (__builtin_mul_overflow(n, (uint64_t)DTYPES[k].size, &nbytes))
        return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s': byte size overflows", path, name);
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_u53(cJSON_GetArrayItem(offs, 0), &begin) ||
        !json_u53(cJSON_GetArrayItem(offs, 1), &end))
        return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s': data_offsets is not [begin, end]", path, name);
    if (begin > end || end > data_size)
        return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the %llu data bytes",
                           path, name, (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)data_size);
    if (end - begin != nbytes)
        return slm_err_set(err, SLM_EFORMAT, "%s: tensor '%s': %llu data bytes, but shape and dtype %s need %llu", path,
                           name, (unsigned long long)(end - begin), DTYPES[k].name, (unsigned long long)nbytes);
    t->nbytes = nbytes;
    *begin_out = begin;
    return 0;
}

static int grow(void **p, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return 0;
    int32_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *n = slm_realloc(*p, (size_t)nc * elem);
    if (!n) return SLM_ENOMEM;
    *p = n;
    *cap = nc;
    return 0;
}

int slm_st_add_file(slm_st *st, const char *path, slm_err *err) {
    int rc = 0, fd = -1;
    void *map = NULL;
    size_t size = 0;
    cJSON *hdr = NULL;
    int32_t n_before = st->n_ts, n_aliases_before = st->n_aliases;
    if (grow((void **)&st->files, &st->cap_files, st->n_files + 1, sizeof *st->files))
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return slm_err_set(err, SLM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = slm_err_set(err, SLM_EIO, "%s: not a regular file", path);
        goto fail;
    }
    size = (size_t)sb.st_size;
    if (size < 8) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: %zu bytes is too short for a safetensors file", path, size);
        goto fail;
    }
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        map = NULL;
        rc = slm_err_set(err, SLM_EIO, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    const unsigned char *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > size - 8 || hlen > ST_MAX_HEADER) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: header length %llu runs past the end of the %zu-byte file", path,
                         (unsigned long long)hlen, size);
        goto fail;
    }
    const char *end = NULL;
    hdr = cJSON_ParseWithLengthOpts((const char *)p + 8, (size_t)hlen, &end, 0);
    if (!hdr || !cJSON_IsObject(hdr)) {
        rc = slm_err_set(err, SLM_EFORMAT, "%s: header is not a JSON object (near byte %zu)", path,
                         hdr || !end ? (size_t)8 : (size_t)(end - (const char *)p));
        goto fail;
    }
    uint64_t data_off = 8 + hlen, data_size = size - data_off;
    const cJSON *e;
    cJSON_ArrayForEach(e, hdr) {
        if (!e->string) continue;
        if (!strcmp(e->string, "__metadata__")) continue;
        if (find_direct(st, e->string)) {
            rc = slm_err_set(err, SLM_EFORMAT, "%s: tensor '%.200s' appears twice in the checkpoint", path, e->string);
            goto fail;
        }
        if (grow((void **)&st->ts, &st->cap_ts, st->n_ts + 1, sizeof *st->ts)) {
            rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
            goto fail;
        }
        slm_st_tensor *t = &st->ts[st->n_ts];
        memset(t, 0, sizeof *t);
        if (!(t->name = slm_strdup(e->string))) {
            rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
            goto fail;
        }
        st->n_ts++;
        uint64_t begin = 0;
        if ((rc = parse_entry(e, path, data_size, t, &begin, err))) goto fail;
        t->data = p + data_off + begin;
        t->file = st->n_files;
    }
    /* safetensors' save_model keeps one copy of shared tensors and records
     * the dropped names in __metadata__ as name -> kept name */
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(hdr, "__metadata__")) {
        const char *target = cJSON_GetStringValue(e);
        if (!e->string || !target || find_direct(st, e->string) || !find_direct(st, target)) continue;
        if (grow((void **)&st->aliases, &st->cap_aliases, st->n_aliases + 1, sizeof *st->aliases)) {
            rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
            goto fail;
        }
        st_alias *a = &st->aliases[st->n_aliases];
        a->name = slm_strdup(e->string);
        a->target = slm_strdup(target);
        if (!a->name || !a->target) {
            slm_free(a->name);
            slm_free(a->target);
            rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
            goto fail;
        }
        st->n_aliases++;
    }
    st_file *f = &st->files[st->n_files];
    if (!(f->path = slm_strdup(path))) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
        goto fail;
    }
    f->map = map;
    f->size = size;
    st->n_files++;
    cJSON_Delete(hdr);
    close(fd);
    return 0;
fail:
    while (st->n_ts > n_before) slm_free(st->ts[--st->n_ts].name);
    while (st->n_aliases > n_aliases_before) {
        st->n_aliases--;
        slm_free(st->aliases[st->n_aliases].name);
        slm_free(st->aliases[st->n_aliases].target);
    }
    cJSON_Delete(hdr);
    if (map) munmap(map, size);
    if (fd >= 0) close(fd);
    return rc;
}

int slm_st_read_f32(const slm_st_tensor *t, int64_t first, int64_t n, float *out, slm_err *err) {
    if (!slm_st_dtype_readable(t->dtype))
        return slm_err_set(err, SLM_EUNSUPPORTED, "tensor '%s' has dtype %s (slm convert reads F32, F16 and BF16)",
                           t->name, slm_st_dtype_name(t->dtype));
    if (first < 0 || n < 0 || first > t->n_elems || n > t->n_elems - first)
        return slm_err_set(err, SLM_ERANGE, "tensor '%s': elements [%lld, +%lld) are outside its %lld", t->name,
                           (long long)first, (long long)n, (long long)t->n_elems);
    const unsigned char *src = (const unsigned char *)t->data;
    if (t->dtype == SLM_ST_F32) {
        memcpy(out, src + (size_t)first * 4, (size_t)n * 4);
        return 0;
    }
    src += (size_t)first * 2;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        out[i] = t->dtype == SLM_ST_F16 ? slm_fp16_to_f32(h) : slm_bf16_to_f32(h);
    }
    return 0;
}
