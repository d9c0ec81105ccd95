/*
 * test_serve.c — `slm serve` as a client sees it: each test starts the
 * server on a free port (--port 0; the port is read from its log) with a
 * small synth model, talks HTTP/1.1 to it over a plain socket (chunked
 * responses decoded), and checks statuses, OpenAI's error shape, the
 * response objects, SSE framing, limits, auth, cancellation and the drain on
 * SIGTERM. The last test runs the Node scripts in tests/js (the official
 * `openai` client) against a server; it skips only when node is missing.
 */
#include <arpa/inet.h>
#include <cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "serve/metrics.h"
#include "slm/slm.h"
#include "util/json.h"

#define SMALL "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --vocab-size 300"

/* ---- a server per test ----------------------------------------------------- */

typedef struct server { pid_t pid; int port; char log[512]; } server;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

typedef struct resp { int status; char *head, *body; size_t len; } resp;
static void resp_free(resp *r) { free(r->head); free(r->body); memset(r, 0, sizeof *r); }
static int http(int port, const char *method, const char *path, const char *extra, const char *body, resp *out);

/* Starts `slm serve -m MODEL --port 0 ARGS` and waits for /health 200. */
static server start(const char *model, const char *args) {
    server s = { 0 };
    static int k;
    snprintf(s.log, sizeof s.log, "%s", th_tmp(""));
    snprintf(s.log + strlen(s.log), sizeof s.log - strlen(s.log), "serve-%d-%d.log", (int)getpid(), k++);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s serve -m %s --port 0 -t 1 %s 2>%s", th_slm_bin(), model, args ? args : "", s.log);
    s.pid = fork();
    cr_assert(s.pid >= 0);
    if (s.pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = now_s();
    while (!s.port && now_s() - t0 < 30) {
        char *log = th_read_file(s.log, NULL);
        const char *at = log ? strstr(log, "listening on http://127.0.0.1:") : NULL;
        if (at) s.port = atoi(at + strlen("listening on http://127.0.0.1:"));
        free(log);
        int st;
        if (!s.port && waitpid(s.pid, &st, WNOHANG) == s.pid) {
            char *l = th_read_file(s.log, NULL);
            cr_assert_fail("slm serve exited at start: %s", l ? l : "");
        }
        if (!s.port) sleep_ms(20);
    }
    cr_assert(s.port > 0, "no port in the log");
    for (;;) {
        resp r;
        int rc = http(s.port, "GET", "/health", NULL, NULL, &r);
        int st = r.status;
        resp_free(&r);
        if (rc == 0 && st == 200) break;
        cr_assert(now_s() - t0 < 30, "/health never became 200");
        sleep_ms(20);
    }
    return s;
}

/* SIGTERM, then the exit status (or -1 after 30 s). */
static int stop(server *s) {
    kill(s->pid, SIGTERM);
    double t0 = now_s();
    int st;
    while (now_s() - t0 < 30) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        sleep_ms(20);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    return -1;
}

/* ---- a tiny HTTP client ------------------------------------------------------ */

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 120, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_request(int fd, const char *method, const char *path, const char *extra, const char *body) {
    char head[2048];
    size_t blen = body ? strlen(body) : 0;
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s\r\n", method, path,
             body ? "Content-Type: application/json\r\n" : "", extra ? extra : "", "");
    char cl[64] = "";
    if (body) snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", blen);
    /* Content-Length goes before the blank line */
    head[strlen(head) - 2] = 0;
    if (send_all(fd, head, strlen(head)) || send_all(fd, cl, strlen(cl)) || send_all(fd, "\r\n", 2)) return -1;
    return body ? send_all(fd, body, blen) : 0;
}

/* Decodes a chunked body in place; returns the decoded length. */
static size_t dechunk(char *b, size_t n) {
    size_t in = 0, out = 0;
    while (in < n) {
        char *end;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *nl = strstr(end, "\r\n");
        if (!nl) break;
        in = (size_t)(nl - b) + 2;
        if (sz == 0 || in + sz > n) break;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz + 2;
    }
    b[out] = 0;
    return out;
}

static int read_response(int fd, resp *out) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep) {
        free(buf);
        return -1;
    }
    *sep = 0;
    out->head = strdup(buf);
    out->status = atoi(strchr(buf, ' ') ? strchr(buf, ' ') + 1 : "0");
    size_t blen = n - (size_t)(sep + 4 - buf);
    out->body = malloc(blen + 1);
    memcpy(out->body, sep + 4, blen);
    out->body[blen] = 0;
    out->len = blen;
    if (strcasestr(out->head, "transfer-encoding: chunked")) out->len = dechunk(out->body, blen);
    free(buf);
    return 0;
}

static int http(int port, const char *method, const char *path, const char *extra, const char *body, resp *out) {
    memset(out, 0, sizeof *out);
    int fd = connect_to(port);
    if (fd < 0) return -1;
    int rc = send_request(fd, method, path, extra, body);
    if (rc == 0) rc = read_response(fd, out);
    close(fd);
    return rc;
}

static cJSON *post_json(const server *s, const char *path, const char *body, int want_status) {
    resp r;
    cr_assert_eq(http(s->port, "POST", path, NULL, body, &r), 0, "no response to %s", body);
    cr_assert_eq(r.status, want_status, "status %d, want %d for %s: %s", r.status, want_status, body, r.body);
    cJSON *j = cJSON_Parse(r.body);
    cr_assert(j, "not JSON: %s", r.body);
    resp_free(&r);
    return j;
}

