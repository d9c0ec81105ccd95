/*
 * target_local.c — a GGUF model run in-process as an evaluation target. The
 * model is loaded (mmapped) once at open; each worker owns an inference
 * context with one sequence and remembers the tokens its KV cache holds, so
 * cases that share a system prompt reuse it. A case is rendered with the
 * model's chat template (or template=NAME; ChatML when the model has none
 * slm recognises), then decoded token by token until an end-of-generation
 * token, a stop string, max_tokens (default 256), a full context or the
 * attempt's deadline. Nothing here is worth retrying: a local failure is
 * final. LoRA adapters are accepted in the spec and refused at open.
 *
 * response_format json_object or json_schema is enforced while decoding,
 * as slm serve does (sample/constraint.h): the vocabulary index is built
 * once per target (under a lock, on first use) and shared by the workers;
 * each attempt compiles its schema.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include "chat/prompt.h"
#include "sample/constraint.h"
#include "eval/target.h"
#include "sample/stop.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/progress.h"

#define DEFAULT_MAX_TOKENS 256
#define MAX_STOPS 16

typedef struct local_impl {
    slm_model *model;
    slm_chat_family fam;
    int32_t n_ctx;
    pthread_mutex_t cv_mu;          /* guards building cv (a leaf lock)      */
    slm_constraint_vocab *cv;       /* JSON constraints' vocabulary index    */
} local_impl;

typedef struct local_ws {
    slm_ctx *ctx;
    int32_t *cached; int32_t n_cached, cap;   /* what the KV cache holds */
    float *logits;
} local_ws;

static int l_open(slm_eval_target *t, slm_err *err) {
    if (t->cfg.lora)
        return slm_err_set(err, SLM_EUNSUPPORTED,
                           "target '%s': lora=%s: LoRA adapters are not supported yet; merge the adapter into the GGUF "
                           "or serve it and use an http target", t->cfg.name, t->cfg.lora);
    snprintf(t->endpoint, sizeof t->endpoint, "%s", t->cfg.model);
    local_impl *L = slm_calloc(1, sizeof *L);
    if (!L) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    slm_model_params mp = slm_model_default_params();
    slm_err e = { 0 };
    int rc = slm_model_load(t->cfg.model, &mp, &L->model, &e);
    if (rc) {
        slm_free(L);
        return slm_err_set(err, rc, "target '%s': %s", t->cfg.name, e.msg);
    }
    slm_model_info in;
    slm_model_get_info(L->model, &in);
    if (t->cfg.chat_template) {
        L->fam = slm_chat_family_from_name(t->cfg.chat_template);
        if (!L->fam) {
            slm_model_free(L->model);
            slm_free(L);
            return slm_err_set(err, SLM_EINVAL,
                               "target '%s': unknown chat template '%s' (llama2, llama3, chatml, phi3, mistral, gemma, zephyr)",
                               t->cfg.name, t->cfg.chat_template);
        }
    } else {
        L->fam = in.chat_template ? slm_chat_detect(in.chat_template) : SLM_CHAT_UNKNOWN;
        if (!L->fam) L->fam = SLM_CHAT_CHATML;
    }
    L->n_ctx = t->cfg.n_ctx > 0 ? t->cfg.n_ctx : (in.n_ctx_train > 0 && in.n_ctx_train < 4096 ? in.n_ctx_train : 4096);
    pthread_mutex_init(&L->cv_mu, NULL);
    t->impl = L;
    return 0;
}

static void l_close(slm_eval_target *t) {
    local_impl *L = t->impl;
    if (!L) return;
    slm_constraint_vocab_free(L->cv);
    pthread_mutex_destroy(&L->cv_mu);
    slm_model_free(L->model);
    slm_free(L);
    t->impl = NULL;
}

/* The case's response_format as a constraint: NULL (*out) for none or
 * "text"; "json_object" / {"type":"json_object"}: any JSON object;
 * {"type":"json_schema","json_schema":{"schema":{…}}}: that schema. */
static int json_constraint(local_impl *L, const cJSON *params, slm_constraint **out, slm_err *err) {
    *out = NULL;
    const cJSON *rf = params ? cJSON_GetObjectItemCaseSensitive(params, "response_format") : NULL;
    const char *type = cJSON_IsString(rf) ? rf->valuestring : NULL;
    if (cJSON_IsObject(rf)) {
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(rf, "type");
        type = cJSON_IsString(tp) ? tp->valuestring : NULL;
    }
    if (!type || !strcmp(type, "text")) return 0;
    char *schema = NULL;
    if (!strcmp(type, "json_schema")) {
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rf, "json_schema"), "schema");
        if (!cJSON_IsObject(js)) return slm_err_set(err, SLM_EINVAL, "response_format json_schema without a schema object");
        if (!(schema = cJSON_PrintUnformatted(js))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    } else if (strcmp(type, "json_object")) {
        return slm_err_set(err, SLM_EINVAL, "response_format type '%s' (text, json_object, json_schema)", type);
    }
    pthread_mutex_lock(&L->cv_mu);
    int rc = L->cv ? 0 : slm_constraint_vocab_new(slm_model_vocab(L->model), &L->cv, err);
    pthread_mutex_unlock(&L->cv_mu);
    if (!rc) rc = slm_constraint_new_json_with(L->cv, schema, out, err);
    if (schema) cJSON_free(schema);
    return rc;
}

