/*
 * test_eval_score.c — per-case scorers of `slm eval` (src/eval/score*.c,
 * normalize.c, jsonschema_check.c): every scorer's pass and fail cases,
 * normalisation (incl. non-ASCII case folding), regex over Unicode, JSON
 * Schema conformance and violations, fields out of fenced JSON, numeric
 * tolerance, ROUGE-L on hand-computed examples, the judge through a fake
 * callback, external commands (score, garbage, failure, timeout), scoring
 * from several threads with one scorer, and out-of-memory paths.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "eval/normalize.h"
#include "eval/score.h"
#include "util/alloc.h"

#define EPS 1e-9

/* A scorer from JSON text of options (NULL: none); asserts it is made. */
static slm_eval_scorer *mk(const char *name, const char *opts_json) {
    cJSON *o = opts_json ? cJSON_Parse(opts_json) : NULL;
    cr_assert(!opts_json || o, "bad test JSON: %s", opts_json);
    slm_eval_scorer *s = NULL;
    slm_err err = { 0 };
    int rc = slm_eval_scorer_new(name, o, &s, &err);
    cJSON_Delete(o);
    cr_assert_eq(rc, 0, "scorer %s: %d %s", name, rc, err.msg);
    return s;
}

/* The error making a scorer (asserts it fails); message into msg. */
static int mk_fail(const char *name, const char *opts_json, char *msg, size_t cap) {
    cJSON *o = opts_json ? cJSON_Parse(opts_json) : NULL;
    slm_eval_scorer *s = NULL;
    slm_err err = { 0 };
    int rc = slm_eval_scorer_new(name, o, &s, &err);
    cJSON_Delete(o);
    cr_assert_neq(rc, 0, "scorer %s with %s should fail", name, opts_json ? opts_json : "-");
    cr_assert_null(s);
    size_t n = strlen(err.msg) < cap ? strlen(err.msg) : cap - 1;
    memcpy(msg, err.msg, n);
    msg[n] = 0;
    return rc;
}

/* Scores output against expected (JSON text; NULL: none) into res. */
static void run(const slm_eval_scorer *s, const char *expected_json, const char *output, slm_eval_score *res) {
    cJSON *e = expected_json ? cJSON_Parse(expected_json) : NULL;
    cr_assert(!expected_json || e, "bad test JSON: %s", expected_json);
    slm_eval_case_view c = { .id = "case-1", .input = "the question", .expected = e };
    slm_err err = { 0 };
    int rc = slm_eval_scorer_score(s, &c, output, res, &err);
    cJSON_Delete(e);
    cr_assert_eq(rc, 0, "score: %d %s", rc, err.msg);
}

/* Pass/fail of one case; the result is cleared. */
static bool passes(const slm_eval_scorer *s, const char *expected_json, const char *output) {
    slm_eval_score r;
    run(s, expected_json, output, &r);
    cr_assert_eq(r.error, 0, "unexpected scoring error: %s", r.detail ? r.detail : "");
    bool p = r.pass;
    slm_eval_score_clear(&r);
    return p;
}

/* ---- normalisation ---------------------------------------------------------- */

static void norm_is(const char *in, unsigned flags, const char *want) {
    char *got = slm_eval_normalize(in, strlen(in), flags);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, want, "normalize(\"%s\", %u) = \"%s\", want \"%s\"", in, flags, got, want);
    slm_free(got);
}

Test(eval_score, normalisation_steps) {
    unsigned all = SLM_NORM_CASE | SLM_NORM_WHITESPACE | SLM_NORM_PUNCT | SLM_NORM_ARTICLES;
    norm_is("  Hello,   World!\n", 0, "Hello,   World!");
    norm_is("  Hello,   World!\n", SLM_NORM_CASE, "hello,   world!");
    norm_is("  Hello,\t\n  World!  ", SLM_NORM_WHITESPACE, "Hello, World!");
    norm_is("Don't stop—“now”…", SLM_NORM_PUNCT, "Dont stopnow");
    norm_is("The Eiffel Tower, a landmark.", all, "eiffel tower landmark");
    norm_is("an apple and THE pear", SLM_NORM_ARTICLES, "apple and pear");
    norm_is("theory anthem", SLM_NORM_ARTICLES, "theory anthem");
    norm_is("ÉCOLE Ωmega ПРИВЕТ ĀŁŸ Straße", SLM_NORM_CASE, "école ωmega привет āłÿ straße");
    norm_is("a\xc2\xa0" "b\xc2\xa0", SLM_NORM_WHITESPACE, "a b");
    norm_is("bad \xff byte", SLM_NORM_CASE | SLM_NORM_PUNCT, "bad \xff byte");
    norm_is("", all, "");
}

Test(eval_score, normalize_option_parsing) {
    unsigned f;
    slm_err err = { 0 };
    cJSON *o = cJSON_Parse("[\"case\", \"punctuation\"]");
    cr_assert_eq(slm_eval_norm_parse(o, &f, &err), 0);
    cr_assert_eq(f, SLM_NORM_CASE | SLM_NORM_PUNCT);
    cJSON_Delete(o);
    o = cJSON_Parse("true");
    cr_assert_eq(slm_eval_norm_parse(o, &f, &err), 0);
    cr_assert_eq(f, 15u);
    cJSON_Delete(o);
    o = cJSON_Parse("[\"case\", \"stemming\"]");
    cr_assert_eq(slm_eval_norm_parse(o, &f, &err), SLM_EINVAL);
    cr_assert(strstr(err.msg, "stemming"), "%s", err.msg);
    cJSON_Delete(o);
    const char *const *names = slm_eval_norm_names();
    cr_assert_str_eq(names[0], "case");
}

