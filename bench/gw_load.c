/*
 * gw_load.c — an HTTP/1.1 keep-alive load generator for bench/gateway.sh,
 * single-threaded and event-driven (in the spirit of wrk2).
 *
 *   gw_load PORT PATH BODY CONNS SECONDS RATE
 *
 * Opens CONNS keep-alive connections to 127.0.0.1:PORT and POSTs BODY
 * (Content-Type: application/json) to PATH, one request in flight per
 * connection (no pipelining), for SECONDS seconds (fractions allowed).
 *
 *   RATE > 0  open loop: request i is due at t0 + i/RATE. It goes out on an
 *             idle connection at or after that moment; when none is idle it
 *             waits in a FIFO (the requests due but not sent), and its latency
 *             still counts from its scheduled time, so a slow answer is also
 *             charged to the requests queued behind it (no coordinated
 *             omission). Idle connections are used round-robin.
 *   RATE = 0  closed loop: every connection sends its next request as soon as
 *             its answer is in (the maximum throughput); latency counts from
 *             the actual send.
 *
 * Design: one thread, one epoll set, non-blocking sockets with TCP_NODELAY,
 * the request bytes built once. One timerfd (CLOCK_MONOTONIC, absolute, ns
 * resolution, timer slack lowered to 1 ns) wakes the loop at the next of:
 * the next scheduled send (only while a connection is idle: otherwise the
 * next answer frees one), a reconnect retry, the end of the run, the drain
 * deadline. A single thread keeps the generator to one core's worth of
 * scheduling at most on a small machine, where a thread per connection adds
 * its own context-switch noise to the tail it measures.
 *
 * All connections are opened (and connected) before the clock starts. After
 * SECONDS no new requests are scheduled; the requests already due (the FIFO)
 * and those in flight are given DRAIN_S more seconds to finish, the rest is
 * counted as unfinished. Answers are parsed fully: status line, headers, a
 * Content-Length, chunked or read-until-close body, 1xx interim answers
 * skipped. A connection the server closes (or resets) is reopened; a request
 * in flight on it counts as an I/O error. Non-2xx answers count as errors and,
 * like all errors, are left out of the percentiles. Every 2xx latency is kept
 * (memory grows with the requests sent) and sorted at the end.
 *
 * Prints one JSON line:
 *   requests      2xx answers (the latencies below are theirs)
 *   errors        non2xx + io_errors + connect_errors + unfinished
 *   rps           requests / (time from t0 to the end of the run, or to the last
 *                 answer if later, or to the drain deadline)
 *   p50_ms p90_ms p99_ms p999_ms max_ms mean_ms   latency percentiles
 *   sent non2xx io_errors connect_errors unfinished conns rate secs
 *
 * Build: cc -O2 -Wall -Wextra -o gw_load bench/gw_load.c   (Linux only)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define RBUF 65536                     /* per connection; a header block must fit */
#define DRAIN_NS (2 * NS)              /* after the run, to finish what is due */
#define CONNECT_WAIT_NS (5 * NS)       /* warm-up: to open all connections */
#define RETRY_NS (50 * 1000000LL)      /* after a failed connect */
#define MAXEV 64

enum cstate { C_CLOSED, C_CONNECTING, C_IDLE, C_BUSY };
enum pstate { P_HEAD, P_BODY, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER, P_UNTIL_EOF };

typedef struct conn {
    int fd;
    uint32_t gen;            /* bumped per socket: stale epoll events are ignored */
    enum cstate st;
    enum pstate ps;
    int queued;              /* in the idle ring */
    int want_out;            /* EPOLLOUT armed for a partial write */
    int close_after;         /* the answer said Connection: close (or HTTP/1.0) */
    int status;
    size_t woff;             /* request bytes written */
    uint64_t left;           /* body or chunk bytes still to come */
    int64_t sched;           /* when the request in flight was due */
    int64_t retry_at;        /* C_CLOSED: when to reconnect */
    char *rb;
    size_t roff, rlen;
} conn;

