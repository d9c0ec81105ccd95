/*
 * score_ext.c — the scorers that ask something outside slm: judge (an LLM
 * through the runner's callback) and cmd (an external command). Options and
 * semantics are in score.h.
 *
 * judge builds one prompt from rubric, input, expected and output, hands it
 * to the case's judge callback and reads a score from the reply: a "score"
 * keyword followed by a number ("Score: 8", "**Score:** 8/10",
 * {"score": 8}), else the first number in the reply.
 *
 * cmd starts `/bin/sh -c COMMAND` with posix_spawn (thread-safe; no code
 * runs between fork and exec) in its own process group, writes the case as
 * one JSON line to its stdin (a socket, written with MSG_NOSIGNAL so a
 * command that never reads cannot raise SIGPIPE in slm), and reads stdout
 * and stderr with poll until both close and the child exits, or the
 * deadline passes: then the whole process group is killed with SIGKILL and
 * reaped. Every descriptor is close-on-exec, so commands run concurrently
 * from several threads never inherit each other's pipes. Output beyond a cap
 * is read and dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eval/score_internal.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/json.h"

extern char **environ;

#define STDOUT_CAP  (64 * 1024)   /* bytes of a command's stdout kept */
#define STDERR_CAP  1024          /* bytes of its stderr kept (for the error) */
#define QUOTE_MAX   160

static const char *k_default_rubric =
    "Is the answer correct, complete and faithful to the input and the reference answer?";

/* ---- judge ---------------------------------------------------------------- */

static int judge_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    int rc;
    s->num[0] = 7;
    s->num[1] = 10;
    if ((rc = slm_eval_opt_str(s, opts, "target", &s->str[0], err))) return rc;
    if ((rc = slm_eval_opt_str(s, opts, "rubric", &s->str[1], err))) return rc;
    if ((rc = slm_eval_opt_num(s, opts, "pass_score", &s->num[0], err))) return rc;
    if ((rc = slm_eval_opt_num(s, opts, "scale", &s->num[1], err))) return rc;
    if (!s->str[0]) return slm_err_set(err, SLM_EINVAL, "scorer 'judge': option 'target' is required");
    if (!(s->num[1] > 0)) return slm_err_set(err, SLM_EINVAL, "scorer 'judge': scale must be > 0");
    if (s->num[0] < 0 || s->num[0] > s->num[1])
        return slm_err_set(err, SLM_EINVAL, "scorer 'judge': pass_score must be within 0..scale");
    return 0;
}

/* The judge prompt; caller frees (slm_free). NULL when out of memory. */
static char *judge_prompt(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out) {
    bool oom = false;
    char *exp = slm_eval_expected_text(c->expected, &oom);
    char *exp_json = NULL;
    if (!exp && !oom && c->expected && !cJSON_IsNull(c->expected)) {
        char *t = cJSON_Print(c->expected);
        if (t) { exp_json = slm_strdup(t); cJSON_free(t); }
        if (!exp_json) oom = true;
    }
    if (oom) { slm_free(exp); return NULL; }
    const char *e = exp ? exp : exp_json;
    double scale = s->num[1];
    const char *fmt =
        "You are grading the answer of an AI model.\n\n"
        "Rubric:\n%s\n\n"
        "Input given to the model:\n%s\n\n"
        "%s%s%s"
        "Model answer:\n%s\n\n"
        "Grade the model answer by the rubric on a scale from 0 to %g. "
        "Reply with the line \"Score: N\" first, then one short paragraph of reasons.\n";
    const char *rubric = s->str[1] ? s->str[1] : k_default_rubric;
    const char *input = c->input ? c->input : "(not given)";
    const char *ref_head = e ? "Reference answer:\n" : "", *ref_tail = e ? "\n\n" : "";
    int n = snprintf(NULL, 0, fmt, rubric, input, ref_head, e ? e : "", ref_tail, out, scale);
    char *p = n >= 0 ? slm_malloc((size_t)n + 1) : NULL;
    if (p) snprintf(p, (size_t)n + 1, fmt, rubric, input, ref_head, e ? e : "", ref_tail, out, scale);
    slm_free(exp);
    slm_free(exp_json);
    return p;
}