/* ---- scorer table, options -------------------------------------------------------- */

Test(eval_score, names_options_and_construction_errors) {
    const char *const *names = slm_eval_scorer_names();
    int n = 0;
    for (; names[n]; n++) cr_assert_not_null(slm_eval_scorer_help(names[n]), "%s has help", names[n]);
    cr_assert_eq(n, 11);
    char msg[256];
    cr_assert_eq(mk_fail("bleu", NULL, msg, sizeof msg), SLM_ENOTFOUND);
    cr_assert(strstr(msg, "bleu") && strstr(msg, "rouge_l"), "%s", msg);
    cr_assert_eq(mk_fail("exact", "{\"normalise\": true}", msg, sizeof msg), SLM_EINVAL);
    cr_assert(strstr(msg, "normalise") && strstr(msg, "normalize"), "%s", msg);
    cr_assert_eq(mk_fail("numeric", "{\"tolerance\": \"big\"}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("regex", "{\"pattern\": \"(unclosed\"}", msg, sizeof msg), SLM_EINVAL);
    cr_assert(strstr(msg, "offset"), "%s", msg);
    cr_assert_eq(mk_fail("regex", "{\"pattern\": \"x\", \"flags\": \"q\"}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("judge", "{\"rubric\": \"x\"}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("cmd", "{}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("json_schema", "{}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("label", "{\"labels\": [\"Yes\", \"yes.\"]}", msg, sizeof msg), SLM_EINVAL);

    /* From a suite entry: a bare name or an object with the options inline. */
    cJSON *spec = cJSON_Parse("{\"name\": \"label\", \"labels\": [\"a\", \"b\"]}");
    slm_eval_scorer *s = NULL;
    cr_assert_eq(slm_eval_scorer_from_json(spec, &s, NULL), 0);
    cr_assert_str_eq(slm_eval_scorer_name(s), "label");
    cr_assert_eq(slm_eval_scorer_agg(s), SLM_EVAL_AGG_LABEL);
    size_t nl;
    const char *const *labels = slm_eval_scorer_labels(s, &nl);
    cr_assert_eq(nl, 2);
    cr_assert_str_eq(labels[1], "b");
    slm_eval_scorer_free(s);
    cJSON_Delete(spec);
    spec = cJSON_CreateString("json_valid");
    cr_assert_eq(slm_eval_scorer_from_json(spec, &s, NULL), 0);
    cr_assert_eq(slm_eval_scorer_agg(s), SLM_EVAL_AGG_SCORE);
    cr_assert_null(slm_eval_scorer_labels(s, &nl));
    slm_eval_scorer_free(s);
    cJSON_Delete(spec);
    slm_eval_scorer_free(NULL);
}

/* ---- exact / contains ---------------------------------------------------------- */

Test(eval_score, exact) {
    slm_eval_scorer *plain = mk("exact", NULL);
    cr_assert(passes(plain, "\"Paris\"", "Paris\n"), "trimmed always");
    cr_assert(!passes(plain, "\"Paris\"", "paris"));
    cr_assert(passes(plain, "42", "42"), "a number is compared as its text");
    cr_assert(passes(plain, "[\"NYC\", \"New York\"]", "New York"), "one of several answers");
    slm_eval_score r;
    run(plain, "\"Paris\"", "Lyon", &r);
    cr_assert(!r.pass && r.score == 0 && r.error == 0);
    cr_assert(r.detail && strstr(r.detail, "Lyon") && strstr(r.detail, "Paris"), "%s", r.detail);
    slm_eval_score_clear(&r);
    run(plain, NULL, "x", &r);
    cr_assert_eq(r.error, SLM_EINVAL, "no expected: a recorded scoring error");
    cr_assert(!r.pass);
    cr_assert_not_null(r.detail);
    slm_eval_score_clear(&r);
    run(plain, "{\"a\": 1}", "x", &r);
    cr_assert_eq(r.error, SLM_EINVAL);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(plain);

    slm_eval_scorer *squad = mk("exact", "{\"normalize\": [\"case\", \"whitespace\", \"punctuation\", \"articles\"]}");
    cr_assert(passes(squad, "\"Eiffel Tower\"", "  The eiffel   tower."));
    cr_assert(passes(squad, "\"Ça va\"", "ÇA VA!"));
    cr_assert(!passes(squad, "\"Eiffel Tower\"", "The Eiffel Tower in Paris"));
    slm_eval_scorer_free(squad);
}

Test(eval_score, contains) {
    slm_eval_scorer *s = mk("contains", "{\"normalize\": \"case\"}");
    cr_assert(passes(s, "\"paris\"", "The capital is PARIS."));
    cr_assert(!passes(s, "\"lyon\"", "The capital is Paris."));
    slm_eval_score r;
    run(s, "[\"alpha\", \"beta\", \"gamma\", \"delta\"]", "Alpha and Gamma", &r);
    cr_assert(!r.pass);
    cr_assert_float_eq(r.score, 0.5, EPS);
    cr_assert(strstr(r.detail, "beta"), "%s", r.detail);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);
}

/* ---- regex ----------------------------------------------------------------------- */

Test(eval_score, regex_with_unicode) {
    slm_eval_scorer *s = mk("regex", "{\"pattern\": \"stra(ß|ss)e\\\\b\"}");
    cr_assert(passes(s, NULL, "Hauptstraße 5"));
    cr_assert(passes(s, NULL, "Hauptstrasse"));
    cr_assert(!passes(s, NULL, "Hauptstrassen"));
    slm_eval_scorer_free(s);

    s = mk("regex", "{\"pattern\": \"^\\\\p{Greek}+\\\\s\\\\w+$\"}");
    cr_assert(passes(s, NULL, "αβγ δέλτα"), "\\w matches Greek letters with UCP");
    cr_assert(!passes(s, NULL, "abc def"));
    slm_eval_scorer_free(s);

    s = mk("regex", "{\"pattern\": \"école\", \"flags\": \"i\"}");
    slm_eval_score r;
    run(s, NULL, "L'ÉCOLE est fermée", &r);
    cr_assert(r.pass, "caseless matching folds É");
    cr_assert(strstr(r.detail, "ÉCOLE"), "%s", r.detail);
    slm_eval_score_clear(&r);
    run(s, NULL, "invalid \xff utf-8", &r);
    cr_assert(!r.pass);
    cr_assert_neq(r.error, 0, "invalid UTF-8 output: a recorded error, not a crash");
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    /* Without a pattern option, expected is the pattern. */
    s = mk("regex", "{\"flags\": \"ms\"}");
    cr_assert(passes(s, "\"^answer: \\\\d+$\"", "thinking...\nanswer: 42\n"));
    cr_assert(!passes(s, "\"^answer: \\\\d+$\"", "answer: none"));
    run(s, "\"(bad\"", "x", &r);
    cr_assert_eq(r.error, SLM_EINVAL);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);
}

/* ---- label --------------------------------------------------------------------------- */

static void label_is(const slm_eval_scorer *s, const char *gold, const char *out, const char *pred, bool pass) {
    slm_eval_score r;
    run(s, gold, out, &r);
    cr_assert_eq(r.error, 0);
    cr_assert_str_eq(r.pred_label, pred, "output \"%s\": predicted \"%s\", want \"%s\"", out, r.pred_label, pred);
    cr_assert_eq(r.pass, pass, "output \"%s\"", out);
    cr_assert_eq(r.score, pass ? 1.0 : 0.0);
    slm_eval_score_clear(&r);
}

Test(eval_score, label_extraction) {
    slm_eval_scorer *s = mk("label", "{\"labels\": [\"positive\", \"negative\", \"neutral\", \"very negative\"]}");
    label_is(s, "\"negative\"", "Negative.", "negative", true);
    label_is(s, "\"positive\"", "I think the sentiment is positive overall.", "positive", true);
    label_is(s, "\"negative\"", "positive, not negative", "positive", false);
    label_is(s, "\"negative\"", "Very negative!", "very negative", false);
    label_is(s, "\"negative\"", "It is very negative, I'd say", "very negative", false);
    label_is(s, "\"neutral\"", "positively nonnegative", "(none)", false);
    label_is(s, "\"neutral\"", "", "(none)", false);
    slm_eval_score r;
    run(s, "\"NEGATIVE\"", "negative", &r);
    cr_assert_str_eq(r.gold_label, "negative", "gold mapped to the declared spelling");
    cr_assert(r.pass);
    slm_eval_score_clear(&r);
    run(s, "\"mixed\"", "mixed", &r);
    cr_assert_str_eq(r.gold_label, "mixed");
    cr_assert_str_eq(r.pred_label, "(none)");
    cr_assert(strstr(r.detail, "not among"), "%s", r.detail);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    /* No declared labels: the gold label is the only one looked for. */
    s = mk("label", NULL);
    label_is(s, "\"Spam\"", "This is spam.", "Spam", true);
    label_is(s, "\"Spam\"", "This is ham.", "(none)", false);
    slm_eval_scorer_free(s);
}

/* ---- JSON ------------------------------------------------------------------------------ */

Test(eval_score, json_valid) {
    slm_eval_scorer *s = mk("json_valid", NULL);
    cr_assert(passes(s, NULL, " {\"a\": [1, 2]}\n"));
    cr_assert(passes(s, NULL, "```json\n{\"a\": 1}\n```"));
    cr_assert(passes(s, NULL, "[1, 2, 3]"));
    cr_assert(!passes(s, NULL, "Sure: {\"a\": 1}"));
    cr_assert(!passes(s, NULL, "{a: 1}"));
    cr_assert(!passes(s, NULL, "{\"a\": 1} trailing"));
    slm_eval_scorer_free(s);
    s = mk("json_valid", "{\"extract\": true}");
    cr_assert(passes(s, NULL, "Sure: {\"a\": {\"b\": \"}\"}} hope that helps"));
    cr_assert(!passes(s, NULL, "Sure: {a: 1}"));
    slm_eval_scorer_free(s);
}

static const char *k_person_schema =
    "{\"schema\": {\"type\": \"object\", \"required\": [\"name\", \"age\"], \"additionalProperties\": false,"
    " \"properties\": {"
    "  \"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 5},"
    "  \"age\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 150},"
    "  \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"maxItems\": 2},"
    "  \"email\": {\"type\": \"string\", \"pattern\": \"^[^@]+@[^@]+$\"},"
    "  \"kind\": {\"enum\": [\"a\", \"b\"]},"
    "  \"pet\": {\"$ref\": \"#/$defs/pet\"}},"
    " \"$defs\": {\"pet\": {\"type\": [\"string\", \"null\"]}}}}";

static void schema_violation(const slm_eval_scorer *s, const char *out, const char *needle) {
    slm_eval_score r;
    run(s, NULL, out, &r);
    cr_assert(!r.pass, "%s should violate", out);
    cr_assert_eq(r.error, 0);
    cr_assert(r.detail && strstr(r.detail, needle), "%s: detail \"%s\" lacks \"%s\"", out, r.detail, needle);
    slm_eval_score_clear(&r);
}

Test(eval_score, json_schema_conformance_and_violations) {
    slm_eval_scorer *s = mk("json_schema", k_person_schema);
    cr_assert(passes(s, NULL, "{\"name\": \"Ann\", \"age\": 30, \"tags\": [\"x\"], \"email\": \"a@b\", \"kind\": \"a\","
                              " \"pet\": null}"));
    cr_assert(passes(s, NULL, "```json\n{\"name\": \"Zoë\", \"age\": 7.0, \"pet\": \"cat\"}\n```"),
              "7.0 is an integer; Zoë is 3 characters");
    schema_violation(s, "{\"name\": \"Ann\"}", "required property 'age'");
    schema_violation(s, "{\"name\": \"Ann\", \"age\": -1}", "/age: -1 is less than minimum");
    schema_violation(s, "{\"name\": \"Ann\", \"age\": 3.5}", "/age: expected integer, got number");
    schema_violation(s, "{\"name\": \"Ann\", \"age\": 3, \"x\": 1}", "/x: additional property");
    schema_violation(s, "{\"name\": \"Ann\", \"age\": 3, \"tags\": [\"a\", 1]}", "/tags/1: expected string");
    schema_violation(s, "{\"name\": \"Ann\", \"age\": 3, \"tags\": [\"a\", \"b\", \"c\"]}", "maxItems");
    schema_violation(s, "{\"name\": \"Ann\", \"age\": 3, \"email\": \"nope\"}", "/email: string does not match");
    schema_violation(s, "{\"name\": \"Ann\", \"age\": 3, \"kind\": \"c\"}", "/kind: value is not one of");
    schema_violation(s, "{\"name\": \"\", \"age\": 3}", "minLength");
    schema_violation(s, "{\"name\": \"Bartholomew\", \"age\": 3}", "maxLength");
    schema_violation(s, "{\"name\": \"A\", \"age\": 3, \"pet\": 5}", "/pet: expected [\"string\",\"null\"]");
    schema_violation(s, "[1]", "expected object, got array");
    schema_violation(s, "not json", "not JSON");
    slm_eval_scorer_free(s);

    /* Annotations are ignored; anything else unknown is refused (a typo must not pass silently). */
    s = mk("json_schema", "{\"schema\": {\"title\": \"T\", \"description\": \"d\", \"format\": \"email\","
                          " \"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"string\", \"maxLength\": 2}]}}");
    cr_assert(passes(s, NULL, "\"ab\""));
    schema_violation(s, "\"abc\"", "none of the anyOf");
    slm_eval_scorer_free(s);
    char msg[256];
    cr_assert_eq(mk_fail("json_schema", "{\"schema\": {\"requried\": [\"a\"]}}", msg, sizeof msg), SLM_EUNSUPPORTED);
    cr_assert(strstr(msg, "requried"), "%s", msg);
}

Test(eval_score, json_schema_unsupported_keywords_are_rejected) {
    char msg[256];
    cr_assert_eq(mk_fail("json_schema", "{\"schema\": {\"type\": \"object\", \"not\": {}}}", msg, sizeof msg),
                 SLM_EUNSUPPORTED);
    cr_assert(strstr(msg, "not"), "%s", msg);
    cr_assert_eq(mk_fail("json_schema", "{\"schema\": {\"type\": \"strnig\"}}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("json_schema", "{\"schema\": {\"$ref\": \"#/$defs/missing\"}}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("json_schema", "{\"schema\": {\"pattern\": \"(\"}}", msg, sizeof msg), SLM_EINVAL);
}

Test(eval_score, json_schema_alternatives_and_recursion) {
    slm_eval_scorer *s = mk("json_schema",
        "{\"schema\": {\"oneOf\": [{\"type\": \"integer\"}, {\"type\": \"number\", \"minimum\": 10}]}}");
    cr_assert(passes(s, NULL, "3"));
    cr_assert(passes(s, NULL, "10.5"));
    schema_violation(s, "12", "matches 2 of the oneOf");
    schema_violation(s, "\"x\"", "none of the oneOf");
    slm_eval_scorer_free(s);
    /* A tree: nodes refer to the root. */
    s = mk("json_schema", "{\"schema\": {\"type\": \"object\", \"properties\": {\"kids\": {\"type\": \"array\","
                          " \"items\": {\"$ref\": \"#\"}}, \"v\": {\"type\": \"integer\"}}}}");
    cr_assert(passes(s, NULL, "{\"v\": 1, \"kids\": [{\"v\": 2, \"kids\": []}, {\"kids\": [{\"v\": 3}]}]}"));
    schema_violation(s, "{\"kids\": [{\"kids\": [{\"v\": \"x\"}]}]}", "/kids/0/kids/0/v: expected integer");
    slm_eval_scorer_free(s);
}

Test(eval_score, fields_from_fenced_json) {
    slm_eval_scorer *s = mk("fields", "{\"fields\": [\"sender\", \"subject\", \"date\", \"priority\"]}");
    cr_assert_eq(slm_eval_scorer_agg(s), SLM_EVAL_AGG_FIELDS);
    const char *expected = "{\"sender\": \"alice@example.com\", \"subject\": \"Meeting\", \"date\": null}";
    slm_eval_score r;
    run(s, expected,
        "Here you go:\n```json\n{\"sender\": \"Alice@Example.com\", \"subject\": \"Meeting moved\","
        " \"date\": \"tomorrow\", \"priority\": \"high\", \"other\": 1}\n```\n", &r);
    /* sender tp (case normalised); subject fp+fn; date expected null but given: fp;
     * priority not expected, listed: fp; other not listed: ignored. */
    cr_assert_eq(r.tp, 1);
    cr_assert_eq(r.fp, 3);
    cr_assert_eq(r.fn, 1);
    cr_assert_float_eq(r.score, 2.0 / 6, EPS);
    cr_assert(!r.pass);
    cr_assert_eq(r.n_fields, 4);
    cr_assert_str_eq(r.fields[0].name, "sender");
    cr_assert_eq(r.fields[0].tp, 1);
    cr_assert_str_eq(r.fields[1].name, "subject");
    cr_assert(r.fields[1].fp == 1 && r.fields[1].fn == 1);
    cr_assert_str_eq(r.fields[3].name, "priority");
    cr_assert_eq(r.fields[3].fp, 1);
    cr_assert(strstr(r.detail, "wrong subject"), "%s", r.detail);
    slm_eval_score_clear(&r);

    /* Leading and trailing text, no fence; a missing null field is right. */
    run(s, expected, "Result: {\"sender\":\"alice@example.com\",\"subject\":\" meeting \"} thanks", &r);
    cr_assert(r.pass && r.tp == 2 && r.fp == 0 && r.fn == 0);
    cr_assert_float_eq(r.score, 1.0, EPS);
    slm_eval_score_clear(&r);

    /* No JSON at all: every expected value is missed. */
    run(s, expected, "I could not find anything.", &r);
    cr_assert(r.tp == 0 && r.fp == 0 && r.fn == 2);
    cr_assert(strstr(r.detail, "no JSON"), "%s", r.detail);
    slm_eval_score_clear(&r);
    run(s, "\"not an object\"", "{}", &r);
    cr_assert_eq(r.error, SLM_EINVAL);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    /* Without a fields list: numbers by value, also written as strings; nested values. */
    s = mk("fields", NULL);
    run(s, "{\"amount\": 42, \"items\": [\"A\", \"b\"], \"to\": {\"city\": \"Oslo\"}}",
        "{\"amount\": \"42.0\", \"items\": [\"a\", \"B \"], \"to\": {\"city\": \"OSLO\"}, \"extra\": 1}", &r);
    cr_assert(r.pass && r.tp == 3 && r.fp == 0, "tp %d fp %d fn %d: %s", r.tp, r.fp, r.fn, r.detail);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);
}

/* ---- numeric ------------------------------------------------------------------------ */

Test(eval_score, numeric_tolerance) {
    slm_eval_scorer *s = mk("numeric", "{\"tolerance\": 0.01}");
    cr_assert(passes(s, "3.14", "The answer is about 3.141."));
    cr_assert(!passes(s, "3.14", "It is 3.2"));
    cr_assert(passes(s, "-2.5", "x = -2.5"));
    slm_eval_score r;
    run(s, "2.5", "COVID-19", &r);
    cr_assert(!r.pass);
    cr_assert(strstr(r.detail, "got 19"), "%s", r.detail);
    slm_eval_score_clear(&r);
    run(s, "7", "no digits here", &r);
    cr_assert(!r.pass && r.error == 0);
    cr_assert(strstr(r.detail, "no number"), "%s", r.detail);
    slm_eval_score_clear(&r);
    run(s, "\"many\"", "7", &r);
    cr_assert_eq(r.error, SLM_EINVAL);
    slm_eval_score_clear(&r);
    cr_assert(passes(s, "\"1e3\"", "1000"));
    cr_assert(passes(s, "0.5", "about .5 of it"));
    slm_eval_scorer_free(s);

    s = mk("numeric", "{\"tolerance\": 0.01, \"relative\": true}");
    cr_assert(passes(s, "1000", "$1,005 in total"), "1,005 within 1%% of 1000");
    cr_assert(!passes(s, "1000", "$1,011"));
    cr_assert(passes(s, "1234567", "1,234,567"));
    slm_eval_scorer_free(s);

    s = mk("numeric", NULL);
    cr_assert(passes(s, "42", "42"));
    cr_assert(!passes(s, "42", "42.001"));
    slm_eval_scorer_free(s);
}

/* ---- ROUGE-L ------------------------------------------------------------------------- */

static double rouge(const slm_eval_scorer *s, const char *ref_json, const char *cand, bool *pass) {
    slm_eval_score r;
    run(s, ref_json, cand, &r);
    cr_assert_eq(r.error, 0);
    double f = r.score;
    if (pass) *pass = r.pass;
    slm_eval_score_clear(&r);
    return f;
}

Test(eval_score, rouge_l_hand_computed) {
    slm_eval_scorer *s = mk("rouge_l", NULL);
    bool pass;
    /* LCS(police killed the gunman, police kill the gunman) = police the gunman = 3: P = R = F = 3/4. */
    cr_assert_float_eq(rouge(s, "\"police killed the gunman\"", "police kill the gunman", &pass), 0.75, EPS);
    cr_assert(pass);
    /* Case and punctuation do not count. */
    cr_assert_float_eq(rouge(s, "\"police killed the gunman\"", "Police, kill THE gunman!", NULL), 0.75, EPS);
    /* 7 reference tokens, 6 candidate tokens, LCS 6: P = 1, R = 6/7, F = 12/13. */
    cr_assert_float_eq(rouge(s, "\"the cat was found under the bed\"", "the cat was under the bed", NULL),
                       12.0 / 13, EPS);
    /* LCS 2 ("the gunman"): P = R = F = 1/2, which passes the default threshold 0.5. */
    cr_assert_float_eq(rouge(s, "\"police killed the gunman\"", "the gunman killed police", &pass), 0.5, EPS,
                       "%s", "LCS is 2");
    cr_assert(pass);
    cr_assert_float_eq(rouge(s, "\"a b c d\"", "d c b a", &pass), 0.25, EPS);
    cr_assert(!pass);
    cr_assert_eq(rouge(s, "\"police\"", "", NULL), 0.0, "an empty side scores 0");
    cr_assert_float_eq(rouge(s, "\"Zoë über\"", "zoë ÜBER", NULL), 1.0, EPS, "non-ASCII words kept and folded");
    slm_eval_scorer_free(s);
    s = mk("rouge_l", "{\"threshold\": 0.9}");
    rouge(s, "\"police killed the gunman\"", "police kill the gunman", &pass);
    cr_assert(!pass);
    slm_eval_scorer_free(s);
}

/* ---- judge ---------------------------------------------------------------------------- */

typedef struct fake_judge {
    const char *reply;        /* what it answers (NULL: fail)        */
    char target[32];          /* the target it was called with        */
    char prompt[2048];        /* the prompt it got                    */
    int calls;
} fake_judge;

static int fake_judge_fn(void *ud, const char *target, const char *prompt, char **reply, slm_err *err) {
    fake_judge *j = ud;
    j->calls++;
    snprintf(j->target, sizeof j->target, "%s", target);
    snprintf(j->prompt, sizeof j->prompt, "%s", prompt);
    if (!j->reply) { snprintf(err->msg, sizeof err->msg, "upstream returned 503"); err->code = SLM_EIO; return SLM_EIO; }
    *reply = slm_strdup(j->reply);
    return *reply ? 0 : SLM_ENOMEM;
}

static void judge_run(const slm_eval_scorer *s, fake_judge *j, slm_eval_score *r) {
    cJSON *e = cJSON_CreateString("Paris is the capital of France.");
    slm_eval_case_view c = { .id = "j1", .input = "What is the capital of France?", .expected = e,
                             .judge = fake_judge_fn, .judge_ud = j };
    cr_assert_eq(slm_eval_scorer_score(s, &c, "Paris.", r, NULL), 0);
    cJSON_Delete(e);
}

Test(eval_score, judge_with_a_fake_callback) {
    slm_eval_scorer *s = mk("judge", "{\"target\": \"big-model\", \"rubric\": \"Correct capital city?\"}");
    cr_assert_str_eq(slm_eval_scorer_judge_target(s), "big-model");
    fake_judge j = { .reply = "Score: 8\nThe answer is right but terse." };
    slm_eval_score r;
    judge_run(s, &j, &r);
    cr_assert_eq(j.calls, 1);
    cr_assert_str_eq(j.target, "big-model");
    cr_assert(strstr(j.prompt, "Correct capital city?") && strstr(j.prompt, "What is the capital of France?") &&
              strstr(j.prompt, "Paris is the capital of France.") && strstr(j.prompt, "Paris."), "%s", j.prompt);
    cr_assert_float_eq(r.score, 0.8, EPS);
    cr_assert(r.pass, "8 >= pass_score 7");
    cr_assert(strstr(r.detail, "Score: 8"), "%s", r.detail);
    slm_eval_score_clear(&r);

    const struct { const char *reply; double score; bool pass; } ok[] = {
        { "{\"score\": 5, \"reason\": \"partly\"}", 0.5, false },
        { "**Score:** 9/10 — good", 0.9, true },
        { "I'd rate it 7 out of 10.", 0.7, true },
        { "score = 6.5", 0.65, false },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        j.reply = ok[i].reply;
        judge_run(s, &j, &r);
        cr_assert_eq(r.error, 0, "%s: %s", ok[i].reply, r.detail);
        cr_assert_float_eq(r.score, ok[i].score, EPS, "%s: %g", ok[i].reply, r.score);
        cr_assert_eq(r.pass, ok[i].pass, "%s", ok[i].reply);
        slm_eval_score_clear(&r);
    }
    j.reply = "I cannot grade this.";
    judge_run(s, &j, &r);
    cr_assert_eq(r.error, SLM_EFORMAT);
    cr_assert(!r.pass && r.score == 0);
    slm_eval_score_clear(&r);
    j.reply = "Score: 12";
    judge_run(s, &j, &r);
    cr_assert_eq(r.error, SLM_ERANGE);
    slm_eval_score_clear(&r);
    j.reply = NULL;
    judge_run(s, &j, &r);
    cr_assert_eq(r.error, SLM_EIO);
    cr_assert(strstr(r.detail, "503"), "%s", r.detail);
    slm_eval_score_clear(&r);

    /* No callback: a recorded error. */
    run(s, "\"x\"", "y", &r);
    cr_assert_eq(r.error, SLM_EINVAL);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    s = mk("judge", "{\"target\": \"t\", \"scale\": 5, \"pass_score\": 4}");
    j.reply = "Score: 4";
    judge_run(s, &j, &r);
    cr_assert_float_eq(r.score, 0.8, EPS);
    cr_assert(r.pass);
    cr_assert(strstr(j.prompt, "0 to 5"), "%s", j.prompt);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);
}

/* ---- cmd ------------------------------------------------------------------------------- */

static slm_eval_scorer *mk_cmd(const char *command, double timeout) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", command);
    if (timeout > 0) cJSON_AddNumberToObject(o, "timeout", timeout);
    slm_eval_scorer *s = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_eval_scorer_new("cmd", o, &s, &err), 0, "%s", err.msg);
    cJSON_Delete(o);
    return s;
}

