/*
 * gw_load.c — an HTTP/1.1 keep-alive load generator for bench/gateway.sh.
 *
 *   gw_load PORT PATH BODY CONNS SECONDS RATE
 *
 * CONNS threads, one keep-alive connection each, POST BODY to PATH. RATE 0:
 * each connection sends its next request as soon as the last answer is in
 * (closed loop: the maximum throughput). RATE > 0: an open loop at RATE
 * requests/s in total, each connection on its own fixed schedule, and the
 * latency counted from the scheduled send time, so a slow answer also
 * delays (and is charged to) the requests queued behind it (no coordinated
 * omission). Prints one JSON line: requests, errors, rps, p50/p90/p99/max
 * latency in ms.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int g_port, g_secs;
static double g_rate;
static const char *g_path, *g_body;
static int g_conns;

typedef struct worker { pthread_t th; int id; double *lat; long n, cap, errors; } worker;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { close(fd); return -1; }
    return fd;
}

/* Reads one response (headers + Content-Length body); its status or -1. */
static int read_response(int fd, char *buf, size_t cap) {
    size_t len = 0;
    char *hend = NULL;
    while (!hend) {
        ssize_t k = read(fd, buf + len, cap - 1 - len);
        if (k <= 0) return -1;
        len += (size_t)k;
        buf[len] = 0;
        hend = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t body = cl ? (size_t)atol(cl + 15) : 0, have = len - (size_t)(hend + 4 - buf);
    while (have < body) {
        ssize_t k = read(fd, buf, cap - 1);
        if (k <= 0) return -1;
        have += (size_t)k;
    }
    return status;
}

static void *run(void *arg) {
    worker *w = arg;
    char req[8192], buf[65536];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     g_path, strlen(g_body), g_body);
    int fd = dial();
    double t0 = now_s(), end = t0 + g_secs;
    double interval = g_rate > 0 ? g_conns / g_rate : 0;
    double next = t0 + interval * w->id / g_conns;
    while (now_s() < end) {
        double sched = now_s();
        if (interval > 0) {
            sched = next;
            next += interval;
            double d = sched - now_s();
            if (d > 0) { struct timespec ts = { (time_t)d, (long)((d - (double)(long)d) * 1e9) }; nanosleep(&ts, NULL); }
        }
        if (fd < 0 && (fd = dial()) < 0) { w->errors++; continue; }
        int st = -1;
        if (write(fd, req, (size_t)n) == n) st = read_response(fd, buf, sizeof buf);
        double lat = now_s() - sched;
        if (st != 200) {
            w->errors++;
            close(fd);
            fd = -1;
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, (size_t)w->cap * sizeof *w->lat);
        }
        w->lat[w->n++] = lat;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: gw_load PORT PATH BODY CONNS SECONDS RATE\n"); return 2; }
    g_port = atoi(argv[1]);
    g_path = argv[2];
    g_body = argv[3];
    g_conns = atoi(argv[4]);
    g_secs = atoi(argv[5]);
    g_rate = atof(argv[6]);
    worker *w = calloc((size_t)g_conns, sizeof *w);
    double t0 = now_s();
    for (int i = 0; i < g_conns; i++) { w[i].id = i; pthread_create(&w[i].th, NULL, run, &w[i]); }
    long total = 0, errors = 0;
    for (int i = 0; i < g_conns; i++) { pthread_join(w[i].th, NULL); total += w[i].n; errors += w[i].errors; }
    double el = now_s() - t0;
    double *all = malloc((size_t)(total ? total : 1) * sizeof *all);
    long k = 0;
    for (int i = 0; i < g_conns; i++) { memcpy(all + k, w[i].lat, (size_t)w[i].n * sizeof *all); k += w[i].n; free(w[i].lat); }
    qsort(all, (size_t)total, sizeof *all, cmp);
#define PCT(p) (total ? all[(long)((p) * (double)(total - 1))] * 1e3 : 0)
    printf("{\"requests\":%ld,\"errors\":%ld,\"rps\":%.0f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
           total, errors, total / el, PCT(0.5), PCT(0.9), PCT(0.99), total ? all[total - 1] * 1e3 : 0);
    free(all);
    free(w);
    return 0;
}
