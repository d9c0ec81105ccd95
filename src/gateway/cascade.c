/*
 * cascade.c — judging a local answer before it goes out, and small readers
 * of OpenAI-format bodies.
 *
 * A cascade route sends a request to its first tier with token logprobs
 * asked for, then checks the answer: the mean token log-probability (chat:
 * choices[0].logprobs.content[].logprob; completions:
 * choices[0].logprobs.token_logprobs[]) must not be under the route's
 * min_mean_logprob (an answer without logprobs fails this check: it cannot
 * be vouched for); a request that asked for JSON (response_format
 * json_object or json_schema) must get a JSON document; and the text must
 * not match any of the route's refusal patterns (PCRE2, caseless). The
 * first failed check names the reason.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <string.h>

#include "gateway/proxy.h"
#include "util/alloc.h"

static const cJSON *first_choice(const cJSON *root) {
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
}

static const char *choice_text(const cJSON *ch) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, "message"), "content");
    if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(ch, "text");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

char *slm_gw_answer_text(const char *body, size_t len) {
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const char *t = choice_text(first_choice(root));
    char *out = t ? slm_strdup(t) : NULL;
    cJSON_Delete(root);
    return out;
}

static double mean_logprob(const cJSON *ch) {
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(ch, "logprobs"), *e;
    double sum = 0;
    long n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(lp, "content")) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "logprob");
        if (cJSON_IsNumber(v)) { sum += v->valuedouble; n++; }
    }
    if (!n)
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(lp, "token_logprobs"))
            if (cJSON_IsNumber(e)) { sum += e->valuedouble; n++; }
    return n ? sum / (double)n : NAN;
}

static bool wants_json(const cJSON *req) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "response_format"), "type");
    return cJSON_IsString(t) && (!strcmp(t->valuestring, "json_object") || !strcmp(t->valuestring, "json_schema"));
}

static bool matches(const char *pattern, const char *text) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_CASELESS, &ec, &off, NULL);
    if (!re) return false;   /* validated at load: cannot happen */
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

const char *slm_gw_cascade_check(const slm_gw_route_cfg *r, const cJSON *req, const char *body, size_t len,
                                 double *mean_lp) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *ch = first_choice(root);
    const char *text = choice_text(ch);
    const char *why = NULL;
    *mean_lp = ch ? mean_logprob(ch) : NAN;
    if (!text) why = "no_answer";
    else if (!isnan(r->cascade_min_logprob) && (isnan(*mean_lp) || *mean_lp < r->cascade_min_logprob))
        why = "low_logprob";
    else if (r->cascade_json && wants_json(req)) {
        cJSON *doc = cJSON_Parse(text);
        if (!doc) why = "invalid_json";
        cJSON_Delete(doc);
    }
    for (int k = 0; !why && text && k < r->n_cascade_refusals; k++)
        if (matches(r->cascade_refusals[k], text)) why = "refusal";
    cJSON_Delete(root);
    return why;
}

int slm_gw_strip_logprobs(char **body, size_t *len) {
    cJSON *root = cJSON_ParseWithLength(*body, *len), *ch;
    if (!root) return 0;
    bool changed = false;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(root, "choices"))
        if (cJSON_GetObjectItemCaseSensitive(ch, "logprobs")) {
            cJSON_ReplaceItemInObjectCaseSensitive(ch, "logprobs", cJSON_CreateNull());
            changed = true;
        }
    int rc = 0;
    if (changed) {
        char *t = cJSON_PrintUnformatted(root);
        char *nb = t ? slm_strdup(t) : NULL;
        if (t) cJSON_free(t);
        if (nb) {
            slm_free(*body);
            *body = nb;
            *len = strlen(nb);
        } else {
            rc = SLM_ENOMEM;
        }
    }
    cJSON_Delete(root);
    return rc;
}
