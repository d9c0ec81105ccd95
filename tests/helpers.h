/*
 * helpers.h — shared test utilities: where the fixtures are, temp files,
 * running the slm binary, reading logits files.
 */
#ifndef SLM_TESTS_HELPERS_H
#define SLM_TESTS_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* The fixtures folder (../shared/fixtures, or $SLM_FIXTURES), or NULL when
 * absent. Tests that need it call SKIP_WITHOUT_FIXTURES() first. */
const char *th_fixtures(void);
/* th_fixture("models/stories260K.gguf") -> static buffer with a full path,
 * or NULL when the fixtures folder or that file is absent. */
const char *th_fixture(const char *rel);

#define SKIP_WITHOUT_FIXTURE(var, rel)                                          \
    const char *var = th_fixture(rel);                                          \
    if (!var) {                                                                 \
        cr_skip_test("fixture %s absent (../shared/fixtures not found): skipped", rel); \
        return;                                                                 \
    }

/* A fresh temp directory for this process (created once); th_tmp("x.gguf")
 * returns a path inside it (a static rotating buffer). */
const char *th_tmpdir(void);
const char *th_tmp(const char *name);

/* Reads a whole file (caller frees with free()); NULL on error. */
char *th_read_file(const char *path, size_t *len);
int   th_write_file(const char *path, const void *data, size_t len);

/* Path of the slm binary under test ($SLM_BIN, default ./slm). */
const char *th_slm_bin(void);
/* Runs a shell command, captures stdout (and stderr if merge) into a
 * malloc'd string; returns the exit status (or -1). */
int th_run(const char *cmd, char **out);

/* Makes (once per process, cached in th_tmpdir) a synth model via the CLI:
 * th_synth("llama", "f32", "--dim 64 --layers 2 …") -> path. */
const char *th_synth(const char *arch, const char *type, const char *extra);

#endif
