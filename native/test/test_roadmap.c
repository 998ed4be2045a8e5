/* test_roadmap.c: unit tests of fan-out channels, delayed messages and
 * recurring schedules, driven through the public API with wire transcripts
 * and a driven clock (no sleeping): feed request bytes at a time, tick the
 * engine at a time, compare the output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- fan-out ------------------------------------------------------------- */

static void test_fanout_order(void)
{
    harness h;
    uint32_t pub, sub[5];
    int i, k;
    char req[64], want[8192];
    size_t wl = 0;
    current = "fan-out: 1 publisher, 5 subscribers, all in order";
    h_init_cfg(&h, NULL);
    pub = h_open(&h);
    for (k = 0; k < 5; k++) {
        sub[k] = h_open(&h);
        h_feeds_ok(&h, sub[k], "SUB news\r\n");
        EXPECT(&h, sub[k], "OK\r\n");
    }
    CHECK(stats(&h).channels == 1);
    CHECK(stats(&h).subscribers == 5);
    for (i = 0; i < 100; i++) {
        snprintf(req, sizeof req, "PUB news %d\r\n%d\r\n", i < 10 ? 1 : 2, i);
        h_feeds_ok(&h, pub, req);
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "EVENT news %d\r\n%d\r\n", i < 10 ? 1 : 2, i);
    }
    for (k = 0; k < 5; k++)
        EXPECT(&h, sub[k], want);
    wl = 0;
    for (i = 0; i < 100; i++)
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "OK 5\r\n");
    EXPECT(&h, pub, want);
    CHECK(stats(&h).published == 100);
    CHECK(stats(&h).events_delivered == 500);

    current = "fan-out: channels and queues are separate namespaces";
    h_feeds_ok(&h, pub, "PUT news 1\r\nq\r\nLEN news\r\n");
    EXPECT(&h, pub, "OK 1\r\nOK 1\r\n");
    for (k = 0; k < 5; k++)
        EXPECT(&h, sub[k], "");
    h_feeds_ok(&h, pub, "PUB news 1\r\ne\r\nLEN news\r\nGET news\r\n");
    EXPECT(&h, pub, "OK 5\r\nOK 1\r\nMSG 1\r\nq\r\n");

    current = "fan-out: UNSUB stops events; errors";
    h_feeds_ok(&h, sub[0], "UNSUB news\r\nUNSUB news\r\nSUB news\r\nSUB news\r\n");
    EXPECT(&h, sub[0], "EVENT news 1\r\ne\r\nOK\r\nERR NOT_SUBSCRIBED no SUB for that channel on this "
                       "connection\r\nOK\r\nERR ALREADY_SUBSCRIBED this connection already has a SUB "
                       "for that channel\r\n");
    h_feeds_ok(&h, sub[1], "UNSUB news\r\n");
    EXPECT(&h, sub[1], "EVENT news 1\r\ne\r\nOK\r\n");
    h_feeds_ok(&h, pub, "PUB news 2\r\nhi\r\nSUB\r\nSUB a b\r\nUNSUB\r\nSUB bad\x01name\r\nPUB x\r\n");
    EXPECT(&h, pub, "OK 4\r\nERR BAD_ARGS usage: SUB <channel>\r\nERR BAD_ARGS usage: SUB <channel>\r\n"
                    "ERR BAD_ARGS usage: UNSUB <channel>\r\n"
                    "ERR BAD_QUEUE_NAME bad queue name 'bad\\x01name': 1 to 255 bytes of printable "
                    "ASCII or bytes >= 128\r\n"
                    "ERR BAD_ARGS PUB needs a channel and a length: PUB <channel> <bytes>\r\n");
    CHECK(h.flags[pub] & BEUSS_OUT_CLOSE); /* PUB without a length cannot be resynced */
    for (k = 2; k < 5; k++)
        EXPECT(&h, sub[k], "EVENT news 1\r\ne\r\nEVENT news 2\r\nhi\r\n");
    h_free(&h);
}

