/* helpers.c — see helpers.h. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

const char *th_fixtures(void) {
    static char buf[4096];
    static int done;
    if (!done) {
        done = 1;
        const char *env = getenv("SLM_FIXTURES");
        const char *cands[] = { env, "../shared/fixtures", "../../shared/fixtures", NULL };
        for (int i = 0; i < 3; i++) {
            if (cands[i] && exists(cands[i])) {
                if (!realpath(cands[i], buf)) continue;
                return buf;
            }
        }
        buf[0] = 0;
    }
    return buf[0] ? buf : NULL;
}

const char *th_fixture(const char *rel) {
    static char bufs[8][4096];
    static int k;
    const char *d = th_fixtures();
    if (!d) return NULL;
    char *b = bufs[k++ & 7];
    snprintf(b, 4096, "%s/%s", d, rel);
    return exists(b) ? b : NULL;
}

const char *th_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/slm-test-%d-XXXXXX", (int)getpid());
        if (!mkdtemp(dir)) { perror("mkdtemp"); abort(); }
    }
    return dir;
}

const char *th_tmp(const char *name) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 512, "%s/%s", th_tmpdir(), name);
    return b;
}

char *th_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}

int th_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

const char *th_slm_bin(void) {
    const char *b = getenv("SLM_BIN");
    return b ? b : "./slm";
}

int th_run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (cap - n < 2) { cap *= 2; buf = realloc(buf, cap); }
    }
    if (buf) buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *th_synth(const char *arch, const char *type, const char *extra) {
    static char paths[16][512];
    static int k;
    char name[256];
    unsigned h = 5381;
    for (const char *c = extra ? extra : ""; *c; c++) h = h * 33 + (unsigned char)*c;
    snprintf(name, sizeof name, "synth-%s-%s-%08x.gguf", arch, type, h);
    char *p = paths[k++ & 15];
    snprintf(p, 512, "%s", th_tmp(name));
    if (exists(p)) return p;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s synth --arch %s --type %s %s -o %s 2>&1",
             th_slm_bin(), arch, type, extra ? extra : "", p);
    char *out = NULL;
    int rc = th_run(cmd, &out);
    if (rc != 0) {
        fprintf(stderr, "th_synth failed (%d): %s\n%s\n", rc, cmd, out ? out : "");
        free(out);
        return NULL;
    }
    free(out);
    return p;
}
