/*
 * json_schema.c — compiles a JSON Schema (parsed with cJSON) into the node
 * graph that json_grammar.c runs. One pass over the schema makes one node per
 * schema object (and per entry of a type array); $ref targets are compiled
 * once and shared, so recursion costs nothing and nothing is inlined. A
 * finishing pass resolves $ref chains, rejects left recursion (anyOf/$ref
 * cycles that read no input) and choices wider than JG_MAX_THREADS, and
 * prunes what can never finish (alternatives, optional properties and array
 * items that recurse forever), so every prefix the grammar accepts can be
 * completed.
 *
 * Supported: type (a name or an array of names), properties (in declaration
 * order; no other keys), required (absent: every property optional),
 * additionalProperties (false or absent: none beside declared properties;
 * with no properties, absent means any object, and true or a schema means
 * any keys with values of that schema; beside properties, extra keys are
 * never produced), items (false: empty arrays), minItems/maxItems,
 * minLength/maxLength (in code points), enum and const (values of another
 * type than a sibling "type" dropped; matched as the compact text cJSON
 * prints, so {"a": 1} must be written {"a":1} and "é" raw, not
 * "\u00e9"), anyOf and oneOf (oneOf is treated as anyOf: exclusivity
 * is not enforced), allOf with one schema, $ref to local JSON pointers ("#",
 * "#/$defs/…", "#/definitions/…", any "#/…" path), boolean schemas true.
 * Ignored: annotations (title, description, default, examples, format, $id,
 * $schema, $comment, …) and unknown keywords. Rejected with
 * SLM_EUNSUPPORTED naming the keyword: pattern, patternProperties,
 * propertyNames, min/maxProperties, dependent*, unevaluated*, prefixItems,
 * tuple items, contains, not, if/then/else, numeric bounds (minimum,
 * maximum, exclusive*, multipleOf), uniqueItems true, allOf of several
 * schemas, and $ref, anyOf or oneOf beside other structural keywords.
 */
#include "sample/json_schema.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

#define MAX_SCHEMA_NESTING 200

typedef struct ref_ent { const cJSON *target; uint32_t node; } ref_ent;

typedef struct cctx {
    jg_grammar *g;                            /* the grammar being built      */
    const cJSON *doc;                         /* the whole schema document    */
    ref_ent *refs; uint32_t n_refs, cap_refs; /* compiled $ref targets        */
    uint32_t integer_node;                    /* shared "integer" node, or 0  */
    int depth;                                /* schema objects being compiled */
    char path[256];                           /* JSON pointer, for messages   */
    slm_err *err;                             /* where errors go              */
} cctx;

static const char *const k_unsupported[] = {
    "pattern", "patternProperties", "propertyNames", "minProperties", "maxProperties",
    "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties",
    "unevaluatedItems", "prefixItems", "contains", "minContains", "maxContains", "not",
    "if", "then", "else", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "$dynamicRef", "$recursiveRef", NULL
};
static const char *const k_structural[] = {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", NULL
};

static bool in_list(const char *const *list, const char *s) {
    for (; *list; list++) if (strcmp(*list, s) == 0) return true;
    return false;
}

static const char *where(const cctx *c) { return c->path[0] ? c->path : "the root"; }

/* Appends "/seg" to the path; returns the old length to restore. */
static size_t path_push(cctx *c, const char *seg) {
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "/%s", seg);
    return old;
}

static const cJSON *item(const cJSON *s, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(s, key);
}

/* A structural keyword of s other than `self`, or NULL. */
static const char *structural_sibling(const cJSON *s, const char *self) {
    for (const cJSON *k = s->child; k; k = k->next)
        if (k->string && strcmp(k->string, self) != 0 && in_list(k_structural, k->string))
            return k->string;
    return NULL;
}

static int get_count(cctx *c, const cJSON *s, const char *key, uint32_t dflt, uint32_t *out) {
    const cJSON *v = item(s, key);
    *out = dflt;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble))
        return slm_err_set(c->err, SLM_EINVAL, "'%s' at %s must be a non-negative integer", key, where(c));
    *out = v->valuedouble >= (double)(JG_UNBOUNDED - 1) ? JG_UNBOUNDED - 1 : (uint32_t)v->valuedouble;
    return 0;
}