static void test_fanout_not_stored(void)
{
    harness h;
    uint32_t c, d;
    beuss_stats s0, s;
    current = "fan-out: nothing is stored when nobody listens";
    h_init_cfg(&h, NULL);
    c = h_open(&h);
    d = h_open(&h);
    h_feeds_ok(&h, c, "PING\r\n");
    EXPECT(&h, c, "PONG\r\n");
    s0 = stats(&h);
    h_feeds_ok(&h, c, "PUB void 5\r\nhello\r\nPUB void 5\r\nhello\r\n");
    EXPECT(&h, c, "OK 0\r\nOK 0\r\n");
    s = stats(&h);
    CHECK(s.channels == 0 && s.queues == 0 && s.messages == 0);
    CHECK(s.memory == s0.memory);
    /* A subscriber who comes later does not see them. */
    h_feeds_ok(&h, d, "SUB void\r\n");
    EXPECT(&h, d, "OK\r\n");
    h_feeds_ok(&h, c, "PUB void 3\r\nnew\r\n");
    EXPECT(&h, c, "OK 1\r\n");
    EXPECT(&h, d, "EVENT void 3\r\nnew\r\n");
    /* The last subscriber leaving removes the channel. */
    CHECK(beuss_conn_close(h.e, d, 1000) == BEUSS_OK);
    h_drain(&h);
    s = stats(&h);
    CHECK(s.channels == 0 && s.subscribers == 0);
    /* A publisher subscribed to its own channel gets its event before its OK. */
    h_feeds_ok(&h, c, "SUB me\r\nPUB me 1\r\nx\r\n");
    EXPECT(&h, c, "OK\r\nEVENT me 1\r\nx\r\nOK 1\r\n");
    h_free(&h);
}

