/*
 * beuss.h: the beuss queue engine.
 *
 * One opaque handle, beuss_engine, holds every queue, every connection's
 * protocol state and every connection's pending output. It parses the wire
 * protocol of docs/PROTOCOL.md, runs each complete request against the
 * queues, and appends replies and pushed messages to the output of each
 * connection concerned. It does no I/O, reads no clock (time is always an
 * argument, in milliseconds on a caller-chosen monotonic scale), starts no
 * thread and has no global state: several engines may live in one process,
 * on different threads, as long as each engine is used by one thread at a time.
 *
 * The caller (the Node-API binding, a C test, the fuzzer) owns the sockets:
 *
 *   beuss_conn_open()                      a client connected
 *   beuss_feed(conn, bytes, now)           bytes arrived from it (any split)
 *   beuss_output_next() ... _done()        write what the engine produced
 *   beuss_conn_pause/resume()              socket full / drained
 *   beuss_next_deadline(), beuss_tick()    timers (GET WAIT and later ones)
 *   beuss_conn_close()                     the client went away
 *
 * Every function that can change state may produce output for any
 * connection (a PUT by one client delivers to another's ON), so after each of
 * them the caller drains the output with beuss_output_next() until it
 * returns 0, then calls beuss_output_done().
 *
 * Buffer lifetime: the engine never keeps a pointer into caller memory after
 * a call returns; what it needs past the call, it copies. Output pointers stay
 * valid until beuss_output_done() or the next call that changes state.
 */
#ifndef BEUSS_H
#define BEUSS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* BEUSS_PROTOCOL_VERSION is the wire protocol version of docs/PROTOCOL.md. */
#define BEUSS_PROTOCOL_VERSION 2

/* Defaults and bounds of beuss_config, with the reason for each. */
/* The original beuss capped messages at 10 KiB; so do we by default. */
#define BEUSS_DEFAULT_MAX_MESSAGE_SIZE 10240u
/* A header line holds a verb, a queue name of at most 255 bytes and a few
 * numbers: 1 KiB is ample and bounds what a client can make us buffer. */
#define BEUSS_DEFAULT_MAX_LINE 1024u
#define BEUSS_MIN_MAX_LINE 300u
#define BEUSS_MAX_MAX_LINE 65536u
/* Queue names are 1..255 bytes (a length fits one byte in records). */
#define BEUSS_MAX_QUEUE_NAME 255u
/* Output built for one connection in one call before the engine pauses it
 * (stops running its requests and pushing to it): bounds the memory one
 * pipelined burst of GETs can make the server hold. */
#define BEUSS_DEFAULT_OUTPUT_HIGH_WATER (1024u * 1024u)
/* A stored record keeps its length in 30 bits (the top bits are flags). */
#define BEUSS_MAX_MAX_MESSAGE_SIZE 0x3FFFFFFFu
/* Input kept for a connection that cannot run its requests now (paused,
 * waiting in GET WAIT): the rest of the chunk fed when it stopped, plus
 * whatever the caller feeds before it stops reading. Past this,
 * beuss_feed returns BEUSS_EOVERFLOW and the connection is closed. */
#define BEUSS_MAX_PENDING_INPUT (4u * 1024u * 1024u)
/* A message whose lease ends unacknowledged (NACK, expiry, its connection
 * closed) this many times in all goes to the dead-letter queue instead of
 * back to its queue, so a poison message cannot be redelivered forever
 * (NATS JetStream's MaxDeliver, SQS's maxReceiveCount). GET and ON override
 * it per request with MAXDELIVER. */
#define BEUSS_DEFAULT_MAX_DELIVER 5u
/* 0 means no cap on the bytes held in queues; the server sets one. */
#define BEUSS_DEFAULT_MAX_QUEUED_BYTES 0u

/* Events kept per channel subscriber whose connection cannot take more
 * (socket not draining): past this, beuss_sub_policy applies. At the default
 * message size that is at most 10 MiB per stalled subscriber. */
