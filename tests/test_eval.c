/*
 * test_eval.c — `slm eval` end to end. The tests drive the CLI as a user
 * does and read the SQLite database it writes. Upstreams are real: two
 * `slm serve` instances on free ports with small synth models, an
 * in-process model, and a fake OpenAI-compatible upstream in this process
 * (libmicrohttpd, tests/eval_upstream.h) that answers from the prompt's
 * directives and injects failures: 500s, 429 with Retry-After, hangs past
 * the target's timeout, malformed JSON, 400s. Timings are never asserted.
 * No test sets Criterion's .timeout: with --jobs=2 the runner then leaks a
 * timer record now and again (LeakSanitizer fails the ASan run); every wait
 * here is bounded by the CLI's own per-target timeouts instead.
 */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eval/suite.h"
#include "eval/target.h"
#include "eval_upstream.h"
#include "helpers.h"

#define SMALL "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --vocab-size 300"

/* ---- helpers ----------------------------------------------------------------------- */

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A file of the repository: from the working directory, else from $SLM_BIN
 * (build/<kind>/slm is two levels below the root). */
static const char *repo_file(const char *rel) {
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    if (access(rel, R_OK) == 0) {
        snprintf(b, 1024, "%s", rel);
        return b;
    }
    char bin[900];
    snprintf(bin, sizeof bin, "%s", th_slm_bin());
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(bin, '/');
        if (!slash) break;
        *slash = 0;
    }
    snprintf(b, 1024, "%s/%s", bin, rel);
    return b;
}

/* Runs `slm ARGS` (stderr merged unless err_to is given); returns the exit status. */
static int slm(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int slm(char **out, const char *fmt, ...) {
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s", th_slm_bin(), args);
    return th_run(cmd, out);
}

static void write_text(const char *path, const char *text) {
    cr_assert_eq(th_write_file(path, text, strlen(text)), 0, "cannot write %s", path);
}

static int db_int(const char *db, const char *sql) {
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "open %s", db);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static char *db_text(const char *db, const char *sql) {
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    char *v = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static const cJSON *target_json(const cJSON *summary, const char *name) {
    const cJSON *ts = cJSON_GetObjectItem(summary, "targets");
    for (const cJSON *t = ts ? ts->child : NULL; t; t = t->next)
        if (!strcmp(cJSON_GetObjectItem(t, "name")->valuestring, name)) return t;
    cr_assert_fail("no target %s in the summary", name);
    return NULL;
}

static int jint(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsNumber(v), "%s is not a number", k);
    return v->valueint;
}

/* The JSON summary printed by --json: the first line that starts with '{'. */
static cJSON *summary_of(const char *out) {
    const char *p = out;
    while (p && *p && *p != '{') {
        p = strchr(p, '\n');
        if (p) p++;
    }
    cJSON *j = p && *p ? cJSON_ParseWithOpts(p, NULL, false) : NULL;
    cr_assert(j, "no JSON summary in: %s", out ? out : "(null)");
    return j;
}

/* ---- `slm serve` instances ------------------------------------------------------------ */

typedef struct server { pid_t pid; int port; char log[512]; } server;

static server serve_start(const char *model) {
    server s = { 0 };
    static int k;
    snprintf(s.log, sizeof s.log, "%s", th_tmp(""));
    snprintf(s.log + strlen(s.log), sizeof s.log - strlen(s.log), "serve-%d-%d.log", (int)getpid(), k++);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s serve -m %s --port 0 -t 1 --alias synth 2>%s", th_slm_bin(), model, s.log);
    s.pid = fork();
    cr_assert(s.pid >= 0);
    if (s.pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000 && !s.port; i++) {
        char *log = th_read_file(s.log, NULL);
        const char *at = log ? strstr(log, "listening on http://127.0.0.1:") : NULL;
        if (at) s.port = atoi(at + strlen("listening on http://127.0.0.1:"));
        free(log);
        int st;
        cr_assert(s.port || waitpid(s.pid, &st, WNOHANG) != s.pid, "slm serve exited at start");
        if (!s.port) sleep_ms(10);
    }
    cr_assert(s.port > 0, "no port in the log of slm serve");
    /* "ready:" once the model is loaded and warmed up */
    bool ready = false;
    for (int i = 0; i < 3000 && !ready; i++) {
        char *log = th_read_file(s.log, NULL);
        ready = log && strstr(log, "slm: ready:");
        free(log);
        if (!ready) sleep_ms(10);
    }
    cr_assert(ready, "slm serve never became ready");
    return s;
}

static void serve_stop(server *s) {
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 3000; i++) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) return;
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
}

