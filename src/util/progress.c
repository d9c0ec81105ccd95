/*
 * progress.c — the progress line (see progress.h). Rate and ETA come from
 * the whole elapsed time since begin (simple and stable for steady jobs).
 */
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double slm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void slm_progress_fmt_time(double s, char *buf, int n) {
    if (!(s >= 0) || s > 360000) {
        snprintf(buf, (size_t)n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, (size_t)n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, (size_t)n, "%ld:%02ld", t / 60, t % 60);
}

double slm_progress_eta(const slm_progress *p) {
    if (p->total <= 0 || p->done <= 0) return -1;
    double el = slm_now() - p->t_start;
    if (p->done >= p->total) return 0;
    return el / (double)p->done * (double)(p->total - p->done);
}

static void draw(slm_progress *p, bool force) {
    if (!p->enabled) return;
    double now = slm_now();
    if (!force && now - p->t_last < 0.1) return;
    p->t_last = now;
    double el = now - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char line[256], eta[16], elapsed[16];
    slm_progress_fmt_time(el, elapsed, sizeof elapsed);
    int k;
    if (p->total > 0) {
        int width = 24, fill = (int)((double)width * (double)p->done / (double)p->total);
        if (fill > width) fill = width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        slm_progress_fmt_time(slm_progress_eta(p), eta, sizeof eta);
        k = snprintf(line, sizeof line, "%s [%s] %lld/%lld %3.0f%% %.1f %s/s ETA %s", p->label, bar,
                     (long long)p->done, (long long)p->total, 100.0 * (double)p->done / (double)p->total, rate,
                     p->unit ? p->unit : "it", eta);
    } else {
        k = snprintf(line, sizeof line, "%s %lld %.1f %s/s %s", p->label, (long long)p->done, rate,
                     p->unit ? p->unit : "it", elapsed);
    }
    (void)k;
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    p->drawn = true;
}

void slm_progress_begin(slm_progress *p, const char *label, const char *unit, int64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->unit = unit;
    p->total = total > 0 ? total : 0;
    p->t_start = slm_now();
    const char *env = getenv("SLM_PROGRESS");
    if (env && *env)
        p->enabled = env[0] == '1';
    else
        p->enabled = isatty(STDERR_FILENO);
    draw(p, true);
}

void slm_progress_add(slm_progress *p, int64_t n) {
    p->done += n;
    draw(p, p->total > 0 && p->done >= p->total);
}

void slm_progress_set(slm_progress *p, int64_t done) {
    p->done = done;
    draw(p, p->total > 0 && p->done >= p->total);
}

void slm_progress_label(slm_progress *p, const char *label) {
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
}

void slm_progress_end(slm_progress *p) {
    if (p->enabled && p->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    p->drawn = false;
}
