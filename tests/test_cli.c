/*
 * test_cli.c — the commands as a user runs them: exit statuses, one-line
 * errors for bad files and input, reproducible sampling, the output formats
 * of tokenize and logits, and the Lily story from stories260K (fixture).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_write.h"
#include "kernels/types.h"
#include "helpers.h"

#define SMALL "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96 --vocab-size 300"

static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "%s ", th_slm_bin());
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    return th_run(cmd, out);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

Test(cli, info_describes_a_synth_model) {
    const char *p = th_synth("qwen2", "q8_0", SMALL);
    char *out;
    cr_assert_eq(run(&out, "info %s 2>&1", p), 0, "%s", out);
    cr_assert(strstr(out, "architecture:  qwen2"), "%s", out);
    cr_assert(strstr(out, "q8_0×"), "%s", out);
    cr_assert(strstr(out, "chat template: chatml"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "info --json %s 2>&1", p), 0);
    cr_assert(strstr(out, "\"arch\":\"qwen2\"") && strstr(out, "\"n_layer\":2"), "%s", out);
    free(out);
}

Test(cli, run_is_reproducible_with_a_seed) {
    const char *p = th_synth("llama", "q4_0", SMALL);
    char *a, *b, *c;
    cr_assert_eq(run(&a, "run -m %s -p 'Hello' -n 24 --seed 7 --temp 1 --no-stats 2>/dev/null", p), 0);
    cr_assert_eq(run(&b, "run -m %s -p 'Hello' -n 24 --seed 7 --temp 1 --no-stats -t 1 2>/dev/null", p), 0);
    cr_assert_eq(run(&c, "run -m %s -p 'Hello' -n 24 --seed 8 --temp 1 --no-stats 2>/dev/null", p), 0);
    cr_assert_str_eq(a, b, "same seed, different text");
    cr_assert_str_neq(a, c, "different seeds gave the same 24 tokens");
    free(a);
    free(b);
    free(c);
}

Test(cli, run_chat_and_stop_strings) {
    const char *p = th_synth("llama", "f32", SMALL);
    char *out;
    cr_assert_eq(run(&out, "run -m %s -p 'hi' --chat --system 'be brief' -n 8 --seed 1 2>&1", p), 0, "%s", out);
    free(out);
    cr_assert_eq(run(&out, "run -m %s -p 'hi' --chat --chat-template nonsense 2>&1", p), 1);
    cr_assert(strstr(out, "unknown chat template 'nonsense'"), "%s", out);
    free(out);
    /* a stop string never reaches the output and nothing follows it: greedy
     * text without a stop, then with a stop made of its own middle (the
     * random model may emit NUL bytes, so only the text before one counts) */
    char *full;
    cr_assert_eq(run(&full, "run -m %s -p 'abc' -n 40 --temp 0 --no-stats 2>/dev/null", p), 0);
    size_t len = strlen(full);
    if (len > 12) {
        char stop[5];
        memcpy(stop, full + len / 2, 4);
        stop[4] = 0;
        if (!strchr(stop, '\'') && !strchr(stop, '\\') && !strchr(stop, '\n')) {
            cr_assert_eq(run(&out, "run -m %s -p 'abc' -n 40 --temp 0 --no-stats --stop '%s' 2>/dev/null", p, stop), 0);
            cr_assert(strstr(out, stop) == NULL, "stop string '%s' in output '%s'", stop, out);
            cr_assert(strlen(out) >= 1 && strncmp(out, full, strlen(out) - 1) == 0, "output is not a prefix of the full text");
            cr_assert_eq(strlen(out) - 1, (size_t)(strstr(full, stop) - full), "output does not end where the stop string starts");
            free(out);
        }
    }
    free(full);
}

Test(cli, truncated_and_garbage_files_fail_with_one_line) {
    const char *p = th_synth("llama", "q8_0", SMALL);
    size_t len;
    char *bytes = th_read_file(p, &len);
    cr_assert_not_null(bytes);
    const char *t = th_tmp("truncated.gguf");
    size_t cuts[] = { 0, 3, 10, 30, 100, len / 3, len / 2, len - 1 };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        th_write_file(t, bytes, cuts[k]);
        char *err;
        int rc = run(&err, "info %s 2>&1 >/dev/null", t);
        cr_assert_eq(rc, 1, "cut at %zu: exit %d, output %s", cuts[k], rc, err);
        cr_assert_eq(count_lines(err), 1, "cut at %zu: expected one line, got: %s", cuts[k], err);
        cr_assert(strncmp(err, "slm: error: ", 12) == 0, "%s", err);
        free(err);
    }
    th_write_file(t, bytes, len - 1);
    char *err;
    run(&err, "info %s 2>&1", t);
    cr_assert(strstr(err, "data ends past end of file"), "%s", err);
    free(err);
    th_write_file(t, "hello, world, not a model at all", 32);
    run(&err, "run -m %s -p x 2>&1", t);
    cr_assert(strstr(err, "not a GGUF file"), "%s", err);
    free(err);
    run(&err, "info /nonexistent/model.gguf 2>&1");
    cr_assert(strstr(err, "cannot open"), "%s", err);
    free(err);
    free(bytes);
}

/* Rewrites a synth model with one change: a new architecture name, or one
 * tensor replaced by zero bytes of another type. */