/* ---- suites ------------------------------------------------------------------------------ */

Test(eval, shipped_suites_parse) {
    struct { const char *file; int n; const char *scorer; } want[] = {
        { "examples/eval/email-triage.jsonl", 160, "label" },
        { "examples/eval/email-triage-heldout.jsonl", 40, "label" },
        { "examples/eval/email-extract.jsonl", 100, "fields" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        slm_eval_suite *s = NULL;
        slm_err err = { 0 };
        const char *path = repo_file(want[i].file);
        cr_assert_eq(slm_eval_suite_load(path, &s, &err), 0, "%s: %s", path, err.msg);
        cr_assert_eq(s->n_cases, want[i].n, "%s: %d cases", path, s->n_cases);
        cr_assert_str_eq(slm_eval_scorer_name(s->cases[0].scorer), want[i].scorer);
        cr_assert(s->system && s->system[0], "%s: no system prompt", path);
        for (int c = 0; c < s->n_cases; c++) {
            cr_assert(s->cases[c].expected, "%s: case %s has no expected", path, s->cases[c].id);
            cr_assert(strlen(s->cases[c].input) < 2600, "%s: case %s is long", path, s->cases[c].id);
        }
        slm_eval_suite_free(s);
    }
}

Test(eval, suite_errors_name_the_line) {
    const char *p = th_tmp("bad.jsonl");
    struct { const char *text, *want; } cases[] = {
        { "{\"suite\":{\"name\":\"x\"}}\n{\"id\":\"a\",\"prompt\":\"p\"}\n{not json}\n", "bad.jsonl:3: not valid JSON" },
        { "{\"id\":\"a\",\"prompt\":\"p\"}\n{\"id\":\"a\",\"prompt\":\"q\"}\n", "bad.jsonl:2: id 'a' repeats line 1" },
        { "{\"id\":\"a\",\"prompt\":\"p\",\"expectd\":1}\n", "bad.jsonl:1: unknown key 'expectd'" },
        { "{\"id\":\"a\"}\n", "bad.jsonl:1: give either" },
        { "{\"id\":\"a\",\"prompt\":\"p\",\"params\":{\"max_tokens\":0}}\n", "bad.jsonl:1: params.max_tokens" },
        { "{\"id\":\"a\",\"prompt\":\"p\",\"scorer\":\"nope\"}\n", "bad.jsonl:1: unknown scorer 'nope'" },
        { "{\"id\":\"a\",\"prompt\":\"p\"}\n{\"suite\":{\"name\":\"late\"}}\n", "bad.jsonl:2: the suite header must be the first line" },
        { "\n\n", "no cases" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(p, cases[i].text);
        slm_eval_suite *s = NULL;
        slm_err err = { 0 };
        cr_assert_neq(slm_eval_suite_load(p, &s, &err), 0, "case %zu loaded", i);
        cr_assert(strstr(err.msg, cases[i].want), "case %zu: '%s' lacks '%s'", i, err.msg, cases[i].want);
    }
}

Test(eval, header_file_and_filters) {
    write_text(th_tmp("h.jsonl"), "{\"id\":\"a\",\"prompt\":\"p\",\"tags\":[\"x\"]}\n{\"id\":\"b\",\"prompt\":\"q\",\"tags\":[\"y\"]}\n"
                                  "{\"id\":\"c\",\"prompt\":\"r\",\"tags\":[\"x\"],\"params\":{\"max_tokens\":5}}\n");
    write_text(th_tmp("h.json"), "{\"name\":\"hdr\",\"scorer\":\"contains\",\"system\":\"S\",\"params\":{\"max_tokens\":9},"
                                 "\"prices\":{\"m\":[1,2]},\"cases\":\"h.jsonl\"}");
    slm_eval_suite *s = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_eval_suite_load(th_tmp("h.json"), &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s->name, "hdr");
    cr_assert_eq(s->n_cases, 3);
    cr_assert_str_eq(slm_eval_scorer_name(s->cases[0].scorer), "contains");
    cr_assert_eq(cJSON_GetArraySize(s->cases[0].messages), 2, "system prompt first");
    cr_assert_eq(cJSON_GetObjectItem(s->cases[2].params, "max_tokens")->valueint, 5);
    cr_assert_eq(cJSON_GetObjectItem(s->cases[1].params, "max_tokens")->valueint, 9);
    double in, out;
    cr_assert(slm_eval_suite_price(s, "t", "m", &in, &out) && in == 1 && out == 2);
    const char *tags[] = { "x" };
    slm_eval_suite_filter(s, tags, 1, 0);
    cr_assert_eq(s->n_cases, 2);
    cr_assert_str_eq(s->cases[1].id, "c");
    slm_eval_suite_filter(s, NULL, 0, 1);
    cr_assert_eq(s->n_cases, 1);
    slm_eval_suite_free(s);
}

Test(eval, init_writes_a_suite_that_loads) {
    const char *dir = th_tmp("init");
    char *out = NULL;
    cr_assert_eq(slm(&out, "eval init %s 2>&1", dir), 0, "%s", out);
    free(out);
    char path[600];
    snprintf(path, sizeof path, "%s/example.jsonl", dir);
    slm_eval_suite *s = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_eval_suite_load(path, &s, &err), 0, "%s", err.msg);
    cr_assert_geq(s->n_cases, 6);
    slm_eval_suite_free(s);
    cr_assert_neq(slm(&out, "eval init %s 2>&1", dir), 0, "overwrote the example");
    free(out);
}

/* An in-process target enforces response_format while decoding, as slm
 * serve does: even a random-weight model answers with JSON matching the
 * schema, so the json_schema scorer passes every case. */
Test(eval, local_target_constrains_json) {
    const char *m = th_synth("llama", "f32", SMALL);
    const char *suite = th_tmp("json.jsonl");
    write_text(suite,
               "{\"suite\":{\"name\":\"json\",\"scorer\":{\"name\":\"json_schema\",\"schema\":{\"type\":\"object\","
               "\"properties\":{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"]}},"
               "\"params\":{\"max_tokens\":600,\"temperature\":0,\"response_format\":{\"type\":\"json_schema\","
               "\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},"
               "\"required\":[\"ok\"],\"additionalProperties\":false}}}}}}\n"
               "{\"id\":\"1\",\"prompt\":\"Is the sky blue?\",\"expected\":null}\n"
               "{\"id\":\"2\",\"prompt\":\"Is water dry?\",\"expected\":null}\n"
               "{\"id\":\"3\",\"prompt\":\"Any object\",\"expected\":null,\"params\":{\"response_format\":\"json_object\"},"
               "\"scorer\":\"json_valid\"}\n");
    char *out = NULL;
    int rc = slm(&out, "eval run %s --db %s --json --target local=%s,threads=1 2>&1", suite, th_tmp("json.db"), m);
    cr_assert_eq(rc, 0, "eval run failed: %s", out);
    cJSON *j = summary_of(out);
    const cJSON *t = target_json(j, "local");
    cr_assert_eq(jint(t, "errors"), 0, "%s", out);
    cr_assert_eq(jint(t, "pass"), 3, "every constrained answer is valid: %s", out);
    cJSON_Delete(j);
    free(out);
}

