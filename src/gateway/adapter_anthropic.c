/*
 * adapter_anthropic.c — Anthropic's Messages API behind the OpenAI chat
 * format. Requests: system messages become the top-level `system` text,
 * user/assistant messages keep their text, max_tokens (required there)
 * defaults to 1024, stop becomes stop_sequences; the key goes in
 * x-api-key. Answers: the text blocks become one assistant message, and
 * stop_reason and usage are mapped to finish_reason and OpenAI usage.
 * Only /chat/completions is served (not legacy completions).
 *
 * Streams: `stream: true` is passed on, and the Messages API's events are
 * translated one by one into OpenAI chat.completion.chunk frames as they
 * arrive: message_start gives the id and model (and the first chunk, with
 * the assistant role), each text_delta one content chunk, message_delta the
 * finish_reason (and the output token count), message_stop the [DONE]; an
 * error event becomes an OpenAI-shaped error frame. Other events (pings,
 * block starts and stops) produce nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/adapter.h"
#include "util/alloc.h"

/* The text of an OpenAI message content (string or array of text parts). */
static void append_text(cJSON *dst_str_holder, const char *key, const cJSON *content, const char *sep);

static char *content_text(const cJSON *content) {
    if (cJSON_IsString(content)) return slm_strdup(content->valuestring);
    size_t n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, content) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t)) n += strlen(t->valuestring);
    }
    char *s = slm_malloc(n + 1);
    if (!s) return NULL;
    s[0] = 0;
    cJSON_ArrayForEach(p, content) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t)) strcat(s, t->valuestring);
    }
    return s;
}

static void append_text(cJSON *holder, const char *key, const cJSON *content, const char *sep) {
    char *t = content_text(content);
    if (!t) return;
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(holder, key);
    if (cJSON_IsString(old)) {
        size_t n = strlen(old->valuestring) + strlen(sep) + strlen(t) + 1;
        char *s = slm_malloc(n);
        if (s) {
            snprintf(s, n, "%s%s%s", old->valuestring, sep, t);
            cJSON_ReplaceItemInObjectCaseSensitive(holder, key, cJSON_CreateString(s));
            slm_free(s);
        }
    } else {
        cJSON_AddStringToObject(holder, key, t);
    }
    slm_free(t);
}

static int an_build(const slm_gw_upstream_cfg *u, const char *endpoint, const cJSON *req, slm_gw_up_request *out) {
    if (strcmp(endpoint, "/chat/completions")) return SLM_EUNSUPPORTED;
    size_t n = strlen(u->url);
    bool has_v1 = n >= 3 && !strcmp(u->url + n - 3, "/v1");
    snprintf(out->url, sizeof out->url, "%s%s/messages", u->url, has_v1 ? "" : "/v1");
    cJSON *b = cJSON_CreateObject(), *msgs = cJSON_CreateArray();
    if (!b || !msgs) { cJSON_Delete(b); cJSON_Delete(msgs); return SLM_ENOMEM; }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (cJSON_IsString(model)) cJSON_AddStringToObject(b, "model", model->valuestring);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
    if (!cJSON_IsNumber(mt)) mt = cJSON_GetObjectItemCaseSensitive(req, "max_completion_tokens");
    cJSON_AddNumberToObject(b, "max_tokens", cJSON_IsNumber(mt) ? mt->valuedouble : 1024);
    const char *copy[] = { "temperature", "top_p" };
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, copy[i]);
        if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(b, copy[i], v->valuedouble);
    }
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (cJSON_IsString(stop)) {
        cJSON *a = cJSON_AddArrayToObject(b, "stop_sequences");
        cJSON_AddItemToArray(a, cJSON_CreateString(stop->valuestring));
    } else if (cJSON_IsArray(stop)) {
        cJSON_AddItemToObject(b, "stop_sequences", cJSON_Duplicate(stop, 1));
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(req, "messages")) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role)) continue;
        if (!strcmp(role->valuestring, "system") || !strcmp(role->valuestring, "developer")) {
            append_text(b, "system", content, "\n\n");
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", !strcmp(role->valuestring, "assistant") ? "assistant" : "user");
        append_text(o, "content", content, "");
        cJSON_AddItemToArray(msgs, o);
    }
    cJSON_AddItemToObject(b, "messages", msgs);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"))) cJSON_AddTrueToObject(b, "stream");
    out->body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (!out->body) return SLM_ENOMEM;
    out->len = strlen(out->body);
    snprintf(out->hdr_buf[0], sizeof out->hdr_buf[0], "Content-Type: application/json");
    snprintf(out->hdr_buf[1], sizeof out->hdr_buf[1], "anthropic-version: 2023-06-01");
    out->n_headers = 2;
    if (u->api_key) snprintf(out->hdr_buf[out->n_headers++], sizeof out->hdr_buf[0], "x-api-key: %s", u->api_key);
    for (int i = 0; i < out->n_headers; i++) out->headers[i] = out->hdr_buf[i];
    return 0;
}

