/*
 * gw_test.h — what the gateway tests share (header-only: each test binary
 * links helpers.o alone): starting `slm gateway` on a config as a child
 * process, POSTing to it with libcurl while keeping the X-SLM-* headers, and
 * reading numbers and text back from an SQLite ledger.
 */
#ifndef SLM_TESTS_GW_TEST_H
#define SLM_TESTS_GW_TEST_H

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

typedef struct gwt_proc { pid_t pid; int port; char log[600]; } gwt_proc;

/* Writes yaml to th_tmp(name).yaml, starts `slm gateway -c` on it (with the
 * environment variable env_name = env_value when env_name is given; stdout
 * to /dev/null, stderr to the .yaml.log beside it) and waits for its port.
 * Fails the test if the gateway logs an error or exits first. */
static inline gwt_proc gwt_start(const char *name, const char *yaml, const char *env_name, const char *env_value) {
    gwt_proc g = { 0 };
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s.yaml", th_tmp(name));
    cr_assert_eq(th_write_file(cfg, yaml, strlen(yaml)), 0);
    snprintf(g.log, sizeof g.log, "%s.log", cfg);
    g.pid = fork();
    if (g.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a failed test must not leave it running */
        FILE *so = freopen("/dev/null", "w", stdout);
        (void)so;
        FILE *lf = freopen(g.log, "w", stderr);
        (void)lf;
        if (env_name) setenv(env_name, env_value, 1);
        execl(th_slm_bin(), th_slm_bin(), "gateway", "-c", cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && !g.port; i++) {
        usleep(20000);
        char *log = th_read_file(g.log, NULL);
        const char *p = log ? strstr(log, "listening on port ") : NULL;
        if (p) g.port = atoi(p + 18);
        if (log && strstr(log, "error")) cr_assert_fail("gateway failed: %s", log);
        int st;
        if (!g.port && waitpid(g.pid, &st, WNOHANG) == g.pid)
            cr_assert_fail("the gateway exited (%s %d) before listening: %s", WIFEXITED(st) ? "status" : "signal",
                           WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), log ? log : "");
        free(log);
    }
    cr_assert(g.port > 0, "the gateway did not start");
    return g;
}

static inline void gwt_stop(gwt_proc *g, int sig) {
    kill(g->pid, sig);
    int st;
    waitpid(g->pid, &st, 0);
}

/* A response: status (0 when the exchange failed), body (truncated to fit),
 * the X-SLM-Upstream, X-SLM-Request-Id and X-SLM-Cascade headers, and how
 * many pieces the body arrived in. */
typedef struct gwt_resp {
    long status;
    char body[16384]; size_t len;
    char upstream[64], id[64], cascade[64];
    int n_writes;
} gwt_resp;

static inline size_t gwt_on_write(char *p, size_t s, size_t n, void *arg) {
    gwt_resp *r = arg;
    size_t k = s * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = 0;
    r->n_writes++;
    return k;
}

static inline void gwt_header_value(const char *p, size_t k, const char *name, char *dst) {
    size_t nl = strlen(name);
    if (k <= nl || strncasecmp(p, name, nl)) return;
    size_t m = k - nl;
    while (m && (p[nl + m - 1] == '\r' || p[nl + m - 1] == '\n')) m--;
    snprintf(dst, 64, "%.*s", (int)m, p + nl);
}

static inline size_t gwt_on_header(char *p, size_t s, size_t n, void *arg) {
    gwt_resp *r = arg;
    gwt_header_value(p, s * n, "X-SLM-Upstream: ", r->upstream);
    gwt_header_value(p, s * n, "X-SLM-Request-Id: ", r->id);
    gwt_header_value(p, s * n, "X-SLM-Cascade: ", r->cascade);
    return s * n;
}

/* POSTs a JSON body to path on 127.0.0.1:port (body NULL: a GET), with a
 * bearer key and an X-SLM-Task header when given; 20 s at most. */
static inline gwt_resp gwt_post(int port, const char *path, const char *key, const char *task, const char *body) {
    gwt_resp r = { 0 };
    CURL *h = curl_easy_init();
    char url[256], auth[256], th[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hd = NULL;
    if (body) hd = curl_slist_append(hd, "Content-Type: application/json");
    if (key) { snprintf(auth, sizeof auth, "Authorization: Bearer %s", key); hd = curl_slist_append(hd, auth); }
    if (task) { snprintf(th, sizeof th, "X-SLM-Task: %s", task); hd = curl_slist_append(hd, th); }
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (hd) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, gwt_on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, gwt_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return r;
}

/* The first column of the first row of q on the SQLite file db; NAN when
 * there is none, it is NULL, or the query fails. */
static inline double gwt_sql_num(const char *db, const char *q) {
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    double v = NAN;
    if (sqlite3_open(db, &h) == SQLITE_OK && sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* The same as text (malloc'd), or NULL. */
static inline char *gwt_sql_text(const char *db, const char *q) {
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_open(db, &h) == SQLITE_OK && sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

#endif
