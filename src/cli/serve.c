/*
 * serve.c — `slm serve`: the OpenAI-compatible HTTP server. Parses the
 * options, reads the API keys, and hands over to slm_server_run (see
 * src/serve/server.h), which returns when a signal has drained it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "serve/server.h"
#include "util/alloc.h"

#define MAX_KEYS 256

/* "512M", "2G", "1048576": bytes (K, M, G are powers of 1024). */
static bool parse_size(const char *s, size_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end;
    double v = strtod(s, &end);
    double mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1024.0, end++;
    else if (*end == 'm' || *end == 'M') mul = 1024.0 * 1024, end++;
    else if (*end == 'g' || *end == 'G') mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'i' || *end == 'B') end += *end == 'i' ? 1 : 0;
    if (*end == 'B') end++;
    if (*end || !(v >= 0) || v * mul > 1e18) return false;
    *out = (size_t)(v * mul);
    return true;
}

static bool parse_seconds(const char *s, double *out) {
    float f;
    if (!cli_parse_f32(s, 0, 1e7f, &f)) return false;
    *out = f;
    return true;
}

/* One key per line; blank lines and lines starting with '#' are skipped.
 * The keys point into buf, which the caller frees after the server ran. */
static int read_keys(const char *path, char **buf, const char **keys, int32_t *n) {
    if (!(*buf = cli_read_file(path, NULL))) return 1;
    for (char *line = strtok(*buf, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t') line++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) line[--len] = 0;
        if (!len || line[0] == '#') continue;
        if (*n >= MAX_KEYS) return cli_fail("%s: more than %d API keys", path, MAX_KEYS);
        keys[(*n)++] = line;
    }
    if (*n == 0) return cli_fail("%s: no API keys in the file", path);
    return 0;
}

#define NEED_VALUE()                                                                 \
    do {                                                                             \
        if (i + 1 >= argc) return cli_usage("serve", "%s needs a value", a);         \
        v = argv[++i];                                                               \
    } while (0)

int cmd_serve(int argc, char **argv) {
    slm_server_params p = slm_server_default_params();
    const char *keys[MAX_KEYS], *keys_file = NULL;
    int32_t n_keys = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED_VALUE(); p.model_path = v; }
        else if (!strcmp(a, "--host")) { NEED_VALUE(); p.host = v; }
        else if (!strcmp(a, "--alias")) { NEED_VALUE(); p.alias = v; }
        else if (!strcmp(a, "--chat-template")) { NEED_VALUE(); p.chat_template = v; }
        else if (!strcmp(a, "--strict-model")) p.strict_model = true;
        else if (!strcmp(a, "--log-prompts")) p.log_prompts = true;
        else if (!strcmp(a, "--api-key")) {
            NEED_VALUE();
            if (!*v) return cli_usage("serve", "--api-key wants a non-empty key");
            if (n_keys >= MAX_KEYS) return cli_usage("serve", "at most %d --api-key", MAX_KEYS);
            keys[n_keys++] = v;
        } else if (!strcmp(a, "--api-keys-file")) { NEED_VALUE(); keys_file = v; }
        else if (!strcmp(a, "--port")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 0, 65535, &p.port)) return cli_usage("serve", "--port wants 0..65535");
        } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 1, 1024, &p.n_parallel)) return cli_usage("serve", "--parallel wants 1..1024");
        } else if (!strcmp(a, "--max-queue")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 0, 1 << 20, &p.max_queue)) return cli_usage("serve", "--max-queue wants a count >= 0");
        } else if (!strcmp(a, "--kv-mem")) {
            NEED_VALUE();
            if (!parse_size(v, &p.kv_mem)) return cli_usage("serve", "--kv-mem wants a size (512M, 2G, bytes)");
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 1, 1 << 24, &p.n_ctx)) return cli_usage("serve", "--ctx wants a positive count");
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 1, 512, &p.n_threads)) return cli_usage("serve", "-t wants 1..512");
        } else if (!strcmp(a, "--drain-timeout")) {
            NEED_VALUE();
            if (!parse_seconds(v, &p.drain_timeout_s)) return cli_usage("serve", "--drain-timeout wants seconds >= 0");
        } else if (!strcmp(a, "--request-timeout")) {
            NEED_VALUE();
            if (!parse_seconds(v, &p.request_timeout_s)) return cli_usage("serve", "--request-timeout wants seconds >= 0 (0: none)");
        } else if (!strcmp(a, "--max-body")) {
            NEED_VALUE();
            if (!parse_size(v, &p.max_body) || p.max_body < 1) return cli_usage("serve", "--max-body wants a size in bytes (or 4M)");
        } else if (!strcmp(a, "--max-tokens-cap")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 0, 1 << 30, &p.max_tokens_cap)) return cli_usage("serve", "--max-tokens-cap wants a count (0: none)");
        } else if (!strcmp(a, "--max-messages")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 0, 1 << 20, &p.max_messages)) return cli_usage("serve", "--max-messages wants a count (0: none)");
        } else if (!strcmp(a, "--max-connections")) {
            NEED_VALUE();
            if (!cli_parse_i32(v, 1, 1 << 16, &p.max_connections)) return cli_usage("serve", "--max-connections wants 1..65536");
        } else {
            return cli_usage("serve", "unknown option '%s'", a);
        }
    }
    if (!p.model_path) return cli_usage("serve", "-m MODEL is required");
    if (keys_file && n_keys) return cli_usage("serve", "give either --api-key or --api-keys-file, not both");
    char *keys_buf = NULL;
    if (keys_file && read_keys(keys_file, &keys_buf, keys, &n_keys)) {
        slm_free(keys_buf);
        return 1;
    }
    p.api_keys = keys;
    p.n_api_keys = n_keys;
    slm_err err = { 0 };
    int rc = slm_server_run(&p, &err);
    slm_free(keys_buf);
    if (rc) return cli_fail("%s", err.msg[0] ? err.msg : slm_strerror(rc));
    return 0;
}