Test(eval_score, cmd_prints_a_number_or_an_object) {
    slm_eval_scorer *s = mk_cmd("cat >/dev/null; printf 0.75", 0);
    slm_eval_score r;
    run(s, "\"x\"", "y", &r);
    cr_assert_eq(r.error, 0, "%s", r.detail);
    cr_assert_float_eq(r.score, 0.75, EPS);
    cr_assert(r.pass, "0.75 >= default threshold 0.5");
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    s = mk_cmd("printf '{\"score\": 0.9, \"pass\": false, \"detail\": \"too short\"}\\n'", 0);
    run(s, "\"x\"", "y", &r);
    cr_assert_float_eq(r.score, 0.9, EPS);
    cr_assert(!r.pass, "the command's pass wins");
    cr_assert_str_eq(r.detail, "too short");
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    /* The case arrives on stdin as one JSON object. */
    s = mk_cmd("read -r line; case \"$line\" in "
               "*'\"id\":\"case-1\"'*'\"input\":\"the question\"'*'\"expected\":{\"k\":[1,2]}'*'\"output\":\"a \\\"quoted\\\" answer\"'*) "
               "echo 1;; *) echo 0;; esac", 0);
    run(s, "{\"k\": [1, 2]}", "a \"quoted\" answer", &r);
    cr_assert_eq(r.error, 0, "%s", r.detail);
    cr_assert_eq(r.score, 1.0, "stdin had the expected JSON");
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);
}

