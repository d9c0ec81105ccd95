/*
 * jsonschema_check.c — a small JSON Schema validator for the json_schema
 * scorer; the subset is listed in jsonschema_check.h.
 *
 * Two walks over cJSON trees. slm_eval_schema_verify walks the schema once
 * (when the scorer is made) and rejects what the checker would not honour.
 * slm_eval_schema_check walks schema and value together, depth first,
 * keeping the value's JSON pointer in a fixed buffer; the first violation
 * writes the message and later ones are not looked for. Alternatives
 * (anyOf/oneOf) are tried quietly, so the message names the alternative
 * keyword rather than one branch's failure. Patterns are compiled per check
 * so that nothing is shared between threads. $ref chains are bounded by a
 * depth limit (a schema can refer to itself).
 */
#include "eval/jsonschema_check.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define MAX_DEPTH 64

static const char *const k_types[] = { "null", "boolean", "object", "array", "number", "integer", "string", NULL };
static const char *const k_ignored[] = {
    "title", "description", "default", "examples", "format", "$schema", "$id", "$comment",
    "readOnly", "writeOnly", "deprecated", "contentMediaType", "contentEncoding", NULL
};

static bool in_list(const char *const *l, const char *s) {
    for (; *l; l++) if (strcmp(*l, s) == 0) return true;
    return false;
}

/* Appends "/seg" (RFC 6901 escaped) to path; returns the old length. */
static size_t path_push(char *path, size_t cap, const char *seg) {
    size_t old = strlen(path), o = old;
    if (o + 1 < cap) path[o++] = '/';
    for (const char *p = seg; *p && o + 2 < cap; p++) {
        if (*p == '~' || *p == '/') { path[o++] = '~'; path[o++] = *p == '~' ? '0' : '1'; }
        else path[o++] = *p;
    }
    path[o < cap ? o : cap - 1] = 0;
    return old;
}

static size_t path_push_idx(char *path, size_t cap, int i) {
    char b[24];
    snprintf(b, sizeof b, "%d", i);
    return path_push(path, cap, b);
}

/* Resolves a local reference "#", "#/a/b" (with ~0 ~1 and %25-free segments). */
static const cJSON *resolve_ref(const cJSON *root, const char *ref) {
    if (ref[0] != '#') return NULL;
    const char *p = ref + 1;
    const cJSON *cur = root;
    while (*p) {
        if (*p != '/') return NULL;
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof seg) {
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) { seg[n++] = p[1] == '0' ? '~' : '/'; p += 2; }
            else seg[n++] = *p++;
        }
        seg[n] = 0;
        if (cJSON_IsArray(cur)) {
            char *end;
            long i = strtol(seg, &end, 10);
            if (*end || end == seg || i < 0) return NULL;
            cur = cJSON_GetArrayItem(cur, (int)i);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
        } else return NULL;
        if (!cur) return NULL;
    }
    return cur;
}

/* ---- verify ------------------------------------------------------------------- */

typedef struct vctx { const cJSON *root; char path[512]; slm_err *err; } vctx;

static const char *vwhere(const vctx *v) { return v->path[0] ? v->path : "the root"; }

static int verify(vctx *v, const cJSON *s, int depth);

static int verify_sub(vctx *v, const cJSON *s, const char *seg, int depth) {
    size_t old = path_push(v->path, sizeof v->path, seg);
    int rc = verify(v, s, depth + 1);
    v->path[old] = 0;
    return rc;
}

static int verify_count(vctx *v, const cJSON *kw) {
    if (!cJSON_IsNumber(kw) || kw->valuedouble < 0 || kw->valuedouble != floor(kw->valuedouble))
        return slm_err_set(v->err, SLM_EINVAL, "schema %s: '%s' must be a non-negative integer", vwhere(v), kw->string);
    return 0;
}

