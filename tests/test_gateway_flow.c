/*
 * test_gateway_flow.c — `slm gateway` streaming, cascade and shadow traffic,
 * end to end. Fake upstreams (libmicrohttpd, in this process) answer with a
 * configurable text and token logprob, stream SSE chunks, and misbehave on
 * command: 500 before the stream, a stall before the first byte, a break
 * after some chunks. The gateway runs as a child process; libcurl is the
 * client; the SQLite ledger is read back to check what was recorded.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_test.h"
#include "helpers.h"

/* ---- fake upstreams ------------------------------------------------------------ */

enum { S_OK, S_500, S_STALL_FIRST, S_BREAK };

typedef struct fake {
    char name[32];
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    char answer[512];               /* content of every answer                   */
    double logprob;                 /* each token's logprob                      */
    int stream_mode;                /* S_* for the next stream                   */
    int n_chunks;                   /* chunks a stream sends                     */
    int count;                      /* completion requests received              */
    char last_body[8192];
} fake;

typedef struct fbody { char buf[8192]; size_t len; } fbody;

typedef struct sse { fake *f; int i, n, mode; char answer[512]; } sse;

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    sse *s = cls;
    if (s->i == 0 && s->mode == S_STALL_FIRST) sleep(2);
    if (s->i == s->n) {
        s->i++;
        return snprintf(buf, max, "data: [DONE]\n\n");
    }
    if (s->i > s->n) return MHD_CONTENT_READER_END_OF_STREAM;
    if (s->mode == S_BREAK && s->i == 2) return MHD_CONTENT_READER_END_WITH_ERROR;
    usleep(20000);
    int k = snprintf(buf, max,
                     "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                     "\"delta\":{\"content\":\"%s%d\"},\"finish_reason\":null}]}\n\n",
                     s->i ? " w" : "w", s->i);
    s->i++;
    return k;
}

static void sse_free(void *cls) { free(cls); }

/* Anthropic's Messages API stream: message_start, a ping, a text block in
 * n deltas, message_delta, message_stop (the event: lines included). */