static void rewrite(const char *src, const char *dst, const char *arch, const char *tensor, int32_t type) {
    slm_gguf *g = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gguf_open(src, &g, &err), 0, "%s", err.msg);
    slm_gguf_writer *w = slm_gguf_writer_new();
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) cr_assert_eq(slm_gguf_copy_kv(w, g, i), 0);
    if (arch) slm_gguf_set_str(w, "general.architecture", arch);
    void *zeros = NULL;
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (tensor && !strcmp(name, tensor)) {
            uint64_t nb = slm_row_size(type, t->ne[0]) * (uint64_t)t->ne[1];
            cr_assert(nb > 0, "type %d cannot hold row %lld", type, (long long)t->ne[0]);
            zeros = calloc(1, nb);
            cr_assert_eq(slm_gguf_add_tensor(w, name, type, t->n_dims, t->ne, zeros, nb), 0);
        } else {
            cr_assert_eq(slm_gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes), 0);
        }
    }
    cr_assert_eq(slm_gguf_writer_write(w, dst, &err), 0, "%s", err.msg);
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
    free(zeros);
}

Test(cli, unsupported_architecture_and_type_are_named) {
    const char *p = th_synth("llama", "f32", "--dim 256 --layers 1 --heads 4 --kv-heads 2 --ff 256 --vocab-size 300");
    const char *q = th_tmp("arch.gguf");
    rewrite(p, q, "mamba", NULL, 0);
    char *err;
    cr_assert_eq(run(&err, "info %s 2>&1", q), 1);
    cr_assert(strstr(err, "architecture 'mamba' is not supported"), "%s", err);
    free(err);
    rewrite(p, q, NULL, "blk.0.attn_q.weight", 16 /* iq2_xxs */);
    cr_assert_eq(run(&err, "info %s 2>&1", q), 1);
    cr_assert(strstr(err, "tensor 'blk.0.attn_q.weight' has type iq2_xxs, which slm does not support"), "%s", err);
    free(err);
    rewrite(p, q, NULL, "blk.0.attn_k.weight", SLM_TYPE_F16);
    cr_assert_eq(run(&err, "run -m %s -p hi -n 2 2>&1", q), 0, "a mixed-type model runs: %s", err);
    free(err);
}

Test(cli, bad_input_is_an_error_not_a_crash) {
    const char *p = th_synth("llama", "f32", SMALL " --ctx 16");
    char *err;
    cr_assert_eq(run(&err, "run -m %s -p \"$(printf 'bad \\377\\376 utf8')\" 2>&1", p), 1);
    cr_assert(strstr(err, "UTF-8") || strstr(err, "utf-8"), "%s", err);
    free(err);
    cr_assert_eq(run(&err, "run -m %s -p 'this prompt is much longer than sixteen tokens of context' 2>&1", p), 1);
    cr_assert(strstr(err, "context"), "%s", err);
    free(err);
    cr_assert_eq(run(&err, "run -m %s -p hi --ctx 99999999999 2>&1", p), 2, "%s", err);
    free(err);
    cr_assert_eq(run(&err, "run -m %s -p hi --temp abc 2>&1", p), 2, "%s", err);
    free(err);
    cr_assert_eq(run(&err, "frobnicate 2>&1"), 2);
    free(err);
}

Test(cli, tokenize_and_logits_formats) {
    const char *p = th_synth("llama", "f32", SMALL);
    char *out;
    cr_assert_eq(run(&out, "tokenize -m %s 'Hi!' 2>&1", p), 0, "%s", out);
    cr_assert_str_eq(out, "72 105 33\n", "byte-level vocabulary without merges: one id per byte");
    free(out);
    cr_assert_eq(run(&out, "tokenize -m %s '<|im_start|>x' 2>&1", p), 0);
    cr_assert_str_eq(out, "257 120\n", "special token matched whole");
    free(out);
    cr_assert_eq(run(&out, "tokenize -m %s --no-parse-special '<|' 2>&1", p), 0);
    cr_assert_str_eq(out, "60 124\n");
    free(out);
    const char *lp = th_tmp("l.bin");
    cr_assert_eq(run(&out, "logits -m %s -p 'Hello' -o %s 2>&1", p, lp), 0, "%s", out);
    free(out);
    size_t len;
    char *b = th_read_file(lp, &len);
    int32_t hdr[2];
    memcpy(hdr, b, 8);
    cr_assert_eq(hdr[0], 5);
    cr_assert_eq(hdr[1], 300);
    cr_assert_eq(len, 8 + 4 * 5 + 4 * 5 * 300, "file size %zu", len);
    free(b);
}

Test(cli, stories260k_tells_the_lily_story) {
    SKIP_WITHOUT_FIXTURE(mp, "models/stories260K.gguf");
    char *out;
    cr_assert_eq(run(&out, "run -m %s -p '' --temp 0 -n 40 --no-stats 2>&1", mp), 0, "%s", out);
    cr_assert(strncmp(out, "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", 90) == 0,
              "got: %s", out);
    free(out);
}

Test(cli, vocab_fixture_tokenizes_through_the_cli) {
    SKIP_WITHOUT_FIXTURE(vp, "vocab/ggml-vocab-llama-spm.gguf");
    char *out;
    cr_assert_eq(run(&out, "tokenize -m %s 'Hello world' 2>&1", vp), 0, "%s", out);
    cr_assert_str_eq(out, "1 15043 3186\n");
    free(out);
}

Test(cli, chat_reads_turns_from_stdin) {
    const char *p = th_synth("llama", "q8_0", SMALL);
    char *out;
    int rc = run(&out, "chat -m %s -n 6 --seed 3 --system 'be brief' 2>&1 <<'EOF'\nhello\n/reset\nsecond turn\n/exit\nnot read\nEOF", p);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    cr_assert_eq(run(&out, "chat -m %s --chat-template zephyr -n 4 2>&1 </dev/null", p), 0, "%s", out);
    free(out);
}
