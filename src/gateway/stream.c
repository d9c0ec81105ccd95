/*
 * stream.c — a live stream, read through to the client.
 *
 * The HTTP front pulls bytes (slm_gw_call_pull) on the client connection's
 * thread; each pull reads what the upstream has sent (client_stream in
 * client.c: no thread, no buffer beyond curl's last chunk), so the gateway
 * adds no buffering and a slow client slows the upstream. The bytes pass
 * unchanged; on the side, complete SSE lines are looked at for accounting:
 * usage (when the upstream includes it), the number of content events
 * (the token count otherwise: slm serve and OpenAI send one token per
 * event) and the answer text (for shadow comparisons, bounded).
 *
 * A translating adapter (Anthropic's Messages API) gets its events turned
 * into OpenAI chunks one event at a time (pull_translated), never more than
 * one upstream read ahead of the client.
 *
 * An upstream that breaks or stalls after the first byte cannot be replaced
 * (the client already has part of an answer): the stream ends with one SSE
 * error event in OpenAI's error shape, then [DONE], and finish() writes a
 * ledger row with status 502 and the reason.
 */
#include <stdio.h>
#include <string.h>

#include "gateway/adapter.h"
#include "gateway/proxy.h"
#include "util/alloc.h"
#include "util/json.h"

#define ANSWER_MAX (256u << 10)   /* answer text kept for shadow comparisons */
#define LINE_MAX_BYTES (1u << 20) /* longer SSE lines are not inspected       */

static void answer_add(slm_gw_call *c, const char *s, size_t n) {
    if (c->answer_len + n + 1 > ANSWER_MAX) return;
    if (c->answer_len + n + 1 > c->answer_cap) {
        size_t nc = c->answer_cap ? c->answer_cap : 1024;
        while (nc < c->answer_len + n + 1) nc *= 2;
        char *na = slm_realloc(c->answer, nc);
        if (!na) return;
        c->answer = na;
        c->answer_cap = nc;
    }
    memcpy(c->answer + c->answer_len, s, n);
    c->answer_len += n;
    c->answer[c->answer_len] = 0;
}

/* Feeds SSE bytes through b and calls fn(c, payload, n) for every complete
 * `data:` line (its payload without the prefix and leading spaces); other
 * lines (event:, comments, blank separators) are skipped, and so are lines
 * longer than LINE_MAX_BYTES. Returns fn's first nonzero result, or
 * SLM_ENOMEM. */
static int sse_feed(slm_gw_linebuf *b, const char *p, size_t n, int (*fn)(slm_gw_call *, const char *, size_t),
                    slm_gw_call *c) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (b->len + 2 > b->cap) {
                if (b->cap >= LINE_MAX_BYTES) continue;   /* too long to look at: skipped */
                size_t nc = b->cap ? b->cap * 2 : 4096;
                char *nl = slm_realloc(b->p, nc);
                if (!nl) return SLM_ENOMEM;
                b->p = nl;
                b->cap = nc;
            }
            b->p[b->len++] = p[i];
            continue;
        }
        size_t len = b->len;
        b->len = 0;
        if (len && b->p[len - 1] == '\r') len--;
        if (len < 5 || strncmp(b->p, "data:", 5)) continue;
        const char *d = b->p + 5;
        size_t dn = len - 5;
        while (dn && *d == ' ') { d++; dn--; }
        int rc = fn(c, d, dn);
        if (rc) return rc;
    }
    return 0;
}

/* One `data:` payload going to the client. */
static int on_data(slm_gw_call *c, const char *l, size_t n) {
    if (n == 6 && !strncmp(l, "[DONE]", 6)) { c->s_done = true; return 0; }
    cJSON *ev = cJSON_ParseWithLength(l, n);
    if (!ev) return 0;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(ev, "usage");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(a)) c->s_in = (long)a->valuedouble;
    if (cJSON_IsNumber(b)) c->s_out = (long)b->valuedouble;
    const cJSON *ch;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(ev, "choices")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, "delta"), "content");
        if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(ch, "text");
        if (!cJSON_IsString(t) || !t->valuestring[0]) continue;
        c->s_chunks++;
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(ch, "index");
        if (!cJSON_IsNumber(idx) || idx->valuedouble == 0) answer_add(c, t->valuestring, strlen(t->valuestring));
    }
    cJSON_Delete(ev);
    return 0;
}

void slm_gw_stream_account(slm_gw_call *c, const char *p, size_t n) {
    sse_feed(&c->out_line, p, n, on_data, c);   /* accounting only: out of memory just counts less */
}

