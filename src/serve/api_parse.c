/*
 * api_parse.c — request JSON to an api_request. Everything here comes from
 * a socket, so every field is checked for its type and range and every
 * failure is a 400 whose message names the field ("'temperature' must be a
 * number between 0 and 2"); nothing asserts. cJSON parses the body (its
 * nesting limit bounds the recursion); the prompt is rendered with the
 * chat template and tokenized here, so the caller gets token ids.
 *
 * Defaults follow OpenAI: temperature 1, top_p 1, n 1, max_tokens 16 for
 * completions and unbounded (the context, or --max-tokens-cap) for chat.
 */
#include "serve/api.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/prompt.h"
#include "util/alloc.h"

int api_fail(api_error *e, int status, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->status = status;
    e->type = status == 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
    e->code = NULL;
    e->retry_after = 0;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    return -1;
}

static int oom(api_error *e) { return api_fail(e, 500, NULL, "out of memory"); }

static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return f && !cJSON_IsNull(f) ? f : NULL;   /* null means absent, as in OpenAI */
}

/* A number in [lo, hi]; absent keeps *out. */
static int get_num(const cJSON *o, const char *name, double lo, double hi, float *out, api_error *e) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) || f->valuedouble < lo || f->valuedouble > hi)
        return api_fail(e, 400, name, "'%s' must be a number between %g and %g", name, lo, hi);
    *out = (float)f->valuedouble;
    return 0;
}

static bool is_int(const cJSON *f, double lo, double hi) {
    return cJSON_IsNumber(f) && isfinite(f->valuedouble) && f->valuedouble == floor(f->valuedouble) &&
           f->valuedouble >= lo && f->valuedouble <= hi;
}

/* An integer in [lo, hi]; absent keeps *out. */
static int get_int(const cJSON *o, const char *name, int32_t lo, int32_t hi, int32_t *out, api_error *e) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!is_int(f, lo, hi)) return api_fail(e, 400, name, "'%s' must be an integer between %d and %d", name, lo, hi);
    *out = (int32_t)f->valuedouble;
    return 0;
}

static int get_bool(const cJSON *o, const char *name, bool *out, api_error *e) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) return api_fail(e, 400, name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(f);
    return 0;
}

/* A string copied with slm_strdup; absent leaves *out NULL. */
static int get_str(const cJSON *o, const char *name, char **out, api_error *e) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsString(f)) return api_fail(e, 400, name, "'%s' must be a string", name);
    if (!(*out = slm_strdup(f->valuestring))) return oom(e);
    return 0;
}

void api_request_free(api_request *r) {
    if (!r) return;
    for (int32_t i = 0; i < r->n_prompts; i++) {
        slm_free(r->prompts[i].ids);
        slm_free(r->prompts[i].text);
    }
    slm_free(r->prompts);
    for (int32_t i = 0; i < r->n_stops; i++) slm_free(r->stops[i]);
    slm_free(r->bias);
    slm_free(r->model);
    slm_free(r->schema);
    slm_free(r->user);
    slm_free(r->prompt_json);
    memset(r, 0, sizeof *r);
}

static int parse_stop(const cJSON *root, api_request *r, api_error *e) {
    const cJSON *f = field(root, "stop");
    if (!f) return 0;
    const char *msg = "'stop' must be a string or an array of at most 4 strings";
    if (cJSON_IsString(f)) {
        if (!f->valuestring[0]) return 0;
        if (!(r->stops[0] = slm_strdup(f->valuestring))) return oom(e);
        r->n_stops = 1;
        return 0;
    }
    if (!cJSON_IsArray(f) || cJSON_GetArraySize(f) > API_MAX_STOPS) return api_fail(e, 400, "stop", "%s", msg);
    const cJSON *s;
    cJSON_ArrayForEach(s, f) {
        if (!cJSON_IsString(s)) return api_fail(e, 400, "stop", "%s", msg);
        if (!s->valuestring[0]) continue;
        if (!(r->stops[r->n_stops] = slm_strdup(s->valuestring))) return oom(e);
        r->n_stops++;
    }
    return 0;
}

