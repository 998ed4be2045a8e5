/* test_internal.c: unit tests of the engine's internal pieces that the
 * public API does not reach yet: the record store's push_front (for
 * at-least-once redelivery) across segment boundaries, its header forms and
 * exact per-record cost, the timer heap's ordering and removal, and the
 * intrusive lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

/* take_int pops the head record and returns the int it holds, or -1. */
static int take_int(bstore *s, balloc *al)
{
    const uint8_t *p;
    size_t n;
    int v;
    if (!store_peek(s, &p, &n) || n < sizeof v)
        return -1;
    memcpy(&v, p, sizeof v);
    store_drop(s, al);
    return v;
}

static void test_store(void)
{
    balloc al;
    bstore s;
    int i, ok = 1;
    char big[100000];
    const uint8_t *p;
    size_t n;
    ba_init(&al, NULL);
    memset(&s, 0, sizeof s);
    CHECK(!store_peek(&s, &p, &n));
    /* Appends across many segments, FIFO out. */
    for (i = 0; i < 50000; i++)
        CHECK(store_append(&s, &al, (const uint8_t *)&i, sizeof i) == 0);
    CHECK(s.count == 50000 && s.bytes == 50000 * sizeof(int));
    /* 1-byte header + 4-byte payload: 5 bytes per record, plus at most the
     * growing small segments (< 64 KiB) and the unfilled part of the last. */
    CHECK(al.held < 50000 * 5 + 2 * 65536);
    if (al.held >= 50000 * 5 + 2 * 65536)
        fprintf(stderr, "  held %llu\n", (unsigned long long)al.held);
    for (i = 0; i < 25000; i++)
        ok &= take_int(&s, &al) == i;
    CHECK(ok);
    /* push_front puts records back at the head, in LIFO order, both into the
     * room freed before the head and into fresh segments in front. */
    for (i = 24999; i >= 20000; i--)
        CHECK(store_push_front(&s, &al, (const uint8_t *)&i, sizeof i, 0) == 0);
    for (i = 20000; i < 50000; i++)
        ok &= take_int(&s, &al) == i;
    CHECK(ok);
    CHECK(s.count == 0 && s.bytes == 0);
    /* push_front on an empty store, then appends behind it. */
    i = 7;
    CHECK(store_push_front(&s, &al, (const uint8_t *)&i, sizeof i, 0) == 0);
    i = 8;
    CHECK(store_append(&s, &al, (const uint8_t *)&i, sizeof i) == 0);
    i = 6;
    CHECK(store_push_front(&s, &al, (const uint8_t *)&i, sizeof i, 0) == 0);
    CHECK(take_int(&s, &al) == 6 && take_int(&s, &al) == 7 && take_int(&s, &al) == 8);
    CHECK(take_int(&s, &al) == -1);
    /* Records larger than a standard segment, and empty ones. */
    memset(big, 'x', sizeof big);
    CHECK(store_append(&s, &al, (const uint8_t *)big, sizeof big) == 0);
    CHECK(store_append(&s, &al, NULL, 0) == 0);
    CHECK(store_push_front(&s, &al, (const uint8_t *)big, 70000, 0) == 0);
    CHECK(store_peek(&s, &p, &n) && n == 70000);
    store_drop(&s, &al);
    CHECK(store_peek(&s, &p, &n) && n == sizeof big && p[99999] == 'x');
    store_drop(&s, &al);
    CHECK(store_peek(&s, &p, &n) && n == 0);
    CHECK(store_purge(&s, &al) == 1);
    CHECK(al.held == 0);
    /* Every header form at both ends of the store. */
    {
        static const size_t lens[] = {0, 1, 16382, 16383, 16384, 16385, 70000, 1};
        size_t k;
        for (k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            memset(big, (int)('a' + k), lens[k]);
            CHECK(store_append(&s, &al, (const uint8_t *)big, lens[k]) == 0);
            CHECK(store_push_front(&s, &al, (const uint8_t *)big, lens[k], 0) == 0);
        }
        for (k = sizeof lens / sizeof lens[0]; k-- > 0;) {
            ok &= store_peek(&s, &p, &n) && n == lens[k] && (n == 0 || (p[0] == 'a' + k && p[n - 1] == 'a' + k));
            store_drop(&s, &al);
        }
        for (k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            ok &= store_peek(&s, &p, &n) && n == lens[k] && (n == 0 || (p[0] == 'a' + k && p[n - 1] == 'a' + k));
            store_drop(&s, &al);
        }
        CHECK(ok);
        CHECK(s.count == 0 && s.bytes == 0);
    }
    /* Small records cost 1 header byte each. */
    {
        uint64_t before = al.held;
        for (i = 0; i < 30000; i++)
            CHECK(store_append(&s, &al, (const uint8_t *)big, 98) == 0);
        CHECK(al.held - before < 30000 * 99 + 2 * 65536);
        store_purge(&s, &al);
    }
    /* Alternating put/take on an empty queue keeps one small segment. */
    for (i = 0; i < 1000; i++) {
        CHECK(store_append(&s, &al, (const uint8_t *)&i, sizeof i) == 0);
        ok &= take_int(&s, &al) == i;
    }
    CHECK(ok);
    CHECK(al.held <= 1024);
    store_purge(&s, &al);
    CHECK(al.held == 0);
}

