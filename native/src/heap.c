/* heap.c: a binary min-heap of timers ordered by (at, seq). Each timer keeps
 * its index, so removal is O(log n) with no search. */
#include "internal.h"

static int less(const btimer *a, const btimer *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void set(bheap *h, size_t i, btimer *t)
{
    h->v[i] = t;
    t->idx = i;
}

static void sift_up(bheap *h, size_t i)
{
    btimer *t = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(t, h->v[p]))
            break;
        set(h, i, h->v[p]);
        i = p;
    }
    set(h, i, t);
}

static void sift_down(bheap *h, size_t i)
{
    btimer *t = h->v[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        btimer *best = t;
        if (l < h->len && less(h->v[l], best)) {
            m = l;
            best = h->v[l];
        }
        if (l + 1 < h->len && less(h->v[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        set(h, i, h->v[m]);
        i = m;
    }
    set(h, i, t);
}

/* heap_insert adds t to h. It returns 0, or -1 when memory runs out. */
int heap_insert(bheap *h, balloc *al, btimer *t)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        btimer **v = ba_realloc(al, h->v, h->cap * sizeof *v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    t->seq = h->seq++;
    h->v[h->len] = t;
    t->idx = h->len++;
    sift_up(h, t->idx);
    return 0;
}

/* heap_remove takes t out of h; a timer not in h is left alone. */
void heap_remove(bheap *h, btimer *t)
{
    size_t i = t->idx;
    if (i == BH_NONE || i >= h->len || h->v[i] != t)
        return;
    t->idx = BH_NONE;
    h->len--;
    if (i == h->len)
        return;
    {
        btimer *m = h->v[h->len];
        set(h, i, m);
        sift_up(h, i);
        sift_down(h, m->idx);
    }
}

/* heap_min returns the earliest timer, or NULL when h is empty. */
btimer *heap_min(const bheap *h)
{
    return h->len ? h->v[0] : NULL;
}

/* heap_free releases h's storage (not the timers). */
void heap_free(bheap *h, balloc *al)
{
    ba_free(al, h->v, h->cap * sizeof *h->v);
    h->v = NULL;
    h->len = h->cap = 0;
}
