/*
 * cli.h — shared pieces of the command-line front end. Only CLI code prints
 * and exits; every subcommand is `int cmd_NAME(int argc, char **argv)`
 * returning the process exit status (0 ok, 1 error, 2 usage).
 */
#ifndef SLM_CLI_CLI_H
#define SLM_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include "slm/slm.h"

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_gateway(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_kld(int argc, char **argv);
int cmd_quant_report(int argc, char **argv);

/* Prints "slm: error: …" (one line) to stderr; returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a usage error and the hint to run `slm help CMD`; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string must be a number in range. */
bool cli_parse_i32(const char *s, int32_t lo, int32_t hi, int32_t *out);
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_f32(const char *s, float lo, float hi, float *out);

/* Loads a model or prints the error; NULL on failure. */
slm_model *cli_load_model(const char *path, bool vocab_only);
/* Reads a whole file (for -f); NULL and a printed error on failure.
 * Caller frees with slm_free. */
char *cli_read_file(const char *path, size_t *len);
/* Tokenizes text with the vocabulary; prints errors. Caller frees *out. */
int cli_tokenize(const slm_vocab *v, const char *text, bool add_bos, bool parse_special, int32_t **out, int32_t *n);

#endif