static int parse_bias(const cJSON *root, int32_t n_vocab, api_request *r, api_error *e) {
    const cJSON *f = field(root, "logit_bias");
    if (!f) return 0;
    if (!cJSON_IsObject(f)) return api_fail(e, 400, "logit_bias", "'logit_bias' must be an object of token id → bias");
    int n = cJSON_GetArraySize(f);
    if (n > API_MAX_LOGIT_BIAS)
        return api_fail(e, 400, "logit_bias", "'logit_bias' has %d entries; at most %d", n, API_MAX_LOGIT_BIAS);
    if (n == 0) return 0;
    if (!(r->bias = slm_calloc((size_t)n, sizeof *r->bias))) return oom(e);
    const cJSON *b;
    cJSON_ArrayForEach(b, f) {
        char *end = NULL;
        long tok = strtol(b->string, &end, 10);
        if (!b->string[0] || *end || tok < 0 || tok >= n_vocab)
            return api_fail(e, 400, "logit_bias", "'logit_bias' key '%.40s' is not a token id (0..%d)", b->string,
                            n_vocab - 1);
        if (!cJSON_IsNumber(b) || !isfinite(b->valuedouble) || b->valuedouble < -100 || b->valuedouble > 100)
            return api_fail(e, 400, "logit_bias", "'logit_bias' values must be numbers between -100 and 100");
        /* -100 bans the token outright, as OpenAI documents */
        r->bias[r->n_bias++] = (slm_logit_bias){ (int32_t)tok, b->valuedouble <= -100 ? -INFINITY : (float)b->valuedouble };
    }
    r->sample.logit_bias = r->bias;
    r->sample.n_logit_bias = r->n_bias;
    return 0;
}

static int parse_format(const cJSON *root, api_request *r, api_error *e) {
    const cJSON *f = field(root, "response_format");
    if (!f) return 0;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "type");
    if (!cJSON_IsObject(f) || !cJSON_IsString(t))
        return api_fail(e, 400, "response_format", "'response_format' must be an object with a string 'type'");
    if (!strcmp(t->valuestring, "text")) return 0;
    if (!strcmp(t->valuestring, "json_object")) {
        r->format = API_FMT_JSON_OBJECT;
        return 0;
    }
    if (strcmp(t->valuestring, "json_schema"))
        return api_fail(e, 400, "response_format.type",
                        "'response_format.type' must be 'text', 'json_object' or 'json_schema'");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(f, "json_schema");
    if (!cJSON_IsObject(js))
        return api_fail(e, 400, "response_format.json_schema", "'response_format.json_schema' must be an object");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    if (!schema || cJSON_IsNull(schema)) {
        r->format = API_FMT_JSON_OBJECT;      /* no schema: any JSON object */
        return 0;
    }
    if (!cJSON_IsObject(schema) && !cJSON_IsBool(schema))
        return api_fail(e, 400, "response_format.json_schema.schema",
                        "'response_format.json_schema.schema' must be a JSON Schema object");
    char *txt = cJSON_PrintUnformatted(schema);
    if (!txt) return oom(e);
    r->schema = slm_strdup(txt);
    cJSON_free(txt);
    if (!r->schema) return oom(e);
    r->format = API_FMT_JSON_SCHEMA;
    return 0;
}

/* The text of one message's content: a string, or text parts joined by "\n". */
static int content_text(const cJSON *c, int idx, bool may_be_null, char **out, api_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", idx);
    if (!c || cJSON_IsNull(c)) {
        if (!may_be_null) return api_fail(e, 400, param, "'%s' is required", param);
        return (*out = slm_strdup("")) ? 0 : oom(e);
    }
    if (cJSON_IsString(c)) return (*out = slm_strdup(c->valuestring)) ? 0 : oom(e);
    if (!cJSON_IsArray(c))
        return api_fail(e, 400, param, "'%s' must be a string or an array of content parts", param);
    size_t len = 0;
    const cJSON *p;
    int k = 0;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return api_fail(e, 400, param, "'%s[%d]' must be {\"type\": \"text\", \"text\": …}; this server takes text only",
                            param, k);
        if (!cJSON_IsString(x)) return api_fail(e, 400, param, "'%s[%d].text' must be a string", param, k);
        len += strlen(x->valuestring) + 1;
        k++;
    }
    char *s = slm_malloc(len + 1);
    if (!s) return oom(e);
    size_t at = 0;
    cJSON_ArrayForEach(p, c) {
        const char *x = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        if (at) s[at++] = '\n';
        size_t n = strlen(x);
        memcpy(s + at, x, n);
        at += n;
    }
    s[at] = 0;
    *out = s;
    return 0;
}