/* spec_hdr returns the header size internal.h specifies for a record of len
 * payload bytes delivered d times before: 1 byte for a fresh record up to
 * 127 bytes, 2 up to 8191, 5 above, plus 4 for a delivery count. */
static size_t spec_hdr(size_t len, uint32_t d)
{
    size_t h = (d == 0 && len <= 127) ? 1 : len <= 8191 ? 2 : 5;
    return h + (d ? 4 : 0);
}

/* store_used returns the bytes s's records occupy in its segments. */
static uint64_t store_used(const bstore *s)
{
    uint64_t n = 0;
    const bseg *g;
    for (g = s->first; g; g = g->next)
        n += g->tail - g->head;
    return n;
}

/* fill writes record number k's len bytes at p: a pattern that differs
 * between records and along each one, so a shifted or truncated payload
 * shows. */
static void fill(uint8_t *p, size_t len, size_t k)
{
    size_t j;
    for (j = 0; j < len; j++)
        p[j] = (uint8_t)(k * 131u + j * 7u + (j >> 8));
}

/* same returns 1 if data[0:len) is record k's pattern of want bytes. */
static int same(const uint8_t *data, size_t len, size_t want, size_t k)
{
    size_t j;
    if (len != want)
        return 0;
    for (j = 0; j < len; j++)
        if (data[j] != (uint8_t)(k * 131u + j * 7u + (j >> 8)))
            return 0;
    return 1;
}

/* Lengths at every header form's boundary, and a few far beyond. */
static const size_t bound_lens[] = {0,     1,     126,   127,   128,    129,
                                    8190,  8191,  8192,  8193,  16383,  16384,
                                    65535, 65536, 65537, 300000, 1048579};
#define NBOUND (sizeof bound_lens / sizeof bound_lens[0])

