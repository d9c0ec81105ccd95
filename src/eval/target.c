/*
 * target.c — see target.h: spec parsing, open/free, and the retry loop every
 * target kind shares. The rate limit is a one-token bucket: each attempt
 * reserves the next slot (next_slot advances by 1/rps under a leaf mutex)
 * and sleeps until it. Backoff before retry k (0-based) is
 * min(backoff_ms * 2^k, 30 s) scaled by a random factor in [0.5, 1) (jitter
 * keeps concurrent workers from retrying in lock-step), and at least the
 * upstream's Retry-After (capped at 120 s).
 */
#include "eval/target.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/progress.h"

#define MAX_BACKOFF_MS 30000.0
#define MAX_RETRY_AFTER_S 120.0

void slm_eval_target_cfg_clear(slm_eval_target_cfg *c) {
    slm_free(c->name);
    slm_free(c->url);
    slm_free(c->model);
    slm_free(c->key_env);
    slm_free(c->lora);
    slm_free(c->chat_template);
    memset(c, 0, sizeof *c);
    c->retries = -1;
}

static bool parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static int set_str(char **dst, const char *v, slm_err *err) {
    slm_free(*dst);
    if (!(*dst = slm_strdup(v))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    return 0;
}

int slm_eval_target_cfg_parse(const char *spec, slm_eval_target_cfg *c, slm_err *err) {
    memset(c, 0, sizeof *c);
    c->retries = -1;
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec)
        return slm_err_set(err, SLM_EINVAL, "target '%s': expected NAME=URL[,model=M,…] or NAME=MODEL.gguf[,…]", spec);
    char *copy = slm_strdup(eq + 1);
    if (!copy || !(c->name = slm_strndup(spec, (size_t)(eq - spec)))) {
        slm_free(copy);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    for (const char *p = c->name; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || *p == ':' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z'))) {
            slm_err_set(err, SLM_EINVAL, "target '%s': names use letters, digits and - _ . : only", c->name);
            goto fail;
        }
    int rc = 0;
    char *save = NULL;
    char *first = strtok_r(copy, ",", &save);
    if (!first || !*first) {
        slm_err_set(err, SLM_EINVAL, "target '%s': no URL or model path after '='", c->name);
        goto fail;
    }
    bool http = !strncmp(first, "http://", 7) || !strncmp(first, "https://", 8);
    if ((rc = set_str(http ? &c->url : &c->model, first, err))) goto fail;
    for (char *kv = strtok_r(NULL, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (!v) {
            slm_err_set(err, SLM_EINVAL, "target '%s': option '%s' needs a value (KEY=VALUE)", c->name, kv);
            goto fail;
        }
        *v++ = 0;
        double d;
        bool ok = true;
        if (!strcmp(kv, "model") && http) rc = set_str(&c->model, v, err);
        else if (!strcmp(kv, "key_env") && http) rc = set_str(&c->key_env, v, err);
        else if (!strcmp(kv, "lora") && !http) rc = set_str(&c->lora, v, err);
        else if (!strcmp(kv, "template") && !http) rc = set_str(&c->chat_template, v, err);
        else if (!strcmp(kv, "concurrency")) { ok = parse_num(v, 1, 256, &d) && d == floor(d); c->concurrency = (int)d; }
        else if (!strcmp(kv, "rps")) { ok = parse_num(v, 0, 1e6, &d); c->rps = d; }
        else if (!strcmp(kv, "timeout")) { ok = parse_num(v, 0.001, 86400, &d); c->timeout_s = d; }
        else if (!strcmp(kv, "retries")) { ok = parse_num(v, 0, 100, &d) && d == floor(d); c->retries = (int)d; }
        else if (!strcmp(kv, "backoff_ms")) { ok = parse_num(v, 1, 600000, &d) && d == floor(d); c->backoff_ms = (int)d; }
        else if (!strcmp(kv, "in")) { ok = parse_num(v, 0, 1e9, &d); c->price_in = d; c->has_price = true; }
        else if (!strcmp(kv, "out")) { ok = parse_num(v, 0, 1e9, &d); c->price_out = d; c->has_price = true; }
        else if (!strcmp(kv, "threads") && !http) { ok = parse_num(v, 1, 512, &d) && d == floor(d); c->threads = (int)d; }
        else if (!strcmp(kv, "ctx") && !http) { ok = parse_num(v, 16, 1 << 24, &d) && d == floor(d); c->n_ctx = (int)d; }
        else {
            slm_err_set(err, SLM_EINVAL, "target '%s': unknown option '%s' for %s target (%s)", c->name, kv,
                        http ? "an HTTP" : "a local",
                        http ? "model, key_env, concurrency, rps, timeout, retries, backoff_ms, in, out"
                             : "lora, template, threads, ctx, concurrency, rps, timeout, retries, backoff_ms, in, out");
            goto fail;
        }
        if (rc) goto fail;
        if (!ok) {
            slm_err_set(err, SLM_EINVAL, "target '%s': bad value '%s' for %s", c->name, v, kv);
            goto fail;
        }
    }
    if (http && !c->model && (rc = set_str(&c->model, c->name, err))) goto fail;
    slm_free(copy);
    return 0;
fail:
    slm_free(copy);
    slm_eval_target_cfg_clear(c);
    return err && err->code ? err->code : SLM_EINVAL;
}

void slm_eval_reply_clear(slm_eval_reply *r) {
    slm_free(r->output);
    memset(r, 0, sizeof *r);
}

int slm_eval_target_open(slm_eval_target_cfg *cfg, slm_eval_target **out, slm_err *err) {
    *out = NULL;
    slm_eval_target *t = slm_calloc(1, sizeof *t);
    if (!t) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    t->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    cfg->retries = -1;
    t->ops = t->cfg.url ? &slm_eval_target_http_ops : &slm_eval_target_local_ops;
    if (t->cfg.concurrency <= 0) t->cfg.concurrency = t->cfg.url ? 4 : 1;
    if (t->cfg.timeout_s <= 0) t->cfg.timeout_s = 120;
    if (t->cfg.retries < 0) t->cfg.retries = 3;
    if (t->cfg.backoff_ms <= 0) t->cfg.backoff_ms = 500;
    pthread_mutex_init(&t->rate_mu, NULL);
    pthread_mutex_init(&t->judge_mu, NULL);
    int rc = t->ops->open(t, err);
    if (rc) {
        t->impl = NULL;
        slm_eval_target_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void slm_eval_target_free(slm_eval_target *t) {
    if (!t) return;
    if (t->judge_ws) t->ops->worker_free(t, t->judge_ws);
    if (t->impl) t->ops->close(t);
    pthread_mutex_destroy(&t->rate_mu);
    pthread_mutex_destroy(&t->judge_mu);
    slm_eval_target_cfg_clear(&t->cfg);
    slm_free(t);
}

/* Sleeps up to s seconds in short steps; false when cancelled. */
static bool nap(double s, const volatile sig_atomic_t *cancel) {
    double until = slm_now() + s;
    for (;;) {
        if (cancel && *cancel) return false;
        double left = until - slm_now();
        if (left <= 0) return true;
        if (left > 0.05) left = 0.05;
        struct timespec ts = { 0, (long)(left * 1e9) };
        nanosleep(&ts, NULL);
    }
}

static bool wait_slot(slm_eval_target *t, const volatile sig_atomic_t *cancel) {
    if (t->cfg.rps <= 0) return !(cancel && *cancel);
    pthread_mutex_lock(&t->rate_mu);
    double now = slm_now(), slot = t->next_slot > now ? t->next_slot : now;
    t->next_slot = slot + 1.0 / t->cfg.rps;
    pthread_mutex_unlock(&t->rate_mu);
    return nap(slot - now, cancel);
}

void slm_eval_target_complete(slm_eval_target *t, void *ws, const cJSON *messages, const cJSON *params,
                              const volatile sig_atomic_t *cancel, slm_eval_reply *r) {
    memset(r, 0, sizeof *r);
    r->tokens_in = r->tokens_out = -1;
    unsigned seed = (unsigned)(slm_now() * 1e6) ^ (unsigned)(uintptr_t)ws;
    int timeout_ms = (int)(t->cfg.timeout_s * 1000 + 0.5);
    for (int k = 0;; k++) {
        if (!wait_slot(t, cancel)) {
            r->error = SLM_ECANCELED;
            snprintf(r->error_msg, sizeof r->error_msg, "cancelled");
            return;
        }
        slm_eval_attempt a = { .tokens_in = -1, .tokens_out = -1, .retry_after_s = -1 };
        double t0 = slm_now();
        t->ops->attempt(t, ws, messages, params, timeout_ms, &a);
        r->latency_ms = (slm_now() - t0) * 1000;
        r->attempts = k + 1;
        r->http_status = a.http_status;
        if (!a.error) {
            r->output = a.output;
            r->tokens_in = a.tokens_in;
            r->tokens_out = a.tokens_out;
            r->error = 0;
            r->error_msg[0] = 0;
            return;
        }
        slm_free(a.output);
        r->error = a.error;
        snprintf(r->error_msg, sizeof r->error_msg, "%s", a.msg);
        if (!a.retryable || k >= t->cfg.retries) return;
        double ms = t->cfg.backoff_ms;
        for (int i = 0; i < k && ms < MAX_BACKOFF_MS; i++) ms *= 2;
        if (ms > MAX_BACKOFF_MS) ms = MAX_BACKOFF_MS;
        ms *= 0.5 + 0.5 * (double)rand_r(&seed) / ((double)RAND_MAX + 1);
        if (a.retry_after_s >= 0) {
            double ra = (a.retry_after_s < MAX_RETRY_AFTER_S ? a.retry_after_s : MAX_RETRY_AFTER_S) * 1000;
            if (ra > ms) ms = ra;
        }
        if (!nap(ms / 1000, cancel)) {
            r->error = SLM_ECANCELED;
            snprintf(r->error_msg, sizeof r->error_msg, "cancelled after: %.200s", a.msg);
            return;
        }
    }
}

int slm_eval_target_ask(slm_eval_target *t, const char *prompt, const cJSON *params, char **text, slm_err *err) {
    *text = NULL;
    cJSON *msgs = cJSON_CreateArray(), *m = cJSON_CreateObject();
    cJSON_AddItemToArray(msgs, m);
    if (!msgs || !m || !cJSON_AddStringToObject(m, "role", "user") || !cJSON_AddStringToObject(m, "content", prompt)) {
        cJSON_Delete(msgs);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&t->judge_mu);
    int rc = 0;
    if (!t->judge_ws) rc = t->ops->worker_new(t, &t->judge_ws, err);
    slm_eval_reply r;
    if (!rc) {
        slm_eval_target_complete(t, t->judge_ws, msgs, params, NULL, &r);
        if (r.error) rc = slm_err_set(err, r.error, "judge '%s': %s", t->cfg.name, r.error_msg);
        else *text = r.output, r.output = NULL;
        slm_eval_reply_clear(&r);
    }
    pthread_mutex_unlock(&t->judge_mu);
    cJSON_Delete(msgs);
    return rc;
}
