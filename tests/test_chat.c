/*
 * test_chat.c — chat templates. Rendering is checked against the exact
 * strings llama.cpp produces: the six-message conversation and expected
 * outputs of llama.cpp's tests/test-chat-template.cpp for each family, and a
 * table of other conversations (no system, several and late system
 * messages, assistant first, empty) whose expected strings were produced by
 * llama.cpp's own llm_chat_apply_template (src/llama-chat.cpp, built
 * outside this project). Detection runs on real template strings; errors,
 * bos/eos texts, NULL content, growth and out-of-memory are covered too.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm/slm.h"
#include "util/alloc.h"

#define N_OF(a) ((int32_t)(sizeof(a) / sizeof((a)[0])))

/* llama.cpp's test conversation. */
static const slm_chat_msg CONV[] = {
    { "system",    "You are a helpful assistant" },
    { "user",      "Hello" },
    { "assistant", "Hi there" },
    { "user",      "Who are you" },
    { "assistant", "   I am an assistant   " },
    { "user",      "Another question" },
};

/* Renders and compares; eos NULL means the default except for zephyr, whose
 * llama.cpp output spells "<|endoftext|>". */
static void expect_render(slm_chat_family f, const slm_chat_msg *msgs, int32_t n, bool add,
                          const char *bos, const char *eos, const char *want, const char *what) {
    char *out = NULL;
    slm_err err = { 0 };
    int rc = slm_chat_render(f, msgs, n, add, bos, eos, &out, &err);
    cr_assert_eq(rc, 0, "%s (%s): render failed %d: %s", what, slm_chat_family_name(f), rc, err.msg);
    cr_assert_not_null(out);
    cr_expect_str_eq(out, want, "%s (%s, add_assistant=%d):\n got: [%s]\nwant: [%s]", what,
                     slm_chat_family_name(f), (int)add, out, want);
    slm_free(out);
}

/* ---- llama.cpp's conversation, llama.cpp's expected strings ---------------- */

Test(chat, render_chatml) {
    expect_render(SLM_CHAT_CHATML, CONV, N_OF(CONV), true, NULL, NULL,
        "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n",
        "OpenHermes-2.5");
}

Test(chat, render_llama2) {
    expect_render(SLM_CHAT_LLAMA2, CONV, N_OF(CONV), true, "<s>", "</s>",
        "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]",
        "FusionNet (llama2-sys-bos)");
}

Test(chat, render_mistral) {
    expect_render(SLM_CHAT_MISTRAL, CONV, N_OF(CONV), true, "<s>", "</s>",
        "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]",
        "Mistral-7B-Instruct-v0.2");
}

Test(chat, render_llama3) {
    expect_render(SLM_CHAT_LLAMA3, CONV, N_OF(CONV), true, "<|begin_of_text|>", "<|eot_id|>",
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "Llama-3");
}

Test(chat, render_phi3) {
    expect_render(SLM_CHAT_PHI3, CONV, N_OF(CONV), true, NULL, NULL,
        "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n",
        "Phi-3");
}

Test(chat, render_gemma) {
    expect_render(SLM_CHAT_GEMMA, CONV, N_OF(CONV), true, NULL, NULL,
        "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n",
        "gemma-7b-it");
}

/* llama.cpp has no zephyr case in its test; this is its renderer's output
 * (it hardcodes "<|endoftext|>", slm writes the eos text it is given). */
Test(chat, render_zephyr) {
    expect_render(SLM_CHAT_ZEPHYR, CONV, N_OF(CONV), true, NULL, "<|endoftext|>",
        "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n<|assistant|>\n",
        "stablelm-zephyr");
    expect_render(SLM_CHAT_ZEPHYR, CONV, 2, true, NULL, NULL,
        "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\n",
        "zephyr-7b-beta (eos </s>)");
}

/* ---- more conversations: expected strings from llama.cpp's renderer -------- */