/* ---- real targets: two servers and an in-process model ------------------------------------ */

Test(eval, servers_and_local_model) {
    const char *m1 = th_synth("llama", "f32", SMALL);
    const char *m2 = th_synth("qwen2", "q8_0", SMALL);
    cr_assert(m1 && m2);
    server a = serve_start(m1), b = serve_start(m2);
    const char *suite = th_tmp("s.jsonl");
    write_text(suite, "{\"suite\":{\"name\":\"smoke\",\"scorer\":\"contains\",\"params\":{\"max_tokens\":6,\"temperature\":0}}}\n"
                      "{\"id\":\"1\",\"prompt\":\"Say hi\",\"expected\":\"hi\",\"tags\":[\"greet\"]}\n"
                      "{\"id\":\"2\",\"prompt\":\"Count to three\",\"expected\":\"3\"}\n"
                      "{\"id\":\"3\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"},{\"role\":\"assistant\",\"content\":\"Hi\"},"
                      "{\"role\":\"user\",\"content\":\"Bye\"}],\"expected\":\"bye\",\"tags\":[\"greet\"]}\n"
                      "{\"id\":\"4\",\"prompt\":\"Colour of the sky?\",\"expected\":\"blue\",\"scorer\":\"exact\"}\n");
    const char *db = th_tmp("serve.db");
    char *out = NULL;
    int rc = slm(&out, "eval run %s --db %s --json --target a=http://127.0.0.1:%d/v1,model=synth "
                       "--target b=http://127.0.0.1:%d,concurrency=2 --target local=%s,threads=1 --price a=1,2 2>/dev/null",
                 suite, db, a.port, b.port, m1);
    serve_stop(&a);
    serve_stop(&b);
    cr_assert_eq(rc, 0, "eval run failed: %s", out);
    cJSON *j = summary_of(out);
    for (int i = 0; i < 3; i++) {
        const char *name = (const char *[]){ "a", "b", "local" }[i];
        const cJSON *t = target_json(j, name);
        cr_assert_eq(jint(t, "n"), 4, "%s", name);
        cr_assert_eq(jint(t, "scored"), 4, "%s: %s", name, out);
        cr_assert_eq(jint(t, "errors"), 0, "%s", name);
        cr_assert_gt(jint(t, "tokens_out"), 0, "%s: no tokens", name);
    }
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(target_json(j, "a"), "cost")), "priced target has a cost");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(target_json(j, "local"), "cost")), "unpriced target: null cost");
    char id[32];
    snprintf(id, sizeof id, "%s", cJSON_GetObjectItem(j, "run")->valuestring);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM results WHERE run_id = '%s' AND score IS NOT NULL AND output IS NOT NULL", id);
    cr_assert_eq(db_int(db, sql), 12);
    cr_assert_eq(db_int(db, "PRAGMA user_version"), 1);
    char *mode = db_text(db, "PRAGMA journal_mode");
    cr_assert_str_eq(mode, "wal");
    free(mode);
    snprintf(sql, sizeof sql, "SELECT suite_hash || ':' || status FROM runs WHERE id = '%s'", id);
    char *row = db_text(db, sql);
    cr_assert(row && strstr(row, ":done") && strlen(row) == 16 + 5, "run row: %s", row ? row : "(none)");
    free(row);
    cJSON_Delete(j);
    free(out);
    /* the report regenerates from the database, by id prefix */
    char prefix[8];
    snprintf(prefix, sizeof prefix, "%.6s", id);
    cr_assert_eq(slm(&out, "eval report %s --db %s 2>&1", prefix, db), 0, "%s", out);
    cr_assert(strstr(out, "results: 12 scored, 0 errors"), "%s", out);
    free(out);
    cr_assert_eq(slm(&out, "eval runs --db %s 2>&1", db), 0, "%s", out);
    cr_assert(strstr(out, id), "runs lacks %s: %s", id, out);
    free(out);
}

