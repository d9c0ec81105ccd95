/*
 * adapter_openai.c — the OpenAI-compatible adapter (slm serve, OpenAI,
 * and every provider that speaks its chat/completions API): the request is
 * forwarded as it is, with the upstream's key as a bearer token, and the
 * answer comes back unchanged. Also the adapter table and usage reading.
 */
#include <stdio.h>
#include <string.h>

#include "gateway/adapter.h"

void slm_gw_up_request_clear(slm_gw_up_request *r) {
    if (r->body) cJSON_free(r->body);
    r->body = NULL;
}

static void add_header(slm_gw_up_request *r, const char *fmt, const char *v) {
    if (r->n_headers == SLM_GW_MAX_HEADERS) return;
    snprintf(r->hdr_buf[r->n_headers], sizeof r->hdr_buf[0], fmt, v);
    r->headers[r->n_headers] = r->hdr_buf[r->n_headers];
    r->n_headers++;
}

static int oa_build(const slm_gw_upstream_cfg *u, const char *endpoint, const cJSON *req, slm_gw_up_request *out) {
    size_t n = strlen(u->url);
    bool has_v1 = n >= 3 && !strcmp(u->url + n - 3, "/v1");
    if (snprintf(out->url, sizeof out->url, "%s%s%s", u->url, has_v1 ? "" : "/v1", endpoint) >= (int)sizeof out->url)
        return SLM_ERANGE;
    out->body = cJSON_PrintUnformatted(req);
    if (!out->body) return SLM_ENOMEM;
    out->len = strlen(out->body);
    add_header(out, "Content-Type: %s", "application/json");
    if (u->api_key) add_header(out, "Authorization: Bearer %s", u->api_key);
    return 0;
}

static int oa_translate(const slm_gw_upstream_cfg *u, const char *body, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    return 0;
}

static const slm_gw_adapter OPENAI = { "openai", oa_build, oa_translate, true, NULL };
extern const slm_gw_adapter slm_gw_adapter_anthropic;

const slm_gw_adapter *slm_gw_adapter_find(const char *name) {
    if (!strcmp(name, "openai")) return &OPENAI;
    if (!strcmp(name, "anthropic")) return &slm_gw_adapter_anthropic;
    return NULL;
}

void slm_gw_usage(const char *body, size_t len, long *in, long *out) {
    *in = *out = -1;
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(a) && a->valuedouble >= 0) *in = (long)a->valuedouble;
    if (cJSON_IsNumber(b) && b->valuedouble >= 0) *out = (long)b->valuedouble;
    cJSON_Delete(root);
}