static void test_fanout_stalled(void)
{
    beuss_config cfg;
    harness h;
    uint32_t pub, slow, fast;
    int i;
    char req[64], want[4096];
    size_t wl = 0;
    current = "fan-out: a stalled subscriber drops its oldest, the others get all";
    beuss_config_init(&cfg);
    cfg.sub_buffer = 3;
    h_init_cfg(&h, &cfg);
    pub = h_open(&h);
    slow = h_open(&h);
    fast = h_open(&h);
    h_feeds_ok(&h, slow, "SUB t\r\n");
    h_feeds_ok(&h, fast, "SUB t\r\n");
    EXPECT(&h, slow, "OK\r\n");
    EXPECT(&h, fast, "OK\r\n");
    CHECK(beuss_conn_pause(h.e, slow) == BEUSS_OK);
    for (i = 0; i < 10; i++) {
        snprintf(req, sizeof req, "PUB t 1\r\n%d\r\n", i);
        h_feeds_ok(&h, pub, req);
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "EVENT t 1\r\n%d\r\n", i);
    }
    EXPECT(&h, fast, want);
    EXPECT(&h, slow, "");
    CHECK(stats(&h).events_dropped == 7);
    CHECK(beuss_conn_resume(h.e, slow, 1000) == BEUSS_OK);
    h_drain(&h);
    EXPECT(&h, slow, "DROPPED t 7\r\nEVENT t 1\r\n7\r\nEVENT t 1\r\n8\r\nEVENT t 1\r\n9\r\n");
    /* Back to normal: the next event goes straight through. */
    h_feeds_ok(&h, pub, "PUB t 1\r\nz\r\n");
    EXPECT(&h, slow, "EVENT t 1\r\nz\r\n");
    EXPECT(&h, fast, "EVENT t 1\r\nz\r\n");
    {
        /* STATS shows the counters and the policy. */
        h_feeds_ok(&h, pub, "STATS\r\n");
        CHECK(strstr(h.out[pub], "\nevents_dropped 7\n") != NULL);
        CHECK(strstr(h.out[pub], "\nsub_buffer 3\nsub_policy drop-oldest\n") != NULL);
        CHECK(strstr(h.out[pub], "\nprotocol 2\n") != NULL);
        h.outlen[pub] = 0;
    }
    /* Held events are dropped, not leaked, when the subscriber goes. */
    CHECK(beuss_conn_pause(h.e, slow) == BEUSS_OK);
    h_feeds_ok(&h, pub, "PUB t 1\r\na\r\nPUB t 1\r\nb\r\n");
    CHECK(beuss_conn_close(h.e, slow, 1000) == BEUSS_OK);
    h_drain(&h);
    h_free(&h);

    current = "fan-out: output over the high water holds events too";
    beuss_config_init(&cfg);
    cfg.sub_buffer = 2;
    cfg.output_high_water = 40;
    h_init_cfg(&h, &cfg);
    pub = h_open(&h);
    slow = h_open(&h);
    h_feeds_ok(&h, slow, "SUB t\r\n");
    EXPECT(&h, slow, "OK\r\n");
    /* Each EVENT is 23 bytes: the second passes the high water, the third and
     * fourth are held, the fifth drops the third. */
    h_feeds_ok(&h, pub, "PUB t 10\r\n0123456780\r\nPUB t 10\r\n0123456781\r\nPUB t 10\r\n0123456782\r\n"
                     "PUB t 10\r\n0123456783\r\nPUB t 10\r\n0123456784\r\n");
    EXPECT(&h, slow, "EVENT t 10\r\n0123456780\r\nEVENT t 10\r\n0123456781\r\n");
    CHECK(h.flags[slow] & BEUSS_OUT_FULL);
    CHECK(beuss_conn_resume(h.e, slow, 1000) == BEUSS_OK);
    h_drain(&h);
    EXPECT(&h, slow, "DROPPED t 1\r\nEVENT t 10\r\n0123456783\r\nEVENT t 10\r\n0123456784\r\n");
    h_free(&h);

    current = "fan-out: disconnect policy closes the stalled subscriber only";
    beuss_config_init(&cfg);
    cfg.sub_buffer = 2;
    cfg.sub_policy = BEUSS_SUB_DISCONNECT;
    h_init_cfg(&h, &cfg);
    pub = h_open(&h);
    slow = h_open(&h);
    fast = h_open(&h);
    h_feeds_ok(&h, slow, "SUB t\r\n");
    h_feeds_ok(&h, fast, "SUB t\r\n");
    EXPECT(&h, slow, "OK\r\n");
    EXPECT(&h, fast, "OK\r\n");
    CHECK(beuss_conn_pause(h.e, slow) == BEUSS_OK);
    h_feeds_ok(&h, pub, "PUB t 1\r\na\r\nPUB t 1\r\nb\r\n");
    CHECK(!(h.flags[slow] & BEUSS_OUT_CLOSE));
    h_feeds_ok(&h, pub, "PUB t 1\r\nc\r\nPUB t 1\r\nd\r\n");
    EXPECT(&h, pub, "OK 2\r\nOK 2\r\nOK 2\r\nOK 1\r\n");
    CHECK(h.flags[slow] & BEUSS_OUT_CLOSE);
    EXPECT(&h, fast, "EVENT t 1\r\na\r\nEVENT t 1\r\nb\r\nEVENT t 1\r\nc\r\nEVENT t 1\r\nd\r\n");
    CHECK(stats(&h).subscribers == 1);
    h_free(&h);
}

/* test_memberships pins that a connection's ON of a queue and its SUB of the
 * channel of the same name are separate memberships, found from either side
 * (the connection's list or the queue's, whichever is shorter) and ended
 * one at a time or all together when the connection closes. */