#define BEUSS_DEFAULT_SUB_BUFFER 1024u
/* Named recurring schedules an engine holds at most: each costs a timer and
 * its payload, and SCHEDULE LS lists them all. */
#define BEUSS_MAX_SCHEDULES 10000u
/* A schedule name is 1..255 bytes, as a queue name; a schedule spec (cron
 * expression, optional TZ= prefix) at most this many bytes. */
#define BEUSS_MAX_SCHEDULE_SPEC 200u

/* beuss_sub_policy says what happens when a channel subscriber's buffer is
 * full. */
typedef enum beuss_sub_policy {
    BEUSS_SUB_DROP_OLDEST = 0, /* drop its oldest buffered event, count it and
                                  tell it with DROPPED before the next EVENT */
    BEUSS_SUB_DISCONNECT = 1   /* close its connection */
} beuss_sub_policy;

/* beuss_next_fire_fn returns the first time (Unix ms, wall clock) strictly
 * after after_ms at which the schedule spec[0:len) fires, -1 when it never
 * fires again, or -2 when spec is not understood. The engine holds no cron
 * parser: the caller injects one (the server: a JS cron library; C tests: a
 * small fake). When it writes at most errcap-1 bytes and a NUL to err on -2,
 * that text goes into the ERR BAD_SCHEDULE reply. */
typedef int64_t (*beuss_next_fire_fn)(void *ctx, const char *spec, size_t len,
                                      int64_t after_ms, char *err, size_t errcap);

/* beuss_oversize says what PUT does with a payload over max_message_size. */
typedef enum beuss_oversize {
    BEUSS_OVERSIZE_TRUNCATE = 0, /* keep the first max bytes, reply OK <stored> */
    BEUSS_OVERSIZE_REJECT = 1    /* store nothing, reply ERR TOO_LARGE */
} beuss_oversize;

/* beuss_config holds an engine's limits. Fill it with beuss_config_init()
 * and change what you need. */
typedef struct beuss_config {
    size_t max_message_size;   /* payload bytes kept per message, >= 1 */
    beuss_oversize oversize;   /* what happens past max_message_size */
    uint64_t max_queued_bytes; /* payload bytes held in all queues; 0 = no cap */
    size_t max_line;           /* header line bytes incl. terminator */
    size_t output_high_water;  /* see BEUSS_DEFAULT_OUTPUT_HIGH_WATER */
    uint64_t queue_idle_ms;    /* drop a queue with no message (ready or
                                  scheduled), ON consumer, lease or waiting
                                  GET after this long unused; 0 = off */
    uint32_t max_deliver;      /* default deliveries before dead-lettering, >= 1 */
    uint32_t sub_buffer;       /* events kept per stalled channel subscriber */
    beuss_sub_policy sub_policy; /* what a full subscriber buffer does */
    beuss_next_fire_fn next_fire; /* NULL: SCHEDULE ADD answers BAD_SCHEDULE */
    void *next_fire_ctx;
} beuss_config;

/* beuss_config_init fills cfg with the defaults above. */
void beuss_config_init(beuss_config *cfg);

/* beuss_allocator lets tests inject allocation failures. Every allocation
 * the engine makes goes through it. NULL means the C library's. */
typedef struct beuss_allocator {
    void *(*malloc)(void *ctx, size_t size);
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} beuss_allocator;

/* Status codes returned by the functions below (0 or negative). */
typedef enum beuss_status {
    BEUSS_OK = 0,
    BEUSS_ENOMEM = -1,   /* an allocation failed; the engine is still usable */
    BEUSS_EINVAL = -2,   /* a bad argument (bad config, NULL where not allowed) */
    BEUSS_ENOCONN = -3,  /* no open connection has that id */
    BEUSS_EOVERFLOW = -4 /* input fed to a paused/waiting connection past its
                            bound: the caller should close that connection */
} beuss_status;

