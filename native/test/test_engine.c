/* test_engine.c: unit tests of the beuss engine, driven through its public
 * API with wire transcripts: feed request bytes, compare the output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beuss.h"

static int failures;
static int checks;
static const char *current;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        checks++;                                                                       \
        if (!(cond)) {                                                                  \
            failures++;                                                                 \
            fprintf(stderr, "%s:%d: [%s] check failed: %s\n", __FILE__, __LINE__,     \
                    current, #cond);                                                    \
        }                                                                               \
    } while (0)

/* ---- a counting allocator that can fail the Nth allocation ---- */

typedef struct talloc {
    long count;    /* allocations so far */
    long fail_at;  /* fail the allocation with this number (1-based), 0 = never */
    long fail_from; /* fail every allocation from this number on, 0 = never */
    long live;     /* blocks held */
} talloc;

static void *t_malloc(void *ctx, size_t n)
{
    talloc *t = ctx;
    void *p;
    t->count++;
    if ((t->fail_at && t->count == t->fail_at) || (t->fail_from && t->count >= t->fail_from))
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
    if ((t->fail_at && t->count == t->fail_at) || (t->fail_from && t->count >= t->fail_from))
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

/* ---- harness: collect each connection's output ---- */

#define MAXC 16

typedef struct harness {
    beuss_engine *e;
    talloc ta;
    beuss_allocator al;
    char *out[MAXC]; /* output since last take, per conn */
    size_t outlen[MAXC];
    size_t outcap[MAXC];
    uint32_t flags[MAXC]; /* last flags reported */
    int reports[MAXC];
} harness;

static void h_drain(harness *h)
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

static void h_init_cfg(harness *h, const beuss_config *cfg)
{
    memset(h, 0, sizeof *h);
    h->al.malloc = t_malloc;
    h->al.realloc = t_realloc;
    h->al.free = t_free;
    h->al.ctx = &h->ta;
    h->e = beuss_engine_new(cfg, &h->al, 1000);
    CHECK(h->e != NULL);
}

static void h_init(harness *h)
{
    h_init_cfg(h, NULL);
}

static uint32_t h_open(harness *h)
{
    uint32_t id = 99;
    CHECK(beuss_conn_open(h->e, &id) == BEUSS_OK);
    return id;
}

static int h_feed(harness *h, uint32_t c, const void *data, size_t len, uint64_t now)
{
    int r = beuss_feed(h->e, c, data, len, now);
    h_drain(h);
    return r;
}

static int h_feeds(harness *h, uint32_t c, const char *s)
{
    return h_feed(h, c, s, strlen(s), 1000);
}

/* h_take returns (and forgets) conn c's collected output, malloc'ed. */
static char *h_take(harness *h, uint32_t c, size_t *len)
{
    char *s = malloc(h->outlen[c] + 1);
    memcpy(s, h->out[c] ? h->out[c] : "", h->outlen[c]);
    s[h->outlen[c]] = 0;
    if (len)
        *len = h->outlen[c];
    h->outlen[c] = 0;
    return s;
}

static int expect_out(harness *h, uint32_t c, const char *want, int line)
{
    size_t n;
    char *got = h_take(h, c, &n);
    int ok = n == strlen(want) && memcmp(got, want, n) == 0;
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "%s:%d: [%s] conn %u output\n  want: \"%s\"\n  got:  \"%.*s\"\n",
                __FILE__, line, current, c, want, (int)(n > 400 ? 400 : n), got);
    }
    free(got);
    return ok;
}

#define EXPECT(h, c, want) expect_out(h, c, want, __LINE__)

/* expect_prefix checks conn c's output starts with want and forgets it all. */
static int expect_prefix(harness *h, uint32_t c, const char *want, int line)
{
    size_t n;
    char *got = h_take(h, c, &n);
    int ok = n >= strlen(want) && memcmp(got, want, strlen(want)) == 0;
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "%s:%d: [%s] conn %u output\n  want prefix: \"%s\"\n  got:  \"%.*s\"\n",
                __FILE__, line, current, c, want, (int)(n > 400 ? 400 : n), got);
    }
    free(got);
    return ok;
}

#define EXPECT_PREFIX(h, c, want) expect_prefix(h, c, want, __LINE__)

static void h_free(harness *h)
{
    int i;
    beuss_engine_free(h->e);
    CHECK(h->ta.live == 0);
    for (i = 0; i < MAXC; i++)
        free(h->out[i]);
}

static void stats(harness *h, beuss_stats *s)
{
    beuss_engine_stats(h->e, s);
}

/* ---- tests ---- */

static void test_basic_transcript(void)
{
    harness h;
    uint32_t c;
    current = "basic transcript";
    h_init(&h);
    c = h_open(&h);
    h_feeds(&h, c, "PING\r\n");
    EXPECT(&h, c, "PONG\r\n");
    h_feeds(&h, c, "PUT jobs 5\r\nhello\r\n");
    EXPECT(&h, c, "OK 5\r\n");
    h_feeds(&h, c, "LEN jobs\n");
    EXPECT(&h, c, "OK 1\r\n");
    h_feeds(&h, c, "PEEK jobs\n");
    EXPECT(&h, c, "MSG 5\r\nhello\r\n");
    h_feeds(&h, c, "GET jobs\n");
    EXPECT(&h, c, "MSG 5\r\nhello\r\n");
    h_feeds(&h, c, "GET jobs\n");
    EXPECT(&h, c, "EMPTY\r\n");
    h_feeds(&h, c, "FOO\n");
    EXPECT(&h, c, "ERR UNKNOWN_COMMAND unknown command 'FOO'\r\n");
    h_feeds(&h, c, "QUIT\n");
    EXPECT(&h, c, "OK\r\n");
    CHECK(h.flags[c] & BEUSS_OUT_CLOSE);
    h_free(&h);
}

int main(void)
{
    test_basic_transcript();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