/* Reads the score out of a judge's reply; false when there is none. */
static bool judge_parse(const char *reply, double *score) {
    for (const char *p = reply; (p = strcasestr(p, "score")) != NULL; p += 5) {
        const char *q = p + 5;
        while (*q == ' ' || *q == '"' || *q == '\'' || *q == '*' || *q == ':' || *q == '=' || *q == '\t') q++;
        if ((*q >= '0' && *q <= '9') || ((*q == '-' || *q == '+' || *q == '.') && q[1] >= '0' && q[1] <= '9')) {
            char *end;
            double v = strtod(q, &end);
            if (end != q) { *score = v; return true; }
        }
    }
    return slm_eval_first_number(reply, score, NULL);
}

static int judge_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                       slm_eval_score *res) {
    if (!c->judge) return slm_eval_score_fail(res, SLM_EINVAL, "judge: no judge callback for target '%s'", s->str[0]);
    char *prompt = judge_prompt(s, c, out);
    if (!prompt) return SLM_ENOMEM;
    char *reply = NULL;
    slm_err e = { 0 };
    int rc = c->judge(c->judge_ud, s->str[0], prompt, &reply, &e);
    slm_free(prompt);
    if (rc || !reply) {
        slm_free(reply);
        if (rc == SLM_ENOMEM) return rc;
        return slm_eval_score_fail(res, rc ? rc : SLM_EINVAL, "judge '%s' failed: %s", s->str[0],
                                   e.msg[0] ? e.msg : "no reply");
    }
    double v;
    int ret;
    /* The first line of the reply, quoted in the detail. */
    size_t line = strcspn(reply, "\n");
    if (line > QUOTE_MAX) line = QUOTE_MAX;
    while (line > 0 && ((unsigned char)reply[line] & 0xC0) == 0x80) line--;
    if (!judge_parse(reply, &v) || !isfinite(v)) {
        ret = slm_eval_score_fail(res, SLM_EFORMAT, "judge reply has no score: \"%.*s\"", (int)line, reply);
    } else if (v < 0 || v > s->num[1]) {
        ret = slm_eval_score_fail(res, SLM_ERANGE, "judge score %g is outside 0..%g: \"%.*s\"", v, s->num[1],
                                  (int)line, reply);
    } else {
        res->score = v / s->num[1];
        res->pass = v >= s->num[0];
        ret = slm_eval_score_detail(res, "judge %g/%g: %.*s", v, s->num[1], (int)line, reply);
    }
    slm_free(reply);
    return ret;
}

/* ---- cmd ------------------------------------------------------------------ */

static int cmd_init(slm_eval_scorer *s, const cJSON *opts, slm_err *err) {
    int rc;
    s->num[0] = 30;
    s->num[1] = 0.5;
    if ((rc = slm_eval_opt_str(s, opts, "command", &s->str[0], err))) return rc;
    if ((rc = slm_eval_opt_str(s, opts, "cwd", &s->str[1], err))) return rc;
    if ((rc = slm_eval_opt_num(s, opts, "timeout", &s->num[0], err))) return rc;
    if ((rc = slm_eval_opt_num(s, opts, "threshold", &s->num[1], err))) return rc;
    if (!s->str[0] || !s->str[0][0]) return slm_err_set(err, SLM_EINVAL, "scorer 'cmd': option 'command' is required");
    if (!(s->num[0] > 0) || s->num[0] > 86400)
        return slm_err_set(err, SLM_EINVAL, "scorer 'cmd': timeout must be within (0, 86400] seconds");
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct cap_buf { char *p; size_t len, cap; } cap_buf;   /* bounded capture */

/* Reads what fd has; returns false at EOF or on a hard error. */
static bool drain(int fd, cap_buf *b) {
    char tmp[4096];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r > 0) {
            size_t keep = b->len < b->cap ? b->cap - b->len : 0;
            if (keep > (size_t)r) keep = (size_t)r;
            memcpy(b->p + b->len, tmp, keep);
            b->len += keep;
            b->p[b->len] = 0;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        return false;
    }
}

typedef struct run_result {
    bool   timed_out;
    int    status;              /* waitpid status                      */
    char   out[STDOUT_CAP + 1]; /* stdout (NUL-terminated, truncated)  */
    char   errtxt[STDERR_CAP + 1];
} run_result;

/* Runs the command with input on stdin. Returns 0 (r filled) or a negative
 * code with msg filled (spawn failed, out of descriptors). */
