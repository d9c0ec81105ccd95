/*
 * constraint_util.h — what tests/test_constraint.c builds on: the in-memory
 * test vocabulary (byte-level BPE written with the GGUF writer), a validator
 * of JSON values against the supported JSON Schema subset (cJSON), and the
 * simulated decode (seeded random logits, mask, best allowed token, accept,
 * until EOG). Static functions: included by that one test file only.
 */
#ifndef SLM_TESTS_CONSTRAINT_UTIL_H
#define SLM_TESTS_CONSTRAINT_UTIL_H

#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "helpers.h"
#include "sample/constraint.h"
#include "sample/rng.h"
#include "tokenizer/vocab.h"
/* ---- the test vocabulary ------------------------------------------------------ */

static const char *const k_pieces[] = {
    "{\"", "\":", "\": ", "\":\"", "\",\"", "\"}", "},{", "}}", "]}", "\"]", "[\"", "[{", ", \"",
    ",\n  \"", "\n  ", "  ", "    ", "true", "false", "null", "tr", "ue", "nu", "12", "0.", "-1",
    "e+", "E-", "00", "123456789", "\xC3\xA9", "a\xC3", "\xA9" "b", "\xF0\x9F", "\x98\x80",
    "\xF0\x9F\x98\x80", "\xED\xA0\x80", "\xC0\x80", "\\u00", "\\ud83d", "\\ude00", "\\n", "\\\"",
    "name", "\"name\":\"", "\"age\":", "\"value\":", "\"children\":[", "\"kind\":\"", "circle",
    "square", "red", "\"red\"", "green", "blue", "\"blue\"}", "abc", "hello world", "\r\n",
    "\"tags\":[\"", "\"i\":", "\"x\":", "1.5", "\"S\"", "XL", "\"head\":", "\"tail\":", "], ",
    ", ", "\"}]", "\"list\":", "\"shape\":{", "[]", "{}", "{\"a\":[1,\"x\"]}", "\"value\":-",
};

enum { V_BYTES = 256 };
static int32_t g_eos = -1, g_ctrl = -1, g_user = -1, g_unused = -1;

/* GPT-2's byte-to-unicode map for one byte, UTF-8 encoded into out. */
static size_t gpt2_byte(unsigned b, char *out) {
    unsigned cp = b, next = 256;
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!printable) {
        for (unsigned c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) next++;
        cp = next;
    }
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static char *gpt2_text(const char *bytes) {
    size_t n = strlen(bytes), k = 0;
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) k += gpt2_byte((unsigned char)bytes[i], s + k);
    s[k] = 0;
    return s;
}

static slm_vocab *write_and_load(char **toks, const int32_t *types, size_t n);

static slm_vocab *test_vocab(void) {
    size_t n_pieces = sizeof k_pieces / sizeof k_pieces[0];
    size_t n = V_BYTES + n_pieces + 4;
    char **toks = calloc(n, sizeof *toks);
    int32_t *types = calloc(n, sizeof *types);
    for (unsigned b = 0; b < V_BYTES; b++) {
        toks[b] = calloc(4, 1);
        gpt2_byte(b, toks[b]);
        types[b] = SLM_TOKTYPE_NORMAL;
    }
    for (size_t i = 0; i < n_pieces; i++) {
        toks[V_BYTES + i] = gpt2_text(k_pieces[i]);
        types[V_BYTES + i] = SLM_TOKTYPE_NORMAL;
    }
    size_t t = V_BYTES + n_pieces;
    g_eos = (int32_t)t;    toks[t] = strdup("<|endoftext|>"); types[t++] = SLM_TOKTYPE_CONTROL;
    g_ctrl = (int32_t)t;   toks[t] = strdup("<|im_start|>");  types[t++] = SLM_TOKTYPE_CONTROL;
    g_user = (int32_t)t;   toks[t] = strdup("<tag>");         types[t++] = SLM_TOKTYPE_USER_DEFINED;
    g_unused = (int32_t)t; toks[t] = strdup("<unused>");      types[t++] = SLM_TOKTYPE_UNUSED;

    slm_vocab *v = write_and_load(toks, types, n);
    for (size_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
    free(types);
    cr_assert(slm_vocab_is_eog(v, g_eos));
    return v;
}

/* Writes a byte-level BPE vocabulary (token texts already in GPT-2's byte
 * alphabet; the last EOS-typed entry is EOS) and loads it. */
static slm_vocab *write_and_load(char **toks, const int32_t *types, size_t n) {
    int32_t eos = -1;
    for (size_t i = 0; i < n; i++) if (types[i] == SLM_TOKTYPE_CONTROL && eos < 0) eos = (int32_t)i;
    slm_gguf_writer *w = slm_gguf_writer_new();
    cr_assert(w);
    const char *merges[] = { "t r" };
    cr_assert_eq(slm_gguf_set_str(w, "general.architecture", "qwen2"), 0);
    cr_assert_eq(slm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"), 0);
    cr_assert_eq(slm_gguf_set_str(w, "tokenizer.ggml.pre", "gpt-2"), 0);
    cr_assert_eq(slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, n), 0);
    cr_assert_eq(slm_gguf_set_arr(w, "tokenizer.ggml.token_type", SLM_GGUF_I32, types, n), 0);
    cr_assert_eq(slm_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1), 0);
    cr_assert_eq(slm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos), 0);
    cr_assert_eq(slm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eos), 0);
    slm_err err = { 0 };
    const char *path = th_tmp("constraint-vocab.gguf");
    cr_assert_eq(slm_gguf_writer_write(w, path, &err), 0, "write: %s", err.msg);
    slm_gguf_writer_free(w);
    slm_gguf *g = NULL;
    slm_vocab *v = NULL;
    cr_assert_eq(slm_gguf_open(path, &g, &err), 0, "open: %s", err.msg);
    cr_assert_eq(slm_vocab_load(g, &v, &err), 0, "vocab: %s", err.msg);
    slm_gguf_close(g);
    return v;
}

