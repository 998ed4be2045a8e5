/* lease.c: leased messages by id, in a chained hash table. Ids come from a
 * counter, so a multiplicative hash spreads them evenly. */
#include "internal.h"

#define LT_MIN_BUCKETS 64u

static size_t slot(const bltable *t, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (t->nb - 1);
}

/* lt_find returns the lease with that id, or NULL. */
blease *lt_find(const bltable *t, uint64_t id)
{
    blease *l;
    if (t->nb == 0)
        return NULL;
    for (l = t->b[slot(t, id)]; l; l = l->hnext)
        if (l->id == id)
            return l;
    return NULL;
}

/* resize moves every lease into nb buckets. It returns 0, or -1 when memory
 * runs out (t unchanged). */
static int resize(bltable *t, balloc *al, size_t nb)
{
    blease **b = ba_malloc(al, nb * sizeof *b), **old = t->b;
    size_t i, onb = t->nb;
    if (b == NULL)
        return -1;
    memset(b, 0, nb * sizeof *b);
    t->b = b;
    t->nb = nb;
    for (i = 0; i < onb; i++) {
        blease *l = old[i];
        while (l) {
            blease *next = l->hnext;
            size_t j = slot(t, l->id);
            l->hnext = b[j];
            b[j] = l;
            l = next;
        }
    }
    ba_free(al, old, onb * sizeof *old);
    return 0;
}

/* lt_insert adds l. It returns 0, or -1 when the first bucket array cannot
 * be allocated; a failed growth later only makes chains longer. */
int lt_insert(bltable *t, balloc *al, blease *l)
{
    size_t j;
    if (t->nb == 0 && resize(t, al, LT_MIN_BUCKETS) != 0)
        return -1;
    if (t->count >= t->nb)
        (void)resize(t, al, t->nb * 2);
    j = slot(t, l->id);
    l->hnext = t->b[j];
    t->b[j] = l;
    t->count++;
    return 0;
}

/* lt_remove unlinks l, which must be in t. The bucket array is kept: it is
 * small next to the leases that made it grow. */
void lt_remove(bltable *t, blease *l)
{
    blease **pp = &t->b[slot(t, l->id)];
    while (*pp != l)
        pp = &(*pp)->hnext;
    *pp = l->hnext;
    l->hnext = NULL;
    t->count--;
}

/* lt_free frees the bucket array (not the leases). */
void lt_free(bltable *t, balloc *al)
{
    ba_free(al, t->b, t->nb * sizeof *t->b);
    t->b = NULL;
    t->nb = t->count = 0;
}
