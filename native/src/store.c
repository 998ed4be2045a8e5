/* store.c: a queue's FIFO storage. Messages are records [header][payload]
 * packed without padding into a list of contiguous segments, so a queued
 * message costs its payload plus 1 byte up to 127 bytes (2 up to 8 KiB, 5
 * above), with no allocation per message. A record put back after an
 * unacknowledged lease carries its delivery count in a 4-byte header
 * extension (and at least a 2-byte header).
 * Segments start small (an idle queue with one message holds a few hundred
 * bytes) and double up to 64 KiB; a record larger than that gets a segment
 * of its own size. Appends write at the last segment's tail, takes read at
 * the first segment's head, and push_front writes before the head.
 * Invariant: an empty segment exists only as the store's only one. */
#include "internal.h"

#define SEG_MIN_ALLOC 256u
#define SEG_STD_ALLOC 65536u
/* An emptied lone segment up to this size is kept for the next message, so
 * a queue that oscillates between 0 and 1 message does not allocate. */
#define SEG_KEEP_ALLOC 1024u

static size_t seg_alloc_size(const bseg *g)
{
    return sizeof(bseg) + g->cap;
}

static void seg_free(balloc *al, bseg *g)
{
    ba_free(al, g, seg_alloc_size(g));
}

/* seg_new returns a segment with room for at least need bytes, sized after
 * prev_cap (the capacity of its neighbour, 0 if none), or NULL. */
static bseg *seg_new(balloc *al, size_t need, uint32_t prev_cap)
{
    size_t sz = prev_cap ? ((size_t)prev_cap + sizeof(bseg)) * 2 : SEG_MIN_ALLOC;
    bseg *g;
    if (sz > SEG_STD_ALLOC)
        sz = SEG_STD_ALLOC;
    while (sz - sizeof(bseg) < need && sz < SEG_STD_ALLOC)
        sz *= 2;
    if (sz - sizeof(bseg) < need)
        sz = sizeof(bseg) + need;
    g = ba_malloc(al, sz);
    if (g == NULL)
        return NULL;
    g->next = NULL;
    g->head = g->tail = 0;
    g->cap = (uint32_t)(sz - sizeof(bseg));
    return g;
}

/* hdr_size returns the header bytes of a record of len payload bytes that
 * was delivered d times before (d > 0 adds the 4-byte extension, and rules
 * out the tiny form, which has no E bit). */
static size_t hdr_size(size_t len, uint32_t d)
{
    if (d == 0 && len <= BREC_TINY_MAX)
        return 1;
    return (len <= BREC_SHORT_MAX ? 2u : 5u) + (d ? 4u : 0u);
}

/* put_be32 writes v big-endian at p. */
static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* get_be32 returns the big-endian 32-bit value at p. */
static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* put_hdr writes the header of a record of len payload bytes, delivered d
 * times before, at p: hdr_size(len, d) bytes. */
static void put_hdr(uint8_t *p, size_t len, uint32_t d)
{
    size_t h;
    uint8_t ext = d ? BREC_EXT : 0u;
    if (d == 0 && len <= BREC_TINY_MAX) {
        p[0] = (uint8_t)len;
        return;
    }
    if (len <= BREC_SHORT_MAX) {
        p[0] = (uint8_t)(BREC_WIDE | ext | (len >> 8));
        p[1] = (uint8_t)len;
        h = 2;
    } else {
        p[0] = (uint8_t)(BREC_WIDE | BREC_LONG | ext);
        put_be32(p + 1, (uint32_t)len);
        h = 5;
    }
    if (d)
        put_be32(p + h, d);
}

/* get_hdr reads the header at p, stores the payload length in *len and the
 * earlier deliveries in *d (0 without the extension), and returns the
 * header's size. */
static size_t get_hdr(const uint8_t *p, size_t *len, uint32_t *d)
{
    size_t h;
    if (B_LIKELY(!(p[0] & BREC_WIDE))) {
        *len = p[0];
        *d = 0;
        return 1;
    }
    if (!(p[0] & BREC_LONG)) {
        *len = ((size_t)(p[0] & 0x1F) << 8) | p[1];
        h = 2;
    } else {
        *len = get_be32(p + 1);
        h = 5;
    }
    if (!(p[0] & BREC_EXT)) {
        *d = 0;
        return h;
    }
    *d = get_be32(p + h);
    return h + 4;
}