static int new_node(cctx *c, jg_node n, uint32_t *idx) {
    return jg_add_node(c->g, &n, idx, c->err);
}

/* JSON text of a string, as cJSON prints it: quotes, \" \\ \b \f \n \r \t,
 * other control bytes as \u00xx, everything else raw. Caller frees. */
static char *quote(const char *s, size_t *len) {
    size_t n = strlen(s), cap = 2 * 6 * n + 3;   /* never overflows: n < SIZE_MAX/12 in practice */
    if (n > (64u << 20)) return NULL;
    char *q = slm_malloc(cap), *p = q;
    if (!q) return NULL;
    *p++ = '"';
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        const char *esc = NULL;
        switch (*u) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) { memcpy(p, esc, 2); p += 2; }
        else if (*u < 0x20) p += sprintf(p, "\\u%04x", *u);
        else *p++ = (char)*u;
    }
    *p++ = '"';
    *len = (size_t)(p - q);
    return q;
}

static int compile(cctx *c, const cJSON *s, uint32_t *node);

/* ---- $ref ------------------------------------------------------------------ */

static const cJSON *resolve_pointer(const cJSON *doc, const char *ref) {
    const cJSON *cur = doc;
    const char *p = ref + 1;                      /* after '#' */
    char seg[256];
    while (*p == '/') {
        p++;
        size_t n = 0;
        for (; *p && *p != '/'; p++) {
            char ch = *p;
            if (ch == '~' && (p[1] == '0' || p[1] == '1')) { ch = p[1] == '0' ? '~' : '/'; p++; }
            if (n + 1 >= sizeof seg) return NULL;
            seg[n++] = ch;
        }
        seg[n] = 0;
        if (cJSON_IsObject(cur)) cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
        else if (cJSON_IsArray(cur)) {
            char *end;
            long i = strtol(seg, &end, 10);
            cur = (*seg && !*end && i >= 0) ? cJSON_GetArrayItem(cur, (int)i) : NULL;
        } else return NULL;
        if (!cur) return NULL;
    }
    return *p ? NULL : cur;
}

static int compile_ref(cctx *c, const cJSON *target, const char *name, uint32_t *node) {
    for (uint32_t i = 0; i < c->n_refs; i++)
        if (c->refs[i].target == target) { *node = c->refs[i].node; return 0; }
    if (c->n_refs == c->cap_refs) {
        uint32_t ncap = c->cap_refs ? c->cap_refs * 2 : 16;
        ref_ent *r = slm_realloc(c->refs, (size_t)ncap * sizeof *r);
        if (!r) return slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema");
        c->refs = r;
        c->cap_refs = ncap;
    }
    uint32_t ref;
    int rc = new_node(c, (jg_node){ .kind = JG_REF, .a = UINT32_MAX, .max = JG_UNBOUNDED, .last_req = -1 }, &ref);
    if (rc) return rc;
    c->refs[c->n_refs++] = (ref_ent){ target, ref };
    char saved[sizeof c->path];
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%s", name[1] ? name + 1 : "");
    uint32_t t;
    rc = compile(c, target, &t);
    memcpy(c->path, saved, sizeof saved);
    if (rc) return rc;
    c->g->nodes[ref].a = t;
    *node = ref;
    return 0;
}

/* ---- enum and const --------------------------------------------------------- */

static bool value_has_type(const cJSON *v, const char *type) {
    if (strcmp(type, "string") == 0) return cJSON_IsString(v);
    if (strcmp(type, "number") == 0) return cJSON_IsNumber(v);
    if (strcmp(type, "integer") == 0) return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    if (strcmp(type, "boolean") == 0) return cJSON_IsBool(v);
    if (strcmp(type, "null") == 0) return cJSON_IsNull(v);
    if (strcmp(type, "array") == 0) return cJSON_IsArray(v);
    if (strcmp(type, "object") == 0) return cJSON_IsObject(v);
    return false;
}

static bool value_allowed(const cJSON *v, const cJSON *type) {
    if (!type) return true;
    if (cJSON_IsString(type)) return value_has_type(v, type->valuestring);
    for (const cJSON *t = type->child; t; t = t->next)
        if (cJSON_IsString(t) && value_has_type(v, t->valuestring)) return true;
    return false;
}