static int verify(vctx *v, const cJSON *s, int depth) {
    if (depth > MAX_DEPTH) return slm_err_set(v->err, SLM_ERANGE, "schema %s: nested too deeply", vwhere(v));
    if (cJSON_IsBool(s)) return 0;
    if (!cJSON_IsObject(s))
        return slm_err_set(v->err, SLM_EINVAL, "schema %s: a schema must be an object or a boolean", vwhere(v));
    const cJSON *kw;
    int rc;
    cJSON_ArrayForEach(kw, s) {
        const char *k = kw->string;
        size_t old = path_push(v->path, sizeof v->path, k);
        rc = 0;
        if (in_list(k_ignored, k)) {
        } else if (strcmp(k, "$defs") == 0 || strcmp(k, "definitions") == 0 || strcmp(k, "properties") == 0) {
            if (!cJSON_IsObject(kw)) rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: must be an object", vwhere(v));
            const cJSON *sub;
            if (!rc) cJSON_ArrayForEach(sub, kw) if ((rc = verify_sub(v, sub, sub->string, depth))) break;
        } else if (strcmp(k, "type") == 0) {
            if (cJSON_IsString(kw)) {
                if (!in_list(k_types, kw->valuestring))
                    rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: unknown type '%s'", vwhere(v), kw->valuestring);
            } else if (cJSON_IsArray(kw) && cJSON_GetArraySize(kw) > 0) {
                const cJSON *t;
                cJSON_ArrayForEach(t, kw)
                    if (!cJSON_IsString(t) || !in_list(k_types, t->valuestring)) {
                        rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: unknown type in the array", vwhere(v));
                        break;
                    }
            } else rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: must be a type name or an array", vwhere(v));
        } else if (strcmp(k, "enum") == 0) {
            if (!cJSON_IsArray(kw)) rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: must be an array", vwhere(v));
        } else if (strcmp(k, "const") == 0) {
        } else if (strcmp(k, "required") == 0) {
            if (!cJSON_IsArray(kw)) rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: must be an array", vwhere(v));
            const cJSON *t;
            if (!rc) cJSON_ArrayForEach(t, kw)
                if (!cJSON_IsString(t)) { rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: names must be strings", vwhere(v)); break; }
        } else if (strcmp(k, "additionalProperties") == 0) {
            v->path[old] = 0;
            rc = verify_sub(v, kw, k, depth);
        } else if (strcmp(k, "items") == 0) {
            if (cJSON_IsArray(kw))
                rc = slm_err_set(v->err, SLM_EUNSUPPORTED, "schema %s: tuple 'items' is not supported", vwhere(v));
            else { v->path[old] = 0; rc = verify_sub(v, kw, k, depth); }
        } else if (!strcmp(k, "minItems") || !strcmp(k, "maxItems") || !strcmp(k, "minLength") ||
                   !strcmp(k, "maxLength")) {
            rc = verify_count(v, kw);
        } else if (!strcmp(k, "minimum") || !strcmp(k, "maximum") || !strcmp(k, "exclusiveMinimum") ||
                   !strcmp(k, "exclusiveMaximum")) {
            if (!cJSON_IsNumber(kw)) rc = slm_err_set(v->err, SLM_EUNSUPPORTED, "schema %s: must be a number", vwhere(v));
        } else if (strcmp(k, "pattern") == 0) {
            if (!cJSON_IsString(kw)) rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: must be a string", vwhere(v));
            else {
                int ec;
                PCRE2_SIZE off;
                pcre2_code *re = pcre2_compile((PCRE2_SPTR)kw->valuestring, PCRE2_ZERO_TERMINATED,
                                               PCRE2_UTF | PCRE2_UCP, &ec, &off, NULL);
                if (!re) {
                    PCRE2_UCHAR m[160];
                    pcre2_get_error_message(ec, m, sizeof m);
                    rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: pattern does not compile at offset %zu: %s",
                                     vwhere(v), (size_t)off, (const char *)m);
                }
                pcre2_code_free(re);
            }
        } else if (!strcmp(k, "anyOf") || !strcmp(k, "oneOf") || !strcmp(k, "allOf")) {
            if (!cJSON_IsArray(kw) || cJSON_GetArraySize(kw) == 0)
                rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: must be a non-empty array", vwhere(v));
            int i = 0;
            const cJSON *sub;
            if (!rc) cJSON_ArrayForEach(sub, kw) {
                size_t o2 = path_push_idx(v->path, sizeof v->path, i++);
                rc = verify(v, sub, depth + 1);
                v->path[o2] = 0;
                if (rc) break;
            }
        } else if (strcmp(k, "$ref") == 0) {
            if (!cJSON_IsString(kw) || !resolve_ref(v->root, kw->valuestring))
                rc = slm_err_set(v->err, SLM_EINVAL, "schema %s: $ref must be a local reference that resolves "
                                 "(\"#/$defs/name\")", vwhere(v));
        } else {
            rc = slm_err_set(v->err, SLM_EUNSUPPORTED, "schema %s: keyword '%s' is not supported", vwhere(v), k);
        }
        v->path[old] = 0;
        if (rc) return rc;
    }
    return 0;
}

