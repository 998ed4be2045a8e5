/* test_internal.c: unit tests of the engine's internal pieces that the
 * public API does not reach yet: the record store's push_front (for
 * at-least-once redelivery) across segment boundaries, and the timer heap's
 * ordering and removal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int failures;
static int checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        checks++;                                                                   \
        if (!(cond)) {                                                              \
            failures++;                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

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
    /* 2-byte header + 4-byte payload: 6 bytes per record, plus at most the
     * growing small segments (< 64 KiB) and the unfilled part of the last. */
    CHECK(al.held < 50000 * 6 + 2 * 65536);
    if (al.held >= 50000 * 6 + 2 * 65536)
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
    /* Header forms: 2 bytes up to 16383, 4 bytes from 16384; both ends. */
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
    /* Small records cost 2 header bytes each. */
    {
        uint64_t before = al.held;
        for (i = 0; i < 30000; i++)
            CHECK(store_append(&s, &al, (const uint8_t *)big, 98) == 0);
        CHECK(al.held - before < 30000 * 100 + 2 * 65536);
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
    test_heap();
    test_parser_numbers();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
