/* prompt.c — see prompt.h. */
#include "chat/prompt.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

int slm_prompt_tokenize(const slm_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
                        int32_t **ids, int32_t *n_ids, slm_err *err) {
    *ids = NULL;
    *n_ids = 0;
    /* one token per byte plus BOS is always enough; ask again if not */
    int32_t cap = len + 16 > (size_t)INT32_MAX / 8 ? INT32_MAX / 8 : (int32_t)len + 16;
    int32_t *out = slm_malloc((size_t)cap * sizeof *out), n = 0;
    if (!out) return slm_err_set(err, SLM_ENOMEM, "out of memory tokenizing %zu bytes", len);
    int rc = slm_tokenize(v, text, len, add_bos, parse_special, out, cap, &n, err);
    if (rc == SLM_ERANGE && n > cap) {
        slm_free(out);
        cap = n;
        if (!(out = slm_malloc((size_t)cap * sizeof *out))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
        rc = slm_tokenize(v, text, len, add_bos, parse_special, out, cap, &n, err);
    }
    if (rc) {
        slm_free(out);
        return rc;
    }
    *ids = out;
    *n_ids = n;
    return 0;
}

static void token_text(const slm_vocab *v, int32_t id, char *buf, size_t cap) {
    size_t len = 0;
    const char *t = id >= 0 ? slm_vocab_token_text(v, id, &len) : NULL;
    if (!t || len >= cap) len = 0;
    if (len) memcpy(buf, t, len);
    buf[len] = 0;
}

int slm_prompt_chat(const slm_model *m, slm_chat_family fam, const slm_chat_msg *msgs, int32_t n,
                    int32_t **ids, int32_t *n_ids, char **text, slm_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (text) *text = NULL;
    const slm_vocab *v = slm_model_vocab(m);
    char bos[128], eos[128];
    token_text(v, slm_vocab_bos(v), bos, sizeof bos);
    token_text(v, slm_vocab_eos(v), eos, sizeof eos);
    char *rendered = NULL;
    int rc = slm_chat_render(fam, msgs, n, true, bos, eos, &rendered, err);
    if (rc) return rc;
    bool add_bos = slm_vocab_add_bos(v) && !(bos[0] && !strncmp(rendered, bos, strlen(bos)));
    rc = slm_prompt_tokenize(v, rendered, strlen(rendered), add_bos, true, ids, n_ids, err);
    if (rc == 0 && text) *text = rendered;
    else slm_free(rendered);
    return rc;
}