/* beuss_strerror returns a static English description of a beuss_status. */
const char *beuss_strerror(int status);

typedef struct beuss_engine beuss_engine;

/* beuss_engine_new returns a new engine with the limits of cfg (NULL: the
 * defaults), allocating through alloc (NULL: the C library), created at time
 * now_ms; or NULL if cfg is invalid or memory runs out. */
beuss_engine *beuss_engine_new(const beuss_config *cfg,
                               const beuss_allocator *alloc, uint64_t now_ms);

/* beuss_engine_free releases the engine and everything it holds.
 * beuss_engine_free(NULL) does nothing. */
void beuss_engine_free(beuss_engine *e);

/* beuss_conn_open registers a new connection and stores its id in *id.
 * Ids are small non-negative integers, reused after close. */
int beuss_conn_open(beuss_engine *e, uint32_t *id);

/* beuss_conn_close forgets a connection: its subscriptions end, a waiting GET
 * is dropped, its unsent output is discarded, and the messages it held under
 * a lease go back to the head of their queues in the order they were
 * delivered (or to the dead-letter queue past their maximum deliveries).
 * May produce output for others. */
int beuss_conn_close(beuss_engine *e, uint32_t id, uint64_t now_ms);

/* beuss_feed hands bytes received from connection id to the engine, which
 * runs every complete request in them, in order, and keeps any incomplete
 * tail (copied) for the next call. It returns BEUSS_OK even when the bytes
 * are malformed: protocol errors become ERR replies in the output, and the
 * ones that lose the frame sync set BEUSS_OUT_CLOSE on that connection.
 * Bytes fed to a connection that cannot run requests now (paused, FULL,
 * WAITING) are kept and run when it can; past BEUSS_MAX_PENDING_INPUT kept
 * bytes it returns BEUSS_EOVERFLOW and marks the connection
 * BEUSS_OUT_CLOSE. When memory runs out keeping bytes it returns
 * BEUSS_ENOMEM, replies ERR INTERNAL if it can and marks the connection
 * BEUSS_OUT_CLOSE. After BEUSS_OUT_CLOSE (QUIT, fatal error) fed bytes are
 * ignored. Other connections' output may change in any case: drain it. */
int beuss_feed(beuss_engine *e, uint32_t id, const uint8_t *data, size_t len,
               uint64_t now_ms);

/* beuss_conn_pause stops the engine from pushing to connection id and from
 * running its requests (its input is kept): call it when its socket is full.
 * A GET WAIT already waiting is still answered while paused (one message).
 * beuss_conn_resume undoes that (and an engine-made pause, see
 * BEUSS_OUT_FULL), pushes what is owed and runs the kept input. Both are
 * idempotent. */
int beuss_conn_pause(beuss_engine *e, uint32_t id);
int beuss_conn_resume(beuss_engine *e, uint32_t id, uint64_t now_ms);

/* beuss_set_wall_clock tells the engine that engine time now_ms is Unix
 * time wall_ms. Engine time is monotonic and caller-chosen; PUT ... AT and
 * schedules speak Unix time, which the engine converts with the latest
 * offset given here (0 until called). Call it at start and whenever the
 * wall clock may have moved (the server: before each tick). */
void beuss_set_wall_clock(beuss_engine *e, uint64_t now_ms, uint64_t wall_ms);

/* beuss_next_deadline returns the earliest time (ms) at which beuss_tick has
 * something to do, or -1 when nothing is scheduled. */
int64_t beuss_next_deadline(const beuss_engine *e);

/* beuss_tick runs what is due at now_ms: expired GET WAITs answer EMPTY,
 * idle queues are dropped (queue_idle_ms), expired leases and ended NACK
 * delays put their messages back at the head of their queues, delayed
 * messages whose time came join their queues (in time order, ties in
 * arrival order), recurring schedules put their message and compute their
 * next time. */