/* Token id of a piece's bytes (a single byte or an entry of k_pieces). */
static int32_t tid(const char *bytes) {
    size_t n = strlen(bytes);
    if (n == 1) return (unsigned char)bytes[0];
    for (size_t i = 0; i < sizeof k_pieces / sizeof k_pieces[0]; i++)
        if (strcmp(k_pieces[i], bytes) == 0) return V_BYTES + (int32_t)i;
    cr_assert_fail("no test token for '%s'", bytes);
    return -1;
}

static slm_constraint *mk(const slm_vocab *v, const char *schema) {
    slm_constraint *c = NULL;
    slm_err err = { 0 };
    int rc = slm_constraint_new_json(v, schema, &c, &err);
    cr_assert_eq(rc, 0, "schema %s: %s (%d)", schema ? schema : "(any object)", err.msg, rc);
    return c;
}

/* Accepts the bytes of s one byte-token at a time. */
static void feed(slm_constraint *c, const char *s) {
    for (const char *p = s; *p; p++) {
        int32_t t = (unsigned char)*p;
        cr_assert(slm_constraint_allows(c, t), "byte '%c' (0x%02x) refused after %.*s", *p, t, (int)(p - s), s);
        cr_assert_eq(slm_constraint_accept(c, t), 0);
    }
}

static bool allowed_by_apply(slm_constraint *c, const slm_vocab *v, int32_t t) {
    int32_t n = slm_vocab_n_tokens(v);
    float *l = calloc((size_t)n, sizeof *l);
    slm_constraint_apply(c, l);
    bool ok = isfinite(l[t]);
    free(l);
    return ok;
}

#define EXPECT_ALLOWED(c, v, piece, want)                                                      \
    do {                                                                                       \
        int32_t t_ = tid(piece);                                                               \
        bool got_ = allowed_by_apply(c, v, t_);                                                \
        cr_expect_eq(got_, (want), "token '%s': allowed %d, expected %d", piece, got_, (want)); \
        cr_expect_eq(slm_constraint_allows(c, t_), (want), "allows('%s') disagrees", piece);     \
    } while (0)

/* ---- a validator for the supported subset ---------------------------------------- */

