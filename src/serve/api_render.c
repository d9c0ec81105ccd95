/*
 * api_render.c — responses, stream chunks and errors in the shapes OpenAI's
 * clients parse: chat.completion / chat.completion.chunk, text_completion,
 * usage with prompt_tokens_details.cached_tokens, and log-probabilities in
 * both dialects (chat: logprobs.content[] with bytes and top_logprobs;
 * completions: tokens, token_logprobs, top_logprobs, text_offset). Output
 * goes through the JSON writer, so whatever bytes the model made, the body
 * is valid JSON.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "serve/api.h"
#include "util/alloc.h"

int api_token_bytes(const slm_vocab *v, int32_t token, char *bytes, size_t cap) {
    int n = token >= 0 ? slm_token_to_bytes(v, token, bytes, cap) : 0;
    return n > 0 ? n : 0;
}

/* The "token" string: the bytes if valid UTF-8, else "bytes:\xNN…". */
static void token_str(slm_jw *w, const char *b, size_t n) {
    if (slm_utf8_valid_prefix(b, n) == n) {
        slm_jw_strn(w, b, n);
        return;
    }
    char s[6 + 4 * 64 + 1];
    size_t k = (size_t)snprintf(s, sizeof s, "bytes:");
    for (size_t i = 0; i < n && k + 4 < sizeof s; i++) k += (size_t)snprintf(s + k, sizeof s - k, "\\x%02x", (unsigned char)b[i]);
    slm_jw_strn(w, s, k);
}

static void bytes_arr(slm_jw *w, const char *b, size_t n) {
    slm_jw_arr_open(w);
    for (size_t i = 0; i < n; i++) slm_jw_int(w, (unsigned char)b[i]);
    slm_jw_arr_close(w);
}

/* Chat: {"content":[{token, logprob, bytes, top_logprobs:[…]}], "refusal":null}. */
static void chat_logprobs(slm_jw *w, const slm_vocab *v, const api_lp *lps, int32_t n) {
    char b[256];
    slm_jw_obj_open(w);
    slm_jw_key(w, "content");
    slm_jw_arr_open(w);
    for (int32_t i = 0; i < n; i++) {
        const api_lp *lp = &lps[i];
        if (lp->prompt) continue;
        int k = api_token_bytes(v, lp->token, b, sizeof b);
        slm_jw_obj_open(w);
        slm_jw_key(w, "token");
        token_str(w, b, (size_t)k);
        slm_jw_key(w, "logprob");
        slm_jw_num(w, lp->logprob);
        slm_jw_key(w, "bytes");
        bytes_arr(w, b, (size_t)k);
        slm_jw_key(w, "top_logprobs");
        slm_jw_arr_open(w);
        for (int32_t j = 0; j < lp->n_top; j++) {
            k = api_token_bytes(v, lp->top[j].token, b, sizeof b);
            slm_jw_obj_open(w);
            slm_jw_key(w, "token");
            token_str(w, b, (size_t)k);
            slm_jw_key(w, "logprob");
            slm_jw_num(w, lp->top[j].logprob);
            slm_jw_key(w, "bytes");
            bytes_arr(w, b, (size_t)k);
            slm_jw_obj_close(w);
        }
        slm_jw_arr_close(w);
        slm_jw_obj_close(w);
    }
    slm_jw_arr_close(w);
    slm_jw_key(w, "refusal");
    slm_jw_null(w);
    slm_jw_obj_close(w);
}

/* Code points in b[0..n) (UTF-8 lead bytes), for text_offset. */
static int64_t n_chars(const char *b, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)b[i] & 0xC0) != 0x80;
    return c;
}

/* Completions: {"tokens":[…], "token_logprobs":[…], "top_logprobs":[{…}|null], "text_offset":[…]}.
 * offset0: where the first token starts in the choice's text (in characters). */