static void test_memberships(void)
{
    harness h;
    uint32_t a, b, c, d;
    beuss_stats s;
    current = "memberships: ON and SUB of one name are separate";
    h_init_cfg(&h, NULL);
    a = h_open(&h);
    b = h_open(&h);
    c = h_open(&h);
    d = h_open(&h);
    h_feeds_ok(&h, a, "ON x CREDIT 0\r\nSUB x\r\nON y CREDIT 0\r\nON z CREDIT 0\r\nSUB y\r\nSUB z\r\n");
    EXPECT(&h, a, "OK\r\nOK\r\nOK\r\nOK\r\nOK\r\nOK\r\n");
    h_feeds_ok(&h, b, "ON x CREDIT 0\r\nSUB x\r\nON w CREDIT 0\r\n");
    EXPECT(&h, b, "OK\r\nOK\r\nOK\r\n");
    h_feeds_ok(&h, c, "ON x CREDIT 0\r\nSUB x\r\n");
    EXPECT(&h, c, "OK\r\nOK\r\n");
    s = stats(&h);
    CHECK(s.consumers == 6 && s.subscribers == 5 && s.channels == 3);

    current = "memberships: found from the connection's side and the queue's";
    /* a has 3 ONs and y 1 consumer: looked up from y; b has 2 ONs, x 3. */
    h_feeds_ok(&h, a, "CREDIT y 2\r\nON y\r\nOFF w\r\nSUB y\r\nUNSUB w\r\n");
    EXPECT(&h, a, "OK 2\r\nERR ALREADY_SUBSCRIBED this connection already has an ON for that queue\r\n"
                  "ERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n"
                  "ERR ALREADY_SUBSCRIBED this connection already has a SUB for that channel\r\n"
                  "ERR NOT_SUBSCRIBED no SUB for that channel on this connection\r\n");
    h_feeds_ok(&h, b, "CREDIT x 1\r\nCREDIT y 1\r\nUNSUB y\r\n");
    EXPECT(&h, b, "OK 1\r\nERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n"
                  "ERR NOT_SUBSCRIBED no SUB for that channel on this connection\r\n");
    h_feeds_ok(&h, d, "OFF x\r\nUNSUB x\r\nCREDIT w 1\r\n");
    EXPECT(&h, d, "ERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n"
                  "ERR NOT_SUBSCRIBED no SUB for that channel on this connection\r\n"
                  "ERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n");

    current = "memberships: OFF ends the ON only, UNSUB the SUB only";
    h_feeds_ok(&h, a, "OFF x\r\nOFF x\r\n");
    EXPECT(&h, a, "OK\r\nERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n");
    h_feeds_ok(&h, d, "PUT x 1\r\n1\r\nPUB x 1\r\ne\r\nPUT y 1\r\n2\r\n");
    EXPECT(&h, d, "OK 1\r\nOK 3\r\nOK 1\r\n");
    EXPECT(&h, a, "EVENT x 1\r\ne\r\nPUSH y 1\r\n2\r\n");
    EXPECT(&h, b, "PUSH x 1\r\n1\r\nEVENT x 1\r\ne\r\n");
    EXPECT(&h, c, "EVENT x 1\r\ne\r\n");
    h_feeds_ok(&h, c, "UNSUB x\r\nUNSUB x\r\nCREDIT x 1\r\n");
    EXPECT(&h, c, "OK\r\nERR NOT_SUBSCRIBED no SUB for that channel on this connection\r\nOK 1\r\n");

    current = "memberships: a close ends all of the connection's, none of the others'";
    CHECK(beuss_conn_close(h.e, b, 1000) == BEUSS_OK);
    h_drain(&h);
    s = stats(&h);
    CHECK(s.consumers == 3 && s.subscribers == 3 && s.channels == 3);
    h_feeds_ok(&h, d, "PUB x 1\r\nf\r\nPUT x 1\r\n3\r\n");
    EXPECT(&h, d, "OK 1\r\nOK 1\r\n");
    EXPECT(&h, a, "EVENT x 1\r\nf\r\n");
    EXPECT(&h, c, "PUSH x 1\r\n3\r\n");
    CHECK(beuss_conn_close(h.e, a, 1000) == BEUSS_OK);
    h_drain(&h);
    s = stats(&h);
    CHECK(s.consumers == 1 && s.subscribers == 0 && s.channels == 0);
    h_free(&h);
}