/* store_append adds a record holding data[0:len) at the tail. It returns 0,
 * or -1 when memory runs out (s is unchanged). len <= BREC_LEN_MASK. */
int store_append(bstore *s, balloc *al, const uint8_t *data, size_t len)
{
    bseg *g = s->last;
    size_t h = hdr_size(len, 0), need = h + len;
    if (g != NULL && s->count == 0 && g->cap - g->tail < need) {
        /* The kept empty segment is too small: an empty segment may only
         * exist alone, so replace it. */
        seg_free(al, g);
        s->first = s->last = g = NULL;
    }
    if (g == NULL || g->cap - g->tail < need) {
        bseg *n = seg_new(al, need, g ? g->cap : 0);
        if (n == NULL)
            return -1;
        if (g)
            g->next = n;
        else
            s->first = n;
        s->last = g = n;
    }
    put_hdr(g->data + g->tail, len, 0);
    if (len)
        memcpy(g->data + g->tail + h, data, len);
    g->tail += (uint32_t)need;
    s->count++;
    s->bytes += len;
    return 0;
}

/* store_push_front adds a record holding data[0:len), delivered d times
 * before, at the head, to be taken next. It returns 0, or -1 when memory
 * runs out (s is unchanged). */
int store_push_front(bstore *s, balloc *al, const uint8_t *data, size_t len, uint32_t d)
{
    bseg *g = s->first;
    size_t h = hdr_size(len, d), need = h + len;
    if (g != NULL && s->count == 0) {
        /* The kept empty segment: fill it from its end, or replace it. */
        if (g->cap >= need) {
            g->head = g->tail = g->cap;
        } else {
            seg_free(al, g);
            s->first = s->last = g = NULL;
        }
    }
    if (g == NULL || g->head < need) {
        bseg *n = seg_new(al, need, 0);
        if (n == NULL)
            return -1;
        /* Records go at the segment's end, leaving room before them for
         * more push_fronts. */
        n->head = n->tail = n->cap;
        n->next = g;
        s->first = g = n;
        if (s->last == NULL)
            s->last = n;
    }
    g->head -= (uint32_t)need;
    put_hdr(g->data + g->head, len, d);
    if (len)
        memcpy(g->data + g->head + h, data, len);
    s->count++;
    s->bytes += len;
    return 0;
}

/* store_peek_d returns 1, points *data, *len at the head record's payload
 * and stores its earlier deliveries in *d; or returns 0 when s is empty.
 * The view is valid until s changes. */
int store_peek_d(const bstore *s, const uint8_t **data, size_t *len, uint32_t *d)
{
    const bseg *g = s->first;
    size_t h;
    if (s->count == 0)
        return 0;
    h = get_hdr(g->data + g->head, len, d);
    *data = g->data + g->head + h;
    return 1;
}

/* store_peek is store_peek_d without the delivery count. */
int store_peek(const bstore *s, const uint8_t **data, size_t *len)
{
    uint32_t d;
    return store_peek_d(s, data, len, &d);
}

/* store_drop removes the head record; s must not be empty. */
void store_drop(bstore *s, balloc *al)
{
    bseg *g = s->first;
    uint32_t d;
    size_t len, h = get_hdr(g->data + g->head, &len, &d);
    g->head += (uint32_t)(h + len);
    s->count--;
    s->bytes -= len;
    if (g->head == g->tail) {
        if (g->next == NULL && seg_alloc_size(g) <= SEG_KEEP_ALLOC) {
            g->head = g->tail = 0;
            return;
        }
        s->first = g->next;
        if (s->first == NULL)
            s->last = NULL;
        seg_free(al, g);
    }
}

/* store_purge removes every record and frees every segment. It returns the
 * number of records removed. */
uint64_t store_purge(bstore *s, balloc *al)
{
    uint64_t n = s->count;
    bseg *g = s->first;
    while (g) {
        bseg *next = g->next;
        seg_free(al, g);
        g = next;
    }
    s->first = s->last = NULL;
    s->count = s->bytes = 0;
    return n;
}