static const slm_chat_msg C_SHORT[] = {
    { "system", "You are a helpful assistant" }, { "user", "Hello" },
    { "assistant", "Hi there" }, { "user", "Who are you" },
};
static const slm_chat_msg C_NOSYS[] = {
    { "user", "Hello" }, { "assistant", "Hi there" }, { "user", "Who are you" },
};
static const slm_chat_msg C_ODD[] = {
    { "system", "  Be brief. " }, { "system", "Be kind.\n" }, { "user", " Hi\t" },
    { "assistant", "Hello!" }, { "system", "Late" }, { "user", "Bye" },
};
static const slm_chat_msg C_ASST1[] = { { "assistant", "Welcome" }, { "user", "Thanks" } };

static const struct { slm_chat_family f; const char *conv; bool add; const char *want; } TABLE[] = {
    { SLM_CHAT_LLAMA2, "short", false,
      "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]" },
    { SLM_CHAT_LLAMA2, "short", true,
      "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]" },
    { SLM_CHAT_MISTRAL, "short", false,
      "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]" },
    { SLM_CHAT_MISTRAL, "short", true,
      "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]" },
    { SLM_CHAT_LLAMA3, "short", false,
      "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>" },
    { SLM_CHAT_LLAMA3, "short", true,
      "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
    { SLM_CHAT_CHATML, "short", false,
      "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n" },
    { SLM_CHAT_CHATML, "short", true,
      "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n" },
    { SLM_CHAT_PHI3, "short", false,
      "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n" },
    { SLM_CHAT_PHI3, "short", true,
      "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n" },
    { SLM_CHAT_GEMMA, "short", false,
      "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n" },
    { SLM_CHAT_GEMMA, "short", true,
      "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\n" },
    { SLM_CHAT_ZEPHYR, "short", false,
      "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n" },
    { SLM_CHAT_ZEPHYR, "short", true,
      "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n<|assistant|>\n" },
    { SLM_CHAT_LLAMA2, "nosys", false,
      "[INST] Hello [/INST]Hi there</s><s>[INST] Who are you [/INST]" },
    { SLM_CHAT_LLAMA2, "nosys", true,
      "[INST] Hello [/INST]Hi there</s><s>[INST] Who are you [/INST]" },
    { SLM_CHAT_MISTRAL, "nosys", false,
      "[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]" },
    { SLM_CHAT_MISTRAL, "nosys", true,
      "[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]" },
    { SLM_CHAT_LLAMA3, "nosys", false,
      "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>" },
    { SLM_CHAT_LLAMA3, "nosys", true,
      "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
    { SLM_CHAT_CHATML, "nosys", false,
      "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n" },
    { SLM_CHAT_CHATML, "nosys", true,
      "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n" },
    { SLM_CHAT_PHI3, "nosys", false,
      "<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n" },
    { SLM_CHAT_PHI3, "nosys", true,
      "<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n" },
    { SLM_CHAT_GEMMA, "nosys", false,
      "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n" },
    { SLM_CHAT_GEMMA, "nosys", true,
      "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\n" },
    { SLM_CHAT_ZEPHYR, "nosys", false,
      "<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n" },
    { SLM_CHAT_ZEPHYR, "nosys", true,
      "<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n<|assistant|>\n" },
    { SLM_CHAT_LLAMA2, "odd", false,
      "[INST] <<SYS>>\n  Be brief. \n<</SYS>>\n\n<<SYS>>\nBe kind.\n\n<</SYS>>\n\n Hi\t [/INST]Hello!</s><s>[INST] <<SYS>>\nLate\n<</SYS>>\n\nBye [/INST]" },
    { SLM_CHAT_LLAMA2, "odd", true,
      "[INST] <<SYS>>\n  Be brief. \n<</SYS>>\n\n<<SYS>>\nBe kind.\n\n<</SYS>>\n\n Hi\t [/INST]Hello!</s><s>[INST] <<SYS>>\nLate\n<</SYS>>\n\nBye [/INST]" },
    { SLM_CHAT_MISTRAL, "odd", false,
      "[INST]   Be brief. \nBe kind.\n\n Hi\t [/INST]Hello!</s>[INST] Late\nBye [/INST]" },
    { SLM_CHAT_MISTRAL, "odd", true,
      "[INST]   Be brief. \nBe kind.\n\n Hi\t [/INST]Hello!</s>[INST] Late\nBye [/INST]" },
    { SLM_CHAT_LLAMA3, "odd", false,
      "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nLate<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>" },
    { SLM_CHAT_LLAMA3, "odd", true,
      "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nLate<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
    { SLM_CHAT_CHATML, "odd", false,
      "<|im_start|>system\n  Be brief. <|im_end|>\n<|im_start|>system\nBe kind.\n<|im_end|>\n<|im_start|>user\n Hi\t<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>system\nLate<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n" },
    { SLM_CHAT_CHATML, "odd", true,
      "<|im_start|>system\n  Be brief. <|im_end|>\n<|im_start|>system\nBe kind.\n<|im_end|>\n<|im_start|>user\n Hi\t<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>system\nLate<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n" },
    { SLM_CHAT_PHI3, "odd", false,
      "<|system|>\n  Be brief. <|end|>\n<|system|>\nBe kind.\n<|end|>\n<|user|>\n Hi\t<|end|>\n<|assistant|>\nHello!<|end|>\n<|system|>\nLate<|end|>\n<|user|>\nBye<|end|>\n" },
    { SLM_CHAT_PHI3, "odd", true,
      "<|system|>\n  Be brief. <|end|>\n<|system|>\nBe kind.\n<|end|>\n<|user|>\n Hi\t<|end|>\n<|assistant|>\nHello!<|end|>\n<|system|>\nLate<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n" },
    { SLM_CHAT_GEMMA, "odd", false,
      "<start_of_turn>user\nBe brief.Be kind.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nLate\n\nBye<end_of_turn>\n" },
    { SLM_CHAT_GEMMA, "odd", true,
      "<start_of_turn>user\nBe brief.Be kind.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nLate\n\nBye<end_of_turn>\n<start_of_turn>model\n" },
    { SLM_CHAT_ZEPHYR, "odd", false,
      "<|system|>\n  Be brief. <|endoftext|>\n<|system|>\nBe kind.\n<|endoftext|>\n<|user|>\n Hi\t<|endoftext|>\n<|assistant|>\nHello!<|endoftext|>\n<|system|>\nLate<|endoftext|>\n<|user|>\nBye<|endoftext|>\n" },
    { SLM_CHAT_ZEPHYR, "odd", true,
      "<|system|>\n  Be brief. <|endoftext|>\n<|system|>\nBe kind.\n<|endoftext|>\n<|user|>\n Hi\t<|endoftext|>\n<|assistant|>\nHello!<|endoftext|>\n<|system|>\nLate<|endoftext|>\n<|user|>\nBye<|endoftext|>\n<|assistant|>\n" },
    { SLM_CHAT_LLAMA2, "asst1", false,
      "[INST] Welcome</s><s>[INST] Thanks [/INST]" },
    { SLM_CHAT_LLAMA2, "asst1", true,
      "[INST] Welcome</s><s>[INST] Thanks [/INST]" },
    { SLM_CHAT_MISTRAL, "asst1", false,
      "[INST] Welcome</s>[INST] Thanks [/INST]" },
    { SLM_CHAT_MISTRAL, "asst1", true,
      "[INST] Welcome</s>[INST] Thanks [/INST]" },
    { SLM_CHAT_LLAMA3, "asst1", false,
      "<|start_header_id|>assistant<|end_header_id|>\n\nWelcome<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nThanks<|eot_id|>" },
    { SLM_CHAT_LLAMA3, "asst1", true,
      "<|start_header_id|>assistant<|end_header_id|>\n\nWelcome<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nThanks<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
    { SLM_CHAT_CHATML, "asst1", false,
      "<|im_start|>assistant\nWelcome<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n" },
    { SLM_CHAT_CHATML, "asst1", true,
      "<|im_start|>assistant\nWelcome<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n" },
    { SLM_CHAT_PHI3, "asst1", false,
      "<|assistant|>\nWelcome<|end|>\n<|user|>\nThanks<|end|>\n" },
    { SLM_CHAT_PHI3, "asst1", true,
      "<|assistant|>\nWelcome<|end|>\n<|user|>\nThanks<|end|>\n<|assistant|>\n" },
    { SLM_CHAT_GEMMA, "asst1", false,
      "<start_of_turn>model\nWelcome<end_of_turn>\n<start_of_turn>user\nThanks<end_of_turn>\n" },
    { SLM_CHAT_GEMMA, "asst1", true,
      "<start_of_turn>model\nWelcome<end_of_turn>\n<start_of_turn>user\nThanks<end_of_turn>\n<start_of_turn>model\n" },
    { SLM_CHAT_ZEPHYR, "asst1", false,
      "<|assistant|>\nWelcome<|endoftext|>\n<|user|>\nThanks<|endoftext|>\n" },
    { SLM_CHAT_ZEPHYR, "asst1", true,
      "<|assistant|>\nWelcome<|endoftext|>\n<|user|>\nThanks<|endoftext|>\n<|assistant|>\n" },
    { SLM_CHAT_LLAMA2, "empty", false,
      "[INST] " },
    { SLM_CHAT_LLAMA2, "empty", true,
      "[INST] " },
    { SLM_CHAT_MISTRAL, "empty", false,
      "[INST] " },
    { SLM_CHAT_MISTRAL, "empty", true,
      "[INST] " },
    { SLM_CHAT_LLAMA3, "empty", false,
      "" },
    { SLM_CHAT_LLAMA3, "empty", true,
      "<|start_header_id|>assistant<|end_header_id|>\n\n" },
    { SLM_CHAT_CHATML, "empty", false,
      "" },
    { SLM_CHAT_CHATML, "empty", true,
      "<|im_start|>assistant\n" },
    { SLM_CHAT_PHI3, "empty", false,
      "" },
    { SLM_CHAT_PHI3, "empty", true,
      "<|assistant|>\n" },
    { SLM_CHAT_GEMMA, "empty", false,
      "" },
    { SLM_CHAT_GEMMA, "empty", true,
      "<start_of_turn>model\n" },
    { SLM_CHAT_ZEPHYR, "empty", false,
      "" },
    { SLM_CHAT_ZEPHYR, "empty", true,
      "<|assistant|>\n" },
};

static void conv_by_name(const char *name, const slm_chat_msg **msgs, int32_t *n) {
    if      (!strcmp(name, "short")) { *msgs = C_SHORT; *n = N_OF(C_SHORT); }
    else if (!strcmp(name, "nosys")) { *msgs = C_NOSYS; *n = N_OF(C_NOSYS); }
    else if (!strcmp(name, "odd"))   { *msgs = C_ODD;   *n = N_OF(C_ODD);   }
    else if (!strcmp(name, "asst1")) { *msgs = C_ASST1; *n = N_OF(C_ASST1); }
    else                             { *msgs = NULL;    *n = 0;             }
}

Test(chat, render_table_matches_llama_cpp) {
    for (int32_t i = 0; i < N_OF(TABLE); i++) {
        const slm_chat_msg *msgs;
        int32_t n;
        conv_by_name(TABLE[i].conv, &msgs, &n);
        const char *eos = TABLE[i].f == SLM_CHAT_ZEPHYR ? "<|endoftext|>" : NULL;
        expect_render(TABLE[i].f, msgs, n, TABLE[i].add, NULL, eos, TABLE[i].want, TABLE[i].conv);
    }
}

/* ---- rendering details ----------------------------------------------------- */

Test(chat, bos_eos_texts_are_the_callers) {
    expect_render(SLM_CHAT_LLAMA2, C_SHORT, N_OF(C_SHORT), true, "<BOS>", "<EOS>",
        "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there<EOS><BOS>[INST] Who are you [/INST]",
        "llama2 custom bos/eos");
    expect_render(SLM_CHAT_MISTRAL, C_SHORT, N_OF(C_SHORT), true, "<BOS>", "<EOS>",
        "[INST] You are a helpful assistant\nHello [/INST]Hi there<EOS>[INST] Who are you [/INST]",
        "mistral custom eos");
    expect_render(SLM_CHAT_ZEPHYR, C_NOSYS, 1, false, NULL, "",
        "<|user|>\nHello\n", "zephyr empty eos");
}

Test(chat, no_family_writes_a_leading_bos) {
    for (int f = SLM_CHAT_LLAMA2; f <= SLM_CHAT_ZEPHYR; f++) {
        char *out = NULL;
        cr_assert_eq(slm_chat_render((slm_chat_family)f, CONV, N_OF(CONV), true,
                                     "<|begin_of_text|>", "</s>", &out, NULL), 0);
        cr_expect(strncmp(out, "<|begin_of_text|>", 17) != 0 && strncmp(out, "<s>", 3) != 0,
                  "%s starts with a BOS text: %.40s", slm_chat_family_name((slm_chat_family)f), out);
        slm_free(out);
    }
}

Test(chat, null_content_is_empty) {
    const slm_chat_msg with_null[] = { { "system", NULL }, { "user", "Hi" }, { "assistant", NULL } };
    const slm_chat_msg with_empty[] = { { "system", "" }, { "user", "Hi" }, { "assistant", "" } };
    for (int f = SLM_CHAT_LLAMA2; f <= SLM_CHAT_ZEPHYR; f++) {
        char *a = NULL, *b = NULL;
        cr_assert_eq(slm_chat_render((slm_chat_family)f, with_null, 3, true, NULL, NULL, &a, NULL), 0);
        cr_assert_eq(slm_chat_render((slm_chat_family)f, with_empty, 3, true, NULL, NULL, &b, NULL), 0);
        cr_expect_str_eq(a, b, "%s: NULL content differs from \"\"", slm_chat_family_name((slm_chat_family)f));
        slm_free(a);
        slm_free(b);
    }
}

Test(chat, long_content_grows_the_buffer) {
    size_t n = 1u << 20;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, 'x', n);
    big[n] = 0;
    slm_chat_msg msgs[3] = { { "user", big }, { "assistant", big }, { "user", "end" } };
    char *out = NULL;
    cr_assert_eq(slm_chat_render(SLM_CHAT_CHATML, msgs, 3, true, NULL, NULL, &out, NULL), 0);
    size_t want = 2 * n + strlen("<|im_start|>user\n<|im_end|>\n") * 2 +
                  strlen("<|im_start|>assistant\n<|im_end|>\n") + strlen("end") +
                  strlen("<|im_start|>assistant\n");
    cr_expect_eq(strlen(out), want, "length %zu, want %zu", strlen(out), want);
    cr_expect_str_eq(out + strlen(out) - strlen("end<|im_end|>\n<|im_start|>assistant\n"),
                     "end<|im_end|>\n<|im_start|>assistant\n");
    slm_free(out);
    free(big);
}

/* ---- errors ---------------------------------------------------------------- */

Test(chat, unknown_role_is_einval_naming_it) {
    const slm_chat_msg bad[] = { { "user", "hi" }, { "tool", "{}" } };
    for (int f = SLM_CHAT_LLAMA2; f <= SLM_CHAT_ZEPHYR; f++) {
        char *out = (char *)bad;
        slm_err err = { 0 };
        int rc = slm_chat_render((slm_chat_family)f, bad, 2, true, NULL, NULL, &out, &err);
        cr_assert_eq(rc, SLM_EINVAL, "%s: rc %d", slm_chat_family_name((slm_chat_family)f), rc);
        cr_assert_null(out);
        cr_expect_eq(err.code, SLM_EINVAL);
        cr_expect(strstr(err.msg, "'tool'") != NULL, "message does not name the role: %s", err.msg);
    }
    const slm_chat_msg null_role[] = { { NULL, "hi" } };
    char *out = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_chat_render(SLM_CHAT_CHATML, null_role, 1, true, NULL, NULL, &out, &err), SLM_EINVAL);
    cr_expect(strstr(err.msg, "(null)") != NULL, "%s", err.msg);
    const slm_chat_msg model_role[] = { { "model", "hi" } };   /* Gemma's word, not a role */
    cr_assert_eq(slm_chat_render(SLM_CHAT_GEMMA, model_role, 1, true, NULL, NULL, &out, &err), SLM_EINVAL);
}

Test(chat, bad_arguments) {
    char *out = NULL;
    slm_err err = { 0 };
    cr_expect_eq(slm_chat_render(SLM_CHAT_UNKNOWN, CONV, 1, true, NULL, NULL, &out, &err), SLM_EINVAL);
    cr_expect_null(out);
    cr_expect_eq(slm_chat_render((slm_chat_family)99, CONV, 1, true, NULL, NULL, &out, &err), SLM_EINVAL);
    cr_expect_eq(slm_chat_render(SLM_CHAT_CHATML, CONV, -1, true, NULL, NULL, &out, &err), SLM_EINVAL);
    cr_expect_eq(slm_chat_render(SLM_CHAT_CHATML, NULL, 2, true, NULL, NULL, &out, &err), SLM_EINVAL);
    cr_expect_eq(slm_chat_render(SLM_CHAT_CHATML, CONV, 1, true, NULL, NULL, NULL, &err), SLM_EINVAL);
    cr_expect_eq(slm_chat_render(SLM_CHAT_CHATML, CONV, 1, true, NULL, NULL, &out, NULL), 0,
                 "a NULL error context is allowed");
    slm_free(out);
}

Test(chat, out_of_memory_is_an_error) {
    size_t base = slm_mem_used();
    int failures = 0;
    for (long n = 1; n < 64; n++) {
        for (int f = SLM_CHAT_LLAMA2; f <= SLM_CHAT_ZEPHYR; f++) {
            char *out = NULL;
            slm_err err = { 0 };
            slm_alloc_fail_after(n);
            int rc = slm_chat_render((slm_chat_family)f, C_ODD, N_OF(C_ODD), true, NULL, NULL, &out, &err);
            slm_alloc_fail_after(0);
            if (rc == 0) { slm_free(out); continue; }
            failures++;
            cr_assert_eq(rc, SLM_ENOMEM, "alloc %ld, %s: rc %d", n, slm_chat_family_name((slm_chat_family)f), rc);
            cr_assert_null(out);
            cr_assert_eq(slm_mem_used(), base, "leak after failing allocation %ld", n);
        }
    }
    cr_assert_gt(failures, 7, "fault injection never hit");
    cr_assert_eq(slm_mem_used(), base);
}

/* ---- detection ------------------------------------------------------------- */

/* Real templates: llama.cpp tests/test-chat-template.cpp unless noted. */
static const struct { const char *name; const char *tmpl; slm_chat_family want; } KNOWN[] = {
    { "teknium/OpenHermes-2.5-Mistral-7B",
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
      SLM_CHAT_CHATML },
    { "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)",
      "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
      SLM_CHAT_MISTRAL },
    { "TheBloke/FusionNet_34Bx2_MoE-AWQ",
      "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' -%}\n{%- if idx > 1 -%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}\n{%- else -%}\n{{- messages[idx]['content'] + ' [/INST]' -}}\n{%- endif -%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{%- elif messages[idx]['role'] == 'assistant' -%}\n{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}\n{% endif %}\n{% endfor %}",
      SLM_CHAT_LLAMA2 },
    { "bofenghuang/vigogne-2-70b-chat",
      "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif true == true and not '<<SYS>>' in messages[0]['content'] %}{% set loop_messages = messages %}{% set system_message = 'Vous êtes Vigogne, un assistant IA créé par Zaion Lab. Vous suivez extrêmement bien les instructions. Aidez autant que vous le pouvez.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
      SLM_CHAT_LLAMA2 },
    { "google/gemma-7b-it",
      "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
      SLM_CHAT_GEMMA },
    { "Llama-3",
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
      SLM_CHAT_LLAMA3 },
    { "Phi-3-mini",
      "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}",
      SLM_CHAT_PHI3 },
    { "Phi-3-small",
      "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
      SLM_CHAT_PHI3 },
    { "Phi-3-medium",
      "{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}",
      SLM_CHAT_PHI3 },
    { "Phi-3-vision",
      "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}{{- '<|assistant|>\n' -}}{% endif %}",
      SLM_CHAT_PHI3 },
    { "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)",
      "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n",
      SLM_CHAT_MISTRAL },
    { "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)",
      "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% else %}{{ raise_exception('Only user, system and assistant roles are supported!') }}{% endif %}{% endfor %}",
      SLM_CHAT_MISTRAL },
    { "microsoft/Phi-3.5-mini-instruct (llama.cpp models/templates)",
      "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
      SLM_CHAT_PHI3 },
    { "google/gemma-2-2b-it (llama.cpp models/templates)",
      "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
      SLM_CHAT_GEMMA },
    { "HuggingFaceH4/zephyr-7b-beta",
      "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
      SLM_CHAT_ZEPHYR },
};

/* Families slm does not render: llama.cpp files them elsewhere. */
static const struct { const char *name; const char *tmpl; } UNKNOWN[] = {
    { "mlabonne/AlphaMonarch-7B",
      "{% for message in messages %}{{bos_token + message['role'] + '\\n' + message['content'] + eos_token + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ bos_token + 'assistant\\n' }}{% endif %}" },
    { "OrionStarAI/Orion-14B-Chat",
      "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}" },
    { "CohereForAI/c4ai-command-r-plus",
      "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif false == true %}{% set loop_messages = messages %}{% set system_message = 'You are Command-R, a brilliant, sophisticated, AI-assistant trained to assist human users by providing thorough responses. You are trained by Cohere.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% if system_message != false %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}" },
    { "ChatGLM3",
      "{% for message in messages %}{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n {{ message['content'] }}{% else %}<|{{ message['role'] }}|>\n {{ message['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}" },
    { "ChatGLM4",
      "[gMASK]<sop>{% for item in messages %}{% if item['tools'] is defined %}<|system|>\n你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具{% set tools = item['tools'] %}{% for tool in tools %}{% if tool['type'] == 'function' %}\n\n## {{ tool['function']['name'] }}\n\n{{ tool['function'] | tojson(indent=4) }}\n......{% endif %}{% endfor %}{% endif %}{% if item['content'] %}<|{{ item['role'] }}|>{{ item['metadata'] }}\n{{ item['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}" },
    { "GLMEdge",
      "{% for item in messages %}{% if item['role'] == 'system' %}<|system|>\n{{ item['content'] }}{% elif item['role'] == 'user' %}<|user|>\n{{ item['content'] }}{% elif item['role'] == 'assistant' %}<|assistant|>\n{{ item['content'] }}{% endif %}{% endfor %}<|assistant|>" },
    { "DeepSeek-V2",
      "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ message['content'] + '\n\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}" },
    { "ibm-granite/granite-3.0-8b-instruct",
      "{%- if tools %}\n    {{- '<|start_of_role|>available_tools<|end_of_role|>\n' }}\n    {%- for tool in tools %}\n    {{- tool | tojson(indent=4) }}\n    {%- if not loop.last %}\n        {{- '\n\n' }}\n    {%- endif %}\n    {%- endfor %}\n    {{- '<|end_of_text|>\n' }}\n{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == 'system' %}\n    {{- '<|start_of_role|>system<|end_of_role|>' + message['content'] + '<|end_of_text|>\n' }}\n    {%- elif message['role'] == 'user' %}\n    {{- '<|start_of_role|>user<|end_of_role|>' + message['content'] + '<|end_of_text|>\n' }}\n    {%- elif message['role'] == 'assistant' %}\n    {{- '<|start_of_role|>assistant<|end_of_role|>'  + message['content'] + '<|end_of_text|>\n' }}\n    {%- elif message['role'] == 'assistant_tool_call' %}\n    {{- '<|start_of_role|>assistant<|end_of_role|><|tool_call|>' + message['content'] + '<|end_of_text|>\n' }}\n    {%- elif message['role'] == 'tool_response' %}\n    {{- '<|start_of_role|>tool_response<|end_of_role|>' + message['content'] + '<|end_of_text|>\n' }}\n    {%- endif %}\n    {%- if loop.last and add_generation_prompt %}\n    {{- '<|start_of_role|>assistant<|end_of_role|>' }}\n    {%- endif %}\n{%- endfor %}" },
    { "phi-4",
      "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|><|im_start|>assistant<|im_sep|>'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}" },
};

Test(chat, detect_real_templates) {
    for (int32_t i = 0; i < N_OF(KNOWN); i++) {
        slm_chat_family got = slm_chat_detect(KNOWN[i].tmpl);
        cr_expect_eq(got, KNOWN[i].want, "%s: detected %s, want %s", KNOWN[i].name,
                     slm_chat_family_name(got), slm_chat_family_name(KNOWN[i].want));
    }
}

Test(chat, detect_marker_heuristics) {
    static const struct { const char *tmpl; slm_chat_family want; } CASES[] = {
        { "{{'<|im_start|>' + message['role'] }}",                       SLM_CHAT_CHATML  },
        { "{{ '<|start_header_id|>' + r + '<|end_header_id|>' }}",       SLM_CHAT_LLAMA3  },
        { "{{ '<|assistant|>' }}{{ '<|end|>' }}",                        SLM_CHAT_PHI3    },
        { "{{ '[INST] <<SYS>>' }}",                                      SLM_CHAT_LLAMA2  },
        { "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}",  SLM_CHAT_LLAMA2  },
        { "{{ '[INST] ' + c + ' [/INST]' }}",                            SLM_CHAT_MISTRAL },
        { "{{ '[SYSTEM_PROMPT]' }}{{ '<<SYS>>' }}[INST]",                SLM_CHAT_MISTRAL },
        { "mistral-ish name",                                            SLM_CHAT_MISTRAL },
        { "{{ '<start_of_turn>' + role }}",                              SLM_CHAT_GEMMA   },
        { "{{ '<|user|>\\n' + c + '<|endoftext|>' }}",                   SLM_CHAT_ZEPHYR  },
        { "{{ '<|user|>\\n' + c + '</s>' }}",                            SLM_CHAT_ZEPHYR  },
        { "llama3",                                                      SLM_CHAT_LLAMA3  },
        { "mistral-v7-tekken",                                           SLM_CHAT_MISTRAL },
        { "llama2-sys-strip",                                            SLM_CHAT_LLAMA2  },
    };
    for (int32_t i = 0; i < N_OF(CASES); i++) {
        slm_chat_family got = slm_chat_detect(CASES[i].tmpl);
        cr_expect_eq(got, CASES[i].want, "[%s]: detected %s, want %s", CASES[i].tmpl,
                     slm_chat_family_name(got), slm_chat_family_name(CASES[i].want));
    }
}

Test(chat, detect_unknown) {
    for (int32_t i = 0; i < N_OF(UNKNOWN); i++) {
        slm_chat_family got = slm_chat_detect(UNKNOWN[i].tmpl);
        cr_expect_eq(got, SLM_CHAT_UNKNOWN, "%s: detected %s", UNKNOWN[i].name, slm_chat_family_name(got));
    }
    cr_expect_eq(slm_chat_detect("INVALID TEMPLATE"), SLM_CHAT_UNKNOWN);
    cr_expect_eq(slm_chat_detect(""), SLM_CHAT_UNKNOWN);
    cr_expect_eq(slm_chat_detect(NULL), SLM_CHAT_UNKNOWN);
    cr_expect_eq(slm_chat_detect("{{ '<|user|>' }}"), SLM_CHAT_UNKNOWN, "GLM-Edge-like, no end of turn");
}

Test(chat, family_names_round_trip) {
    static const char *names[] = { "llama2", "llama3", "chatml", "phi3", "mistral", "gemma", "zephyr" };
    for (int f = SLM_CHAT_LLAMA2; f <= SLM_CHAT_ZEPHYR; f++) {
        const char *name = slm_chat_family_name((slm_chat_family)f);
        cr_expect_str_eq(name, names[f - 1]);
        cr_expect_eq(slm_chat_family_from_name(name), (slm_chat_family)f, "%s", name);
    }
    cr_expect_str_eq(slm_chat_family_name(SLM_CHAT_UNKNOWN), "unknown");
    cr_expect_str_eq(slm_chat_family_name((slm_chat_family)42), "unknown");
    cr_expect_eq(slm_chat_family_from_name("unknown"), SLM_CHAT_UNKNOWN);
    cr_expect_eq(slm_chat_family_from_name("Llama3"), SLM_CHAT_UNKNOWN, "names are case-sensitive");
    cr_expect_eq(slm_chat_family_from_name("mistral-v7"), SLM_CHAT_UNKNOWN, "aliases are for detect only");
    cr_expect_eq(slm_chat_family_from_name(NULL), SLM_CHAT_UNKNOWN);
}
