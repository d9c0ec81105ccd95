/*
 * detect.c — which chat-template family a model's Jinja template belongs to,
 * and the family names.
 *
 * slm does not run Jinja. Like llama.cpp's llm_chat_detect_template
 * (src/llama-chat.cpp) it looks for substrings only one family writes, in
 * the same order, so that a template llama.cpp files under a family slm does
 * not render (Phi-4, SmolVLM, ChatGLM 4, EXAONE, AlphaMonarch, …) comes out
 * SLM_CHAT_UNKNOWN rather than as a near miss. A template string that is a
 * family name ("chatml", or llama.cpp's "mistral-v7", "llama2-sys", …) is
 * taken as that name, as llama.cpp does.
 *
 * Where slm parts from llama.cpp:
 *  - llama.cpp's many [INST] variants collapse to two families: templates
 *    with <<SYS>> (or the Llama 2 bos/strip forms) are SLM_CHAT_LLAMA2, the
 *    rest (Mistral v0.x, v1, v3, v3-tekken, v7) SLM_CHAT_MISTRAL.
 *  - Zephyr: llama.cpp only recognises templates that spell out
 *    "<|endoftext|>", and files the real zephyr-7b-beta / stablelm-zephyr
 *    templates (which write `eos_token`) under Falcon 3 or GLM-Edge. slm
 *    calls a template with "<|user|>" and an end-of-turn ("</s>",
 *    "<|endoftext|>" or eos_token) zephyr once Phi-3 is ruled out. Falcon 3
 *    templates have the same markers and land here too.
 */
#include "slm/slm.h"

#include <string.h>

static const struct { const char *name; slm_chat_family family; } NAMES[] = {
    { "llama2",  SLM_CHAT_LLAMA2  },
    { "llama3",  SLM_CHAT_LLAMA3  },
    { "chatml",  SLM_CHAT_CHATML  },
    { "phi3",    SLM_CHAT_PHI3    },
    { "mistral", SLM_CHAT_MISTRAL },
    { "gemma",   SLM_CHAT_GEMMA   },
    { "zephyr",  SLM_CHAT_ZEPHYR  },
};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

/* llama.cpp's names for the variants slm folds into one family. */
static const struct { const char *name; slm_chat_family family; } ALIASES[] = {
    { "llama2-sys",        SLM_CHAT_LLAMA2  },
    { "llama2-sys-bos",    SLM_CHAT_LLAMA2  },
    { "llama2-sys-strip",  SLM_CHAT_LLAMA2  },
    { "mistral-v1",        SLM_CHAT_MISTRAL },
    { "mistral-v3",        SLM_CHAT_MISTRAL },
    { "mistral-v3-tekken", SLM_CHAT_MISTRAL },
    { "mistral-v7",        SLM_CHAT_MISTRAL },
    { "mistral-v7-tekken", SLM_CHAT_MISTRAL },
};
#define N_ALIASES (sizeof ALIASES / sizeof ALIASES[0])

slm_chat_family slm_chat_family_from_name(const char *name) {
    if (!name) return SLM_CHAT_UNKNOWN;
    for (size_t i = 0; i < N_NAMES; i++)
        if (strcmp(name, NAMES[i].name) == 0) return NAMES[i].family;
    return SLM_CHAT_UNKNOWN;
}

/* The family's name as slm_chat_family_from_name reads it; "unknown" for
 * SLM_CHAT_UNKNOWN and values outside the enum. Static storage. */
const char *slm_chat_family_name(slm_chat_family f) {
    for (size_t i = 0; i < N_NAMES; i++)
        if (NAMES[i].family == f) return NAMES[i].name;
    return "unknown";
}

static int has(const char *tmpl, const char *needle) {
    return strstr(tmpl, needle) != NULL;
}

/* The [INST] families. Mistral's official templates are marked by
 * [SYSTEM_PROMPT] (v7), "' [INST] ' + system_message" (v1) or
 * [AVAILABLE_TOOLS] (v3); otherwise <<SYS>> or the Llama 2 forms that put
 * bos_token before each [INST] or strip contents mean Llama 2, and a bare
 * [INST] template is the older Mistral one. */
static slm_chat_family detect_inst(const char *tmpl) {
    if (has(tmpl, "[SYSTEM_PROMPT]") || has(tmpl, "' [INST] ' + system_message") ||
        has(tmpl, "[AVAILABLE_TOOLS]"))
        return SLM_CHAT_MISTRAL;
    if (has(tmpl, "<<SYS>>") || has(tmpl, "bos_token + '[INST]") || has(tmpl, "content.strip()"))
        return SLM_CHAT_LLAMA2;
    return SLM_CHAT_MISTRAL;
}

/* Recognises a Jinja chat template (or a family name); SLM_CHAT_UNKNOWN for
 * NULL, "" and templates of families slm does not render. */
slm_chat_family slm_chat_detect(const char *tmpl) {
    if (!tmpl || !*tmpl) return SLM_CHAT_UNKNOWN;
    slm_chat_family by_name = slm_chat_family_from_name(tmpl);
    if (by_name != SLM_CHAT_UNKNOWN) return by_name;
    for (size_t i = 0; i < N_ALIASES; i++)
        if (strcmp(tmpl, ALIASES[i].name) == 0) return ALIASES[i].family;

    if (has(tmpl, "<|im_start|>")) {
        /* Phi-4 (<|im_sep|>) and SmolVLM (<end_of_utterance>) reuse the
         * ChatML markers with another layout. */
        if (has(tmpl, "<|im_sep|>") || has(tmpl, "<end_of_utterance>")) return SLM_CHAT_UNKNOWN;
        return SLM_CHAT_CHATML;
    }
    if (strncmp(tmpl, "mistral", 7) == 0 || has(tmpl, "[INST]"))
        return detect_inst(tmpl);
    if (has(tmpl, "<|assistant|>") && has(tmpl, "<|end|>"))
        return SLM_CHAT_PHI3;
    if (has(tmpl, "[gMASK]")) return SLM_CHAT_UNKNOWN;              /* ChatGLM 3/4   */
    if (has(tmpl, "<|user|>")) {
        if (has(tmpl, "<|tool_declare|>")) return SLM_CHAT_UNKNOWN;  /* EXAONE MoE    */
        if (has(tmpl, "</s>") || has(tmpl, "<|endoftext|>") || has(tmpl, "eos_token"))
            return SLM_CHAT_ZEPHYR;
        return SLM_CHAT_UNKNOWN;                                     /* GLM-Edge      */
    }
    if (has(tmpl, "bos_token + message['role']")) return SLM_CHAT_UNKNOWN; /* Monarch */
    if (has(tmpl, "<start_of_turn>")) return SLM_CHAT_GEMMA;
    if (has(tmpl, "<|start_header_id|>") && has(tmpl, "<|end_header_id|>"))
        return SLM_CHAT_LLAMA3;
    return SLM_CHAT_UNKNOWN;
}