static int an_translate(const slm_gw_upstream_cfg *u, const char *body, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    cJSON *in = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(in)) { cJSON_Delete(in); return SLM_EFORMAT; }
    cJSON *o = cJSON_CreateObject();
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(in, "id");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(in, "model");
    cJSON_AddStringToObject(o, "id", cJSON_IsString(id) ? id->valuestring : "msg");
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", 0);
    cJSON_AddStringToObject(o, "model", cJSON_IsString(model) ? model->valuestring : (u->model ? u->model : ""));
    cJSON *choice = cJSON_CreateObject(), *msg = cJSON_CreateObject();
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON_AddStringToObject(msg, "role", "assistant");
    append_text(msg, "content", cJSON_GetObjectItemCaseSensitive(in, "content"), "");
    if (!cJSON_GetObjectItemCaseSensitive(msg, "content")) cJSON_AddStringToObject(msg, "content", "");
    cJSON_AddItemToObject(choice, "message", msg);
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(in, "stop_reason");
    const char *fr = "stop";
    if (cJSON_IsString(sr) && !strcmp(sr->valuestring, "max_tokens")) fr = "length";
    cJSON_AddStringToObject(choice, "finish_reason", fr);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToArray(choices, choice);
    const cJSON *us = cJSON_GetObjectItemCaseSensitive(in, "usage");
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(us, "input_tokens");
    const cJSON *ot = cJSON_GetObjectItemCaseSensitive(us, "output_tokens");
    if (cJSON_IsNumber(it) && cJSON_IsNumber(ot)) {
        cJSON *usage = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(usage, "prompt_tokens", it->valuedouble);
        cJSON_AddNumberToObject(usage, "completion_tokens", ot->valuedouble);
        cJSON_AddNumberToObject(usage, "total_tokens", it->valuedouble + ot->valuedouble);
    }
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cJSON_Delete(in);
    if (!*out) return SLM_ENOMEM;
    *out_len = strlen(*out);
    return 0;
}

/* One OpenAI chunk: {"id","object","created","model","choices":[{index 0,
 * delta {role?, content?}, finish_reason}]}. */
static void chunk(slm_jw *w, const slm_gw_sse_state *st, const char *role, const char *content, const char *finish) {
    slm_jw_text(w, "data: ", 6);
    slm_jw_obj_open(w);
    slm_jw_key(w, "id"); slm_jw_str(w, st->id);
    slm_jw_key(w, "object"); slm_jw_str(w, "chat.completion.chunk");
    slm_jw_key(w, "created"); slm_jw_int(w, 0);
    slm_jw_key(w, "model"); slm_jw_str(w, st->model);
    slm_jw_key(w, "choices");
    slm_jw_arr_open(w);
    slm_jw_obj_open(w);
    slm_jw_key(w, "index"); slm_jw_int(w, 0);
    slm_jw_key(w, "delta");
    slm_jw_obj_open(w);
    if (role) { slm_jw_key(w, "role"); slm_jw_str(w, role); }
    if (content) { slm_jw_key(w, "content"); slm_jw_str(w, content); }
    slm_jw_obj_close(w);
    slm_jw_key(w, "finish_reason"); slm_jw_str(w, finish);
    slm_jw_obj_close(w);
    slm_jw_arr_close(w);
    slm_jw_obj_close(w);
    slm_jw_text(w, "\n\n", 2);
}

static int an_stream_event(const slm_gw_upstream_cfg *u, const char *data, size_t n, slm_gw_sse_state *st, slm_jw *w) {
    cJSON *ev = cJSON_ParseWithLength(data, n);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (!cJSON_IsString(type)) { cJSON_Delete(ev); return 0; }   /* not an event we know: nothing */
    const char *t = type->valuestring;
    if (!strcmp(t, "message_start")) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ev, "message");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id"), *model = cJSON_GetObjectItemCaseSensitive(msg, "model");
        snprintf(st->id, sizeof st->id, "%s", cJSON_IsString(id) ? id->valuestring : "msg");
        snprintf(st->model, sizeof st->model, "%s", cJSON_IsString(model) ? model->valuestring : (u->model ? u->model : ""));
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(msg, "usage"), "input_tokens");
        if (cJSON_IsNumber(in)) st->tokens_in = (long)in->valuedouble;
        chunk(w, st, "assistant", "", NULL);
        st->role_sent = true;
    } else if (!strcmp(t, "content_block_delta")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "delta");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(d, "text");
        if (cJSON_IsString(text) && text->valuestring[0]) chunk(w, st, st->role_sent ? NULL : "assistant", text->valuestring, NULL);
        st->role_sent = true;
    } else if (!strcmp(t, "message_delta")) {
        const cJSON *sr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "delta"), "stop_reason");
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "usage"), "output_tokens");
        if (cJSON_IsNumber(out)) st->tokens_out = (long)out->valuedouble;
        const char *fr = cJSON_IsString(sr) && !strcmp(sr->valuestring, "max_tokens") ? "length" : "stop";
        chunk(w, st, NULL, NULL, fr);
    } else if (!strcmp(t, "message_stop")) {
        if (!st->done) slm_jw_text(w, "data: [DONE]\n\n", 14);
        st->done = true;
    } else if (!strcmp(t, "error")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(ev, "error");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message"), *et = cJSON_GetObjectItemCaseSensitive(e, "type");
        slm_jw_text(w, "data: ", 6);
        slm_jw_obj_open(w);
        slm_jw_key(w, "error");
        slm_jw_obj_open(w);
        slm_jw_key(w, "message"); slm_jw_str(w, cJSON_IsString(msg) ? msg->valuestring : "upstream error");
        slm_jw_key(w, "type"); slm_jw_str(w, cJSON_IsString(et) ? et->valuestring : "upstream_error");
        slm_jw_obj_close(w);
        slm_jw_obj_close(w);
        slm_jw_text(w, "\n\ndata: [DONE]\n\n", 16);
        st->done = true;
    }
    cJSON_Delete(ev);
    return w->oom ? SLM_ENOMEM : 0;
}

const slm_gw_adapter slm_gw_adapter_anthropic = { "anthropic", an_build, an_translate, true, an_stream_event };
