/*
 * render.c — turning a list of chat messages into the prompt text a family's
 * template would produce.
 *
 * Each family writes what llama.cpp's llm_chat_apply_template writes for it
 * (src/llama-chat.cpp), checked against llama.cpp's
 * tests/test-chat-template.cpp:
 *   llama2   llama.cpp's "llama2-sys-bos": "[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n
 *            {user} [/INST]{assistant}</s><s>[INST] {user} [/INST]"
 *   mistral  llama.cpp's plain "llama2" (Mistral-7B-Instruct v0.x): no
 *            <<SYS>>, the system text and "\n" open the first [INST], no <s>
 *            between turns
 *   llama3   "<|start_header_id|>{role}<|end_header_id|>\n\n{trimmed}<|eot_id|>"
 *   chatml   "<|im_start|>{role}\n{content}<|im_end|>\n"
 *   phi3     "<|{role}|>\n{content}<|end|>\n"
 *   gemma    "<start_of_turn>{user|model}\n{trimmed}<end_of_turn>\n", system
 *            text (trimmed) merged into the next user turn with "\n\n"
 *   zephyr   "<|{role}|>\n{content}{eos}\n"
 * add_assistant appends the assistant turn's opening; the [INST] families
 * end with "[/INST]" either way, as in llama.cpp.
 *
 * BOS: no family writes the BOS at the start — llama.cpp's renderer does not
 * either, Llama 3's "<|begin_of_text|>" included; the tokenizer adds it. So
 * the engine tokenizes the rendered text with add_bos = the vocabulary's
 * add_bos flag, unless the text already starts with the BOS text (a caller's
 * own template), in which case add_bos is false: one BOS, never two.
 * The BOS/EOS texts inside the history (llama2's "</s><s>", mistral's
 * "</s>", zephyr's end of turn) are the vocabulary's, passed as bos/eos;
 * NULL means "<s>" and "</s>", which is what llama.cpp hardcodes. The
 * tokenizer must run with parse_special so they become the special tokens.
 *
 * Roles are "system", "user" and "assistant"; anything else is SLM_EINVAL
 * naming the role. NULL content is empty text. The output grows by doubling
 * through slm_realloc; on any error nothing is returned and nothing leaks.
 */
#include "util/alloc.h"
#include "util/err.h"

#include <ctype.h>
#include <string.h>

typedef struct sbuf {
    char  *data;   /* NUL-terminated text, NULL until the first append */
    size_t len;    /* bytes used, NUL excluded                          */
    size_t cap;    /* bytes allocated                                   */
    int    oom;    /* an append failed: the buffer is no longer valid   */
} sbuf;

static void sb_add_n(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n > (size_t)-1 / 2 - b->len - 1) { b->oom = 1; return; }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap *= 2;
        char *p = slm_realloc(b->data, cap);
        if (!p) { b->oom = 1; return; }
        b->data = p;
        b->cap  = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static void sb_add(sbuf *b, const char *s) { sb_add_n(b, s, strlen(s)); }

/* Appends s without leading and trailing whitespace (C isspace, as
 * llama.cpp's trim()). */
static void sb_add_trimmed(sbuf *b, const char *s) {
    size_t start = 0, end = strlen(s);
    while (start < end && isspace((unsigned char)s[start])) start++;
    while (end > start && isspace((unsigned char)s[end - 1])) end--;
    sb_add_n(b, s + start, end - start);
}

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

static int parse_role(const char *role, enum role *out) {
    if (!role) return -1;
    if (strcmp(role, "system") == 0)    { *out = ROLE_SYSTEM;    return 0; }
    if (strcmp(role, "user") == 0)      { *out = ROLE_USER;      return 0; }
    if (strcmp(role, "assistant") == 0) { *out = ROLE_ASSISTANT; return 0; }
    return -1;
}

static const char *ROLE_NAME[] = { "system", "user", "assistant" };

static const char *content_of(const slm_chat_msg *m) { return m->content ? m->content : ""; }

/* llama2 (system_tags) and mistral share one loop: the conversation opens
 * inside an [INST]; an assistant reply closes the turn with eos and the next
 * message reopens one (with bos before it for llama2). */
static void render_inst(sbuf *b, const slm_chat_msg *msgs, const enum role *roles, int32_t n,
                        int system_tags, const char *bos, const char *eos) {
    int inside_turn = 1;
    sb_add(b, "[INST] ");
    for (int32_t i = 0; i < n; i++) {
        const char *c = content_of(&msgs[i]);
        if (!inside_turn) {
            inside_turn = 1;
            if (system_tags) sb_add(b, bos);
            sb_add(b, "[INST] ");
        }
        switch (roles[i]) {
        case ROLE_SYSTEM:
            if (system_tags) { sb_add(b, "<<SYS>>\n"); sb_add(b, c); sb_add(b, "\n<</SYS>>\n\n"); }
            else             { sb_add(b, c); sb_add(b, "\n"); }
            break;
        case ROLE_USER:
            sb_add(b, c); sb_add(b, " [/INST]");
            break;
        case ROLE_ASSISTANT:
            sb_add(b, c); sb_add(b, eos);
            inside_turn = 0;
            break;
        }
    }
}