static ssize_t an_read(void *cls, uint64_t pos, char *buf, size_t max) {
    sse *s = cls;
    int i = s->i++;
    if (i == 0)
        return snprintf(buf, max, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
                                  "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":21,\"output_tokens\":1}}}\n\n"
                                  "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    if (i == 1)
        return snprintf(buf, max, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                                  "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    if (i < 2 + s->n) {
        usleep(10000);
        return snprintf(buf, max, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                                  "\"delta\":{\"type\":\"text_delta\",\"text\":\"%sa%d\"}}\n\n", i > 2 ? " " : "", i - 2);
    }
    if (i == 2 + s->n)
        return snprintf(buf, max, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                                  "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                  "\"end_turn\"},\"usage\":{\"output_tokens\":%d}}\n\n", s->n);
    if (i == 3 + s->n) return snprintf(buf, max, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result fake_req(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                const char *version, const char *up, size_t *up_size, void **st) {
    fake *f = cls;
    fbody *b = *st;
    if (!b) { *st = calloc(1, sizeof *b); return MHD_YES; }
    if (*up_size) {
        size_t n = *up_size < sizeof b->buf - 1 - b->len ? *up_size : sizeof b->buf - 1 - b->len;
        memcpy(b->buf + b->len, up, n);
        b->len += n;
        *up_size = 0;
        return MHD_YES;
    }
    char out[4096];
    int status = 200;
    if (!strcmp(url, "/health")) {
        snprintf(out, sizeof out, "{\"status\":\"ok\"}");
    } else {
        pthread_mutex_lock(&f->mu);
        f->count++;
        snprintf(f->last_body, sizeof f->last_body, "%s", b->buf);
        int mode = f->stream_mode;
        f->stream_mode = S_OK;
        char answer[512];
        snprintf(answer, sizeof answer, "%s", f->answer);
        double lp = f->logprob;
        int n_chunks = f->n_chunks;
        pthread_mutex_unlock(&f->mu);
        bool stream = strstr(b->buf, "\"stream\":true") != NULL;
        bool anthropic = strstr(url, "/messages") != NULL;
        if (anthropic && stream && mode != S_500) {
            sse *s = calloc(1, sizeof *s);
            s->f = f;
            s->n = n_chunks;
            struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, an_read, s, sse_free);
            MHD_add_response_header(r, "Content-Type", "text/event-stream");
            enum MHD_Result ok = MHD_queue_response(mc, 200, r);
            MHD_destroy_response(r);
            return ok;
        }
        if (mode == S_500) {
            status = 500;
            snprintf(out, sizeof out, "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}");
        } else if (stream) {
            sse *s = calloc(1, sizeof *s);
            s->f = f;
            s->n = n_chunks;
            s->mode = mode;
            struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, sse_read, s, sse_free);
            MHD_add_response_header(r, "Content-Type", "text/event-stream");
            enum MHD_Result ok = MHD_queue_response(mc, 200, r);
            MHD_destroy_response(r);
            return ok;
        } else {
            bool want_lp = strstr(b->buf, "\"logprobs\":true") != NULL;
            char lps[256] = "null";
            if (want_lp)
                snprintf(lps, sizeof lps, "{\"content\":[{\"token\":\"a\",\"logprob\":%g},{\"token\":\"b\",\"logprob\":%g}]}",
                         lp, lp);
            snprintf(out, sizeof out,
                     "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"%s\",\"choices\":[{\"index\":0,"
                     "\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},\"logprobs\":%s,\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":50,\"total_tokens\":150}}",
                     f->name, answer, lps);
        }
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static void fake_done(void *cls, struct MHD_Connection *c, void **st, enum MHD_RequestTerminationCode t) {
    free(*st);
    *st = NULL;
}

static fake *fake_start(const char *name, const char *answer, double logprob) {
    fake *f = calloc(1, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->answer, sizeof f->answer, "%s", answer);
    f->logprob = logprob;
    f->n_chunks = 5;
    pthread_mutex_init(&f->mu, NULL);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
                            NULL, fake_req, f, MHD_OPTION_NOTIFY_COMPLETED, fake_done, f, MHD_OPTION_END);
    cr_assert_not_null(f->d);
    f->port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return f;
}

static void fake_set(fake *f, const char *answer, double logprob, int stream_mode) {
    pthread_mutex_lock(&f->mu);
    if (answer) snprintf(f->answer, sizeof f->answer, "%s", answer);
    f->logprob = logprob;
    f->stream_mode = stream_mode;
    pthread_mutex_unlock(&f->mu);
}

static int fake_count(fake *f) {
    pthread_mutex_lock(&f->mu);
    int n = f->count;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void fake_stop(fake *f) {
    MHD_stop_daemon(f->d);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---- the gateway process ---------------------------------------------------------- */

typedef struct gwp { gwt_proc p; int port; char db[600]; } gwp;

/* Extra settings of the frontier upstream (e.g. "adapter: anthropic, "). */
static const char *g_front_extra = "";

static gwp gw_start(const char *name, fake *loc, fake *front, const char *route) {
    gwp g = { 0 };
    snprintf(g.db, sizeof g.db, "%s.db", th_tmp(name));
    unlink(g.db);
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "listen: {host: 127.0.0.1, port: 0}\n"
             "health: {interval_ms: 100, timeout_ms: 500}\n"
             "retry: {attempts: 0}\n"
             "ledger: {sqlite: %s}\n"
             "counterfactual_tier: frontier\n"
             "tiers:\n"
             "  - name: local\n    kind: local\n    cost_per_replica_hour: 3.6\n    upstreams:\n"
             "      - {name: %s, url: 'http://127.0.0.1:%d', model: small, timeout_ms: 5000,"
             " first_byte_timeout_ms: 800, stream_idle_timeout_ms: 800}\n"
             "  - name: frontier\n    kind: frontier\n    price_in: 2\n    price_out: 10\n    upstreams:\n"
             "      - {name: %s, url: 'http://127.0.0.1:%d/v1', %smodel: big, timeout_ms: 5000}\n"
             "routes:\n%s",
             g.db, loc->name, loc->port, front->name, front->port, g_front_extra, route);
    g.p = gwt_start(name, yaml, NULL, NULL);
    g.port = g.p.port;
    return g;
}

static void gw_stop(gwp *g) { gwt_stop(&g->p, SIGTERM); }

typedef gwt_resp resp;

static resp post(int port, const char *body) { return gwt_post(port, "/v1/chat/completions", NULL, NULL, body); }
static resp get(int port, const char *path) { return gwt_post(port, path, NULL, NULL, NULL); }

static const char *chat(bool stream, const char *extra) {
    static char b[4][2048];
    static int k;
    char *o = b[k++ & 3];
    snprintf(o, 2048, "{\"model\":\"m\",\"stream\":%s,%s\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
             stream ? "true" : "false", extra ? extra : "");
    return o;
}

#define sql_num gwt_sql_num
#define sql_text gwt_sql_text

static void init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
TestSuite(gw_flow, .init = init);

/* ---- streaming ---------------------------------------------------------------------- */

Test(gw_flow, stream_passes_through_and_is_ledgered) {
    fake *l = fake_start("loc", "x", -0.1), *f = fake_start("front", "y", -0.1);
    gwp g = gw_start("stream", l, f, "  - {name: default, tiers: [local, frontier]}\n");
    resp r = post(g.port, chat(true, NULL));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.upstream, "loc");
    cr_assert(strstr(r.body, "\"content\":\"w0\"") && strstr(r.body, "\"content\":\" w4\""), "%s", r.body);
    cr_assert(strstr(r.body, "data: [DONE]"), "%s", r.body);
    cr_assert_gt(r.n_writes, 1, "the chunks arrived in one piece: buffered");
    resp m = get(g.port, "/metrics");
    /* the stream's row and counters are written when the connection closes */
    const char *last = "slm_gw_route_latency_seconds_count{route=\"default\",tier=\"local\"} 1";
    for (int i = 0; i < 100 && !strstr(m.body, last); i++) {
        usleep(20000);
        m = get(g.port, "/metrics");
    }
    cr_assert(strstr(m.body, "slm_gw_streams_total 1"), "%s", m.body);
    cr_assert(strstr(m.body, "slm_gw_route_requests_total{route=\"default\",tier=\"local\"} 1"), "%s", m.body);
    cr_assert(strstr(m.body, "slm_gw_route_latency_seconds_count{route=\"default\",tier=\"local\"} 1"), "%s", m.body);
    gw_stop(&g);
    cr_assert_eq(sql_num(g.db, "SELECT count(*) FROM ledger"), 1);
    cr_assert_eq(sql_num(g.db, "SELECT status FROM ledger"), 200);
    cr_assert_eq(sql_num(g.db, "SELECT tokens_out FROM ledger"), 5, "one token per content event");
    fake_stop(l);
    fake_stop(f);
}

static size_t write_then_leave(char *p, size_t sz, size_t n, void *arg) {
    int *calls = arg;
    return ++*calls >= 2 ? 0 : sz * n;   /* take the first piece, then hang up */
}

/* A client that leaves mid-stream: the gateway stops reading the upstream,
 * keeps serving, and the ledger says 499 (client closed). */
Test(gw_flow, stream_client_disconnect_is_ledgered) {
    fake *l = fake_start("loc", "x", -0.1), *f = fake_start("front", "y", -0.1);
    pthread_mutex_lock(&l->mu);
    l->n_chunks = 60;   /* ~1.2 s of stream: the client leaves long before its end */
    pthread_mutex_unlock(&l->mu);
    gwp g = gw_start("stream_gone", l, f, "  - {name: default, tiers: [local, frontier]}\n");
    CURL *h = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", g.port);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    int calls = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, chat(true, NULL));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_then_leave);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &calls);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    CURLcode cc = curl_easy_perform(h);
    cr_assert_eq(cc, CURLE_WRITE_ERROR, "the client hung up: %s", curl_easy_strerror(cc));
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    resp r = post(g.port, chat(false, NULL));   /* the gateway is still serving */
    cr_assert_eq(r.status, 200, "%s", r.body);
    gw_stop(&g);
    cr_assert_eq(sql_num(g.db, "SELECT count(*) FROM ledger WHERE status = 499"), 1, "a row for the abandoned stream");
    char *e = sql_text(g.db, "SELECT error FROM ledger WHERE status = 499");
    cr_assert(e && strstr(e, "client"), "%s", e ? e : "(null)");
    free(e);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, stream_falls_back_before_first_byte) {
    fake *l = fake_start("loc", "x", -0.1), *f = fake_start("front", "y", -0.1);
    gwp g = gw_start("stream_fb", l, f, "  - {name: default, tiers: [local, frontier]}\n");
    fake_set(l, NULL, -0.1, S_500);
    resp r = post(g.port, chat(true, NULL));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.upstream, "front", "a 500 before the stream falls back");
    cr_assert(strstr(r.body, "[DONE]"));
    fake_set(l, NULL, -0.1, S_STALL_FIRST);
    r = post(g.port, chat(true, NULL));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.upstream, "front", "a stall before the first byte falls back");
    gw_stop(&g);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, stream_broken_midway_ends_with_error_event) {
    fake *l = fake_start("loc", "x", -0.1), *f = fake_start("front", "y", -0.1);
    gwp g = gw_start("stream_break", l, f, "  - {name: default, tiers: [local, frontier]}\n");
    fake_set(l, NULL, -0.1, S_BREAK);
    resp r = post(g.port, chat(true, NULL));
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\"content\":\"w0\""), "%s", r.body);
    cr_assert(strstr(r.body, "\"code\":\"stream_interrupted\""), "no error event: %s", r.body);
    cr_assert_eq(fake_count(f), 0, "a started stream cannot fall back");
    gw_stop(&g);
    cr_assert_eq(sql_num(g.db, "SELECT status FROM ledger"), 502);
    char *e = sql_text(g.db, "SELECT error FROM ledger");
    cr_assert(e && strstr(e, "mid-stream"), "%s", e ? e : "(null)");
    free(e);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, anthropic_stream_is_translated) {
    fake *l = fake_start("loc", "x", -0.1), *f = fake_start("front", "y", -0.1);
    g_front_extra = "adapter: anthropic, ";
    gwp g = gw_start("stream_an", l, f, "  - {name: default, tiers: [frontier]}\n");
    g_front_extra = "";
    resp r = post(g.port, chat(true, NULL));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.upstream, "front");
    cr_assert(strstr(f->last_body, "\"stream\":true"), "stream asked of the Messages API: %s", f->last_body);
    cr_assert(strstr(r.body, "\"object\":\"chat.completion.chunk\""), "%s", r.body);
    cr_assert(strstr(r.body, "\"role\":\"assistant\""), "%s", r.body);
    cr_assert(strstr(r.body, "\"content\":\"a0\"") && strstr(r.body, "\"content\":\" a4\""), "%s", r.body);
    cr_assert(strstr(r.body, "\"finish_reason\":\"stop\""), "%s", r.body);
    cr_assert(strstr(r.body, "data: [DONE]"), "%s", r.body);
    cr_assert_null(strstr(r.body, "message_start"), "untranslated events leaked: %s", r.body);
    cr_assert_gt(r.n_writes, 1, "translated chunks arrived in one piece");
    gw_stop(&g);
    cr_assert_eq(sql_num(g.db, "SELECT tokens_in FROM ledger"), 21, "input tokens from message_start");
    cr_assert_eq(sql_num(g.db, "SELECT tokens_out FROM ledger"), 5, "output tokens from message_delta");
    cr_assert_float_eq(sql_num(g.db, "SELECT cost FROM ledger"), (21 * 2 + 5 * 10) / 1e6, 1e-12);
    fake_stop(l);
    fake_stop(f);
}

