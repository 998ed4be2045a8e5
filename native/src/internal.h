/*
 * internal.h: the engine's private types, shared by its .c files only.
 *
 * One concern per file: alloc.c (counting allocator), buf.c (byte buffer),
 * parser.c (incremental request parser), store.c (FIFO record storage),
 * queue.c (queues by name), heap.c (timer heap), errors.c (codes and texts),
 * lease.c (leased messages by id), engine.c (connections, dispatch,
 * delivery, leases, output).
 */
#ifndef BEUSS_INTERNAL_H
#define BEUSS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "beuss.h"

#if defined(__GNUC__) || defined(__clang__)
#define B_LIKELY(x) __builtin_expect(!!(x), 1)
#define B_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define B_LIKELY(x) (x)
#define B_UNLIKELY(x) (x)
#endif

/* B_CONTAINER_OF returns the struct of type that holds member at p. */
#define B_CONTAINER_OF(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- intrusive lists (inline here) ------------------------------------ */

/* blink is a node of a doubly linked list, embedded in its element, which
 * is found back with B_CONTAINER_OF; an element sits on several lists
 * through several blinks. Lists are NULL-terminated both ways, so a zeroed
 * bdlist is empty and a zeroed element needs no setup before its first push.
 * Every operation is O(1) and allocates nothing. A link cannot tell whether
 * it is on a list (a lone element's links are NULL too): users that need to
 * know keep a flag or the list's owner. */
typedef struct blink {
    struct blink *prev;
    struct blink *next;
} blink;

/* bdlist is a list of blinks: its first and its last, both NULL when empty. */
typedef struct bdlist {
    blink *head;
    blink *tail;
} bdlist;

/* dl_push_back appends k, which is on no list, to l. */
static inline void dl_push_back(bdlist *l, blink *k)
{
    k->next = NULL;
    k->prev = l->tail;
    if (l->tail)
        l->tail->next = k;
    else
        l->head = k;
    l->tail = k;
}

/* dl_push_front puts k, which is on no list, first on l. */
static inline void dl_push_front(bdlist *l, blink *k)
{
    k->prev = NULL;
    k->next = l->head;
    if (l->head)
        l->head->prev = k;
    else
        l->tail = k;
    l->head = k;
}

/* dl_unlink takes k off l, which it must be on, and zeroes its links. */
static inline void dl_unlink(bdlist *l, blink *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        l->tail = k->prev;
    k->next = k->prev = NULL;
}

/* dl_empty returns 1 if l has no element. */
static inline int dl_empty(const bdlist *l)
{
    return l->head == NULL;
}

/* ---- alloc.c ---------------------------------------------------------- */

/* balloc wraps the caller's allocator and counts the bytes held. Callers pass
 * the size of every block back on realloc and free, so the count is exact
 * without a size header on each block. */
typedef struct balloc {
    beuss_allocator a;
    uint64_t held;
} balloc;

void ba_init(balloc *al, const beuss_allocator *a);
void *ba_malloc(balloc *al, size_t n);
void *ba_realloc(balloc *al, void *p, size_t old, size_t n);
void ba_free(balloc *al, void *p, size_t n);

/* ---- buf.c ------------------------------------------------------------ */

/* bbuf is a growable byte buffer. */
typedef struct bbuf {
    uint8_t *p;
    size_t len;
    size_t cap;
} bbuf;

int buf_grow(balloc *al, bbuf *b, size_t extra);
int buf_append(balloc *al, bbuf *b, const void *data, size_t n);
void buf_consume(bbuf *b, size_t n);
void buf_shrink(balloc *al, bbuf *b, size_t keep_cap);
void buf_free(balloc *al, bbuf *b);

/* buf_reserve returns a pointer to n writable bytes at the end of b (the
 * caller then adds what it wrote to b->len), or NULL if memory runs out. */
static inline uint8_t *buf_reserve(balloc *al, bbuf *b, size_t n)
{
    if (B_UNLIKELY(b->cap - b->len < n) && buf_grow(al, b, n) != 0)
        return NULL;
    return b->p + b->len;
}