/* The error event that ends a broken stream. */
static void make_error_event(slm_gw_call *c, const char *why) {
    snprintf(c->error, sizeof c->error, "upstream %.60s failed mid-stream: %.150s",
             c->up_index >= 0 ? c->cfg->upstreams[c->up_index].name : "?", why);
    slm_jw w = { 0 };
    slm_jw_text(&w, "data: ", 6);
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "error");
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "message"); slm_jw_str(&w, c->error);
    slm_jw_key(&w, "type"); slm_jw_str(&w, "upstream_error");
    slm_jw_key(&w, "code"); slm_jw_str(&w, "stream_interrupted");
    slm_jw_key(&w, "request_id"); slm_jw_str(&w, c->rp->request_id);
    slm_jw_obj_close(&w);
    slm_jw_obj_close(&w);
    slm_jw_text(&w, "\n\ndata: [DONE]\n\n", 16);
    c->s_pending = slm_jw_take(&w, &c->s_pending_len);
    c->s_pending_pos = 0;
}

/* Translating adapters: feeds upstream bytes, turns every complete
 * `data:` line into OpenAI chunks appended to c->t_out. */
/* One upstream `data:` payload, translated into OpenAI chunks appended to
 * the pending output (c->t_w). */
static int on_upstream_data(slm_gw_call *c, const char *d, size_t n) {
    return c->tr->stream_event(&c->cfg->upstreams[c->up_index], d, n, c->sse, c->t_w) ? SLM_ENOMEM : 0;
}

static int translate(slm_gw_call *c, const char *p, size_t n) {
    slm_jw w = { 0 };
    c->t_w = &w;
    int rc = sse_feed(&c->up_line, p, n, on_upstream_data, c);
    c->t_w = NULL;
    if (rc) { slm_jw_free(&w); return rc; }
    if (c->sse->tokens_in >= 0) c->s_in = c->sse->tokens_in;
    if (c->sse->tokens_out >= 0) c->s_out = c->sse->tokens_out;
    if (!w.len) { slm_jw_free(&w); return 0; }
    size_t k;
    char *out = slm_jw_take(&w, &k);
    if (!out) return SLM_ENOMEM;
    slm_free(c->t_out);
    c->t_out = out;
    c->t_out_len = k;
    c->t_out_pos = 0;
    return 0;
}

static long pull_translated(slm_gw_call *c, char *buf, size_t cap) {
    for (;;) {
        if (c->t_out_pos < c->t_out_len) {
            size_t n = c->t_out_len - c->t_out_pos < cap ? c->t_out_len - c->t_out_pos : cap;
            memcpy(buf, c->t_out + c->t_out_pos, n);
            c->t_out_pos += n;
            slm_gw_stream_account(c, buf, n);
            return (long)n;
        }
        if (c->t_eof || c->sse->done) return 0;
        char raw[16384];
        long n = slm_gw_stream_read(c->up, raw, sizeof raw);
        if (n == 0) {   /* the upstream ended: make sure the client sees the end */
            c->t_eof = true;
            if (!c->sse->done && translate(c, "data: {\"type\":\"message_stop\"}\n", 32)) return -1;
            continue;
        }
        if (n < 0) return n;
        if (translate(c, raw, (size_t)n)) {
            snprintf(c->error, sizeof c->error, "out of memory");
            return -1;
        }
    }
}

long slm_gw_call_pull(slm_gw_call *c, char *buf, size_t cap) {
    if (c->s_pending) {   /* the error event, then the end */
        if (c->s_pending_pos == c->s_pending_len) return 0;
        size_t n = c->s_pending_len - c->s_pending_pos < cap ? c->s_pending_len - c->s_pending_pos : cap;
        memcpy(buf, c->s_pending + c->s_pending_pos, n);
        c->s_pending_pos += n;
        return (long)n;
    }
    if (c->s_failed) return 0;   /* the event could not be built */
    long n;
    if (c->tr) {
        n = pull_translated(c, buf, cap);
        if (n >= 0) return n;
        const char *why = "";
        if (slm_gw_stream_fail(c->up, &why) == SLM_GW_FAIL_NONE) why = c->error;
        c->s_failed = true;
        make_error_event(c, why);
        return slm_gw_call_pull(c, buf, cap);
    }
    n = slm_gw_stream_read(c->up, buf, cap);
    if (n > 0) {
        slm_gw_stream_account(c, buf, (size_t)n);
        return n;
    }
    if (n == 0) return 0;
    const char *why = "";
    slm_gw_stream_fail(c->up, &why);
    c->s_failed = true;
    make_error_event(c, why);
    return slm_gw_call_pull(c, buf, cap);
}
