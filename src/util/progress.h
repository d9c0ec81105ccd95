/*
 * progress.h — progress with an ETA for long jobs (quantize, perplexity,
 * kld, imatrix, eval, finetune).
 *
 * On a terminal (stderr is a tty) it redraws one line at most ~10 times a
 * second: "label  [#####.....]  42/100  42%  12.3 it/s  ETA 0:05". When
 * stderr is not a terminal it prints nothing, so scripts and CI logs stay
 * machine-readable (the command's own result goes to stdout). SLM_PROGRESS=1
 * forces the bar on, SLM_PROGRESS=0 forces it off.
 *
 * Not thread-safe: one owner updates it (workers report through the owner).
 */
#ifndef SLM_UTIL_PROGRESS_H
#define SLM_UTIL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct slm_progress {
    char     label[48];   /* printed first                                    */
    const char *unit;     /* "tok", "tensors", "cases"… for the rate           */
    int64_t  total;       /* units of work; 0 = unknown (no ETA, no bar)       */
    int64_t  done;        /* units finished                                    */
    double   t_start;     /* monotonic seconds at begin                        */
    double   t_last;      /* last redraw                                       */
    bool     enabled;     /* drawing (terminal or SLM_PROGRESS=1)              */
    bool     drawn;       /* a line is on screen (cleared by _end)             */
} slm_progress;

/* Starts a progress line; total may be 0 when unknown. */
void slm_progress_begin(slm_progress *p, const char *label, const char *unit, int64_t total);
/* Adds n finished units and redraws if due. */
void slm_progress_add(slm_progress *p, int64_t n);
/* Sets the finished count (absolute) and redraws if due. */
void slm_progress_set(slm_progress *p, int64_t done);
/* Replaces the label (e.g. the tensor being worked on). */
void slm_progress_label(slm_progress *p, const char *label);
/* Clears the line (terminal) so the caller's final output starts clean. */
void slm_progress_end(slm_progress *p);
/* Seconds left at the current rate; negative when unknown. */
double slm_progress_eta(const slm_progress *p);
/* Formats seconds as "1:02:03" or "2:03" into buf (>= 16 bytes). */
void slm_progress_fmt_time(double s, char *buf, int n);

/* Monotonic clock in seconds. */
double slm_now(void);

#endif
