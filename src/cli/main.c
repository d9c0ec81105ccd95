/*
 * main.c — `slm COMMAND …`: dispatches to the subcommands (one file each).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} CMDS[] = {
    { "run", cmd_run, "run -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
                      "      [--repeat-penalty R] [--seed S] [-t N] [--ctx N] [--chat] [--system TEXT]\n"
                      "      [--chat-template NAME] [--stop STR]... [--no-stats]\n"
                      "  Streams the continuation of PROMPT to stdout; --chat renders it as a user message\n"
                      "  with the model's chat template. -n -1 generates until end of text or context." },
    { "chat", cmd_chat, "chat -m MODEL [--system TEXT] [--chat-template NAME] [sampling options of run]\n"
                        "  Interactive chat on a terminal; /exit or end of input quits, /reset forgets." },
    { "info", cmd_info, "info MODEL [--json]\n"
                        "  Architecture, parameters, size, tensor types, context, vocabulary, chat template." },
    { "tokenize", cmd_tokenize, "tokenize -m MODEL [--no-bos] [--no-parse-special] [--pieces] [-f FILE | TEXT]\n"
                                "  Token ids, space-separated, on one line." },
    { "logits", cmd_logits, "logits -m MODEL -p PROMPT -o OUT [-t N] [--no-bos]\n"
                            "  Logits after every prompt position (one batch), in the fixture binary format:\n"
                            "  int32 n_tokens, int32 n_vocab, int32 tokens[n], float32 logits[n][n_vocab]." },
    { "serve", cmd_serve, "serve -m MODEL [--host ADDR] [--port N] [--alias NAME] [--parallel N] [--max-queue N]\n"
                          "      [--kv-mem SIZE] [--ctx N] [-t N] [--chat-template NAME]\n"
                          "      [--api-key KEY ... | --api-keys-file FILE] [--strict-model] [--drain-timeout S] [--request-timeout S]\n"
                          "      [--log-prompts] [--max-body BYTES] [--max-tokens-cap N] [--max-messages N]\n"
                          "  OpenAI-compatible HTTP server: POST /v1/chat/completions, /v1/completions; GET\n"
                          "  /v1/models, /health, /metrics. Port 0 picks a free port (printed on stderr). SIGINT or\n"
                          "  SIGTERM stops accepting requests and drains. Access log: one JSON line per request." },
    { "gateway", cmd_gateway, "gateway -c FILE | --check FILE\n"
                              "  OpenAI-compatible router in front of local slm replicas and frontier providers:\n"
                              "  routes by model, task and rules, falls back across upstreams, keeps private data\n"
                              "  local, writes one ledger row per request. --check validates the config and exits.\n"
                              "  SIGHUP reloads the config; SIGINT/SIGTERM stop." },
    { "bench", cmd_bench, "bench -m MODEL [-p 512] [-n 128] [-t N] [-r 3] [--json]\n"
                          "  Prompt processing (pp: one batch) and generation (tg: one token at a time) in\n"
                          "  tokens/s, mean ± sd over -r runs after a warm-up, and peak resident memory." },
    { "synth", cmd_synth, "synth --arch llama|qwen2|qwen3|phi3 [--preset NAME | --dim N --layers N --heads N\n"
                          "      --kv-heads N --ff N [--vocab-size N] [--ctx N]] --type TYPE [--vocab FILE]\n"
                          "      [--tied] [--llama3-rope] [--rope-base B] [--seed S] [--scale S] -o OUT.gguf\n"
                          "  Writes a random-weight model (its text is noise). Presets: tiny, tinyllama-1.1b,\n"
                          "  llama-3.2-1b, qwen2.5-0.5b, smollm2-360m. Types: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0\n"
                          "  q5_1 q2_k q3_k q4_k q5_k q6_k." },
};
#define N_CMDS (sizeof CMDS / sizeof CMDS[0])

static void usage(FILE *f) {
    fprintf(f, "slm — run, serve and measure small language models (GGUF) on CPU\n\nusage: slm COMMAND [options]\n\n");
    for (size_t i = 0; i < N_CMDS; i++) fprintf(f, "  slm %s\n\n", CMDS[i].help);
    fprintf(f, "  slm help COMMAND\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2)
            for (size_t i = 0; i < N_CMDS; i++)
                if (!strcmp(argv[2], CMDS[i].name)) {
                    printf("usage: slm %s\n", CMDS[i].help);
                    return 0;
                }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("slm 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < N_CMDS; i++)
        if (!strcmp(cmd, CMDS[i].name)) return CMDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "slm: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
