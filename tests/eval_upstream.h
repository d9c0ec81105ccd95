/*
 * eval_upstream.h — a fake OpenAI-compatible upstream for test_eval.c, in
 * the test process (libmicrohttpd, a thread per connection, loopback only,
 * a free port). Header-only (static functions) because the Makefile links
 * each tests/test_*.c with helpers.o alone.
 *
 * POST …/chat/completions answers from the last user message:
 *   "answer:X"       the reply is X (model "bad": "wrong" when the message
 *                    also says " hard")
 *   "mode:ok"        answer normally (also without any mode)
 *   "mode:500once"   HTTP 500 the first time this message is seen, then ok
 *   "mode:429once"   HTTP 429 with Retry-After: 1 the first time, then ok
 *   "mode:500always" HTTP 500 every time
 *   "mode:hang"      sleep 1.5 s before answering (longer than the test's
 *                    target timeout)
 *   "mode:badjson"   HTTP 200 with a body that is not JSON
 *   "mode:nochoices" HTTP 200 with JSON lacking choices
 *   "mode:400"       HTTP 400 in OpenAI's error shape
 * Model "triage" answers "spam" or "ham" (spam when the email mentions
 * money, "click" or "free"); model "extract" answers a JSON object of the
 * sender, subject and asks_to_click_link read naively from the email;
 * model "judge" answers "Score: 9" when the prompt mentions Paris, else
 * "Score: 2".
 * Usage tokens: prompt bytes / 4 in, 3 out.
 */
#ifndef SLM_TESTS_EVAL_UPSTREAM_H
#define SLM_TESTS_EVAL_UPSTREAM_H

#include <arpa/inet.h>
#include <cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EU_MAX_LOG 4096

typedef struct eval_upstream {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;           /* guards log, n_log */
    char *log[EU_MAX_LOG];        /* message of each request, in order */
    int n_log;
} eval_upstream;

typedef struct eu_body { char *p; size_t n; } eu_body;

static int eu_seen(eval_upstream *u, const char *msg) {
    int n = 0;
    pthread_mutex_lock(&u->mu);
    for (int i = 0; i < u->n_log; i++) n += !strcmp(u->log[i], msg);
    if (u->n_log < EU_MAX_LOG) u->log[u->n_log++] = strdup(msg);
    pthread_mutex_unlock(&u->mu);
    return n;   /* times seen before this request */
}

/* Requests so far whose message contains needle. */
static inline int eval_upstream_requests(eval_upstream *u, const char *needle) {
    int n = 0;
    pthread_mutex_lock(&u->mu);
    for (int i = 0; i < u->n_log; i++) n += strstr(u->log[i], needle) != NULL;
    pthread_mutex_unlock(&u->mu);
    return n;
}

static enum MHD_Result eu_send(struct MHD_Connection *c, unsigned status, const char *body, const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static void eu_word(const char *msg, const char *key, char *out, size_t cap) {
    out[0] = 0;
    const char *p = strstr(msg, key);
    if (!p) return;
    p += strlen(key);
    size_t n = strcspn(p, " \n");
    snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), p);
}

/* The reply text for model and message. */
static char *eu_answer(const char *model, const char *msg) {
    char ans[256];
    if (!strcmp(model, "triage")) {
        bool spam = strstr(msg, "$") || strstr(msg, "click") || strstr(msg, "Click") || strstr(msg, "FREE") || strstr(msg, "free");
        return strdup(spam ? "spam" : "ham");
    }
    if (!strcmp(model, "judge")) return strdup(strstr(msg, "paris") || strstr(msg, "Paris") ? "Fine answer. Score: 9" : "Score: 2");
    if (!strcmp(model, "extract")) {
        char from[256] = "", subject[256] = "";
        const char *f = strstr(msg, "\nFrom: "), *s = strstr(msg, "\nSubject: ");
        if (f) {
            const char *lt = strchr(f, '<'), *nl = strchr(f + 1, '\n');
            const char *a = lt && (!nl || lt < nl) ? lt + 1 : f + 7;
            snprintf(from, sizeof from, "%.*s", (int)strcspn(a, ">\n "), a);
        }
        if (s) snprintf(subject, sizeof subject, "%.*s", (int)strcspn(s + 10, "\n"), s + 10);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sender", from);
        cJSON_AddStringToObject(o, "subject", subject);
        cJSON_AddBoolToObject(o, "asks_to_click_link", strstr(msg, "http") && strstr(msg, "lick"));
        char *js = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        char *out = strdup(js);
        cJSON_free(js);
        return out;
    }
    eu_word(msg, "answer:", ans, sizeof ans);
    if (!strcmp(model, "bad") && strstr(msg, " hard")) snprintf(ans, sizeof ans, "wrong");
    return strdup(ans);
}