/* ---- delayed messages ------------------------------------------------------ */

static void test_delayed(void)
{
    beuss_config cfg;
    harness h;
    uint32_t c, w;
    beuss_stats s;
    current = "delayed: invisible until its time, then in time order";
    h_init_cfg(&h, NULL);
    c = h_open(&h);
    w = h_open(&h);
    h_feed_ok(&h, c, "PUT q 1 DELAY 300\r\na\r\nPUT q 1 DELAY 100\r\nb\r\nPUT q 1 delay 100\r\nc\r\n", 1000);
    EXPECT(&h, c, "OK 1\r\nOK 1\r\nOK 1\r\n");
    h_feeds_ok(&h, c, "LEN q\r\nGET q\r\nPEEK q\r\nQUEUES\r\nSTATS q\r\n");
    EXPECT(&h, c, "OK 0\r\nEMPTY\r\nEMPTY\r\nDATA 12\r\nq 0 0 0 3 0\n\r\n"
                  "DATA 84\r\nready 0\nconsumers 0\nleased 0\nscheduled 3\ndead 0\nwaiting 0\nbytes 0\n"
                  "dead_queue q.dead\n\r\n");
    s = stats(&h);
    CHECK(s.scheduled == 3 && s.scheduled_bytes == 3 && s.messages == 0);
    CHECK(beuss_next_deadline(h.e) == 1100);
    h_tick(&h, 1099);
    h_feed_ok(&h, c, "LEN q\r\n", 1099);
    EXPECT(&h, c, "OK 0\r\n");
    h_tick(&h, 1100);
    h_feed_ok(&h, c, "LEN q\r\n", 1100);
    EXPECT(&h, c, "OK 2\r\n");
    CHECK(beuss_next_deadline(h.e) == 1300);
    /* A GET waiting on the queue gets a message the moment it is due. */
    h_feed_ok(&h, c, "GET q\r\nGET q\r\n", 1100);
    EXPECT(&h, c, "MSG 1\r\nb\r\nMSG 1\r\nc\r\n");
    h_feed_ok(&h, w, "GET q WAIT 5000\r\n", 1200);
    EXPECT(&h, w, "");
    h_tick(&h, 1300);
    EXPECT(&h, w, "MSG 1\r\na\r\n");
    s = stats(&h);
    CHECK(s.scheduled == 0 && s.scheduled_bytes == 0 && s.puts == 3 && s.taken == 3);
    h_free(&h);

    current = "delayed: AT is Unix time, converted with the wall clock";
    h_init_cfg(&h, NULL);
    c = h_open(&h);
    beuss_set_wall_clock(h.e, 1000, 1767225600000ull); /* 2026-01-01T00:00:00Z */
    h_feed_ok(&h, c, "PUT q 1 AT 1767225600500\r\nx\r\nPUT q 1 AT 1767225600250\r\ny\r\n", 1000);
    EXPECT(&h, c, "OK 1\r\nOK 1\r\n");
    CHECK(beuss_next_deadline(h.e) == 1250);
    h_tick(&h, 1250);
    h_feed_ok(&h, c, "GET q\r\nGET q\r\n", 1250);
    EXPECT(&h, c, "MSG 1\r\ny\r\nEMPTY\r\n");
    h_tick(&h, 1500);
    h_feed_ok(&h, c, "GET q\r\n", 1500);
    EXPECT(&h, c, "MSG 1\r\nx\r\n");
    /* A time already past joins on the next tick. */
    h_feed_ok(&h, c, "PUT q 1 AT 5\r\nz\r\nPUT q 1 DELAY 0\r\nw\r\n", 2000);
    EXPECT(&h, c, "OK 1\r\nOK 1\r\n");
    CHECK(beuss_next_deadline(h.e) == 0);
    h_tick(&h, 2000);
    h_feed_ok(&h, c, "GET q\r\nGET q\r\n", 2000);
    EXPECT(&h, c, "MSG 1\r\nz\r\nMSG 1\r\nw\r\n");
    h_free(&h);

    current = "delayed: bad times and options keep the connection in sync";
    h_init_cfg(&h, NULL);
    c = h_open(&h);
    h_feeds_ok(&h, c, "PUT q 1 DELAY soon\r\nx\r\nPUT q 1 LATER 5\r\nx\r\nPUT q 1 DELAY\r\nx\r\n"
                   "PUT q 1 AT -5\r\nx\r\nPUT q 1 DELAY 1 2\r\nx\r\nLEN q\r\n");
    EXPECT(&h, c, "ERR BAD_NUMBER 'soon' is not 1 to 19 decimal digits\r\n"
                  "ERR BAD_ARGS usage: PUT <queue> <bytes> [DELAY <ms> | AT <unix-ms>]\r\n"
                  "ERR BAD_ARGS usage: PUT <queue> <bytes> [DELAY <ms> | AT <unix-ms>]\r\n"
                  "ERR BAD_NUMBER '-5' is not 1 to 19 decimal digits\r\n"
                  "ERR BAD_ARGS usage: PUT <queue> <bytes> [DELAY <ms> | AT <unix-ms>]\r\n"
                  "OK 0\r\n");
    CHECK(h.flags[c] == 0);
    CHECK(stats(&h).scheduled == 0);
    h_free(&h);

    current = "delayed: counted against max_queued_bytes";
    beuss_config_init(&cfg);
    cfg.max_queued_bytes = 10;
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    h_feeds_ok(&h, c, "PUT q 6 DELAY 100\r\n123456\r\nPUT q 6\r\n123456\r\nPUT q 6 DELAY 5\r\n123456\r\n"
                   "PUT q 4 DELAY 5\r\n1234\r\n");
    EXPECT(&h, c, "OK 6\r\nERR FULL the server's cap on queued bytes would be exceeded\r\n"
                  "ERR FULL the server's cap on queued bytes would be exceeded\r\nOK 4\r\n");
    h_tick(&h, 1100);
    h_feeds_ok(&h, c, "LEN q\r\n");
    EXPECT(&h, c, "OK 2\r\n");
    h_free(&h);

    current = "delayed: a queue with scheduled messages is not idle";
    beuss_config_init(&cfg);
    cfg.queue_idle_ms = 100;
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    h_feed_ok(&h, c, "PUT q 1 DELAY 1000\r\nx\r\n", 1000);
    EXPECT(&h, c, "OK 1\r\n");
    h_tick(&h, 1500);
    CHECK(stats(&h).queues == 1);
    h_tick(&h, 2000);
    h_feed_ok(&h, c, "GET q\r\n", 2000);
    EXPECT(&h, c, "MSG 1\r\nx\r\n");
    h_tick(&h, 2099);
    CHECK(stats(&h).queues == 1);
    h_tick(&h, 2100);
    CHECK(stats(&h).queues == 0);
    CHECK(stats(&h).queues_removed_idle == 1);
    /* Freeing an engine that still holds delayed messages leaks nothing. */
    h_feed_ok(&h, c, "PUT q 3 DELAY 1000\r\nabc\r\nPUT r 1 DELAY 5\r\nx\r\n", 3000);
    h_free(&h);
}

