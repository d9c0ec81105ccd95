/*
 * target_http.c — an OpenAI-compatible endpoint as an evaluation target:
 * POST {model, messages, params…} to …/chat/completions, read
 * choices[0].message.content and usage.{prompt,completion}_tokens. Each
 * worker owns one HTTP handle (eval/http.h), so its connection stays alive
 * across cases. What comes back decides the attempt: 2xx with a readable
 * body is an answer; a body that is not the expected JSON is a final
 * error ("malformed JSON from upstream"); 429, 5xx, connect failures,
 * timeouts and broken connections may pass on retry; other statuses are
 * final and quote the upstream's error message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/http.h"
#include "eval/target.h"
#include "util/alloc.h"
#include "util/err.h"

#define MAX_RESPONSE ((size_t)16 << 20)

typedef struct http_impl {
    char auth[1024];             /* "Authorization: Bearer …" or ""       */
} http_impl;

static int h_open(slm_eval_target *t, slm_err *err) {
    const char *url = t->cfg.url;
    size_t n = strlen(url);
    while (n && url[n - 1] == '/') n--;
    const char *after_host = strchr(strstr(url, "://") + 3, '/');
    const char *suffix = "/chat/completions";
    if (n >= strlen(suffix) && !strncmp(url + n - strlen(suffix), suffix, strlen(suffix))) suffix = "";
    else if (!after_host || (size_t)(after_host - url) >= n) suffix = "/v1/chat/completions";
    if (n + strlen(suffix) >= sizeof t->endpoint)
        return slm_err_set(err, SLM_EINVAL, "target '%s': URL too long", t->cfg.name);
    snprintf(t->endpoint, sizeof t->endpoint, "%.*s%s", (int)n, url, suffix);
    http_impl *h = slm_calloc(1, sizeof *h);
    if (!h) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    if (t->cfg.key_env) {
        const char *key = getenv(t->cfg.key_env);
        if (!key || !*key) {
            slm_free(h);
            return slm_err_set(err, SLM_EINVAL, "target '%s': environment variable %s (key_env) is not set", t->cfg.name,
                               t->cfg.key_env);
        }
        if (strlen(key) > sizeof h->auth - 32 || strpbrk(key, "\r\n")) {
            slm_free(h);
            return slm_err_set(err, SLM_EINVAL, "target '%s': the key in %s is not usable", t->cfg.name, t->cfg.key_env);
        }
        snprintf(h->auth, sizeof h->auth, "Authorization: Bearer %s", key);
    }
    t->impl = h;
    return 0;
}

static void h_close(slm_eval_target *t) { slm_free(t->impl); t->impl = NULL; }

static int h_worker_new(slm_eval_target *t, void **ws, slm_err *err) {
    slm_eval_http *h = slm_calloc(1, sizeof *h);
    if (!h) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    *ws = h;
    return 0;
}

static void h_worker_free(slm_eval_target *t, void *ws) {
    slm_eval_http_close(ws);
    slm_free(ws);
}

/* The request body: model, messages, then the suite's params. */
static char *build_body(const slm_eval_target *t, const cJSON *messages, const cJSON *params) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    bool ok = cJSON_AddStringToObject(o, "model", t->cfg.model) != NULL;
    cJSON *m = cJSON_Duplicate(messages, true);
    ok &= m != NULL;
    if (m) cJSON_AddItemToObject(o, "messages", m);
    for (const cJSON *p = params ? params->child : NULL; p && ok; p = p->next) {
        cJSON *d;
        if (!strcmp(p->string, "response_format") && cJSON_IsString(p)) {
            d = cJSON_CreateObject();
            ok &= d && cJSON_AddStringToObject(d, "type", p->valuestring);
        } else {
            d = cJSON_Duplicate(p, true);
        }
        ok &= d != NULL;
        if (d) cJSON_AddItemToObject(o, p->string, d);
    }
    ok &= cJSON_AddFalseToObject(o, "stream") != NULL;
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* The upstream's error message from an OpenAI-shaped body, else its start. */
static void error_text(const char *body, size_t len, char *out, size_t cap) {
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
    if (cJSON_IsString(m)) snprintf(out, cap, "%s", m->valuestring);
    else snprintf(out, cap, "%.*s", (int)(len < 120 ? len : 120), body ? body : "");
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    cJSON_Delete(j);
}

