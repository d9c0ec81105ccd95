/*
 * test_constraint.c — constrained decoding (src/sample/constraint.c,
 * json_grammar.c, json_schema.c).
 *
 * A small byte-level BPE vocabulary is built in memory (constraint_util.h:
 * written with the GGUF writer, loaded with slm_vocab_load): all 256 bytes,
 * multi-byte pieces that cross JSON structure ("{\"", "\":", "},{", "true",
 * "12", whitespace runs), UTF-8 split across tokens (é as C3|A9, an emoji in
 * two halves), invalid UTF-8, escapes, an EOS, a control, a user-defined and
 * an unused token. Decoding is simulated: random logits (seeded) are masked,
 * the best allowed token is accepted until EOG, and the text must parse with
 * cJSON and validate against the schema (constraint_util.h has a validator
 * for the supported subset); 200 runs per schema, and in the first 40 of
 * each the mask must equal the one-token check (slm_constraint_allows) for
 * every token at every step. Prefixes of decodes are branched on sampled
 * allowed tokens and completed, and must validate too. Then: targeted masks
 * (UTF-8, escapes, whitespace and depth limits, key order, integers, enum
 * prefixes, dead ends), schema errors, out-of-memory paths, the shared
 * vocabulary index, and — with fixtures — the GPT-2 (50k) vocabulary's real
 * merged tokens, and the time of apply() on it and on Qwen3 (151k) and
 * Llama 3 (128k) tokenizer.json vocabularies (logged, never asserted).
 */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "constraint_util.h"
#include "helpers.h"
#include "sample/constraint.h"
#include "sample/json_grammar.h"
#include "util/alloc.h"

#define S_NESTED "{\"type\":\"object\",\"properties\":{" \
    "\"name\":{\"type\":\"string\",\"maxLength\":12}," \
    "\"nick\":{\"type\":\"string\",\"title\":\"ignored\",\"description\":\"ignored\"}," \
    "\"age\":{\"type\":\"integer\"}," \
    "\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"}," \
    "\"zip\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":5,\"format\":\"x\"}},\"required\":[\"street\",\"zip\"]}," \
    "\"extra\":{\"type\":\"boolean\"}},\"required\":[\"name\",\"age\",\"address\"]}"
#define S_ARRAYS "{\"type\":\"object\",\"properties\":{" \
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":8},\"minItems\":1,\"maxItems\":3}," \
    "\"scores\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":4}," \
    "\"matrix\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":2}}}," \
    "\"required\":[\"tags\",\"scores\",\"matrix\"]}"
#define S_ENUMS "{\"type\":\"object\",\"properties\":{" \
    "\"color\":{\"enum\":[\"red\",\"green\",\"blue\"]}," \
    "\"size\":{\"type\":\"string\",\"enum\":[\"S\",\"M\",\"L\",\"XL\",7]}," \
    "\"n\":{\"enum\":[1,12,123,null,true,\"\\u00e9t\\u00e9\"]}," \
    "\"fixed\":{\"const\":{\"a\":[1,\"x\"]}}},\"required\":[\"color\",\"size\",\"n\",\"fixed\"]}"