static int compile_literals(cctx *c, const cJSON *s, const cJSON *values, const char *kw, uint32_t *node) {
    const cJSON *type = item(s, "type");
    int n = cJSON_GetArraySize(values), rc = 0;
    uint32_t m = 0, first, count;
    char **texts = slm_calloc((size_t)(n ? n : 1), sizeof *texts);
    size_t *lens = slm_calloc((size_t)(n ? n : 1), sizeof *lens);
    if (!texts || !lens) { rc = slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema"); goto done; }
    for (const cJSON *v = values->child; v; v = v->next) {
        if (!value_allowed(v, type)) continue;
        char *t = cJSON_PrintUnformatted(v);
        if (!t) { rc = slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema"); goto done; }
        texts[m] = t;
        lens[m++] = strlen(t);
    }
    if (m == 0) {
        rc = slm_err_set(c->err, SLM_EINVAL, "'%s' at %s has no value of the schema's type", kw, where(c));
        goto done;
    }
    if ((rc = jg_add_lits(c->g, (const char *const *)texts, lens, m, &first, &count, c->err))) goto done;
    rc = new_node(c, (jg_node){ .kind = JG_LITS, .a = first, .n = count, .max = JG_UNBOUNDED, .last_req = -1 }, node);
done:
    for (uint32_t i = 0; texts && i < m; i++) cJSON_free(texts[i]);
    slm_free(texts);
    slm_free(lens);
    return rc;
}

/* ---- typed schemas ------------------------------------------------------------ */

static int compile_object(cctx *c, const cJSON *s, uint32_t *node) {
    const cJSON *props = item(s, "properties"), *req = item(s, "required"),
                *extra = item(s, "additionalProperties");
    if (props && !cJSON_IsObject(props))
        return slm_err_set(c->err, SLM_EINVAL, "'properties' at %s must be an object", where(c));
    if (req && !cJSON_IsArray(req))
        return slm_err_set(c->err, SLM_EINVAL, "'required' at %s must be an array", where(c));
    if (extra && !cJSON_IsBool(extra) && !cJSON_IsObject(extra))
        return slm_err_set(c->err, SLM_EINVAL, "'additionalProperties' at %s must be a boolean or a schema", where(c));
    int n_props = props ? cJSON_GetArraySize(props) : 0;
    if (n_props == 0 && !req && !cJSON_IsFalse(extra)) {
        /* No declared properties: any keys, with values of additionalProperties. */
        if (!extra || cJSON_IsTrue(extra)) { *node = JG_NODE_ANY_MAP; return 0; }
        size_t mark = path_push(c, "additionalProperties");
        uint32_t value;
        int rc = compile(c, extra, &value);
        c->path[mark] = 0;
        if (rc) return rc;
        return new_node(c, (jg_node){ .kind = JG_MAP, .a = value, .max = JG_UNBOUNDED, .last_req = -1 }, node);
    }
    jg_prop *p = slm_calloc((size_t)(n_props ? n_props : 1), sizeof *p);
    if (!p) return slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema");
    int rc = 0, i = 0;
    for (const cJSON *k = props ? props->child : NULL; k; k = k->next, i++) {
        for (const cJSON *o = props->child; o != k; o = o->next)
            if (strcmp(o->string, k->string) == 0) {
                rc = slm_err_set(c->err, SLM_EINVAL, "property '%s' declared twice at %s", k->string, where(c));
                goto done;
            }
        size_t klen;
        char *q = quote(k->string, &klen);
        if (!q) { rc = slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema"); goto done; }
        if (klen > JG_MAX_LIT_LEN) rc = slm_err_set(c->err, SLM_ERANGE, "property name at %s too long", where(c));
        else rc = jg_add_bytes(c->g, q, klen, &p[i].key, c->err);
        slm_free(q);
        if (rc) goto done;
        p[i].key_len = (uint32_t)klen;
        size_t mark = path_push(c, "properties");
        path_push(c, k->string);
        rc = compile(c, k, &p[i].node);
        c->path[mark] = 0;
        if (rc) goto done;
    }
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next) {
        if (!cJSON_IsString(r)) {
            rc = slm_err_set(c->err, SLM_EINVAL, "'required' at %s must hold strings", where(c));
            goto done;
        }
        i = 0;
        for (const cJSON *k = props ? props->child : NULL; k; k = k->next, i++)
            if (strcmp(k->string, r->valuestring) == 0) break;
        if (i == n_props) {
            rc = slm_err_set(c->err, SLM_EINVAL, "required property '%s' at %s is not in 'properties'",
                             r->valuestring, where(c));
            goto done;
        }
        p[i].required = true;
    }
    uint32_t first;
    if ((rc = jg_add_props(c->g, p, (uint32_t)n_props, &first, c->err))) goto done;
    rc = new_node(c, (jg_node){ .kind = JG_OBJECT, .a = first, .n = (uint32_t)n_props,
                                .max = JG_UNBOUNDED, .last_req = -1 }, node);
done:
    slm_free(p);
    return rc;
}

static int compile_array(cctx *c, const cJSON *s, uint32_t *node) {
    const cJSON *items = item(s, "items");
    uint32_t min, max, child = JG_NODE_ANY;
    int rc;
    if ((rc = get_count(c, s, "minItems", 0, &min)) || (rc = get_count(c, s, "maxItems", JG_UNBOUNDED, &max)))
        return rc;
    if (min > max)
        return slm_err_set(c->err, SLM_EINVAL, "minItems %u > maxItems %u at %s", min, max, where(c));
    if (cJSON_IsArray(items))
        return slm_err_set(c->err, SLM_EUNSUPPORTED, "'items' as an array (tuples) at %s is not supported", where(c));
    if (cJSON_IsFalse(items)) {                   /* no item can match: an empty array */
        if (min > 0) return slm_err_set(c->err, SLM_EINVAL, "'items' false with minItems %u at %s", min, where(c));
        max = 0;
    } else if (items) {
        size_t mark = path_push(c, "items");
        rc = compile(c, items, &child);
        c->path[mark] = 0;
        if (rc) return rc;
    }
    return new_node(c, (jg_node){ .kind = JG_ARRAY, .a = child, .min = min, .max = max, .last_req = -1 }, node);
}

static int compile_type(cctx *c, const cJSON *s, const char *type, uint32_t *node) {
    if (strcmp(type, "object") == 0) return compile_object(c, s, node);
    if (strcmp(type, "array") == 0) return compile_array(c, s, node);
    if (strcmp(type, "number") == 0) { *node = JG_NODE_NUMBER; return 0; }
    if (strcmp(type, "boolean") == 0) { *node = JG_NODE_BOOL; return 0; }
    if (strcmp(type, "null") == 0) { *node = JG_NODE_NULL; return 0; }
    if (strcmp(type, "integer") == 0) {
        if (!c->integer_node) {
            int rc = new_node(c, (jg_node){ .kind = JG_INTEGER, .max = JG_UNBOUNDED, .last_req = -1 }, &c->integer_node);
            if (rc) return rc;
        }
        *node = c->integer_node;
        return 0;
    }
    if (strcmp(type, "string") == 0) {
        uint32_t min, max;
        int rc;
        if ((rc = get_count(c, s, "minLength", 0, &min)) || (rc = get_count(c, s, "maxLength", JG_UNBOUNDED, &max)))
            return rc;
        if (min > max)
            return slm_err_set(c->err, SLM_EINVAL, "minLength %u > maxLength %u at %s", min, max, where(c));
        if (min == 0 && max == JG_UNBOUNDED) { *node = JG_NODE_STRING; return 0; }
        return new_node(c, (jg_node){ .kind = JG_STRING, .min = min, .max = max, .last_req = -1 }, node);
    }
    return slm_err_set(c->err, SLM_EINVAL, "unknown type '%s' at %s", type, where(c));
}

/* Alternatives: compiles each schema of arr (anyOf/oneOf) into one ANYOF node. */
static int compile_choice(cctx *c, const cJSON *arr, const char *kw, uint32_t *node) {
    int n = cJSON_GetArraySize(arr), rc = 0, i = 0;
    if (!cJSON_IsArray(arr) || n == 0)
        return slm_err_set(c->err, SLM_EINVAL, "'%s' at %s must be a non-empty array", kw, where(c));
    uint32_t *alts = slm_malloc((size_t)n * sizeof *alts), first;
    if (!alts) return slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema");
    for (const cJSON *a = arr->child; a; a = a->next, i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        size_t mark = path_push(c, kw);
        path_push(c, idx);
        rc = compile(c, a, &alts[i]);
        c->path[mark] = 0;
        if (rc) goto done;
    }
    if (n == 1) { *node = alts[0]; goto done; }
    if ((rc = jg_add_alts(c->g, alts, (uint32_t)n, &first, c->err))) goto done;
    rc = new_node(c, (jg_node){ .kind = JG_ANYOF, .a = first, .n = (uint32_t)n, .max = JG_UNBOUNDED, .last_req = -1 }, node);
done:
    slm_free(alts);
    return rc;
}

static int compile_body(cctx *c, const cJSON *s, uint32_t *node) {
    if (cJSON_IsTrue(s)) { *node = JG_NODE_ANY; return 0; }
    if (cJSON_IsFalse(s))
        return slm_err_set(c->err, SLM_EINVAL, "schema 'false' at %s can never be satisfied", where(c));
    if (!cJSON_IsObject(s))
        return slm_err_set(c->err, SLM_EINVAL, "schema at %s must be an object or a boolean", where(c));
    for (const cJSON *k = s->child; k; k = k->next) {
        if (in_list(k_unsupported, k->string) || (strcmp(k->string, "uniqueItems") == 0 && cJSON_IsTrue(k)))
            return slm_err_set(c->err, SLM_EUNSUPPORTED, "keyword '%s' at %s is not supported", k->string, where(c));
    }
    const cJSON *v;
    const char *sib;
    if ((v = item(s, "$ref"))) {
        if ((sib = structural_sibling(s, "$ref")))
            return slm_err_set(c->err, SLM_EUNSUPPORTED, "'$ref' beside '%s' at %s is not supported", sib, where(c));
        if (!cJSON_IsString(v))
            return slm_err_set(c->err, SLM_EINVAL, "'$ref' at %s must be a string", where(c));
        if (v->valuestring[0] != '#')
            return slm_err_set(c->err, SLM_EUNSUPPORTED, "'$ref' '%.200s' at %s: only local references (#/…) are supported",
                               v->valuestring, where(c));
        const cJSON *target = resolve_pointer(c->doc, v->valuestring);
        if (!target)
            return slm_err_set(c->err, SLM_EINVAL, "'$ref' '%.200s' at %s does not resolve", v->valuestring, where(c));
        return compile_ref(c, target, v->valuestring, node);
    }
    if ((v = item(s, "allOf"))) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 1)
            return slm_err_set(c->err, SLM_EUNSUPPORTED, "keyword 'allOf' at %s is supported only with one schema", where(c));
        if ((sib = structural_sibling(s, "allOf")))
            return slm_err_set(c->err, SLM_EUNSUPPORTED, "'allOf' beside '%s' at %s is not supported", sib, where(c));
        size_t mark = path_push(c, "allOf/0");
        int rc = compile(c, v->child, node);
        c->path[mark] = 0;
        return rc;
    }
    const cJSON *any = item(s, "anyOf"), *one = item(s, "oneOf");
    if (any || one) {
        const char *kw = any ? "anyOf" : "oneOf";
        if (any && one)
            return slm_err_set(c->err, SLM_EUNSUPPORTED, "'anyOf' beside 'oneOf' at %s is not supported", where(c));
        const char *bad = structural_sibling(s, kw);
        if (bad)
            return slm_err_set(c->err, SLM_EUNSUPPORTED, "'%s' beside '%s' at %s is not supported", kw, bad, where(c));
        return compile_choice(c, any ? any : one, kw, node);
    }
    const cJSON *en = item(s, "enum"), *cn = item(s, "const");
    if (en && cn)
        return slm_err_set(c->err, SLM_EUNSUPPORTED, "'enum' beside 'const' at %s is not supported", where(c));
    if (en) {
        if (!cJSON_IsArray(en) || cJSON_GetArraySize(en) == 0)
            return slm_err_set(c->err, SLM_EINVAL, "'enum' at %s must be a non-empty array", where(c));
        return compile_literals(c, s, en, "enum", node);
    }
    if (cn) {
        cJSON one_val = *cn;              /* a one-element array around the value, not owned */
        one_val.next = NULL;
        one_val.prev = &one_val;
        cJSON holder = { .type = cJSON_Array, .child = &one_val };
        return compile_literals(c, s, &holder, "const", node);
    }
    const cJSON *type = item(s, "type");
    if (cJSON_IsString(type)) return compile_type(c, s, type->valuestring, node);
    if (cJSON_IsArray(type)) {
        int n = cJSON_GetArraySize(type), rc = 0, i = 0;
        if (n == 0) return slm_err_set(c->err, SLM_EINVAL, "'type' at %s is an empty array", where(c));
        uint32_t *alts = slm_malloc((size_t)n * sizeof *alts), first;
        if (!alts) return slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema");
        for (const cJSON *t = type->child; t; t = t->next) {
            if (!cJSON_IsString(t)) { rc = slm_err_set(c->err, SLM_EINVAL, "'type' at %s must hold strings", where(c)); break; }
            uint32_t alt;
            if ((rc = compile_type(c, s, t->valuestring, &alt))) break;
            bool dup = false;
            for (int j = 0; j < i; j++) dup |= alts[j] == alt;
            if (!dup) alts[i++] = alt;
        }
        if (!rc && i == 1) *node = alts[0];
        else if (!rc) {
            rc = jg_add_alts(c->g, alts, (uint32_t)i, &first, c->err);
            if (!rc) rc = new_node(c, (jg_node){ .kind = JG_ANYOF, .a = first, .n = (uint32_t)i,
                                                 .max = JG_UNBOUNDED, .last_req = -1 }, node);
        }
        slm_free(alts);
        return rc;
    }
    if (type) return slm_err_set(c->err, SLM_EINVAL, "'type' at %s must be a string or an array", where(c));
    /* No type: guess it from the keywords, or any value. */
    if (item(s, "properties") || item(s, "required") || item(s, "additionalProperties"))
        return compile_object(c, s, node);
    if (item(s, "items") || item(s, "minItems") || item(s, "maxItems")) return compile_array(c, s, node);
    if (item(s, "minLength") || item(s, "maxLength")) return compile_type(c, s, "string", node);
    *node = JG_NODE_ANY;
    return 0;
}