/* u64_to_dec writes v in decimal at p (no terminator) and returns the number
 * of bytes written (1..20). */
size_t u64_to_dec(uint8_t *p, uint64_t v);
/* u64_dec_len returns the number of decimal digits of v. */
size_t u64_dec_len(uint64_t v);

/* ---- errors.c --------------------------------------------------------- */

typedef enum berr {
    BE_NONE = 0,
    BE_LINE_TOO_LONG,
    BE_BAD_FRAME,
    BE_BAD_NUMBER,
    BE_UNKNOWN_COMMAND,
    BE_BAD_ARGS,
    BE_BAD_QUEUE_NAME,
    BE_TOO_LARGE,
    BE_FULL,
    BE_NOT_SUBSCRIBED,
    BE_ALREADY_SUBSCRIBED,
    BE_TOO_MANY_CONNECTIONS,
    BE_SHUTTING_DOWN,
    BE_INTERNAL,
    BE_UNKNOWN_LEASE,
    BE_BAD_SCHEDULE,
    BE_NO_SCHEDULE,
    BE_COUNT
} berr;

/* berr_name returns the stable wire code of e ("BAD_FRAME"). */
const char *berr_name(berr e);
/* berr_text returns a default human text for e. */
const char *berr_text(berr e);

/* ---- parser.c --------------------------------------------------------- */

typedef enum bcmd {
    BC_NONE = 0,
    BC_UNKNOWN,
    BC_PUT,
    BC_GET,
    BC_PEEK,
    BC_ON,
    BC_CREDIT,
    BC_OFF,
    BC_LEN,
    BC_PURGE,
    BC_QUEUES,
    BC_STATS,
    BC_PING,
    BC_QUIT,
    BC_ACK,
    BC_NACK,
    BC_TOUCH,
    BC_PUB,
    BC_SUB,
    BC_UNSUB,
    BC_SCHEDULE
} bcmd;

/* When a PUT's message becomes visible (its DELAY or AT option). */
enum { BW_NOW = 0, BW_DELAY, BW_AT };

/* BP_MAX_TOK is the number of tokens a frame keeps; no command takes more
 * (GET q WAIT ms LEASE ms MAXDELIVER n is 8). */
#define BP_MAX_TOK 10

typedef struct bview {
    const uint8_t *p;
    size_t n;
} bview;

/* Payload requests (PUT, PUB, SCHEDULE ADD) carry a length on their line
 * and bytes after it; every other request is one line. */
/* bframe is one complete request. Its views point into the bytes just fed or
 * into the parser's own buffers; they are valid until the next parser call. */
typedef struct bframe {
    bcmd cmd;
    berr err;        /* payload requests only: a non-fatal error found while framing */
    int truncated;   /* payload requests only: payload cut to max_message_size */
    int when;        /* PUT: BW_NOW, BW_DELAY or BW_AT */
    uint64_t when_ms; /* PUT: the DELAY or AT value */
    uint32_t ntok;   /* tokens on the line, verb included (may exceed BP_MAX_TOK) */
    uint32_t badname; /* bit i: tok[i] is not a valid queue name */
    bview tok[BP_MAX_TOK];
    uint64_t declared;  /* payload requests: declared payload length */
    const uint8_t *payload; /* payload requests: the kept payload bytes */
    size_t plen;
} bframe;

enum { BP_MORE = 0, BP_FRAME = 1, BP_ERROR = -1 };

typedef enum bpstate { BPS_LINE = 0, BPS_PAYLOAD, BPS_END, BPS_END_LF, BPS_DEAD } bpstate;

/* bparser is an incremental request parser: a state machine fed with byte
 * ranges that returns one frame at a time. Only bytes that straddle two
 * feeds are copied. Errors are sticky. */
