/*
 * convert.c — `slm convert HF_DIR -o OUT.gguf [--type f32|f16|bf16|q8_0]`:
 * a Hugging Face checkpoint folder to GGUF (src/convert/ does the work).
 * A progress line with an ETA runs on a terminal; the summary goes to
 * stderr.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "convert/convert.h"
#include "kernels/types.h"
#include "util/progress.h"

static void on_progress(void *ud, int32_t i, int32_t n, uint64_t done, uint64_t total, const char *name) {
    slm_progress *p = ud;
    if (i == 0) slm_progress_begin(p, "convert", "MiB", (int64_t)(total >> 20));
    slm_progress_label(p, name);
    slm_progress_set(p, (int64_t)(done >> 20));
    if (i == n) slm_progress_end(p);
}

int cmd_convert(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *type_name = "f16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o") || !strcmp(a, "--type")) {
            if (i + 1 >= argc) return cli_usage("convert", "%s needs a value", a);
            if (!strcmp(a, "-o")) out = argv[++i];
            else type_name = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("convert", "unknown option '%s'", a);
        } else if (!dir) {
            dir = a;
        } else {
            return cli_usage("convert", "one HF_DIR only ('%s' is extra)", a);
        }
    }
    if (!dir) return cli_usage("convert", "HF_DIR is required");
    if (!out) return cli_usage("convert", "-o OUT.gguf is required");
    static const struct { const char *name; int32_t type; } TYPES[] = {
        { "f32", SLM_TYPE_F32 }, { "f16", SLM_TYPE_F16 }, { "bf16", SLM_TYPE_BF16 }, { "q8_0", SLM_TYPE_Q8_0 },
    };
    slm_convert_params p = slm_convert_default_params();
    p.type = -1;
    for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++)
        if (!strcasecmp(type_name, TYPES[k].name)) p.type = TYPES[k].type;
    if (p.type < 0) return cli_usage("convert", "--type wants f32, f16, bf16 or q8_0 (not '%s')", type_name);
    slm_progress prog = { 0 };
    p.progress = on_progress;
    p.progress_ud = &prog;
    slm_convert_stats st;
    slm_err err = { 0 };
    double t0 = slm_now();
    int rc = slm_convert_hf(dir, out, &p, &st, &err);
    slm_progress_end(&prog);
    if (rc) return cli_fail("%s", err.msg);
    fprintf(stderr, "slm: wrote %s: %s, %d tensors, %.2fM parameters, %s, %d-token %s vocabulary, %.1f MiB in %.2f s\n",
            out, st.arch, st.n_tensors, (double)st.n_params / 1e6, type_name, st.n_vocab, st.tokenizer,
            (double)st.file_bytes / 1048576.0, slm_now() - t0);
    if (st.n_fallback)
        fprintf(stderr, "slm: note: %d matrices kept as f16 (their rows do not split into %s blocks)\n", st.n_fallback,
                type_name);
    return 0;
}
