/*
 * beuss-loadgen: a load generator for beuss and its peers (redis-server,
 * nats-server, beanstalkd), fast enough not to be the bottleneck.
 *
 * Why C and why this shape: a JavaScript generator that encodes each request
 * tops out near 1.3-2.4 M msg/s on a 2-core machine, so it measures itself.
 * Here every request is encoded before the clock starts, each connection has
 * a writer thread (big write()/writev() calls, a window of requests in
 * flight) and a reader thread (big read() calls into a streaming reply
 * parser), and every reply is checked: acknowledgements are counted, and the
 * payload of every consumed message carries "PPPSSSSSSSSSSSSS" (producer id,
 * sequence number) so a missing, duplicated or out-of-order message is found.
 *
 * Modes:
 *   produce  P connections put N messages (N/P each), window W per connection
 *   consume  C connections take N messages back (GET/RPOP/reserve+delete, or
 *            push with --consume push: beuss ON with credit W)
 *   e2e      P producers and C consumers at once; a producer keeps at most W
 *            of its messages unconsumed; latency per message is measured from
 *            the time it was written (or, with --rate, from the time it was
 *            meant to be written: no coordinated omission)
 *   rtt      one connection, one request at a time (window 1): latency
 *
 * Output: one JSON object on stdout. Exit status 0 when every reply was as
 * expected, 1 when the run completed with verification errors or timed out,
 * 2 on a usage or connection error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum proto { P_BEUSS, P_REDIS, P_NATS, P_BEANSTALK };
enum mode { M_PRODUCE, M_CONSUME, M_E2E, M_RTT, M_FANOUT };
enum ckind { C_GET, C_PUSH, C_BLOCK };
enum role { R_PRODUCER, R_CONSUMER };
enum ev { EV_NONE, EV_ACK, EV_MSG, EV_EMPTY, EV_ERR, EV_PONG, EV_PING, EV_INFO, EV_DEL, EV_SKIP };

/* SEQ_DIGITS is the size of the "PPPSSSSSSSSSSSSS" stamp at the head of every
 * payload: 3 digits of producer id, 13 of sequence number. */
#define SEQ_DIGITS 16
#define LINE_MAX_LEN 4096
/* Bytes per write() for small messages: large enough that a syscall carries
 * thousands of requests, small enough to keep the pipe flowing. */
#define WRITE_CHUNK (256 * 1024)
#define READ_BUF (1024 * 1024)
/* A write carries at most a quarter of the window, so several segments are in
 * flight and the server works on one while the next arrives. */
#define WINDOW_PARTS 4
/* Messages above this size are sent with writev() from a shared body rather
 * than pre-encoded one by one (1 MiB payloads x N would not fit). */
#define LARGE_THRESHOLD (64 * 1024)

static struct {
    int proto, mode, ckind;
    const char *host;
    int port;
    uint64_t n;
    size_t size;
    uint64_t window;
    int producers, consumers;
    int ack; /* beuss push: take under a lease (ON ... LEASE) and ACK each message */
    const char *queue;
    double rate;
    double timeout;
    int server_pid;
    int nodelay;
} opt = {.proto = P_BEUSS, .mode = M_PRODUCE, .ckind = C_GET, .host = "127.0.0.1",
         .port = 6552, .n = 100000, .size = 64, .window = 1024, .producers = 1,
         .consumers = 1, .queue = "bench", .rate = 0, .timeout = 60, .server_pid = 0,
         .nodelay = 1};

static void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "beuss-loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(code);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the reply parser: a streaming state machine over any split ---------- */

typedef struct event {
    int kind;
    const char *line; /* the header line, without its line end */
    size_t linelen;
    uint64_t id;      /* beanstalkd job id */
    uint64_t bodylen;
    char head[SEQ_DIGITS]; /* first bytes of the body */
    size_t headlen;
} event;

typedef struct parser {
    int proto;
    int state; /* 0: line, 1: body, 2: trailer */
    char line[LINE_MAX_LEN];
    size_t linelen;
    uint64_t body_left;
    int trail_left;
    int arr_left; /* RESP: bulk strings left in the current array */
    event pending; /* the event completed when the body ends */
    char err[200];
} parser;

static int starts(const char *s, size_t n, const char *p) {
    size_t k = strlen(p);
    return n >= k && memcmp(s, p, k) == 0;
}

/* parse_u64 returns the number at s (decimal digits), advancing *pos past it
 * and any spaces before it; -1 on no digits. */
static int64_t parse_num(const char *s, size_t n, size_t *pos) {
    size_t i = *pos;
    while (i < n && s[i] == ' ') i++;
    if (i >= n || s[i] < '0' || s[i] > '9') return -1;
    int64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
    *pos = i;
    return v;
}

/* last_num returns the last space-separated number on the line, or -1. */
static int64_t last_num(const char *s, size_t n) {
    size_t i = n;
    while (i > 0 && s[i - 1] == ' ') i--;
    size_t end = i;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') i--;
    if (i == end) return -1;
    size_t p = i;
    return parse_num(s, end, &p);
}

/* classify_line fills ev from a header line; returns the body length to read
 * after it (-1: none). */