static const cJSON *resolve_ref(const cJSON *root, const char *ref) {
    if (strcmp(ref, "#") == 0) return root;
    const char *p;
    const cJSON *defs = NULL;
    if (strncmp(ref, "#/$defs/", 8) == 0) { defs = cJSON_GetObjectItem(root, "$defs"); p = ref + 8; }
    else if (strncmp(ref, "#/definitions/", 14) == 0) { defs = cJSON_GetObjectItem(root, "definitions"); p = ref + 14; }
    else return NULL;
    return defs ? cJSON_GetObjectItem(defs, p) : NULL;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool has_type(const cJSON *v, const char *t) {
    if (!strcmp(t, "string")) return cJSON_IsString(v);
    if (!strcmp(t, "number")) return cJSON_IsNumber(v);
    if (!strcmp(t, "integer")) return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    if (!strcmp(t, "boolean")) return cJSON_IsBool(v);
    if (!strcmp(t, "null")) return cJSON_IsNull(v);
    if (!strcmp(t, "array")) return cJSON_IsArray(v);
    if (!strcmp(t, "object")) return cJSON_IsObject(v);
    return false;
}

static bool validate(const cJSON *root, const cJSON *s, const cJSON *v, char *why, size_t cap) {
#define NO(...) do { snprintf(why, cap, __VA_ARGS__); return false; } while (0)
    if (cJSON_IsTrue(s)) return true;
    const cJSON *k;
    if ((k = cJSON_GetObjectItem(s, "$ref"))) {
        const cJSON *t = resolve_ref(root, k->valuestring);
        if (!t) NO("unresolved ref %s", k->valuestring);
        return validate(root, t, v, why, cap);
    }
    if ((k = cJSON_GetObjectItem(s, "allOf"))) return validate(root, k->child, v, why, cap);
    if ((k = cJSON_GetObjectItem(s, "anyOf")) || (k = cJSON_GetObjectItem(s, "oneOf"))) {
        for (const cJSON *a = k->child; a; a = a->next)
            if (validate(root, a, v, why, cap)) return true;
        NO("no anyOf alternative matches");
    }
    if ((k = cJSON_GetObjectItem(s, "const")) && !cJSON_Compare(k, v, true)) NO("const differs");
    if ((k = cJSON_GetObjectItem(s, "enum"))) {
        bool in = false;
        for (const cJSON *e = k->child; e; e = e->next) in |= cJSON_Compare(e, v, true);
        if (!in) NO("not in enum");
    }
    if ((k = cJSON_GetObjectItem(s, "type"))) {
        bool ok = false;
        if (cJSON_IsString(k)) ok = has_type(v, k->valuestring);
        else for (const cJSON *t = k->child; t; t = t->next) ok |= has_type(v, t->valuestring);
        if (!ok) NO("wrong type");
    }
    if (cJSON_IsString(v)) {
        size_t n = utf8_chars(v->valuestring);
        if ((k = cJSON_GetObjectItem(s, "minLength")) && n < (size_t)k->valuedouble) NO("string too short");
        if ((k = cJSON_GetObjectItem(s, "maxLength")) && n > (size_t)k->valuedouble) NO("string too long: %zu", n);
    }
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        if ((k = cJSON_GetObjectItem(s, "minItems")) && n < k->valueint) NO("too few items");
        if ((k = cJSON_GetObjectItem(s, "maxItems")) && n > k->valueint) NO("too many items");
        const cJSON *items = cJSON_GetObjectItem(s, "items");
        for (const cJSON *e = v->child; items && e; e = e->next)
            if (!validate(root, items, e, why, cap)) return false;
    }
    if (cJSON_IsObject(v)) {
        const cJSON *props = cJSON_GetObjectItem(s, "properties"), *extra = cJSON_GetObjectItem(s, "additionalProperties");
        bool free_form = !props && !cJSON_IsFalse(extra);
        int last = -1;
        for (const cJSON *m = v->child; m; m = m->next) {
            const cJSON *ps = props ? cJSON_GetObjectItem(props, m->string) : NULL;
            if (!ps) {
                if (!free_form) NO("unexpected key '%s'", m->string);
                if (cJSON_IsObject(extra) && !validate(root, extra, m, why, cap)) return false;
                continue;
            }
            int idx = 0;
            for (const cJSON *p = props->child; p != ps; p = p->next) idx++;
            if (idx <= last) NO("key '%s' out of declaration order", m->string);
            last = idx;
            if (!validate(root, ps, m, why, cap)) return false;
        }
        for (const cJSON *r = (k = cJSON_GetObjectItem(s, "required")) ? k->child : NULL; r; r = r->next)
            if (!cJSON_GetObjectItem(v, r->valuestring)) NO("missing required '%s'", r->valuestring);
    }
    return true;
#undef NO
}

/* ---- simulated decoding ------------------------------------------------------------ */

typedef struct run_out { char *text; size_t len; int steps; bool finished; } run_out;

/* Tokens that close something and open nothing get a bias growing with the
 * step count, so random walks end. */
static bool closer(const slm_vocab *v, int32_t t) {
    char b[256];
    int n = slm_token_to_bytes(v, t, b, sizeof b);
    if (slm_vocab_is_eog(v, t)) return true;
    if (n <= 0) return false;
    bool close = false;
    for (int i = 0; i < n; i++) {
        if (b[i] == '{' || b[i] == '[') return false;
        close |= b[i] == '"' || b[i] == '}' || b[i] == ']';
    }
    return close;
}

