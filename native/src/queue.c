/* queue.c: queues by name in a chained hash table; a queue is created on
 * first use. */
#include "internal.h"

/* hash returns the FNV-1a hash of name. */
static uint32_t hash(const uint8_t *name, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= name[i];
        h *= 16777619u;
    }
    return h;
}

/* qt_init prepares an empty table. It returns 0, or -1 when memory runs out. */
int qt_init(bqtable *t, balloc *al)
{
    t->nb = 64;
    t->count = 0;
    t->b = ba_malloc(al, t->nb * sizeof *t->b);
    if (t->b == NULL)
        return -1;
    memset(t->b, 0, t->nb * sizeof *t->b);
    return 0;
}

/* qt_find returns the queue called name, or NULL. */
bqueue *qt_find(const bqtable *t, const uint8_t *name, size_t n)
{
    uint32_t h = hash(name, n);
    bqueue *q;
    for (q = t->b[h & (t->nb - 1)]; q; q = q->hnext)
        if (q->hash == h && q->namelen == n && memcmp(q->name, name, n) == 0)
            return q;
    return NULL;
}

/* grow doubles the bucket array; on no memory the table stays as it is,
 * just with longer chains. */
static void grow(bqtable *t, balloc *al)
{
    size_t nb = t->nb * 2, i;
    bqueue **b = ba_malloc(al, nb * sizeof *b);
    if (b == NULL)
        return;
    memset(b, 0, nb * sizeof *b);
    for (i = 0; i < t->nb; i++) {
        bqueue *q = t->b[i];
        while (q) {
            bqueue *next = q->hnext;
            size_t j = q->hash & (nb - 1);
            q->hnext = b[j];
            b[j] = q;
            q = next;
        }
    }
    ba_free(al, t->b, t->nb * sizeof *t->b);
    t->b = b;
    t->nb = nb;
}

/* qt_get returns the queue called name, creating it if needed, or NULL when
 * memory runs out. */
bqueue *qt_get(bqtable *t, balloc *al, const uint8_t *name, size_t n)
{
    bqueue *q = qt_find(t, name, n);
    size_t i;
    if (q)
        return q;
    q = ba_malloc(al, sizeof *q + n);
    if (q == NULL)
        return NULL;
    memset(q, 0, sizeof *q);
    q->idle.idx = BH_NONE;
    q->hash = hash(name, n);
    q->namelen = (uint32_t)n;
    memcpy(q->name, name, n);
    if (t->count >= t->nb)
        grow(t, al);
    i = q->hash & (t->nb - 1);
    q->hnext = t->b[i];
    t->b[i] = q;
    t->count++;
    return q;
}

/* qt_remove unlinks q from t and frees it with any messages it holds. */
void qt_remove(bqtable *t, balloc *al, bqueue *q)
{
    bqueue **pp = &t->b[q->hash & (t->nb - 1)];
    while (*pp != NULL && *pp != q)
        pp = &(*pp)->hnext;
    if (*pp == NULL)
        return;
    *pp = q->hnext;
    t->count--;
    store_purge(&q->st, al);
    ba_free(al, q, sizeof *q + q->namelen);
}

/* qt_free releases every queue with its messages, and the table. Consumers
 * and waiters must be gone already. */
void qt_free(bqtable *t, balloc *al)
{
    size_t i;
    for (i = 0; i < t->nb && t->b; i++) {
        bqueue *q = t->b[i];
        while (q) {
            bqueue *next = q->hnext;
            store_purge(&q->st, al);
            ba_free(al, q, sizeof *q + q->namelen);
            q = next;
        }
    }
    ba_free(al, t->b, t->nb * sizeof *t->b);
    t->b = NULL;
    t->nb = t->count = 0;
}