static int parse_messages(const cJSON *root, const api_ctx *ctx, api_request *r, api_error *e) {
    const cJSON *ms = field(root, "messages");
    if (!ms) return api_fail(e, 400, "messages", "'messages' is required");
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) == 0)
        return api_fail(e, 400, "messages", "'messages' must be a non-empty array of messages");
    int n = cJSON_GetArraySize(ms);
    if (ctx->max_messages > 0 && n > ctx->max_messages)
        return api_fail(e, 400, "messages", "'messages' has %d messages; this server takes at most %d", n,
                        ctx->max_messages);
    slm_chat_msg *msgs = slm_calloc((size_t)n, sizeof *msgs);
    char **texts = slm_calloc((size_t)n, sizeof *texts);
    int rc = -1, i = 0;
    if (!msgs || !texts) { oom(e); goto done; }
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d].role", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m)) { api_fail(e, 400, "messages", "'messages[%d]' must be an object", i); goto done; }
        if (!cJSON_IsString(role)) { api_fail(e, 400, param, "'%s' must be a string", param); goto done; }
        const char *rn = role->valuestring;
        if (!strcmp(rn, "developer")) rn = "system";  /* OpenAI's newer name for it */
        if (strcmp(rn, "system") && strcmp(rn, "user") && strcmp(rn, "assistant")) {
            api_fail(e, 400, param, "'%s' is '%.32s'; this server takes 'system', 'user' and 'assistant'", param,
                     role->valuestring);
            goto done;
        }
        if (content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), i, !strcmp(rn, "assistant"), &texts[i], e))
            goto done;
        msgs[i] = (slm_chat_msg){ rn, texts[i] };
        i++;
    }
    if (!(r->prompts = slm_calloc(1, sizeof *r->prompts))) { oom(e); goto done; }
    r->n_prompts = 1;
    slm_err err = { 0 };
    int st = slm_prompt_chat(ctx->model, ctx->family, msgs, n, &r->prompts[0].ids, &r->prompts[0].n_ids, NULL, &err);
    if (st == SLM_ENOMEM) { oom(e); goto done; }
    if (st) { api_fail(e, 400, "messages", "cannot render the messages: %s", err.msg); goto done; }
    rc = 0;
done:
    for (int j = 0; texts && j < n; j++) slm_free(texts[j]);
    slm_free(texts);
    slm_free(msgs);
    return rc;
}

/* Token ids from a JSON array of integers (a pre-tokenized prompt). */
static int token_prompt(const cJSON *a, int32_t n_vocab, const char *param, api_prompt *p, api_error *e) {
    int n = cJSON_GetArraySize(a);
    if (n == 0) return api_fail(e, 400, param, "'%s' is empty", param);
    if (!(p->ids = slm_malloc((size_t)n * sizeof *p->ids))) return oom(e);
    const cJSON *t;
    cJSON_ArrayForEach(t, a) {
        if (!is_int(t, 0, n_vocab - 1))
            return api_fail(e, 400, param, "'%s' must hold token ids between 0 and %d", param, n_vocab - 1);
        p->ids[p->n_ids++] = (int32_t)t->valuedouble;
    }
    return 0;
}

static int text_prompt(const slm_vocab *v, const char *s, const char *param, api_prompt *p, api_error *e) {
    slm_err err = { 0 };
    int st = slm_prompt_tokenize(v, s, strlen(s), slm_vocab_add_bos(v), true, &p->ids, &p->n_ids, &err);
    if (st == SLM_ENOMEM) return oom(e);
    if (st) return api_fail(e, 400, param, "cannot tokenize '%s': %s", param, err.msg);
    if (p->n_ids == 0) return api_fail(e, 400, param, "'%s' is empty", param);
    return (p->text = slm_strdup(s)) ? 0 : oom(e);
}

static int parse_prompt(const cJSON *root, const api_ctx *ctx, api_request *r, api_error *e) {
    const slm_vocab *v = slm_model_vocab(ctx->model);
    int32_t n_vocab = slm_vocab_n_tokens(v);
    const cJSON *p = field(root, "prompt");
    const char *msg = "'prompt' must be a string, an array of strings, an array of token ids "
                      "or an array of arrays of token ids";
    if (!p) return api_fail(e, 400, "prompt", "'prompt' is required");
    if (cJSON_IsString(p)) {
        if (!(r->prompts = slm_calloc(1, sizeof *r->prompts))) return oom(e);
        r->n_prompts = 1;
        return text_prompt(v, p->valuestring, "prompt", &r->prompts[0], e);
    }
    if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) == 0) return api_fail(e, 400, "prompt", "%s", msg);
    int n = cJSON_GetArraySize(p);
    const cJSON *first = cJSON_GetArrayItem(p, 0);
    if (cJSON_IsNumber(first)) {            /* one pre-tokenized prompt */
        if (!(r->prompts = slm_calloc(1, sizeof *r->prompts))) return oom(e);
        r->n_prompts = 1;
        return token_prompt(p, n_vocab, "prompt", &r->prompts[0], e);
    }
    if (n > API_MAX_CHOICES)
        return api_fail(e, 400, "prompt", "'prompt' holds %d prompts; at most %d", n, API_MAX_CHOICES);
    if (!(r->prompts = slm_calloc((size_t)n, sizeof *r->prompts))) return oom(e);
    const cJSON *x;
    int i = 0;
    cJSON_ArrayForEach(x, p) {
        char param[32];
        snprintf(param, sizeof param, "prompt[%d]", i);
        r->n_prompts = i + 1;
        if (cJSON_IsString(x) && cJSON_IsString(first)) {
            if (text_prompt(v, x->valuestring, param, &r->prompts[i], e)) return -1;
        } else if (cJSON_IsArray(x) && cJSON_IsArray(first)) {
            if (token_prompt(x, n_vocab, param, &r->prompts[i], e)) return -1;
        } else {
            return api_fail(e, 400, "prompt", "%s", msg);
        }
        i++;
    }
    return 0;
}

