/* alloc.c: the engine's allocator wrapper, counting the bytes it holds. */
#include <stdlib.h>

#include "internal.h"

static void *libc_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void *libc_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

/* ba_init sets al to allocate through a, or the C library when a is NULL. */
void ba_init(balloc *al, const beuss_allocator *a)
{
    if (a != NULL && a->malloc != NULL && a->realloc != NULL && a->free != NULL) {
        al->a = *a;
    } else {
        al->a.malloc = libc_malloc;
        al->a.realloc = libc_realloc;
        al->a.free = libc_free;
        al->a.ctx = NULL;
    }
    al->held = 0;
}

/* ba_malloc returns n bytes, or NULL when memory runs out or n is 0. */
void *ba_malloc(balloc *al, size_t n)
{
    void *p;
    if (n == 0)
        return NULL;
    p = al->a.malloc(al->a.ctx, n);
    if (p != NULL)
        al->held += n;
    return p;
}

/* ba_realloc resizes p (old bytes, or NULL) to n bytes and returns it, or
 * returns NULL and leaves p untouched when memory runs out. */
void *ba_realloc(balloc *al, void *p, size_t old, size_t n)
{
    void *q;
    if (p == NULL)
        return ba_malloc(al, n);
    q = al->a.realloc(al->a.ctx, p, n);
    if (q != NULL)
        al->held = al->held - old + n;
    return q;
}

/* ba_free releases p, a block of n bytes. ba_free(al, NULL, 0) does nothing. */
void ba_free(balloc *al, void *p, size_t n)
{
    if (p == NULL)
        return;
    al->a.free(al->a.ctx, p);
    al->held -= n;
}
