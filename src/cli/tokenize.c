/* tokenize.c — `slm tokenize`: token ids of a text, on one line. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *file = NULL, *text = NULL;
    bool bos = true, special = true, pieces = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--no-bos")) bos = false;
        else if (!strcmp(argv[i], "--no-parse-special")) special = false;
        else if (!strcmp(argv[i], "--pieces")) pieces = true;
        else if (!strcmp(argv[i], "--")) { if (i + 1 < argc) text = argv[++i]; }
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("tokenize", "unknown option '%s'", argv[i]);
        else if (!text) text = argv[i];
        else return cli_usage("tokenize", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage("tokenize", "-m MODEL is required");
    if (!!file == !!text) return cli_usage("tokenize", "give either -f FILE or TEXT");
    char *buf = NULL;
    if (file && !(buf = cli_read_file(file, NULL))) return 1;
    slm_model *m = cli_load_model(path, true);
    if (!m) { slm_free(buf); return 1; }
    const slm_vocab *v = slm_model_vocab(m);
    int32_t *ids = NULL, n = 0;
    int rc = cli_tokenize(v, buf ? buf : text, bos, special, &ids, &n);
    if (!rc) {
        for (int32_t i = 0; i < n; i++) {
            if (pieces) {
                char piece[256];
                int len = slm_token_to_bytes(v, ids[i], piece, sizeof piece);
                printf("%s%d:'%.*s'", i ? " " : "", ids[i], len > 0 ? len : 0, piece);
            } else {
                printf("%s%d", i ? " " : "", ids[i]);
            }
        }
        printf("\n");
    }
    slm_free(ids);
    slm_free(buf);
    slm_model_free(m);
    return rc;
}