/* Decodes with random logits until EOG (or max_steps). check_mask compares
 * apply() with allows() for every token at every step. */
static run_out simulate(const slm_vocab *v, slm_constraint *c, uint64_t seed, int max_steps,
                        const bool *is_closer, bool check_mask) {
    int32_t n = slm_vocab_n_tokens(v);
    float *l = malloc((size_t)n * sizeof *l);
    run_out r = { .text = calloc(1, 1) };
    slm_rng rng;
    slm_rng_seed(&rng, seed);
    for (r.steps = 0; r.steps < max_steps; r.steps++) {
        float bias = r.steps > 30 ? (float)(r.steps - 30) * 0.05f : 0.0f;
        for (int32_t t = 0; t < n; t++)
            l[t] = (float)(slm_rng_next(&rng) >> 11) * 0x1.0p-53f + (is_closer[t] ? bias : 0.0f);
        slm_constraint_apply(c, l);
        int32_t best = -1;
        for (int32_t t = 0; t < n; t++) {
            bool ok = isfinite(l[t]);
            if (check_mask)
                cr_assert_eq(ok, slm_constraint_allows(c, t), "step %d: token %d: apply says %d, allows disagrees (text '%s')",
                             r.steps, t, ok, r.text);
            if (ok && (best < 0 || l[t] > l[best])) best = t;
        }
        cr_assert(best >= 0, "step %d: every token masked after '%s'", r.steps, r.text);
        cr_assert_eq(slm_constraint_accept(c, best), 0, "accepting allowed token %d failed", best);
        if (slm_vocab_is_eog(v, best)) { r.finished = true; break; }
        char b[256];
        int k = slm_token_to_bytes(v, best, b, sizeof b);
        cr_assert(k > 0, "allowed token %d has no bytes", best);
        r.text = realloc(r.text, r.len + (size_t)k + 1);
        memcpy(r.text + r.len, b, (size_t)k);
        r.len += (size_t)k;
        r.text[r.len] = 0;
    }
    free(l);
    return r;
}

static bool *closers(const slm_vocab *v) {
    int32_t n = slm_vocab_n_tokens(v);
    bool *c = malloc((size_t)n);
    for (int32_t t = 0; t < n; t++) c[t] = closer(v, t);
    return c;
}

/* Runs n_runs seeded decodes of schema (NULL: any object), validating each. */
static void fuzz_schema(const char *schema, int n_runs, uint64_t seed0) {
    slm_vocab *v = test_vocab();
    bool *cl = closers(v);
    cJSON *sdoc = schema ? cJSON_Parse(schema) : cJSON_Parse("{\"type\":\"object\"}");
    cr_assert(sdoc, "test schema does not parse");
    long total_len = 0;
    for (int run = 0; run < n_runs; run++) {
        slm_constraint *c = mk(v, schema);
        run_out r = simulate(v, c, seed0 + (uint64_t)run, 4000, cl, run < 40);
        cr_assert(r.finished, "run %d: no EOG after %d steps: '%.300s'", run, r.steps, r.text);
        const char *end = NULL;
        cJSON *doc = cJSON_ParseWithLengthOpts(r.text, r.len, &end, 0);
        cr_assert(doc, "run %d: not JSON: '%s'", run, r.text);
        cr_assert_eq(end, r.text + r.len, "run %d: trailing text after the value: '%s'", run, r.text);
        char why[256] = "";
        cr_assert(validate(sdoc, sdoc, doc, why, sizeof why), "run %d: '%s' does not match: %s", run, r.text, why);
        if (run < 2) {                           /* one line, whitespace shown as \n \t \r */
            char shown[512];
            size_t k = 0;
            for (size_t i = 0; i < r.len && k + 3 < sizeof shown; i++) {
                char ch = r.text[i];
                if (ch == '\n' || ch == '\t' || ch == '\r') {
                    shown[k++] = '\\';
                    shown[k++] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
                } else shown[k++] = ch;
            }
            shown[k] = 0;
            cr_log_info("example: %s", shown);
        }
        total_len += (long)r.len;
        cJSON_Delete(doc);
        free(r.text);
        slm_constraint_free(c);
    }
    cr_log_info("%d runs, mean length %ld bytes", n_runs, total_len / n_runs);
    cJSON_Delete(sdoc);
    free(cl);
    slm_vocab_free(v);
}

#endif
