/*
 * gguf_write.c — GGUF v3 writer.
 *
 * Key/values are encoded into one growing byte buffer as they are set (a
 * later set of the same key marks the earlier one dead); tensors are a list
 * of (name, type, shape, data pointer). writer_write lays out header, kv,
 * tensor infos, pads to the alignment and streams the tensor data, each
 * tensor padded to the alignment, to a temporary file renamed into place so
 * that a failed write never leaves a half file under the final name.
 */
#include "gguf/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels/types.h"
#include "util/alloc.h"
#include "util/err.h"

typedef struct wkv {
    char *key;
    size_t off, len;     /* encoded type+value bytes in w->buf */
    bool dead;
} wkv;

typedef struct wtensor {
    char *name;
    int32_t type;
    uint32_t n_dims;
    int64_t ne[SLM_GGUF_MAX_DIMS];
    const void *data;
    uint64_t nbytes, offset;
} wtensor;

struct slm_gguf_writer {
    unsigned char *buf; size_t len, cap;   /* encoded values */
    wkv *kvs; int64_t n_kv, cap_kv;
    wtensor *ts; int64_t n_t, cap_t;
    uint64_t alignment;
};

slm_gguf_writer *slm_gguf_writer_new(void) {
    slm_gguf_writer *w = slm_calloc(1, sizeof *w);
    if (w) w->alignment = SLM_GGUF_DEFAULT_ALIGN;
    return w;
}

void slm_gguf_writer_free(slm_gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) slm_free(w->kvs[i].key);
    for (int64_t i = 0; i < w->n_t; i++) slm_free(w->ts[i].name);
    slm_free(w->kvs);
    slm_free(w->ts);
    slm_free(w->buf);
    slm_free(w);
}

