/* engine.c: connections, request dispatch, delivery and output.
 *
 * Delivery keeps one invariant: a queue with ready messages has no eligible
 * consumer (no waiting GET, no ON subscription with credit on a connection
 * that is not paused). So a PUT to a non-empty queue just appends, and a PUT
 * to an empty queue first offers the message to waiting GETs (in arrival
 * order), then to the eligible ON subscriptions (round robin), and is only
 * stored when nobody takes it. Whatever makes a consumer eligible again
 * (CREDIT, ON, resume) pumps its queue.
 *
 * Replies and pushes go into the output buffer of their connection. A
 * connection whose output reaches output_high_water is paused by the engine
 * (BEUSS_OUT_FULL) until the caller resumes it; a connection waiting in a
 * GET WAIT stops running its requests (BEUSS_OUT_WAITING). In both cases the
 * rest of its input is kept, up to BEUSS_MAX_PENDING_INPUT bytes.
 *
 * A connection unblocked by another one's request (a PUT answering its GET
 * WAIT) runs its kept input at the end of the current API call, never
 * recursively inside the other connection's request.
 *
 * Leases (GET/ON with LEASE): a message handed out under a lease moves from
 * its queue's store into a blease (lease.c), found by id for ACK, NACK and
 * TOUCH, timed in the heap, and listed on its connection so a close returns
 * them all. Returning puts the message back with push_front, carrying its
 * delivery count in the record header, or appends it to the dead-letter
 * queue once it reached its maximum deliveries. Several leases returned at
 * once are pushed back latest first, so they keep their delivery order at
 * the head; their queues are pumped only after all are back (pump_later).
 *
 * Channels (PUB/SUB) are fan-out without storage: a PUB writes an EVENT to
 * every subscriber and keeps nothing. A subscriber whose connection cannot
 * take more (paused, full) holds up to sub_buffer events of its own; past
 * that, the sub_policy drops its oldest (counted, and told with DROPPED) or
 * closes it. Delayed messages (PUT ... DELAY/AT) and recurring schedules
 * wait in the one timer heap and join their queue when due, as a PUT would. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* bmember is a connection's membership of a queue (an ON) or of a channel
 * (a SUB): on c's list of that kind and on q's members, so that either side
 * finds, lists and ends it. It is the first member of bsub and bcsub. */
typedef struct bmember {
    blink clink;           /* on c's memberships of this kind */
    blink qlink;           /* on q's members */
    bqueue *q;             /* the queue, or the channel */
    struct bconn *c;
} bmember;

/* bsub is an ON: connection c consuming queue q under credit. */
typedef struct bsub {
    bmember m;
    struct bsub *rnext; /* ring of eligible subscriptions of q */
    struct bsub *rprev;
    int in_ring;
    uint32_t credit;
    uint32_t lease_ms;   /* ON ... LEASE: pushes are leased; 0 = plain */
    uint32_t maxdeliver;
    uint32_t gen;        /* tells this ON from an earlier one of c on q */
    uint32_t withheld;   /* credit of expired leases, given back when c shows life */
} bsub;

/* bcsub is a SUB: connection c listening on channel q. */
typedef struct bcsub {
    bmember m;
    bstore held;      /* events kept while c cannot take them */
    uint64_t dropped; /* events dropped since the last DROPPED line */
} bcsub;

/* A bmember converts to the bsub or bcsub it starts and back (C11
 * 6.7.2.1), NULL to NULL, so lists of members walk as lists of either. */
_Static_assert(offsetof(bsub, m) == 0, "bsub starts with its membership");
_Static_assert(offsetof(bcsub, m) == 0, "bcsub starts with its membership");

static inline bsub *sub_of(bmember *m)
{
    return (bsub *)m;
}

static inline bcsub *csub_of(bmember *m)
{
    return (bcsub *)m;
}

/* c_member returns the membership whose link on its connection's list is k,
 * q_member the one whose link on its queue's members is k; NULL for NULL. */
static inline bmember *c_member(blink *k)
{
    return k ? B_CONTAINER_OF(k, bmember, clink) : NULL;
}

static inline bmember *q_member(blink *k)
{
    return k ? B_CONTAINER_OF(k, bmember, qlink) : NULL;
}

/* bdelay is a message waiting for its time (PUT ... DELAY/AT). */
typedef struct bdelay {
    btimer t;
    bqueue *q;
    size_t len;
    uint8_t data[];
} bdelay;

/* bsched is a recurring schedule: at every fire time of spec, a PUT of
 * payload to queue. Strings live in the same block, after the struct. */
typedef struct bsched {
    btimer t;
    blink link;        /* on the engine's schedules */
    int64_t next_wall; /* Unix ms of the next fire */
    uint64_t fired;
    size_t size;       /* of the whole block */
    uint8_t *name;
    size_t namelen;
    uint8_t *queue;
    size_t queuelen;
    char *spec;
    size_t speclen;
    uint8_t *payload;
    size_t plen;
} bsched;

enum { DL_NONE = 0, DL_DIRTY, DL_RETURNED };

typedef struct bconn {
    uint32_t id;
    unsigned user_paused : 1; /* beuss_conn_pause */
    unsigned full : 1;        /* output reached the high water */
    unsigned closing : 1;     /* QUIT, a fatal error or no memory: no more requests */
    unsigned waiting : 1;     /* in a GET WAIT */
    unsigned in_run : 1;
    bparser ps;
    bbuf out;
    size_t out_returned; /* output bytes handed out by beuss_output_next */
    uint32_t flags_reported;
    int dl;              /* which output list the connection is on */
    blink dlink;         /* on that list */
    bbuf pend;           /* input kept while blocked */
    size_t pend_off;
    bmlist ons;          /* its ON subscriptions (bsub) */
    bmlist subs;         /* its channel subscriptions (bcsub) */
    bqueue *wq;          /* queue of the GET WAIT */
    blink wlink;         /* on wq's waiters */
    btimer wt;
    blink rlink;         /* on the connections to run at the end of the call */
    bdlist leases;       /* leases held (blease.clink), in delivery order */
    uint32_t w_lease_ms; /* the GET WAIT's LEASE, 0 = none */
    uint32_t w_maxdeliver;
    uint32_t sub_gen;
} bconn;

/* bslot holds a connection, or links to the next free id. */
typedef struct bslot {
    bconn *c;
    uint32_t next_free;
} bslot;

#define NO_SLOT UINT32_MAX

struct beuss_engine {
    balloc al;
    beuss_config cfg;
    uint64_t created_ms;
    uint64_t now_ms;
    bslot *slots;    /* connections by id */
    uint32_t nslots;
    uint32_t cap_slots;
    uint32_t free_head; /* a free slot, or NO_SLOT */
    bqtable qt;
    bqueue *lastq;  /* the queue named last: consecutive requests often name the same */
    bqtable ct;     /* channels with at least one subscriber */
    bqueue *pubch;  /* the channel a PUB is writing to: kept even if emptied */
    int64_t wall_off; /* Unix ms minus engine ms (beuss_set_wall_clock) */
    bdlist scheds;  /* bsched.link */
    uint64_t nscheds;
    uint64_t sched_count; /* delayed messages */
    uint64_t sched_bytes;
    bheap timers;
    bdlist dirty;    /* bconn.dlink: output not yet returned */
    bdlist returned; /* bconn.dlink: returned by output_next, not yet done */
    bdlist run;      /* bconn.rlink: to run at the end of the call (in_run) */
    uint64_t messages;
    uint64_t bytes;
    bltable leases;
    uint64_t last_lease_id; /* ids are never reused within an engine */
    uint64_t leased_bytes;
    bqueue *pumpq;          /* queues to pump once a batch of returns is done */
    beuss_stats st; /* the counters; gauges are filled by beuss_engine_stats */
};

/* Timer kinds in the heap. */
enum { TK_WAIT = 1, TK_IDLE = 2, TK_LEASE = 3, TK_DELAY = 4, TK_SCHED = 5 };

#define CONN_OF_TIMER(t) B_CONTAINER_OF(t, bconn, wt)
#define QUEUE_OF_TIMER(t) B_CONTAINER_OF(t, bqueue, idle)
#define LEASE_OF_TIMER(tm) B_CONTAINER_OF(tm, blease, t)

/* The elements of the engine's lists, from their links; NULL for NULL. */
static inline bconn *conn_of_dlink(blink *k)
{
    return k ? B_CONTAINER_OF(k, bconn, dlink) : NULL;
}

static inline bconn *conn_of_wlink(blink *k)
{
    return k ? B_CONTAINER_OF(k, bconn, wlink) : NULL;
}

static inline bconn *conn_of_rlink(blink *k)
{
    return k ? B_CONTAINER_OF(k, bconn, rlink) : NULL;
}

static inline blease *lease_of_clink(blink *k)
{
    return k ? B_CONTAINER_OF(k, blease, clink) : NULL;
}

static inline bsched *sched_of(blink *k)
{
    return k ? B_CONTAINER_OF(k, bsched, link) : NULL;
}

/* A lease whose message cannot be put back for want of memory stays held
 * and is retried this much later: a message is never dropped. */
#define LEASE_RETRY_MS 1000u
/* A dead-letter queue is named "<queue>.dead"; a name longer than this
 * keeps its first DEAD_BASE_MAX bytes, so the result stays within
 * BEUSS_MAX_QUEUE_NAME. */
#define DEAD_SUFFIX ".dead"
#define DEAD_BASE_MAX (BEUSS_MAX_QUEUE_NAME - (sizeof(DEAD_SUFFIX) - 1))

/* ---- config ------------------------------------------------------------ */

void beuss_config_init(beuss_config *cfg)
{
    if (cfg == NULL)
        return;
    cfg->max_message_size = BEUSS_DEFAULT_MAX_MESSAGE_SIZE;
    cfg->oversize = BEUSS_OVERSIZE_TRUNCATE;
    cfg->max_queued_bytes = BEUSS_DEFAULT_MAX_QUEUED_BYTES;
    cfg->max_line = BEUSS_DEFAULT_MAX_LINE;
    cfg->output_high_water = BEUSS_DEFAULT_OUTPUT_HIGH_WATER;
    cfg->queue_idle_ms = 0;
    cfg->max_deliver = BEUSS_DEFAULT_MAX_DELIVER;
    cfg->sub_buffer = BEUSS_DEFAULT_SUB_BUFFER;
    cfg->sub_policy = BEUSS_SUB_DROP_OLDEST;
    cfg->next_fire = NULL;
    cfg->next_fire_ctx = NULL;
}

static int config_ok(const beuss_config *c)
{
    return c->max_message_size >= 1 && c->max_message_size <= BEUSS_MAX_MAX_MESSAGE_SIZE &&
           (c->oversize == BEUSS_OVERSIZE_TRUNCATE || c->oversize == BEUSS_OVERSIZE_REJECT) &&
           c->max_line >= BEUSS_MIN_MAX_LINE && c->max_line <= BEUSS_MAX_MAX_LINE &&
           c->output_high_water >= 1 && c->max_deliver >= 1 &&
           (c->sub_policy == BEUSS_SUB_DROP_OLDEST || c->sub_policy == BEUSS_SUB_DISCONNECT);
}

/* ---- output and run lists ---------------------------------------------- */

static uint32_t conn_flags(const bconn *c)
{
    return (c->closing ? BEUSS_OUT_CLOSE : 0u) | (c->full ? BEUSS_OUT_FULL : 0u) |
           (c->waiting ? BEUSS_OUT_WAITING : 0u);
}

/* mark puts c on the output list: it has new output or changed flags. */
static void mark(beuss_engine *e, bconn *c)
{
    if (c->dl == DL_NONE) {
        dl_push_back(&e->dirty, &c->dlink);
        c->dl = DL_DIRTY;
    }
}

static void run_add(beuss_engine *e, bconn *c)
{
    if (c->in_run)
        return;
    c->in_run = 1;
    dl_push_back(&e->run, &c->rlink);
}

static void run_unlink(beuss_engine *e, bconn *c)
{
    if (!c->in_run)
        return;
    dl_unlink(&e->run, &c->rlink);
    c->in_run = 0;
}

static int blocked(const bconn *c)
{
    return c->user_paused | c->full | c->closing | c->waiting;
}

static void q_touch(beuss_engine *e, bqueue *q);
static void csub_free(beuss_engine *e, bcsub *s);

/* ---- memberships ------------------------------------------------------- */

/* member_find returns the member of q on cl, c's list of that kind, or NULL.
 * It walks the shorter of cl and q's members, so neither a connection in
 * many queues or channels nor one with many members makes ON, CREDIT, OFF,
 * SUB or UNSUB quadratic. */
