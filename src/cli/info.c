/* info.c — `slm info MODEL`: what a model file holds. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char *human(double b, char *buf, size_t cap) {
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (b >= 1024 && i < 4) { b /= 1024; i++; }
    snprintf(buf, cap, "%.2f %s", b, u[i]);
    return buf;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (argv[i][0] == '-') return cli_usage("info", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("info", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage("info", "a model file is required");
    slm_model *m = cli_load_model(path, false);
    if (!m) return 1;
    slm_model_info in;
    slm_model_get_info(m, &in);
    const slm_vocab *v = slm_model_vocab(m);
    slm_chat_family fam = in.chat_template ? slm_chat_detect(in.chat_template) : SLM_CHAT_UNKNOWN;
    const char *fam_name = in.chat_template ? (fam ? slm_chat_family_name(fam) : "unrecognised") : "none";
    char b1[32], b2[32];
    if (json) {
        printf("{\"path\":\"%s\",\"arch\":\"%s\",\"name\":\"%s\",\"n_params\":%llu,\"file_size\":%llu,"
               "\"n_vocab\":%d,\"n_embd\":%d,\"n_layer\":%d,\"n_head\":%d,\"n_head_kv\":%d,\"n_ff\":%d,"
               "\"head_dim\":%d,\"n_ctx_train\":%d,\"rope_freq_base\":%g,\"rms_eps\":%g,\"tied_output\":%s,"
               "\"tokenizer\":\"%s\",\"pre\":\"%s\",\"chat_template\":\"%s\",\"types\":{",
               path, in.arch, in.name, (unsigned long long)in.n_params, (unsigned long long)in.file_size,
               in.n_vocab, in.n_embd, in.n_layer, in.n_head, in.n_head_kv, in.n_ff, in.head_dim, in.n_ctx_train,
               in.rope_freq_base, in.rms_eps, in.tied_output ? "true" : "false", slm_vocab_kind(v), slm_vocab_pre(v),
               fam_name);
        int first = 1;
        for (int t = 0; t < 40; t++)
            if (in.type_count[t]) {
                printf("%s\"%s\":%d", first ? "" : ",", slm_type_name(t), in.type_count[t]);
                first = 0;
            }
        printf("}}\n");
    } else {
        printf("file:          %s (%s)\n", path, human((double)in.file_size, b1, sizeof b1));
        printf("name:          %s\n", in.name[0] ? in.name : "-");
        printf("architecture:  %s\n", in.arch);
        printf("parameters:    %.3f M (%s of tensor data, %.2f bits per weight)\n", in.n_params / 1e6,
               human((double)in.tensor_bytes, b2, sizeof b2), in.n_params ? 8.0 * in.tensor_bytes / in.n_params : 0);
        printf("layers:        %d, embedding %d, feed-forward %d\n", in.n_layer, in.n_embd, in.n_ff);
        printf("attention:     %d heads, %d KV heads, head size %d, rotary dims %d, rope base %g\n", in.n_head,
               in.n_head_kv, in.head_dim, in.n_rot, in.rope_freq_base);
        printf("context:       %d (training)\n", in.n_ctx_train);
        printf("output:        %s\n", in.tied_output ? "tied to token embeddings" : "separate");
        printf("vocabulary:    %d tokens, %s tokenizer, pre-tokenizer %s, bos %d, eos %d%s\n", in.n_vocab,
               slm_vocab_kind(v), slm_vocab_pre(v), slm_vocab_bos(v), slm_vocab_eos(v),
               slm_vocab_add_bos(v) ? ", adds BOS" : "");
        printf("chat template: %s\n", fam_name);
        printf("tensors:       %d:", in.n_tensors);
        for (int t = 0; t < 40; t++)
            if (in.type_count[t]) printf(" %s×%d", slm_type_name(t), in.type_count[t]);
        printf("\n");
    }
    slm_model_free(m);
    return 0;
}