int beuss_tick(beuss_engine *e, uint64_t now_ms);

/* Output flags, reported with a connection's output. */
#define BEUSS_OUT_CLOSE 1u   /* write the data, then close the connection */
#define BEUSS_OUT_FULL 2u    /* the engine paused the connection because its
                                output reached output_high_water: write the
                                data, and call beuss_conn_resume once the
                                socket can take more */
#define BEUSS_OUT_WAITING 4u /* the connection waits in a GET WAIT: do not
                                read its socket. Every later output of the
                                connection reports the current state; the
                                first without this flag means read again. */

/* beuss_output describes one connection's pending output. */
typedef struct beuss_output {
    uint32_t conn;
    uint32_t flags;      /* BEUSS_OUT_* */
    const uint8_t *data; /* valid until beuss_output_done() */
    size_t len;          /* may be 0 when only flags changed */
} beuss_output;

/* beuss_output_next returns 1 and fills *out with the next connection that
 * has output (or changed flags) since the last beuss_output_done(), or 0
 * when there is none left. */
int beuss_output_next(beuss_engine *e, beuss_output *out);

/* beuss_output_done marks all output returned so far as taken. Output made
 * for a connection after beuss_output_next returned it and before
 * beuss_output_done (by a state-changing call in between) is reported by
 * the next beuss_output_next after beuss_output_done.
 *
 * When the engine cannot grow a connection's output (out of memory), a
 * reply would be lost, so it marks that connection BEUSS_OUT_CLOSE; its
 * subscriptions end and the messages stay queued for others. */
void beuss_output_done(beuss_engine *e);

/* beuss_stats is a snapshot of engine counters (STATS reports the same). */
typedef struct beuss_stats {
    uint64_t connections;     /* open now */
    uint64_t queues;          /* existing now */
    uint64_t messages;        /* ready messages in all queues */
    uint64_t bytes;           /* payload bytes of those messages */
    uint64_t consumers;       /* ON subscriptions now */
    uint64_t waiting;         /* GETs waiting now */
    uint64_t puts;            /* messages accepted, total */
    uint64_t taken;           /* messages handed out by GET, total */
    uint64_t pushed;          /* messages handed out by ON, total */
    uint64_t truncated;       /* messages truncated, total */
    uint64_t rejected_large;  /* PUTs refused with TOO_LARGE, total */
    uint64_t rejected_full;   /* PUTs refused with FULL, total */
    uint64_t protocol_errors; /* ERR replies sent, total */
    uint64_t memory;          /* bytes the engine holds from its allocator */
    uint64_t leased;          /* messages held under a lease or a NACK delay now */
    uint64_t acked;           /* leases ended by ACK, total */
    uint64_t nacked;          /* leases ended by NACK, total */
    uint64_t expired;         /* leases that ran out, total */
    uint64_t redelivered;     /* messages delivered again after a lease, total */
    uint64_t dead_lettered;   /* messages moved to a dead-letter queue, total */
    uint64_t channels;        /* channels with a subscriber now */
    uint64_t subscribers;     /* SUB subscriptions now */
    uint64_t published;       /* PUBs accepted, total */
    uint64_t events_delivered; /* EVENTs written to subscribers, total */
    uint64_t events_dropped;  /* events dropped by full subscriber buffers, total */
    uint64_t scheduled;       /* delayed messages not yet due, now */
    uint64_t scheduled_bytes; /* their payload bytes */
    uint64_t schedules;       /* recurring schedules now */
    uint64_t schedule_fired;  /* messages put by schedules, total */
    uint64_t queues_removed_idle; /* queues dropped by idle cleanup, total */
} beuss_stats;

/* beuss_engine_stats fills *s. */
void beuss_engine_stats(const beuss_engine *e, beuss_stats *s);

#ifdef __cplusplus
}
#endif

#endif /* BEUSS_H */
