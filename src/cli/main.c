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
                      "  with the model's chat template. -n -1 generates until end of text or context.\n"
                      "  --ctx defaults to the model's trained context, at most 4096." },
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
    { "eval", cmd_eval, "eval init [DIR] | run SUITE --target NAME=URL[,model=M,key_env=VAR,…] | NAME=MODEL.gguf …\n"
                        "      [--judge SPEC] [--db slm.db] [--tag T] [--limit N] [--concurrency N] [--rps R] [--timeout S]\n"
                        "      [--retries N] [--price NAME=IN,OUT] [--baseline RUN [--max-drop PTS]] [--md F] [--html F] [--json]\n"
                        "      | compare RUN_A RUN_B [--md F] [--json] | report RUN [--md F] [--html F] [--json] | runs [-n N]\n"
                        "  Evaluates targets (OpenAI-compatible endpoints or local GGUF models) on a JSONL suite: scores,\n"
                        "  95% intervals, latency, tokens, cost per correct answer, all stored in SQLite. --baseline with\n"
                        "  --max-drop exits 1 when the score falls more than PTS percentage points. Target options:\n"
                        "  concurrency, rps, timeout, retries, backoff_ms, in, out (price $/M tokens); local: threads, ctx,\n"
                        "  template. Runs are named by id (any unique prefix) or \"latest\"." },
    { "bench", cmd_bench, "bench -m MODEL [-p 512] [-n 128] [-t N] [-r 3] [--json]\n"
                          "  Prompt processing (pp: one batch) and generation (tg: one token at a time) in\n"
                          "  tokens/s, mean ± sd over -r runs after a warm-up, and peak resident memory." },
    { "perplexity", cmd_perplexity,
      "perplexity -m MODEL -f TEXT [--ctx 512] [--stride N] [--chunks N] [-t N] [--json]\n"
      "  Perplexity over windows of --ctx tokens (BOS first), scoring the second half of each\n"
      "  window as llama-perplexity does (--stride S < ctx: slide by S, score the last S tokens).\n"
      "  Prints the running PPL per window and PPL = x ± stderr with a 95% interval." },
    { "kld", cmd_kld, "kld --base BASE -m MODEL -f TEXT [--ctx 512] [--stride N] [--chunks N] [-t N] [--json]\n"
                      "  KL divergence of MODEL's next-token distributions from BASE's on perplexity's windows:\n"
                      "  mean ± stderr, median, p99, max; top-1 agreement; PPL of each and their ratio." },
    { "quant-report", cmd_quant_report,
      "quant-report BASE.gguf -f TEXT [--types q8_0,q6_k,q5_k_m,q4_k_m,q4_0,q3_k_m] [--imatrix FILE]\n"
      "      [--ctx 512] [--chunks N] [-t N] [--pp 256] [--tg 64] [-o PREFIX] [--keep] [--allow-requantize]\n"
      "  Quantizes BASE to each type (a temporary file; PREFIX-TYPE.gguf with --keep) and measures size,\n"
      "  bits per weight, prompt and generation speed and the kld figures against BASE; prints a table\n"
      "  sorted by size and writes PREFIX.md and PREFIX.json (default prefix quant-report)." },
    { "quantize", cmd_quantize,
      "quantize IN.gguf OUT.gguf TYPE [--imatrix FILE] [-t N] [--allow-requantize] [-v]\n"
      "  Converts a model to TYPE: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q6_K, or a mix with llama.cpp's\n"
      "  per-tensor choices: Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M (Q3_K, Q4_K, Q5_K:\n"
      "  the _M mixes). --imatrix weights each tensor's error by its columns' importance. Input that\n"
      "  is already quantized is refused without --allow-requantize. -v: one line per tensor." },
    { "imatrix", cmd_imatrix, "imatrix -m MODEL -f TEXT -o FILE [--ctx 512] [--chunks N] [-t N]\n"
                              "  Runs MODEL over TEXT in chunks of --ctx tokens and writes each weight matrix's mean\n"
                              "  squared input activation per column (llama.cpp's GGUF imatrix format), for quantize." },
    { "synth", cmd_synth, "synth --arch llama|qwen2|qwen3|phi3 [--preset NAME | --dim N --layers N --heads N\n"
                          "      --kv-heads N --ff N [--vocab-size N] [--ctx N]] --type TYPE [--vocab FILE]\n"
                          "      [--tied] [--llama3-rope] [--rope-base B] [--seed S] [--scale S] -o OUT.gguf\n"
                          "  Writes a random-weight model (its text is noise). Presets: tiny, tinyllama-1.1b,\n"
                          "  llama-3.2-1b, qwen2.5-0.5b, smollm2-360m. Types: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0\n"
                          "  q5_1 q2_k q3_k q4_k q5_k q6_k." },
    { "convert", cmd_convert, "convert HF_DIR -o OUT.gguf [--type f32|f16|bf16|q8_0]\n"
                              "  Converts a Hugging Face checkpoint folder (config.json, model.safetensors or its\n"
                              "  shards, tokenizer.json) to GGUF: Llama/Mistral, Qwen2, Qwen3, Phi-3. --type applies\n"
                              "  to 2-D weights (default f16); norms and biases stay f32." },
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