Test(eval, lora_is_refused_clearly) {
    const char *m = th_synth("llama", "f32", SMALL);
    const char *suite = th_tmp("l.jsonl");
    write_text(suite, "{\"id\":\"1\",\"prompt\":\"x\",\"expected\":\"y\"}\n");
    char *out = NULL;
    int rc = slm(&out, "eval run %s --db %s --target t=%s,lora=adapter.gguf 2>&1", suite, th_tmp("l.db"), m);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "not supported yet"), "%s", out);
    free(out);
    rc = slm(&out, "eval run %s --target nope 2>&1", suite);
    cr_assert_eq(rc, 2, "%s", out);
    free(out);
}

/* ---- a faulty upstream -------------------------------------------------------------------------- */

Test(eval, faults_are_retried_and_recorded) {
    eval_upstream *up = eval_upstream_start();
    cr_assert(up, "fake upstream did not start");
    const char *suite = th_tmp("f.jsonl");
    write_text(suite, "{\"suite\":{\"name\":\"faults\",\"scorer\":\"exact\"}}\n"
                      "{\"id\":\"ok\",\"prompt\":\"mode:ok answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"e500once\",\"prompt\":\"mode:500once answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"e429once\",\"prompt\":\"mode:429once answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"e500\",\"prompt\":\"mode:500always answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"hang\",\"prompt\":\"mode:hang answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"badjson\",\"prompt\":\"mode:badjson answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"nochoices\",\"prompt\":\"mode:nochoices answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"e400\",\"prompt\":\"mode:400 answer:yes\",\"expected\":\"yes\"}\n"
                      "{\"id\":\"wrong\",\"prompt\":\"mode:ok answer:no\",\"expected\":\"yes\"}\n");
    const char *db = th_tmp("f.db");
    char *out = NULL;
    int rc = slm(&out, "eval run %s --db %s --json --target f=http://127.0.0.1:%d/v1,model=m,timeout=0.5,retries=2,backoff_ms=10,"
                       "concurrency=4 2>/dev/null",
                 suite, db, eval_upstream_port(up));
    cr_assert_eq(rc, 0, "%s", out);
    cJSON *j = summary_of(out);
    const cJSON *t = target_json(j, "f");
    cr_assert_eq(jint(t, "n"), 9);
    cr_assert_eq(jint(t, "scored"), 4, "%s", out);
    cr_assert_eq(jint(t, "errors"), 5, "%s", out);
    cr_assert_eq(jint(t, "pass"), 3);
    cr_assert_eq(jint(j, "errors"), 5);
    const char *id = cJSON_GetObjectItem(j, "run")->valuestring;
    struct { const char *case_id; int attempts; const char *error; } want[] = {
        { "ok", 1, NULL }, { "e500once", 2, NULL }, { "e429once", 2, NULL }, { "e500", 3, "HTTP 500" },
        { "hang", 3, "timed out" }, { "badjson", 1, "malformed JSON" }, { "nochoices", 1, "malformed JSON" },
        { "e400", 1, "HTTP 400" }, { "wrong", 1, NULL },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char sql[300];
        snprintf(sql, sizeof sql, "SELECT attempts FROM results WHERE run_id = '%s' AND case_id = '%s'", id, want[i].case_id);
        cr_assert_eq(db_int(db, sql), want[i].attempts, "%s: attempts", want[i].case_id);
        snprintf(sql, sizeof sql, "SELECT COALESCE(error, '') || '|' || COALESCE(score, 'null') FROM results WHERE run_id = '%s' AND case_id = '%s'",
                 id, want[i].case_id);
        char *row = db_text(db, sql);
        cr_assert(row, "%s: no result row", want[i].case_id);
        if (want[i].error) cr_assert(strstr(row, want[i].error) && strstr(row, "|null"), "%s: %s", want[i].case_id, row);
        else cr_assert(row[0] == '|' && !strstr(row, "null"), "%s: %s", want[i].case_id, row);
        free(row);
    }
    cr_assert_geq(eval_upstream_requests(up, "mode:429once"), 2, "429 was retried");
    cJSON_Delete(j);
    free(out);
    cr_assert_eq(slm(&out, "eval report latest --db %s 2>&1", db), 0, "%s", out);
    cr_assert(strstr(out, "results: 4 scored, 5 errors, 4 retried"), "%s", out);
    free(out);
    eval_upstream_stop(up);
}

