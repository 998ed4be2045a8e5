/* fuzz_engine.c: libFuzzer target for the beuss engine.
 *
 * Input: 6 header bytes, then a wire transcript.
 *   byte 0: configuration (small/large max message size, truncate/reject,
 *           a small output high water, a queued-bytes cap, a short line
 *           limit, idle queue cleanup, a 2-event subscriber buffer)
 *   byte 1: allocation failure injection: 0 none, else fail every Nth
 *           allocation (N = byte1, while the transcript runs)
 *   bytes 2..5: seed of the generator that splits the transcript into
 *           chunks, spreads them over 3 connections, and interleaves ticks,
 *           pause/resume, and close/reopen.
 * With bit 5 of byte 0 set, it instead checks that the parser's result does
 * not depend on how the bytes are split: the transcript fed whole to one
 * engine and one byte at a time to another must give the same output.
 * Checks: no crash, no sanitizer report, output flags well-formed, the
 * engine's memory counter equal to the bytes it really holds, and every
 * block returned once the engine is freed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beuss.h"

typedef struct falloc {
    uint64_t held;
    long live;
    long count;
    long fail_every;
} falloc;

/* Blocks carry their size in a 16-byte header so the fuzzer can check the
 * engine's exact memory accounting. */
static void *f_malloc(void *ctx, size_t n)
{
    falloc *a = ctx;
    uint8_t *p;
    a->count++;
    if (a->fail_every && a->count % a->fail_every == 0)
        return NULL;
    p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof n);
    a->held += n;
    a->live++;
    return p + 16;
}

static void f_free(void *ctx, void *q)
{
    falloc *a = ctx;
    size_t n;
    uint8_t *p;
    if (q == NULL)
        return;
    p = (uint8_t *)q - 16;
    memcpy(&n, p, sizeof n);
    a->held -= n;
    a->live--;
    free(p);
}