static bmember *member_find(const bmlist *cl, const bconn *c, const bqueue *q)
{
    bmember *m;
    if (cl->n <= q->members.n) {
        for (m = c_member(cl->list.head); m; m = c_member(m->clink.next))
            if (m->q == q)
                return m;
    } else {
        for (m = q_member(q->members.list.head); m; m = q_member(m->qlink.next))
            if (m->c == c)
                return m;
    }
    return NULL;
}

/* member_link makes m a membership of c in q: first on cl (c's list of its
 * kind) and first among q's members. */
static void member_link(bmember *m, bmlist *cl, bconn *c, bqueue *q)
{
    m->c = c;
    m->q = q;
    dl_push_front(&cl->list, &m->clink);
    cl->n++;
    dl_push_front(&q->members.list, &m->qlink);
    q->members.n++;
}

/* member_unlink takes m off cl (its connection's list of its kind) and off
 * its queue's or channel's members. */
static void member_unlink(bmember *m, bmlist *cl)
{
    dl_unlink(&cl->list, &m->clink);
    cl->n--;
    dl_unlink(&m->q->members.list, &m->qlink);
    m->q->members.n--;
}

/* first_on returns c's first ON, or NULL; next_on the ON after s on c's
 * list, or NULL. */
static inline bsub *first_on(const bconn *c)
{
    return sub_of(c_member(c->ons.list.head));
}

static inline bsub *next_on(const bsub *s)
{
    return sub_of(c_member(s->m.clink.next));
}

/* first_csub returns c's first SUB, or NULL; next_csub the SUB after s on
 * c's list, or NULL. */
static inline bcsub *first_csub(const bconn *c)
{
    return csub_of(c_member(c->subs.list.head));
}

static inline bcsub *next_csub(const bcsub *s)
{
    return csub_of(c_member(s->m.clink.next));
}

/* ---- subscriptions ----------------------------------------------------- */

static int sub_eligible(const bsub *s)
{
    const bconn *c = s->m.c;
    return s->credit > 0 && !c->user_paused && !c->full && !c->closing;
}

static void ring_add(bsub *s)
{
    bqueue *q = s->m.q;
    if (s->in_ring)
        return;
    if (q->ring == NULL) {
        s->rnext = s->rprev = s;
        q->ring = s;
    } else {
        /* Insert before the head: the newcomer is served last in this round. */
        bsub *h = q->ring;
        s->rnext = h;
        s->rprev = h->rprev;
        h->rprev->rnext = s;
        h->rprev = s;
    }
    s->in_ring = 1;
}

static void ring_del(bsub *s)
{
    bqueue *q = s->m.q;
    if (!s->in_ring)
        return;
    if (s->rnext == s) {
        q->ring = NULL;
    } else {
        s->rprev->rnext = s->rnext;
        s->rnext->rprev = s->rprev;
        if (q->ring == s)
            q->ring = s->rnext;
    }
    s->rnext = s->rprev = NULL;
    s->in_ring = 0;
}

static void sub_update(bsub *s)
{
    if (sub_eligible(s))
        ring_add(s);
    else
        ring_del(s);
}

static void sub_free(beuss_engine *e, bsub *s)
{
    bqueue *q = s->m.q;
    ring_del(s);
    member_unlink(&s->m, &s->m.c->ons);
    e->st.consumers--;
    q_touch(e, q);
    ba_free(&e->al, s, sizeof *s);
}

/* ---- idle queue cleanup -------------------------------------------------- */

static int queue_idle(const bqueue *q)
{
    return q->st.count == 0 && q->members.n == 0 && q->nwait == 0 && q->nleased == 0 &&
           !q->pump_later && q->nsched == 0;
}

/* q_touch records activity on q and, with queue_idle_ms set, schedules the
 * idle check of a queue that holds nothing and serves no one. The check
 * itself (beuss_tick) looks again, so touching is cheap and may be early.
 * When the heap cannot grow, q is simply not cleaned up until touched again. */
static void q_touch(beuss_engine *e, bqueue *q)
{
    q->last_active = e->now_ms;
    if (e->cfg.queue_idle_ms && q->idle.idx == BH_NONE && queue_idle(q)) {
        uint64_t at = e->now_ms + e->cfg.queue_idle_ms;
        q->idle.at = at < e->now_ms || at > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : at;
        q->idle.kind = TK_IDLE;
        heap_insert(&e->timers, &e->al, &q->idle);
    }
}

/* idle_fire runs q's idle check at now: it drops q if it stayed idle for
 * queue_idle_ms, waits longer if it was active since, or forgets the check
 * if q is in use again (the next idle moment schedules a new one). */
static void idle_fire(beuss_engine *e, bqueue *q, uint64_t now)
{
    uint64_t due = q->last_active + e->cfg.queue_idle_ms;
    heap_remove(&e->timers, &q->idle);
    if (!queue_idle(q))
        return;
    if (due > now && due >= q->last_active) {
        q->idle.at = due;
        if (heap_insert(&e->timers, &e->al, &q->idle) == 0)
            return;
    }
    if (e->lastq == q)
        e->lastq = NULL;
    e->st.queues_removed_idle++;
    qt_remove(&e->qt, &e->al, q);
}

/* ---- waiting GETs -------------------------------------------------------- */

/* wait_end takes c out of its queue's waiters and the timer heap. */
static void wait_end(beuss_engine *e, bconn *c)
{
    bqueue *q = c->wq;
    if (!c->waiting)
        return;
    dl_unlink(&q->waiters, &c->wlink);
    q->nwait--;
    c->wq = NULL;
    heap_remove(&e->timers, &c->wt);
    c->waiting = 0;
    e->st.waiting--;
    q_touch(e, q);
    mark(e, c);
}

/* ---- connection state ---------------------------------------------------- */

/* conn_set_closing stops c for good: no more requests, no more pushes. Its
 * subscriptions end and a waiting GET is dropped, so their messages stay in
 * the queue for others. Its output so far is still reported, with
 * BEUSS_OUT_CLOSE. */
static void conn_set_closing(beuss_engine *e, bconn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    wait_end(e, c);
    while (!dl_empty(&c->ons.list))
        sub_free(e, first_on(c));
    while (!dl_empty(&c->subs.list))
        csub_free(e, first_csub(c));
    mark(e, c);
}

/* conn_full pauses c because its output reached the high water. */
static void conn_full(beuss_engine *e, bconn *c)
{
    bsub *s;
    c->full = 1;
    for (s = first_on(c); s; s = next_on(s))
        ring_del(s);
    mark(e, c);
}

/* ---- output ------------------------------------------------------------- */

/* The put_ helpers write one piece of a frame at w, which has room for it
 * (reserved by out_begin), and return the bytes written. */

/* put_mem writes s[0:n) at w and returns n. s may be NULL when n is 0. */
static inline size_t put_mem(uint8_t *w, const void *s, size_t n)
{
    if (n)
        memcpy(w, s, n);
    return n;
}

/* put_crlf writes "\r\n" at w and returns 2. */
static inline size_t put_crlf(uint8_t *w)
{
    w[0] = '\r';
    w[1] = '\n';
    return 2;
}

/* put_body writes "\r\n<payload>\r\n" at w, the end of a frame's header line
 * and its payload p[0:n), and returns n + 4. */
static inline size_t put_body(uint8_t *w, const uint8_t *p, size_t n)
{
    size_t k = put_crlf(w);
    k += put_mem(w + k, p, n);
    return k + put_crlf(w + k);
}

/* put_named writes "<word><name> " at w, the start of a frame that names a
 * queue or channel (word ends with its space), and returns its length. */
static inline size_t put_named(uint8_t *w, const char *word, size_t wl, const uint8_t *name,
                               size_t nl)
{
    size_t k = put_mem(w, word, wl);
    k += put_mem(w + k, name, nl);
    w[k++] = ' ';
    return k;
}

/* out_begin returns room for n bytes at the end of c's output, or NULL when
 * memory runs out; then c is closed, since a reply is lost and the stream
 * is out of sync. */
static uint8_t *out_begin(beuss_engine *e, bconn *c, size_t n)
{
    uint8_t *w = buf_reserve(&e->al, &c->out, n);
    if (B_UNLIKELY(w == NULL))
        conn_set_closing(e, c);
    return w;
}

/* out_end commits n bytes written after out_begin. */
static void out_end(beuss_engine *e, bconn *c, size_t n)
{
    c->out.len += n;
    mark(e, c);
    if (c->out.len >= e->cfg.output_high_water && !c->full)
        conn_full(e, c);
}

static int reply_lit(beuss_engine *e, bconn *c, const char *s, size_t n)
{
    uint8_t *w = out_begin(e, c, n);
    if (w == NULL)
        return -1;
    memcpy(w, s, n);
    out_end(e, c, n);
    return 0;
}

#define REPLY(e, c, s) reply_lit(e, c, s, sizeof(s) - 1)

static int reply_ok_num(beuss_engine *e, bconn *c, uint64_t v)
{
    uint8_t *w = out_begin(e, c, 3 + 20 + 2);
    size_t n;
    if (w == NULL)
        return -1;
    n = put_mem(w, "OK ", 3);
    n += u64_to_dec(w + n, v);
    n += put_crlf(w + n);
    out_end(e, c, n);
    return 0;
}

/* put_lease_tail writes " <id> <deliveries>" of l at w and returns the bytes
 * written (0 without a lease). At most 42 bytes. */
static inline size_t put_lease_tail(uint8_t *w, const blease *l)
{
    size_t k = 0;
    if (l == NULL)
        return 0;
    w[k++] = ' ';
    k += u64_to_dec(w + k, l->id);
    w[k++] = ' ';
    k += u64_to_dec(w + k, l->deliveries);
    return k;
}

/* reply_payload writes "<word><bytes>\r\n<payload>\r\n", where word is "MSG "
 * or "DATA ". */
static int reply_payload(beuss_engine *e, bconn *c, const char *word, size_t wl,
                         const uint8_t *p, size_t len)
{
    uint8_t *w = out_begin(e, c, wl + 20 + 2 + len + 2);
    size_t n;
    if (w == NULL)
        return -1;
    n = put_mem(w, word, wl);
    n += u64_to_dec(w + n, len);
    n += put_body(w + n, p, len);
    out_end(e, c, n);
    return 0;
}

/* data_begin returns room for a "DATA <size>\r\n<listing>\r\n" reply of a
 * listing of size bytes, with the header line written and *k set to its
 * length, or NULL as out_begin. */
static uint8_t *data_begin(beuss_engine *e, bconn *c, size_t size, size_t *k)
{
    uint8_t *o = out_begin(e, c, 5 + 20 + 2 + size + 2);
    size_t n;
    if (o == NULL)
        return NULL;
    n = put_mem(o, "DATA ", 5);
    n += u64_to_dec(o + n, size);
    *k = n + put_crlf(o + n);
    return o;
}

static int reply_err(beuss_engine *e, bconn *c, berr code, const char *text)
{
    const char *name = berr_name(code);
    size_t nl = strlen(name), tl = strlen(text);
    uint8_t *w = out_begin(e, c, 4 + nl + 1 + tl + 2);
    size_t n;
    e->st.protocol_errors++;
    if (w == NULL)
        return -1;
    n = put_named(w, "ERR ", 4, (const uint8_t *)name, nl);
    n += put_mem(w + n, text, tl);
    n += put_crlf(w + n);
    out_end(e, c, n);
    return 0;
}

/* ---- delivery ----------------------------------------------------------- */

/* reply_msg writes "MSG <bytes>[ <id> <deliveries>]\r\n<payload>\r\n", the
 * lease part when l is not NULL. */
static int reply_msg(beuss_engine *e, bconn *c, const uint8_t *p, size_t n, const blease *l)
{
    uint8_t *w;
    size_t k;
    if (l == NULL)
        return reply_payload(e, c, "MSG ", 4, p, n);
    w = out_begin(e, c, 4 + 20 + 42 + 2 + n + 2);
    if (w == NULL)
        return -1;
    k = put_mem(w, "MSG ", 4);
    k += u64_to_dec(w + k, n);
    k += put_lease_tail(w + k, l);
    k += put_body(w + k, p, n);
    out_end(e, c, k);
    return 0;
}

/* ---- leases ---------------------------------------------------------------- */

static uint64_t deadline_after(uint64_t now, uint64_t ms)
{
    uint64_t at = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
    return at > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : at;
}