#define S_ANYOF "{\"type\":\"object\",\"properties\":{" \
    "\"v\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"},{\"type\":\"null\"}]}," \
    "\"shape\":{\"oneOf\":[" \
    "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"circle\"},\"r\":{\"type\":\"number\"}},\"required\":[\"kind\",\"r\"]}," \
    "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"square\"},\"side\":{\"type\":\"number\"}},\"required\":[\"kind\",\"side\"]}]}," \
    "\"opt\":{\"type\":[\"string\",\"null\"],\"maxLength\":4}},\"required\":[\"v\",\"shape\"]}"
#define S_TREE "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"value\":{\"type\":\"integer\"}," \
    "\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}}," \
    "\"required\":[\"value\",\"children\"]}},\"$ref\":\"#/$defs/node\"}"
#define S_LIST "{\"definitions\":{\"list\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"object\",\"properties\":{" \
    "\"head\":{\"type\":\"string\"},\"tail\":{\"$ref\":\"#/definitions/list\"}},\"required\":[\"head\",\"tail\"]}]}}," \
    "\"type\":\"object\",\"properties\":{\"list\":{\"$ref\":\"#/definitions/list\"}},\"required\":[\"list\"]}"
#define S_NUMS "{\"type\":\"object\",\"properties\":{\"i\":{\"type\":\"integer\"},\"x\":{\"type\":\"number\"}," \
    "\"ints\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}},\"nums\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}}," \
    "\"required\":[\"i\",\"x\",\"ints\",\"nums\"],\"additionalProperties\":false}"
#define S_FREE "{\"type\":\"object\",\"properties\":{\"meta\":{\"type\":\"object\"},\"any\":{}," \
    "\"map\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}},\"allof\":{\"allOf\":[{\"type\":\"boolean\"}]}}," \
    "\"required\":[\"meta\",\"any\",\"map\",\"allof\"]}"
#define S_MIXED "{\"type\":\"object\",\"properties\":{" \
    "\"m\":{\"anyOf\":[{\"type\":\"string\",\"maxLength\":3},{\"enum\":[\"hello world\",\"abc\",\"name\"]},{\"const\":12}]}," \
    "\"k\":{\"anyOf\":[{\"type\":\"string\",\"minLength\":2,\"maxLength\":6},{\"type\":\"string\",\"maxLength\":1}]}}," \
    "\"required\":[\"m\",\"k\"]}"
#define S_TOP_ARRAY "{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":2}"

Test(constraint, random_nested_objects, .timeout = 300) { fuzz_schema(S_NESTED, 200, 1000); }
Test(constraint, random_arrays_min_max, .timeout = 300) { fuzz_schema(S_ARRAYS, 200, 2000); }
Test(constraint, random_enums_and_const, .timeout = 300) { fuzz_schema(S_ENUMS, 200, 3000); }
Test(constraint, random_anyof, .timeout = 300) { fuzz_schema(S_ANYOF, 200, 4000); }
Test(constraint, random_ref_recursion_defs, .timeout = 300) { fuzz_schema(S_TREE, 200, 5000); }
Test(constraint, random_ref_recursion_definitions, .timeout = 300) { fuzz_schema(S_LIST, 200, 6000); }
Test(constraint, random_integers_and_numbers, .timeout = 300) { fuzz_schema(S_NUMS, 200, 7000); }
Test(constraint, random_free_form_values, .timeout = 300) { fuzz_schema(S_FREE, 200, 8000); }
Test(constraint, random_any_object, .timeout = 300) { fuzz_schema(NULL, 200, 9000); }
Test(constraint, random_strings_beside_literals, .timeout = 300) { fuzz_schema(S_MIXED, 200, 11000); }
Test(constraint, random_top_level_array, .timeout = 300) { fuzz_schema(S_TOP_ARRAY, 200, 10000); }


/* ---- targeted masks ------------------------------------------------------------------ */

/* The tokens apply() leaves finite. */
static int32_t n_allowed(slm_constraint *c, const slm_vocab *v, int32_t *only) {
    int32_t n = slm_vocab_n_tokens(v), k = 0;
    float *l = calloc((size_t)n, sizeof *l);
    slm_constraint_apply(c, l);
    for (int32_t t = 0; t < n; t++) if (isfinite(l[t])) { k++; if (only) *only = t; }
    free(l);
    return k;
}

Test(constraint, any_object_start_and_end) {
    slm_vocab *v = test_vocab();
    slm_constraint *c = mk(v, NULL);
    EXPECT_ALLOWED(c, v, "{", true);
    EXPECT_ALLOWED(c, v, "{\"", true);
    EXPECT_ALLOWED(c, v, "{}", true);
    EXPECT_ALLOWED(c, v, " ", true);           /* a bounded leading run */
    EXPECT_ALLOWED(c, v, "[", false);          /* json_object: the top level is an object */
    EXPECT_ALLOWED(c, v, "true", false);
    EXPECT_ALLOWED(c, v, "12", false);
    EXPECT_ALLOWED(c, v, "\"", false);
    cr_expect(!allowed_by_apply(c, v, g_eos), "EOS before the value is complete");
    cr_expect(!allowed_by_apply(c, v, g_ctrl) && !allowed_by_apply(c, v, g_user) && !allowed_by_apply(c, v, g_unused));
    cr_expect(!slm_constraint_done(c));
    cr_expect_eq(slm_constraint_accept(c, tid("[")), SLM_EINVAL, "a refused token is an error");
    cr_expect_eq(slm_constraint_accept(c, g_eos), SLM_EINVAL);
    feed(c, "{\"a\":[1,");
    EXPECT_ALLOWED(c, v, "]", false);          /* no trailing comma */
    EXPECT_ALLOWED(c, v, "true", true);
    feed(c, "{}]}");
    cr_expect(slm_constraint_done(c));
    int32_t only = -1;
    cr_expect_eq(n_allowed(c, v, &only), 1, "after the object only EOS remains");
    cr_expect_eq(only, g_eos);
    cr_expect_eq(slm_constraint_accept(c, tid(" ")), SLM_EINVAL);
    cr_expect_eq(slm_constraint_accept(c, g_eos), 0);
    cr_expect_eq(slm_constraint_accept(c, tid("}")), SLM_EINVAL, "nothing after EOG");
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, utf8_split_across_tokens) {
    slm_vocab *v = test_vocab();
    slm_constraint *c = mk(v, NULL);
    feed(c, "{\"k\":\"");
    EXPECT_ALLOWED(c, v, "\xC3\xA9", true);
    cr_expect(allowed_by_apply(c, v, g_user), "user-defined tokens are text");
    cr_expect(!allowed_by_apply(c, v, g_ctrl), "control tokens are always masked");
    EXPECT_ALLOWED(c, v, "\xED\xA0\x80", false);    /* a UTF-16 surrogate in UTF-8 */
    EXPECT_ALLOWED(c, v, "\xC0\x80", false);        /* overlong */
    EXPECT_ALLOWED(c, v, "\xA9" "b", false);        /* starts mid-character */
    EXPECT_ALLOWED(c, v, "\n", false);              /* raw control byte in a string */
    cr_expect(!allowed_by_apply(c, v, 0xFF) && !allowed_by_apply(c, v, 0xF5) && !allowed_by_apply(c, v, 0x80));
    EXPECT_ALLOWED(c, v, "a\xC3", true);
    cr_assert_eq(slm_constraint_accept(c, tid("a\xC3")), 0);
    EXPECT_ALLOWED(c, v, "\xA9" "b", true);         /* finishes é */
    EXPECT_ALLOWED(c, v, "\"", false);
    EXPECT_ALLOWED(c, v, "a", false);
    EXPECT_ALLOWED(c, v, "\xC3\xA9", false);
    cr_assert_eq(slm_constraint_accept(c, tid("\xA9" "b")), 0);
    EXPECT_ALLOWED(c, v, "\xF0\x9F", true);
    cr_assert_eq(slm_constraint_accept(c, tid("\xF0\x9F")), 0);
    EXPECT_ALLOWED(c, v, "\"", false);
    EXPECT_ALLOWED(c, v, "\x98\x80", true);
    cr_assert_eq(slm_constraint_accept(c, tid("\x98\x80")), 0);
    EXPECT_ALLOWED(c, v, "\"}", true);
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, escapes_and_surrogate_pairs) {
    slm_vocab *v = test_vocab();
    slm_constraint *c = mk(v, NULL);
    feed(c, "{\"k\":\"");
    EXPECT_ALLOWED(c, v, "\\n", true);
    EXPECT_ALLOWED(c, v, "\\\"", true);
    EXPECT_ALLOWED(c, v, "\\ude00", false);          /* a lone low surrogate */
    EXPECT_ALLOWED(c, v, "\\u00", true);
    cr_assert_eq(slm_constraint_accept(c, tid("\\u00")), 0);
    EXPECT_ALLOWED(c, v, "\"", false);
    EXPECT_ALLOWED(c, v, "12", true);                /* \u0012 */
    EXPECT_ALLOWED(c, v, "name", false);
    feed(c, "e9");
    EXPECT_ALLOWED(c, v, "\\ud83d", true);
    cr_assert_eq(slm_constraint_accept(c, tid("\\ud83d")), 0);
    EXPECT_ALLOWED(c, v, "\"", false);               /* the pair must be completed */
    EXPECT_ALLOWED(c, v, "\\u00", false);
    EXPECT_ALLOWED(c, v, "\\n", false);
    EXPECT_ALLOWED(c, v, "\\ude00", true);
    cr_assert_eq(slm_constraint_accept(c, tid("\\ude00")), 0);
    EXPECT_ALLOWED(c, v, "\"}", true);
    feed(c, "\\");
    EXPECT_ALLOWED(c, v, "x", false);
    EXPECT_ALLOWED(c, v, "/", true);
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, whitespace_runs_are_bounded) {
    slm_vocab *v = test_vocab();
    slm_constraint *c = mk(v, NULL);
    feed(c, "{");
    for (int i = 0; i < JG_WS_MAX - 2; i++) feed(c, " ");
    EXPECT_ALLOWED(c, v, "  ", true);
    EXPECT_ALLOWED(c, v, "    ", false);
    EXPECT_ALLOWED(c, v, "\n  ", false);
    feed(c, "\n\t");
    EXPECT_ALLOWED(c, v, " ", false);
    EXPECT_ALLOWED(c, v, "\"", true);
    feed(c, "\"a\"");
    EXPECT_ALLOWED(c, v, " ", true);                 /* a new run after a token */
    feed(c, ":");
    feed(c, " 1");
    EXPECT_ALLOWED(c, v, " ", true);                 /* after a number, before , or } */
    feed(c, " }");
    EXPECT_ALLOWED(c, v, " ", false);                /* nothing after the value */
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, nesting_depth_limit) {
    slm_vocab *v = test_vocab();
    slm_constraint *c = mk(v, NULL);
    feed(c, "{\"a\":");
    for (int i = 1; i < JG_MAX_DEPTH; i++) feed(c, "[");
    EXPECT_ALLOWED(c, v, "[", false);
    EXPECT_ALLOWED(c, v, "{", false);
    EXPECT_ALLOWED(c, v, "[]", false);
    EXPECT_ALLOWED(c, v, "12", true);
    EXPECT_ALLOWED(c, v, "]", true);
    feed(c, "]");
    EXPECT_ALLOWED(c, v, "[]", false);               /* a comma first */
    feed(c, ",");
    EXPECT_ALLOWED(c, v, "[]", true);
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, properties_in_declaration_order) {
    slm_vocab *v = test_vocab();
    const char *schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"},"
                         "\"c\":{\"type\":\"integer\"},\"d\":{\"type\":\"integer\"}},\"required\":[\"c\"]}";
    slm_constraint *c = mk(v, schema);
    feed(c, "{");
    EXPECT_ALLOWED(c, v, "}", false);                /* c is required */
    feed(c, "\"");
    EXPECT_ALLOWED(c, v, "a", true);
    EXPECT_ALLOWED(c, v, "d", false);                /* d comes after required c */
    feed(c, "b\":1,\"");
    EXPECT_ALLOWED(c, v, "a", false);                /* a cannot follow b */
    EXPECT_ALLOWED(c, v, "c", true);
    feed(c, "c\":2");
    EXPECT_ALLOWED(c, v, "}", true);
    feed(c, ",\"");
    EXPECT_ALLOWED(c, v, "d", true);
    EXPECT_ALLOWED(c, v, "c", false);
    feed(c, "d\":3");
    EXPECT_ALLOWED(c, v, ",", false);                /* nothing left to add */
    feed(c, "}");
    cr_expect(slm_constraint_done(c));
    slm_constraint_free(c);

    c = mk(v, "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}");
    EXPECT_ALLOWED(c, v, "{}", true);
    EXPECT_ALLOWED(c, v, "{\"", false);
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, integers_and_numbers) {
    slm_vocab *v = test_vocab();
    slm_constraint *c = mk(v, "{\"type\":\"object\",\"properties\":{\"i\":{\"type\":\"integer\"},\"x\":{\"type\":\"number\"}},"
                              "\"required\":[\"i\",\"x\"]}");
    feed(c, "{\"i\":");
    EXPECT_ALLOWED(c, v, "0.", false);
    EXPECT_ALLOWED(c, v, "-1", true);
    feed(c, "-");
    EXPECT_ALLOWED(c, v, "-", false);
    feed(c, "0");
    EXPECT_ALLOWED(c, v, "0", false);                /* no leading zeros */
    EXPECT_ALLOWED(c, v, "e+", false);
    EXPECT_ALLOWED(c, v, ".", false);
    EXPECT_ALLOWED(c, v, ",", true);
    feed(c, ",\"x\":");
    EXPECT_ALLOWED(c, v, "1.5", true);
    feed(c, "0");
    EXPECT_ALLOWED(c, v, ".", true);
    feed(c, ".");
    EXPECT_ALLOWED(c, v, "}", false);
    EXPECT_ALLOWED(c, v, "e+", false);
    feed(c, "5");
    EXPECT_ALLOWED(c, v, "E-", true);
    feed(c, "e");
    EXPECT_ALLOWED(c, v, "}", false);
    feed(c, "-");
    EXPECT_ALLOWED(c, v, "00", true);
    feed(c, "007");
    EXPECT_ALLOWED(c, v, "0", false);                /* at most JG_EXP_DIGITS exponent digits */
    EXPECT_ALLOWED(c, v, "}", true);
    slm_constraint_free(c);

    c = mk(v, "{\"type\":\"integer\"}");
    for (int i = 0; i < JG_INT_DIGITS; i++) feed(c, "9");
    EXPECT_ALLOWED(c, v, "9", false);                /* bounded digits */
    cr_expect(slm_constraint_done(c));
    cr_expect(allowed_by_apply(c, v, g_eos));
    slm_constraint_free(c);

    c = mk(v, "{\"type\":\"number\"}");
    feed(c, "12");
    cr_expect(slm_constraint_done(c));
    cr_expect(allowed_by_apply(c, v, g_eos), "a complete top-level number may end");
    EXPECT_ALLOWED(c, v, "12", true);
    EXPECT_ALLOWED(c, v, " ", false);
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, enum_literals_that_are_prefixes) {
    slm_vocab *v = test_vocab();
    slm_constraint *c = mk(v, "{\"enum\":[1,12,\"red\",\"re\"]}");
    EXPECT_ALLOWED(c, v, "12", true);
    EXPECT_ALLOWED(c, v, "\"red\"", true);
    EXPECT_ALLOWED(c, v, "-1", false);
    feed(c, "1");
    cr_expect(slm_constraint_done(c));
    cr_expect(allowed_by_apply(c, v, g_eos));
    EXPECT_ALLOWED(c, v, "2", true);
    EXPECT_ALLOWED(c, v, "0.", false);
    feed(c, "2");
    int32_t only = -1;
    cr_expect_eq(n_allowed(c, v, &only), 1);
    cr_expect_eq(only, g_eos);
    slm_constraint_free(c);

    c = mk(v, "{\"enum\":[1,12,\"red\",\"re\"]}");
    feed(c, "\"re");
    EXPECT_ALLOWED(c, v, "\"", true);
    EXPECT_ALLOWED(c, v, "d", true);
    EXPECT_ALLOWED(c, v, "a", false);
    EXPECT_ALLOWED(c, v, "\"}", false);
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, dead_end_allows_only_eog) {
    /* A vocabulary that cannot spell the required key "n". */
    char *toks[] = { strdup("{"), strdup("}"), strdup("\""), strdup(":"), strdup("a"), strdup("<|endoftext|>") };
    int32_t types[] = { SLM_TOKTYPE_NORMAL, SLM_TOKTYPE_NORMAL, SLM_TOKTYPE_NORMAL, SLM_TOKTYPE_NORMAL,
                        SLM_TOKTYPE_NORMAL, SLM_TOKTYPE_CONTROL };
    slm_vocab *v = write_and_load(toks, types, 6);
    for (int i = 0; i < 6; i++) free(toks[i]);
    slm_constraint *c = mk(v, "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":[\"n\"]}");
    float l[6] = { 0 };
    slm_constraint_apply(c, l);
    cr_expect(isfinite(l[0]) && !isfinite(l[1]) && !isfinite(l[5]), "'{' only");
    cr_assert_eq(slm_constraint_accept(c, 0), 0);
    cr_assert_eq(slm_constraint_accept(c, 2), 0);          /* {"  */
    memset(l, 0, sizeof l);
    slm_constraint_apply(c, l);
    for (int t = 0; t < 5; t++) cr_expect(!isfinite(l[t]), "token %d allowed in a dead end", t);
    cr_expect(isfinite(l[5]), "EOG is left so that sampling stops");
    cr_expect(!slm_constraint_done(c));
    cr_expect_eq(slm_constraint_accept(c, 5), SLM_EUNSUPPORTED, "accepting it reports the dead end");
    slm_constraint_free(c);
    slm_vocab_free(v);
}

/* ---- schema errors --------------------------------------------------------------------- */

static void expect_error(const slm_vocab *v, const char *schema, int want, const char *needle) {
    slm_constraint *c = (slm_constraint *)&want;
    slm_err err = { 0 };
    size_t base = slm_mem_used();
    int rc = slm_constraint_new_json(v, schema, &c, &err);
    cr_expect_eq(rc, want, "schema %s: rc %d (%s), expected %d", schema, rc, err.msg, want);
    cr_expect_null(c, "schema %s: out not cleared on error", schema);
    cr_expect(strstr(err.msg, needle) != NULL, "schema %s: message '%s' does not name '%s'", schema, err.msg, needle);
    cr_expect_eq(slm_mem_used(), base, "schema %s: leak on error", schema);
}

Test(constraint, schema_errors) {
    slm_vocab *v = test_vocab();
    expect_error(v, "{", SLM_EINVAL, "not valid JSON");
    expect_error(v, "[1]", SLM_EINVAL, "object or a boolean");
    expect_error(v, "false", SLM_EINVAL, "never be satisfied");
    expect_error(v, "{\"type\":\"string\",\"pattern\":\"a+\"}", SLM_EUNSUPPORTED, "'pattern'");
    expect_error(v, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}",
                 SLM_EUNSUPPORTED, "/properties/a");
    expect_error(v, "{\"type\":\"number\",\"minimum\":0}", SLM_EUNSUPPORTED, "'minimum'");
    expect_error(v, "{\"type\":\"object\",\"properties\":{\"a\":{\"not\":{}}}}", SLM_EUNSUPPORTED, "'not'");
    expect_error(v, "{\"type\":\"object\",\"patternProperties\":{}}", SLM_EUNSUPPORTED, "'patternProperties'");
    expect_error(v, "{\"type\":\"array\",\"prefixItems\":[{}]}", SLM_EUNSUPPORTED, "'prefixItems'");
    expect_error(v, "{\"type\":\"array\",\"items\":[{}]}", SLM_EUNSUPPORTED, "'items'");
    expect_error(v, "{\"type\":\"array\",\"uniqueItems\":true}", SLM_EUNSUPPORTED, "'uniqueItems'");
    expect_error(v, "{\"if\":{},\"then\":{}}", SLM_EUNSUPPORTED, "'if'");
    expect_error(v, "{\"allOf\":[{},{}]}", SLM_EUNSUPPORTED, "'allOf'");
    expect_error(v, "{\"anyOf\":[{\"type\":\"string\"}],\"type\":\"string\"}", SLM_EUNSUPPORTED, "'anyOf' beside 'type'");
    expect_error(v, "{\"$ref\":\"http://example.com/s.json\"}", SLM_EUNSUPPORTED, "'$ref'");
    expect_error(v, "{\"$ref\":\"#/$defs/missing\"}", SLM_EINVAL, "does not resolve");
    expect_error(v, "{\"type\":\"strin\"}", SLM_EINVAL, "unknown type 'strin'");
    expect_error(v, "{\"type\":[]}", SLM_EINVAL, "'type'");
    expect_error(v, "{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", SLM_EINVAL, "minItems 3 > maxItems 2");
    expect_error(v, "{\"type\":\"string\",\"minLength\":-1}", SLM_EINVAL, "'minLength'");
    expect_error(v, "{\"type\":\"string\",\"maxLength\":1.5}", SLM_EINVAL, "'maxLength'");
    expect_error(v, "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}", SLM_EINVAL, "'b'");
    expect_error(v, "{\"type\":\"object\",\"properties\":[]}", SLM_EINVAL, "'properties'");
    expect_error(v, "{\"enum\":[]}", SLM_EINVAL, "'enum'");
    expect_error(v, "{\"type\":\"string\",\"enum\":[1,2]}", SLM_EINVAL, "no value of the schema's type");
    expect_error(v, "{\"$defs\":{\"a\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"type\":\"null\"}]}},\"$ref\":\"#/$defs/a\"}",
                 SLM_EINVAL, "left-recursive");
    expect_error(v, "{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}",
                 SLM_EINVAL, "cycle");
    expect_error(v, "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"c\":{\"$ref\":\"#/$defs/n\"}},"
                    "\"required\":[\"c\"]}},\"$ref\":\"#/$defs/n\"}", SLM_EINVAL, "no finite value");
    /* 6 × 6 choices at one position: more than JG_MAX_THREADS threads */
    char big[4096] = "{\"anyOf\":[";
    for (int i = 0; i < 6; i++) {
        strcat(big, i ? ",{\"anyOf\":[" : "{\"anyOf\":[");
        for (int j = 0; j < 6; j++) snprintf(big + strlen(big), sizeof big - strlen(big), "%s{\"const\":%d}", j ? "," : "", i * 6 + j);
        strcat(big, "]}");
    }
    strcat(big, "]}");
    expect_error(v, big, SLM_ERANGE, "too branchy");
    /* schema documents nested deeper than the compiler recurses */
    char *deep = malloc(300 * 12 + 16);
    deep[0] = 0;
    for (int i = 0; i < 300; i++) strcat(deep, "{\"items\":");
    strcat(deep, "{}");
    for (int i = 0; i < 300; i++) strcat(deep, "}");
    expect_error(v, deep, SLM_ERANGE, "nested deeper");
    free(deep);
    slm_vocab_free(v);
}

Test(constraint, harmless_keywords_are_ignored) {
    slm_vocab *v = test_vocab();
    const char *schema = "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"x\",\"title\":\"T\","
                         "\"description\":\"d\",\"$comment\":\"c\",\"type\":\"object\",\"examples\":[{}],\"default\":{},"
                         "\"x-vendor\":1,\"properties\":{\"s\":{\"type\":\"string\",\"format\":\"date-time\","
                         "\"default\":\"x\",\"deprecated\":true}},\"required\":[\"s\"],\"additionalProperties\":false,"
                         "\"uniqueItems\":false}";
    slm_constraint *c = mk(v, schema);
    feed(c, "{\"s\":\"2024\"}");
    cr_expect(slm_constraint_done(c));
    slm_constraint_free(c);
    c = mk(v, "{\"type\":\"array\",\"items\":false}");
    EXPECT_ALLOWED(c, v, "[]", true);
    EXPECT_ALLOWED(c, v, "[", true);
    feed(c, "[");
    EXPECT_ALLOWED(c, v, "12", false);
    slm_constraint_free(c);
    /* "#" recursion and a JSON-pointer path into the document */
    c = mk(v, "{\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"integer\"},{\"$ref\":\"#\"}]},\"maxItems\":3}");
    feed(c, "[1,[2,[]],[]]");
    cr_expect(slm_constraint_done(c));
    slm_constraint_free(c);
    slm_vocab_free(v);
}

Test(constraint, mutated_schemas_never_crash, .timeout = 300) {
    /* Request data: byte-mutated schemas must compile or fail with a
     * message — never crash or leak (run this under ASan) — and what
     * compiles must decode. */
    slm_vocab *v = test_vocab();
    slm_constraint_vocab *cv = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_constraint_vocab_new(v, &cv, &err), 0);
    bool *cl = closers(v);
    const char *seeds[] = { S_NESTED, S_ARRAYS, S_ENUMS, S_ANYOF, S_TREE, S_LIST, S_NUMS, S_FREE, S_MIXED };
    static const char alphabet[] = "{}[]\":,0123456789-tfn\\ \"$#/abcdeyqrspoimx";
    slm_rng rng;
    slm_rng_seed(&rng, 99);
    int compiled = 0, rejected = 0;
    for (int i = 0; i < 3000; i++) {
        const char *seed = seeds[slm_rng_next(&rng) % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(seed);
        char *m = malloc(n + 8);
        memcpy(m, seed, n + 1);
        for (int k = 0, edits = 1 + (int)(slm_rng_next(&rng) % 3); k < edits; k++) {
            size_t at = slm_rng_next(&rng) % n;
            char ch = alphabet[slm_rng_next(&rng) % (sizeof alphabet - 1)];
            switch (slm_rng_next(&rng) % 3) {
            case 0: m[at] = ch; break;                                           /* replace */
            case 1: memmove(m + at, m + at + 1, n - at); n--; break;            /* delete  */
            default: memmove(m + at + 1, m + at, n - at + 1); m[at] = ch; n++; /* insert  */
            }
        }
        size_t base = slm_mem_used();
        slm_constraint *c = NULL;
        memset(&err, 0, sizeof err);
        int rc = slm_constraint_new_json_with(cv, m, &c, &err);
        if (rc == 0) {
            compiled++;
            run_out r = simulate(v, c, (uint64_t)i, 60, cl, false);
            free(r.text);
            slm_constraint_free(c);
        } else {
            rejected++;
            cr_assert(err.msg[0], "schema '%s': error %d without a message", m, rc);
            cr_assert(rc == SLM_EINVAL || rc == SLM_EUNSUPPORTED || rc == SLM_ERANGE, "schema '%s': rc %d", m, rc);
        }
        cr_assert_eq(slm_mem_used(), base, "schema '%s': leak", m);
        free(m);
    }
    cr_log_info("mutated schemas: %d compiled and decoded, %d rejected", compiled, rejected);
    free(cl);
    slm_constraint_vocab_free(cv);
    slm_vocab_free(v);
}

Test(constraint, out_of_memory_is_an_error) {
    slm_vocab *v = test_vocab();
    size_t base = slm_mem_used();
    int rc = SLM_ENOMEM;
    long n;
    for (n = 1; n < 100000 && rc == SLM_ENOMEM; n++) {
        slm_constraint *c = NULL;
        slm_err err = { 0 };
        slm_alloc_fail_after(n);
        rc = slm_constraint_new_json(v, S_ANYOF, &c, &err);
        slm_alloc_fail_after(0);
        if (rc == SLM_ENOMEM) {
            cr_assert_null(c);
            cr_assert(err.msg[0], "allocation %ld: no message", n);
        }
        cr_assert_eq(rc == 0 || rc == SLM_ENOMEM, true, "allocation %ld failing gave %d: %s", n, rc, err.msg);
        slm_constraint_free(c);
        cr_assert_eq(slm_mem_used(), base, "leak after failing allocation %ld", n);
    }
    cr_expect_eq(rc, 0);
    cr_log_info("constraint creation survives each of its %ld allocations failing", n - 2);
    slm_vocab_free(v);
}

Test(constraint, allowed_tokens_extend_to_valid_documents, .timeout = 300) {
    /* From several states of a decode, every allowed token (a sample) is
     * taken and the decode completed: each completion must validate. */
    slm_vocab *v = test_vocab();
    bool *cl = closers(v);
    const char *schemas[] = { S_ANYOF, S_TREE, S_ENUMS };
    int32_t n = slm_vocab_n_tokens(v);
    float *l = malloc((size_t)n * sizeof *l);
    for (int si = 0; si < 3; si++) {
        cJSON *sdoc = cJSON_Parse(schemas[si]);
        slm_constraint *c = mk(v, schemas[si]);
        run_out r = simulate(v, c, 77 + (uint64_t)si, 4000, cl, false);
        cr_assert(r.finished);
        slm_constraint_free(c);
        /* Replay prefixes by bytes (any split is the same text), branch, finish. */
        for (size_t cut = 0; cut < r.len; cut += 1 + r.len / 12) {
            c = mk(v, schemas[si]);
            for (size_t i = 0; i < cut; i++) cr_assert_eq(slm_constraint_accept(c, (unsigned char)r.text[i]), 0);
            for (int32_t t = 0; t < n; t++) l[t] = 0;
            slm_constraint_apply(c, l);
            slm_constraint_free(c);
            int tried = 0;
            for (int32_t t = (int32_t)(cut * 7 % 13); t < n && tried < 12; t += 13) {
                if (!isfinite(l[t]) || slm_vocab_is_eog(v, t)) continue;
                tried++;
                slm_constraint *b = mk(v, schemas[si]);
                for (size_t i = 0; i < cut; i++) slm_constraint_accept(b, (unsigned char)r.text[i]);
                cr_assert_eq(slm_constraint_accept(b, t), 0);
                run_out rest = simulate(v, b, (uint64_t)t, 4000, cl, false);
                cr_assert(rest.finished);
                char tb[256];
                int k = slm_token_to_bytes(v, t, tb, sizeof tb);
                size_t len = cut + (size_t)k + rest.len;
                char *doc_text = malloc(len + 1);
                memcpy(doc_text, r.text, cut);
                memcpy(doc_text + cut, tb, (size_t)k);
                memcpy(doc_text + cut + k, rest.text, rest.len);
                doc_text[len] = 0;
                cJSON *doc = cJSON_Parse(doc_text);
                char why[256] = "";
                cr_assert(doc && validate(sdoc, sdoc, doc, why, sizeof why),
                          "prefix '%.*s' + token %d gave '%s': %s", (int)cut, r.text, t, doc_text, why);
                cJSON_Delete(doc);
                free(doc_text);
                free(rest.text);
                slm_constraint_free(b);
            }
        }
        free(r.text);
        cJSON_Delete(sdoc);
    }
    free(l);
    free(cl);
    slm_vocab_free(v);
}

/* ---- the GPT-2 vocabulary: speed (logged) and real multi-byte tokens --------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Accepts text tokenized by the vocabulary itself. */
static void feed_text(slm_constraint *c, const slm_vocab *v, const char *text) {
    int32_t ids[256], n = 0;
    slm_err err = { 0 };
    cr_assert_eq(slm_tokenize(v, text, strlen(text), false, false, ids, 256, &n, &err), 0, "%s", err.msg);
    for (int32_t i = 0; i < n; i++)
        cr_assert_eq(slm_constraint_accept(c, ids[i]), 0, "token %d of '%s' refused", i, text);
}

static void time_apply_named(slm_constraint *c, const slm_vocab *v, const char *vname, const char *what) {
    int32_t n = slm_vocab_n_tokens(v);
    float *l = malloc((size_t)n * sizeof *l);
    double best = 1e9, sum = 0;
    int reps = 10, allowed = 0;
    for (int r = 0; r < reps; r++) {
        for (int32_t t = 0; t < n; t++) l[t] = 0;
        double t0 = now_ms();
        slm_constraint_apply(c, l);
        double dt = now_ms() - t0;
        sum += dt;
        if (dt < best) best = dt;
    }
    for (int32_t t = 0; t < n; t++) allowed += isfinite(l[t]);
    cr_log_info("%s apply() %-34s: %6.2f ms (best %6.2f), %d of %d tokens allowed", vname, what, sum / reps, best,
                allowed, n);
    free(l);
}

static void time_apply(slm_constraint *c, const slm_vocab *v, const char *what) {
    time_apply_named(c, v, "gpt-2", what);
}

Test(constraint, gpt2_vocabulary, .timeout = 300) {
    SKIP_WITHOUT_FIXTURE(path, "vocab/ggml-vocab-gpt-2.gguf");
    slm_model_params mp = slm_model_default_params();
    mp.vocab_only = true;
    slm_model *m = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_model_load(path, &mp, &m, &err), 0, "%s", err.msg);
    const slm_vocab *v = slm_model_vocab(m);

    double t0 = now_ms();
    slm_constraint *c = mk(v, S_NESTED);
    cr_log_info("gpt-2 constraint creation (schema + vocabulary index): %.1f ms", now_ms() - t0);
    time_apply(c, v, "at the start");
    feed_text(c, v, "{\"name\": \"");
    time_apply(c, v, "inside a string (maxLength 12)");
    feed_text(c, v, "Al\", \"age\": ");
    time_apply(c, v, "before an integer");
    feed_text(c, v, "42, \"address\": {\"street\": \"");
    time_apply(c, v, "inside an unbounded string");
    feed_text(c, v, "Main St. \\u00e9");
    time_apply(c, v, "after an escape");
    slm_constraint_free(c);

    c = mk(v, NULL);
    time_apply(c, v, "any object, at the start");
    feed_text(c, v, "{\"text\": \"Once upon");
    time_apply(c, v, "any object, inside a string");
    feed_text(c, v, "\", \"n\": [1, 2.5, true, null, {\"k\": ");
    time_apply(c, v, "any object, before a value");
    slm_constraint_free(c);

    c = mk(v, S_ENUMS);
    feed_text(c, v, "{\"color\": ");
    time_apply(c, v, "before an enum");
    slm_constraint_free(c);

    /* a string and an enum at once: the enum's thread walks the full trie */
    c = mk(v, "{\"anyOf\":[{\"type\":\"string\"},{\"enum\":[\"abc\",\"abd\",\"x y\"]}]}");
    feed_text(c, v, "\"");
    time_apply(c, v, "string or enum, after the quote");
    slm_constraint_free(c);

    /* Random decodes with real merged tokens still give valid documents. */
    bool *cl = closers(v);
    const char *schemas[] = { S_NESTED, S_ANYOF, S_TREE, S_ENUMS, NULL };
    for (int si = 0; si < 5; si++) {
        cJSON *sdoc = cJSON_Parse(schemas[si] ? schemas[si] : "{\"type\":\"object\"}");
        for (int run = 0; run < 4; run++) {
            c = mk(v, schemas[si]);
            run_out r = simulate(v, c, 500 + (uint64_t)(si * 10 + run), 3000, cl, false);
            cr_assert(r.finished, "no EOG: '%.300s'", r.text);
            cJSON *doc = cJSON_Parse(r.text);
            char why[256] = "";
            cr_assert(doc && validate(sdoc, sdoc, doc, why, sizeof why), "'%s': %s", r.text, why);
            cJSON_Delete(doc);
            free(r.text);
            slm_constraint_free(c);
        }
        cJSON_Delete(sdoc);
    }
    free(cl);
    slm_model_free(m);
}