static struct sockaddr_in g_addr;
static char *g_req;
static size_t g_reqlen;
static int g_ep, g_tfd, g_nconns;
static conn *g_c;
static conn **g_ring;        /* idle connections, FIFO (round-robin use) */
static int g_ring_head, g_ring_n;
static int g_open, g_started, g_finished;
static double g_rate;
static int64_t g_t0, g_end, g_deadline;
static long g_total_sched, g_next;   /* open loop: requests 0..total-1, next to send */
static long g_inflight, g_sent, g_non2xx, g_ioerr, g_connerr, g_unfinished;
static int64_t *g_lat, g_last_done;
static long g_nlat, g_latcap;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t sched_of(long i) { return g_t0 + (int64_t)((double)i * 1e9 / g_rate); }

static void ep_set(conn *c, int op, uint32_t events) {
    struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)(c - g_c) | ((uint64_t)c->gen << 32) };
    if (epoll_ctl(g_ep, op, c->fd, &ev)) { perror("gw_load: epoll_ctl"); exit(1); }
}

static void push_idle(conn *c) {
    if (c->queued) return;
    g_ring[(g_ring_head + g_ring_n) % g_nconns] = c;
    g_ring_n++;
    c->queued = 1;
}

static conn *pop_idle(void) {
    while (g_ring_n) {
        conn *c = g_ring[g_ring_head];
        g_ring_head = (g_ring_head + 1) % g_nconns;
        g_ring_n--;
        c->queued = 0;
        if (c->st == C_IDLE) return c;      /* skip entries that went away since */
    }
    return NULL;
}

static void conn_open(conn *c, int64_t now) {
    c->gen++;
    c->roff = c->rlen = 0;
    c->want_out = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) goto fail;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) && errno != EINPROGRESS) goto fail;
    /* Connected or in progress: either way EPOLLOUT reports the outcome. */
    c->st = C_CONNECTING;
    ep_set(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT);
    return;
fail:
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->st = C_CLOSED;
    c->retry_at = now + RETRY_NS;
    g_connerr++;
}

/* Closes c (a request in flight on it is an I/O error when `error`) and
 * reopens it unless the run is over. */
static void conn_drop(conn *c, int64_t now, int error) {
    if (c->st == C_BUSY) {
        g_inflight--;
        if (error) g_ioerr++;
    }
    if (c->fd >= 0) close(c->fd);   /* also leaves the epoll set */
    c->fd = -1;
    c->st = C_CLOSED;
    c->retry_at = now;
    if (!g_finished) conn_open(c, now);
}

static void try_write(conn *c, int64_t now) {
    while (c->woff < g_reqlen) {
        ssize_t k = send(c->fd, g_req + c->woff, g_reqlen - c->woff, MSG_NOSIGNAL);
        if (k > 0) { c->woff += (size_t)k; continue; }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) { c->want_out = 1; ep_set(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT); }
            return;
        }
        conn_drop(c, now, 1);
        return;
    }
    if (c->want_out) { c->want_out = 0; ep_set(c, EPOLL_CTL_MOD, EPOLLIN); }
}

static void send_req(conn *c, int64_t sched, int64_t now) {
    c->sched = sched;
    c->woff = 0;
    c->st = C_BUSY;
    c->ps = P_HEAD;
    c->close_after = 0;
    c->status = 0;
    g_sent++;
    g_inflight++;
    try_write(c, now);
}

/* A connection just became usable (connected, or done with an answer). */
static void conn_idle(conn *c, int64_t now) {
    c->st = C_IDLE;
    if (!g_open) {
        if (g_started && now < g_end) send_req(c, now, now);
    } else {
        push_idle(c);
    }
}

/* Case-insensitive search for a token in a header value. */
static int has_token(const char *v, size_t n, const char *tok) {
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++)
        if (!strncasecmp(v + i, tok, t)) return 1;
    return 0;
}

/* Parses the header block rb[roff, roff+hlen): sets status, close_after and
 * the body mode. Returns -1 if malformed. */