/* ---- the regression gate, compare, reports ------------------------------------------------------------- */

static char *run_id_of(const char *out) {
    cJSON *j = summary_of(out);
    char *id = strdup(cJSON_GetObjectItem(j, "run")->valuestring);
    cJSON_Delete(j);
    return id;
}

Test(eval, gate_compare_and_reports) {
    eval_upstream *up = eval_upstream_start();
    cr_assert(up);
    const char *suite = th_tmp("g.jsonl");
    char text[4096] = "{\"suite\":{\"name\":\"gate\",\"scorer\":\"exact\"}}\n";
    for (int i = 0; i < 12; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "{\"id\":\"q%d\",\"prompt\":\"mode:ok%s answer:a%d\",\"expected\":\"a%d\",\"tags\":[\"%s\"]}\n", i,
                 i % 4 == 0 ? " hard" : "", i, i, i % 2 ? "odd" : "even");
    write_text(suite, text);
    const char *db = th_tmp("g.db");
    int port = eval_upstream_port(up);
    char *out = NULL;
    cr_assert_eq(slm(&out, "eval run %s --db %s --json --target t=http://127.0.0.1:%d/v1,model=good 2>/dev/null", suite, db, port), 0,
                 "%s", out);
    char *base = run_id_of(out);
    free(out);
    /* "bad" gets the hard cases wrong: 3 of 12 = -25 points */
    int rc = slm(&out, "eval run %s --db %s --target t=http://127.0.0.1:%d/v1,model=bad --baseline %s --max-drop 1.0 2>&1", suite, db,
                 port, base);
    cr_assert_eq(rc, 1, "worse run passed the gate: %s", out);
    cr_assert(strstr(out, "gate: FAIL"), "%s", out);
    free(out);
    rc = slm(&out, "eval run %s --db %s --json --target t=http://127.0.0.1:%d/v1,model=good --baseline %s --max-drop 1.0 2>&1", suite,
             db, port, base);
    cr_assert_eq(rc, 0, "equal run failed the gate: %s", out);
    cr_assert(strstr(out, "gate: PASS"), "%s", out);
    free(out);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT id FROM runs WHERE id != '%s' AND baseline = '%s' ORDER BY started LIMIT 1", base, base);
    char *bad = db_text(db, sql);
    cr_assert(bad, "the bad run is recorded with its baseline");
    /* compare lists the flipped cases */
    cr_assert_eq(slm(&out, "eval compare %s %s --db %s --md %s 2>&1", base, bad, db, th_tmp("cmp.md")), 0, "%s", out);
    cr_assert(strstr(out, "pass -> fail (3): q0, q4, q8"), "%s", out);
    cr_assert(strstr(out, "fail -> pass (0)"), "%s", out);
    cr_assert(strstr(out, "McNemar"), "%s", out);
    cr_assert(strstr(out, "even"), "per-tag deltas: %s", out);
    free(out);
    cr_assert_eq(slm(&out, "eval compare %s %s --db %s --json 2>/dev/null", base, bad, db), 0);
    cJSON *cj = cJSON_Parse(out);
    cr_assert(cj, "%s", out);
    const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cj, "targets"), 0);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t0, "pass_to_fail")), 3);
    cr_assert_float_eq(cJSON_GetObjectItem(t0, "delta")->valuedouble, -25.0, 1e-6);
    cJSON_Delete(cj);
    free(out);
    /* reports regenerate from the database */
    const char *html = th_tmp("r.html"), *md = th_tmp("r.md");
    cr_assert_eq(slm(&out, "eval report %s --db %s --html %s --md %s 2>&1", bad, db, html, md), 0, "%s", out);
    free(out);
    char *h = th_read_file(html, NULL), *m = th_read_file(md, NULL);
    cr_assert(h && m);
    cr_assert(strstr(h, "<svg"), "no chart");
    cr_assert(!strstr(h, "http://") && !strstr(h, "https://"), "the HTML refers outside itself");
    cr_assert(!strstr(h, "<script") && !strstr(h, "<link"), "the HTML loads something");
    cr_assert(strstr(m, "| t |") && strstr(m, "## By tag"), "%s", m);
    free(h);
    free(m);
    free(base);
    free(bad);
    eval_upstream_stop(up);
}