static int run_cmd(const slm_eval_scorer *s, const char *input, size_t in_len, run_result *r,
                   char *msg, size_t msg_cap) {
    int sv[2] = { -1, -1 }, po[2] = { -1, -1 }, pe[2] = { -1, -1 };
    int rc = SLM_EIO;
    bool fa_ok = false, at_ok = false;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    pid_t pid = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
        snprintf(msg, msg_cap, "cannot make pipes: %s", strerror(errno));
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa)) goto spawn_fail;
    fa_ok = true;
    if (posix_spawnattr_init(&at)) goto spawn_fail;
    at_ok = true;
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    if (posix_spawn_file_actions_adddup2(&fa, sv[1], 0) || posix_spawn_file_actions_adddup2(&fa, po[1], 1) ||
        posix_spawn_file_actions_adddup2(&fa, pe[1], 2) ||
        (s->str[1] && posix_spawn_file_actions_addchdir_np(&fa, s->str[1])) ||
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) ||
        posix_spawnattr_setpgroup(&at, 0) || posix_spawnattr_setsigmask(&at, &none) ||
        posix_spawnattr_setsigdefault(&at, &def))
        goto spawn_fail;
    char *argv[] = { "sh", "-c", s->str[0], NULL };
    int se = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    if (se) {
        pid = -1;
        snprintf(msg, msg_cap, "cannot start /bin/sh%s%s: %s", s->str[1] ? " in " : "", s->str[1] ? s->str[1] : "",
                 strerror(se));
        goto done;
    }
    close(sv[1]); sv[1] = -1;
    close(po[1]); po[1] = -1;
    close(pe[1]); pe[1] = -1;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);

    cap_buf bo = { r->out, 0, STDOUT_CAP }, be = { r->errtxt, 0, STDERR_CAP };
    r->out[0] = r->errtxt[0] = 0;
    size_t sent = 0;
    double deadline = now_s() + s->num[0];
    bool exited = false;
    for (;;) {
        if (sv[0] >= 0 && sent == in_len) { close(sv[0]); sv[0] = -1; }   /* EOF for the command */
        struct pollfd fds[3];
        int nf = 0, i_in = -1, i_out = -1, i_err = -1;
        if (sv[0] >= 0) { i_in = nf; fds[nf++] = (struct pollfd){ sv[0], POLLOUT, 0 }; }
        if (po[0] >= 0) { i_out = nf; fds[nf++] = (struct pollfd){ po[0], POLLIN, 0 }; }
        if (pe[0] >= 0) { i_err = nf; fds[nf++] = (struct pollfd){ pe[0], POLLIN, 0 }; }
        if (nf == 0) {                       /* outputs closed: wait for the exit */
            pid_t w = waitpid(pid, &r->status, WNOHANG);
            if (w == pid) { exited = true; break; }
            if (w < 0 && errno != EINTR) { r->status = 0; exited = true; break; }
        }
        double left = deadline - now_s();
        if (left <= 0) break;
        int ms = nf ? (int)(left * 1000) + 1 : 5;
        if (nf == 0) {
            struct timespec ts = { 0, 5 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        int pr = poll(fds, (nfds_t)nf, ms);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        if (i_in >= 0 && fds[i_in].revents) {
            ssize_t w = send(sv[0], input + sent, in_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                close(sv[0]);                /* the command stopped reading: fine */
                sv[0] = -1;
                sent = in_len;
            }
        }
        if (i_out >= 0 && fds[i_out].revents && !drain(po[0], &bo)) { close(po[0]); po[0] = -1; }
        if (i_err >= 0 && fds[i_err].revents && !drain(pe[0], &be)) { close(pe[0]); pe[0] = -1; }
    }
    if (!exited) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {}
        r->timed_out = true;
    }
    rc = 0;
    goto done;
spawn_fail:
    snprintf(msg, msg_cap, "cannot set up the command: %s", strerror(errno));
done:
    if (fa_ok) posix_spawn_file_actions_destroy(&fa);
    if (at_ok) posix_spawnattr_destroy(&at);
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0) close(sv[i]);
        if (po[i] >= 0) close(po[i]);
        if (pe[i] >= 0) close(pe[i]);
    }
    return rc;
}

