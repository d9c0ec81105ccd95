/*
 * quantize.c — `slm quantize IN OUT TYPE`: converts a GGUF model to a
 * quantization mix (src/quant/quantize.c does the work). Prints a
 * progress line on a terminal and a one-line summary on stderr; -v adds
 * one line per tensor.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "quant/quantize.h"

#define MIB (1024.0 * 1024.0)

static void print_tensor(void *ud, const char *name, int32_t from, int32_t to, uint64_t bytes_in, uint64_t bytes_out) {
    int *idx = ud;
    fprintf(stderr, "[%4d] %-40s %6s -> %-6s %9.2f -> %9.2f MiB\n", ++*idx, name, slm_type_name(from), slm_type_name(to),
            (double)bytes_in / MIB, (double)bytes_out / MIB);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = { 0 };
    int n_pos = 0, n_printed = 0;
    bool verbose = false;
    slm_quantize_params p = slm_quantize_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--imatrix")) {
            if (i + 1 >= argc) return cli_usage("quantize", "--imatrix needs a file");
            p.imatrix_path = argv[++i];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            int32_t t;
            if (i + 1 >= argc || !cli_parse_i32(argv[++i], 1, 512, &t)) return cli_usage("quantize", "-t wants 1..512");
            p.n_threads = t;
        } else if (!strcmp(a, "--allow-requantize")) {
            p.allow_requantize = true;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("quantize", "unknown option '%s'", a);
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            return cli_usage("quantize", "unexpected argument '%s'", a);
        }
    }
    if (n_pos < 3) return cli_usage("quantize", "IN.gguf OUT.gguf TYPE are required");
    if (slm_quantize_ftype_parse(pos[2], &p.ftype))
        return cli_fail("unknown type '%s' (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S "
                        "Q4_K_M Q5_K_S Q5_K_M Q6_K; Q3_K, Q4_K, Q5_K mean the _M mixes)", pos[2]);
    p.progress = !verbose;
    if (verbose) {
        p.on_tensor = print_tensor;
        p.ud = &n_printed;
    }
    slm_quantize_stats st;
    slm_err err = { 0 };
    if (slm_quantize_file(pos[0], pos[1], &p, &st, &err)) return cli_fail("%s", err.msg[0] ? err.msg : slm_strerror(err.code));
    double bpw = st.n_elements ? 8.0 * (double)st.bytes_out / (double)st.n_elements : 0;
    fprintf(stderr,
            "slm quantize: %s (%.1f MiB) -> %s (%s, %.1f MiB, %.2f bits per weight), %lld tensors (%lld converted)%s, "
            "%.1f s, %.1f MiB/s\n",
            pos[0], (double)st.bytes_in / MIB, pos[1], slm_quantize_ftype_name(p.ftype), (double)st.bytes_out / MIB, bpw,
            (long long)st.n_tensors, (long long)st.n_quantized, p.imatrix_path ? ", imatrix" : "", st.seconds,
            st.seconds > 0 ? (double)st.bytes_in / MIB / st.seconds : 0.0);
    return 0;
}