/* ---- cascade ------------------------------------------------------------------------ */

Test(gw_flow, cascade_accepts_confident_local_answers) {
    fake *l = fake_start("loc", "local says hi", -0.2), *f = fake_start("front", "frontier says hi", -0.1);
    gwp g = gw_start("cascade_ok", l, f,
                     "  - name: default\n    tiers: [local, frontier]\n"
                     "    cascade: {min_mean_logprob: -1.0, json: true, refusal: ['I (cannot|can.t) help']}\n");
    resp r = post(g.port, chat(false, NULL));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.upstream, "loc");
    cr_assert_str_eq(r.cascade, "accepted");
    cr_assert(strstr(l->last_body, "\"logprobs\":true"), "the gateway asks for logprobs: %s", l->last_body);
    cr_assert_null(strstr(r.body, "\"content\":[{"), "logprobs the client did not ask for are removed: %s", r.body);
    cr_assert_eq(fake_count(f), 0);
    gw_stop(&g);
    char *c = sql_text(g.db, "SELECT cascade FROM ledger");
    cr_assert(c && !strcmp(c, "accepted"), "%s", c ? c : "(null)");
    free(c);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, cascade_escalates_on_each_check) {
    fake *l = fake_start("loc", "x", -0.2), *f = fake_start("front", "{\\\"a\\\":1}", -0.1);
    gwp g = gw_start("cascade_esc", l, f,
                     "  - name: default\n    tiers: [local, frontier]\n"
                     "    cascade: {min_mean_logprob: -1.0, json: true, refusal: ['I (cannot|can.t) help']}\n");
    fake_set(l, "unsure answer", -2.5, S_OK);
    resp r = post(g.port, chat(false, NULL));
    cr_assert_str_eq(r.upstream, "front", "%s", r.body);
    cr_assert_str_eq(r.cascade, "escalated:low_logprob");
    cr_assert_null(strstr(f->last_body, "\"logprobs\""), "the frontier gets the client's request: %s", f->last_body);
    fake_set(l, "not json at all", -0.1, S_OK);
    r = post(g.port, chat(false, "\"response_format\":{\"type\":\"json_object\"},"));
    cr_assert_str_eq(r.cascade, "escalated:invalid_json", "%s", r.body);
    cr_assert_str_eq(r.upstream, "front");
    fake_set(l, "Sorry, I can't help with that.", -0.1, S_OK);
    r = post(g.port, chat(false, NULL));
    cr_assert_str_eq(r.cascade, "escalated:refusal", "%s", r.body);
    fake_set(l, "{\\\"ok\\\":true}", -0.1, S_OK);
    r = post(g.port, chat(false, "\"response_format\":{\"type\":\"json_object\"},"));
    cr_assert_str_eq(r.cascade, "accepted", "%s", r.body);
    cr_assert_str_eq(r.upstream, "loc");
    gw_stop(&g);
    cr_assert_eq(sql_num(g.db, "SELECT count(*) FROM ledger WHERE cascade LIKE 'escalated:%'"), 3);
    cr_assert_eq(sql_num(g.db, "SELECT count(*) FROM ledger WHERE tier='frontier'"), 3);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, cascade_keeps_private_data_local) {
    fake *l = fake_start("loc", "unsure", -3.0), *f = fake_start("front", "y", -0.1);
    gwp g = gw_start("cascade_pd", l, f,
                     "  - name: default\n    tiers: [local, frontier]\n    private_data: local_only\n"
                     "    cascade: {min_mean_logprob: -1.0}\n");
    resp r = post(g.port, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"mail jane.doe@example.com\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.upstream, "loc");
    cr_assert_str_eq(r.cascade, "kept_local:low_logprob");
    cr_assert_eq(fake_count(f), 0, "private data reached the frontier");
    gw_stop(&g);
    fake_stop(l);
    fake_stop(f);
}

/* ---- shadow ------------------------------------------------------------------------- */

Test(gw_flow, shadow_copies_and_scores_agreement) {
    fake *l = fake_start("loc", "{\\\"label\\\":\\\"spam\\\",\\\"score\\\":1}", -0.1);
    fake *f = fake_start("front", "{\\\"label\\\":\\\"spam\\\",\\\"score\\\":2}", -0.1);
    gwp g = gw_start("shadow", l, f, "  - {name: default, tiers: [local], shadow: {tier: frontier, sample: 1.0}}\n");
    for (int i = 0; i < 3; i++) {
        resp r = post(g.port, chat(false, NULL));
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_str_eq(r.upstream, "loc");
    }
    resp r = post(g.port, chat(true, NULL));   /* a stream is shadowed with its assembled text */
    cr_assert_eq(r.status, 200);
    gw_stop(&g);   /* drains the shadow queue */
    cr_assert_eq(fake_count(f), 4, "every sampled request reached the candidate");
    cr_assert_eq(sql_num(g.db, "SELECT count(*) FROM shadow"), 4);
    cr_assert_eq(sql_num(g.db, "SELECT count(*) FROM shadow WHERE candidate_tier='frontier' AND error IS NULL"), 4);
    cr_assert_float_eq(sql_num(g.db, "SELECT exact FROM shadow WHERE id=1"), 0.0, 1e-9);
    cr_assert_float_eq(sql_num(g.db, "SELECT json_fields FROM shadow WHERE id=1"), 0.5, 1e-9, "label agrees, score not");
    cr_assert(sql_num(g.db, "SELECT cost FROM shadow WHERE id=1") > 0, "the shadow's frontier cost is recorded");
    cr_assert_eq(sql_num(g.db, "SELECT count(*) FROM ledger"), 4, "shadow calls are not client requests");
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, shadow_never_sends_private_data_out) {
    fake *l = fake_start("loc", "ok", -0.1), *f = fake_start("front", "ok", -0.1);
    gwp g = gw_start("shadow_pd", l, f,
                     "  - {name: default, tiers: [local], private_data: local_only,"
                     " shadow: {tier: frontier, sample: 1.0}}\n");
    resp r = post(g.port, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"card 4111 1111 1111 1111\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    r = post(g.port, chat(false, NULL));
    cr_assert_eq(r.status, 200);
    gw_stop(&g);
    cr_assert_eq(fake_count(f), 1, "only the request without private data is shadowed");
    cr_assert_null(strstr(f->last_body, "4111"), "%s", f->last_body);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, sample_zero_sends_nothing) {
    fake *l = fake_start("loc", "ok", -0.1), *f = fake_start("front", "ok", -0.1);
    gwp g = gw_start("shadow0", l, f, "  - {name: default, tiers: [local], shadow: {tier: frontier, sample: 0}}\n");
    for (int i = 0; i < 3; i++) cr_assert_eq(post(g.port, chat(false, NULL)).status, 200);
    gw_stop(&g);
    cr_assert_eq(fake_count(f), 0);
    fake_stop(l);
    fake_stop(f);
}

Test(gw_flow, config_errors_name_the_line) {
    const char *bad[] = {
        "  - name: r\n    tiers: [local]\n    cascade: {min_mean_logprob: -1}\n",            /* nowhere to escalate */
        "  - name: r\n    tiers: [local, frontier]\n    cascade: {}\n",                        /* no check */
        "  - name: r\n    tiers: [local, frontier]\n    cascade: {refusal: ['(']}\n",         /* bad regex */
        "  - name: r\n    tiers: [local]\n    shadow: {tier: nope}\n",                         /* unknown tier */
        "  - name: r\n    tiers: [local]\n    shadow: {tier: frontier, sample: 2}\n",          /* out of range */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[2048], path[600], cmd[1400];
        snprintf(yaml, sizeof yaml,
                 "tiers:\n  - name: local\n    kind: local\n    upstreams: [{name: a, url: 'http://127.0.0.1:1'}]\n"
                 "  - name: frontier\n    kind: frontier\n    upstreams: [{name: b, url: 'http://127.0.0.1:2'}]\n"
                 "routes:\n%s", bad[i]);
        snprintf(path, sizeof path, "%s", th_tmp("bad.yaml"));
        cr_assert_eq(th_write_file(path, yaml, strlen(yaml)), 0);
        snprintf(cmd, sizeof cmd, "%s gateway --check %s 2>&1", th_slm_bin(), path);
        char *out = NULL;
        int st = th_run(cmd, &out);
        cr_assert_neq(st, 0, "case %zu accepted", i);
        cr_assert(out && strstr(out, "bad.yaml:"), "case %zu: %s", i, out ? out : "");
        free(out);
    }
}