Test(eval_score, cmd_errors_are_recorded_not_fatal) {
    slm_eval_score r;
    slm_eval_scorer *s = mk_cmd("printf 'hello'", 0);
    run(s, "\"x\"", "y", &r);
    cr_assert_eq(r.error, SLM_EFORMAT);
    cr_assert(!r.pass && r.score == 0);
    cr_assert(strstr(r.detail, "hello"), "%s", r.detail);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    s = mk_cmd("printf 1.5", 0);
    run(s, "\"x\"", "y", &r);
    cr_assert_eq(r.error, SLM_EFORMAT, "a score outside 0..1 is garbage");
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    s = mk_cmd("echo oops >&2; exit 3", 0);
    run(s, "\"x\"", "y", &r);
    cr_assert_eq(r.error, SLM_EIO);
    cr_assert(strstr(r.detail, "exit status 3") && strstr(r.detail, "oops"), "%s", r.detail);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);

    char msg[256];
    cr_assert_eq(mk_fail("cmd", "{\"command\": \"\"}", msg, sizeof msg), SLM_EINVAL);
    cr_assert_eq(mk_fail("cmd", "{\"command\": \"true\", \"timeout\": 0}", msg, sizeof msg), SLM_EINVAL);
}

Test(eval_score, cmd_timeout_kills_the_command) {
    slm_eval_scorer *s = mk_cmd("sleep 30; echo 1", 0.3);
    slm_eval_score r;
    run(s, "\"x\"", "y", &r);
    cr_assert_eq(r.error, SLM_ETIMEDOUT);
    cr_assert(strstr(r.detail, "timed out"), "%s", r.detail);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);
}