static void render_llama3(sbuf *b, const slm_chat_msg *msgs, const enum role *roles, int32_t n,
                          bool add_assistant) {
    for (int32_t i = 0; i < n; i++) {
        sb_add(b, "<|start_header_id|>");
        sb_add(b, ROLE_NAME[roles[i]]);
        sb_add(b, "<|end_header_id|>\n\n");
        sb_add_trimmed(b, content_of(&msgs[i]));
        sb_add(b, "<|eot_id|>");
    }
    if (add_assistant) sb_add(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_chatml(sbuf *b, const slm_chat_msg *msgs, const enum role *roles, int32_t n,
                          bool add_assistant) {
    for (int32_t i = 0; i < n; i++) {
        sb_add(b, "<|im_start|>");
        sb_add(b, ROLE_NAME[roles[i]]);
        sb_add(b, "\n");
        sb_add(b, content_of(&msgs[i]));
        sb_add(b, "<|im_end|>\n");
    }
    if (add_assistant) sb_add(b, "<|im_start|>assistant\n");
}

/* phi3 and zephyr: "<|role|>\n" content end-of-turn. */
static void render_pipe_roles(sbuf *b, const slm_chat_msg *msgs, const enum role *roles,
                              int32_t n, bool add_assistant, const char *end_of_turn) {
    for (int32_t i = 0; i < n; i++) {
        sb_add(b, "<|");
        sb_add(b, ROLE_NAME[roles[i]]);
        sb_add(b, "|>\n");
        sb_add(b, content_of(&msgs[i]));
        sb_add(b, end_of_turn);
    }
    if (add_assistant) sb_add(b, "<|assistant|>\n");
}

/* Gemma has no system role: system texts (trimmed, concatenated) wait and
 * open the next user turn, followed by a blank line. */
static void render_gemma(sbuf *b, const slm_chat_msg *msgs, const enum role *roles, int32_t n,
                         bool add_assistant) {
    sbuf sys = { 0 };
    for (int32_t i = 0; i < n; i++) {
        if (roles[i] == ROLE_SYSTEM) {
            sb_add_trimmed(&sys, content_of(&msgs[i]));
            continue;
        }
        int model = roles[i] == ROLE_ASSISTANT;
        sb_add(b, model ? "<start_of_turn>model\n" : "<start_of_turn>user\n");
        if (!model && sys.len > 0) {
            sb_add_n(b, sys.data, sys.len);
            sb_add(b, "\n\n");
            sys.len = 0;
        }
        sb_add_trimmed(b, content_of(&msgs[i]));
        sb_add(b, "<end_of_turn>\n");
    }
    if (sys.oom) b->oom = 1;
    slm_free(sys.data);
    if (add_assistant) sb_add(b, "<start_of_turn>model\n");
}

/* Renders msgs in family f into a new string (*out, freed by the caller
 * with slm_free). bos/eos: the vocabulary's BOS/EOS text, NULL for "<s>" /
 * "</s>". Errors: SLM_EINVAL for an unknown family, a bad role (named in
 * err) or bad arguments; SLM_ENOMEM. *out is NULL on error. */
int slm_chat_render(slm_chat_family f, const slm_chat_msg *msgs, int32_t n_msgs,
                    bool add_assistant, const char *bos, const char *eos,
                    char **out, slm_err *err) {
    if (!out) return slm_err_set(err, SLM_EINVAL, "chat render: no output pointer");
    *out = NULL;
    if (n_msgs < 0 || (n_msgs > 0 && !msgs))
        return slm_err_set(err, SLM_EINVAL, "chat render: bad message list (n_msgs %d)", (int)n_msgs);
    if (f <= SLM_CHAT_UNKNOWN || f > SLM_CHAT_ZEPHYR)
        return slm_err_set(err, SLM_EINVAL, "chat render: unknown template family %d", (int)f);
    if (!bos) bos = "<s>";
    if (!eos) eos = "</s>";

    enum role *roles = NULL;
    if (n_msgs > 0) {
        roles = slm_malloc((size_t)n_msgs * sizeof *roles);
        if (!roles) return slm_err_set(err, SLM_ENOMEM, "chat render: out of memory");
    }
    for (int32_t i = 0; i < n_msgs; i++) {
        if (parse_role(msgs[i].role, &roles[i]) != 0) {
            int rc = slm_err_set(err, SLM_EINVAL,
                                 "chat render: message %d has role '%.64s'; %s takes system, "
                                 "user and assistant", (int)i,
                                 msgs[i].role ? msgs[i].role : "(null)", slm_chat_family_name(f));
            slm_free(roles);
            return rc;
        }
    }

    sbuf b = { 0 };
    sb_add(&b, "");                  /* an empty conversation is "" not NULL */
    switch (f) {
    case SLM_CHAT_LLAMA2:  render_inst(&b, msgs, roles, n_msgs, 1, bos, eos);           break;
    case SLM_CHAT_MISTRAL: render_inst(&b, msgs, roles, n_msgs, 0, bos, eos);           break;
    case SLM_CHAT_LLAMA3:  render_llama3(&b, msgs, roles, n_msgs, add_assistant);       break;
    case SLM_CHAT_CHATML:  render_chatml(&b, msgs, roles, n_msgs, add_assistant);       break;
    case SLM_CHAT_PHI3:    render_pipe_roles(&b, msgs, roles, n_msgs, add_assistant, "<|end|>\n"); break;
    case SLM_CHAT_GEMMA:   render_gemma(&b, msgs, roles, n_msgs, add_assistant);        break;
    case SLM_CHAT_ZEPHYR: {
        sbuf end = { 0 };
        sb_add(&end, eos);
        sb_add(&end, "\n");
        if (end.oom) b.oom = 1;
        else render_pipe_roles(&b, msgs, roles, n_msgs, add_assistant, end.data);
        slm_free(end.data);
        break;
    }
    case SLM_CHAT_UNKNOWN: break;    /* rejected above */
    }
    slm_free(roles);
    if (b.oom) {
        slm_free(b.data);
        return slm_err_set(err, SLM_ENOMEM, "chat render: out of memory");
    }
    *out = b.data;
    return 0;
}