static int parse_head(conn *c, size_t hlen) {
    const char *p = c->rb + c->roff, *e = p + hlen;
    if (hlen < 12 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ') return -1;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9') return -1;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    int http10 = p[7] == '0', keepalive = 0, chunked = 0, have_cl = 0;
    uint64_t cl = 0;
    const char *line = memchr(p, '\n', (size_t)(e - p));
    if (!line) return -1;
    for (line++; line < e;) {
        const char *eol = memchr(line, '\n', (size_t)(e - line));
        if (!eol) eol = e;
        const char *le = eol;
        if (le > line && le[-1] == '\r') le--;
        if (le == line) break;                      /* the empty line */
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon) return -1;
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t')) v++;
        size_t vlen = (size_t)(le - v);
        if (nlen == 14 && !strncasecmp(line, "Content-Length", 14)) {
            if (!vlen) return -1;
            uint64_t x = 0;
            size_t i = 0;
            for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++) {
                if (x > (UINT64_MAX - 9) / 10) return -1;
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            for (; i < vlen; i++)
                if (v[i] != ' ' && v[i] != '\t') return -1;
            if (have_cl && x != cl) return -1;
            cl = x;
            have_cl = 1;
        } else if (nlen == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
            if (has_token(v, vlen, "chunked")) chunked = 1;
        } else if (nlen == 10 && !strncasecmp(line, "Connection", 10)) {
            if (has_token(v, vlen, "close")) c->close_after = 1;
            if (has_token(v, vlen, "keep-alive")) keepalive = 1;
        }
        line = eol + 1;
    }
    if (http10 && !keepalive) c->close_after = 1;
    if ((c->status >= 100 && c->status < 200) || c->status == 204 || c->status == 304) {
        c->ps = P_HEAD;                             /* no body; 1xx: the real answer follows */
        c->left = 0;
    } else if (chunked) {
        c->ps = P_CHUNK_SIZE;
    } else if (have_cl) {
        c->ps = P_BODY;
        c->left = cl;
    } else {
        c->ps = P_UNTIL_EOF;
        c->close_after = 1;
    }
    return 0;
}

/* Advances the parser over the buffered bytes: 1 when an answer is complete,
 * 0 for more bytes, -1 on a malformed answer. */
static int parse(conn *c) {
    for (;;) {
        char *p = c->rb + c->roff;
        size_t n = c->rlen - c->roff;
        switch (c->ps) {
        case P_HEAD: {
            char *h = memmem(p, n, "\r\n\r\n", 4);
            if (!h) return c->rlen == RBUF && c->roff == 0 ? -1 : 0;
            size_t hlen = (size_t)(h - p) + 4;
            if (parse_head(c, hlen)) return -1;
            c->roff += hlen;
            if (c->status >= 100 && c->status < 200) { c->status = 0; continue; }
            if (c->ps == P_HEAD) return 1;          /* 204, 304 */
            if (c->ps == P_BODY && c->left == 0) return 1;
            continue;
        }
        case P_BODY:
        case P_CHUNK_DATA: {
            size_t take = n < c->left ? n : (size_t)c->left;
            c->roff += take;
            c->left -= take;
            if (c->left) return 0;
            if (c->ps == P_BODY) return 1;
            c->ps = P_CHUNK_CRLF;
            continue;
        }
        case P_CHUNK_CRLF:
            if (n < 2) return 0;
            if (p[0] != '\r' || p[1] != '\n') return -1;
            c->roff += 2;
            c->ps = P_CHUNK_SIZE;
            continue;
        case P_CHUNK_SIZE: {
            char *eol = memmem(p, n, "\r\n", 2);
            if (!eol) return c->rlen == RBUF && c->roff == 0 ? -1 : 0;
            uint64_t x = 0;
            int digits = 0;
            for (char *q = p; q < eol; q++) {
                int d = *q >= '0' && *q <= '9' ? *q - '0' : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
                      : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10 : -1;
                if (d < 0) break;                   /* ';' extensions, or spaces */
                if (++digits > 15) return -1;
                x = x * 16 + (uint64_t)d;
            }
            if (!digits) return -1;
            c->roff += (size_t)(eol - p) + 2;
            c->left = x;
            c->ps = x ? P_CHUNK_DATA : P_TRAILER;
            continue;
        }
        case P_TRAILER: {
            char *eol = memmem(p, n, "\r\n", 2);
            if (!eol) return c->rlen == RBUF && c->roff == 0 ? -1 : 0;
            c->roff += (size_t)(eol - p) + 2;
            if (eol == p) return 1;                 /* the empty line ends the answer */
            continue;
        }
        case P_UNTIL_EOF:
            c->roff = c->rlen;                      /* the close completes it */
            return 0;
        }
    }
}