Test(eval, triage_suite_against_fake_upstream) {
    eval_upstream *up = eval_upstream_start();
    cr_assert(up);
    const char *db = th_tmp("t.db");
    char *out = NULL;
    int rc = slm(&out, "eval run %s --limit 6 --db %s --json --target spamfilter=http://127.0.0.1:%d/v1,model=triage 2>/dev/null",
                 repo_file("examples/eval/email-triage.jsonl"), db, eval_upstream_port(up));
    cr_assert_eq(rc, 0, "%s", out);
    cJSON *j = summary_of(out);
    const cJSON *t = target_json(j, "spamfilter");
    cr_assert_eq(jint(t, "n"), 6);
    cr_assert_eq(jint(t, "scored"), 6);
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(t, "macro_f1")), "label metrics: %s", out);
    cJSON_Delete(j);
    free(out);
    /* the extraction suite too: the fake answers with JSON */
    rc = slm(&out, "eval run %s --limit 4 --db %s --json --target x=http://127.0.0.1:%d/v1,model=extract 2>/dev/null",
             repo_file("examples/eval/email-extract.jsonl"), db, eval_upstream_port(up));
    cr_assert_eq(rc, 0, "%s", out);
    j = summary_of(out);
    t = target_json(j, "x");
    cr_assert_eq(jint(t, "scored"), 4);
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(t, "micro_f1")), "field metrics: %s", out);
    cJSON_Delete(j);
    free(out);
    eval_upstream_stop(up);
}