typedef struct bparser {
    bpstate state;
    size_t max_line;
    size_t max_msg;
    int reject; /* oversize: 1 = reject, 0 = truncate */
    uint8_t *line; /* partial header line, max_line bytes, allocated on first
                      need; holds a payload request's tokens while its
                      payload straddles feeds */
    size_t line_len;
    bframe f;          /* the payload request in progress */
    uint64_t need;     /* payload bytes still to come */
    uint64_t keep;     /* of those, bytes still to keep */
    const uint8_t *pview; /* whole payload seen in one feed: a view */
    bbuf pay;          /* payload that straddles feeds: a copy */
    berr err;
    char errstr[128];
} bparser;

void bp_init(bparser *p, size_t max_line, size_t max_msg, int reject);
void bp_free(bparser *p, balloc *al);
/* bp_next parses data[0:len) and stores in *used how many bytes it consumed.
 * It returns BP_FRAME with *f set, BP_MORE when every byte was consumed
 * without completing a frame, or BP_ERROR (sticky: p->err, p->errstr) when
 * the stream cannot be resynced. */
int bp_next(bparser *p, balloc *al, const uint8_t *data, size_t len,
            size_t *used, bframe **f);
/* bp_parse_number returns 1 and stores the value of a 1..19 digit decimal
 * token, or returns 0. */
int bp_parse_number(bview t, uint64_t *v);
/* bp_valid_queue returns 1 if t is a valid queue name. */
int bp_valid_queue(bview t);
/* bp_tok_is returns 1 if t equals the upper-case word w, ignoring case. */
int bp_tok_is(bview t, const char *w);
/* bp_escape writes a printable, bounded rendering of t into dst (NUL
 * terminated, at most cap bytes) and returns its length. */
size_t bp_escape(char *dst, size_t cap, const uint8_t *t, size_t n);

/* ---- store.c ---------------------------------------------------------- */

/* A record is [header][payload]. The header is big-endian; its first bits
 * tell its form:
 *   tiny:  0 l l l l l l l                        7-bit length, 1 byte
 *   short: 1 0 E l l l l l  l l l l l l l l       13-bit length, 2 bytes
 *   long:  1 1 E 0 0 0 0 0  + 4-byte length       30 bits used, 5 bytes
 * A fresh message (never delivered) of at most 127 bytes, the common bus
 * message, pays 1 byte; up to 8 KiB 2 bytes; bigger ones 5, negligible next
 * to their size. E (BREC_EXT) marks a 4-byte big-endian delivery count
 * after the header, set only on a message put back after a lease ended
 * unacknowledged, so fresh messages pay nothing for at-least-once delivery;
 * such a record uses the short or long form whatever its length, as tiny has
 * no E bit. The long form's five low bits are written 0. */
#define BREC_WIDE 0x80u    /* not tiny */
#define BREC_LONG 0x40u    /* with BREC_WIDE: the long form */
#define BREC_EXT 0x20u     /* short and long forms: delivery count follows */
#define BREC_TINY_MAX 0x7Fu
#define BREC_SHORT_MAX 0x1FFFu
#define BREC_LEN_MASK 0x3FFFFFFFu

/* bseg is one contiguous segment of records; live records are in
 * data[head:tail). */
typedef struct bseg {
    struct bseg *next;
    uint32_t head;
    uint32_t tail;
    uint32_t cap;
    uint8_t data[];
} bseg;

/* bstore is a queue's FIFO of records: a list of segments. */
typedef struct bstore {
    bseg *first;
    bseg *last;
    uint64_t count;
    uint64_t bytes; /* payload bytes */
} bstore;

int store_append(bstore *s, balloc *al, const uint8_t *data, size_t len);
int store_push_front(bstore *s, balloc *al, const uint8_t *data, size_t len, uint32_t d);
int store_peek(const bstore *s, const uint8_t **data, size_t *len);
int store_peek_d(const bstore *s, const uint8_t **data, size_t *len, uint32_t *d);
void store_drop(bstore *s, balloc *al);
uint64_t store_purge(bstore *s, balloc *al);

/* ---- heap.c ----------------------------------------------------------- */