static void *f_realloc(void *ctx, void *q, size_t n)
{
    falloc *a = ctx;
    uint8_t *p, *r;
    size_t old;
    if (q == NULL)
        return f_malloc(ctx, n);
    a->count++;
    if (a->fail_every && a->count % a->fail_every == 0)
        return NULL;
    p = (uint8_t *)q - 16;
    memcpy(&old, p, sizeof old);
    r = realloc(p, n + 16);
    if (r == NULL)
        return NULL;
    memcpy(r, &n, sizeof n);
    a->held = a->held - old + n;
    return r + 16;
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

#define NC 3

/* fake_next_fire stands in for a cron library: a spec of decimal digits
 * fires every that many ms (1..10^6), "never" never, anything else is not
 * understood. */
static int64_t fake_next_fire(void *ctx, const char *spec, size_t len, int64_t after, char *err,
                              size_t errcap)
{
    int64_t v = 0;
    size_t i;
    (void)ctx;
    if (len == 5 && memcmp(spec, "never", 5) == 0)
        return -1;
    for (i = 0; i < len && i < 7; i++) {
        if (spec[i] < '0' || spec[i] > '9')
            break;
        v = v * 10 + (spec[i] - '0');
    }
    if (i != len || v < 1 || v > 1000000) {
        snprintf(err, errcap, "not understood");
        return -2;
    }
    return after + v;
}

static void drain(beuss_engine *e, const falloc *fa)
{
    beuss_output o;
    beuss_stats st;
    while (beuss_output_next(e, &o)) {
        if (o.flags & ~(uint32_t)(BEUSS_OUT_CLOSE | BEUSS_OUT_FULL | BEUSS_OUT_WAITING))
            abort();
        if (o.len && o.data == NULL)
            abort();
        /* Touch every byte, so ASan sees a bad pointer. */
        if (o.len) {
            volatile uint8_t x = o.data[0];
            volatile uint8_t y = o.data[o.len - 1];
            (void)x;
            (void)y;
        }
    }
    beuss_output_done(e);
    beuss_engine_stats(e, &st);
    if (st.memory != fa->held)
        abort();
}

/* collect runs data on one connection of a fresh engine, fed in chunks of
 * step bytes (0: whole), and returns the output (malloc'ed, *n bytes). */
static uint8_t *collect(const uint8_t *data, size_t size, size_t step, size_t *n)
{
    beuss_config cfg;
    beuss_engine *e;
    beuss_output o;
    uint32_t c;
    size_t pos = 0, cap = 1024;
    uint8_t *out = malloc(cap);
    beuss_config_init(&cfg);
    cfg.max_message_size = 16;
    cfg.next_fire = fake_next_fire;
    e = beuss_engine_new(&cfg, NULL, 0);
    if (e == NULL || out == NULL || beuss_conn_open(e, &c) != BEUSS_OK)
        abort();
    *n = 0;
    while (pos < size) {
        size_t k = step && step < size - pos ? step : size - pos;
        beuss_feed(e, c, data + pos, k, 0);
        pos += k;
        while (beuss_output_next(e, &o)) {
            if (*n + o.len > cap) {
                while (*n + o.len > cap)
                    cap *= 2;
                out = realloc(out, cap);
                if (out == NULL)
                    abort();
            }
            if (o.len)
                memcpy(out + *n, o.data, o.len);
            *n += o.len;
        }
        beuss_output_done(e);
    }
    beuss_engine_free(e);
    return out;
}

/* normalize drops the digits after "DATA " and "\nmemory " in out[0:n) in
 * place and returns the new length: the engine's memory figure in STATS
 * rightly depends on which bytes had to be copied between feeds. */
static size_t normalize(uint8_t *out, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        int skip = 0;
        /* First-byte checks before memcmp: libFuzzer traces every memcmp. */
        if (out[r] == 'D' && r + 5 <= n && memcmp(out + r, "DATA ", 5) == 0) {
            memmove(out + w, out + r, 5);
            w += 5;
            r += 5;
            skip = 1;
        } else if (out[r] == '\n' && r + 8 <= n && memcmp(out + r, "\nmemory ", 8) == 0) {
            memmove(out + w, out + r, 8);
            w += 8;
            r += 8;
            skip = 1;
        }
        if (skip) {
            while (r < n && out[r] >= '0' && out[r] <= '9')
                r++;
            continue;
        }
        out[w++] = out[r++];
    }
    return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    beuss_config cfg;
    beuss_allocator al;
    falloc fa;
    beuss_engine *e;
    uint32_t conn[NC];
    int open[NC];
    uint32_t seed;
    uint64_t now = 1000;
    size_t pos = 6;
    int i;
    if (size < 6)
        return 0;
    if (data[0] & 32) {
        size_t n1, n2;
        uint8_t *a = collect(data + 6, size - 6, 0, &n1);
        uint8_t *b = collect(data + 6, size - 6, 1, &n2);
        n1 = normalize(a, n1);
        n2 = normalize(b, n2);
        if (n1 != n2 || memcmp(a, b, n1) != 0)
            abort();
        free(a);
        free(b);
        return 0;
    }
    beuss_config_init(&cfg);
    if (data[0] & 1)
        cfg.max_message_size = 16;
    if (data[0] & 2)
        cfg.oversize = BEUSS_OVERSIZE_REJECT;
    if (data[0] & 4)
        cfg.output_high_water = 64;
    if (data[0] & 8)
        cfg.max_queued_bytes = 40;
    if (data[0] & 16)
        cfg.max_line = BEUSS_MIN_MAX_LINE;
    if (data[0] & 64)
        cfg.queue_idle_ms = 50;
    if (data[0] & 128) {
        cfg.sub_buffer = 2;
        cfg.sub_policy = data[2] & 1 ? BEUSS_SUB_DISCONNECT : BEUSS_SUB_DROP_OLDEST;
    }
    cfg.next_fire = fake_next_fire;
    memset(&fa, 0, sizeof fa);
    al.malloc = f_malloc;
    al.realloc = f_realloc;
    al.free = f_free;
    al.ctx = &fa;
    e = beuss_engine_new(&cfg, &al, now);
    if (e == NULL)
        abort();
    fa.fail_every = data[1];
    memcpy(&seed, data + 2, 4);
    seed |= 1;
    for (i = 0; i < NC; i++)
        open[i] = beuss_conn_open(e, &conn[i]) == BEUSS_OK;
    while (pos < size) {
        uint32_t r = rnd(&seed);
        int k = (int)(r % NC);
        switch ((r >> 8) % 16) {
        case 0: /* time passes */
            now += (r >> 12) % 200;
            beuss_tick(e, now);
            break;
        case 1: /* the socket is full, then drains */
            if (open[k])
                beuss_conn_pause(e, conn[k]);
            break;
        case 2:
        case 3:
            if (open[k])
                beuss_conn_resume(e, conn[k], now);
            break;
        case 4: /* the client goes away and another comes */
            if ((r >> 12) % 4 == 0) {
                if (open[k])
                    beuss_conn_close(e, conn[k], now);
                open[k] = beuss_conn_open(e, &conn[k]) == BEUSS_OK;
                break;
            }
            /* fall through */
        default: {
            size_t n = 1 + (r >> 12) % 64;
            if ((r >> 20) % 8 == 0)
                n = size - pos;
            if (n > size - pos)
                n = size - pos;
            if (open[k]) {
                int st = beuss_feed(e, conn[k], data + pos, n, now);
                if (st != BEUSS_OK && st != BEUSS_ENOMEM && st != BEUSS_EOVERFLOW)
                    abort();
            }
            pos += n;
            break;
        }
        }
        drain(e, &fa);
        {
            int64_t d = beuss_next_deadline(e);
            if (d >= 0 && (uint64_t)d <= now && (r >> 24) % 2) {
                beuss_tick(e, now);
                drain(e, &fa);
            }
        }
    }
    fa.fail_every = 0;
    beuss_tick(e, now + 100000);
    drain(e, &fa);
    for (i = 0; i < NC; i++)
        if (open[i])
            beuss_conn_close(e, conn[i], now);
    drain(e, &fa);
    beuss_engine_free(e);
    if (fa.live != 0 || fa.held != 0)
        abort();
    return 0;
}