static void complete(conn *c) {
    int64_t now = now_ns();
    g_inflight--;
    g_last_done = now;
    if (c->status >= 200 && c->status < 300) {
        if (g_nlat == g_latcap) {
            g_latcap = g_latcap ? g_latcap * 2 : 65536;
            g_lat = realloc(g_lat, (size_t)g_latcap * sizeof *g_lat);
            if (!g_lat) { fprintf(stderr, "gw_load: out of memory\n"); exit(1); }
        }
        g_lat[g_nlat++] = now - c->sched;
    } else {
        g_non2xx++;
    }
    c->st = C_IDLE;
    if (c->close_after || c->roff < c->rlen || c->ps == P_UNTIL_EOF) {
        conn_drop(c, now, 0);                       /* the server closes, or sent extra bytes */
        return;
    }
    c->roff = c->rlen = 0;
    conn_idle(c, now);
}

static void on_readable(conn *c) {
    if (c->roff) {
        memmove(c->rb, c->rb + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    ssize_t k = read(c->fd, c->rb + c->rlen, RBUF - c->rlen);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (k <= 0) {                                   /* closed or reset by the server */
        if (c->st == C_BUSY && c->ps == P_UNTIL_EOF) { complete(c); return; }
        conn_drop(c, now_ns(), 1);
        return;
    }
    if (c->st != C_BUSY) { conn_drop(c, now_ns(), 0); return; }   /* unasked-for bytes */
    c->rlen += (size_t)k;
    int r = parse(c);
    if (r < 0) conn_drop(c, now_ns(), 1);
    else if (r > 0) complete(c);
}

static void on_event(uint64_t data, uint32_t ev) {
    conn *c = &g_c[(uint32_t)data];
    if (c->gen != (uint32_t)(data >> 32) || c->fd < 0) return;  /* for a socket since closed */
    if (c->st == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
            close(c->fd);
            c->fd = -1;
            c->st = C_CLOSED;
            c->retry_at = now_ns() + RETRY_NS;
            g_connerr++;
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        ep_set(c, EPOLL_CTL_MOD, EPOLLIN);
        conn_idle(c, now_ns());
        return;
    }
    uint32_t gen = c->gen;
    if ((ev & EPOLLOUT) && c->st == C_BUSY && c->want_out) try_write(c, now_ns());
    if (c->gen != gen) return;                      /* dropped and reopened by the write */
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
}

static int64_t g_armed = -1;     /* the timer's expiry, -1 when none */

static void arm(int64_t at) {
    if (at == g_armed) return;
    struct itimerspec its = { .it_value = { (time_t)(at / NS), (long)(at % NS) } };
    if (timerfd_settime(g_tfd, TFD_TIMER_ABSTIME, &its, NULL)) { perror("gw_load: timerfd_settime"); exit(1); }
    g_armed = at;
}

/* Waits for events (or the timer) and handles them. */
static void poll_once(int timeout_ms) {
    struct epoll_event evs[MAXEV];
    int n = epoll_wait(g_ep, evs, MAXEV, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return;
        perror("gw_load: epoll_wait");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        if ((uint32_t)evs[i].data.u64 == (uint32_t)g_nconns) {
            uint64_t x;
            if (read(g_tfd, &x, sizeof x) < 0 && errno != EAGAIN) { perror("gw_load: timerfd"); exit(1); }
            g_armed = -1;                           /* fired: re-arm on the next pass */
            continue;
        }
        on_event(evs[i].data.u64, evs[i].events);
    }
}

static int cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: gw_load PORT PATH BODY CONNS SECONDS RATE   (RATE 0: flat out)\n");
        return 2;
    }
    int port = atoi(argv[1]);
    const char *path = argv[2], *body = argv[3];
    g_nconns = atoi(argv[4]);
    double secs = atof(argv[5]);
    g_rate = atof(argv[6]);
    if (port <= 0 || port > 65535 || g_nconns <= 0 || !(secs > 0) || !(g_rate >= 0)) {
        fprintf(stderr, "gw_load: bad arguments\n");
        return 2;
    }
    g_open = g_rate > 0;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);   /* wake on time, not up to 50 us late */

    size_t blen = strlen(body);
    g_req = malloc(strlen(path) + blen + 256);
    if (!g_req) return 1;
    g_reqlen = (size_t)sprintf(g_req,
                               "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n%s",
                               path, port, blen, body);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &g_addr.sin_addr);

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    g_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g_ep < 0 || g_tfd < 0) { perror("gw_load: epoll/timerfd"); return 1; }
    struct epoll_event tev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uint32_t)g_nconns };
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, g_tfd, &tev)) { perror("gw_load: epoll_ctl"); return 1; }
    g_c = calloc((size_t)g_nconns, sizeof *g_c);
    g_ring = calloc((size_t)g_nconns, sizeof *g_ring);
    if (!g_c || !g_ring) return 1;

    /* Warm-up: every connection open and connected before the clock starts. */
    int64_t now = now_ns();
    for (int i = 0; i < g_nconns; i++) {
        g_c[i].fd = -1;
        g_c[i].rb = malloc(RBUF);
        if (!g_c[i].rb) return 1;
        conn_open(&g_c[i], now);
    }
    for (int64_t until = now + CONNECT_WAIT_NS;;) {
        int connecting = 0, idle = 0;
        for (int i = 0; i < g_nconns; i++) {
            connecting += g_c[i].st == C_CONNECTING;
            idle += g_c[i].st == C_IDLE;
        }
        now = now_ns();
        if (!connecting || now >= until) {
            if (idle < g_nconns) fprintf(stderr, "gw_load: %d of %d connections open at the start\n", idle, g_nconns);
            break;
        }
        poll_once((int)((until - now) / 1000000) + 1);
    }

    g_t0 = now_ns();
    g_end = g_t0 + (int64_t)(secs * 1e9);
    g_deadline = g_end + DRAIN_NS;
    g_started = 1;
    if (g_open) {
        double n = secs * g_rate;                   /* requests 0..total-1 are due before the end */
        g_total_sched = (long)n;
        if ((double)g_total_sched < n) g_total_sched++;
    } else {
        for (int i = 0; i < g_nconns; i++)
            if (g_c[i].st == C_IDLE) send_req(&g_c[i], g_t0, g_t0);
    }

    for (;;) {
        now = now_ns();
        if (now >= g_end) {
            long due = g_open ? g_total_sched - g_next : 0;
            if (!due && !g_inflight) break;
            if (now >= g_deadline) { g_unfinished = due + g_inflight; break; }
        }
        int64_t wake = now < g_end ? g_end : g_deadline;
        for (int i = 0; i < g_nconns; i++) {
            conn *c = &g_c[i];
            if (c->st != C_CLOSED) continue;
            if (c->retry_at <= now) conn_open(c, now);
            else if (c->retry_at < wake) wake = c->retry_at;
        }
        if (g_open) {
            while (g_next < g_total_sched) {
                int64_t s = sched_of(g_next);
                if (s > now) break;
                conn *c = pop_idle();
                if (!c) break;                      /* stays due (FIFO) until an answer frees one */
                send_req(c, s, now);
                g_next++;
            }
            if (g_next < g_total_sched && g_ring_n) {
                int64_t s = sched_of(g_next);
                if (s < wake) wake = s;
            }
        }
        arm(wake);
        poll_once(-1);
    }
    int64_t done = g_inflight || g_unfinished ? now : g_last_done > g_end ? g_last_done : g_end;
    g_finished = 1;

    double el = (double)(done - g_t0) / 1e9;
    if (g_nlat) qsort(g_lat, (size_t)g_nlat, sizeof *g_lat, cmp);
    long n = g_nlat;
    double sum = 0;
    for (long i = 0; i < n; i++) sum += (double)g_lat[i];
#define PCT(p) (n ? (double)g_lat[(long)((p) * (double)(n - 1))] / 1e6 : 0)
    printf("{\"requests\":%ld,\"errors\":%ld,\"rps\":%.0f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,\"sent\":%ld,\"non2xx\":%ld,\"io_errors\":%ld,"
           "\"connect_errors\":%ld,\"unfinished\":%ld,\"conns\":%d,\"rate\":%g,\"secs\":%g}\n",
           n, g_non2xx + g_ioerr + g_connerr + g_unfinished, el > 0 ? (double)n / el : 0, PCT(0.5), PCT(0.9),
           PCT(0.99), PCT(0.999), n ? (double)g_lat[n - 1] / 1e6 : 0, n ? sum / (double)n / 1e6 : 0, g_sent,
           g_non2xx, g_ioerr, g_connerr, g_unfinished, g_nconns, g_rate, secs);
    fflush(stdout);
    for (int i = 0; i < g_nconns; i++) {
        if (g_c[i].fd >= 0) close(g_c[i].fd);
        free(g_c[i].rb);
    }
    free(g_c);
    free(g_ring);
    free(g_lat);
    free(g_req);
    close(g_tfd);
    close(g_ep);
    return 0;
}