static void l_worker_free(slm_eval_target *t, void *p) {
    local_ws *w = p;
    if (!w) return;
    slm_ctx_free(w->ctx);
    slm_free(w->cached);
    slm_free(w->logits);
    slm_free(w);
}

static int l_worker_new(slm_eval_target *t, void **out, slm_err *err) {
    local_impl *L = t->impl;
    local_ws *w = slm_calloc(1, sizeof *w);
    if (!w) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_ctx = L->n_ctx;
    /* workers share the cores unless threads= says otherwise */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int per = cores > 0 ? (int)(cores / (t->cfg.concurrency > 0 ? t->cfg.concurrency : 1)) : 1;
    cp.n_threads = t->cfg.threads > 0 ? t->cfg.threads : per > 0 ? per : 1;
    cp.n_seq = 1;
    slm_err e = { 0 };
    int rc = slm_ctx_new(L->model, &cp, &w->ctx, &e);
    size_t n_vocab = (size_t)slm_vocab_n_tokens(slm_model_vocab(L->model));
    if (!rc && !(w->logits = slm_malloc(n_vocab * sizeof *w->logits))) rc = SLM_ENOMEM, snprintf(e.msg, sizeof e.msg, "out of memory");
    if (rc) {
        l_worker_free(t, w);
        return slm_err_set(err, rc, "target '%s': %s", t->cfg.name, e.msg);
    }
    *out = w;
    return 0;
}