static const char *jstr(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *x = o;
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && x; k = strtok_r(NULL, ".", &save))
        x = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(x, atoi(k)) : cJSON_GetObjectItemCaseSensitive(x, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static const cJSON *jget(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *x = o;
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && x; k = strtok_r(NULL, ".", &save))
        x = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(x, atoi(k)) : cJSON_GetObjectItemCaseSensitive(x, k);
    return x;
}

static double jnum(const cJSON *o, const char *path) {
    const cJSON *x = jget(o, path);
    cr_assert(cJSON_IsNumber(x), "%s is not a number", path);
    return x->valuedouble;
}

/* An OpenAI error: {"error":{"message","type","param","code"}} with this type. */
static void expect_error(const server *s, const char *path, const char *body, int status, const char *type,
                         const char *param) {
    cJSON *j = post_json(s, path, body, status);
    const cJSON *e = jget(j, "error");
    cr_assert(cJSON_IsObject(e), "no error object for %s", body);
    cr_assert(jstr(e, "message") && jstr(e, "message")[0], "no message");
    cr_assert_str_eq(jstr(e, "type"), type, "type for %s", body);
    cr_assert(cJSON_GetObjectItem(e, "param") && cJSON_GetObjectItem(e, "code"), "param/code missing for %s", body);
    if (param) cr_assert_str_eq(jstr(e, "param") ? jstr(e, "param") : "(null)", param, "param for %s", body);
    cJSON_Delete(j);
}

static const char *model(void) { return th_synth("llama", "f32", SMALL); }

/* logit_bias banning every token that is not printable ASCII (and the
 * specials after 255), so the random model writes plain text and never
 * ends early. */
static const char *ascii_bias(void) {
    static char b[4096];
    if (b[0]) return b;
    size_t n = (size_t)snprintf(b, sizeof b, "\"logit_bias\":{");
    for (int t = 0; t < 300; t++)
        if (t < 32 || t > 126) n += (size_t)snprintf(b + n, sizeof b - n, "%s\"%d\":-100", n > 14 ? "," : "", t);
    snprintf(b + n, sizeof b - n, "}");
    return b;
}

/* ---- tests ----------------------------------------------------------------- */

Test(serve, json_writer_always_writes_valid_json) {
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "s");
    slm_jw_strn(&w, "a\0b\xff\xc3\x28\"\\\n\x01\xe2\x82\xac", 13);
    slm_jw_key(&w, "a");
    slm_jw_arr_open(&w);
    slm_jw_num(&w, NAN);
    slm_jw_num(&w, 0.5);
    slm_jw_int(&w, -3);
    slm_jw_arr_open(&w);
    slm_jw_arr_close(&w);
    slm_jw_bool(&w, true);
    slm_jw_str(&w, NULL);
    slm_jw_arr_close(&w);
    slm_jw_obj_close(&w);
    size_t len;
    char *out = slm_jw_take(&w, &len);
    cr_assert_str_eq(out, "{\"s\":\"a\\u0000b\xef\xbf\xbd\xef\xbf\xbd(\\\"\\\\\\n\\u0001\xe2\x82\xac\","
                          "\"a\":[null,0.5,-3,[],true,null]}");
    cr_assert_eq(len, strlen(out));
    cJSON *j = cJSON_Parse(out);
    cr_assert(j);
    cJSON_Delete(j);
    slm_free(out);
}