Test(eval, judge_scorer_calls_a_judge_target) {
    eval_upstream *up = eval_upstream_start();
    cr_assert(up);
    int port = eval_upstream_port(up);
    const char *suite = th_tmp("j.jsonl");
    write_text(suite, "{\"suite\":{\"name\":\"judged\",\"scorer\":{\"name\":\"judge\",\"target\":\"j\",\"rubric\":\"Is it right?\"}}}\n"
                      "{\"id\":\"good\",\"prompt\":\"answer:Paris\",\"expected\":\"Paris\"}\n"
                      "{\"id\":\"poor\",\"prompt\":\"answer:Lyon\",\"expected\":\"the capital\"}\n");
    char *out = NULL;
    int rc = slm(&out, "eval run %s --db %s --json --target t=http://127.0.0.1:%d/v1,model=m --judge j=http://127.0.0.1:%d/v1,model=judge "
                       "2>&1", suite, th_tmp("j.db"), port, port);
    cr_assert_eq(rc, 0, "%s", out);
    cJSON *j = summary_of(out);
    const cJSON *t = target_json(j, "t");
    cr_assert_eq(jint(t, "scored"), 2, "%s", out);
    cr_assert_eq(jint(t, "pass"), 1, "%s", out);
    cr_assert_float_eq(cJSON_GetObjectItem(t, "score")->valuedouble, 55.0, 1e-6, "%s", out);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "targets")), 1, "the judge is not evaluated");
    cJSON_Delete(j);
    free(out);
    rc = slm(&out, "eval run %s --db %s --target t=http://127.0.0.1:%d/v1,model=m 2>&1", suite, th_tmp("j.db"), port);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "--judge j="), "%s", out);
    free(out);
    eval_upstream_stop(up);
}