static void completion_logprobs(slm_jw *w, const slm_vocab *v, const api_lp *lps, int32_t n, int64_t offset0) {
    char b[256];
    slm_jw_obj_open(w);
    slm_jw_key(w, "tokens");
    slm_jw_arr_open(w);
    for (int32_t i = 0; i < n; i++) {
        int k = api_token_bytes(v, lps[i].token, b, sizeof b);
        token_str(w, b, (size_t)k);
    }
    slm_jw_arr_close(w);
    slm_jw_key(w, "token_logprobs");
    slm_jw_arr_open(w);
    for (int32_t i = 0; i < n; i++) slm_jw_num(w, lps[i].logprob); /* NaN (first prompt token): null */
    slm_jw_arr_close(w);
    slm_jw_key(w, "top_logprobs");
    slm_jw_arr_open(w);
    for (int32_t i = 0; i < n; i++) {
        if (isnan(lps[i].logprob)) { slm_jw_null(w); continue; }
        slm_jw_obj_open(w);
        for (int32_t j = 0; j < lps[i].n_top; j++) {
            int k = api_token_bytes(v, lps[i].top[j].token, b, sizeof b);
            char key[6 + 4 * 64 + 1];
            /* keys are strings too; invalid UTF-8 becomes the bytes: form */
            if (slm_utf8_valid_prefix(b, (size_t)k) == (size_t)k && !memchr(b, 0, (size_t)k)) {
                memcpy(key, b, (size_t)k);
                key[k] = 0;
            } else {
                size_t at = (size_t)snprintf(key, sizeof key, "bytes:");
                for (int x = 0; x < k && at + 4 < sizeof key; x++)
                    at += (size_t)snprintf(key + at, sizeof key - at, "\\x%02x", (unsigned char)b[x]);
            }
            slm_jw_key(w, key);
            slm_jw_num(w, lps[i].top[j].logprob);
        }
        slm_jw_obj_close(w);
    }
    slm_jw_arr_close(w);
    slm_jw_key(w, "text_offset");
    slm_jw_arr_open(w);
    int64_t off = offset0;
    for (int32_t i = 0; i < n; i++) {
        slm_jw_int(w, off);
        int k = api_token_bytes(v, lps[i].token, b, sizeof b);
        off += n_chars(b, (size_t)k);
    }
    slm_jw_arr_close(w);
    slm_jw_obj_close(w);
}

static void usage_obj(slm_jw *w, const api_usage *u) {
    slm_jw_obj_open(w);
    slm_jw_key(w, "prompt_tokens");
    slm_jw_int(w, u->prompt);
    slm_jw_key(w, "completion_tokens");
    slm_jw_int(w, u->completion);
    slm_jw_key(w, "total_tokens");
    slm_jw_int(w, u->prompt + u->completion);
    slm_jw_key(w, "prompt_tokens_details");
    slm_jw_obj_open(w);
    slm_jw_key(w, "cached_tokens");
    slm_jw_int(w, u->cached);
    slm_jw_obj_close(w);
    slm_jw_obj_close(w);
}

