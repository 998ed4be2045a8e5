/* harness.c: the check counters, counting allocator and output-collecting
 * engine harness shared by the C test programs (see harness.h). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int checks;
int failures;
const char *current;

int check_at(int ok, const char *file, int line, const char *cond)
{
    checks++;
    if (!ok) {
        failures++;
        if (current)
            fprintf(stderr, "%s:%d: [%s] check failed: %s\n", file, line, current, cond);
        else
            fprintf(stderr, "%s:%d: check failed: %s\n", file, line, cond);
    }
    return ok;
}

int checks_report(void)
{
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

/* ---- the counting allocator ---- */

/* t_fails returns whether the allocation just counted must fail. */
static int t_fails(const talloc *t)
{
    return (t->fail_at && t->count == t->fail_at) || (t->fail_from && t->count >= t->fail_from);
}

static void *t_malloc(void *ctx, size_t n)
{
    talloc *t = ctx;
    void *p;
    t->count++;
    if (t_fails(t))
        return NULL;
    p = malloc(n);
    if (p)
        t->live++;
    return p;
}

static void *t_realloc(void *ctx, void *p, size_t n)
{
    talloc *t = ctx;
    void *q;
    t->count++;
    if (t_fails(t))
        return NULL;
    q = realloc(p, n);
    if (q && p == NULL)
        t->live++;
    return q;
}

static void t_free(void *ctx, void *p)
{
    talloc *t = ctx;
    if (p) {
        t->live--;
        free(p);
    }
}

/* ---- the harness ---- */

beuss_engine *h_start(harness *h, const beuss_config *cfg, long fail_at)
{
    memset(h, 0, sizeof *h);
    h->al.malloc = t_malloc;
    h->al.realloc = t_realloc;
    h->al.free = t_free;
    h->al.ctx = &h->ta;
    h->ta.fail_at = fail_at;
    h->e = beuss_engine_new(cfg, &h->al, 1000);
    return h->e;
}

void h_init_cfg(harness *h, const beuss_config *cfg)
{
    CHECK(h_start(h, cfg, 0) != NULL);
}

void h_init(harness *h)
{
    h_init_cfg(h, NULL);
}

uint32_t h_open(harness *h)
{
    uint32_t id = 99;
    CHECK(beuss_conn_open(h->e, &id) == BEUSS_OK);
    return id;
}

void h_drain(harness *h)
{
    beuss_output o;
    while (beuss_output_next(h->e, &o)) {
        CHECK(o.conn < MAXC);
        if (o.conn >= MAXC)
            continue;
        if (h->outlen[o.conn] + o.len + 1 > h->outcap[o.conn]) {
            size_t cap = (h->outlen[o.conn] + o.len + 1) * 2;
            h->out[o.conn] = realloc(h->out[o.conn], cap);
            h->outcap[o.conn] = cap;
        }
        if (o.len)
            memcpy(h->out[o.conn] + h->outlen[o.conn], o.data, o.len);
        h->outlen[o.conn] += o.len;
        h->out[o.conn][h->outlen[o.conn]] = 0;
        h->flags[o.conn] = o.flags;
        h->reports[o.conn]++;
    }
    beuss_output_done(h->e);
}

int h_feed(harness *h, uint32_t c, const void *data, size_t len, uint64_t now)
{
    int r = beuss_feed(h->e, c, data, len, now);
    h_drain(h);
    return r;
}

int h_feeds(harness *h, uint32_t c, const char *s)
{
    return h_feed(h, c, s, strlen(s), 1000);
}

void h_feed_ok(harness *h, uint32_t c, const char *s, uint64_t now)
{
    CHECK(h_feed(h, c, s, strlen(s), now) == BEUSS_OK);
}

void h_feeds_ok(harness *h, uint32_t c, const char *s)
{
    h_feed_ok(h, c, s, 1000);
}

void h_tick(harness *h, uint64_t now)
{
    CHECK(beuss_tick(h->e, now) == BEUSS_OK);
    h_drain(h);
}

char *h_take(harness *h, uint32_t c, size_t *len)
{
    char *s = malloc(h->outlen[c] + 1);
    memcpy(s, h->out[c] ? h->out[c] : "", h->outlen[c]);
    s[h->outlen[c]] = 0;
    if (len)
        *len = h->outlen[c];
    h->outlen[c] = 0;
    return s;
}

/* expect_at returns ok after counting it as one check on conn c's output
 * (got[0:n)), reporting want and got on failure, and forgets the output. */
static int expect_at(harness *h, uint32_t c, int ok, const char *what, const char *want,
                     const char *file, int line)
{
    size_t n = h->outlen[c];
    const char *got = h->out[c] ? h->out[c] : "";
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "%s:%d: [%s] conn %u output\n  want%s: \"%s\"\n  got:  \"%.*s\"\n", file,
                line, current ? current : "", c, what, want, (int)(n > 600 ? 600 : n), got);
    }
    h->outlen[c] = 0;
    return ok;
}

int expect_out(harness *h, uint32_t c, const char *want, const char *file, int line)
{
    size_t n = h->outlen[c];
    int ok = n == strlen(want) && (n == 0 || memcmp(h->out[c], want, n) == 0);
    return expect_at(h, c, ok, "", want, file, line);
}

int expect_prefix(harness *h, uint32_t c, const char *want, const char *file, int line)
{
    size_t n = h->outlen[c], w = strlen(want);
    int ok = n >= w && (w == 0 || memcmp(h->out[c], want, w) == 0);
    return expect_at(h, c, ok, " prefix", want, file, line);
}

void h_free(harness *h)
{
    int i;
    beuss_engine_free(h->e);
    CHECK(h->ta.live == 0);
    for (i = 0; i < MAXC; i++)
        free(h->out[i]);
}

beuss_stats stats(harness *h)
{
    beuss_stats s;
    beuss_engine_stats(h->e, &s);
    return s;
}