static void test_store_header_boundaries(void)
{
    balloc al;
    bstore s;
    uint8_t *buf = malloc(1048579);
    size_t order[3 * NBOUND], n = 0, k, len;
    const uint8_t *p;
    uint32_t d;
    int ok = 1;
    ba_init(&al, NULL);
    memset(&s, 0, sizeof s);
    /* Ascending, descending, then alternating small and big: every form
     * follows every other one in the same segments. */
    for (k = 0; k < NBOUND; k++)
        order[n++] = k;
    for (k = NBOUND; k-- > 0;)
        order[n++] = k;
    for (k = 0; k < NBOUND; k++)
        order[n++] = k % 2 ? NBOUND - 1 - k / 2 : k / 2;
    for (k = 0; k < n; k++) {
        uint64_t before = store_used(&s);
        len = bound_lens[order[k]];
        fill(buf, len, k);
        CHECK(store_append(&s, &al, buf, len) == 0);
        /* Exact cost of this record: its header as specified + payload. */
        ok &= store_used(&s) - before == spec_hdr(len, 0) + len;
        if (store_used(&s) - before != spec_hdr(len, 0) + len)
            fprintf(stderr, "  len %zu: record took %llu bytes, want %zu\n", len,
                    (unsigned long long)(store_used(&s) - before), spec_hdr(len, 0) + len);
    }
    CHECK(ok);
    CHECK(s.count == n);
    for (k = 0; k < n; k++) {
        int got = store_peek_d(&s, &p, &len, &d);
        ok &= got && d == 0 && same(p, len, bound_lens[order[k]], k);
        if (!(got && d == 0 && same(p, len, bound_lens[order[k]], k))) {
            fprintf(stderr, "  record %zu (len %zu): got len %zu d %u\n", k, bound_lens[order[k]],
                    got ? len : 0, got ? d : 0);
            break;
        }
        store_drop(&s, &al);
    }
    CHECK(ok);
    CHECK(s.count == 0 && s.bytes == 0 && store_used(&s) == 0);
    store_purge(&s, &al);
    CHECK(al.held == 0);
    free(buf);
}

/* take_copy copies the head record into buf, stores its length and earlier
 * deliveries, drops it and returns 1; or returns 0 when s is empty. */
static int take_copy(bstore *s, balloc *al, uint8_t *buf, size_t *len, uint32_t *d)
{
    const uint8_t *p;
    if (!store_peek_d(s, &p, len, d))
        return 0;
    memcpy(buf, p, *len);
    store_drop(s, al);
    return 1;
}

static void test_store_put_back(void)
{
    balloc al;
    bstore s;
    uint8_t *buf = malloc(1048579);
    size_t k, len;
    uint32_t d;
    int ok = 1;
    ba_init(&al, NULL);
    memset(&s, 0, sizeof s);
    /* Each size: appended between two small neighbours, taken as under a
     * lease, put back with its delivery count, which survives and rises,
     * then taken for good; the neighbours keep their places. */
    for (k = 0; k < NBOUND; k++) {
        size_t want = bound_lens[k];
        uint32_t round;
        uint8_t mark = (uint8_t)k;
        CHECK(store_append(&s, &al, &mark, 1) == 0);
        fill(buf, want, k);
        CHECK(store_append(&s, &al, buf, want) == 0);
        CHECK(store_append(&s, &al, &mark, 1) == 0);
        CHECK(take_copy(&s, &al, buf, &len, &d) && len == 1 && buf[0] == mark && d == 0);
        CHECK(take_copy(&s, &al, buf, &len, &d) && d == 0 && same(buf, len, want, k));
        for (round = 1; round <= 3; round++) {
            uint64_t before = store_used(&s);
            CHECK(store_push_front(&s, &al, buf, len, round) == 0);
            ok &= store_used(&s) - before == spec_hdr(want, round) + want;
            memset(buf, 0, want);
            CHECK(take_copy(&s, &al, buf, &len, &d) && d == round && same(buf, len, want, k));
        }
        CHECK(store_push_front(&s, &al, buf, len, 4) == 0);
        CHECK(s.count == 2 && s.bytes == want + 1);
        CHECK(take_copy(&s, &al, buf, &len, &d) && d == 4 && same(buf, len, want, k));
        CHECK(take_copy(&s, &al, buf, &len, &d) && len == 1 && buf[0] == mark && d == 0);
        CHECK(s.count == 0);
    }
    CHECK(ok);
    /* Several put back together, of every size, with counts that use all four
     * bytes of the extension, ahead of fresh ones: LIFO at the head, then
     * FIFO. */
    for (k = 0; k < NBOUND; k++) {
        fill(buf, bound_lens[k], k);
        CHECK(store_append(&s, &al, buf, bound_lens[k]) == 0);
    }
    for (k = 0; k < NBOUND; k++) {
        fill(buf, bound_lens[k], 100 + k);
        CHECK(store_push_front(&s, &al, buf, bound_lens[k], 0x01020304u * (uint32_t)(k + 1) | 1u) == 0);
    }
    for (k = NBOUND; k-- > 0;) {
        ok &= take_copy(&s, &al, buf, &len, &d) && d == (0x01020304u * (uint32_t)(k + 1) | 1u) &&
              same(buf, len, bound_lens[k], 100 + k);
    }
    for (k = 0; k < NBOUND; k++)
        ok &= take_copy(&s, &al, buf, &len, &d) && d == 0 && same(buf, len, bound_lens[k], k);
    CHECK(ok);
    CHECK(s.count == 0 && s.bytes == 0);
    store_purge(&s, &al);
    CHECK(al.held == 0);
    free(buf);
}