int slm_eval_schema_verify(const cJSON *schema, slm_err *err) {
    vctx v = { .root = schema, .err = err };
    if (!schema) return slm_err_set(err, SLM_EINVAL, "schema: missing");
    return verify(&v, schema, 0);
}

/* ---- check -------------------------------------------------------------------- */

typedef struct cctx {
    const cJSON *root;       /* the schema document ($ref base)             */
    char   path[512];        /* JSON pointer of the value being checked     */
    char  *msg;              /* first violation goes here                   */
    size_t cap;
    int    quiet;            /* > 0 while trying anyOf/oneOf branches       */
    bool   have_msg;         /* msg already written                         */
    int    rc;               /* sticky hard error (ERANGE, ENOMEM)          */
} cctx;

static bool violation(cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool violation(cctx *c, const char *fmt, ...) {
    if (c->quiet || c->have_msg || !c->msg || !c->cap) return false;
    int n = snprintf(c->msg, c->cap, "%s: ", c->path[0] ? c->path : "/");
    if (n >= 0 && (size_t)n < c->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg + n, c->cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    c->have_msg = true;
    return false;
}

static const char *type_of(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsObject(v)) return "object";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    return "invalid";
}

static bool is_type(const cJSON *v, const char *t) {
    if (strcmp(t, "integer") == 0)
        return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
    return strcmp(t, type_of(v)) == 0;
}

static size_t utf8_count(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool check(cctx *c, const cJSON *s, const cJSON *v, int depth);

static bool check_at(cctx *c, const cJSON *s, const cJSON *v, const char *seg, int idx, int depth) {
    size_t old = seg ? path_push(c->path, sizeof c->path, seg) : path_push_idx(c->path, sizeof c->path, idx);
    bool ok = check(c, s, v, depth + 1);
    c->path[old] = 0;
    return ok;
}

static bool check_string(cctx *c, const cJSON *s, const cJSON *v) {
    const cJSON *kw;
    size_t len = utf8_count(v->valuestring);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "minLength")) && len < (size_t)kw->valuedouble)
        return violation(c, "string of %zu characters is shorter than minLength %g", len, kw->valuedouble);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "maxLength")) && len > (size_t)kw->valuedouble)
        return violation(c, "string of %zu characters is longer than maxLength %g", len, kw->valuedouble);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "pattern")) && cJSON_IsString(kw)) {
        int ec;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)kw->valuestring, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                       &ec, &off, NULL);
        pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
        if (!md) { pcre2_code_free(re); c->rc = SLM_ENOMEM; return false; }
        int r = pcre2_match(re, (PCRE2_SPTR)v->valuestring, strlen(v->valuestring), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        if (r < 0) return violation(c, "string does not match pattern /%s/", kw->valuestring);
    }
    return true;
}

static bool check_number(cctx *c, const cJSON *s, const cJSON *v) {
    const cJSON *kw;
    double x = v->valuedouble;
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "minimum")) && !(x >= kw->valuedouble))
        return violation(c, "%g is less than minimum %g", x, kw->valuedouble);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "maximum")) && !(x <= kw->valuedouble))
        return violation(c, "%g is greater than maximum %g", x, kw->valuedouble);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum")) && !(x > kw->valuedouble))
        return violation(c, "%g is not greater than exclusiveMinimum %g", x, kw->valuedouble);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum")) && !(x < kw->valuedouble))
        return violation(c, "%g is not less than exclusiveMaximum %g", x, kw->valuedouble);
    return true;
}

static bool check_object(cctx *c, const cJSON *s, const cJSON *v, int depth) {
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    const cJSON *it;
    cJSON_ArrayForEach(it, req)
        if (cJSON_IsString(it) && !cJSON_GetObjectItemCaseSensitive(v, it->valuestring))
            return violation(c, "required property '%s' is missing", it->valuestring);
    cJSON_ArrayForEach(it, v) {
        const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, it->string) : NULL;
        if (ps) {
            if (!check_at(c, ps, it, it->string, 0, depth)) return false;
        } else if (addl) {
            if (cJSON_IsFalse(addl)) {
                size_t old = path_push(c->path, sizeof c->path, it->string);
                violation(c, "additional property is not allowed");
                c->path[old] = 0;
                return false;
            }
            if (!check_at(c, addl, it, it->string, 0, depth)) return false;
        }
    }
    return true;
}