/* The case as one JSON line; caller frees. NULL when out of memory. */
static char *cmd_stdin(const slm_eval_case_view *c, const char *out, size_t *len) {
    slm_jw w = { 0 };
    slm_jw_obj_open(&w);
    slm_jw_key(&w, "id");
    slm_jw_str(&w, c->id);
    slm_jw_key(&w, "input");
    slm_jw_str(&w, c->input);
    slm_jw_key(&w, "expected");
    char *ej = c->expected ? cJSON_PrintUnformatted(c->expected) : NULL;
    if (ej) slm_jw_raw(&w, ej, strlen(ej));
    else if (c->expected) w.oom = true;
    else slm_jw_null(&w);
    cJSON_free(ej);
    slm_jw_key(&w, "output");
    slm_jw_str(&w, out);
    slm_jw_obj_close(&w);
    slm_jw_text(&w, "\n", 1);
    char *p = slm_jw_take(&w, len);
    slm_jw_free(&w);
    return p;
}

/* Quoted excerpt of a command's text for messages: first line, bounded. */
static int excerpt(const char *t) {
    size_t n = strcspn(t, "\n");
    if (n > QUOTE_MAX) n = QUOTE_MAX;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80) n--;
    return (int)n;
}

static int cmd_score(const slm_eval_scorer *s, const slm_eval_case_view *c, const char *out,
                     slm_eval_score *res) {
    size_t in_len;
    char *in = cmd_stdin(c, out, &in_len);
    if (!in) return SLM_ENOMEM;
    run_result *r = slm_calloc(1, sizeof *r);
    if (!r) { slm_free(in); return SLM_ENOMEM; }
    char msg[256] = "";
    int rc = run_cmd(s, in, in_len, r, msg, sizeof msg);
    slm_free(in);
    int ret = 0;
    const char *err_line = r->errtxt;
    while (*err_line == ' ' || *err_line == '\n') err_line++;
    if (rc) {
        ret = slm_eval_score_fail(res, rc, "cmd: %s", msg);
    } else if (r->timed_out) {
        ret = slm_eval_score_fail(res, SLM_ETIMEDOUT, "cmd: timed out after %g s (killed)", s->num[0]);
    } else if (WIFSIGNALED(r->status)) {
        ret = slm_eval_score_fail(res, SLM_EIO, "cmd: killed by signal %d", WTERMSIG(r->status));
    } else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) != 0) {
        ret = slm_eval_score_fail(res, SLM_EIO, "cmd: exit status %d%s%.*s", WEXITSTATUS(r->status),
                                  *err_line ? ": " : "", excerpt(err_line), err_line);
    } else {
        cJSON *j = cJSON_ParseWithOpts(r->out, NULL, true);   /* nothing but white space after */
        const cJSON *sc = NULL, *ps = NULL, *dt = NULL;
        if (cJSON_IsObject(j)) {
            sc = cJSON_GetObjectItemCaseSensitive(j, "score");
            ps = cJSON_GetObjectItemCaseSensitive(j, "pass");
            dt = cJSON_GetObjectItemCaseSensitive(j, "detail");
        } else if (cJSON_IsNumber(j)) sc = j;
        else if (cJSON_IsBool(j)) ps = j;
        bool ok = (sc || ps) && (!sc || (cJSON_IsNumber(sc) && sc->valuedouble >= 0 && sc->valuedouble <= 1)) &&
                  (!ps || cJSON_IsBool(ps)) && (!dt || cJSON_IsString(dt) || cJSON_IsNull(dt));
        if (!ok) {
            const char *o = r->out;
            while (*o == ' ' || *o == '\n') o++;
            ret = slm_eval_score_fail(res, SLM_EFORMAT, "cmd: expected a score in 0..1 or {\"score\",\"pass\"}, "
                                      "got \"%.*s\"", excerpt(o), o);
        } else {
            res->score = sc ? sc->valuedouble : (cJSON_IsTrue(ps) ? 1 : 0);
            res->pass = ps ? cJSON_IsTrue(ps) : res->score >= s->num[1];
            if (cJSON_IsString(dt)) ret = slm_eval_score_detail(res, "%.*s", excerpt(dt->valuestring), dt->valuestring);
        }
        cJSON_Delete(j);
    }
    slm_free(r);
    return ret;
}

const scorer_ops slm_eval_ops_judge = {
    "judge", "an LLM judge target grades the output by a rubric (Score: N of scale)",
    (const char *const[]){ "target", "rubric", "pass_score", "scale", NULL }, SLM_EVAL_AGG_SCORE,
    judge_init, judge_score, NULL,
};
const scorer_ops slm_eval_ops_cmd = {
    "cmd", "an external command reads the case as JSON on stdin and prints a score",
    (const char *const[]){ "command", "timeout", "threshold", "cwd", NULL }, SLM_EVAL_AGG_SCORE,
    cmd_init, cmd_score, NULL,
};