/* pump_later puts q on the list pump_pending serves. */
static void pump_later(beuss_engine *e, bqueue *q)
{
    if (q->pump_later)
        return;
    q->pump_later = 1;
    q->pnext = e->pumpq;
    e->pumpq = q;
}

static void pump(beuss_engine *e, bqueue *q);

/* pump_pending pumps every queue put on the list by pump_later. */
static void pump_pending(beuss_engine *e)
{
    while (e->pumpq) {
        bqueue *q = e->pumpq;
        e->pumpq = q->pnext;
        q->pnext = NULL;
        q->pump_later = 0;
        pump(e, q);
        q_touch(e, q);
    }
}

/* lease_new returns a lease of q's message p[0:n), delivered prev times
 * before, to c for lease_ms, registered by id, in the heap and on c's list;
 * or NULL when memory runs out (nothing changed but the id counter). */
static blease *lease_new(beuss_engine *e, bconn *c, bqueue *q, const uint8_t *p, size_t n,
                         uint32_t prev, uint32_t lease_ms, uint32_t maxdeliver, uint32_t gen)
{
    blease *l = ba_malloc(&e->al, sizeof *l + n);
    if (l == NULL)
        return NULL;
    memset(l, 0, sizeof *l);
    l->id = ++e->last_lease_id;
    l->q = q;
    l->c = c;
    l->deliveries = prev == UINT32_MAX ? prev : prev + 1;
    l->maxdeliver = maxdeliver;
    l->lease_ms = lease_ms;
    l->sub_gen = gen;
    l->len = (uint32_t)n;
    if (n)
        memcpy(l->data, p, n);
    l->t.idx = BH_NONE;
    l->t.kind = TK_LEASE;
    l->t.at = deadline_after(e->now_ms, lease_ms);
    if (heap_insert(&e->timers, &e->al, &l->t) != 0) {
        ba_free(&e->al, l, sizeof *l + n);
        return NULL;
    }
    if (lt_insert(&e->leases, &e->al, l) != 0) {
        heap_remove(&e->timers, &l->t);
        ba_free(&e->al, l, sizeof *l + n);
        return NULL;
    }
    dl_push_back(&c->leases, &l->clink);
    q->nleased++;
    e->st.leased++;
    e->leased_bytes += n;
    return l;
}

/* lease_detach takes l off its connection's list: nobody holds it any more. */
static void lease_detach(blease *l)
{
    bconn *c = l->c;
    if (c == NULL)
        return;
    dl_unlink(&c->leases, &l->clink);
    l->c = NULL;
}

/* lease_drop forgets l and frees it (ACK, or a delivery that failed). */
static void lease_drop(beuss_engine *e, blease *l)
{
    bqueue *q = l->q;
    lease_detach(l);
    heap_remove(&e->timers, &l->t);
    lt_remove(&e->leases, l);
    q->nleased--;
    e->st.leased--;
    e->leased_bytes -= l->len;
    ba_free(&e->al, l, sizeof *l + l->len);
    q_touch(e, q);
}

/* lease_credit gives back the credit l used, if it came from its holder's
 * current ON of that queue (prefetch semantics), and schedules a pump. When
 * l expired, that subscription's credit is withheld instead, all of it: a
 * consumer that lets leases run out is stalled or too slow, and pushing it
 * more (or the same messages again) would only strand them; it gets the
 * credit back with its next ACK, NACK, TOUCH or CREDIT (conn_alive). */
static void lease_credit(beuss_engine *e, blease *l, int expired)
{
    bsub *s;
    if (l->c == NULL || l->sub_gen == 0)
        return;
    s = sub_of(member_find(&l->c->ons, l->c, l->q));
    if (s == NULL || s->gen != l->sub_gen)
        return;
    if (expired) {
        /* Its unused credit too: pushing more to it would strand more. */
        uint64_t w = (uint64_t)s->withheld + s->credit + 1;
        s->withheld = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
        s->credit = 0;
        sub_update(s);
        return;
    }
    if (s->credit == UINT32_MAX)
        return;
    s->credit++;
    sub_update(s);
    pump_later(e, l->q);
}

/* conn_alive gives c's subscriptions back the credit withheld for their
 * expired leases: c just settled, touched or granted something. */
static void conn_alive(beuss_engine *e, bconn *c)
{
    bsub *s;
    for (s = first_on(c); s; s = next_on(s)) {
        uint64_t credit;
        if (s->withheld == 0)
            continue;
        credit = (uint64_t)s->credit + s->withheld;
        s->credit = credit > UINT32_MAX ? UINT32_MAX : (uint32_t)credit;
        s->withheld = 0;
        sub_update(s);
        pump_later(e, s->m.q);
    }
}

/* dead_name writes the name of q's dead-letter queue into name and returns
 * its length. */
static size_t dead_name(const bqueue *q, uint8_t name[BEUSS_MAX_QUEUE_NAME])
{
    size_t k = q->namelen > DEAD_BASE_MAX ? DEAD_BASE_MAX : q->namelen;
    memcpy(name, q->name, k);
    memcpy(name + k, DEAD_SUFFIX, sizeof(DEAD_SUFFIX) - 1);
    return k + sizeof(DEAD_SUFFIX) - 1;
}

static bqueue *get_queue(beuss_engine *e, bview t, int *created);
static void undo_create(beuss_engine *e, bqueue *q, int created);

/* dead_letter appends p[0:n) to q's dead-letter queue as a fresh message
 * (delivery count reset, so it can be put back or taken under a new lease).
 * It returns 0, or -1 when memory runs out (nothing changed). */
static int dead_letter(beuss_engine *e, bqueue *q, const uint8_t *p, size_t n)
{
    uint8_t name[BEUSS_MAX_QUEUE_NAME];
    bview t;
    bqueue *d;
    int created;
    t.p = name;
    t.n = dead_name(q, name);
    d = get_queue(e, t, &created);
    if (d == NULL)
        return -1;
    if (store_append(&d->st, &e->al, p, n) != 0) {
        undo_create(e, d, created);
        return -1;
    }
    e->messages++;
    e->bytes += n;
    e->st.dead_lettered++;
    pump_later(e, d);
    return 0;
}

/* lease_return puts l's message back at the head of its queue, or into the
 * dead-letter queue once it was delivered maxdeliver times, frees l, and
 * schedules a pump. It returns 0, or -1 when memory runs out: then l stays,
 * held by nobody, and is retried LEASE_RETRY_MS later. */
static int lease_return(beuss_engine *e, blease *l)
{
    bqueue *q = l->q;
    if (l->deliveries >= l->maxdeliver) {
        if (dead_letter(e, q, l->data, l->len) != 0)
            goto retry;
    } else {
        if (store_push_front(&q->st, &e->al, l->data, l->len, l->deliveries) != 0)
            goto retry;
        e->messages++;
        e->bytes += l->len;
        pump_later(e, q);
    }
    lease_drop(e, l);
    return 0;
retry:
    lease_detach(l);
    heap_remove(&e->timers, &l->t);
    l->t.at = deadline_after(e->now_ms, LEASE_RETRY_MS);
    /* Cannot fail: the heap had room for this timer a moment ago. */
    (void)heap_insert(&e->timers, &e->al, &l->t);
    return -1;
}

/* conn_return_leases puts back every message c holds, latest delivered
 * first so that they keep their order at the head of their queues. */
static void conn_return_leases(beuss_engine *e, bconn *c)
{
    while (!dl_empty(&c->leases))
        lease_return(e, lease_of_clink(c->leases.tail));
    pump_pending(e);
}

/* ---- delivery to consumers ----------------------------------------------- */

/* push_to writes a PUSH of q's message p[0:n) (delivered prev times before)
 * to subscription s and spends one credit; under a lease it first leases
 * the message. It returns 0, or -1 when c's output could not grow or no
 * lease could be made (then c is closed and s is freed: the caller must not
 * touch s, and the message stays with the caller). */
static int push_to(beuss_engine *e, bsub *s, const uint8_t *p, size_t n, uint32_t prev)
{
    bconn *c = s->m.c;
    bqueue *q = s->m.q;
    blease *l = NULL;
    uint8_t *w;
    size_t k;
    if (s->lease_ms) {
        l = lease_new(e, c, q, p, n, prev, s->lease_ms, s->maxdeliver, s->gen);
        if (l == NULL) {
            reply_err(e, c, BE_INTERNAL, "out of memory leasing a message; subscriptions ended");
            conn_set_closing(e, c);
            return -1;
        }
    }
    w = out_begin(e, c, 5 + q->namelen + 1 + 20 + 42 + 2 + n + 2);
    if (w == NULL) {
        if (l)
            lease_drop(e, l);
        return -1;
    }
    k = put_named(w, "PUSH ", 5, q->name, q->namelen);
    k += u64_to_dec(w + k, n);
    k += put_lease_tail(w + k, l);
    k += put_body(w + k, p, n);
    s->credit--;
    e->st.pushed++;
    if (prev)
        e->st.redelivered++;
    if (s->in_ring)
        q->ring = s->rnext; /* round robin: the next one is served next */
    if (s->credit == 0)
        ring_del(s);
    out_end(e, c, k);
    return 0;
}

/* answer_waiter answers c's GET WAIT on q with p[0:n) (delivered prev times
 * before), leased if the GET asked for it. It returns 0, or -1 when the
 * message was not taken: c's output could not grow (then c is closed) or no
 * lease could be made (then c got ERR INTERNAL); either way c no longer
 * waits. */
static int answer_waiter(beuss_engine *e, bconn *c, bqueue *q, const uint8_t *p, size_t n,
                         uint32_t prev)
{
    blease *l = NULL;
    if (c->w_lease_ms) {
        l = lease_new(e, c, q, p, n, prev, c->w_lease_ms, c->w_maxdeliver, 0);
        if (l == NULL) {
            if (reply_err(e, c, BE_INTERNAL, "out of memory leasing the message") == 0) {
                wait_end(e, c);
                run_add(e, c);
            }
            return -1;
        }
    }
    if (reply_msg(e, c, p, n, l) != 0) {
        if (l)
            lease_drop(e, l);
        return -1;
    }
    wait_end(e, c);
    e->st.taken++;
    if (prev)
        e->st.redelivered++;
    run_add(e, c);
    return 0;
}

static void queue_drop(beuss_engine *e, bqueue *q)
{
    const uint8_t *p;
    size_t n;
    if (store_peek(&q->st, &p, &n)) {
        e->messages--;
        e->bytes -= n;
        store_drop(&q->st, &e->al);
        if (q->st.count == 0)
            q_touch(e, q);
    }
}

/* handover gives p[0:n) to a waiting GET or an eligible ON consumer of q,
 * which must hold no ready message (FIFO). It returns 1 if one took it,
 * 0 if the message must be stored. */
static int handover(beuss_engine *e, bqueue *q, const uint8_t *p, size_t n)
{
    while (!dl_empty(&q->waiters))
        if (answer_waiter(e, conn_of_wlink(q->waiters.head), q, p, n, 0) == 0)
            return 1;
    while (q->ring)
        if (push_to(e, q->ring, p, n, 0) == 0)
            return 1;
    return 0;
}

/* enqueue delivers p[0:n) to q as a PUT does, without the queued-bytes cap
 * (the caller checked it). It returns 0, or -1 when memory runs out storing
 * it. */
static int enqueue(beuss_engine *e, bqueue *q, const uint8_t *p, size_t n)
{
    if (q->st.count == 0 && handover(e, q, p, n))
        return 0;
    if (store_append(&q->st, &e->al, p, n) != 0)
        return -1;
    e->messages++;
    e->bytes += n;
    return 0;
}

/* pump hands q's ready messages to its eligible consumers, waiting GETs
 * first, until either runs out. */
static void pump(beuss_engine *e, bqueue *q)
{
    while (q->st.count) {
        const uint8_t *p;
        size_t n;
        uint32_t prev;
        store_peek_d(&q->st, &p, &n, &prev);
        if (!dl_empty(&q->waiters)) {
            if (answer_waiter(e, conn_of_wlink(q->waiters.head), q, p, n, prev) == 0)
                queue_drop(e, q);
        } else if (q->ring) {
            if (push_to(e, q->ring, p, n, prev) == 0)
                queue_drop(e, q);
        } else {
            break;
        }
    }
}

/* ---- channels ------------------------------------------------------------ */

/* out_blocked returns 1 if c takes no pushes now. */
static int out_blocked(const bconn *c)
{
    return c->user_paused | c->full | c->closing;
}