/* A command that never reads a large stdin must not raise SIGPIPE in slm. */
Test(eval_score, cmd_that_ignores_stdin) {
    size_t n = 1 << 20;
    char *big = slm_malloc(n + 1);
    memset(big, 'x', n);
    big[n] = 0;
    slm_eval_scorer *s = mk_cmd("exec 0<&-; printf 1", 0);
    slm_eval_score r;
    run(s, "\"x\"", big, &r);
    cr_assert_eq(r.error, 0, "%s", r.detail);
    cr_assert_eq(r.score, 1.0);
    slm_eval_score_clear(&r);
    slm_eval_scorer_free(s);
    slm_free(big);
}

/* ---- threads, memory --------------------------------------------------------------------- */

typedef struct th_arg { const slm_eval_scorer *re, *cmd, *lab; int ok; } th_arg;

static void *th_main(void *p) {
    th_arg *a = p;
    cJSON *e = cJSON_CreateString("negative");
    for (int i = 0; i < 200; i++) {
        slm_eval_case_view c = { .id = "t", .expected = e };
        slm_eval_score r;
        char out[64];
        snprintf(out, sizeof out, "Straße %d is negative", i);
        if (slm_eval_scorer_score(a->re, &c, out, &r, NULL) == 0 && r.pass) a->ok++;
        slm_eval_score_clear(&r);
        if (slm_eval_scorer_score(a->lab, &c, out, &r, NULL) == 0 && r.pass) a->ok++;
        slm_eval_score_clear(&r);
        if (i % 20 == 0) {
            if (slm_eval_scorer_score(a->cmd, &c, out, &r, NULL) == 0 && r.pass) a->ok++;
            slm_eval_score_clear(&r);
        }
    }
    cJSON_Delete(e);
    return NULL;
}