static long usage_num(const cJSON *u, const char *k) {
    const cJSON *v = u ? cJSON_GetObjectItemCaseSensitive(u, k) : NULL;
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (long)v->valuedouble : -1;
}

static void parse_answer(const char *body, size_t len, slm_eval_attempt *a) {
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *choices = j ? cJSON_GetObjectItemCaseSensitive(j, "choices") : NULL;
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *msg = c0 ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
    const cJSON *content = msg ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
    if (!j || !cJSON_IsObject(msg) || !(cJSON_IsString(content) || cJSON_IsNull(content))) {
        a->error = SLM_EFORMAT;
        snprintf(a->msg, sizeof a->msg, "malformed JSON from upstream: %s%.*s",
                 j ? "no choices[0].message.content in " : "", (int)(len < 80 ? len : 80), body ? body : "");
        for (char *p = a->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        cJSON_Delete(j);
        return;
    }
    a->output = slm_strdup(cJSON_IsString(content) ? content->valuestring : "");
    if (!a->output) {
        a->error = SLM_ENOMEM;
        snprintf(a->msg, sizeof a->msg, "out of memory");
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    a->tokens_in = usage_num(u, "prompt_tokens");
    a->tokens_out = usage_num(u, "completion_tokens");
    cJSON_Delete(j);
}

static void h_attempt(slm_eval_target *t, void *ws, const cJSON *messages, const cJSON *params, int timeout_ms,
                      slm_eval_attempt *a) {
    http_impl *h = t->impl;
    char *body = build_body(t, messages, params);
    if (!body) {
        a->error = SLM_ENOMEM;
        snprintf(a->msg, sizeof a->msg, "out of memory");
        return;
    }
    const char *hdrs[2] = { "Content-Type: application/json", h->auth };
    slm_eval_http_resp rs;
    int rc = slm_eval_http_post(ws, t->endpoint, hdrs, h->auth[0] ? 2 : 1, body, strlen(body), timeout_ms, MAX_RESPONSE, &rs);
    cJSON_free(body);
    if (rc) {
        a->error = SLM_ENOMEM;
        snprintf(a->msg, sizeof a->msg, "out of memory");
        return;
    }
    a->http_status = rs.status;
    a->retry_after_s = rs.retry_after_s;
    if (rs.fail != SLM_GW_FAIL_NONE) {
        a->error = rs.fail == SLM_GW_FAIL_TIMEOUT ? SLM_ETIMEDOUT : SLM_EIO;
        a->retryable = rs.fail != SLM_GW_FAIL_OTHER;
        if (rs.fail == SLM_GW_FAIL_TIMEOUT)
            snprintf(a->msg, sizeof a->msg, "timed out after %.1f s", timeout_ms / 1000.0);
        else
            snprintf(a->msg, sizeof a->msg, "%s: %.200s", rs.fail == SLM_GW_FAIL_CONNECT ? "connect" : "transfer", rs.error);
    } else if (rs.status < 200 || rs.status > 299) {
        char et[160];
        error_text(rs.body, rs.len, et, sizeof et);
        a->error = rs.status == 429 ? SLM_EBUSY : SLM_EIO;
        a->retryable = rs.status == 429 || rs.status >= 500;
        snprintf(a->msg, sizeof a->msg, "HTTP %d: %s", rs.status, et);
    } else {
        parse_answer(rs.body, rs.len, a);
    }
    slm_eval_http_resp_clear(&rs);
}

const slm_eval_target_ops slm_eval_target_http_ops = {
    .kind = "http",
    .open = h_open,
    .worker_new = h_worker_new,
    .worker_free = h_worker_free,
    .attempt = h_attempt,
    .close = h_close,
};