/* write_event writes "EVENT <channel> <n>\r\n<payload>\r\n" to s's
 * connection. It returns 0, or -1 when c's output could not grow (then c is
 * closed and s freed). */
static int write_event(beuss_engine *e, bcsub *s, const uint8_t *p, size_t n)
{
    bconn *c = s->m.c;
    bqueue *ch = s->m.q;
    uint8_t *w = out_begin(e, c, 6 + ch->namelen + 1 + 20 + 2 + n + 2);
    size_t k;
    if (w == NULL)
        return -1;
    k = put_named(w, "EVENT ", 6, ch->name, ch->namelen);
    k += u64_to_dec(w + k, n);
    k += put_body(w + k, p, n);
    e->st.events_delivered++;
    out_end(e, c, k);
    return 0;
}

/* flush_held writes s's DROPPED count, then its held events, while its
 * connection takes them. It returns 0, or -1 if s was freed. */
static int flush_held(beuss_engine *e, bcsub *s)
{
    bconn *c = s->m.c;
    if (s->dropped && !out_blocked(c)) {
        bqueue *ch = s->m.q;
        uint8_t *w = out_begin(e, c, 8 + ch->namelen + 1 + 20 + 2);
        size_t k;
        if (w == NULL)
            return -1;
        k = put_named(w, "DROPPED ", 8, ch->name, ch->namelen);
        k += u64_to_dec(w + k, s->dropped);
        k += put_crlf(w + k);
        s->dropped = 0;
        out_end(e, c, k);
    }
    while (s->held.count && !out_blocked(c)) {
        const uint8_t *p;
        size_t n;
        store_peek(&s->held, &p, &n);
        if (write_event(e, s, p, n) != 0)
            return -1;
        store_drop(&s->held, &e->al);
    }
    return 0;
}

/* event_to gives one published event to subscriber s: written at once when
 * its connection takes it and nothing is held before it, else held, under
 * the sub_buffer bound and the sub_policy. */
static void event_to(beuss_engine *e, bcsub *s, const uint8_t *p, size_t n)
{
    bconn *c = s->m.c;
    if (c->closing)
        return;
    if ((s->held.count || s->dropped) && flush_held(e, s) != 0)
        return;
    if (!out_blocked(c) && s->held.count == 0) {
        write_event(e, s, p, n);
        return;
    }
    if (c->closing)
        return;
    if (s->held.count >= e->cfg.sub_buffer) {
        e->st.events_dropped++;
        if (e->cfg.sub_policy == BEUSS_SUB_DISCONNECT) {
            conn_set_closing(e, c);
            return;
        }
        if (s->held.count == 0) {
            s->dropped++; /* sub_buffer 0: nothing is held, this one goes */
            return;
        }
        store_drop(&s->held, &e->al);
        s->dropped++;
    }
    if (store_append(&s->held, &e->al, p, n) != 0) {
        e->st.events_dropped++;
        s->dropped++;
    }
}

/* csub_free ends SUB s, dropping its held events, and removes its channel
 * when nobody listens any more (unless a PUB is writing to it). */
static void csub_free(beuss_engine *e, bcsub *s)
{
    bqueue *ch = s->m.q;
    member_unlink(&s->m, &s->m.c->subs);
    e->st.subscribers--;
    store_purge(&s->held, &e->al);
    ba_free(&e->al, s, sizeof *s);
    if (ch->members.n == 0 && ch != e->pubch)
        qt_remove(&e->ct, &e->al, ch);
}

/* flush_conn_held writes what c's SUBs hold, as far as c takes it. */
static void flush_conn_held(beuss_engine *e, bconn *c)
{
    bcsub *s = first_csub(c);
    while (s && !out_blocked(c)) {
        bcsub *next = next_csub(s);
        if ((s->held.count || s->dropped) && flush_held(e, s) != 0)
            return;
        s = next;
    }
}

/* ---- queues by name -------------------------------------------------------- */

/* same_name returns 1 if q is named t. Names are short: a byte loop beats a
 * call to memcmp for them. */
static int same_name(const bqueue *q, bview t)
{
    size_t i;
    if (q->namelen != t.n)
        return 0;
    if (t.n > 16)
        return memcmp(q->name, t.p, t.n) == 0;
    for (i = 0; i < t.n; i++)
        if (q->name[i] != t.p[i])
            return 0;
    return 1;
}

/* find_queue returns the queue named t, or NULL. */
static bqueue *find_queue(beuss_engine *e, bview t)
{
    bqueue *q = e->lastq;
    if (q == NULL || !same_name(q, t)) {
        q = qt_find(&e->qt, t.p, t.n);
        if (q == NULL)
            return NULL;
        e->lastq = q;
    }
    q->last_active = e->now_ms;
    return q;
}

/* get_queue returns the queue named t, created if needed (then *created is
 * set to 1), or NULL when memory runs out. */
static bqueue *get_queue(beuss_engine *e, bview t, int *created)
{
    bqueue *q = e->lastq;
    *created = 0;
    if (q == NULL || !same_name(q, t)) {
        size_t before = e->qt.count;
        q = qt_get(&e->qt, &e->al, t.p, t.n);
        if (q == NULL)
            return NULL;
        *created = e->qt.count != before;
        e->lastq = q;
    }
    q_touch(e, q);
    return q;
}

/* undo_create removes q if this request created it and then failed, so that
 * a refused request (FULL, INTERNAL) changes nothing, not even QUEUES. */
static void undo_create(beuss_engine *e, bqueue *q, int created)
{
    if (!created || !queue_idle(q))
        return;
    heap_remove(&e->timers, &q->idle);
    if (e->lastq == q)
        e->lastq = NULL;
    qt_remove(&e->qt, &e->al, q);
}

/* ---- requests ------------------------------------------------------------ */

static void err_usage(beuss_engine *e, bconn *c, const char *usage)
{
    reply_err(e, c, BE_BAD_ARGS, usage);
}

static void err_queue(beuss_engine *e, bconn *c, bview t)
{
    char esc[64], msg[160];
    bp_escape(esc, sizeof esc, t.p, t.n);
    snprintf(msg, sizeof msg,
             "bad queue name '%s': 1 to 255 bytes of printable ASCII or bytes >= 128", esc);
    reply_err(e, c, BE_BAD_QUEUE_NAME, msg);
}

static void err_number(beuss_engine *e, bconn *c, bview t)
{
    char esc[48], msg[96];
    bp_escape(esc, sizeof esc, t.p, t.n);
    snprintf(msg, sizeof msg, "'%s' is not 1 to 19 decimal digits", esc);
    reply_err(e, c, BE_BAD_NUMBER, msg);
}

/* err_too_large counts and refuses request f, whose payload is over
 * max_message_size. */
static void err_too_large(beuss_engine *e, bconn *c, const bframe *f)
{
    char msg[96];
    e->st.rejected_large++;
    snprintf(msg, sizeof msg, "message of %llu bytes is over the maximum of %llu",
             (unsigned long long)f->declared, (unsigned long long)e->cfg.max_message_size);
    reply_err(e, c, BE_TOO_LARGE, msg);
}

/* check_args replies BAD_ARGS or BAD_QUEUE_NAME and returns 0 unless f has
 * between lo and hi tokens and, when it has a queue, a valid one. */
static int check_args(beuss_engine *e, bconn *c, const bframe *f, uint32_t lo, uint32_t hi,
                      const char *usage)
{
    if (f->ntok < lo || f->ntok > hi) {
        err_usage(e, c, usage);
        return 0;
    }
    if (lo >= 2 && (f->badname & 2)) {
        err_queue(e, c, f->tok[1]);
        return 0;
    }
    return 1;
}

/* over_cap returns 1 if n more bytes would pass max_queued_bytes, which
 * counts ready, leased (they may come back) and delayed messages. */
static int over_cap(const beuss_engine *e, size_t n)
{
    return e->cfg.max_queued_bytes &&
           e->bytes + e->leased_bytes + e->sched_bytes + n > e->cfg.max_queued_bytes;
}

/* reject_over_cap returns 1 after refusing a PUT of n bytes to q with FULL
 * (dropping q again if the PUT created it) when n more bytes would pass
 * max_queued_bytes, or 0 when they fit. */
static int reject_over_cap(beuss_engine *e, bconn *c, bqueue *q, int created, size_t n)
{
    if (!over_cap(e, n))
        return 0;
    e->st.rejected_full++;
    undo_create(e, q, created);
    reply_err(e, c, BE_FULL, "the server's cap on queued bytes would be exceeded");
    return 1;
}

/* wall_to_engine returns the engine time of Unix time w, clamped to the
 * heap's range. */
static uint64_t wall_to_engine(const beuss_engine *e, int64_t w)
{
    int64_t t;
    if (e->wall_off > 0 && w < INT64_MIN + e->wall_off)
        return 0;
    if (e->wall_off < 0 && w > INT64_MAX + e->wall_off)
        return (uint64_t)INT64_MAX;
    t = w - e->wall_off;
    return t < 0 ? 0 : (uint64_t)t;
}

/* put_later keeps the PUT f as a delayed message of q until its time. A time
 * already passed joins the queue on the next tick, behind messages already
 * due, so order stays by time. */
static void put_later(beuss_engine *e, bconn *c, const bframe *f, bqueue *q, int created)
{
    bdelay *d;
    uint64_t at;
    if (f->when == BW_DELAY)
        at = f->when_ms > (uint64_t)INT64_MAX - e->now_ms ? (uint64_t)INT64_MAX : e->now_ms + f->when_ms;
    else
        at = wall_to_engine(e, f->when_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)f->when_ms);
    if (reject_over_cap(e, c, q, created, f->plen))
        return;
    d = ba_malloc(&e->al, sizeof *d + f->plen);
    if (d == NULL) {
        undo_create(e, q, created);
        reply_err(e, c, BE_INTERNAL, "out of memory storing the message; nothing stored");
        return;
    }
    d->t.at = at;
    d->t.kind = TK_DELAY;
    d->t.idx = BH_NONE;
    d->q = q;
    d->len = f->plen;
    if (f->plen)
        memcpy(d->data, f->payload, f->plen);
    if (heap_insert(&e->timers, &e->al, &d->t) != 0) {
        ba_free(&e->al, d, sizeof *d + f->plen);
        undo_create(e, q, created);
        reply_err(e, c, BE_INTERNAL, "out of memory storing the message; nothing stored");
        return;
    }
    q->nsched++;
    e->sched_count++;
    e->sched_bytes += f->plen;
    e->st.puts++;
    if (f->truncated)
        e->st.truncated++;
    reply_ok_num(e, c, f->plen);
}

/* delay_fire moves the delayed message d into its queue. When memory runs
 * out storing it, it waits one more second in the heap rather than being
 * lost. */
static void delay_fire(beuss_engine *e, bdelay *d, uint64_t now)
{
    bqueue *q = d->q;
    heap_remove(&e->timers, &d->t);
    if (enqueue(e, q, d->data, d->len) != 0) {
        d->t.at = now + 1000;
        if (heap_insert(&e->timers, &e->al, &d->t) == 0)
            return;
        /* Neither the queue nor the heap can take it: it is lost, counted. */
        e->st.rejected_full++;
    }
    q->nsched--;
    e->sched_count--;
    e->sched_bytes -= d->len;
    ba_free(&e->al, d, sizeof *d + d->len);
    q_touch(e, q);
}

static void do_put(beuss_engine *e, bconn *c, const bframe *f)
{
    bqueue *q;
    int created;
    switch (f->err) {
    case BE_NONE:
        break;
    case BE_BAD_QUEUE_NAME:
        err_queue(e, c, f->tok[1]);
        return;
    case BE_BAD_ARGS:
        err_usage(e, c, "usage: PUT <queue> <bytes> [DELAY <ms> | AT <unix-ms>]");
        return;
    case BE_BAD_NUMBER:
        err_number(e, c, f->tok[4]);
        return;
    case BE_TOO_LARGE:
        err_too_large(e, c, f);
        return;
    default:
        reply_err(e, c, BE_INTERNAL, "out of memory reading the message; nothing stored");
        return;
    }
    q = get_queue(e, f->tok[1], &created);
    if (q == NULL) {
        reply_err(e, c, BE_INTERNAL, "out of memory creating the queue; nothing stored");
        return;
    }
    if (f->when != BW_NOW) {
        put_later(e, c, f, q, created);
        return;
    }
    /* Hand over directly: no copy through the store. */
    if (q->st.count == 0 && handover(e, q, f->payload, f->plen))
        goto accepted;
    if (reject_over_cap(e, c, q, created, f->plen))
        return;
    if (store_append(&q->st, &e->al, f->payload, f->plen) != 0) {
        undo_create(e, q, created);
        reply_err(e, c, BE_INTERNAL, "out of memory storing the message; nothing stored");
        return;
    }
    e->messages++;
    e->bytes += f->plen;
accepted:
    e->st.puts++;
    if (f->truncated)
        e->st.truncated++;
    reply_ok_num(e, c, f->plen);
}