static bool check_array(cctx *c, const cJSON *s, const cJSON *v, int depth) {
    const cJSON *kw;
    size_t n = (size_t)cJSON_GetArraySize(v);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "minItems")) && n < (size_t)kw->valuedouble)
        return violation(c, "array of %zu items is shorter than minItems %g", n, kw->valuedouble);
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "maxItems")) && n > (size_t)kw->valuedouble)
        return violation(c, "array of %zu items is longer than maxItems %g", n, kw->valuedouble);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (items) {
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) if (!check_at(c, items, it, NULL, i++, depth)) return false;
    }
    return true;
}

static bool check(cctx *c, const cJSON *s, const cJSON *v, int depth) {
    if (c->rc) return false;
    if (depth > MAX_DEPTH) { c->rc = SLM_ERANGE; return false; }
    if (cJSON_IsTrue(s)) return true;
    if (cJSON_IsFalse(s)) return violation(c, "no value is allowed here (schema false)");
    if (!cJSON_IsObject(s)) return true;
    const cJSON *kw;
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "$ref")) && cJSON_IsString(kw)) {
        const cJSON *t = resolve_ref(c->root, kw->valuestring);
        if (t && !check(c, t, v, depth + 1)) return false;
    }
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "type"))) {
        bool ok = false;
        if (cJSON_IsString(kw)) ok = is_type(v, kw->valuestring);
        else { const cJSON *t; cJSON_ArrayForEach(t, kw) if (cJSON_IsString(t) && is_type(v, t->valuestring)) ok = true; }
        if (!ok) {
            char *want = cJSON_IsString(kw) ? NULL : cJSON_PrintUnformatted(kw);
            violation(c, "expected %s, got %s", want ? want : kw->valuestring, type_of(v));
            cJSON_free(want);
            return false;
        }
    }
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "enum"))) {
        bool ok = false;
        const cJSON *t;
        cJSON_ArrayForEach(t, kw) if (cJSON_Compare(t, v, true)) { ok = true; break; }
        if (!ok) return violation(c, "value is not one of the enum's %d values", cJSON_GetArraySize(kw));
    }
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "const")) && !cJSON_Compare(kw, v, true))
        return violation(c, "value is not the const value");
    if (cJSON_IsString(v) && !check_string(c, s, v)) return false;
    if (cJSON_IsNumber(v) && !check_number(c, s, v)) return false;
    if (cJSON_IsObject(v) && !check_object(c, s, v, depth)) return false;
    if (cJSON_IsArray(v) && !check_array(c, s, v, depth)) return false;
    if ((kw = cJSON_GetObjectItemCaseSensitive(s, "allOf"))) {
        const cJSON *t;
        cJSON_ArrayForEach(t, kw) if (!check(c, t, v, depth + 1)) return false;
    }
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(s, "oneOf");
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *alts = pass ? one : any;
        if (!alts) continue;
        int hits = 0;
        const cJSON *t;
        c->quiet++;
        cJSON_ArrayForEach(t, alts) if (check(c, t, v, depth + 1)) hits++;
        c->quiet--;
        if (c->rc) return false;
        if (hits == 0) return violation(c, "value matches none of the %s schemas", pass ? "oneOf" : "anyOf");
        if (pass && hits > 1) return violation(c, "value matches %d of the oneOf schemas (one expected)", hits);
    }
    return true;
}

int slm_eval_schema_check(const cJSON *schema, const cJSON *value, bool *ok, char *msg, size_t msg_cap,
                          slm_err *err) {
    cctx c = { .root = schema, .msg = msg, .cap = msg_cap };
    if (msg && msg_cap) msg[0] = 0;
    *ok = check(&c, schema, value, 0);
    if (c.rc == SLM_ERANGE) return slm_err_set(err, SLM_ERANGE, "schema: $ref recursion deeper than %d", MAX_DEPTH);
    if (c.rc) return slm_err_set(err, c.rc, "schema: out of memory");
    return 0;
}
