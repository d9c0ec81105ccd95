/*
 * hf_spm.c — SentencePiece-style BPE in a Hugging Face tokenizer.json
 * (Llama 2, TinyLlama, Mistral, Phi-3, TinyStories): a BPE model whose text
 * is prepared the SentencePiece way — spaces replaced by U+2581 "▁" and a
 * "▁" put in front — with byte fallback to <0xXX> tokens. slm reads it as a
 * SentencePiece ("llama") vocabulary, so the same tokenizer runs it whether
 * it comes from this file or from the GGUF that `slm convert` writes.
 *
 * The file has no scores, only a merge list in rank order; SentencePiece
 * merges the adjacent pair whose joined token has the highest score. Giving
 * the token made by merge rank r the score -r (its first merge when several
 * make it) makes the two agree: the pair BPE would merge next — the lowest
 * rank among adjacent pairs — is the pair SentencePiece picks. They could
 * differ only where two adjacent pieces join into a token along a path that
 * is not in the merge list; HF's own Llama-2 files list every such pair
 * (its SentencePiece extractor writes all of them), and on TinyStories'
 * 1,967 merges the two agree on every line of a 700-line English text.
 * Tokens made by no merge (bytes, specials, single characters) score below
 * every merged token. HF's fuse_unk (runs of unknown characters become one
 * <unk>) is not reproduced: each unknown character gives its own <unk>, as
 * llama.cpp's SentencePiece tokenizer does.
 */
#include "tokenizer/hf.h"

#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

static const char SPACE_MARK[] = "\xe2\x96\x81";   /* U+2581 */

static const char *jstr(const cJSON *obj, const char *key) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* A Replace normalizer turning " " into "▁". */
static bool is_space_replace(const cJSON *n) {
    const char *type = jstr(n, "type");
    if (!type || strcmp(type, "Replace") != 0) return false;
    const char *pat = jstr(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String");
    const char *content = jstr(n, "content");
    return pat && content && strcmp(pat, " ") == 0 && strcmp(content, SPACE_MARK) == 0;
}

/* Walks a normalizer (or a Sequence of them). */
static void scan_normalizer(const cJSON *n, bool *replaces, bool *prepends) {
    const char *type = jstr(n, "type");
    if (!type) return;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) scan_normalizer(e, replaces, prepends);
    } else if (is_space_replace(n)) {
        *replaces = true;
    } else if (strcmp(type, "Prepend") == 0) {
        const char *p = jstr(n, "prepend");
        if (p && strcmp(p, SPACE_MARK) == 0) *prepends = true;
    }
}

/* Walks a pre-tokenizer (or a Sequence): Metaspace and ByteLevel steps. */
static void scan_pre(const cJSON *pt, bool *metaspace, bool *prepends, bool *byte_level) {
    const char *type = jstr(pt, "type");
    if (!type) return;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers"))
            scan_pre(e, metaspace, prepends, byte_level);
    } else if (strcmp(type, "ByteLevel") == 0) {
        *byte_level = true;
    } else if (strcmp(type, "Metaspace") == 0) {
        *metaspace = true;
        const char *scheme = jstr(pt, "prepend_scheme");        /* "always", "first", "never" */
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(pt, "add_prefix_space");
        if (scheme) *prepends = strcmp(scheme, "never") != 0;
        else *prepends = !cJSON_IsBool(aps) || cJSON_IsTrue(aps);
    }
}

bool tok_hf_spm_style(const cJSON *root, bool *add_space_prefix) {
    bool replaces = false, prepends = false, metaspace = false, byte_level = false;
    scan_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), &replaces, &prepends);
    scan_pre(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &metaspace, &prepends, &byte_level);
    *add_space_prefix = prepends;
    return !byte_level && (replaces || metaspace);
}

static bool is_byte_token(const char *t, size_t n) {
    static const char hex[] = "0123456789ABCDEFabcdef";
    return n == 6 && memcmp(t, "<0x", 3) == 0 && t[5] == '>' && t[3] && t[4] && strchr(hex, t[3]) &&
           strchr(hex, t[4]);
}

int tok_hf_spm_prepare(slm_vocab *v, const cJSON *model, const char *path, slm_err *err) {
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->type[id] == SLM_TOKTYPE_NORMAL && is_byte_token(tok_text(v, id), v->tok_len[id]))
            v->type[id] = SLM_TOKTYPE_BYTE;
    const char *unk = jstr(model, "unk_token");
    if (!unk) return 0;
    size_t n = strlen(unk);
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->tok_len[id] == n && memcmp(tok_text(v, id), unk, n) == 0) {
            v->unk = id;
            v->type[id] = SLM_TOKTYPE_UNKNOWN;
            return 0;
        }
    return slm_err_set(err, SLM_EFORMAT, "%s: model.unk_token '%.100s' is not in the vocabulary", path, unk);
}

int tok_hf_spm_scores(slm_vocab *v, const cJSON *merges, const char *path, slm_err *err) {
    int n_merges = cJSON_GetArraySize(merges);
    const float unmerged = -(float)n_merges - 1.0f;
    bool *scored = slm_calloc((size_t)v->n_tokens, sizeof *scored);
    char *joined = NULL;
    size_t cap = 0;
    int rc = 0;
    if (!scored) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int32_t id = 0; id < v->n_tokens; id++) v->score[id] = unmerged;
    int rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t alen, blen;
        if (!tok_hf_merge_parts(m, &a, &alen, &b, &blen)) {
            rc = slm_err_set(err, SLM_EFORMAT, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", path, rank);
            goto done;
        }
        if (alen + blen > cap) {
            cap = 2 * (alen + blen);
            slm_free(joined);
            if (!(joined = slm_malloc(cap))) { rc = slm_err_set(err, SLM_ENOMEM, "out of memory"); goto done; }
        }
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen);
        int32_t id = tok_vocab_find(v, joined, alen + blen);
        if (id < 0) {
            rc = slm_err_set(err, SLM_EFORMAT, "%s: model.merges[%d] ('%.*s' + '%.*s') makes a token that is not in the vocabulary",
                             path, rank, (int)(alen > 50 ? 50 : alen), a, (int)(blen > 50 ? 50 : blen), b);
            goto done;
        }
        if (!scored[id]) {
            scored[id] = true;
            v->score[id] = rank ? -(float)rank : 0.0f;
        }
        rank++;
    }
done:
    slm_free(joined);
    slm_free(scored);
    return rc;
}