/* Options of GET and ON, "NAME <n>" pairs after the queue. */
enum { O_WAIT = 1, O_CREDIT = 2, O_LEASE = 4, O_MAXDELIVER = 8 };

typedef struct bopts {
    unsigned has;
    uint64_t wait;
    uint64_t credit;
    uint32_t lease;
    uint32_t maxdeliver;
} bopts;

/* parse_opts reads f's options from tok[2] on, among those in allowed, into
 * *o. It replies an error and returns 0 when one is unknown, repeated,
 * missing its number or out of bounds (LEASE and MAXDELIVER are 1 to
 * 4294967295; MAXDELIVER needs LEASE). */
static int parse_opts(beuss_engine *e, bconn *c, const bframe *f, unsigned allowed, bopts *o,
                      const char *usage)
{
    uint32_t i;
    memset(o, 0, sizeof *o);
    o->maxdeliver = e->cfg.max_deliver;
    if (f->ntok % 2 != 0) {
        err_usage(e, c, usage);
        return 0;
    }
    for (i = 2; i < f->ntok; i += 2) {
        unsigned bit = bp_tok_is(f->tok[i], "WAIT")         ? O_WAIT
                       : bp_tok_is(f->tok[i], "CREDIT")     ? O_CREDIT
                       : bp_tok_is(f->tok[i], "LEASE")      ? O_LEASE
                       : bp_tok_is(f->tok[i], "MAXDELIVER") ? O_MAXDELIVER
                                                            : 0;
        uint64_t v;
        if (!(bit & allowed) || (o->has & bit)) {
            err_usage(e, c, usage);
            return 0;
        }
        if (!bp_parse_number(f->tok[i + 1], &v)) {
            err_number(e, c, f->tok[i + 1]);
            return 0;
        }
        o->has |= bit;
        if (bit == O_WAIT) {
            o->wait = v;
        } else if (bit == O_CREDIT) {
            o->credit = v;
        } else {
            if (v == 0 || v > UINT32_MAX) {
                reply_err(e, c, BE_BAD_ARGS,
                          bit == O_LEASE ? "LEASE is 1 to 4294967295 ms"
                                         : "MAXDELIVER is 1 to 4294967295 deliveries");
                return 0;
            }
            if (bit == O_LEASE)
                o->lease = (uint32_t)v;
            else
                o->maxdeliver = (uint32_t)v;
        }
    }
    if ((o->has & O_MAXDELIVER) && !(o->has & O_LEASE)) {
        reply_err(e, c, BE_BAD_ARGS, "MAXDELIVER needs LEASE");
        return 0;
    }
    return 1;
}

static void do_get(beuss_engine *e, bconn *c, const bframe *f, uint64_t now)
{
    static const char usage[] = "usage: GET <queue> [WAIT <ms>] [LEASE <ms>] [MAXDELIVER <n>]";
    bopts o;
    bqueue *q;
    const uint8_t *p;
    size_t n;
    uint32_t prev;
    int created;
    if (!check_args(e, c, f, 2, 8, usage) ||
        !parse_opts(e, c, f, O_WAIT | O_LEASE | O_MAXDELIVER, &o, usage))
        return;
    q = find_queue(e, f->tok[1]);
    if (q && store_peek_d(&q->st, &p, &n, &prev)) {
        blease *l = NULL;
        if (o.lease) {
            l = lease_new(e, c, q, p, n, prev, o.lease, o.maxdeliver, 0);
            if (l == NULL) {
                reply_err(e, c, BE_INTERNAL, "out of memory leasing the message");
                return;
            }
        }
        if (reply_msg(e, c, p, n, l) == 0) {
            queue_drop(e, q);
            e->st.taken++;
            if (prev)
                e->st.redelivered++;
        } else if (l) {
            lease_drop(e, l);
        }
        return;
    }
    if (o.wait == 0) {
        REPLY(e, c, "EMPTY\r\n");
        return;
    }
    q = get_queue(e, f->tok[1], &created);
    if (q == NULL) {
        reply_err(e, c, BE_INTERNAL, "out of memory creating the queue");
        return;
    }
    c->wt.at = deadline_after(now, o.wait);
    c->wt.kind = TK_WAIT;
    if (heap_insert(&e->timers, &e->al, &c->wt) != 0) {
        undo_create(e, q, created);
        reply_err(e, c, BE_INTERNAL, "out of memory registering the wait");
        return;
    }
    c->w_lease_ms = o.lease;
    c->w_maxdeliver = o.maxdeliver;
    c->wq = q;
    dl_push_back(&q->waiters, &c->wlink);
    q->nwait++;
    c->waiting = 1;
    e->st.waiting++;
    mark(e, c);
}

static void do_peek(beuss_engine *e, bconn *c, const bframe *f)
{
    bqueue *q;
    const uint8_t *p;
    size_t n;
    if (!check_args(e, c, f, 2, 2, "usage: PEEK <queue>"))
        return;
    q = find_queue(e, f->tok[1]);
    if (q && store_peek(&q->st, &p, &n))
        reply_payload(e, c, "MSG ", 4, p, n);
    else
        REPLY(e, c, "EMPTY\r\n");
}

static void do_on(beuss_engine *e, bconn *c, const bframe *f)
{
    static const char usage[] = "usage: ON <queue> [CREDIT <n>] [LEASE <ms>] [MAXDELIVER <n>]";
    uint64_t credit;
    bopts o;
    bqueue *q;
    bsub *s;
    int created;
    if (!check_args(e, c, f, 2, 8, usage) ||
        !parse_opts(e, c, f, O_CREDIT | O_LEASE | O_MAXDELIVER, &o, usage))
        return;
    credit = (o.has & O_CREDIT) ? o.credit : 1;
    q = get_queue(e, f->tok[1], &created);
    if (q == NULL) {
        reply_err(e, c, BE_INTERNAL, "out of memory creating the queue");
        return;
    }
    if (member_find(&c->ons, c, q)) {
        reply_err(e, c, BE_ALREADY_SUBSCRIBED, "this connection already has an ON for that queue");
        return;
    }
    s = ba_malloc(&e->al, sizeof *s);
    if (s == NULL) {
        undo_create(e, q, created);
        reply_err(e, c, BE_INTERNAL, "out of memory subscribing");
        return;
    }
    memset(s, 0, sizeof *s);
    s->credit = credit > UINT32_MAX ? UINT32_MAX : (uint32_t)credit;
    s->lease_ms = o.lease;
    s->maxdeliver = o.maxdeliver;
    s->gen = ++c->sub_gen ? c->sub_gen : ++c->sub_gen; /* 0 means "from a GET" */
    member_link(&s->m, &c->ons, c, q);
    e->st.consumers++;
    if (REPLY(e, c, "OK\r\n") != 0)
        return; /* c is closing; s is gone */
    sub_update(s);
    pump(e, q);
}

/* find_sub returns c's ON subscription to the queue named t, or NULL after
 * replying NOT_SUBSCRIBED. */
static bsub *find_sub(beuss_engine *e, bconn *c, bview t)
{
    bqueue *q = find_queue(e, t);
    bsub *s = q ? sub_of(member_find(&c->ons, c, q)) : NULL;
    if (s == NULL)
        reply_err(e, c, BE_NOT_SUBSCRIBED, "no ON for that queue on this connection");
    return s;
}

static void do_credit(beuss_engine *e, bconn *c, const bframe *f)
{
    uint64_t n, credit;
    bqueue *q;
    bsub *s;
    if (!check_args(e, c, f, 3, 3, "usage: CREDIT <queue> <n>"))
        return;
    if (!bp_parse_number(f->tok[2], &n)) {
        err_number(e, c, f->tok[2]);
        return;
    }
    s = find_sub(e, c, f->tok[1]);
    if (s == NULL)
        return;
    q = s->m.q;
    conn_alive(e, c);
    credit = (uint64_t)s->credit + n;
    s->credit = credit > UINT32_MAX ? UINT32_MAX : (uint32_t)credit;
    if (reply_ok_num(e, c, s->credit) != 0)
        return;
    sub_update(s);
    pump_later(e, q);
    pump_pending(e);
}

static void do_off(beuss_engine *e, bconn *c, const bframe *f)
{
    bsub *s;
    if (!check_args(e, c, f, 2, 2, "usage: OFF <queue>"))
        return;
    s = find_sub(e, c, f->tok[1]);
    if (s == NULL)
        return;
    sub_free(e, s);
    REPLY(e, c, "OK\r\n");
}

/* find_lease returns the lease id (token t) held by c, or NULL after
 * replying BAD_NUMBER or UNKNOWN_LEASE. Only the holder may settle a lease:
 * another connection's stale id must not settle a later delivery. */
static blease *find_lease(beuss_engine *e, bconn *c, bview t)
{
    uint64_t id;
    blease *l;
    if (!bp_parse_number(t, &id)) {
        err_number(e, c, t);
        return NULL;
    }
    l = lt_find(&e->leases, id);
    if (l == NULL || l->c != c) {
        reply_err(e, c, BE_UNKNOWN_LEASE,
                  "no lease with that id is held by this connection (settled, expired or another's)");
        return NULL;
    }
    return l;
}

static void do_ack(beuss_engine *e, bconn *c, const bframe *f)
{
    blease *l;
    if (!check_args(e, c, f, 2, 2, "usage: ACK <id>"))
        return;
    conn_alive(e, c);
    l = find_lease(e, c, f->tok[1]);
    if (l == NULL) {
        pump_pending(e);
        return;
    }
    lease_credit(e, l, 0);
    lease_drop(e, l);
    e->st.acked++;
    if (REPLY(e, c, "OK\r\n") == 0)
        pump_pending(e);
}

static void do_nack(beuss_engine *e, bconn *c, const bframe *f)
{
    static const char usage[] = "usage: NACK <id> [DELAY <ms>]";
    uint64_t ms = 0;
    blease *l;
    if (!check_args(e, c, f, 2, 4, usage))
        return;
    if (f->ntok == 3 || (f->ntok == 4 && !bp_tok_is(f->tok[2], "DELAY"))) {
        err_usage(e, c, usage);
        return;
    }
    if (f->ntok == 4 && !bp_parse_number(f->tok[3], &ms)) {
        err_number(e, c, f->tok[3]);
        return;
    }
    conn_alive(e, c);
    l = find_lease(e, c, f->tok[1]);
    if (l == NULL) {
        pump_pending(e);
        return;
    }
    lease_credit(e, l, 0);
    e->st.nacked++;
    if (ms == 0 || l->deliveries >= l->maxdeliver) {
        lease_return(e, l); /* on no memory it is retried later */
    } else {
        /* Held by nobody until the delay ends, then put back. */
        lease_detach(l);
        heap_remove(&e->timers, &l->t);
        l->t.at = deadline_after(e->now_ms, ms);
        (void)heap_insert(&e->timers, &e->al, &l->t); /* it was just removed */
    }
    if (REPLY(e, c, "OK\r\n") == 0)
        pump_pending(e);
}

static void do_touch(beuss_engine *e, bconn *c, const bframe *f)
{
    uint64_t ms;
    blease *l;
    if (!check_args(e, c, f, 2, 3, "usage: TOUCH <id> [<ms>]"))
        return;
    if (f->ntok == 3 && !bp_parse_number(f->tok[2], &ms)) {
        err_number(e, c, f->tok[2]);
        return;
    }
    conn_alive(e, c);
    l = find_lease(e, c, f->tok[1]);
    if (l != NULL) {
        if (f->ntok == 2)
            ms = l->lease_ms;
        heap_remove(&e->timers, &l->t);
        l->t.at = deadline_after(e->now_ms, ms);
        (void)heap_insert(&e->timers, &e->al, &l->t); /* it was just removed */
        REPLY(e, c, "OK\r\n");
    }
    pump_pending(e);
}

static void do_len(beuss_engine *e, bconn *c, const bframe *f)
{
    bqueue *q;
    if (!check_args(e, c, f, 2, 2, "usage: LEN <queue>"))
        return;
    q = find_queue(e, f->tok[1]);
    reply_ok_num(e, c, q ? q->st.count : 0);
}