Test(serve, metrics_render_prometheus_text) {
    slm_metrics *m = slm_metrics_new();
    slm_metrics_observe(m, SLM_HIST_TTFT, 0.003);
    slm_metrics_observe(m, SLM_HIST_TTFT, 0.2);
    slm_metrics_observe(m, SLM_HIST_TTFT, 100);
    slm_metrics_observe(m, SLM_HIST_TTFT, NAN);
    slm_metrics_add(m, SLM_CTR_GEN_TOKENS, 7);
    slm_metrics_set(m, SLM_GAUGE_KV_TOTAL, 64);
    slm_metrics_request(m, "/v1/chat/completions", 200);
    slm_metrics_request(m, "/wp-login.php", 404);
    slm_metrics_request(m, "/health", 42);
    char *t;
    size_t len;
    cr_assert_eq(slm_metrics_render(m, &t, &len), 0);
    const char *want[] = {
        "slm_time_to_first_token_seconds_bucket{le=\"0.005\"} 1\n",
        "slm_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n",
        "slm_time_to_first_token_seconds_bucket{le=\"60\"} 2\n",
        "slm_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n",
        "slm_time_to_first_token_seconds_count 3\n", "slm_generation_tokens_total 7\n", "slm_kv_blocks_total 64\n",
        "slm_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1\n",
        "slm_requests_total{endpoint=\"other\",status=\"404\"} 1\n", "# TYPE slm_request_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) cr_assert(strstr(t, want[i]), "missing %s in\n%s", want[i], t);
    cr_assert(!strstr(t, "status=\"42\""));
    slm_free(t);
    slm_metrics_free(m);
}


Test(serve, health_models_metrics) {
    server s = start(model(), "--alias tiny");
    resp r;
    cr_assert_eq(http(s.port, "GET", "/health", NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\"status\":\"ok\""), "%s", r.body);
    resp_free(&r);
    cr_assert_eq(http(s.port, "GET", "/v1/models", NULL, NULL, &r), 0);
    cJSON *j = cJSON_Parse(r.body);
    cr_assert_str_eq(jstr(j, "object"), "list");
    cr_assert_str_eq(jstr(j, "data.0.id"), "tiny");
    cr_assert_str_eq(jstr(j, "data.0.object"), "model");
    cJSON_Delete(j);
    resp_free(&r);
    cJSON_Delete(post_json(&s, "/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":2}", 200));
    cr_assert_eq(http(s.port, "GET", "/metrics", NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    const char *want[] = { "slm_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1",
                           "slm_requests_total{endpoint=\"/health\",status=\"200\"}",
                           "slm_time_to_first_token_seconds_bucket{le=\"0.005\"}",
                           "slm_request_duration_seconds_bucket{le=\"60\"}", "slm_queue_depth 0",
                           "slm_active_sequences 0", "slm_kv_blocks_total", "slm_generation_tokens_total",
                           "slm_inter_token_latency_seconds_count", "slm_queue_time_seconds_sum" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) cr_assert(strstr(r.body, want[i]), "%s missing:\n%s", want[i], r.body);
    resp_free(&r);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, chat_and_completion_objects) {
    server s = start(model(), NULL);
    cJSON *j = post_json(&s, "/v1/chat/completions",
                         "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                         "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}],\"max_tokens\":5}", 200);
    cr_assert(!strncmp(jstr(j, "id"), "chatcmpl-", 9));
    cr_assert_str_eq(jstr(j, "object"), "chat.completion");
    cr_assert(jstr(j, "system_fingerprint"));
    cr_assert(jnum(j, "created") > 1e9);
    cr_assert_str_eq(jstr(j, "choices.0.message.role"), "assistant");
    cr_assert(jstr(j, "choices.0.message.content"));
    const char *fin = jstr(j, "choices.0.finish_reason");
    cr_assert(fin && (!strcmp(fin, "stop") || !strcmp(fin, "length")));
    double pt = jnum(j, "usage.prompt_tokens"), ct = jnum(j, "usage.completion_tokens");
    cr_assert(pt > 5 && ct <= 5, "usage %g %g", pt, ct);
    cr_assert_eq(jnum(j, "usage.total_tokens"), pt + ct);
    cr_assert(jnum(j, "usage.prompt_tokens_details.cached_tokens") >= 0);
    cJSON_Delete(j);
    char body[8192];
    snprintf(body, sizeof body, "{\"prompt\":\"hello\",\"max_tokens\":6,%s}", ascii_bias());
    j = post_json(&s, "/v1/completions", body, 200);
    cr_assert(!strncmp(jstr(j, "id"), "cmpl-", 5));
    cr_assert_str_eq(jstr(j, "object"), "text_completion");
    cr_assert_str_eq(jstr(j, "choices.0.finish_reason"), "length");
    cr_assert_eq(jnum(j, "usage.completion_tokens"), 6);
    cr_assert(cJSON_IsNull(jget(j, "choices.0.logprobs")));
    cJSON_Delete(j);
    /* a pre-tokenized prompt and an array of prompts (one choice each) */
    j = post_json(&s, "/v1/completions", "{\"prompt\":[[104,105],[104,101,108]],\"max_tokens\":1}", 200);
    cr_assert_eq(cJSON_GetArraySize(jget(j, "choices")), 2);
    cr_assert_eq(jnum(j, "choices.1.index"), 1);
    cr_assert_eq(jnum(j, "usage.prompt_tokens"), 5);
    cJSON_Delete(j);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, bad_requests_are_400_in_openai_shape) {
    server s = start(model(), NULL);
    const char *C = "/v1/chat/completions", *P = "/v1/completions", *IR = "invalid_request_error";
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char b[1024];
    expect_error(&s, C, "{\"messages\":[", 400, IR, NULL);
    expect_error(&s, C, "", 400, IR, NULL);
    expect_error(&s, C, "[1,2]", 400, IR, NULL);
    expect_error(&s, C, "{} trailing", 400, IR, NULL);
    expect_error(&s, C, "{}", 400, IR, "messages");
    expect_error(&s, C, "{\"messages\":[]}", 400, IR, "messages");
    expect_error(&s, C, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, IR, "messages[0].role");
    expect_error(&s, C, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, IR, "messages[0].content");
    expect_error(&s, C, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400, IR,
                 "messages[0].content");
    struct { const char *field, *param; } bad[] = {
        { "\"temperature\":\"hot\"", "temperature" }, { "\"temperature\":2.5", "temperature" },
        { "\"top_p\":-1", "top_p" }, { "\"n\":0", "n" }, { "\"n\":1.5", "n" }, { "\"max_tokens\":-3", "max_tokens" },
        { "\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", "stop" }, { "\"stop\":7", "stop" },
        { "\"seed\":\"x\"", "seed" }, { "\"logit_bias\":{\"abc\":1}", "logit_bias" },
        { "\"logit_bias\":{\"5\":300}", "logit_bias" }, { "\"logit_bias\":{\"99999\":1}", "logit_bias" },
        { "\"top_logprobs\":3", "top_logprobs" }, { "\"logprobs\":true,\"top_logprobs\":21", "top_logprobs" },
        { "\"stream\":\"yes\"", "stream" }, { "\"response_format\":{\"type\":\"xml\"}", "response_format.type" },
        { "\"presence_penalty\":9", "presence_penalty" }, { "\"user\":5", "user" }, { "\"model\":[1]", "model" },
        { "\"tools\":[{\"type\":\"function\"}]", "tools" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(b, sizeof b, "{%s,%s}", msgs, bad[i].field);
        expect_error(&s, C, b, 400, IR, bad[i].param);
    }
    expect_error(&s, P, "{}", 400, IR, "prompt");
    expect_error(&s, P, "{\"prompt\":[1,\"a\"]}", 400, IR, "prompt");
    expect_error(&s, P, "{\"prompt\":[-1]}", 400, IR, "prompt");
    expect_error(&s, P, "{\"prompt\":{}}", 400, IR, "prompt");
    expect_error(&s, P, "{\"prompt\":\"x\",\"logprobs\":99}", 400, IR, "logprobs");
    expect_error(&s, P, "{\"prompt\":\"x\",\"echo\":1}", 400, IR, "echo");
    resp r;
    cr_assert_eq(http(s.port, "GET", "/nope", NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 404);
    cr_assert(strstr(r.body, "\"type\":\"not_found_error\""), "%s", r.body);
    resp_free(&r);
    cr_assert_eq(http(s.port, "GET", C, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 405);
    cr_assert(strcasestr(r.head, "Allow: POST"), "%s", r.head);
    resp_free(&r);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, hostile_bodies_never_crash) {
    server s = start(model(), NULL);
    static char deep[20000];
    memset(deep, '[', sizeof deep - 1);
    const char *bodies[] = {
        deep, "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0000\\ud800x\"}],\"max_tokens\":2}",
        "{\"prompt\":\"\xff\xfe\xc3\",\"max_tokens\":2}", "{\"prompt\":\"a\",\"max_tokens\":1e309}",
        "{\"prompt\":\"a\",\"n\":1e18}", "{\"prompt\":[1e300]}", "{\"prompt\":[[]]}", "{\"prompt\":[]}",
        "{\"prompt\":\"\"}", "{\"prompt\":null}", "{\"prompt\":\"a\",\"stop\":[\"\"],\"max_tokens\":2}",
        "{\"prompt\":\"a\",\"seed\":-5,\"max_tokens\":1}", "{\"prompt\":\"a\",\"logit_bias\":{\"\":1}}",
        "{\"prompt\":\"a\",\"response_format\":{\"type\":\"json_schema\"}}", "null", "\"str\"", "{\"prompt\":\"a\"",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        resp r;
        cr_assert_eq(http(s.port, "POST", "/v1/completions", NULL, bodies[i], &r), 0, "no answer to body %zu", i);
        cr_assert(r.status == 200 || r.status == 400, "status %d for body %zu: %s", r.status, i, r.body);
        if (r.status == 400) cr_assert(strstr(r.body, "\"error\":{\"message\":"), "%s", r.body);
        resp_free(&r);
    }
    cr_assert_eq(stop(&s), 0);
}

Test(serve, strict_model_and_alias) {
    server s = start(model(), "--alias foo --strict-model");
    const char *M = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1";
    char b[512];
    snprintf(b, sizeof b, "{\"model\":\"bar\",%s}", M);
    cJSON *j = post_json(&s, "/v1/chat/completions", b, 404);
    cr_assert_str_eq(jstr(j, "error.code"), "model_not_found");
    cr_assert_str_eq(jstr(j, "error.type"), "not_found_error");
    cr_assert_str_eq(jstr(j, "error.param"), "model");
    cJSON_Delete(j);
    snprintf(b, sizeof b, "{\"model\":\"foo\",%s}", M);
    j = post_json(&s, "/v1/chat/completions", b, 200);
    cr_assert_str_eq(jstr(j, "model"), "foo");
    cJSON_Delete(j);
    resp r;
    cr_assert_eq(http(s.port, "GET", "/v1/models/bar", NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    cr_assert_eq(stop(&s), 0);
    /* without --strict-model another name is served by this model */
    s = start(model(), "--alias foo");
    snprintf(b, sizeof b, "{\"model\":\"gpt-4o\",%s}", M);
    cJSON_Delete(post_json(&s, "/v1/chat/completions", b, 200));
    cr_assert_eq(stop(&s), 0);
}

Test(serve, api_keys) {
    const char *kf = th_tmp("keys.txt");
    th_write_file(kf, "# keys\nsecret-one\n\n  secret-two  \r\n", 36);
    char args[1024];
    snprintf(args, sizeof args, "--api-keys-file %s", kf);
    for (int round = 0; round < 2; round++) {
        server s = start(model(), round ? "--api-key secret-one --api-key secret-two" : args);
        const char *body = "{\"prompt\":\"hi\",\"max_tokens\":1}";
        resp r;
        cr_assert_eq(http(s.port, "POST", "/v1/completions", NULL, body, &r), 0);
        cr_assert_eq(r.status, 401, "%s", r.body);
        cr_assert(strstr(r.body, "\"type\":\"authentication_error\"") && strstr(r.body, "\"code\":\"invalid_api_key\""), "%s", r.body);
        resp_free(&r);
        const char *wrong[] = { "Authorization: Bearer secret-on\r\n", "Authorization: Bearer secret-one2\r\n",
                                "Authorization: secret-one\r\n", "Authorization: Bearer \r\n" };
        for (size_t i = 0; i < 4; i++) {
            cr_assert_eq(http(s.port, "POST", "/v1/completions", wrong[i], body, &r), 0);
            cr_assert_eq(r.status, 401, "accepted %s", wrong[i]);
            resp_free(&r);
        }
        cr_assert_eq(http(s.port, "GET", "/v1/models", NULL, NULL, &r), 0);
        cr_assert_eq(r.status, 401);
        resp_free(&r);
        cr_assert_eq(http(s.port, "POST", "/v1/completions", "Authorization: Bearer secret-two\r\n", body, &r), 0);
        cr_assert_eq(r.status, 200, "%s", r.body);
        resp_free(&r);
        cr_assert_eq(http(s.port, "GET", "/health", NULL, NULL, &r), 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
        cr_assert_eq(http(s.port, "GET", "/metrics", NULL, NULL, &r), 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
        cr_assert_eq(stop(&s), 0);
    }
}

Test(serve, limits) {
    server s = start(model(), "--max-body 2000 --ctx 64 --max-tokens-cap 50 --max-messages 3");
    char big[4096];
    memset(big, 'a', sizeof big);
    memcpy(big, "{\"prompt\":\"", 11);
    memcpy(big + sizeof big - 3, "\"}", 3);
    cJSON *j = post_json(&s, "/v1/completions", big, 413);
    cr_assert(strstr(jstr(j, "error.message"), "2000"), "%s", jstr(j, "error.message"));
    cJSON_Delete(j);
    char b[1500];
    memset(b, 0, sizeof b);
    snprintf(b, sizeof b, "{\"prompt\":\"%0200d\"}", 0);
    j = post_json(&s, "/v1/completions", b, 400);
    cr_assert_str_eq(jstr(j, "error.code"), "context_length_exceeded");
    cr_assert(strstr(jstr(j, "error.message"), "64"), "%s", jstr(j, "error.message"));
    cJSON_Delete(j);
    j = post_json(&s, "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":51}", 400);
    cr_assert(strstr(jstr(j, "error.message"), "50"), "%s", jstr(j, "error.message"));
    cr_assert_str_eq(jstr(j, "error.param"), "max_tokens");
    cJSON_Delete(j);
    j = post_json(&s, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"},"
                  "{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"user\",\"content\":\"d\"}]}", 400);
    cr_assert_str_eq(jstr(j, "error.param"), "messages");
    cJSON_Delete(j);
    /* the cap bounds chat requests that give no max_tokens */
    j = post_json(&s, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", 200);
    cr_assert(jnum(j, "usage.completion_tokens") <= 50);
    cJSON_Delete(j);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, n_choices_and_seeds) {
    server s = start(model(), NULL);
    char b[8192];
    snprintf(b, sizeof b, "{\"prompt\":\"once\",\"n\":3,\"max_tokens\":8,\"temperature\":1,\"seed\":42,%s}", ascii_bias());
    cJSON *a = post_json(&s, "/v1/completions", b, 200), *c = post_json(&s, "/v1/completions", b, 200);
    cr_assert_eq(cJSON_GetArraySize(jget(a, "choices")), 3);
    for (int i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof p, "choices.%d.index", i);
        cr_assert_eq(jnum(a, p), i);
        snprintf(p, sizeof p, "choices.%d.text", i);
        cr_assert_str_eq(jstr(a, p), jstr(c, p), "seeded choice %d differs between runs", i);
    }
    cr_assert(strcmp(jstr(a, "choices.0.text"), jstr(a, "choices.1.text")) ||
              strcmp(jstr(a, "choices.1.text"), jstr(a, "choices.2.text")), "all three choices are the same");
    cr_assert_eq(jnum(a, "usage.completion_tokens"), 24);
    cJSON_Delete(a);
    cJSON_Delete(c);
    /* two prompts × n 2: indexes 0..3, prompt-major */
    a = post_json(&s, "/v1/completions", "{\"prompt\":[\"ab\",\"cd\"],\"n\":2,\"max_tokens\":2}", 200);
    cr_assert_eq(cJSON_GetArraySize(jget(a, "choices")), 4);
    cr_assert_eq(jnum(a, "choices.3.index"), 3);
    cJSON_Delete(a);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, echo_logprobs_for_loglikelihood) {
    server s = start(model(), NULL);
    /* max_tokens 0 + echo: the prompt's log-probabilities only */
    cJSON *j = post_json(&s, "/v1/completions",
                         "{\"prompt\":[104,101,108,108,111],\"max_tokens\":0,\"echo\":true,\"logprobs\":1,\"temperature\":0}", 200);
    const cJSON *lp = jget(j, "choices.0.logprobs");
    cr_assert_eq(cJSON_GetArraySize(jget(lp, "tokens")), 5);
    cr_assert_eq(cJSON_GetArraySize(jget(lp, "token_logprobs")), 5);
    cr_assert_eq(cJSON_GetArraySize(jget(lp, "text_offset")), 5);
    cr_assert(cJSON_IsNull(jget(lp, "token_logprobs.0")));
    cr_assert(cJSON_IsNull(jget(lp, "top_logprobs.0")));
    for (int i = 1; i < 5; i++) {
        const cJSON *x = cJSON_GetArrayItem(jget(lp, "token_logprobs"), i);
        cr_assert(cJSON_IsNumber(x) && x->valuedouble <= 0, "token_logprobs[%d]", i);
        cr_assert_eq(cJSON_GetArraySize(cJSON_GetArrayItem(jget(lp, "top_logprobs"), i)), 1);
    }
    cr_assert_str_eq(jstr(j, "choices.0.text"), "hello");
    cr_assert_str_eq(jstr(lp, "tokens.1"), "e");
    cr_assert_eq(jnum(lp, "text_offset.4"), 4);
    cr_assert_eq(jnum(j, "usage.completion_tokens"), 0);
    cJSON_Delete(j);
    /* lm-evaluation-harness's request: max_tokens 1, then [ctxlen:-1] */
    char b[8192];
    snprintf(b, sizeof b, "{\"prompt\":[[104,101],[104,101,108]],\"max_tokens\":1,\"echo\":true,\"logprobs\":1,"
                          "\"temperature\":0,%s}", ascii_bias());
    j = post_json(&s, "/v1/completions", b, 200);
    cr_assert_eq(cJSON_GetArraySize(jget(j, "choices.0.logprobs.token_logprobs")), 3);
    cr_assert_eq(cJSON_GetArraySize(jget(j, "choices.1.logprobs.token_logprobs")), 4);
    cJSON_Delete(j);
    /* chat logprobs: content[] with token, logprob, bytes, top_logprobs */
    snprintf(b, sizeof b, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":3,\"logprobs\":true,"
                          "\"top_logprobs\":2,%s}", ascii_bias());
    j = post_json(&s, "/v1/chat/completions", b, 200);
    const cJSON *content = jget(j, "choices.0.logprobs.content");
    cr_assert_eq(cJSON_GetArraySize(content), 3);
    cr_assert(jstr(content, "0.token"));
    cr_assert(jnum(content, "0.logprob") <= 0);
    cr_assert(cJSON_IsArray(jget(content, "0.bytes")));
    cr_assert_eq(cJSON_GetArraySize(jget(content, "0.top_logprobs")), 2);
    cJSON_Delete(j);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, stop_strings) {
    server s = start(model(), NULL);
    char b[8192];
    snprintf(b, sizeof b, "{\"prompt\":\"abc\",\"max_tokens\":40,\"temperature\":0,%s}", ascii_bias());
    cJSON *j = post_json(&s, "/v1/completions", b, 200);
    char full[256];
    snprintf(full, sizeof full, "%s", jstr(j, "choices.0.text"));
    cJSON_Delete(j);
    size_t len = strlen(full);
    cr_assert(len >= 20, "greedy text too short: '%s'", full);
    char stop1[4];
    size_t at = 0;
    for (size_t i = len / 2; i + 3 <= len && !at; i++) /* a stop string without JSON-special characters */
        if (!memchr(full + i, '"', 3) && !memchr(full + i, '\\', 3)) at = i;
    cr_assert(at, "no usable stop string in '%s'", full);
    memcpy(stop1, full + at, 3);
    stop1[3] = 0;
    size_t first = (size_t)(strstr(full, stop1) - full);
    snprintf(b, sizeof b, "{\"prompt\":\"abc\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"\\u0001never\",\"%s\"],%s}",
             stop1, ascii_bias());
    j = post_json(&s, "/v1/completions", b, 200);
    cr_assert_eq(strlen(jstr(j, "choices.0.text")), first, "text '%s', stop '%s', full '%s'", jstr(j, "choices.0.text"),
                 stop1, full);
    cr_assert(!strncmp(jstr(j, "choices.0.text"), full, first));
    cr_assert_str_eq(jstr(j, "choices.0.finish_reason"), "stop");
    cJSON_Delete(j);
    cr_assert_eq(stop(&s), 0);
}

/* Parses an SSE body into its data payloads; checks the framing. */
static int sse_events(char *body, char **ev, int cap) {
    int n = 0;
    char *p = body;
    while (*p) {
        cr_assert(!strncmp(p, "data: ", 6), "event does not start with 'data: ': %.60s", p);
        char *end = strstr(p, "\n\n");
        cr_assert(end, "event not closed by a blank line: %.60s", p);
        *end = 0;
        cr_assert(n < cap);
        ev[n++] = p + 6;
        p = end + 2;
    }
    return n;
}

Test(serve, streaming_framing) {
    server s = start(model(), NULL);
    char b[8192];
    snprintf(b, sizeof b, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":12,\"temperature\":0,"
                          "\"stream\":true,\"stream_options\":{\"include_usage\":true},%s}", ascii_bias());
    resp r;
    cr_assert_eq(http(s.port, "POST", "/v1/chat/completions", NULL, b, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(strcasestr(r.head, "content-type: text/event-stream"), "%s", r.head);
    char *ev[256];
    int n = sse_events(r.body, ev, 256);
    cr_assert(n >= 4, "%d events", n);
    cr_assert_str_eq(ev[n - 1], "[DONE]");
    char text[1024] = "";
    int finishes = 0;
    for (int i = 0; i < n - 1; i++) {
        cJSON *j = cJSON_Parse(ev[i]);
        cr_assert(j, "event %d is not JSON: %s", i, ev[i]);
        cr_assert_str_eq(jstr(j, "object"), "chat.completion.chunk");
        if (i == 0) cr_assert_str_eq(jstr(j, "choices.0.delta.role"), "assistant");
        if (i == n - 2) {
            cr_assert_eq(cJSON_GetArraySize(jget(j, "choices")), 0, "the usage chunk has no choices");
            cr_assert_eq(jnum(j, "usage.completion_tokens"), 12);
        } else {
            cr_assert(cJSON_IsNull(jget(j, "usage")), "usage:null in every chunk but the last");
            const char *c = jstr(j, "choices.0.delta.content");
            if (c) strncat(text, c, sizeof text - strlen(text) - 1);
            if (jstr(j, "choices.0.finish_reason")) finishes++;
        }
        cJSON_Delete(j);
    }
    cr_assert_eq(finishes, 1);
    resp_free(&r);
    /* the same request without stream gives the same text */
    snprintf(b, sizeof b, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":12,\"temperature\":0,%s}",
             ascii_bias());
    cJSON *j = post_json(&s, "/v1/chat/completions", b, 200);
    cr_assert_str_eq(jstr(j, "choices.0.message.content"), text);
    cJSON_Delete(j);
    /* completions stream: text_completion chunks, then [DONE] */
    cr_assert_eq(http(s.port, "POST", "/v1/completions", NULL, "{\"prompt\":\"ab\",\"max_tokens\":3,\"stream\":true}", &r), 0);
    n = sse_events(r.body, ev, 256);
    cr_assert_str_eq(ev[n - 1], "[DONE]");
    cr_assert(strstr(ev[0], "\"object\":\"text_completion\""), "%s", ev[0]);
    cr_assert(strstr(ev[n - 2], "\"finish_reason\":\""), "%s", ev[n - 2]);
    resp_free(&r);
    cr_assert_eq(stop(&s), 0);
}

static const char *long_request(void) {
    static char b[8192];
    snprintf(b, sizeof b, "{\"prompt\":\"go\",\"max_tokens\":4000,\"stream\":true,%s}", ascii_bias());
    return b;
}

Test(serve, disconnect_cancels_generation) {
    server s = start(th_synth("llama", "f32", "--dim 128 --layers 4 --heads 4 --kv-heads 2 --ff 256 --vocab-size 300"),
                     "--ctx 4096");
    int fd = connect_to(s.port);
    cr_assert(fd >= 0);
    cr_assert_eq(send_request(fd, "POST", "/v1/completions", NULL, long_request()), 0);
    char buf[4096];
    cr_assert(recv(fd, buf, sizeof buf, 0) > 0);
    close(fd);
    double t0 = now_s();
    bool idle = false;
    while (!idle && now_s() - t0 < 5) {
        resp r;
        cr_assert_eq(http(s.port, "GET", "/metrics", NULL, NULL, &r), 0);
        idle = strstr(r.body, "slm_active_sequences 0") != NULL;
        resp_free(&r);
        if (!idle) sleep_ms(20);
    }
    cr_assert(idle, "the generation still runs after the client left");
    /* the same without streaming: the server notices while it waits */
    char b[8192];
    snprintf(b, sizeof b, "{\"prompt\":\"go\",\"max_tokens\":4000,%s}", ascii_bias());
    fd = connect_to(s.port);
    cr_assert_eq(send_request(fd, "POST", "/v1/completions", NULL, b), 0);
    sleep_ms(150);
    close(fd);
    t0 = now_s();
    idle = false;
    while (!idle && now_s() - t0 < 5) {
        resp r;
        cr_assert_eq(http(s.port, "GET", "/metrics", NULL, NULL, &r), 0);
        idle = strstr(r.body, "slm_active_sequences 0") != NULL && strstr(r.body, "status=\"499\"") != NULL;
        resp_free(&r);
        if (!idle) sleep_ms(20);
    }
    cr_assert(idle, "the non-streaming generation still runs after the client left");
    cr_assert_eq(stop(&s), 0);
    char *log = th_read_file(s.log, NULL);
    cr_assert(log && strstr(log, "\"aborted\":true"), "%s", log);
    free(log);
}

Test(serve, sigterm_drains_in_flight) {
    server s = start(th_synth("llama", "f32", "--dim 128 --layers 4 --heads 4 --kv-heads 2 --ff 256 --vocab-size 300"),
                     "--ctx 4096 --drain-timeout 60");
    int fd = connect_to(s.port);
    cr_assert_eq(send_request(fd, "POST", "/v1/completions", NULL, long_request()), 0);
    char buf[1 << 16];
    cr_assert(recv(fd, buf, sizeof buf, 0) > 0);
    kill(s.pid, SIGTERM);
    sleep_ms(100);
    resp r;
    cr_assert_eq(http(s.port, "GET", "/health", NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 503, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(http(s.port, "POST", "/v1/completions", NULL, "{\"prompt\":\"a\"}", &r), 0);
    cr_assert_eq(r.status, 503, "%s", r.body);
    resp_free(&r);
    /* the stream in flight runs to its end */
    size_t n = 0;
    char *all = malloc(1 << 22);
    ssize_t k;
    while ((k = recv(fd, all + n, (1 << 22) - n - 1, 0)) > 0) n += (size_t)k;
    all[n] = 0;
    close(fd);
    cr_assert(strstr(all, "data: [DONE]"), "the stream was cut: ...%s", n > 200 ? all + n - 200 : all);
    free(all);
    int st;
    double t0 = now_s();
    while (waitpid(s.pid, &st, WNOHANG) != s.pid) {
        cr_assert(now_s() - t0 < 30, "no exit after the drain");
        sleep_ms(20);
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(serve, request_timeout) {
    server s = start(th_synth("llama", "f32", "--dim 128 --layers 4 --heads 4 --kv-heads 2 --ff 256 --vocab-size 300"),
                     "--ctx 4096 --request-timeout 0.2");
    char b[8192];
    snprintf(b, sizeof b, "{\"prompt\":\"go\",\"max_tokens\":4000,%s}", ascii_bias());
    cJSON *j = post_json(&s, "/v1/completions", b, 504);
    cr_assert_str_eq(jstr(j, "error.code"), "timeout");
    cJSON_Delete(j);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, access_log_lines) {
    server s = start(model(), "--log-prompts");
    char b[8192];
    snprintf(b, sizeof b, "{\"prompt\":\"secret words\",\"max_tokens\":2,\"user\":\"u-1\",%s}", ascii_bias());
    cJSON_Delete(post_json(&s, "/v1/completions", b, 200));
    cr_assert_eq(stop(&s), 0);
    char *log = th_read_file(s.log, NULL);
    char *line = strstr(log, "{\"ts\":\"");
    cr_assert(line, "%s", log);
    bool found = false;
    char *save = NULL;
    for (char *l = strtok_r(line, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] != '{') continue;
        cJSON *j = cJSON_Parse(l);
        cr_assert(j, "access log line is not JSON: %s", l);
        if (jstr(j, "path") && !strcmp(jstr(j, "path"), "/v1/completions")) {
            found = true;
            cr_assert(!strncmp(jstr(j, "id"), "cmpl-", 5));
            cr_assert_str_eq(jstr(j, "method"), "POST");
            cr_assert_eq(jnum(j, "status"), 200);
            cr_assert_eq(jnum(j, "completion_tokens"), 2);
            cr_assert(jnum(j, "prompt_tokens") > 0);
            cr_assert(jnum(j, "duration_ms") >= 0);
            cr_assert(cJSON_IsNumber(jget(j, "ttft_ms")));
            cr_assert_str_eq(jstr(j, "user"), "u-1");
            cr_assert_str_eq(jstr(j, "prompt"), "secret words");
        }
        cJSON_Delete(j);
    }
    cr_assert(found);
    free(log);
    /* without --log-prompts no prompt text */
    s = start(model(), NULL);
    cJSON_Delete(post_json(&s, "/v1/completions", "{\"prompt\":\"secret words\",\"max_tokens\":2}", 200));
    cr_assert_eq(stop(&s), 0);
    log = th_read_file(s.log, NULL);
    cr_assert(!strstr(log, "secret words"), "%s", log);
    free(log);
}

Test(serve, health_is_503_while_loading) {
    /* a FIFO as the model: the server binds, then blocks opening it */
    const char *fifo = th_tmp("loading.gguf");
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    server s = { 0 };
    snprintf(s.log, sizeof s.log, "%s", th_tmp("loading.log"));
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec %s serve -m %s --port 0 2>%s", th_slm_bin(), fifo, s.log);
    s.pid = fork();
    if (s.pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = now_s();
    while (!s.port && now_s() - t0 < 30) {
        char *log = th_read_file(s.log, NULL);
        const char *at = log ? strstr(log, "listening on http://127.0.0.1:") : NULL;
        if (at) s.port = atoi(at + strlen("listening on http://127.0.0.1:"));
        free(log);
        if (!s.port) sleep_ms(20);
    }
    cr_assert(s.port > 0);
    resp r;
    cr_assert_eq(http(s.port, "GET", "/health", NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "\"status\":\"loading\""), "%s", r.body);
    resp_free(&r);
    cr_assert_eq(http(s.port, "POST", "/v1/completions", NULL, "{\"prompt\":\"a\"}", &r), 0);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "\"type\":\"server_error\""), "%s", r.body);
    cr_assert(strcasestr(r.head, "Retry-After:"), "%s", r.head);
    resp_free(&r);
    /* a FIFO is no model file: the load fails and the server exits 1 */
    int fd = open(fifo, O_WRONLY);
    close(fd);
    int st;
    cr_assert_eq(waitpid(s.pid, &st, 0), s.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    char *log = th_read_file(s.log, NULL);
    cr_assert(strstr(log, "slm: error:"), "%s", log);
    free(log);
}

Test(serve, full_queue_is_429_with_retry_after) {
    server s = start(th_synth("llama", "f32", "--dim 128 --layers 4 --heads 4 --kv-heads 2 --ff 256 --vocab-size 300"),
                     "--ctx 4096 --parallel 1 --max-queue 0");
    int fd = connect_to(s.port);
    cr_assert_eq(send_request(fd, "POST", "/v1/completions", NULL, long_request()), 0);
    char buf[4096];
    cr_assert(recv(fd, buf, sizeof buf, 0) > 0);
    resp r;
    cr_assert_eq(http(s.port, "POST", "/v1/completions", NULL, "{\"prompt\":\"a\",\"max_tokens\":1}", &r), 0);
    cr_assert_eq(r.status, 429, "%s", r.body);
    cr_assert(strcasestr(r.head, "Retry-After: 1"), "%s", r.head);
    cr_assert(strstr(r.body, "\"type\":\"rate_limit_error\""), "%s", r.body);
    resp_free(&r);
    close(fd);
    cr_assert_eq(stop(&s), 0);
}

Test(serve, response_format_schemas) {
    server s = start(model(), NULL);
    const char *M = "\"messages\":[{\"role\":\"user\",\"content\":\"json please\"}],\"max_tokens\":100,\"seed\":5";
    char b[2048];
    snprintf(b, sizeof b, "{%s,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
                          "\"schema\":{\"type\":\"string\",\"pattern\":\"^a+$\"}}}}", M);
    expect_error(&s, "/v1/chat/completions", b, 400, "invalid_request_error", "response_format");
    snprintf(b, sizeof b, "{%s,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
                          "\"schema\":{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},"
                          "\"required\":[\"ok\"],\"additionalProperties\":false}}}}", M);
    cJSON *j = post_json(&s, "/v1/chat/completions", b, 200);
    cJSON *v = cJSON_Parse(jstr(j, "choices.0.message.content"));
    cr_assert(v, "not JSON: %s", jstr(j, "choices.0.message.content"));
    cr_assert(cJSON_IsBool(cJSON_GetObjectItem(v, "ok")), "%s", jstr(j, "choices.0.message.content"));
    cr_assert_eq(cJSON_GetArraySize(v), 1);
    cJSON_Delete(v);
    cJSON_Delete(j);
    cr_assert_eq(stop(&s), 0);
}

/* The official `openai` Node client against the server (tests/js). */
Test(serve, openai_node_client, .timeout = 300) {
    char *out = NULL;
    if (th_run("command -v node >/dev/null 2>&1", NULL) != 0) {
        cr_skip_test("node is not installed: the OpenAI-client tests in tests/js are skipped");
        return;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, "tests");
    char probe[1200];
    snprintf(probe, sizeof probe, "test -d %s/js/node_modules/openai", dir);
    cr_assert_eq(th_run(probe, NULL), 0, "tests/js/node_modules is missing: run `npm ci --prefix tests/js`");
    server s = start(model(), "--alias tiny --api-key sk-test --max-tokens-cap 256");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s/js && SLM_BASE_URL=http://127.0.0.1:%d/v1 SLM_API_KEY=sk-test node --test 2>&1",
             dir, s.port);
    int rc = th_run(cmd, &out);
    cr_assert_eq(rc, 0, "node tests failed:\n%s", out);
    free(out);
    cr_assert_eq(stop(&s), 0);
}