static int64_t classify_line(parser *p, const char *s, size_t n, event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->line = s;
    ev->linelen = n;
    ev->kind = EV_ERR;
    size_t pos;
    int64_t v;
    switch (p->proto) {
    case P_BEUSS:
        if (starts(s, n, "OK")) ev->kind = EV_ACK;
        else if (opt.ack && starts(s, n, "PUSH ")) {
            /* PUSH <queue> <bytes> <id> <deliveries> */
            pos = 5;
            while (pos < n && s[pos] != ' ') pos++;
            pos++;
            if ((v = parse_num(s, n, &pos)) < 0) return -1;
            pos++;
            int64_t id = parse_num(s, n, &pos);
            if (id < 0) return -1;
            ev->id = (uint64_t)id;
            ev->kind = EV_MSG;
            return v;
        } else if (starts(s, n, "MSG ") || starts(s, n, "PUSH ") || starts(s, n, "EVENT ")) {
            if ((v = last_num(s, n)) < 0) return -1;
            ev->kind = EV_MSG;
            return v;
        } else if (starts(s, n, "EMPTY")) ev->kind = EV_EMPTY;
        else if (starts(s, n, "PONG")) ev->kind = EV_PONG;
        else if (starts(s, n, "DATA ")) {
            ev->kind = EV_INFO;
            return last_num(s, n);
        }
        return -1;
    case P_REDIS:
        if (n == 0) return -1;
        if (s[0] == ':' || s[0] == '+') ev->kind = EV_ACK;
        else if (s[0] == '*') {
            if (starts(s, n, "*-1")) ev->kind = EV_EMPTY;
            else {
                pos = 1;
                p->arr_left = (int)parse_num(s, n, &pos);
                ev->kind = EV_NONE; /* the array's elements make the event */
            }
        } else if (s[0] == '$') {
            if (starts(s, n, "$-1")) {
                ev->kind = EV_EMPTY;
                p->arr_left = 0;
                return -1;
            }
            pos = 1;
            v = parse_num(s, n, &pos);
            if (v < 0) return -1;
            if (p->arr_left > 0) {
                p->arr_left--;
                ev->kind = p->arr_left > 0 ? EV_SKIP : EV_MSG;
            } else {
                ev->kind = EV_MSG;
            }
            return v;
        }
        return -1;
    case P_NATS:
        if (starts(s, n, "MSG ")) {
            if ((v = last_num(s, n)) < 0) return -1;
            ev->kind = EV_MSG;
            return v;
        } else if (starts(s, n, "PING")) ev->kind = EV_PING;
        else if (starts(s, n, "PONG")) ev->kind = EV_PONG;
        else if (starts(s, n, "+OK")) ev->kind = EV_ACK;
        else if (starts(s, n, "INFO")) ev->kind = EV_INFO;
        return -1;
    case P_BEANSTALK:
        if (starts(s, n, "INSERTED") || starts(s, n, "USING") || starts(s, n, "WATCHING"))
            ev->kind = EV_ACK;
        else if (starts(s, n, "RESERVED ")) {
            pos = 8;
            int64_t id = parse_num(s, n, &pos);
            v = parse_num(s, n, &pos);
            if (id < 0 || v < 0) return -1;
            ev->id = (uint64_t)id;
            ev->kind = EV_MSG;
            return v;
        } else if (starts(s, n, "DELETED")) ev->kind = EV_DEL;
        else if (starts(s, n, "TIMED_OUT")) ev->kind = EV_EMPTY;
        else if (starts(s, n, "OK ")) {
            ev->kind = EV_INFO;
            return last_num(s, n);
        }
        return -1;
    }
    return -1;
}

typedef void (*event_fn)(void *ctx, event *ev, uint64_t now);

/* parser_feed runs every complete reply in buf[0..len) through fn and keeps
 * the state of an incomplete one. Bodies are skipped in place (only their
 * first SEQ_DIGITS bytes are kept), so a 1 MiB reply is never copied. */
static void parser_feed(parser *p, const char *buf, size_t len, event_fn fn, void *ctx,
                        uint64_t now) {
    size_t i = 0;
    while (i < len) {
        if (p->state == 0) {
            const char *nl = memchr(buf + i, '\n', len - i);
            if (!nl) {
                size_t k = len - i;
                if (p->linelen + k > LINE_MAX_LEN) {
                    snprintf(p->err, sizeof p->err, "reply line longer than %d bytes", LINE_MAX_LEN);
                    p->linelen = 0;
                    return;
                }
                memcpy(p->line + p->linelen, buf + i, k);
                p->linelen += k;
                return;
            }
            const char *s;
            size_t n = (size_t)(nl - (buf + i));
            if (p->linelen) {
                if (p->linelen + n > LINE_MAX_LEN) {
                    snprintf(p->err, sizeof p->err, "reply line too long");
                    p->linelen = 0;
                    i += n + 1;
                    continue;
                }
                memcpy(p->line + p->linelen, buf + i, n);
                s = p->line;
                n += p->linelen;
                p->linelen = 0;
            } else {
                s = buf + i;
            }
            i = (size_t)(nl - buf) + 1;
            if (n > 0 && s[n - 1] == '\r') n--;
            event ev;
            int64_t body = classify_line(p, s, n, &ev);
            if (body >= 0) {
                p->pending = ev;
                p->pending.line = NULL; /* the line buffer may be reused */
                p->pending.bodylen = (uint64_t)body;
                p->body_left = (uint64_t)body;
                p->state = 1;
            } else if (ev.kind != EV_NONE) {
                fn(ctx, &ev, now);
            }
        } else if (p->state == 1) {
            size_t k = len - i;
            if (k > p->body_left) k = (size_t)p->body_left;
            event *pe = &p->pending;
            if (pe->headlen < SEQ_DIGITS) {
                size_t want = SEQ_DIGITS - pe->headlen;
                if (want > k) want = k;
                memcpy(pe->head + pe->headlen, buf + i, want);
                pe->headlen += want;
            }
            i += k;
            p->body_left -= k;
            if (p->body_left == 0) {
                p->state = 2;
                p->trail_left = 2;
            }
        } else {
            /* the payload's line end: \r\n (every peer sends both bytes) */
            char want = p->trail_left == 2 ? '\r' : '\n';
            if (buf[i] != want && !p->err[0])
                snprintf(p->err, sizeof p->err, "payload not followed by CRLF (byte 0x%02x)",
                         (unsigned char)buf[i]);
            i++;
            if (--p->trail_left == 0) {
                p->state = 0;
                if (p->pending.kind != EV_SKIP && p->pending.kind != EV_NONE)
                    fn(ctx, &p->pending, now);
            }
        }
    }
}

/* ---- encoding ---------------------------------------------------------- */

/* frame_parts writes into pre the bytes before a payload of opt.size bytes
 * (the request header) and into post the bytes after it, for a put/publish. */