static void do_purge(beuss_engine *e, bconn *c, const bframe *f)
{
    bqueue *q;
    uint64_t n = 0;
    if (!check_args(e, c, f, 2, 2, "usage: PURGE <queue>"))
        return;
    q = find_queue(e, f->tok[1]);
    if (q) {
        e->messages -= q->st.count;
        e->bytes -= q->st.bytes;
        n = store_purge(&q->st, &e->al);
        q_touch(e, q);
    }
    reply_ok_num(e, c, n);
}

/* cmp_names returns <0, 0 or >0 as name a[0:an) sorts before, with or after
 * b[0:bn), bytewise, a prefix first. */
static int cmp_names(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    if (r)
        return r;
    return an < bn ? -1 : an > bn;
}

static int cmp_queue(const void *a, const void *b)
{
    const bqueue *x = *(const bqueue *const *)a, *y = *(const bqueue *const *)b;
    return cmp_names(x->name, x->namelen, y->name, y->namelen);
}

/* dead_count returns the number of messages in q's dead-letter queue. */
static uint64_t dead_count(const beuss_engine *e, const bqueue *q)
{
    uint8_t name[BEUSS_MAX_QUEUE_NAME];
    size_t k = dead_name(q, name);
    const bqueue *d = qt_find(&e->qt, name, k);
    return d ? d->st.count : 0;
}

static void do_queues(beuss_engine *e, bconn *c)
{
    size_t n = e->qt.count, i, k = 0, size = 0, w;
    bqueue **v = NULL;
    uint8_t *o;
    if (n) {
        v = ba_malloc(&e->al, n * sizeof *v);
        if (v == NULL) {
            reply_err(e, c, BE_INTERNAL, "out of memory listing the queues");
            return;
        }
        for (i = 0; i < e->qt.nb; i++) {
            bqueue *q;
            for (q = e->qt.b[i]; q; q = q->hnext)
                v[k++] = q;
        }
        qsort(v, n, sizeof *v, cmp_queue);
    }
    /* <name> <ready> <consumers> <leased> <scheduled> <dead>: leases and
     * dead letters do not exist in this engine yet, so they are 0. */
    for (i = 0; i < n; i++)
        size += v[i]->namelen + 1 + u64_dec_len(v[i]->st.count) + 1 + u64_dec_len(v[i]->members.n) +
                1 + u64_dec_len(v[i]->nleased) + 1 + u64_dec_len(v[i]->nsched) + 1 +
                u64_dec_len(dead_count(e, v[i])) + 1;
    o = data_begin(e, c, size, &w);
    if (o != NULL) {
        for (i = 0; i < n; i++) {
            w += put_mem(o + w, v[i]->name, v[i]->namelen);
            o[w++] = ' ';
            w += u64_to_dec(o + w, v[i]->st.count);
            o[w++] = ' ';
            w += u64_to_dec(o + w, v[i]->members.n);
            o[w++] = ' ';
            w += u64_to_dec(o + w, v[i]->nleased);
            o[w++] = ' ';
            w += u64_to_dec(o + w, v[i]->nsched);
            o[w++] = ' ';
            w += u64_to_dec(o + w, dead_count(e, v[i]));
            o[w++] = '\n';
        }
        w += put_crlf(o + w);
        out_end(e, c, w);
    }
    ba_free(&e->al, v, n * sizeof *v);
}

static void do_stats(beuss_engine *e, bconn *c, uint64_t now)
{
    beuss_stats s;
    char doc[2048];
    int n, m, k;
    memset(&s, 0, sizeof s);
    beuss_engine_stats(e, &s);
    n = snprintf(doc, sizeof doc,
                 "protocol %d\nuptime_ms %llu\nconnections %llu\nqueues %llu\nmessages %llu\n"
                 "bytes %llu\nconsumers %llu\nwaiting %llu\nputs %llu\ntaken %llu\npushed %llu\n"
                 "truncated %llu\nrejected_large %llu\nrejected_full %llu\nprotocol_errors %llu\n"
                 "max_message_size %llu\noversize %s\nmax_queued_bytes %llu\nmemory %llu\n",
                 BEUSS_PROTOCOL_VERSION,
                 (unsigned long long)(now > e->created_ms ? now - e->created_ms : 0),
                 (unsigned long long)s.connections, (unsigned long long)s.queues,
                 (unsigned long long)s.messages, (unsigned long long)s.bytes,
                 (unsigned long long)s.consumers, (unsigned long long)s.waiting,
                 (unsigned long long)s.puts, (unsigned long long)s.taken,
                 (unsigned long long)s.pushed, (unsigned long long)s.truncated,
                 (unsigned long long)s.rejected_large, (unsigned long long)s.rejected_full,
                 (unsigned long long)s.protocol_errors,
                 (unsigned long long)e->cfg.max_message_size,
                 e->cfg.oversize == BEUSS_OVERSIZE_REJECT ? "reject" : "truncate",
                 (unsigned long long)e->cfg.max_queued_bytes, (unsigned long long)s.memory);
    if (n < 0 || (size_t)n >= sizeof doc) {
        reply_err(e, c, BE_INTERNAL, "statistics do not fit");
        return;
    }
    m = snprintf(doc + n, sizeof doc - (size_t)n,
                 "leased %llu\nacked %llu\nnacked %llu\nexpired %llu\nredelivered %llu\n"
                 "dead_lettered %llu\nmax_deliver %u\n",
                 (unsigned long long)s.leased, (unsigned long long)s.acked,
                 (unsigned long long)s.nacked, (unsigned long long)s.expired,
                 (unsigned long long)s.redelivered, (unsigned long long)s.dead_lettered,
                 (unsigned)e->cfg.max_deliver);
    if (m < 0 || (size_t)m >= sizeof doc - (size_t)n) {
        reply_err(e, c, BE_INTERNAL, "statistics do not fit");
        return;
    }
    n += m;
    k = snprintf(doc + n, sizeof doc - (size_t)n,
                 "channels %llu\nsubscribers %llu\npublished %llu\nevents_delivered %llu\n"
                 "events_dropped %llu\nscheduled %llu\nscheduled_bytes %llu\nschedules %llu\n"
                 "schedule_fired %llu\nqueues_removed_idle %llu\nqueue_idle_ms %llu\n"
                 "sub_buffer %llu\nsub_policy %s\n",
                 (unsigned long long)s.channels, (unsigned long long)s.subscribers,
                 (unsigned long long)s.published, (unsigned long long)s.events_delivered,
                 (unsigned long long)s.events_dropped, (unsigned long long)s.scheduled,
                 (unsigned long long)s.scheduled_bytes, (unsigned long long)s.schedules,
                 (unsigned long long)s.schedule_fired, (unsigned long long)s.queues_removed_idle,
                 (unsigned long long)e->cfg.queue_idle_ms, (unsigned long long)e->cfg.sub_buffer,
                 e->cfg.sub_policy == BEUSS_SUB_DISCONNECT ? "disconnect" : "drop-oldest");
    if (k < 0 || (size_t)k >= sizeof doc - (size_t)n) {
        reply_err(e, c, BE_INTERNAL, "statistics do not fit");
        return;
    }
    reply_payload(e, c, "DATA ", 5, (const uint8_t *)doc, (size_t)n + (size_t)k);
}

/* do_queue_stats answers STATS <queue>: the counts of one queue (all 0 for
 * a queue that does not exist) and the name of its dead-letter queue. */
static void do_queue_stats(beuss_engine *e, bconn *c, const bframe *f)
{
    static const bqueue none;
    const bqueue *q = find_queue(e, f->tok[1]);
    uint8_t dname[BEUSS_MAX_QUEUE_NAME];
    uint8_t doc[512 + BEUSS_MAX_QUEUE_NAME];
    size_t dl;
    int n;
    if (q == NULL) {
        /* dead_name only reads the name: build it from the token. */
        size_t k = f->tok[1].n > DEAD_BASE_MAX ? DEAD_BASE_MAX : f->tok[1].n;
        memcpy(dname, f->tok[1].p, k);
        memcpy(dname + k, DEAD_SUFFIX, sizeof(DEAD_SUFFIX) - 1);
        dl = k + sizeof(DEAD_SUFFIX) - 1;
        q = &none;
    } else {
        dl = dead_name(q, dname);
    }
    {
        const bqueue *d = qt_find(&e->qt, dname, dl);
        n = snprintf((char *)doc, sizeof doc,
                     "ready %llu\nconsumers %u\nleased %llu\nscheduled %llu\ndead %llu\n"
                     "waiting %u\nbytes %llu\ndead_queue ",
                     (unsigned long long)q->st.count, (unsigned)q->members.n,
                     (unsigned long long)q->nleased, (unsigned long long)q->nsched,
                     (unsigned long long)(d ? d->st.count : 0), (unsigned)q->nwait,
                     (unsigned long long)q->st.bytes);
    }
    if (n < 0 || (size_t)n + dl + 1 > sizeof doc) {
        reply_err(e, c, BE_INTERNAL, "statistics do not fit");
        return;
    }
    memcpy(doc + n, dname, dl);
    doc[(size_t)n + dl] = '\n';
    reply_payload(e, c, "DATA ", 5, doc, (size_t)n + dl + 1);
}

/* payload_err replies the framing error of payload request f (PUB,
 * SCHEDULE ADD) and returns 1, or returns 0 when there is none. */
static int payload_err(beuss_engine *e, bconn *c, const bframe *f, const char *usage)
{
    switch (f->err) {
    case BE_NONE:
        return 0;
    case BE_BAD_QUEUE_NAME: {
        uint32_t i = (f->badname & 2) ? 1 : (f->badname & 4) ? 2 : 3;
        err_queue(e, c, f->tok[i]);
        return 1;
    }
    case BE_BAD_ARGS:
        err_usage(e, c, usage);
        return 1;
    case BE_TOO_LARGE:
        err_too_large(e, c, f);
        return 1;
    default:
        reply_err(e, c, BE_INTERNAL, "out of memory reading the message; nothing done");
        return 1;
    }
}

static void do_pub(beuss_engine *e, bconn *c, const bframe *f)
{
    bqueue *ch;
    bcsub *s;
    uint64_t n = 0;
    if (payload_err(e, c, f, "usage: PUB <channel> <bytes>"))
        return;
    ch = qt_find(&e->ct, f->tok[1].p, f->tok[1].n);
    e->st.published++;
    if (f->truncated)
        e->st.truncated++;
    if (ch) {
        /* A subscriber may be closed while we write (disconnect policy, no
         * memory): it only frees its own SUB, and pubch keeps ch alive. */
        e->pubch = ch;
        for (s = csub_of(q_member(ch->members.list.head)); s;) {
            bcsub *next = csub_of(q_member(s->m.qlink.next));
            event_to(e, s, f->payload, f->plen);
            n++;
            s = next;
        }
        e->pubch = NULL;
        if (ch->members.n == 0)
            qt_remove(&e->ct, &e->al, ch);
    }
    reply_ok_num(e, c, n);
}

static void do_sub(beuss_engine *e, bconn *c, const bframe *f)
{
    bqueue *ch;
    bcsub *s;
    if (!check_args(e, c, f, 2, 2, "usage: SUB <channel>"))
        return;
    ch = qt_get(&e->ct, &e->al, f->tok[1].p, f->tok[1].n);
    if (ch == NULL) {
        reply_err(e, c, BE_INTERNAL, "out of memory subscribing");
        return;
    }
    if (member_find(&c->subs, c, ch)) {
        reply_err(e, c, BE_ALREADY_SUBSCRIBED, "this connection already has a SUB for that channel");
        return;
    }
    s = ba_malloc(&e->al, sizeof *s);
    if (s == NULL) {
        if (ch->members.n == 0)
            qt_remove(&e->ct, &e->al, ch);
        reply_err(e, c, BE_INTERNAL, "out of memory subscribing");
        return;
    }
    memset(s, 0, sizeof *s);
    member_link(&s->m, &c->subs, c, ch);
    e->st.subscribers++;
    REPLY(e, c, "OK\r\n");
}

static void do_unsub(beuss_engine *e, bconn *c, const bframe *f)
{
    bqueue *ch;
    bcsub *s;
    if (!check_args(e, c, f, 2, 2, "usage: UNSUB <channel>"))
        return;
    ch = qt_find(&e->ct, f->tok[1].p, f->tok[1].n);
    s = ch ? csub_of(member_find(&c->subs, c, ch)) : NULL;
    if (s == NULL) {
        reply_err(e, c, BE_NOT_SUBSCRIBED, "no SUB for that channel on this connection");
        return;
    }
    csub_free(e, s);
    REPLY(e, c, "OK\r\n");
}

