/*
 * logits.c — `slm logits`: the logits after every prompt position, computed
 * in one batch, written in the fixture format (int32 n_tokens, int32 n_vocab,
 * int32 tokens[n], float32 logits[n][n_vocab], little-endian).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

int cmd_logits(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *outp = NULL, *file = NULL;
    int32_t threads = 0;
    bool bos = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) outp = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            if (!cli_parse_i32(argv[++i], 1, 512, &threads)) return cli_usage("logits", "-t wants 1..512");
        } else if (!strcmp(argv[i], "--no-bos")) bos = false;
        else return cli_usage("logits", "unknown or incomplete option '%s'", argv[i]);
    }
    if (!path || !(prompt || file) || !outp) return cli_usage("logits", "-m MODEL, -p PROMPT (or -f FILE) and -o OUT are required");
    char *buf = NULL;
    if (file && !(buf = cli_read_file(file, NULL))) return 1;
    slm_model *m = cli_load_model(path, false);
    int rc = 1;
    slm_ctx *ctx = NULL;
    int32_t *ids = NULL, n = 0;
    float *logits = NULL;
    FILE *f = NULL;
    if (!m) goto done;
    if (cli_tokenize(slm_model_vocab(m), buf ? buf : prompt, bos, false, &ids, &n)) goto done;
    if (n == 0) { cli_fail("the prompt has no tokens"); goto done; }
    slm_model_info in;
    slm_model_get_info(m, &in);
    slm_ctx_params cp = slm_ctx_default_params();
    cp.n_threads = threads;
    cp.n_batch = n;
    if (n > in.n_ctx_train) { cli_fail("the prompt has %d tokens, more than the model's context of %d", n, in.n_ctx_train); goto done; }
    cp.n_ctx = n;
    slm_err err = { 0 };
    if (slm_ctx_new(m, &cp, &ctx, &err)) { cli_fail("%s", err.msg); goto done; }
    logits = slm_malloc((size_t)n * (size_t)in.n_vocab * sizeof *logits);
    if (!logits) { cli_fail("out of memory for %d × %d logits", n, in.n_vocab); goto done; }
    if (slm_decode(ctx, 0, ids, n, 0, true, logits, &err)) { cli_fail("%s", err.msg); goto done; }
    f = fopen(outp, "wb");
    if (!f) { cli_fail("cannot create '%s': %s", outp, strerror(errno)); goto done; }
    int32_t hdr[2] = { n, in.n_vocab };
    if (fwrite(hdr, 4, 2, f) != 2 || fwrite(ids, 4, (size_t)n, f) != (size_t)n ||
        fwrite(logits, 4, (size_t)n * (size_t)in.n_vocab, f) != (size_t)n * (size_t)in.n_vocab) {
        cli_fail("cannot write '%s'", outp);
        goto done;
    }
    if (fclose(f)) { f = NULL; cli_fail("cannot write '%s'", outp); goto done; }
    f = NULL;
    rc = 0;
done:
    if (f) fclose(f);
    slm_free(logits);
    slm_free(ids);
    slm_free(buf);
    slm_ctx_free(ctx);
    slm_model_free(m);
    return rc;
}