static void frame_parts(char *pre, size_t presz, char *post, size_t postsz, int with_ping) {
    size_t ql = strlen(opt.queue);
    switch (opt.proto) {
    case P_BEUSS:
        snprintf(pre, presz, "%s %s %zu\r\n", opt.mode == M_FANOUT ? "PUB" : "PUT", opt.queue, opt.size);
        break;
    case P_REDIS:
        if (opt.mode == M_FANOUT)
            snprintf(pre, presz, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n", ql, opt.queue, opt.size);
        else
            snprintf(pre, presz, "*3\r\n$5\r\nLPUSH\r\n$%zu\r\n%s\r\n$%zu\r\n", ql, opt.queue, opt.size);
        break;
    case P_NATS:
        snprintf(pre, presz, "PUB %s %zu\r\n", opt.queue, opt.size);
        break;
    case P_BEANSTALK:
        snprintf(pre, presz, "put 0 0 600 %zu\r\n", opt.size);
        break;
    }
    snprintf(post, postsz, "\r\n%s", with_ping ? "PING\r\n" : "");
}

/* take_request returns the request that takes one message, for kind k. */
static void take_request(char *out, size_t sz, int k) {
    size_t ql = strlen(opt.queue);
    switch (opt.proto) {
    case P_BEUSS:
        snprintf(out, sz, "GET %s\r\n", opt.queue);
        break;
    case P_REDIS:
        if (k == C_BLOCK)
            snprintf(out, sz, "*3\r\n$5\r\nBRPOP\r\n$%zu\r\n%s\r\n$1\r\n0\r\n", ql, opt.queue);
        else
            snprintf(out, sz, "*2\r\n$4\r\nRPOP\r\n$%zu\r\n%s\r\n", ql, opt.queue);
        break;
    case P_BEANSTALK:
        snprintf(out, sz, k == C_BLOCK ? "reserve\r\n" : "reserve-with-timeout 0\r\n");
        break;
    default:
        out[0] = 0;
    }
}

static void stamp(char *dst, unsigned pid, uint64_t seq) {
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%03u%013llu", pid % 1000, (unsigned long long)seq);
    memcpy(dst, tmp, SEQ_DIGITS);
}

/* ---- shared run state -------------------------------------------------- */

typedef struct conn {
    int fd;
    int role;
    int idx;       /* producer id or consumer index */
    uint64_t n;    /* requests this connection sends (puts, or takes) */
    pthread_t rd, wr;
    parser p;
    _Atomic uint64_t sent;    /* puts or takes written */
    _Atomic uint64_t replies; /* replies to them (and to deletes) */
    _Atomic uint64_t acks, msgs, empties, errs, dels;
    _Atomic uint64_t credit_base; /* msgs already answered with CREDIT */
    /* a writer waiting for its readers: see progress_wait */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int waiting;
    int (*_Atomic wait_fn)(struct conn *);
    /* beanstalkd: job ids reserved and not yet deleted (single producer:
     * the reader; single consumer: the writer) */
    uint64_t *ring;
    size_t ring_mask;
    _Atomic uint64_t ring_head, ring_tail;
    char errtext[200];
    /* small messages: all frames, pre-encoded; large: per-message headers */
    char *frames;
    size_t framelen;
    char *pre;     /* large: per message, header + stamp */
    size_t prelen;
    char post[16];
    size_t postlen;
} conn;

static conn *conns;
static int nconns;
static _Atomic int stop_flag;
static _Atomic uint64_t t_end;
static uint64_t t_start;
static uint64_t n_per_producer;
static _Atomic uint64_t *consumed_from; /* per producer */
static _Atomic uint64_t consumed_total;
static _Atomic uint64_t *seen_bits;     /* per message: delivered yet? */
static _Atomic uint64_t bad_stamp, dup_msgs, order_errs, missing_fanout;
static uint64_t *send_ts;               /* per message: time written/intended */
static uint64_t *lat;                   /* per message: delivery latency */
static char *shared_body;               /* large messages: the bytes after the stamp */

/* progress_signal wakes each writer that waits for replies and whose wait is
 * over: a writer is woken only when it can act, not on every read, so a slow
 * trickle of replies costs no extra context switches. */
static void progress_signal(void) {
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (!atomic_load(&c->waiting)) continue;
        int (*fn)(conn *) = c->wait_fn;
        if (fn && fn(c)) continue;
        pthread_mutex_lock(&c->mu);
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
}

/* progress_wait blocks until blocked(c) turns false (or 10 ms pass); the
 * check under c->mu after raising c->waiting avoids lost wakeups. */
static void progress_wait(int (*blocked)(conn *), conn *c) {
    pthread_mutex_lock(&c->mu);
    c->wait_fn = blocked;
    atomic_store(&c->waiting, 1);
    if (blocked(c) && !atomic_load(&stop_flag)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    atomic_store(&c->waiting, 0);
    pthread_mutex_unlock(&c->mu);
}

static void set_err(conn *c, const char *what, const char *line, size_t n) {
    if (c->errtext[0]) return;
    if (n > 120) n = 120;
    snprintf(c->errtext, sizeof c->errtext, "%s: %.*s", what, (int)n, line ? line : "");
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static int writev_all(int fd, struct iovec *iov, int cnt) {
    while (cnt > 0) {
        ssize_t w = writev(fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int all_done(void);

/* mark_done records the end of the measured interval the first time every
 * expected reply has arrived. */
static void check_done(uint64_t now) {
    if (atomic_load(&t_end) == 0 && all_done()) {
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&t_end, &zero, now);
    }
}

/* ---- consumer side: verify every message ------------------------------- */

static void verify_fanout(conn *c, uint64_t pid, uint64_t seq, uint64_t now);

static void verify_msg(conn *c, event *ev, uint64_t now) {
    if (ev->headlen < SEQ_DIGITS) {
        atomic_fetch_add(&bad_stamp, 1);
        set_err(c, "message without a sequence stamp", ev->head, ev->headlen);
        return;
    }
    uint64_t pid = 0, seq = 0;
    for (int i = 0; i < SEQ_DIGITS; i++) {
        char ch = ev->head[i];
        if (ch < '0' || ch > '9') {
            atomic_fetch_add(&bad_stamp, 1);
            set_err(c, "bad sequence stamp", ev->head, SEQ_DIGITS);
            return;
        }
        if (i < 3) pid = pid * 10 + (uint64_t)(ch - '0');
        else seq = seq * 10 + (uint64_t)(ch - '0');
    }
    if (pid >= (uint64_t)opt.producers || seq >= n_per_producer) {
        atomic_fetch_add(&bad_stamp, 1);
        set_err(c, "sequence stamp out of range", ev->head, SEQ_DIGITS);
        return;
    }
    if (opt.mode == M_FANOUT) {
        verify_fanout(c, pid, seq, now);
        return;
    }
    uint64_t g = pid * n_per_producer + seq;
    uint64_t bit = 1ull << (g & 63);
    if (atomic_fetch_or(&seen_bits[g >> 6], bit) & bit) {
        atomic_fetch_add(&dup_msgs, 1);
        set_err(c, "duplicate message", ev->head, SEQ_DIGITS);
        return;
    }
    /* each consumer must see each producer's messages in increasing order;
     * the last seen per (consumer, producer) is kept in lat's neighbour:
     * a small per-consumer table */
    uint64_t *last = (uint64_t *)c->pre; /* consumers reuse pre as that table */
    if (last[pid] != UINT64_MAX && seq <= last[pid]) {
        atomic_fetch_add(&order_errs, 1);
        set_err(c, "message out of order", ev->head, SEQ_DIGITS);
    }
    last[pid] = seq;
    if (lat && send_ts) lat[g] = now - send_ts[g];
    atomic_fetch_add(&consumed_from[pid], 1);
    atomic_fetch_add(&consumed_total, 1);
}

/* verify_fanout checks that subscriber c receives every message, in publish
 * order: the next one expected is c->credit_base (unused otherwise). */
static void verify_fanout(conn *c, uint64_t pid, uint64_t seq, uint64_t now) {
    (void)pid;
    uint64_t want = atomic_load(&c->credit_base);
    if (seq != want) {
        if (seq > want) atomic_fetch_add(&missing_fanout, seq - want);
        else atomic_fetch_add(&order_errs, 1);
        set_err(c, seq > want ? "subscriber missed messages" : "message out of order or repeated", NULL, 0);
    }
    if (seq >= want) atomic_store(&c->credit_base, seq + 1);
    if (c->idx == 0 && lat && send_ts) lat[seq] = now - send_ts[seq];
    atomic_fetch_add(&consumed_total, 1);
}

static void on_event(void *ctx, event *ev, uint64_t now) {
    conn *c = ctx;
    switch (ev->kind) {
    case EV_ACK:
        if (c->role == R_PRODUCER) {
            atomic_fetch_add(&c->acks, 1);
            atomic_fetch_add(&c->replies, 1);
        } /* consumers: OK to CREDIT, ignored */
        break;
    case EV_MSG:
        if (c->role == R_CONSUMER) {
            verify_msg(c, ev, now);
            atomic_fetch_add(&c->msgs, 1);
            if (opt.proto == P_BEANSTALK || opt.ack) {
                uint64_t h = atomic_load(&c->ring_head);
                c->ring[h & c->ring_mask] = ev->id;
                atomic_store(&c->ring_head, h + 1);
            }
            if (opt.ckind != C_PUSH) atomic_fetch_add(&c->replies, 1);
        } else {
            set_err(c, "unexpected message on a producer connection", ev->line, ev->linelen);
        }
        break;
    case EV_EMPTY:
        atomic_fetch_add(&c->empties, 1);
        atomic_fetch_add(&c->replies, 1);
        set_err(c, "queue empty before all messages were taken", ev->line, ev->linelen);
        break;
    case EV_DEL:
        atomic_fetch_add(&c->dels, 1);
        atomic_fetch_add(&c->replies, 1);
        break;
    case EV_PING:
    case EV_PONG:
    case EV_INFO:
        break;
    case EV_ERR:
    default:
        atomic_fetch_add(&c->errs, 1);
        atomic_fetch_add(&c->replies, 1);
        set_err(c, "error reply", ev->line, ev->linelen);
        break;
    }
}

static void *reader_main(void *arg) {
    conn *c = arg;
    char *buf = malloc(READ_BUF);
    if (!buf) die(2, "out of memory");
    while (!atomic_load(&stop_flag)) {
        ssize_t r = read(c->fd, buf, READ_BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        uint64_t now = now_ns();
        parser_feed(&c->p, buf, (size_t)r, on_event, c, now);
        if (c->p.err[0]) set_err(c, "protocol", c->p.err, strlen(c->p.err));
        check_done(now);
        progress_signal();
    }
    free(buf);
    return NULL;
}

/* ---- writers ----------------------------------------------------------- */

/* refill returns how many free places in the window a writer waits for
 * before writing again: a sixteenth of the window, so that a slow server's
 * trickle of replies does not turn into one write() per reply (the window
 * stays between 15/16 full and full). */
static uint64_t refill(uint64_t remaining) {
    uint64_t r = opt.window / 16;
    if (r == 0 || opt.rate > 0) r = 1;
    return r < remaining ? r : (remaining ? remaining : 1);
}

/* window_base returns how many of producer c's messages count as done for
 * its window: acknowledged (produce), consumed (e2e), or received by every
 * subscriber (fanout). */
static uint64_t window_base(conn *c) {
    if (opt.mode == M_E2E) return atomic_load(&consumed_from[c->idx]);
    if (opt.mode != M_FANOUT) return atomic_load(&c->replies);
    uint64_t m = UINT64_MAX;
    for (int i = 0; i < nconns; i++)
        if (conns[i].role == R_CONSUMER && atomic_load(&conns[i].msgs) < m) m = atomic_load(&conns[i].msgs);
    return m == UINT64_MAX ? 0 : m;
}

static int producer_blocked(conn *c) {
    uint64_t sent = atomic_load(&c->sent);
    uint64_t base = window_base(c);
    uint64_t inflight = sent - base;
    return inflight >= opt.window || opt.window - inflight < refill(c->n - sent);
}

static void send_frames(conn *c, uint64_t from, uint64_t k) {
    if (c->frames) {
        if (write_all(c->fd, c->frames + from * c->framelen, k * c->framelen) < 0)
            atomic_store(&stop_flag, 1);
        return;
    }
    struct iovec iov[3 * 64];
    while (k) {
        int m = 0;
        uint64_t take = k > 64 ? 64 : k;
        for (uint64_t j = 0; j < take; j++) {
            iov[m].iov_base = c->pre + (from + j) * c->prelen;
            iov[m++].iov_len = strlen(c->pre + (from + j) * c->prelen);
            iov[m].iov_base = shared_body;
            iov[m++].iov_len = opt.size - SEQ_DIGITS;
            iov[m].iov_base = c->post;
            iov[m++].iov_len = c->postlen;
        }
        if (writev_all(c->fd, iov, m) < 0) {
            atomic_store(&stop_flag, 1);
            return;
        }
        from += take;
        k -= take;
    }
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void *producer_writer(void *arg) {
    conn *c = arg;
    uint64_t i = 0;
    uint64_t batch = c->frames ? WRITE_CHUNK / c->framelen : 4;
    if (batch > opt.window / WINDOW_PARTS) batch = opt.window / WINDOW_PARTS;
    if (batch == 0) batch = 1;
    double rate = opt.rate > 0 ? opt.rate / opt.producers : 0;
    while (i < c->n && !atomic_load(&stop_flag)) {
        uint64_t base = window_base(c);
        uint64_t inflight = i - base;
        if (inflight >= opt.window || opt.window - inflight < refill(c->n - i)) {
            progress_wait(producer_blocked, c);
            continue;
        }
        uint64_t k = opt.window - inflight;
        if (k > c->n - i) k = c->n - i;
        if (k > batch) k = batch;
        uint64_t now = now_ns();
        if (rate > 0) {
            /* send what is due by now; each message's latency counts from
             * when it was due, so falling behind shows as latency */
            uint64_t due = (uint64_t)((double)(now - t_start) * rate / 1e9) + 1;
            if (due <= i) {
                sleep_until(t_start + (uint64_t)((double)i * 1e9 / rate));
                continue;
            }
            if (k > due - i) k = due - i;
            for (uint64_t j = 0; j < k; j++)
                send_ts[c->idx * n_per_producer + i + j] =
                    t_start + (uint64_t)((double)(i + j) * 1e9 / rate);
        } else if (send_ts) {
            for (uint64_t j = 0; j < k; j++) send_ts[c->idx * n_per_producer + i + j] = now;
        }
        atomic_store(&c->sent, i + k);
        send_frames(c, i, k);
        i += k;
    }
    return NULL;
}

/* deletes_due says whether the beanstalkd job ids held should be deleted
 * now: once there are a few of them, or when no more replies are coming. */
static int deletes_due(uint64_t held, uint64_t outstanding) {
    return held >= 16 || (held > 0 && outstanding == 0) || held * 2 >= opt.window;
}

static int taker_blocked(conn *c) {
    uint64_t sent = atomic_load(&c->sent);
    uint64_t held = atomic_load(&c->ring_head) - atomic_load(&c->ring_tail);
    uint64_t answered = atomic_load(&c->replies) - atomic_load(&c->dels) - atomic_load(&c->errs);
    uint64_t outstanding = sent - answered;
    if (deletes_due(held, outstanding)) return 0;
    if (sent >= c->n) return 1;
    uint64_t busy = outstanding + held;
    return busy >= opt.window || opt.window - busy < refill(c->n - sent);
}

/* taker_writer sends c->n take requests (GET, RPOP, BRPOP, reserve), at most
 * opt.window unanswered, and for beanstalkd a delete for every reserved job. */
static void *taker_writer(void *arg) {
    conn *c = arg;
    char one[128];
    take_request(one, sizeof one, opt.ckind);
    size_t ol = strlen(one);
    uint64_t batch = WRITE_CHUNK / ol;
    if (batch > opt.window / WINDOW_PARTS) batch = opt.window / WINDOW_PARTS;
    if (batch == 0) batch = 1;
    char *chunk = malloc(batch * ol + 1);
    char *dels = malloc(64 * 1024);
    if (!chunk || !dels) die(2, "out of memory");
    for (uint64_t j = 0; j < batch; j++) memcpy(chunk + j * ol, one, ol);
    uint64_t sent = 0;
    while (!atomic_load(&stop_flag)) {
        uint64_t head = atomic_load(&c->ring_head), tail = atomic_load(&c->ring_tail);
        size_t dl = 0;
        uint64_t outstanding = sent - (atomic_load(&c->replies) - atomic_load(&c->dels) - atomic_load(&c->errs));
        if (!deletes_due(head - tail, outstanding)) head = tail;
        while (tail != head && dl < 64 * 1024 - 40) {
            dl += (size_t)sprintf(dels + dl, "delete %llu\r\n",
                                  (unsigned long long)c->ring[tail & c->ring_mask]);
            tail++;
        }
        if (dl) {
            atomic_store(&c->ring_tail, tail);
            if (write_all(c->fd, dels, dl) < 0) break;
        }
        if (sent >= c->n) {
            if (opt.proto != P_BEANSTALK) break;
            if (atomic_load(&c->dels) + atomic_load(&c->errs) >= atomic_load(&c->msgs) &&
                atomic_load(&c->ring_head) == atomic_load(&c->ring_tail) &&
                atomic_load(&c->replies) >= c->n + atomic_load(&c->msgs))
                break;
            progress_wait(taker_blocked, c);
            continue;
        }
        /* requests answered so far: replies minus those to deletes; ids not
         * yet deleted count against the window too, which bounds the ring */
        uint64_t answered = atomic_load(&c->replies) - atomic_load(&c->dels) - atomic_load(&c->errs);
        uint64_t held = atomic_load(&c->ring_head) - atomic_load(&c->ring_tail);
        uint64_t busy = sent - answered + held;
        if (busy >= opt.window || opt.window - busy < refill(c->n - sent)) {
            if (!dl) progress_wait(taker_blocked, c);
            continue;
        }
        uint64_t k = opt.window - busy;
        if (k > c->n - sent) k = c->n - sent;
        if (k > batch) k = batch;
        atomic_store(&c->sent, sent + k);
        if (write_all(c->fd, chunk, k * ol) < 0) break;
        sent += k;
    }
    free(chunk);
    free(dels);
    return NULL;
}

static int pusher_blocked(conn *c) {
    if (atomic_load(&consumed_total) >= opt.n) return 1;
    return atomic_load(&c->msgs) - c->credit_base < (opt.window + 1) / 2;
}

/* credit_writer grants beuss ON credit back in batches of half the window. */
static void *credit_writer(void *arg) {
    conn *c = arg;
    char line[512];
    while (!atomic_load(&stop_flag) && atomic_load(&consumed_total) < opt.n) {
        uint64_t got = atomic_load(&c->msgs);
        uint64_t k = got - c->credit_base;
        if (k < (opt.window + 1) / 2) {
            progress_wait(pusher_blocked, c);
            continue;
        }
        int l = snprintf(line, sizeof line, "CREDIT %s %llu\r\n", opt.queue, (unsigned long long)k);
        c->credit_base = got;
        if (write_all(c->fd, line, (size_t)l) < 0) break;
    }
    return NULL;
}

static int acker_blocked(conn *c) {
    if (atomic_load(&stop_flag)) return 0;
    return atomic_load(&c->ring_head) == atomic_load(&c->ring_tail);
}

/* ack_writer sends ACK <id> for every leased message the reader took (beuss
 * ON ... LEASE): the server gives the credit back on each ACK, so no CREDIT
 * is sent. The ring holds at most the window (the server's credit). */
static void *ack_writer(void *arg) {
    conn *c = arg;
    char *acks = malloc(64 * 1024);
    if (!acks) die(2, "out of memory");
    while (!atomic_load(&stop_flag)) {
        uint64_t head = atomic_load(&c->ring_head), tail = atomic_load(&c->ring_tail);
        size_t al = 0;
        while (tail != head && al < 64 * 1024 - 32) {
            al += (size_t)sprintf(acks + al, "ACK %llu\r\n", (unsigned long long)c->ring[tail & c->ring_mask]);
            tail++;
        }
        if (al) {
            atomic_store(&c->ring_tail, tail);
            if (write_all(c->fd, acks, al) < 0) break;
            continue;
        }
        if (atomic_load(&consumed_total) >= opt.n) break;
        progress_wait(acker_blocked, c);
    }
    free(acks);
    return NULL;
}

/* ---- completion -------------------------------------------------------- */

static int all_done(void) {
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (c->role == R_PRODUCER) {
            if (opt.proto == P_NATS) {
                if (atomic_load(&c->sent) < c->n) return 0;
            } else if (atomic_load(&c->replies) < c->n) {
                return 0;
            }
        } else if (opt.ckind != C_PUSH) {
            uint64_t need = c->n + (opt.proto == P_BEANSTALK ? atomic_load(&c->msgs) : 0);
            if (atomic_load(&c->replies) < need) return 0;
        }
    }
    if (opt.mode == M_FANOUT) {
        for (int i = 0; i < nconns; i++)
            if (conns[i].role == R_CONSUMER && atomic_load(&conns[i].msgs) < opt.n) return 0;
        return 1;
    }
    for (int i = 0; i < nconns; i++)
        if (conns[i].role == R_CONSUMER && opt.ckind == C_PUSH)
            return atomic_load(&consumed_total) >= opt.n;
    return 1;
}

/* ---- connections and handshakes ---------------------------------------- */

static int dial(void) {
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", opt.port);
    int rc = getaddrinfo(opt.host, port, &hints, &res);
    if (rc) die(2, "cannot resolve %s: %s", opt.host, gai_strerror(rc));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) die(2, "cannot connect to %s:%d: %s", opt.host, opt.port, strerror(errno));
    int one = opt.nodelay;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* no read may outlast the run: a silent server ends in a timeout, not
     * in a hang (setup and --mode rtt read on the main thread) */
    struct timeval tv = {(time_t)opt.timeout + 1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

typedef struct sync_ctx {
    event last;
    char line[LINE_MAX_LEN];
    int got;
} sync_ctx;

static void on_sync(void *ctx, event *ev, uint64_t now) {
    (void)now;
    sync_ctx *s = ctx;
    s->last = *ev;
    size_t n = ev->linelen < LINE_MAX_LEN - 1 ? ev->linelen : LINE_MAX_LEN - 1;
    if (ev->line) memcpy(s->line, ev->line, n);
    s->line[n] = 0;
    s->got++;
}

/* sync_cmd sends req (if any), reads until one reply arrives, and dies unless
 * its line starts with expect. Used only before the clock starts. */
static void sync_cmd(conn *c, const char *req, const char *expect) {
    if (req && write_all(c->fd, req, strlen(req)) < 0) die(2, "write: %s", strerror(errno));
    sync_ctx s = {0};
    char ch;
    while (!s.got) {
        /* one byte at a time: what follows the reply (a PUSH right after
         * ON's OK) must be left for the reader thread */
        ssize_t r = read(c->fd, &ch, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die(2, "connection closed during setup (sent %s)", req ? req : "nothing");
        parser_feed(&c->p, &ch, 1, on_sync, &s, 0);
    }
    if (expect && strncmp(s.line, expect, strlen(expect)) != 0)
        die(2, "setup: sent %s expected %s, got: %s", req ? req : "(connect)", expect, s.line);
}

static void setup_conn(conn *c) {
    char req[600];
    if (opt.proto == P_NATS) {
        sync_cmd(c, NULL, "INFO");
        sync_cmd(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nPING\r\n", "PONG");
        if (c->role == R_CONSUMER) {
            /* a queue group shares messages; fan-out has every subscriber get all */
            snprintf(req, sizeof req, opt.mode == M_FANOUT ? "SUB %s 1\r\nPING\r\n" : "SUB %s g 1\r\nPING\r\n", opt.queue);
            sync_cmd(c, req, "PONG");
        }
    } else if (opt.proto == P_BEANSTALK) {
        if (c->role == R_PRODUCER) {
            snprintf(req, sizeof req, "use %s\r\n", opt.queue);
            sync_cmd(c, req, "USING");
        } else {
            snprintf(req, sizeof req, "watch %s\r\n", opt.queue);
            sync_cmd(c, req, "WATCHING");
            sync_cmd(c, "ignore default\r\n", "WATCHING");
        }
    } else if (opt.mode == M_FANOUT && c->role == R_CONSUMER) {
        if (opt.proto == P_BEUSS) {
            snprintf(req, sizeof req, "SUB %s\r\n", opt.queue);
            sync_cmd(c, req, "OK");
        } else if (opt.proto == P_REDIS) {
            snprintf(req, sizeof req, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(opt.queue), opt.queue);
            sync_cmd(c, req, ":");
        } else {
            die(2, "fan-out applies to beuss, redis and nats");
        }
    } else if (opt.proto == P_BEUSS && c->role == R_CONSUMER && opt.ckind == C_PUSH) {
        snprintf(req, sizeof req, opt.ack ? "ON %s CREDIT %llu LEASE 600000\r\n" : "ON %s CREDIT %llu\r\n", opt.queue,
                 (unsigned long long)opt.window);
        sync_cmd(c, req, "OK");
    }
}

/* prepare_frames pre-encodes every put of producer c before the clock starts. */
static void prepare_frames(conn *c, int with_ping) {
    char pre[600];
    frame_parts(pre, sizeof pre, c->post, sizeof c->post, with_ping);
    c->postlen = strlen(c->post);
    size_t pl = strlen(pre);
    if (opt.size < SEQ_DIGITS) die(2, "--size must be at least %d (the sequence stamp)", SEQ_DIGITS);
    if (opt.size <= LARGE_THRESHOLD) {
        c->framelen = pl + opt.size + c->postlen;
        c->frames = malloc(c->framelen * c->n);
        if (!c->frames) die(2, "out of memory for %llu frames", (unsigned long long)c->n);
        char *f = c->frames;
        for (uint64_t i = 0; i < c->n; i++) {
            memcpy(f, pre, pl);
            stamp(f + pl, (unsigned)c->idx, i);
            memset(f + pl + SEQ_DIGITS, 'x', opt.size - SEQ_DIGITS);
            memcpy(f + pl + opt.size, c->post, c->postlen);
            f += c->framelen;
        }
    } else {
        c->prelen = pl + SEQ_DIGITS + 1;
        c->pre = calloc(c->n, c->prelen);
        if (!c->pre) die(2, "out of memory");
        for (uint64_t i = 0; i < c->n; i++) {
            char *h = c->pre + i * c->prelen;
            memcpy(h, pre, pl);
            stamp(h + pl, (unsigned)c->idx, i);
            h[pl + SEQ_DIGITS] = 0; /* the stamp has no NUL: strlen stops here */
        }
        if (!shared_body) {
            shared_body = malloc(opt.size);
            if (!shared_body) die(2, "out of memory");
            memset(shared_body, 'x', opt.size);
        }
    }
}

static double cpu_self(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* cpu_of returns the CPU seconds used so far by the threads of process pid,
 * or -1. It sums the nanosecond run times in /proc/<pid>/task/<tid>/schedstat
 * (utime/stime in /proc/<pid>/stat tick at 10 ms, too coarse for runs of a
 * few hundred ms), falling back to /proc/<pid>/stat. */
static double cpu_of(int pid) {
    if (pid <= 0) return -1;
    char path[96], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        unsigned long long sum = 0;
        int any = 0;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "/proc/%d/task/%.20s/schedstat", pid, de->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            unsigned long long ns;
            if (fscanf(f, "%llu", &ns) == 1) {
                sum += ns;
                any = 1;
            }
            fclose(f);
        }
        closedir(d);
        if (any) return (double)sum / 1e9;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_latency(uint64_t *v, size_t n) {
    if (!n) {
        printf(",\"lat_n\":0");
        return;
    }
    qsort(v, n, sizeof *v, cmp_u64);
#define PCT(q) (v[(size_t)((double)(n - 1) * (q))] / 1000.0)
    printf(",\"lat_n\":%zu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f",
           n, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), v[n - 1] / 1000.0);
#undef PCT
}

static void json_str(const char *k, const char *s) {
    printf(",\"%s\":\"", k);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 32 || ch > 126) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static const char *proto_names[] = {"beuss", "redis", "nats", "beanstalk"};
static const char *mode_names[] = {"produce", "consume", "e2e", "rtt", "fanout"};
static const char *ckind_names[] = {"get", "push", "block"};

/* ---- rtt: one request at a time ---------------------------------------- */

typedef struct rtt_ctx {
    uint64_t got, errs;
    char errtext[200];
} rtt_ctx;

static void on_rtt(void *ctx, event *ev, uint64_t now) {
    (void)now;
    rtt_ctx *r = ctx;
    if (ev->kind == EV_ERR && !r->errtext[0])
        snprintf(r->errtext, sizeof r->errtext, "error reply: %.*s", (int)(ev->linelen > 120 ? 120 : ev->linelen),
                 ev->line);
    if (ev->kind == EV_ERR) r->errs++;
    /* nats answers a PUB with nothing and the PING after it with PONG */
    if (ev->kind == EV_ACK || ev->kind == EV_PONG || ev->kind == EV_ERR) r->got++;
}

static int run_rtt(void) {
    conn c = {0};
    c.role = R_PRODUCER;
    c.n = opt.n;
    c.p.proto = opt.proto;
    c.fd = dial();
    setup_conn(&c);
    prepare_frames(&c, opt.proto == P_NATS);
    uint64_t *v = malloc(sizeof(uint64_t) * opt.n);
    char *buf = malloc(READ_BUF);
    if (!v || !buf) die(2, "out of memory");
    rtt_ctx r = {0};
    double cpu0 = cpu_self(), scpu0 = cpu_of(opt.server_pid);
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(opt.timeout * 1e9);
    uint64_t i;
    for (i = 0; i < opt.n; i++) {
        uint64_t a = now_ns();
        if (a > deadline) break;
        send_frames(&c, i, 1);
        int lost = 0;
        while (r.got <= i) {
            ssize_t n = read(c.fd, buf, READ_BUF);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                snprintf(r.errtext, sizeof r.errtext, "%s",
                         n == 0 ? "connection closed during the run" : "no reply in time");
                lost = 1;
                break;
            }
            parser_feed(&c.p, buf, (size_t)n, on_rtt, &r, 0);
        }
        if (lost) break;
        v[i] = now_ns() - a;
    }
    uint64_t t1 = now_ns();
    double cpu1 = cpu_self(), scpu1 = cpu_of(opt.server_pid);
    double secs = (t1 - t0) / 1e9;
    int ok = i == opt.n && r.errs == 0;
    printf("{\"proto\":\"%s\",\"mode\":\"rtt\",\"n\":%llu,\"done\":%llu,\"size\":%zu,\"window\":1,"
           "\"secs\":%.6f,\"rate\":%.1f,\"gen_cpu\":%.3f,\"srv_cpu\":%.3f,\"errors\":%llu",
           proto_names[opt.proto], (unsigned long long)opt.n, (unsigned long long)i, opt.size, secs,
           i / secs, cpu1 - cpu0, scpu0 >= 0 ? scpu1 - scpu0 : -1.0, (unsigned long long)r.errs);
    print_latency(v, i);
    printf(",\"ok\":%s", ok ? "true" : "false");
    if (!ok) json_str("error", r.errtext[0] ? r.errtext : "timed out");
    printf("}\n");
    close(c.fd);
    return ok ? 0 : 1;
}

/* ---- main -------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: beuss-loadgen [--proto beuss|redis|nats|beanstalk] [--host H] [--port P]\n"
            "  [--mode produce|consume|e2e|rtt] [--consume get|push|block] [--n N] [--size BYTES]\n"
            "  [--window W] [--producers P] [--consumers C] [--queue NAME] [--rate MSG_PER_S]\n"
            "  [--timeout SECONDS] [--server-pid PID] [--ack 1 (beuss consume push: lease and ACK each)]\n");
    exit(2);
}

static int lookup(const char *v, const char **names, int n, const char *what) {
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) return i;
    die(2, "unknown %s '%s'", what, v);
    return -1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--proto")) opt.proto = lookup(v, proto_names, 4, "protocol");
        else if (!strcmp(a, "--mode")) opt.mode = lookup(v, mode_names, 5, "mode");
        else if (!strcmp(a, "--consume")) opt.ckind = lookup(v, ckind_names, 3, "consume kind");
        else if (!strcmp(a, "--host")) opt.host = v;
        else if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--n")) opt.n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--size")) opt.size = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--window")) opt.window = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--producers")) opt.producers = atoi(v);
        else if (!strcmp(a, "--consumers")) opt.consumers = atoi(v);
        else if (!strcmp(a, "--queue")) opt.queue = v;
        else if (!strcmp(a, "--rate")) opt.rate = atof(v);
        else if (!strcmp(a, "--timeout")) opt.timeout = atof(v);
        else if (!strcmp(a, "--server-pid")) opt.server_pid = atoi(v);
        else if (!strcmp(a, "--ack")) opt.ack = atoi(v);
        else usage();
    }
    if (opt.n == 0 || opt.window == 0 || opt.producers < 1 || opt.producers > 999 ||
        opt.consumers < 1 || opt.consumers > 256)
        die(2, "bad --n, --window, --producers or --consumers");
    if (opt.n % (uint64_t)opt.producers) die(2, "--n must be a multiple of --producers");
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* precise sleeps for --rate */
    signal(SIGPIPE, SIG_IGN); /* a closed connection is an error to report */
    if (opt.mode == M_RTT) return run_rtt();
    if (opt.proto == P_NATS && opt.mode != M_E2E && opt.mode != M_FANOUT)
        die(2, "nats has no queue to fill or drain: only --mode e2e, fanout and rtt apply");
    if (opt.mode == M_FANOUT) {
        if (opt.producers != 1) die(2, "--mode fanout takes one publisher");
        opt.ckind = C_PUSH;
        if (opt.proto == P_BEANSTALK) die(2, "beanstalkd has no publish/subscribe");
    }
    if (opt.mode == M_E2E && opt.proto == P_BEUSS) opt.ckind = C_PUSH;
    if (opt.mode == M_E2E && opt.proto == P_NATS) opt.ckind = C_PUSH;
    if (opt.mode == M_E2E && (opt.proto == P_REDIS || opt.proto == P_BEANSTALK)) opt.ckind = C_BLOCK;
    if (opt.ckind == C_PUSH && opt.mode != M_FANOUT && opt.proto != P_BEUSS && opt.proto != P_NATS)
        die(2, "--consume push applies to beuss and nats only");
    if (opt.ack && (opt.proto != P_BEUSS || opt.ckind != C_PUSH || opt.mode != M_CONSUME))
        die(2, "--ack 1 applies to beuss --mode consume --consume push only");
    if (opt.ckind == C_BLOCK && opt.proto == P_BEUSS)
        die(2, "beuss takes blocking consumers with push (ON) here");

    n_per_producer = opt.n / (uint64_t)opt.producers;
    int np = opt.mode == M_CONSUME ? 0 : opt.producers;
    int nc = opt.mode == M_PRODUCE ? 0 : opt.consumers;
    /* a consume run checks the stamps written by a produce run with
     * --producers P: it needs the same P */
    nconns = np + nc;
    conns = calloc((size_t)nconns, sizeof *conns);
    consumed_from = calloc((size_t)opt.producers, sizeof *consumed_from);
    seen_bits = calloc((opt.n + 63) / 64, sizeof *seen_bits);
    if (!conns || !consumed_from || !seen_bits) die(2, "out of memory");
    if (opt.mode == M_E2E || opt.mode == M_FANOUT) {
        send_ts = calloc(opt.n, sizeof *send_ts);
        lat = calloc(opt.n, sizeof *lat);
        if (!send_ts || !lat) die(2, "out of memory");
    }
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        c->role = i < np ? R_PRODUCER : R_CONSUMER;
        c->idx = i < np ? i : i - np;
        c->p.proto = opt.proto;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        if (c->role == R_PRODUCER) {
            c->n = n_per_producer;
            prepare_frames(c, 0);
        } else {
            if (opt.n % (uint64_t)nc && opt.ckind != C_PUSH)
                die(2, "--n must be a multiple of --consumers");
            c->n = opt.ckind == C_PUSH ? 0 : opt.n / (uint64_t)nc;
            c->pre = malloc(sizeof(uint64_t) * (size_t)opt.producers);
            if (!c->pre) die(2, "out of memory");
            memset(c->pre, 0xff, sizeof(uint64_t) * (size_t)opt.producers);
            size_t cap = 1;
            while (cap < opt.window + 1) cap <<= 1;
            c->ring = malloc(cap * sizeof *c->ring);
            if (!c->ring) die(2, "out of memory");
            c->ring_mask = cap - 1;
        }
        c->fd = dial();
        setup_conn(c);
    }

    double cpu0 = cpu_self(), scpu0 = cpu_of(opt.server_pid);
    t_start = now_ns();
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        pthread_create(&c->rd, NULL, reader_main, c);
        void *(*w)(void *) = c->role == R_PRODUCER ? producer_writer
                             : opt.ckind == C_PUSH  ? (opt.proto == P_BEUSS && opt.mode != M_FANOUT ? (opt.ack ? ack_writer : credit_writer) : NULL)
                                                    : taker_writer;
        if (w) pthread_create(&c->wr, NULL, w, c);
        else c->wr = 0;
    }
    uint64_t deadline = t_start + (uint64_t)(opt.timeout * 1e9);
    int timed_out = 0;
    while (!atomic_load(&t_end) && !atomic_load(&stop_flag)) {
        if (now_ns() > deadline) {
            timed_out = 1;
            break;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    uint64_t t1 = atomic_load(&t_end) ? atomic_load(&t_end) : now_ns();
    double cpu1 = cpu_self(), scpu1 = cpu_of(opt.server_pid);
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < nconns; i++) shutdown(conns[i].fd, SHUT_RDWR);
    for (int i = 0; i < nconns; i++) {
        pthread_join(conns[i].rd, NULL);
        if (conns[i].wr) pthread_join(conns[i].wr, NULL);
        close(conns[i].fd);
    }

    uint64_t acks = 0, msgs = 0, errs = 0, empties = 0;
    const char *first_err = "";
    for (int i = 0; i < nconns; i++) {
        acks += conns[i].acks;
        msgs += conns[i].msgs;
        errs += conns[i].errs;
        empties += conns[i].empties;
        if (!first_err[0] && conns[i].errtext[0]) first_err = conns[i].errtext;
    }
    uint64_t distinct = 0;
    for (uint64_t w = 0; w < (opt.n + 63) / 64; w++) distinct += (uint64_t)__builtin_popcountll(seen_bits[w]);
    uint64_t missing = nc ? opt.n - distinct : 0;
    if (opt.mode == M_FANOUT) {
        missing = missing_fanout;
        for (int i = 0; i < nconns; i++)
            if (conns[i].role == R_CONSUMER) missing += opt.n - atomic_load(&conns[i].credit_base);
    }
    double secs = (t1 - t_start) / 1e9;
    uint64_t done = nc ? atomic_load(&consumed_total) : acks;
    size_t body = opt.size;
    int ok = !timed_out && errs == 0 && empties == 0 && missing == 0 && dup_msgs == 0 &&
             order_errs == 0 && bad_stamp == 0 && (np == 0 || opt.proto == P_NATS || acks == opt.n);
    printf("{\"proto\":\"%s\",\"mode\":\"%s\",\"consume\":\"%s\",\"n\":%llu,\"done\":%llu,\"size\":%zu,"
           "\"window\":%llu,\"producers\":%d,\"consumers\":%d,\"secs\":%.6f,\"rate\":%.1f,\"mib_s\":%.1f,"
           "\"gen_cpu\":%.3f,\"srv_cpu\":%.3f,\"acks\":%llu,\"msgs\":%llu,\"errors\":%llu,\"empty\":%llu,"
           "\"missing\":%llu,\"duplicates\":%llu,\"out_of_order\":%llu,\"bad_stamp\":%llu",
           proto_names[opt.proto], mode_names[opt.mode], nc ? ckind_names[opt.ckind] : "", (unsigned long long)opt.n,
           (unsigned long long)done, body, (unsigned long long)opt.window, np, nc, secs, done / secs,
           (double)done * (double)body / secs / 1048576.0, cpu1 - cpu0, scpu0 >= 0 ? scpu1 - scpu0 : -1.0,
           (unsigned long long)acks, (unsigned long long)msgs, (unsigned long long)errs,
           (unsigned long long)empties, (unsigned long long)missing, (unsigned long long)dup_msgs,
           (unsigned long long)order_errs, (unsigned long long)bad_stamp);
    if (opt.rate > 0) printf(",\"offered_rate\":%.1f", opt.rate);
    if (lat) {
        /* only delivered messages have a latency; pack them */
        size_t m = 0;
        if (opt.mode == M_FANOUT) /* the first subscriber's latencies */
            m = (size_t)atomic_load(&conns[np].credit_base);
        else
            for (uint64_t g = 0; g < opt.n; g++)
                if (seen_bits[g >> 6] & (1ull << (g & 63))) lat[m++] = lat[g];
        print_latency(lat, m);
    }
    printf(",\"ok\":%s", ok ? "true" : "false");
    if (!ok) {
        char why[300];
        snprintf(why, sizeof why, "%s%s", timed_out ? "timed out; " : "", first_err);
        json_str("error", why);
    }
    printf("}\n");
    return ok ? 0 : 1;
}