/* ---- recurring schedules ------------------------------------------------- */

static bsched *sched_find(const beuss_engine *e, bview name)
{
    bsched *x;
    for (x = sched_of(e->scheds.head); x; x = sched_of(x->link.next))
        if (x->namelen == name.n && memcmp(x->name, name.p, name.n) == 0)
            return x;
    return NULL;
}

static void sched_free(beuss_engine *e, bsched *x)
{
    heap_remove(&e->timers, &x->t);
    dl_unlink(&e->scheds, &x->link);
    e->nscheds--;
    ba_free(&e->al, x, x->size);
}

/* sched_next asks the injected cron for x's first fire strictly after Unix
 * time after, and arms x's timer. It returns 1 if armed, 0 if x never fires
 * again, -2 (with err filled) if the spec is not understood, -1 on no
 * memory. */
static int sched_next(beuss_engine *e, bsched *x, int64_t after, char *err, size_t errcap)
{
    int64_t w;
    if (e->cfg.next_fire == NULL) {
        snprintf(err, errcap, "this server has no schedule support");
        return -2;
    }
    err[0] = 0;
    w = e->cfg.next_fire(e->cfg.next_fire_ctx, x->spec, x->speclen, after, err, errcap);
    if (w == -2) {
        if (err[0] == 0)
            snprintf(err, errcap, "schedule expression not understood");
        return -2;
    }
    if (w < 0)
        return 0;
    x->next_wall = w;
    x->t.at = wall_to_engine(e, w);
    x->t.kind = TK_SCHED;
    heap_remove(&e->timers, &x->t);
    return heap_insert(&e->timers, &e->al, &x->t) == 0 ? 1 : -1;
}

/* sched_fire puts x's message on its queue and arms its next time; a
 * schedule that never fires again, or whose timer cannot be re-armed, ends.
 * Missed times (a server stalled past several) fire once, not once each. */
static void sched_fire(beuss_engine *e, bsched *x, uint64_t now)
{
    char err[128];
    int64_t wall_now = (int64_t)now + e->wall_off;
    int64_t after = x->next_wall > wall_now ? x->next_wall : wall_now;
    bview qn;
    bqueue *q;
    int created;
    heap_remove(&e->timers, &x->t);
    qn.p = x->queue;
    qn.n = x->queuelen;
    q = get_queue(e, qn, &created);
    if (q != NULL && !over_cap(e, x->plen) && enqueue(e, q, x->payload, x->plen) == 0) {
        x->fired++;
        e->st.schedule_fired++;
        e->st.puts++;
    } else {
        e->st.rejected_full++;
        if (q != NULL)
            undo_create(e, q, created);
    }
    if (sched_next(e, x, after, err, sizeof err) != 1)
        sched_free(e, x);
}

/* sched_add handles SCHEDULE ADD <name> <queue> <bytes>: the payload is the
 * spec, a line end, then the message. */
static void sched_add(beuss_engine *e, bconn *c, const bframe *f, uint64_t now)
{
    char err[160], msg[200];
    const uint8_t *nl, *p = f->payload;
    size_t speclen, mlen, size;
    bsched *x, *old;
    int r;
    if (payload_err(e, c, f, "usage: SCHEDULE ADD <name> <queue> <bytes>, payload <spec>\\n<message>"))
        return;
    nl = f->plen ? memchr(p, '\n', f->plen) : NULL;
    if (nl == NULL) {
        reply_err(e, c, BE_BAD_SCHEDULE, "the payload must start with the schedule spec and a line end");
        return;
    }
    speclen = (size_t)(nl - p);
    mlen = f->plen - speclen - 1;
    if (speclen && p[speclen - 1] == '\r')
        speclen--;
    if (speclen == 0 || speclen > BEUSS_MAX_SCHEDULE_SPEC) {
        reply_err(e, c, BE_BAD_SCHEDULE, "the schedule spec must be 1 to 200 bytes");
        return;
    }
    old = sched_find(e, f->tok[2]);
    if (old == NULL && e->nscheds >= BEUSS_MAX_SCHEDULES) {
        reply_err(e, c, BE_FULL, "too many schedules (10000)");
        return;
    }
    size = sizeof *x + f->tok[2].n + f->tok[3].n + speclen + 1 + mlen;
    x = ba_malloc(&e->al, size);
    if (x == NULL) {
        reply_err(e, c, BE_INTERNAL, "out of memory adding the schedule");
        return;
    }
    memset(x, 0, sizeof *x);
    x->size = size;
    x->t.idx = BH_NONE;
    x->name = (uint8_t *)(x + 1);
    x->namelen = f->tok[2].n;
    memcpy(x->name, f->tok[2].p, x->namelen);
    x->queue = x->name + x->namelen;
    x->queuelen = f->tok[3].n;
    memcpy(x->queue, f->tok[3].p, x->queuelen);
    x->spec = (char *)(x->queue + x->queuelen);
    x->speclen = speclen;
    memcpy(x->spec, p, speclen);
    x->spec[speclen] = 0;
    x->payload = (uint8_t *)x->spec + speclen + 1;
    x->plen = mlen;
    if (mlen)
        memcpy(x->payload, nl + 1, mlen);
    r = sched_next(e, x, (int64_t)now + e->wall_off, err, sizeof err);
    if (r != 1) {
        ba_free(&e->al, x, size);
        if (r == -2) {
            snprintf(msg, sizeof msg, "%s", err);
            reply_err(e, c, BE_BAD_SCHEDULE, msg);
        } else if (r == 0) {
            reply_err(e, c, BE_BAD_SCHEDULE, "the schedule never fires");
        } else {
            reply_err(e, c, BE_INTERNAL, "out of memory adding the schedule");
        }
        return;
    }
    /* A new schedule of an existing name replaces it, as NATS does. */
    if (old)
        sched_free(e, old);
    dl_push_front(&e->scheds, &x->link);
    e->nscheds++;
    reply_ok_num(e, c, (uint64_t)x->next_wall);
}

static int cmp_sched(const void *a, const void *b)
{
    const bsched *x = *(const bsched *const *)a, *y = *(const bsched *const *)b;
    return cmp_names(x->name, x->namelen, y->name, y->namelen);
}

/* sched_ls replies DATA with one line per schedule, sorted by name:
 * <name> <queue> <next-unix-ms> <fired> <spec>\n. */
static void sched_ls(beuss_engine *e, bconn *c)
{
    size_t n = (size_t)e->nscheds, i = 0, size = 0, w;
    bsched **v = NULL, *x;
    uint8_t *o;
    if (n) {
        v = ba_malloc(&e->al, n * sizeof *v);
        if (v == NULL) {
            reply_err(e, c, BE_INTERNAL, "out of memory listing the schedules");
            return;
        }
        for (x = sched_of(e->scheds.head); x; x = sched_of(x->link.next))
            v[i++] = x;
        qsort(v, n, sizeof *v, cmp_sched);
    }
    for (i = 0; i < n; i++)
        size += v[i]->namelen + 1 + v[i]->queuelen + 1 + u64_dec_len((uint64_t)v[i]->next_wall) + 1 +
                u64_dec_len(v[i]->fired) + 1 + v[i]->speclen + 1;
    o = data_begin(e, c, size, &w);
    if (o != NULL) {
        for (i = 0; i < n; i++) {
            x = v[i];
            w += put_mem(o + w, x->name, x->namelen);
            o[w++] = ' ';
            w += put_mem(o + w, x->queue, x->queuelen);
            o[w++] = ' ';
            w += u64_to_dec(o + w, (uint64_t)x->next_wall);
            o[w++] = ' ';
            w += u64_to_dec(o + w, x->fired);
            o[w++] = ' ';
            w += put_mem(o + w, x->spec, x->speclen);
            o[w++] = '\n';
        }
        w += put_crlf(o + w);
        out_end(e, c, w);
    }
    ba_free(&e->al, v, n * sizeof *v);
}

static void do_schedule(beuss_engine *e, bconn *c, const bframe *f, uint64_t now)
{
    static const char usage[] = "usage: SCHEDULE ADD <name> <queue> <bytes> | SCHEDULE LS | SCHEDULE RM <name>";
    bsched *x;
    if (f->ntok >= 2 && bp_tok_is(f->tok[1], "ADD")) {
        sched_add(e, c, f, now);
    } else if (f->ntok == 2 && bp_tok_is(f->tok[1], "LS")) {
        sched_ls(e, c);
    } else if (f->ntok == 3 && bp_tok_is(f->tok[1], "RM")) {
        if (f->badname & 4) {
            err_queue(e, c, f->tok[2]);
            return;
        }
        x = sched_find(e, f->tok[2]);
        if (x == NULL) {
            reply_err(e, c, BE_NO_SCHEDULE, "no schedule has that name");
            return;
        }
        sched_free(e, x);
        REPLY(e, c, "OK\r\n");
    } else {
        err_usage(e, c, usage);
    }
}

/* exec runs one complete request of c. */
static void exec(beuss_engine *e, bconn *c, const bframe *f, uint64_t now)
{
    switch (f->cmd) {
    case BC_PUT:
        do_put(e, c, f);
        break;
    case BC_GET:
        do_get(e, c, f, now);
        break;
    case BC_PEEK:
        do_peek(e, c, f);
        break;
    case BC_ON:
        do_on(e, c, f);
        break;
    case BC_CREDIT:
        do_credit(e, c, f);
        break;
    case BC_OFF:
        do_off(e, c, f);
        break;
    case BC_LEN:
        do_len(e, c, f);
        break;
    case BC_PURGE:
        do_purge(e, c, f);
        break;
    case BC_QUEUES:
        if (check_args(e, c, f, 1, 1, "QUEUES takes no arguments"))
            do_queues(e, c);
        break;
    case BC_STATS:
        if (check_args(e, c, f, 1, 2, "usage: STATS [<queue>]")) {
            if (f->ntok == 1)
                do_stats(e, c, now);
            else
                do_queue_stats(e, c, f);
        }
        break;
    case BC_ACK:
        do_ack(e, c, f);
        break;
    case BC_NACK:
        do_nack(e, c, f);
        break;
    case BC_TOUCH:
        do_touch(e, c, f);
        break;
    case BC_PUB:
        do_pub(e, c, f);
        break;
    case BC_SUB:
        do_sub(e, c, f);
        break;
    case BC_UNSUB:
        do_unsub(e, c, f);
        break;
    case BC_SCHEDULE:
        do_schedule(e, c, f, now);
        break;
    case BC_PING:
        if (check_args(e, c, f, 1, 1, "PING takes no arguments"))
            REPLY(e, c, "PONG\r\n");
        break;
    case BC_QUIT:
        if (check_args(e, c, f, 1, 1, "QUIT takes no arguments") && REPLY(e, c, "OK\r\n") == 0)
            conn_set_closing(e, c);
        break;
    default: {
        char esc[48], msg[80];
        bp_escape(esc, sizeof esc, f->tok[0].p, f->tok[0].n);
        snprintf(msg, sizeof msg, "unknown command '%s'", esc);
        reply_err(e, c, BE_UNKNOWN_COMMAND, msg);
        break;
    }
    }
}

/* conn_process runs c's requests in data[0:len) until it is blocked or the
 * bytes run out, and returns the number of bytes consumed. */
static size_t conn_process(beuss_engine *e, bconn *c, const uint8_t *data, size_t len,
                           uint64_t now)
{
    size_t pos = 0;
    while (!blocked(c)) {
        size_t used = 0;
        bframe *f = NULL;
        int r = bp_next(&c->ps, &e->al, data + pos, len - pos, &used, &f);
        pos += used;
        if (r == BP_MORE)
            break;
        if (r == BP_ERROR) {
            reply_err(e, c, c->ps.err, c->ps.errstr);
            conn_set_closing(e, c);
            break;
        }
        exec(e, c, f, now);
    }
    return pos;
}

/* pend_add keeps data for when c can run again. */
static int pend_add(beuss_engine *e, bconn *c, const uint8_t *data, size_t len)
{
    size_t have = c->pend.len - c->pend_off;
    if (len > BEUSS_MAX_PENDING_INPUT || have > BEUSS_MAX_PENDING_INPUT - len) {
        conn_set_closing(e, c);
        return BEUSS_EOVERFLOW;
    }
    if (c->pend_off && c->pend_off >= c->pend.len / 2) {
        buf_consume(&c->pend, c->pend_off);
        c->pend_off = 0;
    }
    if (buf_append(&e->al, &c->pend, data, len) != 0) {
        reply_err(e, c, BE_INTERNAL, "out of memory buffering input");
        conn_set_closing(e, c);
        return BEUSS_ENOMEM;
    }
    return BEUSS_OK;
}