static int compile(cctx *c, const cJSON *s, uint32_t *node) {
    if (++c->depth > MAX_SCHEMA_NESTING) {
        c->depth--;
        return slm_err_set(c->err, SLM_ERANGE, "schema nested deeper than %d levels at %s", MAX_SCHEMA_NESTING, where(c));
    }
    int rc = compile_body(c, s, node);
    c->depth--;
    return rc;
}

/* ---- finishing -------------------------------------------------------------- */

static int resolve(cctx *c, uint32_t *idx) {
    const jg_grammar *g = c->g;
    for (uint32_t steps = 0; g->nodes[*idx].kind == JG_REF; steps++) {
        if (steps > g->n_nodes)
            return slm_err_set(c->err, SLM_EINVAL, "'$ref' cycle that never reaches a schema");
        *idx = g->nodes[*idx].a;
    }
    return 0;
}

/* Colours: 0 unseen, 1 on the path, 2 done. Width: threads a VALUE of the
 * node may split into. */
static int check_choice(cctx *c, uint32_t idx, uint8_t *colour, uint32_t *width) {
    jg_grammar *g = c->g;
    if (colour[idx] == 2) return 0;
    if (colour[idx] == 1)
        return slm_err_set(c->err, SLM_EINVAL, "schema is left-recursive: an anyOf/$ref cycle reads no input");
    const jg_node *n = &g->nodes[idx];
    width[idx] = 1;
    if (n->kind == JG_ANYOF) {
        colour[idx] = 1;
        uint64_t w = 0;
        for (uint32_t i = 0; i < n->n; i++) {
            uint32_t a = g->alts[n->a + i];
            int rc = check_choice(c, a, colour, width);
            if (rc) return rc;
            w += width[a];
        }
        if (w > JG_MAX_THREADS)
            return slm_err_set(c->err, SLM_ERANGE, "schema too branchy: anyOf alternatives expand to %llu choices "
                               "at one position (limit %d)", (unsigned long long)w, JG_MAX_THREADS);
        width[idx] = (uint32_t)w;
    }
    colour[idx] = 2;
    return 0;
}