Test(eval, target_specs) {
    slm_eval_target_cfg c;
    slm_err err = { 0 };
    cr_assert_eq(slm_eval_target_cfg_parse("a=http://h:1/v1,model=m,key_env=K,concurrency=3,rps=2.5,timeout=1.5,retries=0,"
                                           "backoff_ms=5,in=1,out=2", &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.name, "a");
    cr_assert_str_eq(c.url, "http://h:1/v1");
    cr_assert_str_eq(c.model, "m");
    cr_assert_str_eq(c.key_env, "K");
    cr_assert(c.concurrency == 3 && c.rps == 2.5 && c.timeout_s == 1.5 && c.retries == 0 && c.backoff_ms == 5);
    cr_assert(c.has_price && c.price_in == 1 && c.price_out == 2);
    slm_eval_target_cfg_clear(&c);
    cr_assert_eq(slm_eval_target_cfg_parse("loc=models/x.gguf,threads=2,ctx=512,template=chatml,lora=a.gguf", &c, &err), 0);
    cr_assert(!c.url && !strcmp(c.model, "models/x.gguf") && c.threads == 2 && c.n_ctx == 512 && !strcmp(c.lora, "a.gguf"));
    slm_eval_target_cfg_clear(&c);
    cr_assert_eq(slm_eval_target_cfg_parse("b=https://x/v1", &c, &err), 0);
    cr_assert_str_eq(c.model, "b", "the model defaults to the target's name");
    slm_eval_target_cfg_clear(&c);
    const char *bad[] = { "noequals", "=http://x", "a=", "a=http://x,lora=y", "a=m.gguf,key_env=K", "a=http://x,rps=-1",
                          "a=http://x,concurrency=0", "a=http://x,bogus=1", "a b=http://x", "a=http://x,timeout" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_neq(slm_eval_target_cfg_parse(bad[i], &c, &err), 0, "'%s' parsed", bad[i]);
}

Test(eval, connect_errors_and_missing_keys) {
    const char *suite = th_tmp("c.jsonl");
    write_text(suite, "{\"id\":\"1\",\"prompt\":\"x\",\"expected\":\"y\"}\n");
    const char *db = th_tmp("c.db");
    char *out = NULL;
    /* port 1 on loopback: nothing listens, every attempt is a connect error */
    int rc = slm(&out, "eval run %s --db %s --json --target a=http://127.0.0.1:1/v1,retries=2,backoff_ms=5 2>/dev/null", suite, db);
    cr_assert_eq(rc, 0, "%s", out);
    cJSON *j = summary_of(out);
    cr_assert_eq(jint(target_json(j, "a"), "errors"), 1);
    cJSON_Delete(j);
    free(out);
    cr_assert_eq(db_int(db, "SELECT attempts FROM results"), 3);
    char *e = db_text(db, "SELECT error FROM results");
    cr_assert(e && strstr(e, "connect"), "%s", e ? e : "(null)");
    free(e);
    rc = slm(&out, "eval run %s --db %s --target a=http://127.0.0.1:1/v1,key_env=SLM_TEST_NO_SUCH_VARIABLE 2>&1", suite, db);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "SLM_TEST_NO_SUCH_VARIABLE") && strstr(out, "not set"), "%s", out);
    free(out);
    rc = slm(&out, "eval run %s --db %s --target a=http://127.0.0.1:1/v1 --baseline ffff 2>&1", suite, db);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "--baseline"), "%s", out);
    free(out);
}