static double num(const cJSON *params, const char *k, double def) {
    const cJSON *v = params ? cJSON_GetObjectItemCaseSensitive(params, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

__attribute__((format(printf, 3, 4)))
static void fail(slm_eval_attempt *a, int code, const char *fmt, ...) {
    a->error = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
}

static int push_cached(local_ws *w, int32_t tok) {
    if (w->n_cached == w->cap) {
        int32_t nc = w->cap ? w->cap * 2 : 256;
        int32_t *n = slm_realloc(w->cached, (size_t)nc * sizeof *n);
        if (!n) return SLM_ENOMEM;
        w->cached = n;
        w->cap = nc;
    }
    w->cached[w->n_cached++] = tok;
    return 0;
}

static void l_attempt(slm_eval_target *t, void *p, const cJSON *messages, const cJSON *params, int timeout_ms,
                      slm_eval_attempt *a) {
    local_impl *L = t->impl;
    local_ws *w = p;
    const slm_vocab *v = slm_model_vocab(L->model);
    double deadline = slm_now() + timeout_ms / 1000.0;
    int n_msgs = cJSON_GetArraySize(messages);
    slm_chat_msg *msgs = slm_calloc((size_t)(n_msgs ? n_msgs : 1), sizeof *msgs);
    int32_t *ids = NULL, n_ids = 0;
    slm_sampler *smp = NULL;
    slm_constraint *con = NULL;
    slm_detok *dt = NULL;
    slm_stopper *sp = NULL;
    slm_err e = { 0 };
    if (!msgs) { fail(a, SLM_ENOMEM, "out of memory"); return; }
    int i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++)
        msgs[i] = (slm_chat_msg){ cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring,
                                  cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring };
    int rc = slm_prompt_chat(L->model, L->fam, msgs, n_msgs, &ids, &n_ids, NULL, &e);
    if (rc) { fail(a, rc, "%s", e.msg); goto done; }
    int32_t n_ctx = slm_ctx_n_ctx(w->ctx);
    if (n_ids >= n_ctx) {
        fail(a, SLM_ERANGE, "the prompt has %d tokens but the context holds %d (raise ctx=)", n_ids, n_ctx);
        goto done;
    }
    /* sampling: the suite's params over greedy defaults */
    slm_sample_params sp_params = slm_sample_default_params();
    sp_params.temp = (float)num(params, "temperature", 0);
    sp_params.top_p = (float)num(params, "top_p", 1);
    sp_params.top_k = (int32_t)num(params, "top_k", 0);
    sp_params.min_p = (float)num(params, "min_p", 0);
    sp_params.presence_penalty = (float)num(params, "presence_penalty", 0);
    sp_params.frequency_penalty = (float)num(params, "frequency_penalty", 0);
    sp_params.seed = (uint64_t)num(params, "seed", 0);
    long max_tokens = (long)num(params, "max_tokens", DEFAULT_MAX_TOKENS);
    const char *stops[MAX_STOPS];
    int n_stops = 0;
    const cJSON *st = params ? cJSON_GetObjectItemCaseSensitive(params, "stop") : NULL;
    if (cJSON_IsString(st)) stops[n_stops++] = st->valuestring;
    for (const cJSON *s = cJSON_IsArray(st) ? st->child : NULL; s && n_stops < MAX_STOPS; s = s->next)
        if (cJSON_IsString(s)) stops[n_stops++] = s->valuestring;
    int32_t n_vocab = slm_vocab_n_tokens(v);
    if ((rc = json_constraint(L, params, &con, &e))) { fail(a, rc, "%s", e.msg); goto done; }
    if (slm_sampler_new(&sp_params, n_vocab, &smp) || slm_detok_new(v, &dt) || !(sp = slm_stopper_new(stops, n_stops))) {
        fail(a, SLM_EINVAL, "bad sampling parameters, or out of memory");
        goto done;
    }
    /* reuse the cached prefix; the last prompt token is always recomputed */
    int32_t keep = 0;
    while (keep < w->n_cached && keep < n_ids - 1 && w->cached[keep] == ids[keep]) keep++;
    slm_kv_truncate(w->ctx, 0, keep);
    w->n_cached = keep;
    slm_detok_set_at_start(dt, false);
    for (int32_t k = 0; k < n_ids; k++) slm_sampler_accept(smp, ids[k]);
    if ((rc = slm_decode(w->ctx, 0, ids + keep, n_ids - keep, keep, false, w->logits, &e))) {
        w->n_cached = 0;
        slm_kv_truncate(w->ctx, 0, 0);
        fail(a, rc, "%s", e.msg);
        goto done;
    }
    for (int32_t k = keep; k < n_ids; k++)
        if (push_cached(w, ids[k])) { fail(a, SLM_ENOMEM, "out of memory"); goto done; }
    char piece[512];
    long n_gen = 0;
    bool stopped = false;
    while (n_gen < max_tokens) {
        if (slm_now() > deadline) {
            fail(a, SLM_ETIMEDOUT, "timed out after %.1f s (%ld tokens generated)", timeout_ms / 1000.0, n_gen);
            goto done;
        }
        if (con) slm_constraint_apply(con, w->logits);
        int32_t tok = slm_sampler_sample(smp, w->logits);
        if (con && (rc = slm_constraint_accept(con, tok))) {
            fail(a, rc, "constrained decoding reached a dead end after %ld tokens (the schema needs bytes the "
                        "vocabulary cannot produce)", n_gen);
            goto done;
        }
        if (slm_vocab_is_eog(v, tok)) break;
        slm_sampler_accept(smp, tok);

        n_gen++;
        int n = slm_detok_push(dt, tok, piece, sizeof piece);
        int hit = n > 0 ? slm_stopper_push(sp, piece, (size_t)n) : 0;
        if (hit < 0) { fail(a, SLM_ENOMEM, "out of memory"); goto done; }
        if (hit) { stopped = true; break; }
        if (n_gen >= max_tokens || w->n_cached >= n_ctx) break;
        if ((rc = slm_decode(w->ctx, 0, &tok, 1, w->n_cached, false, w->logits, &e))) {
            w->n_cached = 0;
            slm_kv_truncate(w->ctx, 0, 0);
            fail(a, rc, "%s", e.msg);
            goto done;
        }
        if (push_cached(w, tok)) { fail(a, SLM_ENOMEM, "out of memory"); goto done; }
    }
    if (!stopped) {
        int n = slm_detok_flush(dt, piece, sizeof piece);
        if (n > 0) slm_stopper_push(sp, piece, (size_t)n);
    }
    if (!(a->output = slm_strdup(slm_stopper_text(sp, NULL)))) { fail(a, SLM_ENOMEM, "out of memory"); goto done; }
    a->tokens_in = n_ids;
    a->tokens_out = n_gen;
done:
    slm_constraint_free(con);
    slm_stopper_free(sp);
    slm_detok_free(dt);
    slm_sampler_free(smp);
    slm_free(ids);
    slm_free(msgs);
}

const slm_eval_target_ops slm_eval_target_local_ops = {
    .kind = "local",
    .open = l_open,
    .worker_new = l_worker_new,
    .worker_free = l_worker_free,
    .attempt = l_attempt,
    .close = l_close,
};
