/*
 * beuss-nullserver: a server that speaks the beuss wire protocol honestly
 * (every header line is parsed, every PUT payload is framed and checked for
 * its line end) but stores nothing: PUT answers "OK <bytes>", GET answers a
 * message of --size bytes stamped with a per-connection sequence number, PING
 * answers PONG, LEN answers "OK 0". The benchmark runs the load generator
 * against it to show the generator's own ceiling: a server cannot be measured
 * faster than this.
 *
 * One thread per connection, big reads, all replies to one read written in
 * one write().
 *
 * usage: beuss-nullserver [--host 127.0.0.1] [--port 0] [--size 64]
 * prints "listening on HOST:PORT" on stdout once it accepts connections.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (256 * 1024)
#define MAX_LINE 1024
/* Flush replies once this much is built, so output stays bounded. */
#define OUT_FLUSH (256 * 1024)

static size_t msg_size = 64;
static size_t max_message = 10 * 1024 * 1024;

typedef struct out {
    char *buf;
    size_t len, cap;
    int fd;
    int failed;
} out;

static void out_flush(out *o) {
    size_t off = 0;
    while (off < o->len && !o->failed) {
        ssize_t w = write(o->fd, o->buf + off, o->len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            o->failed = 1;
            break;
        }
        off += (size_t)w;
    }
    o->len = 0;
}

static void out_add(out *o, const char *s, size_t n) {
    if (o->len + n > o->cap) {
        out_flush(o);
        if (n > o->cap) {
            o->cap = n;
            o->buf = realloc(o->buf, o->cap);
            if (!o->buf) abort();
        }
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* conn_main parses requests as they arrive and answers each one. */
static void *conn_main(void *arg) {
    int fd = (int)(intptr_t)arg;
    char *in = malloc(READ_BUF + MAX_LINE);
    out o = {malloc(OUT_FLUSH * 2), 0, OUT_FLUSH * 2, fd, 0};
    char *msg = malloc(msg_size + 64);
    if (!in || !o.buf || !msg) abort();
    int hl = snprintf(msg, 64, "MSG %zu\r\n", msg_size);
    memset(msg + hl, 'x', msg_size);
    memset(msg + hl, '0', 16);
    memcpy(msg + hl + msg_size, "\r\n", 2);
    size_t msglen = (size_t)hl + msg_size + 2;
    char rep[48];
    int rl = 0;
    uint64_t last_len = 0;
    size_t have = 0;          /* bytes of an incomplete line kept at in[0] */
    uint64_t skip = 0;        /* payload bytes (and line end) still to skip */
    int want_eol = 0;         /* after a payload: expecting \r?\n */
    for (;;) {
        ssize_t r = read(fd, in + have, READ_BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        size_t len = have + (size_t)r, i = 0;
        have = 0;
        while (i < len) {
            if (skip) {
                size_t k = len - i < skip ? len - i : (size_t)skip;
                i += k;
                skip -= k;
                continue;
            }
            if (want_eol) {
                if (in[i] == '\r' && want_eol == 1) {
                    want_eol = 2;
                    i++;
                    continue;
                }
                if (in[i] != '\n') {
                    static const char e[] = "ERR BAD_FRAME payload not followed by a line end\r\n";
                    out_add(&o, e, sizeof e - 1);
                    goto close;
                }
                want_eol = 0;
                i++;
                continue;
            }
            char *nl = memchr(in + i, '\n', len - i);
            if (!nl) {
                have = len - i;
                if (have > MAX_LINE) {
                    static const char e[] = "ERR LINE_TOO_LONG header line too long\r\n";
                    out_add(&o, e, sizeof e - 1);
                    goto close;
                }
                memmove(in, in + i, have);
                break;
            }
            char *s = in + i;
            size_t n = (size_t)(nl - s);
            i += n + 1;
            if (n && s[n - 1] == '\r') n--;
            /* split into at most 4 tokens */
            char *tok[4];
            size_t tl[4];
            int nt = 0;
            size_t p = 0;
            while (p < n && nt < 4) {
                while (p < n && (s[p] == ' ' || s[p] == '\t')) p++;
                if (p >= n) break;
                tok[nt] = s + p;
                while (p < n && s[p] != ' ' && s[p] != '\t') p++;
                tl[nt] = (size_t)(s + p - tok[nt]);
                nt++;
            }
            if (nt == 0) continue;
            if (tl[0] == 3 && !strncasecmp(tok[0], "PUT", 3) && nt == 3) {
                uint64_t v = 0;
                int okn = tl[2] >= 1 && tl[2] <= 19;
                for (size_t k = 0; okn && k < tl[2]; k++) {
                    if (tok[2][k] < '0' || tok[2][k] > '9') okn = 0;
                    else v = v * 10 + (uint64_t)(tok[2][k] - '0');
                }
                if (!okn) {
                    static const char e[] = "ERR BAD_NUMBER bad payload length\r\n";
                    out_add(&o, e, sizeof e - 1);
                    goto close;
                }
                /* the reply for the last length seen is kept formatted */
                if (v != last_len || !rl) {
                    rl = snprintf(rep, sizeof rep, "OK %llu\r\n",
                                  (unsigned long long)(v > max_message ? max_message : v));
                    last_len = v;
                }
                out_add(&o, rep, (size_t)rl);
                skip = v;
                want_eol = 1;
            } else if (tl[0] == 3 && !strncasecmp(tok[0], "GET", 3) && nt == 2) {
                /* the stamp "000" + 13 digits of seq, counted up in place
                 * (a printf per reply would make this server the slow part) */
                out_add(&o, msg, msglen);
                for (char *d = msg + hl + 15; d >= msg + hl + 3; d--) {
                    if (*d != '9') {
                        (*d)++;
                        break;
                    }
                    *d = '0';
                }
            } else if (tl[0] == 4 && !strncasecmp(tok[0], "PING", 4)) {
                out_add(&o, "PONG\r\n", 6);
            } else if (tl[0] == 3 && !strncasecmp(tok[0], "LEN", 3)) {
                out_add(&o, "OK 0\r\n", 6);
            } else {
                static const char e[] = "ERR UNKNOWN_COMMAND the null server knows PUT GET PING LEN\r\n";
                out_add(&o, e, sizeof e - 1);
            }
            if (o.len >= OUT_FLUSH) out_flush(&o);
        }
        out_flush(&o);
        if (o.failed) break;
    }
close:
    out_flush(&o);
    close(fd);
    free(in);
    free(o.buf);
    free(msg);
    return NULL;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) msg_size = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: beuss-nullserver [--host H] [--port P] [--size BYTES]\n");
            return 2;
        }
    }
    if (msg_size < 16) msg_size = 16;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "beuss-nullserver: --host must be an IPv4 address\n");
        return 2;
    }
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 128) < 0) {
        perror("beuss-nullserver: bind/listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("beuss-nullserver listening on %s:%d\n", host, ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            perror("accept");
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}