static void test_store_memory(void)
{
    /* Payload sizes with a 1-byte header (the first four) and just past. */
    static const size_t lens[] = {0, 1, 100, 127, 128};
    size_t k;
    for (k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        balloc al;
        bstore s;
        uint8_t buf[128];
        const size_t n = 200000, len = lens[k], per = spec_hdr(len, 0) + len;
        uint64_t segs = 0, seg_bytes = 0;
        const bseg *g;
        size_t i;
        int packed = 1;
        ba_init(&al, NULL);
        memset(&s, 0, sizeof s);
        memset(buf, 'm', sizeof buf);
        for (i = 0; i < n; i++)
            if (store_append(&s, &al, buf, len) != 0)
                break;
        CHECK(i == n && s.count == n && s.bytes == n * len);
        /* Records take exactly n * (len + header) bytes of the segments. */
        CHECK(store_used(&s) == n * per);
        if (store_used(&s) != n * per)
            fprintf(stderr, "  len %zu: %llu bytes for %zu records, want %zu\n", len,
                    (unsigned long long)store_used(&s), n, n * per);
        /* The rest of what the store holds is segment overhead: each
         * segment's struct, and at its end less than one record's bytes it
         * could not fit (records are never split) -- except in the last. */
        for (g = s.first; g; g = g->next) {
            segs++;
            seg_bytes += sizeof(bseg) + g->cap;
            if (g->next)
                packed &= g->head == 0 && g->cap - g->tail < per;
        }
        CHECK(packed);
        CHECK(al.held == seg_bytes);
        CHECK(al.held - n * per <= segs * sizeof(bseg) + (segs - 1) * (per - 1) +
                                       (s.last->cap - s.last->tail));
        /* All of it, the doubling first segments included, is under one
         * byte per record beyond payload and header. */
        CHECK(al.held < n * (per + 1));
        store_purge(&s, &al);
        CHECK(al.held == 0);
    }
}

static void test_heap(void)
{
    balloc al;
    bheap h;
    btimer t[200];
    uint64_t last = 0;
    int i, ok = 1;
    ba_init(&al, NULL);
    memset(&h, 0, sizeof h);
    CHECK(heap_min(&h) == NULL);
    for (i = 0; i < 200; i++) {
        t[i].at = (uint64_t)((i * 7919) % 200);
        t[i].idx = BH_NONE;
        CHECK(heap_insert(&h, &al, &t[i]) == 0);
    }
    /* Remove every third one, from the middle of the heap. */
    for (i = 0; i < 200; i += 3)
        heap_remove(&h, &t[i]);
    heap_remove(&h, &t[0]); /* twice: no effect */
    CHECK(h.len == 200 - 67);
    while (heap_min(&h)) {
        btimer *m = heap_min(&h);
        ok &= m->at >= last;
        last = m->at;
        heap_remove(&h, m);
    }
    CHECK(ok);
    /* Equal deadlines come out in insertion order. */
    for (i = 0; i < 10; i++) {
        t[i].at = 5;
        CHECK(heap_insert(&h, &al, &t[i]) == 0);
    }
    for (i = 0; i < 10; i++) {
        ok &= heap_min(&h) == &t[i];
        heap_remove(&h, heap_min(&h));
    }
    CHECK(ok);
    heap_free(&h, &al);
    CHECK(al.held == 0);
}