static enum MHD_Result eu_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                 const char *upload, size_t *upload_size, void **con_cls) {
    eval_upstream *u = cls;
    (void)version;
    eu_body *b = *con_cls;
    if (!b) {
        *con_cls = calloc(1, sizeof *b);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *np = realloc(b->p, b->n + *upload_size + 1);
        if (!np) return MHD_NO;
        b->p = np;
        memcpy(b->p + b->n, upload, *upload_size);
        b->n += *upload_size;
        b->p[b->n] = 0;
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") || !strstr(url, "/chat/completions"))
        return eu_send(c, 404, "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_request_error\"}}", NULL);
    cJSON *req = b->p ? cJSON_Parse(b->p) : NULL;
    const cJSON *model = cJSON_GetObjectItem(req, "model"), *msgs = cJSON_GetObjectItem(req, "messages");
    const char *msg = "";
    for (const cJSON *m = msgs ? msgs->child : NULL; m; m = m->next) {
        const cJSON *role = cJSON_GetObjectItem(m, "role"), *content = cJSON_GetObjectItem(m, "content");
        if (cJSON_IsString(role) && !strcmp(role->valuestring, "user") && cJSON_IsString(content)) msg = content->valuestring;
    }
    if (!cJSON_IsString(model)) {
        cJSON_Delete(req);
        return eu_send(c, 400, "{\"error\":{\"message\":\"model is required\",\"type\":\"invalid_request_error\"}}", NULL);
    }
    int seen = eu_seen(u, msg);
    enum MHD_Result ok;
    if (strstr(msg, "mode:500once") && seen == 0) ok = eu_send(c, 500, "{\"error\":{\"message\":\"upstream exploded\"}}", NULL);
    else if (strstr(msg, "mode:429once") && seen == 0) ok = eu_send(c, 429, "{\"error\":{\"message\":\"slow down\"}}", "1");
    else if (strstr(msg, "mode:500always")) ok = eu_send(c, 500, "{\"error\":{\"message\":\"upstream exploded\"}}", NULL);
    else if (strstr(msg, "mode:badjson")) ok = eu_send(c, 200, "{\"choices\": [{\"message\": {\"content\": \"yes", NULL);
    else if (strstr(msg, "mode:nochoices")) ok = eu_send(c, 200, "{\"object\":\"chat.completion\"}", NULL);
    else if (strstr(msg, "mode:400")) ok = eu_send(c, 400, "{\"error\":{\"message\":\"bad request: temperature\",\"type\":\"invalid_request_error\"}}", NULL);
    else {
        if (strstr(msg, "mode:hang")) {
            struct timespec ts = { 1, 500000000L };
            nanosleep(&ts, NULL);
        }
        char *text = eu_answer(model->valuestring, msg);
        cJSON *o = cJSON_CreateObject(), *choices = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", "chatcmpl-fake");
        cJSON_AddStringToObject(o, "object", "chat.completion");
        cJSON_AddStringToObject(o, "model", model->valuestring);
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddNumberToObject(ch, "index", 0);
        cJSON *m = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddStringToObject(ch, "finish_reason", "stop");
        cJSON *usage = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(usage, "prompt_tokens", (double)(strlen(msg) / 4 + 1));
        cJSON_AddNumberToObject(usage, "completion_tokens", 3);
        char *body = cJSON_PrintUnformatted(o);
        ok = eu_send(c, 200, body, NULL);
        cJSON_free(body);
        cJSON_Delete(o);
        free(text);
    }
    cJSON_Delete(req);
    return ok;
}

static void eu_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    eu_body *b = *con_cls;
    if (b) free(b->p);
    free(b);
    *con_cls = NULL;
}

/* Starts the upstream on 127.0.0.1 and a free port; NULL on failure. */
static inline eval_upstream *eval_upstream_start(void) {
    eval_upstream *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    pthread_mutex_init(&u->mu, NULL);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    u->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            eu_handle, u, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED, eu_done, u,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!u->d) {
        free(u);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(u->d, MHD_DAEMON_INFO_BIND_PORT);
    u->port = info ? info->port : 0;
    return u;
}

static inline int eval_upstream_port(const eval_upstream *u) { return u->port; }

static inline void eval_upstream_stop(eval_upstream *u) {
    if (!u) return;
    MHD_stop_daemon(u->d);
    for (int i = 0; i < u->n_log; i++) free(u->log[i]);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

#endif