/* The token whose bytes are the single byte b, or -1. */
static int32_t byte_token(const slm_vocab *v, unsigned b) {
    for (int32_t t = 0; t < slm_vocab_n_tokens(v); t++) {
        char buf[8];
        if (slm_token_to_bytes(v, t, buf, sizeof buf) == 1 && (unsigned char)buf[0] == b) return t;
    }
    return -1;
}

/* Large (128k, 151k) vocabularies from Hugging Face tokenizer.json files. */
static void time_hf(const char *rel, const char *vname) {
    const char *path = th_fixture(rel);
    if (!path) {
        cr_log_info("%s absent: skipped", rel);
        return;
    }
    slm_vocab *v = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_vocab_load_hf(path, &v, &err), 0, "%s", err.msg);
    double t0 = now_ms();
    slm_constraint_vocab *cv = NULL;
    cr_assert_eq(slm_constraint_vocab_new(v, &cv, &err), 0, "%s", err.msg);
    double t1 = now_ms();
    slm_constraint *c = NULL;
    cr_assert_eq(slm_constraint_new_json_with(cv, S_NESTED, &c, &err), 0, "%s", err.msg);
    cr_log_info("%s (%d tokens): vocabulary index %.1f ms, constraint from it %.2f ms", vname,
                slm_vocab_n_tokens(v), t1 - t0, now_ms() - t1);
    time_apply_named(c, v, vname, "at the start");
    feed_text(c, v, "{\"name\": \"");
    time_apply_named(c, v, vname, "inside a string (maxLength 12)");
    feed_text(c, v, "Al\", \"age\": ");
    time_apply_named(c, v, vname, "before an integer");
    feed_text(c, v, "42, \"address\": {\"street\": \"");
    time_apply_named(c, v, vname, "inside an unbounded string");
    int32_t lead = byte_token(v, 0xE4);          /* the first byte of a CJK character */
    if (lead >= 0) {
        cr_assert_eq(slm_constraint_accept(c, lead), 0);
        time_apply_named(c, v, vname, "inside a string, mid-character");
    }
    slm_constraint_free(c);
    cr_assert_eq(slm_constraint_new_json_with(cv, "{\"anyOf\":[{\"type\":\"string\"},{\"enum\":[\"abc\",\"x y\"]}]}",
                                              &c, &err), 0);
    feed_text(c, v, "\"");
    time_apply_named(c, v, vname, "string or enum, after the quote");
    slm_constraint_free(c);
    slm_constraint_vocab_free(cv);
    slm_vocab_free(v);
}