/* ---- recurring schedules ----------------------------------------------- */

/* A small stand-in for a cron library, enough to drive the engine: a spec is
 * "<minute> <hour>" where each field is a number, '*' or '*\/n' (UTC);
 * "never" never fires; anything else is not understood. */
#define MIN_MS 60000ll
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

static int field_match(const char *f, size_t n, int v)
{
    char buf[16];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, f, n);
    buf[n] = 0;
    if (strcmp(buf, "*") == 0)
        return 1;
    if (n > 2 && buf[0] == '*' && buf[1] == '/') {
        int step = atoi(buf + 2);
        return step > 0 ? v % step == 0 : -1;
    }
    if (buf[0] < '0' || buf[0] > '9')
        return -1;
    return atoi(buf) == v;
}

static int fake_calls;

static int64_t fake_next_fire(void *ctx, const char *spec, size_t len, int64_t after, char *err,
                              size_t errcap)
{
    const char *sp = memchr(spec, ' ', len);
    int64_t t;
    (void)ctx;
    fake_calls++;
    if (len == 5 && memcmp(spec, "never", 5) == 0)
        return -1;
    if (sp == NULL || field_match(spec, (size_t)(sp - spec), 0) < 0 ||
        field_match(sp + 1, len - (size_t)(sp + 1 - spec), 0) < 0) {
        snprintf(err, errcap, "bad cron spec '%.*s'", (int)len, spec);
        return -2;
    }
    /* The first whole minute strictly after 'after', for two days. */
    for (t = (after / MIN_MS + 1) * MIN_MS; t < after + 2 * DAY_MS; t += MIN_MS) {
        int minute = (int)((t / MIN_MS) % 60), hour = (int)((t / HOUR_MS) % 24);
        if (field_match(spec, (size_t)(sp - spec), minute) == 1 &&
            field_match(sp + 1, len - (size_t)(sp + 1 - spec), hour) == 1)
            return t;
    }
    return -1;
}