Test(eval_score, one_scorer_many_threads) {
    slm_eval_scorer *re = mk("regex", "{\"pattern\": \"^stra(ß|ss)e \\\\d+\", \"flags\": \"i\"}");
    slm_eval_scorer *lab = mk("label", "{\"labels\": [\"positive\", \"negative\"]}");
    slm_eval_scorer *cmd = mk_cmd("cat >/dev/null; echo 1", 0);
    enum { NT = 4 };
    pthread_t t[NT];
    th_arg a[NT];
    for (int i = 0; i < NT; i++) {
        a[i] = (th_arg){ re, cmd, lab, 0 };
        cr_assert_eq(pthread_create(&t[i], NULL, th_main, &a[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].ok, 200 + 200 + 10, "thread %d: %d passes", i, a[i].ok);
    }
    slm_eval_scorer_free(re);
    slm_eval_scorer_free(lab);
    slm_eval_scorer_free(cmd);
}

/* Each allocation failing in turn: scorer creation and scoring return
 * SLM_ENOMEM (or succeed), never crash or leak. */
Test(eval_score, out_of_memory_is_an_error) {
    const struct { const char *name, *opts, *expected, *output; } cases[] = {
        { "exact", "{\"normalize\": true}", "[\"a\", \"The B\"]", "the b" },
        { "contains", NULL, "[\"x\", \"y\"]", "x y z" },
        { "label", "{\"labels\": [\"yes\", \"no\"]}", "\"yes\"", "Yes, I think" },
        { "fields", "{\"fields\": [\"a\", \"c\"]}", "{\"a\": \"x\", \"b\": 2}", "```json\n{\"a\": \"X\", \"b\": \"2\", \"c\": null}\n```" },
        { "rouge_l", NULL, "\"police killed the gunman\"", "police kill the gunman" },
        { "numeric", NULL, "3", "3.0" },
        { "json_schema", "{\"schema\": {\"type\": \"object\", \"required\": [\"a\"]}}", NULL, "{\"a\": 1}" },
        { "regex", "{\"pattern\": \"b+\"}", NULL, "abbbc" },
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        for (long k = 1; k < 40; k++) {
            cJSON *o = cases[ci].opts ? cJSON_Parse(cases[ci].opts) : NULL;
            cJSON *e = cases[ci].expected ? cJSON_Parse(cases[ci].expected) : NULL;
            slm_eval_scorer *s = NULL;
            slm_alloc_fail_after(k);
            int rc = slm_eval_scorer_new(cases[ci].name, o, &s, NULL);
            slm_alloc_fail_after(0);
            cr_assert(rc == 0 || rc == SLM_ENOMEM, "%s: %d", cases[ci].name, rc);
            if (rc == 0) {
                slm_eval_case_view c = { .id = "m", .expected = e };
                slm_eval_score r;
                slm_alloc_fail_after(k);
                rc = slm_eval_scorer_score(s, &c, cases[ci].output, &r, NULL);
                slm_alloc_fail_after(0);
                cr_assert(rc == 0 || rc == SLM_ENOMEM, "%s at %ld: %d", cases[ci].name, k, rc);
                if (rc == 0) cr_assert(r.error == 0 ? r.pass : r.error == SLM_ENOMEM, "%s at %ld: error %d",
                                       cases[ci].name, k, r.error);
                slm_eval_score_clear(&r);
            }
            slm_eval_scorer_free(s);
            cJSON_Delete(o);
            cJSON_Delete(e);
        }
    }
}