/* An element on two intrusive lists at once, as a membership is. */
typedef struct item {
    int id;
    blink a;
    blink b;
} item;

/* id_of returns the id of the item whose link a (or b, if on_b) is k. */
static int id_of(blink *k, int on_b)
{
    return on_b ? B_CONTAINER_OF(k, item, b)->id : B_CONTAINER_OF(k, item, a)->id;
}

/* ids writes the ids on l (through link a or b) into out and returns how
 * many; it also checks that walking back from the tail gives them reversed. */
static size_t ids(const bdlist *l, int on_b, int *out)
{
    size_t n = 0, i;
    blink *k;
    for (k = l->head; k; k = k->next)
        out[n++] = id_of(k, on_b);
    i = n;
    for (k = l->tail; k; k = k->prev)
        CHECK(i > 0 && out[--i] == id_of(k, on_b));
    CHECK(i == 0);
    return n;
}

static void test_dlist(void)
{
    item it[5];
    bdlist la, lb;
    int got[5], i;
    memset(it, 0, sizeof it);
    memset(&la, 0, sizeof la);
    memset(&lb, 0, sizeof lb);
    CHECK(dl_empty(&la) && ids(&la, 0, got) == 0);
    for (i = 0; i < 5; i++) {
        it[i].id = i;
        dl_push_back(&la, &it[i].a); /* la: 0 1 2 3 4 */
        dl_push_front(&lb, &it[i].b); /* lb: 4 3 2 1 0 */
    }
    CHECK(!dl_empty(&la));
    CHECK(ids(&la, 0, got) == 5 && got[0] == 0 && got[2] == 2 && got[4] == 4);
    CHECK(ids(&lb, 1, got) == 5 && got[0] == 4 && got[2] == 2 && got[4] == 0);
    /* Unlinking the middle, the head and the tail keeps the others' order
     * and leaves the other list alone. */
    dl_unlink(&la, &it[2].a);
    CHECK(it[2].a.next == NULL && it[2].a.prev == NULL);
    dl_unlink(&la, &it[0].a);
    dl_unlink(&la, &it[4].a);
    CHECK(ids(&la, 0, got) == 2 && got[0] == 1 && got[1] == 3);
    CHECK(ids(&lb, 1, got) == 5);
    /* An unlinked element goes back on, at either end. */
    dl_push_front(&la, &it[4].a);
    dl_push_back(&la, &it[0].a);
    CHECK(ids(&la, 0, got) == 4 && got[0] == 4 && got[1] == 1 && got[2] == 3 && got[3] == 0);
    /* Down to empty, and usable again. */
    for (i = 0; i < 5; i++)
        dl_unlink(&lb, &it[i].b);
    CHECK(dl_empty(&lb) && lb.tail == NULL && ids(&lb, 1, got) == 0);
    dl_push_back(&lb, &it[3].b);
    CHECK(ids(&lb, 1, got) == 1 && got[0] == 3 && lb.head == lb.tail);
}

static void test_parser_numbers(void)
{
    uint64_t v;
    bview t;
    t.p = (const uint8_t *)"9999999999999999999";
    t.n = 19;
    CHECK(bp_parse_number(t, &v) && v == 9999999999999999999ull);
    t.n = 0;
    CHECK(!bp_parse_number(t, &v));
    t.p = (const uint8_t *)"12a";
    t.n = 3;
    CHECK(!bp_parse_number(t, &v));
    t.p = (const uint8_t *)"PuT";
    CHECK(bp_tok_is(t, "PUT") && !bp_tok_is(t, "PUTS") && !bp_tok_is(t, "PU"));
    t.p = (const uint8_t *)"P\x95T"; /* 0x95 | 0x20 == 0xb5, not 'u' */
    CHECK(!bp_tok_is(t, "PUT"));
}

int main(void)
{
    test_store();
    test_store_header_boundaries();
    test_store_put_back();
    test_store_memory();
    test_heap();
    test_dlist();
    test_parser_numbers();
    return checks_report();
}