static bool productive(const jg_grammar *g, const jg_node *n, const uint8_t *prod) {
    switch (n->kind) {
    case JG_ARRAY: return n->min == 0 || prod[n->a];
    case JG_OBJECT:
        for (uint32_t i = 0; i < n->n; i++)
            if (g->props[n->a + i].required && !prod[g->props[n->a + i].node]) return false;
        return true;
    case JG_ANYOF:
        for (uint32_t i = 0; i < n->n; i++) if (prod[g->alts[n->a + i]]) return true;
        return false;
    case JG_LITS: return n->n > 0;
    case JG_REF: return false;
    default: return true;
    }
}

static int finish(cctx *c, uint32_t root) {
    jg_grammar *g = c->g;
    int rc;
    if ((rc = resolve(c, &root))) return rc;
    g->root = root;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        jg_node *n = &g->nodes[i];
        if (n->kind == JG_MAP || n->kind == JG_ARRAY) { if ((rc = resolve(c, &n->a))) return rc; }
        else if (n->kind == JG_ANYOF) {
            for (uint32_t j = 0; j < n->n; j++) if ((rc = resolve(c, &g->alts[n->a + j]))) return rc;
        } else if (n->kind == JG_OBJECT) {
            for (uint32_t j = 0; j < n->n; j++) if ((rc = resolve(c, &g->props[n->a + j].node))) return rc;
        }
    }
    uint8_t *mark = slm_calloc(g->n_nodes, 1);
    uint32_t *width = slm_calloc(g->n_nodes, sizeof *width);
    if (!mark || !width) { rc = slm_err_set(c->err, SLM_ENOMEM, "out of memory compiling the schema"); goto done; }
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if ((rc = check_choice(c, i, mark, width))) goto done;

    /* What can finish: a least fixpoint, then cut edges into what cannot. */
    memset(mark, 0, g->n_nodes);
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t i = 0; i < g->n_nodes; i++)
            if (!mark[i] && productive(g, &g->nodes[i], mark)) { mark[i] = 1; changed = true; }
    }
    if (!mark[g->root]) {
        rc = slm_err_set(c->err, SLM_EINVAL, "schema admits no finite value (required properties or minItems recurse forever)");
        goto done;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        jg_node *n = &g->nodes[i];
        if (!mark[i]) continue;
        if (n->kind == JG_ARRAY && !mark[n->a]) n->max = 0;
        if (n->kind == JG_ANYOF) {
            uint32_t m = 0;
            for (uint32_t j = 0; j < n->n; j++)
                if (mark[g->alts[n->a + j]]) g->alts[n->a + m++] = g->alts[n->a + j];
            n->n = m;
        }
        if (n->kind == JG_OBJECT) {
            uint32_t m = 0;
            jg_prop *p = &g->props[n->a];
            for (uint32_t j = 0; j < n->n; j++) if (mark[p[j].node]) p[m++] = p[j];
            n->n = m;
            n->last_req = -1;
            uint32_t next = m;
            for (uint32_t j = m; j-- > 0;) {
                if (p[j].required) { next = j; if (n->last_req < 0) n->last_req = (int32_t)j; }
                p[j].next_req = next;
            }
        }
    }
done:
    slm_free(mark);
    slm_free(width);
    return rc;
}

int jg_schema_compile(const char *schema, size_t len, jg_grammar **out, slm_err *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(schema, len, &end, 0);
    if (!doc) {
        size_t at = end && end >= schema ? (size_t)(end - schema) : 0;
        return slm_err_set(err, SLM_EINVAL, "schema is not valid JSON (near byte %zu)", at);
    }
    cctx c = { .doc = doc, .err = err };
    uint32_t root = 0;
    int rc = jg_grammar_new(&c.g, err);
    if (rc == 0) rc = compile_ref(&c, doc, "#", &root);
    if (rc == 0) rc = finish(&c, root);
    cJSON_Delete(doc);
    slm_free(c.refs);
    if (rc) { jg_grammar_free(c.g); return rc; }
    *out = c.g;
    return 0;
}
