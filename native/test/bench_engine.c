/* bench_engine.c: prints the engine's throughput through beuss_feed (not a
 * test: it asserts nothing about speed). Each case pre-encodes requests,
 * feeds them in 64 KiB chunks as a socket would deliver them, and drains the
 * output after every call, as the binding does.
 *
 *   bench_engine [messages] [payload bytes]     (default 2000000 16) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "beuss.h"

#define CHUNK 65536

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t drain(beuss_engine *e, uint32_t *full_conn)
{
    beuss_output o;
    size_t total = 0;
    while (beuss_output_next(e, &o)) {
        total += o.len;
        if (o.flags & BEUSS_OUT_FULL)
            *full_conn = o.conn;
    }
    beuss_output_done(e);
    return total;
}

/* feed_all feeds buf to conn in chunks, resuming connections the engine
 * paused for output, and returns the output bytes produced. */
static size_t feed_all(beuss_engine *e, uint32_t conn, const char *buf, size_t len)
{
    size_t off, out = 0;
    for (off = 0; off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        uint32_t full = UINT32_MAX;
        if (beuss_feed(e, conn, (const uint8_t *)buf + off, n, 0) != BEUSS_OK) {
            fprintf(stderr, "feed failed\n");
            exit(1);
        }
        out += drain(e, &full);
        while (full != UINT32_MAX) {
            uint32_t c = full;
            full = UINT32_MAX;
            beuss_conn_resume(e, c, 0);
            out += drain(e, &full);
        }
    }
    return out;
}

static char *encode(size_t n, size_t psize, const char *fmt_head, size_t *len)
{
    char head[64];
    int hl = snprintf(head, sizeof head, fmt_head, psize);
    size_t per = (size_t)hl + (psize ? psize + 2 : 0), i;
    char *buf = malloc(n * per), *w = buf;
    for (i = 0; i < n; i++) {
        memcpy(w, head, (size_t)hl);
        w += hl;
        if (psize) {
            memset(w, 'a' + (int)(i % 26), psize);
            w += psize;
            *w++ = '\r';
            *w++ = '\n';
        }
    }
    *len = (size_t)(w - buf);
    return buf;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    size_t psize = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
    size_t plen, glen, out;
    char *puts = encode(n, psize, "PUT bench %zu\r\n", &plen);
    char *gets = encode(n, 0, "GET bench\r\n", &glen);
    beuss_engine *e = beuss_engine_new(NULL, NULL, 0);
    beuss_stats st;
    uint32_t p, c;
    double t0, t1;
    (void)psize;
    beuss_conn_open(e, &p);
    beuss_conn_open(e, &c);

    t0 = now_s();
    out = feed_all(e, p, puts, plen);
    t1 = now_s();
    beuss_engine_stats(e, &st);
    printf("PUT  %zu x %zu B: %.2f M msg/s, %.0f MB/s in (%zu B out)\n", n, psize,
           n / (t1 - t0) / 1e6, plen / (t1 - t0) / 1e6, out);
    printf("     queued: %llu msgs, engine memory %llu B = %.2f B/msg (payload %zu)\n",
           (unsigned long long)st.messages, (unsigned long long)st.memory,
           (double)st.memory / (double)st.messages, psize);

    t0 = now_s();
    out = feed_all(e, c, gets, glen);
    t1 = now_s();
    beuss_engine_stats(e, &st);
    printf("GET  %zu x %zu B: %.2f M msg/s (%zu B out, %llu left)\n", n, psize,
           n / (t1 - t0) / 1e6, out, (unsigned long long)st.messages);

    /* A consumer with ample credit: each PUT is handed straight over. */
    {
        const char *on = "ON bench CREDIT 4294967295\r\n";
        uint32_t full = UINT32_MAX;
        beuss_feed(e, c, (const uint8_t *)on, strlen(on), 0);
        drain(e, &full);
    }
    t0 = now_s();
    out = feed_all(e, p, puts, plen);
    t1 = now_s();
    beuss_engine_stats(e, &st);
    printf("PUT->ON %zu x %zu B: %.2f M msg/s (%zu B out, %llu pushed, %llu left)\n", n, psize,
           n / (t1 - t0) / 1e6, out, (unsigned long long)st.pushed,
           (unsigned long long)st.messages);

    /* Steady state: one connection alternates PUT and GET on a queue that
     * stays short, so memory is reused instead of growing. */
    {
        char *mix;
        size_t mlen = plen / n + glen / n, i, pl = plen / n, gl = glen / n;
        const char *off = "OFF bench\r\n";
        uint32_t full = UINT32_MAX;
        beuss_feed(e, c, (const uint8_t *)off, strlen(off), 0);
        drain(e, &full);
        mix = malloc(mlen * n);
        for (i = 0; i < n; i++) {
            memcpy(mix + i * mlen, puts, pl);
            memcpy(mix + i * mlen + pl, gets, gl);
        }
        t0 = now_s();
        out = feed_all(e, p, mix, mlen * n);
        t1 = now_s();
        beuss_engine_stats(e, &st);
        printf("PUT+GET %zu x %zu B: %.2f M requests/s (%zu B out, %llu left)\n", n, psize,
               2 * n / (t1 - t0) / 1e6, out, (unsigned long long)st.messages);
        free(mix);
    }

    beuss_engine_free(e);
    free(puts);
    free(gets);
    return 0;
}