static int put(slm_gguf_writer *w, const void *p, size_t n) {
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap : 4096;
        while (nc < w->len + n) nc *= 2;
        unsigned char *nb = slm_realloc(w->buf, nc);
        if (!nb) return SLM_ENOMEM;
        w->buf = nb;
        w->cap = nc;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static int put_u32(slm_gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static int put_u64(slm_gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static int put_str(slm_gguf_writer *w, const char *s, uint64_t n) {
    return put_u64(w, n) || put(w, s, (size_t)n) ? SLM_ENOMEM : 0;
}

/* Starts a kv: records the key. */
static int begin_kv(slm_gguf_writer *w, const char *key) {
    if (w->n_kv == w->cap_kv) {
        int64_t nc = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *n = slm_realloc(w->kvs, (size_t)nc * sizeof *n);
        if (!n) return SLM_ENOMEM;
        w->kvs = n;
        w->cap_kv = nc;
    }
    wkv *e = &w->kvs[w->n_kv];
    e->key = slm_strdup(key);
    if (!e->key) return SLM_ENOMEM;
    e->off = w->len;
    e->dead = false;
    w->n_kv++;
    return 0;
}

static int end_kv(slm_gguf_writer *w, int rc) {
    wkv *e = &w->kvs[w->n_kv - 1];
    if (rc) { /* roll back */
        w->len = e->off;
        slm_free(e->key);
        w->n_kv--;
        return SLM_ENOMEM;
    }
    e->len = w->len - e->off;
    /* only now that the new value is in place, retire an older one */
    for (int64_t i = 0; i < w->n_kv - 1; i++)
        if (!w->kvs[i].dead && !strcmp(w->kvs[i].key, e->key)) w->kvs[i].dead = true;
    return 0;
}

/* general.alignment drives the layout, so only set_alignment writes it. */
static bool reserved(const char *key) { return !strcmp(key, "general.alignment"); }

static int set_scalar(slm_gguf_writer *w, const char *key, slm_gguf_vtype t, const void *v) {
    if (begin_kv(w, key)) return SLM_ENOMEM;
    return end_kv(w, put_u32(w, t) || put(w, v, slm_gguf_vtype_size(t)));
}

int slm_gguf_writer_set_alignment(slm_gguf_writer *w, uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) || alignment > (1u << 20)) return SLM_EINVAL;
    int rc = set_scalar(w, "general.alignment", SLM_GGUF_U32, &alignment);
    if (!rc) w->alignment = alignment;
    return rc;
}

int slm_gguf_set_u32(slm_gguf_writer *w, const char *key, uint32_t v) {
    return reserved(key) ? slm_gguf_writer_set_alignment(w, v) : set_scalar(w, key, SLM_GGUF_U32, &v);
}
int slm_gguf_set_i32(slm_gguf_writer *w, const char *key, int32_t v) {
    return reserved(key) ? SLM_EINVAL : set_scalar(w, key, SLM_GGUF_I32, &v);
}
int slm_gguf_set_u64(slm_gguf_writer *w, const char *key, uint64_t v) {
    return reserved(key) ? SLM_EINVAL : set_scalar(w, key, SLM_GGUF_U64, &v);
}
int slm_gguf_set_f32(slm_gguf_writer *w, const char *key, float v) {
    return reserved(key) ? SLM_EINVAL : set_scalar(w, key, SLM_GGUF_F32, &v);
}
int slm_gguf_set_bool(slm_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v;
    return reserved(key) ? SLM_EINVAL : set_scalar(w, key, SLM_GGUF_BOOL, &b);
}

int slm_gguf_set_str(slm_gguf_writer *w, const char *key, const char *v) {
    if (reserved(key)) return SLM_EINVAL;
    if (begin_kv(w, key)) return SLM_ENOMEM;
    return end_kv(w, put_u32(w, SLM_GGUF_STR) || put_str(w, v, strlen(v)));
}

int slm_gguf_set_arr(slm_gguf_writer *w, const char *key, slm_gguf_vtype etype, const void *data, uint64_t n) {
    size_t es = slm_gguf_vtype_size(etype), nb;
    if (!es || !slm_mul_ok(n, es, &nb) || reserved(key)) return SLM_EINVAL;
    if (begin_kv(w, key)) return SLM_ENOMEM;
    return end_kv(w, put_u32(w, SLM_GGUF_ARR) || put_u32(w, etype) || put_u64(w, n) || put(w, data, nb));
}

int slm_gguf_set_arr_str(slm_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens, uint64_t n) {
    if (reserved(key)) return SLM_EINVAL;
    if (begin_kv(w, key)) return SLM_ENOMEM;
    int rc = put_u32(w, SLM_GGUF_ARR) || put_u32(w, SLM_GGUF_STR) || put_u64(w, n);
    for (uint64_t i = 0; !rc && i < n; i++) rc = put_str(w, strs[i], lens ? lens[i] : strlen(strs[i]));
    return end_kv(w, rc);
}

/* Re-encodes one value of src starting at p (type t); returns bytes consumed
 * via *adv. The source was validated when it was opened. */
static int copy_value(slm_gguf_writer *w, slm_gguf_vtype t, const unsigned char *p, size_t *adv) {
    if (t == SLM_GGUF_STR) {
        uint64_t n;
        memcpy(&n, p, 8);
        *adv = 8 + n;
        return put(w, p, *adv);
    }
    if (t == SLM_GGUF_ARR) {
        uint32_t et;
        uint64_t n;
        memcpy(&et, p, 4);
        memcpy(&n, p + 4, 8);
        size_t off = 12;
        if (put(w, p, 12)) return SLM_ENOMEM;
        for (uint64_t j = 0; j < n; j++) {
            size_t a;
            if (copy_value(w, (slm_gguf_vtype)et, p + off, &a)) return SLM_ENOMEM;
            off += a;
        }
        *adv = off;
        return 0;
    }
    *adv = slm_gguf_vtype_size(t);
    return put(w, p, *adv);
}

int slm_gguf_copy_kv(slm_gguf_writer *w, const slm_gguf *src, int64_t i) {
    slm_gguf_str k = slm_gguf_key(src, i);
    char key[1024];
    if (k.len >= sizeof key || memchr(k.ptr, 0, (size_t)k.len)) return SLM_EINVAL; /* a NUL would cut the key */
    memcpy(key, k.ptr, k.len);
    key[k.len] = 0;
    if (reserved(key)) return 0; /* the writer decides */
    slm_gguf_vtype t = slm_gguf_kv_type(src, i);
    /* locate the encoded value: it follows the key string and the type u32 */
    const unsigned char *val = (const unsigned char *)k.ptr + k.len + 4;
    if (begin_kv(w, key)) return SLM_ENOMEM;
    size_t adv;
    return end_kv(w, put_u32(w, t) || copy_value(w, t, val, &adv));
}

int slm_gguf_add_tensor(slm_gguf_writer *w, const char *name, int32_t type, uint32_t n_dims, const int64_t *ne,
                        const void *data, uint64_t nbytes) {
    if (n_dims == 0 || n_dims > SLM_GGUF_MAX_DIMS || !slm_type_known(type)) return SLM_EINVAL;
    for (int64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->ts[i].name, name)) return SLM_EINVAL; /* the reader rejects duplicates */
    uint64_t rows = 1;
    for (uint32_t d = 1; d < n_dims; d++) rows *= (uint64_t)ne[d];
    if (slm_row_size(type, ne[0]) * rows != nbytes) return SLM_EINVAL;
    if (w->n_t == w->cap_t) {
        int64_t nc = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *n = slm_realloc(w->ts, (size_t)nc * sizeof *n);
        if (!n) return SLM_ENOMEM;
        w->ts = n;
        w->cap_t = nc;
    }
    wtensor *t = &w->ts[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = slm_strdup(name);
    if (!t->name) return SLM_ENOMEM;
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < SLM_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    w->n_t++;
    return 0;
}

static int fwrite_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

static int write_pad(FILE *f, uint64_t pos, uint64_t align) {
    static const unsigned char zeros[64];
    uint64_t pad = (align - pos % align) % align;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        if (fwrite_all(f, zeros, k)) return -1;
        pad -= k;
    }
    return 0;
}

