/* store.c: a queue's FIFO storage. Messages are records [header][payload]
 * packed without padding into a list of contiguous segments, so a queued
 * message costs its payload plus 2 bytes (4 from 16 KiB on), with no
 * allocation per message. A record put back after an unacknowledged lease
 * carries its delivery count in a 4-byte header extension.
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
 * was delivered d times before (d > 0 adds the 4-byte extension). */
static size_t hdr_size(size_t len, uint32_t d)
{
    return (len <= BREC_SHORT_MAX ? 2u : 4u) + (d ? 4u : 0u);
}

/* put_hdr writes the header of a record of len payload bytes, delivered d
 * times before, at p. */
static void put_hdr(uint8_t *p, size_t len, uint32_t d)
{
    size_t h;
    if (len <= BREC_SHORT_MAX) {
        p[0] = (uint8_t)(len >> 8);
        p[1] = (uint8_t)len;
        h = 2;
    } else {
        p[0] = (uint8_t)(BREC_LONG | (len >> 24));
        p[1] = (uint8_t)(len >> 16);
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        h = 4;
    }
    if (d) {
        p[0] |= BREC_EXT;
        p[h] = (uint8_t)(d >> 24);
        p[h + 1] = (uint8_t)(d >> 16);
        p[h + 2] = (uint8_t)(d >> 8);
        p[h + 3] = (uint8_t)d;
    }
}

/* get_hdr reads the header at p, stores the payload length in *len and the
 * earlier deliveries in *d (0 without the extension), and returns the
 * header's size. */
static size_t get_hdr(const uint8_t *p, size_t *len, uint32_t *d)
{
    size_t h;
    if (!(p[0] & BREC_LONG)) {
        *len = ((size_t)(p[0] & 0x3F) << 8) | p[1];
        h = 2;
    } else {
        *len = ((size_t)(p[0] & 0x3F) << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
        h = 4;
    }
    if (!(p[0] & BREC_EXT)) {
        *d = 0;
        return h;
    }
    *d = ((uint32_t)p[h] << 24) | ((uint32_t)p[h + 1] << 16) | ((uint32_t)p[h + 2] << 8) | p[h + 3];
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