static void test_schedules(void)
{
    beuss_config cfg;
    harness h;
    uint32_t c;
    const int64_t midnight = 1767225600000ll; /* 2026-01-01T00:00:00Z */
    int64_t deadlines[64];
    int nfires = 0, i;
    uint64_t now;
    char want[512];

    current = "schedule: a cron schedule fires at the expected times over a simulated day";
    beuss_config_init(&cfg);
    cfg.next_fire = fake_next_fire;
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    /* Engine time 1000 is 23:59:00 the day before. */
    beuss_set_wall_clock(h.e, 1000, (uint64_t)(midnight - MIN_MS));
    h_feeds_ok(&h, c, "SCHEDULE ADD six jobs 12\r\n0 */6\r\nhello\r\n");
    snprintf(want, sizeof want, "OK %lld\r\n", (long long)midnight);
    EXPECT(&h, c, want);
    CHECK(stats(&h).schedules == 1);
    /* Drive the clock minute by minute through the day, as the server's
     * timer would, recording when the engine fires. */
    for (now = 1000; now <= 1000 + (uint64_t)(DAY_MS + MIN_MS); now += (uint64_t)MIN_MS) {
        int64_t d = beuss_next_deadline(h.e);
        if (d >= 0 && (uint64_t)d <= now) {
            if (nfires < 64)
                deadlines[nfires] = d;
            nfires++;
            h_tick(&h, now);
        }
    }
    CHECK(nfires == 5); /* 00:00, 06:00, 12:00, 18:00 and the next 00:00 */
    for (i = 0; i < 5 && i < nfires; i++)
        CHECK(deadlines[i] == 1000 + MIN_MS + i * 6 * HOUR_MS);
    h_feeds_ok(&h, c, "LEN jobs\r\nGET jobs\r\n");
    EXPECT(&h, c, "OK 5\r\nMSG 5\r\nhello\r\n");
    CHECK(stats(&h).schedule_fired == 5);

    current = "schedule: LS, replace, RM";
    h_feeds_ok(&h, c, "SCHEDULE ADD daily q2 12\r\n30 9\nmorning\r\nSCHEDULE LS\r\n");
    {
        char *o = h.out[c];
        CHECK(o != NULL && strncmp(o, "OK ", 3) == 0);
        CHECK(strstr(o, "\ndaily q2 ") != NULL && strstr(o, " 0 30 9\nsix jobs ") != NULL);
        CHECK(strstr(o, " 5 0 */6\n\r\n") != NULL);
        h.outlen[c] = 0;
    }
    h_feeds_ok(&h, c, "SCHEDULE ADD daily q3 6\r\n0 10\nx\r\nSCHEDULE LS\r\n");
    CHECK(strstr(h.out[c], "\ndaily q3 ") != NULL && strstr(h.out[c], " 0 0 10\n") != NULL);
    h.outlen[c] = 0;
    CHECK(stats(&h).schedules == 2);
    h_feeds_ok(&h, c, "SCHEDULE RM daily\r\nSCHEDULE RM daily\r\nSCHEDULE RM six\r\nSCHEDULE LS\r\n");
    EXPECT(&h, c, "OK\r\nERR NO_SCHEDULE no schedule has that name\r\nOK\r\nDATA 0\r\n\r\n");
    CHECK(stats(&h).schedules == 0);
    CHECK(beuss_next_deadline(h.e) == -1);

    current = "schedule: bad specs and requests get clear errors";
    h_feeds_ok(&h, c, "SCHEDULE ADD x q 9\r\nsoon\nabcd\r\n"
                   "SCHEDULE ADD x q 7\r\nnever\nx\r\n"
                   "SCHEDULE ADD x q 3\r\nabc\r\n"
                   "SCHEDULE ADD x q 2\r\n\nz\r\n"
                   "SCHEDULE ADD x bad\x01 3\r\n1 1\r\n"
                   "SCHEDULE ADD x q 3 4\r\n1 1\r\n"
                   "SCHEDULE\r\nSCHEDULE LS x\r\nSCHEDULE RM\r\nSCHEDULE FOO\r\nSCHEDULE LS\r\n");
    EXPECT(&h, c, "ERR BAD_SCHEDULE bad cron spec 'soon'\r\n"
                  "ERR BAD_SCHEDULE the schedule never fires\r\n"
                  "ERR BAD_SCHEDULE the payload must start with the schedule spec and a line end\r\n"
                  "ERR BAD_SCHEDULE the schedule spec must be 1 to 200 bytes\r\n"
                  "ERR BAD_QUEUE_NAME bad queue name 'bad\\x01': 1 to 255 bytes of printable ASCII or bytes >= 128\r\n"
                  "ERR BAD_ARGS usage: SCHEDULE ADD <name> <queue> <bytes>, payload <spec>\\n<message>\r\n"
                  "ERR BAD_ARGS usage: SCHEDULE ADD <name> <queue> <bytes> | SCHEDULE LS | SCHEDULE RM <name>\r\n"
                  "ERR BAD_ARGS usage: SCHEDULE ADD <name> <queue> <bytes> | SCHEDULE LS | SCHEDULE RM <name>\r\n"
                  "ERR BAD_ARGS usage: SCHEDULE ADD <name> <queue> <bytes> | SCHEDULE LS | SCHEDULE RM <name>\r\n"
                  "ERR BAD_ARGS usage: SCHEDULE ADD <name> <queue> <bytes> | SCHEDULE LS | SCHEDULE RM <name>\r\n"
                  "DATA 0\r\n\r\n");
    CHECK(h.flags[c] == 0);
    CHECK(stats(&h).schedules == 0);
    /* Freeing an engine with live schedules leaks nothing. */
    h_feeds_ok(&h, c, "SCHEDULE ADD a q 6\r\n* *\nxy\r\nSCHEDULE ADD b q 6\r\n* *\nxy\r\n");
    CHECK(stats(&h).schedules == 2);
    h_free(&h);

    current = "schedule: without a cron, SCHEDULE ADD is refused";
    h_init_cfg(&h, NULL);
    c = h_open(&h);
    h_feeds_ok(&h, c, "SCHEDULE ADD x q 6\r\n* *\nxy\r\n");
    EXPECT(&h, c, "ERR BAD_SCHEDULE this server has no schedule support\r\n");
    h_free(&h);
}

int main(void)
{
    test_fanout_order();
    test_fanout_not_stored();
    test_fanout_stalled();
    test_memberships();
    test_delayed();
    test_schedules();
    return checks_report();
}