int slm_gguf_writer_write(slm_gguf_writer *w, const char *path, slm_err *err) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp)
        return slm_err_set(err, SLM_EINVAL, "output path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) return slm_err_set(err, SLM_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    int64_t live = 0;
    for (int64_t i = 0; i < w->n_kv; i++) live += !w->kvs[i].dead;
    uint32_t version = 3;
    uint64_t nt = (uint64_t)w->n_t, nkv = (uint64_t)live;
    uint64_t pos = 0, off = 0;
    int bad = fwrite_all(f, "GGUF", 4) || fwrite_all(f, &version, 4) || fwrite_all(f, &nt, 8) || fwrite_all(f, &nkv, 8);
    pos = 24;
    for (int64_t i = 0; !bad && i < w->n_kv; i++) {
        if (w->kvs[i].dead) continue;
        uint64_t kl = strlen(w->kvs[i].key);
        bad = fwrite_all(f, &kl, 8) || fwrite_all(f, w->kvs[i].key, kl) ||
              fwrite_all(f, w->buf + w->kvs[i].off, w->kvs[i].len);
        pos += 8 + kl + w->kvs[i].len;
    }
    for (int64_t i = 0; !bad && i < w->n_t; i++) {
        wtensor *t = &w->ts[i];
        uint64_t nl = strlen(t->name);
        uint32_t type = (uint32_t)t->type;
        t->offset = off;
        bad = fwrite_all(f, &nl, 8) || fwrite_all(f, t->name, nl) || fwrite_all(f, &t->n_dims, 4) ||
              fwrite_all(f, t->ne, 8 * t->n_dims) || fwrite_all(f, &type, 4) || fwrite_all(f, &off, 8);
        pos += 8 + nl + 4 + 8 * t->n_dims + 4 + 8;
        off += (t->nbytes + w->alignment - 1) / w->alignment * w->alignment;
    }
    if (!bad && w->n_t) bad = write_pad(f, pos, w->alignment);
    for (int64_t i = 0; !bad && i < w->n_t; i++) {
        bad = fwrite_all(f, w->ts[i].data, w->ts[i].nbytes) || write_pad(f, w->ts[i].nbytes, w->alignment);
    }
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return slm_err_set(err, SLM_EIO, "cannot write '%s': %s", path, strerror(e));
    }
    return 0;
}
