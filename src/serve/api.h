/*
 * api.h — the OpenAI-compatible API's two halves that know JSON: parsing a
 * request body into an api_request (validated field by field, prompts
 * rendered and tokenized) and rendering responses, stream chunks and errors.
 * Neither half touches sockets or the scheduler; http.c and job.c do.
 */
#ifndef SLM_SERVE_API_H
#define SLM_SERVE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serve/sched.h"
#include "slm/slm.h"
#include "util/json.h"

#define API_MAX_STOPS        4
#define API_MAX_TOP_LOGPROBS 20
#define API_MAX_CHOICES      128   /* n × prompts                         */
#define API_MAX_LOGIT_BIAS   1024

typedef enum api_kind { API_CHAT, API_COMPLETIONS } api_kind;

/* An error as OpenAI reports it: HTTP status and the fields of
 * {"error":{"message","type","param","code"}}. */
typedef struct api_error {
    int  status;             /* HTTP status                                   */
    const char *type;        /* "invalid_request_error", "server_error", …    */
    const char *code;        /* "invalid_api_key", … or NULL                  */
    char param[64];          /* the offending field or ""                     */
    char message[512];       /* one line for a person                         */
    int  retry_after;        /* seconds for a Retry-After header, 0: none     */
} api_error;

/* Fills e and returns -1, so parsers write `return api_fail(e, 400, …)`. */
int api_fail(api_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What the parser needs from the server. */
typedef struct api_ctx {
    const slm_model *model;
    slm_chat_family family;      /* chat template                               */
    const char *served_model;    /* the name requests must use (--alias)        */
    bool strict_model;           /* other names are 404                         */
    int32_t n_ctx;               /* positions per sequence                      */
    int32_t max_tokens_cap;      /* 0: none                                     */
    int32_t max_messages;        /* 0: none                                     */
    bool keep_prompt_json;       /* keep the prompt/messages JSON (--log-prompts) */
} api_ctx;

typedef struct api_prompt {
    int32_t *ids; int32_t n_ids; /* tokens (owned)                              */
    char *text;                  /* the prompt's text for echo (owned) or NULL  */
} api_prompt;

typedef enum api_format { API_FMT_TEXT, API_FMT_JSON_OBJECT, API_FMT_JSON_SCHEMA } api_format;

typedef struct api_request {
    api_kind kind;
    char *model;                 /* as requested, or the served name (owned)    */
    api_prompt *prompts; int32_t n_prompts; /* chat: one                        */
    int32_t n;                   /* choices per prompt                          */
    int32_t max_tokens;          /* -1: until end of text or a full context     */
    slm_sample_params sample;    /* logit_bias points into bias                 */
    bool seed_given;
    slm_logit_bias *bias; int32_t n_bias;
    char *stops[API_MAX_STOPS]; int32_t n_stops;
    int32_t top_logprobs;        /* -1: no log-probabilities                    */
    bool echo;                   /* completions: prompt text (and logprobs) first */
    bool stream, include_usage;
    api_format format;
    char *schema;                /* JSON Schema text for API_FMT_JSON_SCHEMA     */
    char *user;                  /* "user" field or NULL                        */
    char *prompt_json;           /* keep_prompt_json: the messages/prompt JSON  */
} api_request;

/* Parses and validates a request body. 0, or -1 with e filled (status 400
 * naming the field, 404 for an unknown model with strict_model, 500 when
 * memory runs out). On success r owns its strings and arrays
 * (api_request_free); on failure r holds nothing. */
int  api_parse(api_kind kind, const char *body, size_t len, const api_ctx *ctx, api_request *r, api_error *e);
void api_request_free(api_request *r);

/* ---- rendering (api_render.c) ------------------------------------------- */

/* One token's log-probability with its alternatives, as the scheduler sent it. */
typedef struct api_lp {
    int32_t token;
    float   logprob;             /* NaN: none (the first echoed prompt token)    */
    int32_t n_top;
    sched_logprob top[API_MAX_TOP_LOGPROBS];
    bool    prompt;              /* an echoed prompt token                       */
} api_lp;

/* One choice's state while it is generated and when it is rendered. */
typedef struct api_choice {
    int32_t index, prompt_index;
    char *text; size_t text_len, text_cap; /* generated text (non-streaming)     */
    api_lp *lps; int32_t n_lps, cap_lps;   /* log-probabilities kept             */
    const char *finish;          /* "stop", "length" or NULL while running       */
    int32_t n_prompt, n_cached, n_gen;
} api_choice;

typedef struct api_usage { int64_t prompt, completion, cached; } api_usage;

/* What every response object carries. */
typedef struct api_meta {
    const char *id;              /* "chatcmpl-…" / "cmpl-…"                      */
    int64_t created;             /* Unix seconds                                 */
    const char *model;           /* served model name                            */
    const char *fingerprint;     /* system_fingerprint                           */
} api_meta;

/* The whole non-streaming response for r. Returns the body (slm_free) or NULL. */
char *api_render_response(const api_request *r, const api_meta *m, const slm_vocab *v,
                          const api_choice *ch, int32_t n_ch, const api_usage *u, size_t *len);

/* Appends "data: {…}\n\n" for a chunk of choice c: role (chat, first chunk),
 * text, the log-probabilities lps[0..n_lps) and finish (NULL while running). */
void api_render_chunk(slm_jw *w, const api_request *r, const api_meta *m, const slm_vocab *v, int32_t index,
                      bool role, const char *text, size_t text_len, const api_lp *lps, int32_t n_lps,
                      const char *finish);
/* Appends the usage chunk (empty choices) of a stream. */
void api_render_usage_chunk(slm_jw *w, const api_request *r, const api_meta *m, const api_usage *u);

/* {"error":{…}} (slm_free). */
char *api_render_error(const api_error *e, size_t *len);

/* The "token" string of a log-probability entry: the token's bytes when they
 * are valid UTF-8, else "bytes:\xNN…" as OpenAI writes partial characters.
 * Writes raw bytes to bytes (at most cap) and returns their count. */
int api_token_bytes(const slm_vocab *v, int32_t token, char *bytes, size_t cap);

#endif