Test(constraint, large_vocabularies_speed, .timeout = 300) {
    time_hf("vocab/hf-qwen3/tokenizer.json", "qwen3");
    time_hf("vocab/hf-llama3/tokenizer.json", "llama3");
}

Test(constraint, shared_vocabulary_index) {
    slm_vocab *v = test_vocab();
    size_t base = slm_mem_used();
    slm_constraint_vocab *cv = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_constraint_vocab_new(v, &cv, &err), 0, "%s", err.msg);
    slm_constraint *a = NULL, *b = NULL;
    cr_assert_eq(slm_constraint_new_json_with(cv, NULL, &a, &err), 0);
    cr_assert_eq(slm_constraint_new_json_with(cv, S_NUMS, &b, &err), 0);
    cr_expect_eq(slm_constraint_new_json_with(cv, "{\"pattern\":\"x\"}", &(slm_constraint *){ NULL }, &err),
                 SLM_EUNSUPPORTED);
    slm_constraint_vocab_free(cv);              /* the constraints keep it alive */
    feed(a, "{\"k\":[1]}");
    feed(b, "{\"i\":1,\"x\":2.5,\"ints\":[],\"nums\":[1e3]}");
    cr_expect(slm_constraint_done(a) && slm_constraint_done(b));
    slm_constraint_free(a);
    slm_constraint_free(b);
    cr_expect_eq(slm_mem_used(), base, "the index is freed with its last holder");
    slm_constraint_vocab_free(NULL);
    slm_constraint_free(NULL);
    slm_vocab_free(v);
}