/* btimer is an element of the timer heap, embedded in what it times. */
typedef struct btimer {
    uint64_t at;
    uint64_t seq; /* insertion order: equal deadlines fire in order */
    size_t idx;   /* position in the heap, or BH_NONE */
    int kind;
} btimer;

#define BH_NONE ((size_t)-1)

typedef struct bheap {
    btimer **v;
    size_t len;
    size_t cap;
    uint64_t seq;
} bheap;

int heap_insert(bheap *h, balloc *al, btimer *t);
void heap_remove(bheap *h, btimer *t);
btimer *heap_min(const bheap *h);
void heap_free(bheap *h, balloc *al);

/* ---- queue.c ---------------------------------------------------------- */

struct bconn;
struct bsub;

/* bmlist is one side of a membership list (engine.c): a connection's ONs or
 * SUBs, a queue's ON consumers or a channel's SUB subscribers. */
typedef struct bmlist {
    bdlist list; /* of bmember.clink on a connection, bmember.qlink on a queue */
    uint32_t n;
} bmlist;

/* bqueue is a queue, or a channel (same name rules, separate table). */
typedef struct bqueue {
    struct bqueue *hnext;
    uint32_t hash;
    bstore st;
    struct bsub *ring;   /* eligible ON consumers, served round robin from here */
    bmlist members;      /* a queue's ON subscriptions, eligible or not, or a
                            channel's SUB subscribers */
    bdlist waiters;       /* GETs waiting (bconn.wlink), in arrival order */
    uint32_t nwait;
    uint64_t nsched;      /* delayed messages for this queue not yet due */
    btimer idle;          /* idle cleanup timer (queue_idle_ms) */
    uint64_t nleased;     /* its messages held under a lease (or a NACK delay) */
    struct bqueue *pnext; /* on the engine's list of queues to pump */
    int pump_later;
    uint64_t last_active; /* ms of the last request or event naming it */
    uint32_t namelen;
    uint8_t name[];
} bqueue;

typedef struct bqtable {
    bqueue **b;
    size_t nb; /* power of two */
    size_t count;
} bqtable;

int qt_init(bqtable *t, balloc *al);
bqueue *qt_find(const bqtable *t, const uint8_t *name, size_t n);
/* qt_get returns the queue called name, creating it, or NULL on no memory. */
bqueue *qt_get(bqtable *t, balloc *al, const uint8_t *name, size_t n);
/* qt_remove unlinks and frees q, which must hold no messages. */
void qt_remove(bqtable *t, balloc *al, bqueue *q);
void qt_free(bqtable *t, balloc *al);

/* ---- lease.c ---------------------------------------------------------- */

/* blease is a message handed out under a lease: it left its queue's store
 * and waits here for ACK (freed), NACK, expiry or its connection's close
 * (put back at the head of q, or dead-lettered). Its payload is inline. */
typedef struct blease {
    struct blease *hnext; /* hash chain */
    blink clink;          /* on its connection's leases, in delivery order;
                             once detached, on the leases returned together */
    uint64_t id;
    btimer t;             /* expiry, or end of a NACK delay */
    bqueue *q;
    struct bconn *c;      /* holder; NULL once NACKed with a delay */
    uint32_t deliveries;  /* this delivery included */
    uint32_t maxdeliver;  /* dead-letter when a return reaches this */
    uint32_t lease_ms;    /* TOUCH without a time extends by this */
    uint32_t sub_gen;     /* the ON it came from (credit back), 0 for GET */
    uint32_t len;
    uint8_t data[];
} blease;

typedef struct bltable {
    blease **b;
    size_t nb; /* 0 or a power of two */
    size_t count;
} bltable;

/* lt_find returns the lease with that id, or NULL. */
blease *lt_find(const bltable *t, uint64_t id);
/* lt_insert adds l. It returns 0, or -1 when the first bucket array cannot
 * be allocated (a failed growth only makes chains longer). */
int lt_insert(bltable *t, balloc *al, blease *l);
/* lt_remove unlinks l, which must be in t. */
void lt_remove(bltable *t, blease *l);
void lt_free(bltable *t, balloc *al);

#endif
