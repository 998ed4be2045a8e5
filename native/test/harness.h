/* harness.h: what the C test programs share, built once into the
 * beuss_test_harness library:
 *   - check counting (CHECK, checks_report) for every test program;
 *   - an allocator that counts live blocks and can fail chosen allocations;
 *   - a harness that runs one engine and collects each connection's output,
 *     so a test is a wire transcript: feed request bytes, compare output. */
#ifndef BEUSS_TEST_HARNESS_H
#define BEUSS_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "beuss.h"

/* ---- checks ---- */

extern int checks;          /* checks run so far */
extern int failures;        /* checks failed so far */
extern const char *current; /* name of the running test, printed on failure; may be NULL */

/* check_at returns ok after counting one check, and reports it on stderr
 * (file:line, current test, the failed condition) when ok is 0. */
int check_at(int ok, const char *file, int line, const char *cond);

#define CHECK(cond) check_at((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

/* checks_report prints the check counts and returns the process exit
 * status: 0 when no check failed, 1 otherwise. */
int checks_report(void);

/* ---- a counting allocator that can fail chosen allocations ---- */

typedef struct talloc {
    long count;     /* allocations so far */
    long fail_at;   /* fail the allocation with this number (1-based), 0 = never */
    long fail_from; /* fail every allocation from this number on, 0 = never */
    long live;      /* blocks held */
} talloc;

/* ---- harness: one engine, each connection's output collected ---- */

#define MAXC 16 /* connection ids the harness collects output for */

typedef struct harness {
    beuss_engine *e;
    talloc ta;
    beuss_allocator al;
    char *out[MAXC]; /* output since last take, per conn, NUL-terminated */
    size_t outlen[MAXC];
    size_t outcap[MAXC];
    uint32_t flags[MAXC]; /* last flags reported */
    int reports[MAXC];    /* outputs reported */
} harness;

/* h_start returns a new engine built with cfg (NULL: defaults) on the
 * counting allocator, which fails allocation number fail_at (0: none); NULL
 * when the engine could not be built. It does not check the result, so
 * allocation-failure tests can expect NULL. */
beuss_engine *h_start(harness *h, const beuss_config *cfg, long fail_at);

/* h_init_cfg starts h with cfg (NULL: defaults) and checks it started. */
void h_init_cfg(harness *h, const beuss_config *cfg);

/* h_init starts h with the default configuration and checks it started. */
void h_init(harness *h);

/* h_open returns the id of a newly opened connection (checked to open). */
uint32_t h_open(harness *h);

/* h_drain collects all pending output into each connection's buffer. */
void h_drain(harness *h);

/* h_feed returns beuss_feed's result for data[0:len) fed to conn c at time
 * now, after collecting the output. */
int h_feed(harness *h, uint32_t c, const void *data, size_t len, uint64_t now);

/* h_feeds returns h_feed's result for string s at time 1000. */
int h_feeds(harness *h, uint32_t c, const char *s);

/* h_feed_ok feeds string s to conn c at time now and checks it is accepted. */
void h_feed_ok(harness *h, uint32_t c, const char *s, uint64_t now);

/* h_feeds_ok feeds string s at time 1000 and checks it is accepted. */
void h_feeds_ok(harness *h, uint32_t c, const char *s);

/* h_tick advances the engine's clock to now, checks it succeeded and
 * collects the output. */
void h_tick(harness *h, uint64_t now);

/* h_take returns (and forgets) conn c's collected output, malloc'ed and
 * NUL-terminated; its length goes to *len unless len is NULL. */
char *h_take(harness *h, uint32_t c, size_t *len);

/* expect_out returns whether conn c's output is exactly want, as one check
 * reported at file:line, and forgets the output. */
int expect_out(harness *h, uint32_t c, const char *want, const char *file, int line);

/* expect_prefix returns whether conn c's output starts with want, as one
 * check reported at file:line, and forgets the output. */
int expect_prefix(harness *h, uint32_t c, const char *want, const char *file, int line);

#define EXPECT(h, c, want) expect_out(h, c, want, __FILE__, __LINE__)
#define EXPECT_PREFIX(h, c, want) expect_prefix(h, c, want, __FILE__, __LINE__)

/* h_free frees the engine, checks it left no block allocated, and frees
 * the collected output. */
void h_free(harness *h);

/* stats returns the engine's counters. */
beuss_stats stats(harness *h);

#endif
