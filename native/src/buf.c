/* buf.c: growable byte buffers and decimal formatting. */
#include "internal.h"

/* buf_grow makes room for extra more bytes in b. It returns 0, or -1 when
 * memory runs out (b is unchanged). Capacity at least doubles, so appends
 * are amortized O(1). */
int buf_grow(balloc *al, bbuf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;
    if (extra > SIZE_MAX - b->len)
        return -1;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = ba_realloc(al, b->p, b->cap, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* buf_append copies n bytes of data to the end of b. It returns 0, or -1
 * when memory runs out (b is unchanged). */
int buf_append(balloc *al, bbuf *b, const void *data, size_t n)
{
    uint8_t *w = buf_reserve(al, b, n);
    if (w == NULL)
        return n == 0 ? 0 : -1;
    if (n)
        memcpy(w, data, n);
    b->len += n;
    return 0;
}

/* buf_consume removes the first n bytes of b. */
void buf_consume(bbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* buf_shrink frees b's storage when it is empty and bigger than keep_cap, so
 * a burst does not pin memory afterwards. */
void buf_shrink(balloc *al, bbuf *b, size_t keep_cap)
{
    if (b->len == 0 && b->cap > keep_cap) {
        ba_free(al, b->p, b->cap);
        b->p = NULL;
        b->cap = 0;
    }
}

/* buf_free releases b's storage. */
void buf_free(balloc *al, bbuf *b)
{
    ba_free(al, b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* u64_dec_len returns the number of decimal digits of v. */
size_t u64_dec_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10000) {
        v /= 10000;
        n += 4;
    }
    return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* u64_to_dec writes v in decimal at p and returns the number of bytes. Two
 * digits per division, written in place from the end: every reply carries a
 * number. */
size_t u64_to_dec(uint8_t *p, uint64_t v)
{
    size_t n = u64_dec_len(v), i = n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p[--i] = (uint8_t)digit_pairs[2 * r + 1];
        p[--i] = (uint8_t)digit_pairs[2 * r];
    }
    if (v >= 10) {
        p[1] = (uint8_t)digit_pairs[2 * v + 1];
        p[0] = (uint8_t)digit_pairs[2 * v];
    } else {
        p[0] = (uint8_t)('0' + v);
    }
    return n;
}