/* The text of a pre-tokenized prompt, for echo. */
static int prompt_text_from_ids(const slm_vocab *v, api_prompt *p, api_error *e) {
    size_t cap = 64, len = 0;
    char *s = slm_malloc(cap), piece[256];
    if (!s) return oom(e);
    for (int32_t i = 0; i < p->n_ids; i++) {
        int n = slm_token_to_bytes(v, p->ids[i], piece, sizeof piece);
        if (n <= 0) continue;
        if (len + (size_t)n + 1 > cap) {
            while (len + (size_t)n + 1 > cap) cap *= 2;
            char *ns = slm_realloc(s, cap);
            if (!ns) { slm_free(s); return oom(e); }
            s = ns;
        }
        memcpy(s + len, piece, (size_t)n);
        len += (size_t)n;
    }
    s[len] = 0;
    p->text = s;
    return 0;
}

static int parse_fields(const cJSON *root, api_kind kind, const api_ctx *ctx, api_request *r, api_error *e) {
    const slm_vocab *v = slm_model_vocab(ctx->model);
    if (get_str(root, "model", &r->model, e)) return -1;
    if (r->model && strcmp(r->model, ctx->served_model) && ctx->strict_model) {
        api_fail(e, 404, "model", "The model '%.200s' does not exist; this server serves '%.200s'", r->model,
                 ctx->served_model);
        e->code = "model_not_found";
        return -1;
    }
    if (!r->model && ctx->strict_model) return api_fail(e, 400, "model", "'model' is required");
    slm_sample_params *sp = &r->sample;
    *sp = slm_sample_default_params();
    sp->temp = 1.0f;
    sp->top_p = 1.0f;
    sp->top_k = 0;
    sp->min_p = 0.0f;
    sp->repeat_penalty = 1.0f;
    if (get_num(root, "temperature", 0, 2, &sp->temp, e) || get_num(root, "top_p", 0, 1, &sp->top_p, e) ||
        get_int(root, "top_k", 0, 1 << 24, &sp->top_k, e) || get_num(root, "min_p", 0, 1, &sp->min_p, e) ||
        get_num(root, "presence_penalty", -2, 2, &sp->presence_penalty, e) ||
        get_num(root, "frequency_penalty", -2, 2, &sp->frequency_penalty, e) ||
        get_num(root, "repeat_penalty", 0.01, 10, &sp->repeat_penalty, e))
        return -1;
    const cJSON *seed = field(root, "seed");
    if (seed) {
        if (!is_int(seed, -9.2e18, 1.8e19)) return api_fail(e, 400, "seed", "'seed' must be an integer");
        sp->seed = seed->valuedouble < 0 ? (uint64_t)(int64_t)seed->valuedouble : (uint64_t)seed->valuedouble;
        r->seed_given = true;
    }
    r->n = 1;
    if (get_int(root, "n", 1, API_MAX_CHOICES, &r->n, e)) return -1;
    int32_t best_of = 1;
    if (get_int(root, "best_of", 1, API_MAX_CHOICES, &best_of, e)) return -1;
    if (best_of != 1 && best_of != r->n)
        return api_fail(e, 400, "best_of", "'best_of' other than 1 or n is not supported");
    if (parse_stop(root, r, e) || parse_bias(root, slm_vocab_n_tokens(v), r, e) || parse_format(root, r, e)) return -1;
    if (get_bool(root, "stream", &r->stream, e) || get_str(root, "user", &r->user, e)) return -1;
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return api_fail(e, 400, "stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, e)) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            snprintf(e->message, sizeof e->message, "'stream_options.include_usage' must be a boolean");
            return -1;
        }
    }
    const cJSON *tools = field(root, "tools");
    if (tools && (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) > 0))
        return api_fail(e, 400, "tools", "'tools' (function calling) is not supported by this server");
    /* max_tokens: chat prefers max_completion_tokens, the newer name */
    int32_t hi = ctx->max_tokens_cap > 0 ? INT32_MAX : 1 << 30, mt = -2;
    if (get_int(root, "max_tokens", 0, hi, &mt, e)) return -1;
    if (kind == API_CHAT && get_int(root, "max_completion_tokens", 0, hi, &mt, e)) return -1;
    const char *mt_name = kind == API_CHAT && field(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (mt != -2 && ctx->max_tokens_cap > 0 && mt > ctx->max_tokens_cap)
        return api_fail(e, 400, mt_name, "'%s' is %d; this server allows at most %d (--max-tokens-cap)", mt_name, mt,
                        ctx->max_tokens_cap);
    if (mt == -2) mt = kind == API_COMPLETIONS ? 16 : -1;
    if (mt < 0 && ctx->max_tokens_cap > 0) mt = ctx->max_tokens_cap;
    if (kind == API_COMPLETIONS && ctx->max_tokens_cap > 0 && mt > ctx->max_tokens_cap) mt = ctx->max_tokens_cap;
    r->max_tokens = mt;

    r->top_logprobs = -1;
    if (kind == API_CHAT) {
        bool lp = false;
        int32_t top = -1;
        if (get_bool(root, "logprobs", &lp, e) ||
            get_int(root, "top_logprobs", 0, API_MAX_TOP_LOGPROBS, &top, e))
            return -1;
        if (top >= 0 && !lp)
            return api_fail(e, 400, "top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
        if (lp) r->top_logprobs = top < 0 ? 0 : top;
        if (parse_messages(root, ctx, r, e)) return -1;
    } else {
        if (get_int(root, "logprobs", 0, API_MAX_TOP_LOGPROBS, &r->top_logprobs, e) || get_bool(root, "echo", &r->echo, e))
            return -1;
        const cJSON *suffix = field(root, "suffix");
        if (suffix && (!cJSON_IsString(suffix) || suffix->valuestring[0]))
            return api_fail(e, 400, "suffix", "'suffix' (insertion) is not supported by this server");
        if (parse_prompt(root, ctx, r, e)) return -1;
        if (r->echo)
            for (int32_t i = 0; i < r->n_prompts; i++)
                if (!r->prompts[i].text && prompt_text_from_ids(v, &r->prompts[i], e)) return -1;
    }
    if ((int64_t)r->n * r->n_prompts > API_MAX_CHOICES)
        return api_fail(e, 400, "n", "'n' × prompts is %lld; at most %d choices per request",
                        (long long)r->n * r->n_prompts, API_MAX_CHOICES);
    /* a prompt must leave room for one generated token (echo with
     * max_tokens 0 only reads the prompt, so it may fill the context) */
    int32_t room = r->max_tokens == 0 ? ctx->n_ctx : ctx->n_ctx - 1;
    for (int32_t i = 0; i < r->n_prompts; i++)
        if (r->prompts[i].n_ids > room) {
            const char *what = kind == API_CHAT ? "messages" : "prompt";
            api_fail(e, 400, what,
                     "This model's maximum context length is %d tokens, however your %s resulted in %d tokens "
                     "(--ctx %d); reduce the length of the %s", ctx->n_ctx, what, r->prompts[i].n_ids, ctx->n_ctx, what);
            e->code = "context_length_exceeded";
            return -1;
        }
    if (ctx->keep_prompt_json) {
        const cJSON *pj = field(root, kind == API_CHAT ? "messages" : "prompt");
        char *txt = pj ? cJSON_PrintUnformatted(pj) : NULL;
        if (txt) {
            r->prompt_json = slm_strdup(txt);
            cJSON_free(txt);
        }
    }
    if (!r->model && !(r->model = slm_strdup(ctx->served_model))) return oom(e);
    return 0;
}

int api_parse(api_kind kind, const char *body, size_t len, const api_ctx *ctx, api_request *r, api_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    if (len == 0) return api_fail(e, 400, NULL, "the request body is empty; send a JSON object");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return api_fail(e, 400, NULL, "the request body is not valid JSON (near byte %zu)", at);
    }
    int rc = -1;
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p) {
            api_fail(e, 400, NULL, "the request body has bytes after the JSON value (at byte %zu)", (size_t)(p - body));
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        api_fail(e, 400, NULL, "the request body must be a JSON object");
        goto done;
    }
    rc = parse_fields(root, kind, ctx, r, e);
done:
    cJSON_Delete(root);
    if (rc) api_request_free(r);
    return rc;
}