static void head(slm_jw *w, const api_request *r, const api_meta *m, bool chunk) {
    slm_jw_key(w, "id");
    slm_jw_str(w, m->id);
    slm_jw_key(w, "object");
    slm_jw_str(w, r->kind == API_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    slm_jw_key(w, "created");
    slm_jw_int(w, m->created);
    slm_jw_key(w, "model");
    slm_jw_str(w, m->model);
    slm_jw_key(w, "system_fingerprint");
    slm_jw_str(w, m->fingerprint);
}

char *api_render_response(const api_request *r, const api_meta *m, const slm_vocab *v,
                          const api_choice *ch, int32_t n_ch, const api_usage *u, size_t *len) {
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    head(&w, r, m, false);
    slm_jw_key(&w, "choices");
    slm_jw_arr_open(&w);
    for (int32_t i = 0; i < n_ch; i++) {
        const api_choice *c = &ch[i];
        slm_jw_obj_open(&w);
        slm_jw_key(&w, "index");
        slm_jw_int(&w, c->index);
        if (r->kind == API_CHAT) {
            slm_jw_key(&w, "message");
            slm_jw_obj_open(&w);
            slm_jw_key(&w, "role");
            slm_jw_str(&w, "assistant");
            slm_jw_key(&w, "content");
            slm_jw_strn(&w, c->text ? c->text : "", c->text_len);
            slm_jw_key(&w, "refusal");
            slm_jw_null(&w);
            slm_jw_obj_close(&w);
            slm_jw_key(&w, "logprobs");
            if (r->top_logprobs >= 0) chat_logprobs(&w, v, c->lps, c->n_lps);
            else slm_jw_null(&w);
        } else {
            const api_prompt *p = &r->prompts[c->prompt_index];
            slm_jw_key(&w, "text");
            if (r->echo && p->text) {
                /* prompt text, then the completion, as one string */
                size_t pl = strlen(p->text);
                char *t = slm_malloc(pl + c->text_len + 1);
                if (!t) w.oom = true;
                else {
                    memcpy(t, p->text, pl);
                    if (c->text_len) memcpy(t + pl, c->text, c->text_len);
                    slm_jw_strn(&w, t, pl + c->text_len);
                    slm_free(t);
                }
            } else {
                slm_jw_strn(&w, c->text ? c->text : "", c->text_len);
            }
            slm_jw_key(&w, "logprobs");
            if (r->top_logprobs >= 0) completion_logprobs(&w, v, c->lps, c->n_lps, 0);
            else slm_jw_null(&w);
        }
        slm_jw_key(&w, "finish_reason");
        slm_jw_str(&w, c->finish ? c->finish : "stop");
        slm_jw_obj_close(&w);
    }
    slm_jw_arr_close(&w);
    slm_jw_key(&w, "usage");
    usage_obj(&w, u);
    slm_jw_obj_close(&w);
    return slm_jw_take(&w, len);
}

void api_render_chunk(slm_jw *w, const api_request *r, const api_meta *m, const slm_vocab *v, int32_t index,
                      bool role, const char *text, size_t text_len, const api_lp *lps, int32_t n_lps,
                      const char *finish) {
    slm_jw_text(w, "data: ", 6);
    slm_jw_obj_open(w);
    head(w, r, m, true);
    slm_jw_key(w, "choices");
    slm_jw_arr_open(w);
    slm_jw_obj_open(w);
    slm_jw_key(w, "index");
    slm_jw_int(w, index);
    if (r->kind == API_CHAT) {
        slm_jw_key(w, "delta");
        slm_jw_obj_open(w);
        if (role) {
            slm_jw_key(w, "role");
            slm_jw_str(w, "assistant");
        }
        if (role || text_len) {
            slm_jw_key(w, "content");
            slm_jw_strn(w, text ? text : "", text_len);
        }
        slm_jw_obj_close(w);
        slm_jw_key(w, "logprobs");
        if (r->top_logprobs >= 0 && n_lps > 0) chat_logprobs(w, v, lps, n_lps);
        else slm_jw_null(w);
    } else {
        slm_jw_key(w, "text");
        slm_jw_strn(w, text ? text : "", text_len);
        slm_jw_key(w, "logprobs");
        if (r->top_logprobs >= 0 && n_lps > 0) completion_logprobs(w, v, lps, n_lps, 0);
        else slm_jw_null(w);
    }
    slm_jw_key(w, "finish_reason");
    slm_jw_str(w, finish);
    slm_jw_obj_close(w);
    slm_jw_arr_close(w);
    if (r->include_usage) {
        slm_jw_key(w, "usage");
        slm_jw_null(w);
    }
    slm_jw_obj_close(w);
    slm_jw_text(w, "\n\n", 2);
}

void api_render_usage_chunk(slm_jw *w, const api_request *r, const api_meta *m, const api_usage *u) {
    slm_jw_text(w, "data: ", 6);
    slm_jw_obj_open(w);
    head(w, r, m, true);
    slm_jw_key(w, "choices");
    slm_jw_arr_open(w);
    slm_jw_arr_close(w);
    slm_jw_key(w, "usage");
    usage_obj(w, u);
    slm_jw_obj_close(w);
    slm_jw_text(w, "\n\n", 2);
}

char *api_render_error(const api_error *e, size_t *len) {
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "error");
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "message");
    slm_jw_str(&w, e->message);
    slm_jw_key(&w, "type");
    slm_jw_str(&w, e->type ? e->type : "server_error");
    slm_jw_key(&w, "param");
    if (e->param[0]) slm_jw_str(&w, e->param);
    else slm_jw_null(&w);
    slm_jw_key(&w, "code");
    slm_jw_str(&w, e->code);
    slm_jw_obj_close(&w);
    slm_jw_obj_close(&w);
    return slm_jw_take(&w, len);
}
