/*
 * server.h — the contract between the CLI and the server: `slm serve`
 * fills an slm_server_params and calls slm_server_run, which binds, loads
 * the model (answering /health with 503 meanwhile), serves the OpenAI-
 * compatible API until SIGINT or SIGTERM, drains and returns.
 */
#ifndef SLM_SERVE_SERVER_H
#define SLM_SERVE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "slm/slm.h"

typedef struct slm_server_params {
    const char *model_path;         /* GGUF file (required)                              */
    const char *host;               /* address to bind ("127.0.0.1"; "0.0.0.0": all)     */
    int32_t port;                   /* 8080; 0: any free port (printed on stderr)        */
    const char *alias;              /* served model name; NULL: file name minus .gguf    */
    const char *chat_template;      /* family name; NULL: the model's (chatml if none)   */
    int32_t n_parallel;             /* sequences decoding at once (4)                    */
    int32_t max_queue;              /* requests waiting beyond those (64); more: 429     */
    int32_t n_ctx;                  /* positions per sequence (0: the model's)           */
    size_t  kv_mem;                 /* KV pool bytes (0: n_parallel × n_ctx positions)   */
    int32_t n_threads;              /* compute threads (0: all cores)                    */
    const char *const *api_keys;    /* accepted bearer keys (not copied), NULL: open     */
    int32_t n_api_keys;
    bool strict_model;              /* 404 for another model name                        */
    bool log_prompts;               /* the access log carries prompts                    */
    double drain_timeout_s;         /* on SIGTERM, wait this long for in-flight (30)     */
    double request_timeout_s;       /* per-request deadline (600); 0: none               */
    size_t max_body;                /* request body bytes (4 MiB); more: 413             */
    int32_t max_tokens_cap;         /* max_tokens above this: 400 (0: none)              */
    int32_t max_messages;           /* messages per chat request (1024)                  */
    int32_t max_connections;        /* open connections (256)                            */
} slm_server_params;

slm_server_params slm_server_default_params(void);

/* Runs the server in the calling thread, which must be the process's only
 * thread (it blocks SIGINT, SIGTERM and SIGPIPE so that every thread it
 * starts inherits the mask, and waits for the first two itself). Returns 0
 * after a clean drain, or a negative code with err filled (cannot bind,
 * cannot load the model, bad parameters). */
int slm_server_run(const slm_server_params *p, slm_err *err);

#endif