/* run_pending runs c's kept input as far as c is not blocked. */
static void run_pending(beuss_engine *e, bconn *c, uint64_t now)
{
    if (!blocked(c) && c->pend_off < c->pend.len)
        c->pend_off += conn_process(e, c, c->pend.p + c->pend_off, c->pend.len - c->pend_off, now);
    if (c->closing || c->pend_off >= c->pend.len) {
        c->pend.len = 0;
        c->pend_off = 0;
        buf_shrink(&e->al, &c->pend, 0);
    }
}

/* run_all runs the kept input of every connection unblocked during this
 * call; running one may unblock others. */
static void run_all(beuss_engine *e, uint64_t now)
{
    while (!dl_empty(&e->run)) {
        bconn *c = conn_of_rlink(e->run.head);
        run_unlink(e, c);
        run_pending(e, c, now);
    }
}

/* ---- public API ---------------------------------------------------------- */

beuss_engine *beuss_engine_new(const beuss_config *cfg, const beuss_allocator *alloc,
                               uint64_t now_ms)
{
    beuss_config def;
    balloc al;
    beuss_engine *e;
    if (cfg == NULL) {
        beuss_config_init(&def);
        cfg = &def;
    }
    if (!config_ok(cfg))
        return NULL;
    ba_init(&al, alloc);
    e = ba_malloc(&al, sizeof *e);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof *e);
    e->al = al;
    e->cfg = *cfg;
    e->created_ms = e->now_ms = now_ms;
    e->free_head = NO_SLOT;
    if (qt_init(&e->qt, &e->al) != 0) {
        ba_free(&al, e, sizeof *e); /* not &e->al: it lives inside e */
        return NULL;
    }
    if (qt_init(&e->ct, &e->al) != 0) {
        qt_free(&e->qt, &e->al);
        ba_free(&al, e, sizeof *e);
        return NULL;
    }
    return e;
}

static bconn *conn_get(const beuss_engine *e, uint32_t id)
{
    return id < e->nslots ? e->slots[id].c : NULL;
}

static void conn_destroy(beuss_engine *e, bconn *c)
{
    conn_set_closing(e, c);
    conn_return_leases(e, c);
    if (c->dl == DL_DIRTY)
        dl_unlink(&e->dirty, &c->dlink);
    else if (c->dl == DL_RETURNED)
        dl_unlink(&e->returned, &c->dlink);
    run_unlink(e, c);
    bp_free(&c->ps, &e->al);
    buf_free(&e->al, &c->out);
    buf_free(&e->al, &c->pend);
    e->slots[c->id].c = NULL;
    e->slots[c->id].next_free = e->free_head;
    e->free_head = c->id;
    e->st.connections--;
    ba_free(&e->al, c, sizeof *c);
}

void beuss_engine_free(beuss_engine *e)
{
    uint32_t i;
    balloc al;
    if (e == NULL)
        return;
    /* Leases die with the engine: free them first, so closing their
     * connections does not put them back. */
    for (i = 0; i < e->leases.nb; i++) {
        blease *l = e->leases.b[i];
        while (l) {
            blease *next = l->hnext;
            heap_remove(&e->timers, &l->t);
            ba_free(&e->al, l, sizeof *l + l->len);
            l = next;
        }
    }
    lt_free(&e->leases, &e->al);
    for (i = 0; i < e->nslots; i++)
        if (e->slots[i].c)
            e->slots[i].c->leases = (bdlist){NULL, NULL};
    for (i = 0; i < e->nslots; i++)
        if (e->slots[i].c)
            conn_destroy(e, e->slots[i].c);
    while (!dl_empty(&e->scheds))
        sched_free(e, sched_of(e->scheds.head));
    /* What is left in the heap are delayed messages and idle checks. */
    for (i = 0; i < e->timers.len; i++) {
        btimer *t = e->timers.v[i];
        if (t->kind == TK_DELAY) {
            bdelay *d = (bdelay *)t;
            ba_free(&e->al, d, sizeof *d + d->len);
        }
    }
    qt_free(&e->ct, &e->al);
    qt_free(&e->qt, &e->al);
    heap_free(&e->timers, &e->al);
    ba_free(&e->al, e->slots, e->cap_slots * sizeof *e->slots);
    al = e->al;
    ba_free(&al, e, sizeof *e);
}

int beuss_conn_open(beuss_engine *e, uint32_t *id)
{
    bconn *c;
    uint32_t i;
    if (e == NULL || id == NULL)
        return BEUSS_EINVAL;
    if (e->free_head == NO_SLOT && e->nslots == e->cap_slots) {
        uint32_t cap = e->cap_slots ? e->cap_slots * 2 : 16;
        bslot *v;
        if (cap < e->cap_slots)
            return BEUSS_ENOMEM;
        v = ba_realloc(&e->al, e->slots, e->cap_slots * sizeof *v, cap * sizeof *v);
        if (v == NULL)
            return BEUSS_ENOMEM;
        e->slots = v;
        e->cap_slots = cap;
    }
    c = ba_malloc(&e->al, sizeof *c);
    if (c == NULL)
        return BEUSS_ENOMEM;
    memset(c, 0, sizeof *c);
    if (e->free_head != NO_SLOT) {
        i = e->free_head;
        e->free_head = e->slots[i].next_free;
    } else {
        i = e->nslots++;
    }
    c->id = i;
    c->wt.idx = BH_NONE;
    bp_init(&c->ps, e->cfg.max_line, e->cfg.max_message_size,
            e->cfg.oversize == BEUSS_OVERSIZE_REJECT);
    e->slots[i].c = c;
    e->st.connections++;
    *id = i;
    return BEUSS_OK;
}

int beuss_conn_close(beuss_engine *e, uint32_t id, uint64_t now_ms)
{
    bconn *c;
    if (e == NULL)
        return BEUSS_EINVAL;
    c = conn_get(e, id);
    if (c == NULL)
        return BEUSS_ENOCONN;
    e->now_ms = now_ms;
    conn_destroy(e, c);
    run_all(e, now_ms);
    return BEUSS_OK;
}

int beuss_feed(beuss_engine *e, uint32_t id, const uint8_t *data, size_t len, uint64_t now_ms)
{
    bconn *c;
    int r = BEUSS_OK;
    if (e == NULL || (data == NULL && len != 0))
        return BEUSS_EINVAL;
    c = conn_get(e, id);
    if (c == NULL)
        return BEUSS_ENOCONN;
    e->now_ms = now_ms;
    if (c->closing || len == 0)
        return BEUSS_OK; /* after QUIT or a fatal error, input is ignored */
    if (blocked(c) || c->pend_off < c->pend.len) {
        r = pend_add(e, c, data, len);
        if (r == BEUSS_OK)
            run_pending(e, c, now_ms);
    } else {
        size_t used = conn_process(e, c, data, len, now_ms);
        if (used < len && !c->closing)
            r = pend_add(e, c, data + used, len - used);
    }
    run_all(e, now_ms);
    return r;
}

int beuss_conn_pause(beuss_engine *e, uint32_t id)
{
    bconn *c;
    bsub *s;
    if (e == NULL)
        return BEUSS_EINVAL;
    c = conn_get(e, id);
    if (c == NULL)
        return BEUSS_ENOCONN;
    c->user_paused = 1;
    for (s = first_on(c); s; s = next_on(s))
        ring_del(s);
    return BEUSS_OK;
}

int beuss_conn_resume(beuss_engine *e, uint32_t id, uint64_t now_ms)
{
    bconn *c;
    bsub *s;
    if (e == NULL)
        return BEUSS_EINVAL;
    c = conn_get(e, id);
    if (c == NULL)
        return BEUSS_ENOCONN;
    e->now_ms = now_ms;
    if (c->full)
        mark(e, c); /* BEUSS_OUT_FULL goes away */
    c->user_paused = 0;
    c->full = 0;
    for (s = first_on(c); s; s = next_on(s))
        sub_update(s);
    flush_conn_held(e, c);
    /* Pumping may pause c again or close it (freeing subscriptions): walk
     * queues by re-reading the list each time. */
    for (s = first_on(c); s != NULL;) {
        if (s->in_ring)
            pump(e, s->m.q);
        if (c->full || c->closing)
            break;
        s = next_on(s);
    }
    run_add(e, c);
    run_all(e, now_ms);
    return BEUSS_OK;
}

void beuss_set_wall_clock(beuss_engine *e, uint64_t now_ms, uint64_t wall_ms)
{
    if (e == NULL)
        return;
    e->wall_off = (int64_t)wall_ms - (int64_t)now_ms;
}

int64_t beuss_next_deadline(const beuss_engine *e)
{
    const btimer *t;
    if (e == NULL)
        return -1;
    t = heap_min(&e->timers);
    return t ? (int64_t)t->at : -1;
}

int beuss_tick(beuss_engine *e, uint64_t now_ms)
{
    btimer *t;
    bdlist due = {NULL, NULL}; /* leases to return, detached, on their clink */
    if (e == NULL)
        return BEUSS_EINVAL;
    e->now_ms = now_ms;
    while ((t = heap_min(&e->timers)) != NULL && t->at <= now_ms) {
        if (t->kind == TK_IDLE) {
            idle_fire(e, QUEUE_OF_TIMER(t), now_ms);
        } else if (t->kind == TK_LEASE) {
            blease *l = LEASE_OF_TIMER(t);
            heap_remove(&e->timers, t);
            if (l->c != NULL) { /* expired; a held one (NACK delay) just ends */
                e->st.expired++;
                lease_credit(e, l, 1);
                lease_detach(l);
            }
            dl_push_front(&due, &l->clink); /* a stack: the latest due goes back first */
        } else if (t->kind == TK_DELAY) {
            delay_fire(e, (bdelay *)t, now_ms);
        } else if (t->kind == TK_SCHED) {
            sched_fire(e, (bsched *)t, now_ms);
        } else {
            bconn *c = CONN_OF_TIMER(t);
            /* On failure c is closed, which also ends its wait. */
            if (REPLY(e, c, "EMPTY\r\n") == 0) {
                wait_end(e, c);
                run_add(e, c);
            }
        }
    }
    while (!dl_empty(&due)) {
        blease *l = lease_of_clink(due.head);
        dl_unlink(&due, &l->clink);
        lease_return(e, l);
    }
    pump_pending(e);
    run_all(e, now_ms);
    return BEUSS_OK;
}

int beuss_output_next(beuss_engine *e, beuss_output *out)
{
    bconn *c;
    if (e == NULL || out == NULL)
        return 0;
    while ((c = conn_of_dlink(e->dirty.head)) != NULL) {
        uint32_t flags = conn_flags(c);
        dl_unlink(&e->dirty, &c->dlink);
        if (c->out.len == c->out_returned && flags == c->flags_reported) {
            c->dl = DL_NONE; /* nothing new after all */
            continue;
        }
        dl_push_back(&e->returned, &c->dlink);
        c->dl = DL_RETURNED;
        out->conn = c->id;
        out->flags = flags;
        out->data = c->out.p ? c->out.p + c->out_returned : NULL;
        out->len = c->out.len - c->out_returned;
        c->out_returned = c->out.len;
        c->flags_reported = flags;
        return 1;
    }
    return 0;
}

/* Output buffers keep this much capacity between calls; a burst above it is
 * given back once written. */
#define OUT_KEEP_CAP (64u * 1024u)

void beuss_output_done(beuss_engine *e)
{
    bconn *c;
    if (e == NULL)
        return;
    while ((c = conn_of_dlink(e->returned.head)) != NULL) {
        dl_unlink(&e->returned, &c->dlink);
        c->dl = DL_NONE;
        buf_consume(&c->out, c->out_returned);
        c->out_returned = 0;
        buf_shrink(&e->al, &c->out, OUT_KEEP_CAP);
        if (c->out.len || conn_flags(c) != c->flags_reported)
            mark(e, c);
    }
}

void beuss_engine_stats(const beuss_engine *e, beuss_stats *s)
{
    if (e == NULL || s == NULL)
        return;
    *s = e->st;
    s->queues = e->qt.count;
    s->messages = e->messages;
    s->bytes = e->bytes;
    s->leased = e->st.leased;
    s->memory = e->al.held;
    s->channels = e->ct.count;
    s->scheduled = e->sched_count;
    s->scheduled_bytes = e->sched_bytes;
    s->schedules = e->nscheds;
}
