/* test_engine.c: unit tests of the beuss engine, driven through its public
 * API with wire transcripts: feed request bytes, compare the output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- tests ---- */

static void test_basic_transcript(void)
{
    harness h;
    uint32_t c;
    current = "basic transcript";
    h_init(&h);
    c = h_open(&h);
    h_feeds(&h, c, "PING\r\n");
    EXPECT(&h, c, "PONG\r\n");
    h_feeds(&h, c, "PUT jobs 5\r\nhello\r\n");
    EXPECT(&h, c, "OK 5\r\n");
    h_feeds(&h, c, "LEN jobs\n");
    EXPECT(&h, c, "OK 1\r\n");
    h_feeds(&h, c, "PEEK jobs\n");
    EXPECT(&h, c, "MSG 5\r\nhello\r\n");
    h_feeds(&h, c, "GET jobs\n");
    EXPECT(&h, c, "MSG 5\r\nhello\r\n");
    h_feeds(&h, c, "GET jobs\n");
    EXPECT(&h, c, "EMPTY\r\n");
    h_feeds(&h, c, "FOO\n");
    EXPECT(&h, c, "ERR UNKNOWN_COMMAND unknown command 'FOO'\r\n");
    h_feeds(&h, c, "QUIT\n");
    EXPECT(&h, c, "OK\r\n");
    CHECK(h.flags[c] & BEUSS_OUT_CLOSE);
    h_free(&h);
}

static beuss_config cfg_default(void)
{
    beuss_config c;
    beuss_config_init(&c);
    return c;
}

/* one_shot returns the output of a fresh engine fed transcript in in one
 * chunk list: cuts[] are split positions (increasing), ncuts of them. */
static char *run_split(const beuss_config *cfg, const char *in, size_t len, const size_t *cuts,
                       size_t ncuts, size_t *outlen, uint32_t *flags)
{
    harness h;
    uint32_t c;
    size_t prev = 0, i;
    char *r;
    h_init_cfg(&h, cfg);
    c = h_open(&h);
    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        h_feed(&h, c, in + prev, end - prev, 1000);
        prev = end;
    }
    r = h_take(&h, c, outlen);
    *flags = h.flags[c];
    h_free(&h);
    return r;
}

static const char split_transcript[] =
    "PING\r\n"
    "put q1 5\r\nhello\r\n"
    "PUT q1 0\r\n\r\n"
    "  PUT\tq2   3  \r\na\r\n\n"
    "\r\n"
    "\n"
    "LEN q1\n"
    "PEEK q1\r\n"
    "GET q1\r\n"
    "get Q1\r\n"
    "GET q1\r\n"
    "GET q1\r\n"
    "PUT q1 12\r\n0123456789ab\n"
    "PUT bad\x01name 4\r\nxxxx\r\n"
    "PUT q1 3 extra\r\nabc\r\n"
    "BOGUS 1 2\r\n"
    "ON q2 CREDIT 2\r\n"
    "CREDIT q2 5\r\n"
    "OFF q2\r\n"
    "OFF q2\r\n"
    "LEN q1\r\n"
    "QUEUES\r\n"
    "PURGE q1\r\n"
    "PUT big 30\r\n012345678901234567890123456789\r\n"
    "GET big\r\n"
    "PING\r\n";

static const char split_expected[] =
    "PONG\r\n"
    "OK 5\r\n"
    "OK 0\r\n"
    "OK 3\r\n"
    "OK 2\r\n"
    "MSG 5\r\nhello\r\n"
    "MSG 5\r\nhello\r\n"
    "EMPTY\r\n" /* Q1 is another queue */
    "MSG 0\r\n\r\n"
    "EMPTY\r\n"
    "OK 12\r\n"
    "ERR BAD_QUEUE_NAME bad queue name 'bad\\x01name': 1 to 255 bytes of printable ASCII or bytes >= 128\r\n"
    "ERR BAD_ARGS usage: PUT <queue> <bytes> [DELAY <ms> | AT <unix-ms>]\r\n"
    "ERR UNKNOWN_COMMAND unknown command 'BOGUS'\r\n"
    "OK\r\n"
    "PUSH q2 3\r\na\r\n\r\n"
    "OK 6\r\n"
    "OK\r\n"
    "ERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n"
    "OK 1\r\n"
    "DATA 26\r\nq1 1 0 0 0 0\nq2 0 0 0 0 0\n\r\n"
    "OK 1\r\n"
    "OK 20\r\n"
    "MSG 20\r\n01234567890123456789\r\n"
    "PONG\r\n";

static void test_transcript_splits(void)
{
    beuss_config cfg = cfg_default();
    size_t len = sizeof split_transcript - 1, i, j, outlen;
    uint32_t flags;
    char *out;
    unsigned seed = 12345;
    cfg.max_message_size = 20;
    current = "transcript in one chunk";
    out = run_split(&cfg, split_transcript, len, NULL, 0, &outlen, &flags);
    checks++;
    if (outlen != sizeof split_expected - 1 || memcmp(out, split_expected, outlen) != 0) {
        failures++;
        fprintf(stderr, "[%s]\n  want: \"%s\"\n  got:  \"%.*s\"\n", current, split_expected,
                (int)outlen, out);
    }
    CHECK(flags == 0);
    free(out);

    current = "transcript split at every byte position";
    for (i = 1; i < len; i++) {
        out = run_split(&cfg, split_transcript, len, &i, 1, &outlen, &flags);
        if (outlen != sizeof split_expected - 1 || memcmp(out, split_expected, outlen) != 0) {
            CHECK(!"output differs");
            fprintf(stderr, "  split at %zu\n", i);
            free(out);
            break;
        }
        free(out);
    }
    checks++;

    current = "transcript one byte at a time";
    {
        size_t *cuts = malloc(len * sizeof *cuts);
        for (i = 0; i + 1 < len; i++)
            cuts[i] = i + 1;
        out = run_split(&cfg, split_transcript, len, cuts, len - 1, &outlen, &flags);
        CHECK(outlen == sizeof split_expected - 1 && memcmp(out, split_expected, outlen) == 0);
        free(out);

        current = "transcript random splits";
        for (j = 0; j < 300; j++) {
            size_t n = 0, pos = 0;
            while (pos < len) {
                seed = seed * 1103515245u + 12345u;
                pos += 1 + (seed >> 16) % 40;
                if (pos < len)
                    cuts[n++] = pos;
            }
            out = run_split(&cfg, split_transcript, len, cuts, n, &outlen, &flags);
            if (outlen != sizeof split_expected - 1 || memcmp(out, split_expected, outlen) != 0) {
                CHECK(!"output differs under random split");
                free(out);
                break;
            }
            free(out);
        }
        free(cuts);
    }
}

static void test_put_split_everywhere_all_bytes(void)
{
    /* A PUT whose payload holds all 256 byte values, split at every position:
     * the message comes back intact, and the \r\n inside it do not confuse
     * the framing. */
    uint8_t req[600], want[600];
    size_t rl, wl, i;
    current = "all 256 byte values, every split";
    rl = (size_t)sprintf((char *)req, "PUT bin 256\r\n");
    for (i = 0; i < 256; i++)
        req[rl++] = (uint8_t)i;
    memcpy(req + rl, "\r\nGET bin\r\n", 11);
    rl += 11;
    wl = (size_t)sprintf((char *)want, "OK 256\r\nMSG 256\r\n");
    for (i = 0; i < 256; i++)
        want[wl++] = (uint8_t)i;
    memcpy(want + wl, "\r\n", 2);
    wl += 2;
    for (i = 0; i <= rl; i++) {
        harness h;
        uint32_t c;
        size_t n;
        char *got;
        h_init(&h);
        c = h_open(&h);
        h_feed(&h, c, req, i, 1000);
        h_feed(&h, c, req + i, rl - i, 1000);
        got = h_take(&h, c, &n);
        if (n != wl || memcmp(got, want, wl) != 0) {
            CHECK(!"binary payload differs");
            fprintf(stderr, "  split at %zu\n", i);
            free(got);
            h_free(&h);
            break;
        }
        free(got);
        h_free(&h);
    }
    checks++;
}

static void test_commands_and_errors(void)
{
    harness h;
    uint32_t c;
    char line[2000];
    current = "errors that keep the connection";
    h_init(&h);
    c = h_open(&h);
    h_feeds(&h, c, "GET\r\n");
    EXPECT(&h, c, "ERR BAD_ARGS usage: GET <queue> [WAIT <ms>] [LEASE <ms>] [MAXDELIVER <n>]\r\n");
    h_feeds(&h, c, "GET q WAIT\r\n");
    EXPECT(&h, c, "ERR BAD_ARGS usage: GET <queue> [WAIT <ms>] [LEASE <ms>] [MAXDELIVER <n>]\r\n");
    h_feeds(&h, c, "GET q SLEEP 5\r\n");
    EXPECT(&h, c, "ERR BAD_ARGS usage: GET <queue> [WAIT <ms>] [LEASE <ms>] [MAXDELIVER <n>]\r\n");
    h_feeds(&h, c, "GET q WAIT -1\r\n");
    EXPECT(&h, c, "ERR BAD_NUMBER '-1' is not 1 to 19 decimal digits\r\n");
    h_feeds(&h, c, "GET q WAIT 12345678901234567890\r\n");
    EXPECT(&h, c, "ERR BAD_NUMBER '12345678901234567890' is not 1 to 19 decimal digits\r\n");
    h_feeds(&h, c, "ON q CREDIT x\r\n");
    EXPECT(&h, c, "ERR BAD_NUMBER 'x' is not 1 to 19 decimal digits\r\n");
    h_feeds(&h, c, "ON q FOO 1\r\n");
    EXPECT(&h, c, "ERR BAD_ARGS usage: ON <queue> [CREDIT <n>] [LEASE <ms>] [MAXDELIVER <n>]\r\n");
    h_feeds(&h, c, "CREDIT q 1\r\n");
    EXPECT(&h, c, "ERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n");
    h_feeds(&h, c, "CREDIT q\r\n");
    EXPECT(&h, c, "ERR BAD_ARGS usage: CREDIT <queue> <n>\r\n");
    h_feeds(&h, c, "OFF q\r\n");
    EXPECT(&h, c, "ERR NOT_SUBSCRIBED no ON for that queue on this connection\r\n");
    h_feeds(&h, c, "ON q CREDIT 0\r\nON q\r\n");
    EXPECT(&h, c, "OK\r\nERR ALREADY_SUBSCRIBED this connection already has an ON for that queue\r\n");
    h_feeds(&h, c, "LEN\r\nLEN a b\r\nPEEK\r\nPURGE\r\nOFF\r\n");
    EXPECT(&h, c,
           "ERR BAD_ARGS usage: LEN <queue>\r\nERR BAD_ARGS usage: LEN <queue>\r\n"
           "ERR BAD_ARGS usage: PEEK <queue>\r\nERR BAD_ARGS usage: PURGE <queue>\r\n"
           "ERR BAD_ARGS usage: OFF <queue>\r\n");
    h_feeds(&h, c, "PING x\r\nQUEUES x\r\nSTATS x y\r\nQUIT x\r\n");
    EXPECT(&h, c,
           "ERR BAD_ARGS PING takes no arguments\r\nERR BAD_ARGS QUEUES takes no arguments\r\n"
           "ERR BAD_ARGS usage: STATS [<queue>]\r\nERR BAD_ARGS QUIT takes no arguments\r\n");
    /* Queue names: 255 bytes ok, 256 not; bytes >= 128 ok; DEL not. */
    memset(line, 'a', sizeof line);
    memcpy(line, "LEN ", 4);
    memcpy(line + 4 + 255, "\r\n", 3);
    h_feeds(&h, c, line);
    EXPECT(&h, c, "OK 0\r\n");
    memcpy(line + 4 + 255, "a\r\n", 4);
    h_feeds(&h, c, line);
    EXPECT_PREFIX(&h, c, "ERR BAD_QUEUE_NAME bad queue name 'aaaa");
    h_feeds(&h, c, "PUT \xc3\xa9t\xc3\xa9 2\r\nhi\r\nLEN \xc3\xa9t\xc3\xa9\r\nLEN a\x7f\r\n");
    EXPECT(&h, c,
           "OK 2\r\nOK 1\r\nERR BAD_QUEUE_NAME bad queue name 'a\\x7f': 1 to 255 bytes of "
           "printable ASCII or bytes >= 128\r\n");
    /* A PUT with a bad name still has its payload read: the next request
     * is in sync. */
    h_feeds(&h, c, "PUT a\x01 10\r\nPING\r\nPING\r\nPING\r\n");
    EXPECT(&h, c,
           "ERR BAD_QUEUE_NAME bad queue name 'a\\x01': 1 to 255 bytes of printable ASCII or "
           "bytes >= 128\r\nPONG\r\n");
    CHECK(h.flags[c] == 0);
    {
        beuss_stats s;
        s = stats(&h);
        CHECK(s.protocol_errors == 23);
        if (s.protocol_errors != 23)
            fprintf(stderr, "  protocol_errors %llu\n", (unsigned long long)s.protocol_errors);
    }
    h_free(&h);

    current = "errors that close the connection";
    {
        static const struct {
            const char *in;
            const char *out;
        } cases[] = {
            {"PUT q\r\nPING\r\n", "ERR BAD_ARGS PUT needs a queue and a length: PUT <queue> <bytes>\r\n"},
            {"PUT\r\nPING\r\n", "ERR BAD_ARGS PUT needs a queue and a length: PUT <queue> <bytes>\r\n"},
            {"PUT q x\r\nPING\r\n", "ERR BAD_NUMBER PUT length 'x' is not 1 to 19 decimal digits\r\n"},
            {"PUT q -1\r\nPING\r\n", "ERR BAD_NUMBER PUT length '-1' is not 1 to 19 decimal digits\r\n"},
            {"PUT q 3\r\nabcXPING\r\n",
             "ERR BAD_FRAME expected a line end after the 3-byte payload, got byte 0x58\r\n"},
            {"PUT q 3\r\nabc\rXPING\r\n",
             "ERR BAD_FRAME expected \\n after \\r after the 3-byte payload, got byte 0x58\r\n"},
            {"PING\r\nPUT q 3\r\nabcd\r\n",
             "PONG\r\nERR BAD_FRAME expected a line end after the 3-byte payload, got byte 0x64\r\n"},
        };
        size_t i;
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            h_init(&h);
            c = h_open(&h);
            h_feeds(&h, c, cases[i].in);
            EXPECT(&h, c, cases[i].out);
            CHECK(h.flags[c] & BEUSS_OUT_CLOSE);
            /* Input after the error is ignored. */
            CHECK(h_feeds(&h, c, "PING\r\n") == BEUSS_OK);
            EXPECT(&h, c, "");
            h_free(&h);
        }
    }

    current = "LINE_TOO_LONG";
    {
        beuss_config cfg = cfg_default();
        char buf[1100];
        cfg.max_line = 300;
        /* exactly max_line bytes including \r\n is fine */
        memset(buf, ' ', sizeof buf);
        memcpy(buf, "PING", 4);
        memcpy(buf + 298, "\r\n", 2);
        h_init_cfg(&h, &cfg);
        c = h_open(&h);
        h_feed(&h, c, buf, 300, 1000);
        EXPECT(&h, c, "PONG\r\n");
        /* one more is too long, even split */
        memcpy(buf + 298, " \r\n", 3);
        h_feed(&h, c, buf, 150, 1000);
        h_feed(&h, c, buf + 150, 151, 1000);
        EXPECT(&h, c, "ERR LINE_TOO_LONG header line too long\r\n");
        CHECK(h.flags[c] == BEUSS_OUT_CLOSE);
        h_free(&h);
        /* no newline at all: the error comes once max_line bytes are in */
        h_init_cfg(&h, &cfg);
        c = h_open(&h);
        memset(buf, 'x', sizeof buf);
        h_feed(&h, c, buf, 299, 1000);
        EXPECT(&h, c, "");
        h_feed(&h, c, buf, 1, 1000);
        EXPECT(&h, c, "ERR LINE_TOO_LONG header line too long\r\n");
        CHECK(h.flags[c] == BEUSS_OUT_CLOSE);
        h_free(&h);
    }
}

static void test_oversize(void)
{
    beuss_config cfg = cfg_default();
    harness h;
    uint32_t c;
    char req[300], msg[300];
    size_t sizes[3] = {99, 100, 101}, i;
    cfg.max_message_size = 100;
    current = "truncate at max-1/max/max+1";
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    for (i = 0; i < 3; i++) {
        size_t n = (size_t)sprintf(req, "PUT t %zu\r\n", sizes[i]), k;
        for (k = 0; k < sizes[i]; k++)
            req[n++] = (char)('a' + k % 26);
        req[n++] = '\r';
        req[n++] = '\n';
        h_feed(&h, c, req, n, 1000);
        sprintf(msg, "OK %zu\r\n", sizes[i] > 100 ? (size_t)100 : sizes[i]);
        EXPECT(&h, c, msg);
        h_feeds(&h, c, "GET t\r\n");
        n = (size_t)sprintf(msg, "MSG %zu\r\n", sizes[i] > 100 ? (size_t)100 : sizes[i]);
        for (k = 0; k < sizes[i] && k < 100; k++)
            msg[n++] = (char)('a' + k % 26);
        msg[n++] = '\r';
        msg[n++] = '\n';
        msg[n] = 0;
        EXPECT(&h, c, msg);
    }
    {
        beuss_stats s;
        s = stats(&h);
        CHECK(s.truncated == 1);
        CHECK(s.puts == 3);
    }
    h_free(&h);

    current = "reject at max-1/max/max+1";
    cfg.oversize = BEUSS_OVERSIZE_REJECT;
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    for (i = 0; i < 3; i++) {
        size_t n = (size_t)sprintf(req, "PUT t %zu\r\n", sizes[i]);
        memset(req + n, 'z', sizes[i]);
        n += sizes[i];
        memcpy(req + n, "\r\nLEN t\r\n", 9);
        n += 9;
        h_feed(&h, c, req, n, 1000);
        if (sizes[i] <= 100)
            sprintf(msg, "OK %zu\r\nOK %zu\r\n", sizes[i], i + 1);
        else
            sprintf(msg, "ERR TOO_LARGE message of 101 bytes is over the maximum of 100\r\nOK 2\r\n");
        EXPECT(&h, c, msg);
    }
    CHECK(h.flags[c] == 0);
    {
        beuss_stats s;
        s = stats(&h);
        CHECK(s.rejected_large == 1);
    }
    h_free(&h);
}

static void test_oversize_memory_bounded(void)
{
    /* A 5 MB payload fed in 1000-byte chunks with max 1000: the engine never
     * holds more than max of it (plus its fixed structures). */
    beuss_config cfg = cfg_default();
    harness h;
    uint32_t c;
    beuss_stats s;
    uint64_t base, peak = 0;
    char chunk[1000];
    size_t total = 5000000, sent = 0;
    int mode;
    for (mode = 0; mode < 2; mode++) {
        current = mode ? "oversize reject: memory bounded" : "oversize truncate: memory bounded";
        cfg.max_message_size = 1000;
        cfg.oversize = mode ? BEUSS_OVERSIZE_REJECT : BEUSS_OVERSIZE_TRUNCATE;
        h_init_cfg(&h, &cfg);
        c = h_open(&h);
        /* Let the connection allocate its fixed buffers first. */
        h_feeds(&h, c, "PI");
        h_feeds(&h, c, "NG\r\n");
        EXPECT(&h, c, "PONG\r\n");
        s = stats(&h);
        base = s.memory;
        h_feeds(&h, c, "PUT big 5000000\r\n");
        memset(chunk, 'b', sizeof chunk);
        peak = 0;
        for (sent = 0; sent < total; sent += sizeof chunk) {
            h_feed(&h, c, chunk, sizeof chunk, 1000);
            s = stats(&h);
            if (s.memory > peak)
                peak = s.memory;
        }
        h_feeds(&h, c, "\r\n");
        EXPECT(&h, c, mode ? "ERR TOO_LARGE message of 5000000 bytes is over the maximum of 1000\r\n"
                           : "OK 1000\r\n");
        CHECK(peak <= base + 1000);
        if (peak > base + 1000)
            fprintf(stderr, "  base %llu peak %llu\n", (unsigned long long)base,
                    (unsigned long long)peak);
        h_free(&h);
    }
}

static void test_full(void)
{
    beuss_config cfg = cfg_default();
    harness h;
    uint32_t c, d;
    current = "max_queued_bytes FULL";
    cfg.max_queued_bytes = 10;
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    h_feeds(&h, c, "PUT a 6\r\n123456\r\nPUT b 4\r\n1234\r\nPUT a 1\r\nx\r\nLEN a\r\n");
    EXPECT(&h, c, "OK 6\r\nOK 4\r\nERR FULL the server's cap on queued bytes would be exceeded\r\nOK 1\r\n");
    CHECK(h.flags[c] == 0);
    /* A refused PUT does not even create its queue. */
    h_feeds(&h, c, "PUT new 1\r\nx\r\nQUEUES\r\n");
    EXPECT(&h, c, "ERR FULL the server's cap on queued bytes would be exceeded\r\n"
                  "DATA 24\r\na 1 0 0 0 0\nb 1 0 0 0 0\n\r\n");
    /* A message handed straight to a consumer is not held: not FULL. */
    d = h_open(&h);
    h_feeds(&h, d, "ON z CREDIT 5\r\n");
    EXPECT(&h, d, "OK\r\n");
    h_feeds(&h, c, "PUT z 3\r\nabc\r\n");
    EXPECT(&h, c, "OK 3\r\n");
    EXPECT(&h, d, "PUSH z 3\r\nabc\r\n");
    /* Taking frees room. */
    h_feeds(&h, c, "GET a\r\nPUT a 5\r\n12345\r\n");
    EXPECT(&h, c, "MSG 6\r\n123456\r\nOK 5\r\n");
    {
        beuss_stats s;
        s = stats(&h);
        CHECK(s.rejected_full == 2);
        CHECK(s.bytes == 9);
        CHECK(s.messages == 2);
    }
    h_free(&h);
}

static void test_wait(void)
{
    harness h;
    uint32_t a, b, p;
    current = "GET WAIT expiry via tick";
    h_init(&h);
    a = h_open(&h);
    CHECK(beuss_next_deadline(h.e) == -1);
    h_feed(&h, a, "GET w WAIT 500\r\nPING\r\n", 22, 1000);
    EXPECT(&h, a, "");
    CHECK(h.flags[a] == BEUSS_OUT_WAITING);
    CHECK(beuss_next_deadline(h.e) == 1500);
    beuss_tick(h.e, 1499);
    h_drain(&h);
    EXPECT(&h, a, "");
    beuss_tick(h.e, 1500);
    h_drain(&h);
    /* The pipelined PING ran after the wait ended. */
    EXPECT(&h, a, "EMPTY\r\nPONG\r\n");
    CHECK(h.flags[a] == 0);
    CHECK(beuss_next_deadline(h.e) == -1);

    current = "GET WAIT answered by PUT, waiters in order";
    b = h_open(&h);
    p = h_open(&h);
    h_feed(&h, a, "GET w WAIT 1000\r\nLEN w\r\n", 24, 2000);
    h_feed(&h, b, "GET w WAIT 100\r\n", 16, 2001);
    CHECK(h.flags[a] == BEUSS_OUT_WAITING && h.flags[b] == BEUSS_OUT_WAITING);
    CHECK(beuss_next_deadline(h.e) == 2101);
    {
        beuss_stats s;
        s = stats(&h);
        CHECK(s.waiting == 2);
    }
    h_feed(&h, p, "PUT w 1\r\n1\r\nPUT w 1\r\n2\r\nPUT w 1\r\n3\r\n", 36, 2050);
    EXPECT(&h, p, "OK 1\r\nOK 1\r\nOK 1\r\n");
    EXPECT(&h, a, "MSG 1\r\n1\r\nOK 1\r\n");
    EXPECT(&h, b, "MSG 1\r\n2\r\n");
    CHECK(h.flags[a] == 0 && h.flags[b] == 0);
    CHECK(beuss_next_deadline(h.e) == -1);

    current = "GET WAIT 0 does not wait; WAIT with a message ready";
    h_feeds(&h, a, "GET w WAIT 0\r\nGET w WAIT 0\r\n");
    EXPECT(&h, a, "MSG 1\r\n3\r\nEMPTY\r\n");

    current = "input fed while waiting is kept";
    h_feed(&h, a, "GET x WAIT 10\r\nPI", 17, 3000);
    CHECK(h.flags[a] == BEUSS_OUT_WAITING);
    h_feed(&h, a, "NG\r\nLEN x\r\n", 11, 3001);
    EXPECT(&h, a, "");
    beuss_tick(h.e, 3010);
    h_drain(&h);
    EXPECT(&h, a, "EMPTY\r\nPONG\r\nOK 0\r\n");

    current = "closing a waiting connection";
    h_feed(&h, b, "GET y WAIT 10\r\n", 15, 4000);
    CHECK(beuss_conn_close(h.e, b, 4001) == BEUSS_OK);
    CHECK(beuss_next_deadline(h.e) == -1);
    h_feeds(&h, p, "PUT y 1\r\nz\r\nLEN y\r\n");
    EXPECT(&h, p, "OK 1\r\nOK 1\r\n");
    h_free(&h);
}

static void test_consumers(void)
{
    harness h;
    uint32_t c1, c2, c3, p;
    char want[4096];
    int i;
    current = "round robin among consumers, disjoint, in order";
    h_init(&h);
    c1 = h_open(&h);
    c2 = h_open(&h);
    c3 = h_open(&h);
    p = h_open(&h);
    h_feeds(&h, c1, "ON rr CREDIT 100\r\n");
    h_feeds(&h, c2, "ON rr CREDIT 100\r\n");
    h_feeds(&h, c3, "on rr credit 100\r\n");
    EXPECT(&h, c1, "OK\r\n");
    EXPECT(&h, c2, "OK\r\n");
    EXPECT(&h, c3, "OK\r\n");
    for (i = 0; i < 30; i++) {
        char req[64];
        int n = sprintf(req, "PUT rr %d\r\n%0*d\r\n", 2, 2, i);
        h_feed(&h, p, req, (size_t)n, 1000);
    }
    free(h_take(&h, p, NULL));
    for (i = 0; i < 3; i++) {
        int k;
        char *w = want;
        for (k = i; k < 30; k += 3)
            w += sprintf(w, "PUSH rr 2\r\n%02d\r\n", k);
        EXPECT(&h, i == 0 ? c1 : i == 1 ? c2 : c3, want);
    }
    {
        beuss_stats s;
        s = stats(&h);
        CHECK(s.pushed == 30 && s.consumers == 3 && s.messages == 0);
    }

    current = "credit exhaustion and CREDIT";
    h_feeds(&h, c1, "OFF rr\r\n");
    h_feeds(&h, c2, "OFF rr\r\n");
    h_feeds(&h, c3, "OFF rr\r\n");
    EXPECT(&h, c1, "OK\r\n");
    free(h_take(&h, c2, NULL));
    free(h_take(&h, c3, NULL));
    h_feeds(&h, p, "PUT cr 1\r\na\r\nPUT cr 1\r\nb\r\nPUT cr 1\r\nc\r\n");
    EXPECT(&h, p, "OK 1\r\nOK 1\r\nOK 1\r\n");
    h_feeds(&h, c1, "ON cr CREDIT 2\r\n");
    EXPECT(&h, c1, "OK\r\nPUSH cr 1\r\na\r\nPUSH cr 1\r\nb\r\n");
    h_feeds(&h, p, "LEN cr\r\n");
    EXPECT(&h, p, "OK 1\r\n");
    h_feeds(&h, c1, "CREDIT cr 1\r\n");
    EXPECT(&h, c1, "OK 1\r\nPUSH cr 1\r\nc\r\n");
    h_feeds(&h, c1, "CREDIT cr 18446744073709551\r\nCREDIT cr 5000000000\r\n");
    EXPECT(&h, c1, "OK 4294967295\r\nOK 4294967295\r\n");
    /* A consumer with credit 0 gets nothing; a second one takes over. */
    h_feeds(&h, c2, "ON cr CREDIT 0\r\n");
    EXPECT(&h, c2, "OK\r\n");
    h_feeds(&h, c1, "OFF cr\r\n");
    EXPECT(&h, c1, "OK\r\n");
    h_feeds(&h, p, "PUT cr 1\r\nd\r\n");
    EXPECT(&h, p, "OK 1\r\n");
    EXPECT(&h, c2, "");
    h_feeds(&h, c2, "CREDIT cr 3\r\n");
    EXPECT(&h, c2, "OK 3\r\nPUSH cr 1\r\nd\r\n");

    current = "same connection consumes two queues; QUEUES counts consumers";
    h_feeds(&h, c2, "ON other CREDIT 1\r\n");
    EXPECT(&h, c2, "OK\r\n");
    h_feeds(&h, p, "QUEUES\r\n");
    EXPECT(&h, p, "DATA 42\r\ncr 0 1 0 0 0\nother 0 1 0 0 0\nrr 0 0 0 0 0\n\r\n");
    h_feeds(&h, c2, "PUT other 2\r\nhi\r\n");
    EXPECT(&h, c2, "PUSH other 2\r\nhi\r\nOK 2\r\n");

    current = "closing a consumer leaves messages for others";
    beuss_conn_close(h.e, c2, 1000);
    h_feeds(&h, p, "PUT cr 1\r\ne\r\nLEN cr\r\n");
    EXPECT(&h, p, "OK 1\r\nOK 1\r\n");
    h_feeds(&h, c3, "ON cr\r\n");
    EXPECT(&h, c3, "OK\r\nPUSH cr 1\r\ne\r\n");
    h_free(&h);
}

static void test_many_subscriptions(void)
{
    beuss_engine *e = beuss_engine_new(NULL, NULL, 0);
    beuss_output o;
    beuss_stats st;
    uint32_t c, ids[300];
    char *req = malloc(20000 * 40);
    size_t len = 0, out = 0;
    int i;
    current = "a connection on 20,000 queues; 300 connections on one queue";
    CHECK(beuss_conn_open(e, &c) == BEUSS_OK);
    for (i = 0; i < 20000; i++)
        len += (size_t)sprintf(req + len, "ON q%d CREDIT 1\r\n", i);
    for (i = 0; i < 20000; i++)
        len += (size_t)sprintf(req + len, "OFF q%d\r\n", i);
    CHECK(beuss_feed(e, c, (const uint8_t *)req, len, 0) == BEUSS_OK);
    while (beuss_output_next(e, &o))
        out += o.len;
    beuss_output_done(e);
    CHECK(out == 40000 * 4); /* "OK\r\n" each */
    beuss_engine_stats(e, &st);
    CHECK(st.consumers == 0 && st.queues == 20000);
    for (i = 0; i < 300; i++) {
        CHECK(beuss_conn_open(e, &ids[i]) == BEUSS_OK);
        static const char on[] = "ON shared CREDIT 0\r\nCREDIT shared 1\r\n";
        CHECK(beuss_feed(e, ids[i], (const uint8_t *)on, sizeof on - 1, 0) == BEUSS_OK);
    }
    while (beuss_output_next(e, &o))
        ;
    beuss_output_done(e);
    beuss_engine_stats(e, &st);
    CHECK(st.consumers == 300);
    /* 300 messages, one to each consumer. */
    len = 0;
    for (i = 0; i < 300; i++)
        len += (size_t)sprintf(req + len, "PUT shared 1\r\nx\r\n");
    CHECK(beuss_feed(e, c, (const uint8_t *)req, len, 0) == BEUSS_OK);
    {
        int pushes = 0;
        while (beuss_output_next(e, &o))
            if (o.conn != c)
                pushes += o.len == 18 && memcmp(o.data, "PUSH shared 1\r\nx\r\n", 18) == 0;
        beuss_output_done(e);
        CHECK(pushes == 300);
        if (pushes != 300) {
            beuss_engine_stats(e, &st);
            fprintf(stderr, "  pushes %d, pushed %llu, messages %llu consumers %llu\n", pushes,
                    (unsigned long long)st.pushed, (unsigned long long)st.messages, (unsigned long long)st.consumers);
        }
    }
    for (i = 0; i < 300; i++)
        CHECK(beuss_conn_close(e, ids[i], 0) == BEUSS_OK);
    beuss_engine_stats(e, &st);
    CHECK(st.consumers == 0 && st.messages == 0);
    free(req);
    beuss_engine_free(e);
}

static void test_pause_resume_full(void)
{
    beuss_config cfg = cfg_default();
    harness h;
    uint32_t c, p;
    int i;
    current = "pause stops pushes, resume delivers";
    h_init(&h);
    c = h_open(&h);
    p = h_open(&h);
    h_feeds(&h, c, "ON q CREDIT 10\r\n");
    EXPECT(&h, c, "OK\r\n");
    CHECK(beuss_conn_pause(h.e, c) == BEUSS_OK);
    h_feeds(&h, p, "PUT q 1\r\na\r\nPUT q 1\r\nb\r\n");
    EXPECT(&h, c, "");
    /* Paused: its requests wait too. */
    h_feeds(&h, c, "PING\r\n");
    EXPECT(&h, c, "");
    CHECK(beuss_conn_resume(h.e, c, 1000) == BEUSS_OK);
    h_drain(&h);
    EXPECT(&h, c, "PUSH q 1\r\na\r\nPUSH q 1\r\nb\r\nPONG\r\n");
    h_free(&h);

    current = "output high water pauses with BEUSS_OUT_FULL";
    cfg.output_high_water = 100;
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    p = h_open(&h);
    for (i = 0; i < 10; i++)
        h_feeds(&h, p, "PUT g 20\r\n01234567890123456789\r\n");
    free(h_take(&h, p, NULL));
    /* Each reply is 28 bytes: the 4th reaches 100 and pauses. */
    h_feeds(&h, c, "GET g\r\nGET g\r\nGET g\r\nGET g\r\nGET g\r\nPING\r\n");
    EXPECT(&h, c,
           "MSG 20\r\n01234567890123456789\r\nMSG 20\r\n01234567890123456789\r\n"
           "MSG 20\r\n01234567890123456789\r\nMSG 20\r\n01234567890123456789\r\n");
    CHECK(h.flags[c] == BEUSS_OUT_FULL);
    /* Fed while full: kept. */
    h_feeds(&h, c, "LEN g\r\n");
    EXPECT(&h, c, "");
    beuss_conn_resume(h.e, c, 1000);
    h_drain(&h);
    EXPECT(&h, c, "MSG 20\r\n01234567890123456789\r\nPONG\r\nOK 5\r\n");
    CHECK(h.flags[c] == 0);

    current = "pushes stop at high water until resume";
    h_feeds(&h, c, "ON g CREDIT 100\r\n");
    /* OK (4 bytes) + 3 pushes of 33 bytes = 103: the 3rd reaches 100 */
    EXPECT(&h, c,
           "OK\r\nPUSH g 20\r\n01234567890123456789\r\nPUSH g 20\r\n01234567890123456789\r\n"
           "PUSH g 20\r\n01234567890123456789\r\n");
    CHECK(h.flags[c] == BEUSS_OUT_FULL);
    h_feeds(&h, p, "LEN g\r\n");
    EXPECT(&h, p, "OK 2\r\n");
    beuss_conn_resume(h.e, c, 1000);
    h_drain(&h);
    EXPECT(&h, c, "PUSH g 20\r\n01234567890123456789\r\nPUSH g 20\r\n01234567890123456789\r\n");
    CHECK(h.flags[c] == 0);
    h_free(&h);

    current = "EOVERFLOW past the pending input bound";
    h_init(&h);
    c = h_open(&h);
    beuss_conn_pause(h.e, c);
    {
        size_t n = 1024 * 1024;
        char *big = malloc(n);
        int r = 0;
        memset(big, '\n', n);
        for (i = 0; i < 4; i++)
            CHECK(h_feed(&h, c, big, n, 1000) == BEUSS_OK);
        r = h_feed(&h, c, big, 1, 1000);
        CHECK(r == BEUSS_EOVERFLOW);
        CHECK(h.flags[c] & BEUSS_OUT_CLOSE);
        free(big);
    }
    h_free(&h);
}

static void test_many_frames(void)
{
    harness h;
    uint32_t c, d;
    size_t n = 100000, i, len = 0, olen;
    char *in, *out, *w;
    beuss_stats s;
    current = "100000 pipelined messages FIFO";
    h_init(&h);
    c = h_open(&h);
    d = h_open(&h);
    in = malloc(n * 32);
    for (i = 0; i < n; i++)
        len += (size_t)sprintf(in + len, "PUT f 6\r\n%06zu\r\n", i);
    /* in chunks of 64 KiB, as a socket delivers */
    for (i = 0; i < len; i += 65536)
        h_feed(&h, c, in + i, len - i < 65536 ? len - i : 65536, 1000);
    out = h_take(&h, c, &olen);
    CHECK(olen == n * 6);
    free(out);
    s = stats(&h);
    CHECK(s.messages == n && s.bytes == n * 6);
    /* Per-message cost in the store: payload + header + slack (a loose bound;
     * test_store_cost_stats checks it closely). */
    CHECK(s.memory < n * (6 + 4) + n * 2 + 200000);
    len = 0;
    for (i = 0; i < n; i++)
        len += (size_t)sprintf(in + len, "GET f\r\n");
    for (i = 0; i < len; i += 65536) {
        int r = beuss_feed(h.e, d, (const uint8_t *)in + i, len - i < 65536 ? len - i : 65536, 1000);
        CHECK(r == BEUSS_OK);
        h_drain(&h);
        if (h.flags[d] & BEUSS_OUT_FULL) {
            beuss_conn_resume(h.e, d, 1000);
            h_drain(&h);
        }
    }
    out = h_take(&h, d, &olen);
    CHECK(olen == n * 15);
    if (olen != n * 15)
        fprintf(stderr, "  got %zu bytes, flags %u: %.60s\n", olen, h.flags[d], out);
    w = out;
    for (i = 0; i < n && w + 15 <= out + olen; i++) {
        char exp[32];
        sprintf(exp, "MSG 6\r\n%06zu\r\n", i);
        if (memcmp(w, exp, 15) != 0) {
            CHECK(!"FIFO order broken");
            fprintf(stderr, "  at message %zu: %.40s\n", i, w);
            break;
        }
        w += 15;
    }
    free(out);
    free(in);
    s = stats(&h);
    CHECK(s.messages == 0 && s.taken == n && s.puts == n);
    h_free(&h);
}

static void test_close_mid_frame(void)
{
    harness h;
    uint32_t c, d;
    beuss_stats s;
    uint64_t base;
    current = "close mid-frame";
    h_init(&h);
    s = stats(&h);
    base = s.memory;
    c = h_open(&h);
    h_feeds(&h, c, "PUT q 100\r\nabc");
    CHECK(beuss_conn_close(h.e, c, 1000) == BEUSS_OK);
    CHECK(beuss_feed(h.e, c, (const uint8_t *)"x", 1, 1000) == BEUSS_ENOCONN);
    c = h_open(&h);
    h_feeds(&h, c, "PU");
    CHECK(beuss_conn_close(h.e, c, 1000) == BEUSS_OK);
    s = stats(&h);
    CHECK(s.memory == base + 0 || s.queues == 0);
    CHECK(s.connections == 0);
    current = "ids are reused";
    c = h_open(&h);
    d = h_open(&h);
    CHECK(c == 0 && d == 1);
    beuss_conn_close(h.e, c, 1000);
    CHECK(h_open(&h) == 0);
    CHECK(beuss_conn_close(h.e, 77, 1000) == BEUSS_ENOCONN);
    h_free(&h);
}

static void test_stats_doc(void)
{
    harness h;
    uint32_t c;
    char *out;
    current = "STATS document";
    h_init(&h);
    c = h_open(&h);
    h_feed(&h, c, "PUT a 2\r\nxy\r\nSTATS\r\n", 20, 1500);
    out = h_take(&h, c, NULL);
    CHECK(strncmp(out, "OK 2\r\nDATA ", 11) == 0);
    CHECK(strstr(out, "\nprotocol 2\n") || strstr(out, "\r\nprotocol 2\n"));
    CHECK(strstr(out, "\nuptime_ms 500\n") != NULL);
    CHECK(strstr(out, "\nconnections 1\n") != NULL);
    CHECK(strstr(out, "\nqueues 1\n") != NULL);
    CHECK(strstr(out, "\nmessages 1\n") != NULL);
    CHECK(strstr(out, "\nbytes 2\n") != NULL);
    CHECK(strstr(out, "\nputs 1\n") != NULL);
    CHECK(strstr(out, "\nmax_message_size 10240\n") != NULL);
    CHECK(strstr(out, "\noversize truncate\n") != NULL);
    CHECK(strstr(out, "\nmax_queued_bytes 0\n") != NULL);
    CHECK(strstr(out, "\nmemory ") != NULL);
    {
        const char *keys[] = {"consumers", "waiting", "taken", "pushed", "truncated",
                              "rejected_large", "rejected_full", "protocol_errors"};
        size_t i;
        for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char k[40];
            sprintf(k, "\n%s 0\n", keys[i]);
            CHECK(strstr(out, k) != NULL);
        }
    }
    free(out);
    h_feeds(&h, c, "PURGE a\r\nPURGE a\r\nPURGE nope\r\nLEN a\r\n");
    EXPECT(&h, c, "OK 1\r\nOK 0\r\nOK 0\r\nOK 0\r\n");
    h_free(&h);
}

static void test_config(void)
{
    beuss_config cfg;
    current = "config validation";
    beuss_config_init(&cfg);
    cfg.max_message_size = 0;
    CHECK(beuss_engine_new(&cfg, NULL, 0) == NULL);
    beuss_config_init(&cfg);
    cfg.max_line = 10;
    CHECK(beuss_engine_new(&cfg, NULL, 0) == NULL);
    beuss_config_init(&cfg);
    cfg.output_high_water = 0;
    CHECK(beuss_engine_new(&cfg, NULL, 0) == NULL);
    beuss_engine_free(NULL);
    CHECK(beuss_next_deadline(NULL) == -1);
    CHECK(strcmp(beuss_strerror(BEUSS_EOVERFLOW), "unknown status") != 0);
}

/* scenario drives a fixed multi-connection script; with allocation failures
 * injected it must not crash or leak, and afterwards (allocator healthy
 * again) the engine must still serve requests. */
static void scenario(harness *h)
{
    uint32_t a = 0, b = 0, c = 0;
    int oa = beuss_conn_open(h->e, &a) == BEUSS_OK;
    int ob = beuss_conn_open(h->e, &b) == BEUSS_OK;
    int oc = beuss_conn_open(h->e, &c) == BEUSS_OK;
    if (oa) {
        beuss_feed(h->e, a, (const uint8_t *)"ON q CREDIT 2\r\nGET w WAIT 50\r\nPI", 32, 1000);
        h_drain(h);
    }
    if (ob) {
        beuss_feed(h->e, b, (const uint8_t *)"PUT q 3\r\nabcPUT", 15, 1001);
        h_drain(h);
        beuss_feed(h->e, b, (const uint8_t *)"\r\n q 2\r\nde\r\nPUT q 1\r\nf\r\nPUT w 1\r\ng\r\n", 35, 1002);
        h_drain(h);
        beuss_feed(h->e, b, (const uint8_t *)"PUT x 1\r\nh\r\nQUEUES\r\nSTATS\r\nPEEK x\r\n", 34, 1003);
        h_drain(h);
    }
    if (oa) {
        beuss_feed(h->e, a, (const uint8_t *)"NG\r\nGET q WAIT 20\r\n", 19, 1004);
        h_drain(h);
    }
    beuss_tick(h->e, 2000);
    h_drain(h);
    if (oc) {
        beuss_feed(h->e, c, (const uint8_t *)"ON x\r\nOFF x\r\nPUT y 40000\r\n", 26, 2001);
        h_drain(h);
        beuss_conn_close(h->e, c, 2002);
    }
    if (oa)
        beuss_conn_close(h->e, a, 2003);
    h_drain(h);
}

static void test_alloc_failures(void)
{
    harness h;
    long n, total;
    current = "allocation failure injection";
    /* Count the allocations of a clean run. */
    h_init(&h);
    scenario(&h);
    total = h.ta.count;
    h_free(&h);
    CHECK(total > 10);
    for (n = 1; n <= total + 5; n++) {
        int i;
        if (h_start(&h, NULL, n) == NULL) {
            CHECK(h.ta.live == 0);
            continue;
        }
        scenario(&h);
        /* Still usable: a fresh connection gets correct answers. */
        h.ta.fail_at = 0;
        for (i = 0; i < MAXC; i++)
            h.outlen[i] = 0;
        {
            uint32_t id;
            char *got;
            size_t gl;
            CHECK(beuss_conn_open(h.e, &id) == BEUSS_OK);
            h_feeds(&h, id, "PUT after 2\r\nok\r\nGET after\r\nPING\r\n");
            got = h_take(&h, id, &gl);
            if (strcmp(got, "OK 2\r\nMSG 2\r\nok\r\nPONG\r\n") != 0) {
                CHECK(!"engine unusable after an allocation failure");
                fprintf(stderr, "  failing allocation %ld: got \"%s\"\n", n, got);
            }
            free(got);
        }
        h_free(&h);
    }

    current = "allocation failure gives ERR INTERNAL";
    {
        /* Fail every allocation after the connection is set up: a PUT to a
         * new queue must be refused with INTERNAL, and nothing stored. */
        uint32_t c;
        beuss_stats s;
        h_init(&h);
        c = h_open(&h);
        h_feeds(&h, c, "PING\r\n");
        EXPECT(&h, c, "PONG\r\n");
        h.ta.fail_from = h.ta.count + 1;
        h_feeds(&h, c, "PUT newq 3\r\nabc\r\nON q2\r\nGET w WAIT 10\r\n");
        EXPECT(&h, c,
               "ERR INTERNAL out of memory creating the queue; nothing stored\r\n"
               "ERR INTERNAL out of memory creating the queue\r\n"
               "ERR INTERNAL out of memory creating the queue\r\n");
        s = stats(&h);
        CHECK(s.queues == 0 && s.messages == 0);
        h.ta.fail_from = 0;
        h_feeds(&h, c, "PUT newq 3\r\nabc\r\nLEN newq\r\n");
        EXPECT(&h, c, "OK 3\r\nOK 1\r\n");
        CHECK(h.flags[c] == 0);
        h_free(&h);
    }
}

static void test_api_semantics(void)
{
    harness h;
    uint32_t a, b;
    beuss_output o;
    current = "QUIT stops the requests pipelined after it";
    h_init(&h);
    a = h_open(&h);
    b = h_open(&h);
    h_feeds(&h, a, "ON q\r\nPING\r\nQUIT\r\nPING\r\nPUT q 1\r\nx\r\n");
    EXPECT(&h, a, "OK\r\nPONG\r\nOK\r\n");
    CHECK(h.flags[a] == BEUSS_OUT_CLOSE);
    /* Its subscription ended with QUIT: a message waits for someone else. */
    h_feeds(&h, b, "PUT q 1\r\ny\r\nLEN q\r\n");
    EXPECT(&h, b, "OK 1\r\nOK 1\r\n");
    EXPECT(&h, a, "");
    h_free(&h);

    current = "flags-only output: WAITING reported with no data, cleared with the reply";
    h_init(&h);
    a = h_open(&h);
    CHECK(beuss_feed(h.e, a, (const uint8_t *)"GET q WAIT 100\r\n", 16, 1000) == BEUSS_OK);
    CHECK(beuss_output_next(h.e, &o) == 1);
    CHECK(o.conn == a && o.len == 0 && o.flags == BEUSS_OUT_WAITING);
    CHECK(beuss_output_next(h.e, &o) == 0);
    beuss_output_done(h.e);
    /* Nothing new: nothing reported. */
    CHECK(beuss_output_next(h.e, &o) == 0);
    beuss_output_done(h.e);
    beuss_tick(h.e, 1100);
    CHECK(beuss_output_next(h.e, &o) == 1);
    CHECK(o.conn == a && o.len == 7 && memcmp(o.data, "EMPTY\r\n", 7) == 0 && o.flags == 0);
    beuss_output_done(h.e);

    current = "output made between output_next and output_done comes after done";
    beuss_feed(h.e, a, (const uint8_t *)"PING\r\n", 6, 1200);
    CHECK(beuss_output_next(h.e, &o) == 1 && o.len == 6);
    beuss_feed(h.e, a, (const uint8_t *)"PING\r\n", 6, 1200);
    CHECK(beuss_output_next(h.e, &o) == 0);
    beuss_output_done(h.e);
    /* Only the second PONG: the first was returned and is done. */
    CHECK(beuss_output_next(h.e, &o) == 1 && o.len == 6 && memcmp(o.data, "PONG\r\n", 6) == 0);
    CHECK(beuss_output_next(h.e, &o) == 0);
    beuss_output_done(h.e);
    CHECK(beuss_output_next(h.e, &o) == 0);

    current = "pause and resume are idempotent; unknown ids";
    CHECK(beuss_conn_pause(h.e, a) == BEUSS_OK);
    CHECK(beuss_conn_pause(h.e, a) == BEUSS_OK);
    CHECK(beuss_conn_resume(h.e, a, 1300) == BEUSS_OK);
    CHECK(beuss_conn_resume(h.e, a, 1300) == BEUSS_OK);
    h_drain(&h);
    CHECK(beuss_conn_pause(h.e, 42) == BEUSS_ENOCONN);
    CHECK(beuss_conn_resume(h.e, 42, 0) == BEUSS_ENOCONN);
    CHECK(beuss_feed(h.e, 42, (const uint8_t *)"x", 1, 0) == BEUSS_ENOCONN);
    CHECK(beuss_feed(h.e, a, NULL, 1, 0) == BEUSS_EINVAL);
    CHECK(beuss_feed(h.e, a, NULL, 0, 0) == BEUSS_OK);
    h_free(&h);

    current = "a waiter unblocked by another connection runs its kept input in the same call";
    h_init(&h);
    a = h_open(&h);
    b = h_open(&h);
    {
        uint32_t c = h_open(&h);
        h_feeds(&h, a, "GET q WAIT 1000\r\nPUT r 1\r\nz\r\nGET q WAIT 1000\r\n");
        h_feeds(&h, b, "GET r WAIT 1000\r\nPING\r\n");
        CHECK(h.flags[a] == BEUSS_OUT_WAITING && h.flags[b] == BEUSS_OUT_WAITING);
        /* c's PUT q answers a, whose kept PUT r then answers b, whose kept
         * PING runs: all within c's one call. */
        h_feeds(&h, c, "PUT q 1\r\n1\r\n");
        EXPECT(&h, c, "OK 1\r\n");
        EXPECT(&h, a, "MSG 1\r\n1\r\nOK 1\r\n");
        CHECK(h.flags[a] == BEUSS_OUT_WAITING);
        EXPECT(&h, b, "MSG 1\r\nz\r\nPONG\r\n");
        CHECK(h.flags[b] == 0);
        h_feeds(&h, b, "PUT q 1\r\n2\r\n");
        EXPECT(&h, b, "OK 1\r\n");
        EXPECT(&h, a, "MSG 1\r\n2\r\n");
        CHECK(h.flags[a] == 0);
    }
    h_free(&h);

    current = "closing a connection that other connections unblocked";
    h_init(&h);
    a = h_open(&h);
    b = h_open(&h);
    h_feeds(&h, a, "GET q WAIT 1000\r\nPING\r\n");
    CHECK(beuss_conn_pause(h.e, a) == BEUSS_OK);
    h_feeds(&h, b, "PUT q 1\r\n1\r\n");
    /* The GET is answered while paused; the PING waits for resume. */
    EXPECT(&h, a, "MSG 1\r\n1\r\n");
    CHECK(beuss_conn_close(h.e, a, 1000) == BEUSS_OK);
    h_feeds(&h, b, "PING\r\n");
    EXPECT(&h, b, "OK 1\r\nPONG\r\n");
    h_free(&h);
}

static void test_idle_cleanup(void)
{
    beuss_config cfg = cfg_default();
    harness h;
    uint32_t c, d;
    beuss_stats s;
    uint64_t base;
    current = "idle queue cleanup";
    cfg.queue_idle_ms = 100;
    h_init_cfg(&h, &cfg);
    c = h_open(&h);
    d = h_open(&h);
    h_feeds(&h, c, "PING\r\n");
    EXPECT(&h, c, "PONG\r\n");
    h_feeds(&h, d, "PING\r\n");
    EXPECT(&h, d, "PONG\r\n");
    s = stats(&h);
    base = s.memory;
    h_feed(&h, c, "PUT a 1\r\nx\r\nPUT b 1\r\ny\r\nGET a\r\n", strlen("PUT a 1\r\nx\r\nPUT b 1\r\ny\r\nGET a\r\n"), 1000);
    EXPECT(&h, c, "OK 1\r\nOK 1\r\nMSG 1\r\nx\r\n");
    CHECK(beuss_next_deadline(h.e) == 1100);
    /* Activity on a postpones its cleanup. */
    h_feed(&h, c, "LEN a\r\n", strlen("LEN a\r\n"), 1050);
    EXPECT(&h, c, "OK 0\r\n");
    beuss_tick(h.e, 1100);
    h_drain(&h);
    s = stats(&h);
    CHECK(s.queues == 2);
    CHECK(beuss_next_deadline(h.e) == 1150);
    beuss_tick(h.e, 1150);
    h_drain(&h);
    h_feed(&h, c, "QUEUES\r\n", strlen("QUEUES\r\n"), 1150);
    /* b holds a message: it stays. */
    EXPECT(&h, c, "DATA 12\r\nb 1 0 0 0 0\n\r\n");
    CHECK(beuss_next_deadline(h.e) == -1);

    current = "idle cleanup waits for consumers and waiters to leave";
    h_feed(&h, d, "ON w\r\n", strlen("ON w\r\n"), 2000);
    EXPECT(&h, d, "OK\r\n");
    h_feed(&h, c, "GET v WAIT 500\r\n", strlen("GET v WAIT 500\r\n"), 2000);
    beuss_tick(h.e, 2400);
    h_drain(&h);
    s = stats(&h);
    CHECK(s.queues == 3);
    beuss_tick(h.e, 2500); /* the wait ends: v is idle from now */
    h_drain(&h);
    EXPECT(&h, c, "EMPTY\r\n");
    h_feed(&h, d, "OFF w\r\n", strlen("OFF w\r\n"), 2550);
    EXPECT(&h, d, "OK\r\n");
    beuss_tick(h.e, 2600);
    h_drain(&h);
    s = stats(&h);
    CHECK(s.queues == 2); /* v gone; w idle since 2550 */
    beuss_tick(h.e, 2650);
    h_drain(&h);
    h_feed(&h, c, "GET b\r\nQUEUES\r\n", strlen("GET b\r\nQUEUES\r\n"), 2650);
    EXPECT(&h, c, "MSG 1\r\ny\r\nDATA 12\r\nb 0 0 0 0 0\n\r\n");
    beuss_tick(h.e, 2750);
    h_drain(&h);
    s = stats(&h);
    CHECK(s.queues == 0);
    /* Everything the queues held is back; the timer heap keeps its array. */
    CHECK(s.memory == base + 16 * sizeof(void *));
    if (s.memory != base + 16 * sizeof(void *))
        fprintf(stderr, "  memory %llu, base %llu\n", (unsigned long long)s.memory,
                (unsigned long long)base);
    CHECK(beuss_next_deadline(h.e) == -1);
    /* A queue dropped is created again by the next use. */
    h_feed(&h, c, "PUT a 2\r\nzz\r\nGET a\r\n", strlen("PUT a 2\r\nzz\r\nGET a\r\n"), 3000);
    EXPECT(&h, c, "OK 2\r\nMSG 2\r\nzz\r\n");
    h_free(&h);
}

/* ---- randomized model check ----
 * Random requests from several connections on a few queues, with ticks,
 * pauses, resumes and reconnects; every payload is unique
 * ("<queue>:<producer>:<seq>"). Each connection's output is parsed as a
 * client would and matched, in order, against the requests it sent. Checks:
 * one reply per request in request order, every message delivered at most
 * once, a consumer sees one producer's messages to a queue in the order they
 * were put, and at the end every accepted message (OK) was delivered or is
 * still queued, and nothing unaccepted was delivered. */

#define RQ 3
#define RC 4
#define RMAXMSG 60000
#define RMAXREQ 65536

enum { RK_PUT, RK_GET, RK_PEEK, RK_ON, RK_CREDIT, RK_OFF, RK_LEN };

typedef struct rreq {
    int kind;
    long seq;
} rreq;

static int rdelivered[RMAXMSG];
static int raccepted[RMAXMSG];
static long rlast[RC + 1][RQ][RC]; /* last seq consumer saw from (queue, producer) */
static rreq rfifo[RC + 1][RMAXREQ];
static size_t rhead[RC + 1], rtail[RC + 1];

static uint32_t rnd32(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void r_reset(uint32_t c)
{
    int q, p;
    rhead[c] = rtail[c] = 0;
    for (q = 0; q < RQ; q++)
        for (p = 0; p < RC; p++)
            rlast[c][q][p] = -1;
}

/* r_msg checks payload p[0:n) ("<q>:<producer>:<seq>") received by conn c;
 * take says whether it left the queue (GET, PUSH) or not (PEEK). */
static int r_msg(uint32_t c, const char *p, size_t n, int take)
{
    int qi, pi;
    long seq;
    char tmp[40];
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    if (sscanf(tmp, "%d:%d:%ld", &qi, &pi, &seq) != 3 || qi < 0 || qi >= RQ || pi < 0 ||
        pi >= RC || seq < 0 || seq >= RMAXMSG)
        return 0;
    /* A PEEK's reply may be parsed after another connection's GET of the
     * same message, made later in the same call: only its form is checked. */
    if (!take)
        return 1;
    if (rdelivered[seq]) {
        fprintf(stderr, "  message %s delivered twice\n", tmp);
        return 0;
    }
    rdelivered[seq] = 1;
    if (seq <= rlast[c][qi][pi]) {
        fprintf(stderr, "  conn %u got %s after seq %ld of that producer\n", c, tmp,
                rlast[c][qi][pi]);
        return 0;
    }
    rlast[c][qi][pi] = seq;
    return 1;
}

/* r_parse walks one output chunk of conn c (whole replies), matching each
 * reply with the oldest request c sent; it returns 0 on any mismatch. */
static int r_parse(uint32_t c, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t *nl = memchr(d + i, '\n', n - i);
        size_t ll, plen = 0;
        char line[300];
        int haspl, push;
        rreq rq;
        if (nl == NULL)
            return 0;
        ll = (size_t)(nl - (d + i));
        if (ll == 0 || ll >= sizeof line || d[i + ll - 1] != '\r')
            return 0;
        memcpy(line, d + i, ll - 1);
        line[ll - 1] = 0;
        i += ll + 1;
        push = strncmp(line, "PUSH ", 5) == 0;
        haspl = push || strncmp(line, "MSG ", 4) == 0;
        if (haspl) {
            plen = strtoul(strrchr(line, ' ') + 1, NULL, 10);
            if (i + plen + 2 > n)
                return 0;
        }
        if (push) {
            if (!r_msg(c, (const char *)d + i, plen, 1))
                return 0;
            i += plen + 2;
            continue;
        }
        if (rhead[c] == rtail[c]) {
            fprintf(stderr, "  conn %u: reply '%s' to no request\n", c, line);
            return 0;
        }
        rq = rfifo[c][rhead[c]++ % RMAXREQ];
        switch (rq.kind) {
        case RK_PUT:
            if (strncmp(line, "ERR FULL ", 9) == 0)
                break; /* refused: must never be delivered */
            if (strncmp(line, "OK ", 3) != 0)
                return 0;
            raccepted[rq.seq] = 1;
            break;
        case RK_GET:
        case RK_PEEK:
            if (haspl) {
                if (!r_msg(c, (const char *)d + i, plen, rq.kind == RK_GET))
                    return 0;
            } else if (strcmp(line, "EMPTY") != 0) {
                return 0;
            }
            break;
        case RK_ON:
        case RK_OFF:
            if (strcmp(line, "OK") != 0)
                return 0;
            break;
        default:
            if (strncmp(line, "OK ", 3) != 0)
                return 0;
            break;
        }
        if (haspl)
            i += plen + 2;
    }
    return 1;
}

static int r_drain(beuss_engine *e, int *closed)
{
    beuss_output o;
    int ok = 1;
    while (beuss_output_next(e, &o)) {
        if (!r_parse(o.conn, o.data, o.len)) {
            ok = 0;
            fprintf(stderr, "  conn %u output: %.*s\n", o.conn, (int)(o.len > 200 ? 200 : o.len),
                    (const char *)o.data);
        }
        if (o.flags & BEUSS_OUT_CLOSE)
            *closed = 1;
    }
    beuss_output_done(e);
    return ok;
}

static void test_random_model(uint32_t seed)
{
    beuss_config cfg = cfg_default();
    beuss_engine *e;
    uint32_t id[RC];
    int sub[RC][RQ], i, ok = 1, closed = 0;
    long seq = 0, lost = 0, unaccepted = 0, accepted = 0;
    uint64_t now = 1000;
    current = "randomized model check";
    cfg.output_high_water = 300 + seed % 700; /* exercise FULL often */
    if (seed % 3 == 1)
        cfg.queue_idle_ms = 20;
    if (seed % 4 == 2)
        cfg.max_queued_bytes = 200;
    e = beuss_engine_new(&cfg, NULL, now);
    memset(rdelivered, 0, sizeof rdelivered);
    memset(raccepted, 0, sizeof raccepted);
    for (i = 0; i < RC; i++) {
        int q;
        CHECK(beuss_conn_open(e, &id[i]) == BEUSS_OK && id[i] == (uint32_t)i);
        r_reset((uint32_t)i);
        for (q = 0; q < RQ; q++)
            sub[i][q] = 0;
    }
    for (i = 0; i < 40000 && ok && seq < RMAXMSG; i++) {
        uint32_t r = rnd32(&seed);
        int c = (int)(r % RC), q = (int)((r >> 4) % RQ);
        char req[96];
        int n = 0;
        rreq rq = {RK_LEN, -1};
        switch ((r >> 8) % 16) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4: {
            char pl[32];
            int pn = sprintf(pl, "%d:%d:%ld", q, c, seq);
            n = sprintf(req, "PUT q%d %d\r\n%s\r\n", q, pn, pl);
            rq.kind = RK_PUT;
            rq.seq = seq++;
            break;
        }
        case 5:
        case 6:
            n = sprintf(req, "GET q%d\r\n", q);
            rq.kind = RK_GET;
            break;
        case 7:
            n = sprintf(req, "GET q%d WAIT %u\r\n", q, 1 + (r >> 16) % 50);
            rq.kind = RK_GET;
            break;
        case 8:
            if (!sub[c][q]) {
                n = sprintf(req, "ON q%d CREDIT %u\r\n", q, (r >> 16) % 4);
                rq.kind = RK_ON;
                sub[c][q] = 1;
            } else {
                n = sprintf(req, "CREDIT q%d %u\r\n", q, 1 + (r >> 16) % 5);
                rq.kind = RK_CREDIT;
            }
            break;
        case 9:
            if (sub[c][q]) {
                n = sprintf(req, "OFF q%d\r\n", q);
                rq.kind = RK_OFF;
                sub[c][q] = 0;
            } else {
                n = sprintf(req, "PEEK q%d\r\n", q);
                rq.kind = RK_PEEK;
            }
            break;
        case 10:
            beuss_conn_pause(e, id[c]);
            break;
        case 11:
        case 12:
            beuss_conn_resume(e, id[c], now);
            break;
        case 13:
            now += (r >> 16) % 30;
            beuss_tick(e, now);
            break;
        case 14:
            if ((r >> 16) % 8 == 0) { /* reconnect: kept requests die with it */
                int k;
                beuss_conn_close(e, id[c], now);
                CHECK(beuss_conn_open(e, &id[c]) == BEUSS_OK && id[c] == (uint32_t)c);
                r_reset((uint32_t)c);
                for (k = 0; k < RQ; k++)
                    sub[c][k] = 0;
            }
            break;
        default:
            n = sprintf(req, "LEN q%d\r\n", q);
            break;
        }
        /* Requests to a blocked connection are kept and run in order later,
         * as when the caller stops reading a socket that already sent them. */
        if (n) {
            /* Sometimes in two pieces, so frames straddle feeds. */
            size_t cut = (r >> 24) % 4 == 0 ? (size_t)((r >> 26) % (uint32_t)n) : 0;
            rfifo[c][rtail[c]++ % RMAXREQ] = rq;
            if (cut) {
                CHECK(beuss_feed(e, id[c], (const uint8_t *)req, cut, now) == BEUSS_OK);
                ok &= r_drain(e, &closed);
            }
            CHECK(beuss_feed(e, id[c], (const uint8_t *)req + cut, (size_t)n - cut, now) == BEUSS_OK);
        }
        ok &= r_drain(e, &closed);
    }
    CHECK(ok);
    CHECK(!closed);
    /* Let every connection go, then take what is left with a fresh one. */
    for (i = 0; i < RC; i++)
        beuss_conn_close(e, id[i], now);
    {
        uint32_t c;
        int q;
        CHECK(beuss_conn_open(e, &c) == BEUSS_OK && c < RC + 1);
        r_reset(c);
        for (q = 0; q < RQ; q++) {
            long k;
            for (k = 0; k < RMAXMSG; k++) {
                char req[32];
                int n = sprintf(req, "GET q%d\r\n", q);
                size_t before = rhead[c];
                rfifo[c][rtail[c]++ % RMAXREQ] = (rreq){RK_GET, -1};
                beuss_feed(e, c, (const uint8_t *)req, (size_t)n, now);
                {
                    beuss_output o;
                    int empty = 0;
                    while (beuss_output_next(e, &o)) {
                        empty |= o.len == 7 && memcmp(o.data, "EMPTY\r\n", 7) == 0;
                        CHECK(r_parse(c, o.data, o.len));
                    }
                    beuss_output_done(e);
                    CHECK(rhead[c] == before + 1);
                    if (empty)
                        break;
                }
            }
        }
    }
    for (i = 0; i < seq; i++) {
        accepted += raccepted[i];
        lost += raccepted[i] && !rdelivered[i];
        unaccepted += !raccepted[i] && rdelivered[i];
    }
    CHECK(lost == 0 && unaccepted == 0);
    CHECK(accepted > 3000);
    if (lost || unaccepted || accepted <= 3000)
        fprintf(stderr, "  %ld put, %ld accepted, %ld lost, %ld delivered unaccepted\n", seq,
                accepted, lost, unaccepted);
    beuss_engine_free(e);
}


/* ---- leases (at-least-once) ---- */

/* h_skip forgets conn c's collected output. */
static void h_skip(harness *h, uint32_t c)
{
    free(h_take(h, c, NULL));
}

static void test_lease_basics(void)
{
    harness h;
    uint32_t a, b;
    beuss_stats s;
    current = "GET LEASE, ACK, unknown and foreign ids";
    h_init(&h);
    a = h_open(&h);
    b = h_open(&h);
    h_feeds(&h, a, "PUT q 2\r\nm1\r\nPUT q 2\r\nm2\r\nGET q LEASE 100\r\nLEN q\r\n");
    EXPECT(&h, a, "OK 2\r\nOK 2\r\nMSG 2 1 1\r\nm1\r\nOK 1\r\n");
    h_feeds(&h, b, "ACK 1\r\nTOUCH 1\r\nNACK 1\r\nACK x\r\n");
    EXPECT(&h, b,
           "ERR UNKNOWN_LEASE no lease with that id is held by this connection (settled, "
           "expired or another's)\r\n"
           "ERR UNKNOWN_LEASE no lease with that id is held by this connection (settled, "
           "expired or another's)\r\n"
           "ERR UNKNOWN_LEASE no lease with that id is held by this connection (settled, "
           "expired or another's)\r\n"
           "ERR BAD_NUMBER 'x' is not 1 to 19 decimal digits\r\n");
    h_feeds(&h, a, "QUEUES\r\nSTATS q\r\nACK 1\r\nACK 1\r\n");
    EXPECT(&h, a,
           "DATA 12\r\nq 1 0 1 0 0\n\r\n"
           "DATA 84\r\nready 1\nconsumers 0\nleased 1\nscheduled 0\ndead 0\nwaiting 0\nbytes 2\n"
           "dead_queue q.dead\n\r\n"
           "OK\r\n"
           "ERR UNKNOWN_LEASE no lease with that id is held by this connection (settled, "
           "expired or another's)\r\n");
    s = stats(&h);
    CHECK(s.leased == 0 && s.acked == 1 && s.messages == 1);
    CHECK(beuss_next_deadline(h.e) == -1);

    current = "lease options: errors";
    h_feeds(&h, a, "GET q LEASE 0\r\nGET q MAXDELIVER 3\r\nGET q LEASE 5 LEASE 5\r\n"
                   "ON q CREDIT 1 WAIT 3\r\nGET q LEASE\r\nNACK 9 DELAY\r\nTOUCH 9 x\r\n");
    EXPECT(&h, a,
           "ERR BAD_ARGS LEASE is 1 to 4294967295 ms\r\n"
           "ERR BAD_ARGS MAXDELIVER needs LEASE\r\n"
           "ERR BAD_ARGS usage: GET <queue> [WAIT <ms>] [LEASE <ms>] [MAXDELIVER <n>]\r\n"
           "ERR BAD_ARGS usage: ON <queue> [CREDIT <n>] [LEASE <ms>] [MAXDELIVER <n>]\r\n"
           "ERR BAD_ARGS usage: GET <queue> [WAIT <ms>] [LEASE <ms>] [MAXDELIVER <n>]\r\n"
           "ERR BAD_ARGS usage: NACK <id> [DELAY <ms>]\r\n"
           "ERR BAD_NUMBER 'x' is not 1 to 19 decimal digits\r\n");
    h_free(&h);
}

static void test_lease_expiry_touch_nack(void)
{
    harness h;
    uint32_t a, p;
    beuss_stats s;
    current = "lease expiry puts the message back at the head, delivery count raised";
    h_init(&h);
    a = h_open(&h);
    p = h_open(&h);
    h_feeds(&h, p, "PUT q 1\r\nA\r\nPUT q 1\r\nB\r\n");
    EXPECT(&h, p, "OK 1\r\nOK 1\r\n");
    h_feed(&h, a, "GET q LEASE 100\r\n", 17, 1000);
    EXPECT(&h, a, "MSG 1 1 1\r\nA\r\n");
    h_feed(&h, p, "PUT q 1\r\nC\r\n", 12, 1050);
    CHECK(beuss_next_deadline(h.e) == 1100);
    beuss_tick(h.e, 1099);
    h_drain(&h);
    h_feeds(&h, p, "LEN q\r\n");
    EXPECT(&h, p, "OK 1\r\nOK 2\r\n");
    beuss_tick(h.e, 1100);
    h_drain(&h);
    h_feed(&h, a, "ACK 1\r\nLEN q\r\nGET q LEASE 100\r\n", 31, 1100);
    EXPECT(&h, a,
           "ERR UNKNOWN_LEASE no lease with that id is held by this connection (settled, "
           "expired or another's)\r\nOK 3\r\nMSG 1 2 2\r\nA\r\n");
    s = stats(&h);
    CHECK(s.expired == 1 && s.redelivered == 1);

    current = "TOUCH extends a lease";
    h_feed(&h, a, "TOUCH 2 500\r\n", 13, 1150);
    EXPECT(&h, a, "OK\r\n");
    CHECK(beuss_next_deadline(h.e) == 1650);
    beuss_tick(h.e, 1649);
    h_drain(&h);
    h_feed(&h, a, "TOUCH 2\r\n", 9, 1600);
    EXPECT(&h, a, "OK\r\n");
    CHECK(beuss_next_deadline(h.e) == 1700); /* the lease's own time, from now */

    current = "NACK with a delay holds the message, then puts it back first";
    h_feed(&h, a, "NACK 2 DELAY 300\r\nLEN q\r\nSTATS q\r\n", 34, 1600);
    EXPECT_PREFIX(&h, a, "OK\r\nOK 2\r\nDATA 84\r\nready 2\nconsumers 0\nleased 1\n");
    CHECK(beuss_next_deadline(h.e) == 1900);
    beuss_tick(h.e, 1900);
    h_drain(&h);
    h_feed(&h, a, "GET q LEASE 100\r\nNACK 3\r\nGET q\r\nGET q\r\nGET q\r\n", 46, 1900);
    EXPECT(&h, a, "MSG 1 3 3\r\nA\r\nOK\r\nMSG 1\r\nA\r\nMSG 1\r\nB\r\nMSG 1\r\nC\r\n");
    s = stats(&h);
    CHECK(s.nacked == 2 && s.leased == 0 && s.messages == 0);
    h_free(&h);
}

static void test_lease_close_order(void)
{
    harness h;
    uint32_t a, b, p;
    int i;
    current = "close returns leases to the head in delivery order";
    h_init(&h);
    a = h_open(&h);
    b = h_open(&h);
    p = h_open(&h);
    h_feeds(&h, p, "PUT q 1\r\n1\r\nPUT q 1\r\n2\r\nPUT q 1\r\n3\r\nPUT r 1\r\nx\r\n");
    h_feeds(&h, a, "GET q LEASE 1000\r\nGET r LEASE 1000\r\nGET q LEASE 1000\r\n");
    EXPECT(&h, a, "MSG 1 1 1\r\n1\r\nMSG 1 2 1\r\nx\r\nMSG 1 3 1\r\n2\r\n");
    h_feeds(&h, p, "PUT q 1\r\n4\r\n");
    h_skip(&h, p);
    /* A waiting GET is served from the returned messages right away. */
    h_feeds(&h, b, "GET q WAIT 5000 LEASE 1000\r\n");
    EXPECT(&h, b, "MSG 1 4 1\r\n3\r\n");
    CHECK(beuss_conn_close(h.e, a, 1001) == BEUSS_OK);
    h_drain(&h);
    h_feeds(&h, p, "GET q\r\nGET q\r\nGET q\r\nGET q\r\nGET r\r\n");
    EXPECT(&h, p, "MSG 1\r\n1\r\nMSG 1\r\n2\r\nMSG 1\r\n4\r\nEMPTY\r\nMSG 1\r\nx\r\n");

    current = "several leases expiring in one tick keep their order";
    h_feeds(&h, p, "PUT e 1\r\n1\r\nPUT e 1\r\n2\r\nPUT e 1\r\n3\r\n");
    h_feed(&h, b, "GET e LEASE 10\r\nGET e LEASE 10\r\nGET e LEASE 10\r\n", 48, 2000);
    h_skip(&h, b);
    h_feeds(&h, p, "PUT e 1\r\n4\r\n");
    beuss_tick(h.e, 2010);
    h_drain(&h);
    h_skip(&h, p);
    for (i = 0; i < 4; i++)
        h_feeds(&h, p, "GET e\r\n");
    EXPECT(&h, p, "MSG 1\r\n1\r\nMSG 1\r\n2\r\nMSG 1\r\n3\r\nMSG 1\r\n4\r\n");
    h_free(&h);
}

static void test_lease_dead_letter(void)
{
    harness h;
    uint32_t a, p;
    beuss_stats s;
    char name[300], line[1000];
    current = "max deliveries moves a message to <queue>.dead, behind ones go on";
    h_init(&h);
    a = h_open(&h);
    p = h_open(&h);
    h_feeds(&h, p, "PUT q 6\r\npoison\r\nPUT q 2\r\nok\r\n");
    h_skip(&h, p);
    h_feeds(&h, a, "GET q LEASE 100 MAXDELIVER 2\r\nNACK 1\r\nGET q LEASE 100 MAXDELIVER 2\r\n"
                   "NACK 2\r\nGET q LEASE 100\r\nACK 3\r\nQUEUES\r\n");
    EXPECT(&h, a,
           "MSG 6 1 1\r\npoison\r\nOK\r\nMSG 6 2 2\r\npoison\r\nOK\r\nMSG 2 3 1\r\nok\r\nOK\r\n"
           "DATA 29\r\nq 0 0 0 0 1\nq.dead 1 0 0 0 0\n\r\n");
    s = stats(&h);
    CHECK(s.dead_lettered == 1 && s.messages == 1);
    current = "dead letters can be inspected, taken under a lease and put back";
    h_feeds(&h, a, "PEEK q.dead\r\nGET q.dead LEASE 100\r\nPUT q 6\r\npoison\r\nACK 4\r\n"
                   "GET q LEASE 100\r\nPURGE q.dead\r\n");
    EXPECT(&h, a, "MSG 6\r\npoison\r\nMSG 6 4 1\r\npoison\r\nOK 6\r\nOK\r\nMSG 6 5 1\r\npoison\r\nOK 0\r\n");

    current = "default max deliveries, and expiry counts";
    h_feeds(&h, p, "PUT d 1\r\nz\r\n");
    {
        int i;
        for (i = 0; i < (int)BEUSS_DEFAULT_MAX_DELIVER; i++) {
            h_feed(&h, a, "GET d LEASE 10\r\n", 16, 3000 + (uint64_t)i * 100);
            beuss_tick(h.e, 3000 + (uint64_t)i * 100 + 10);
            h_drain(&h);
        }
    }
    h_skip(&h, a);
    h_feeds(&h, a, "LEN d\r\nLEN d.dead\r\n");
    EXPECT(&h, a, "OK 0\r\nOK 1\r\n");

    current = "a queue name of 251+ bytes: its dead-letter queue keeps the first 250";
    memset(name, 'n', 255);
    name[255] = 0;
    snprintf(line, sizeof line, "PUT %s 1\r\nv\r\nGET %s LEASE 10 MAXDELIVER 1\r\nSTATS %s\r\n",
             name, name, name);
    h_feed(&h, a, line, strlen(line), 5000);
    h_skip(&h, a);
    beuss_tick(h.e, 5010);
    h_drain(&h);
    memcpy(name + 250, ".dead", 6);
    snprintf(line, sizeof line, "LEN %s\r\n", name);
    h_feeds(&h, a, line);
    EXPECT(&h, a, "OK 1\r\n");
    h_free(&h);
}

static void test_lease_credit(void)
{
    harness h;
    uint32_t a, p;
    current = "ON LEASE: credit is the number of unacknowledged messages";
    h_init(&h);
    a = h_open(&h);
    p = h_open(&h);
    h_feeds(&h, a, "ON q CREDIT 2 LEASE 1000\r\n");
    h_feeds(&h, p, "PUT q 1\r\n1\r\nPUT q 1\r\n2\r\nPUT q 1\r\n3\r\nPUT q 1\r\n4\r\n");
    EXPECT(&h, a, "OK\r\nPUSH q 1 1 1\r\n1\r\nPUSH q 1 2 1\r\n2\r\n");
    h_feeds(&h, a, "ACK 1\r\n");
    EXPECT(&h, a, "OK\r\nPUSH q 1 3 1\r\n3\r\n");
    h_feeds(&h, a, "NACK 2\r\n");
    EXPECT(&h, a, "OK\r\nPUSH q 1 4 2\r\n2\r\n");
    beuss_tick(h.e, 2000); /* both expire: the subscription's credit is withheld */
    h_drain(&h);
    EXPECT(&h, a, "");
    h_feed(&h, a, "ACK 3\r\n", 7, 2000); /* a late ACK shows life: credit back */
    EXPECT(&h, a,
           "ERR UNKNOWN_LEASE no lease with that id is held by this connection (settled, "
           "expired or another's)\r\nPUSH q 1 5 2\r\n3\r\nPUSH q 1 6 3\r\n2\r\n");

    current = "a lease from an earlier ON gives no credit to a new one";
    h_feeds(&h, a, "OFF q\r\nON q CREDIT 0 LEASE 1000\r\nACK 5\r\nCREDIT q 0\r\n");
    EXPECT(&h, a, "OK\r\nOK\r\nOK\r\nOK 0\r\n");

    current = "an expired lease suspends its subscription until the connection shows life";
    h_skip(&h, p);
    h_feed(&h, a, "ON s2 CREDIT 5 LEASE 10\r\n", strlen("ON s2 CREDIT 5 LEASE 10\r\n"), 3000);
    h_feed(&h, p, "PUT s2 1\r\na\r\n", strlen("PUT s2 1\r\na\r\n"), 3000);
    EXPECT(&h, a, "OK\r\nPUSH s2 1 7 1\r\na\r\n");
    beuss_tick(h.e, 3010);
    h_drain(&h);
    h_feed(&h, p, "PUT s2 1\r\nb\r\nLEN s2\r\n", strlen("PUT s2 1\r\nb\r\nLEN s2\r\n"), 3011);
    EXPECT(&h, a, ""); /* 4 credits left, but suspended */
    EXPECT(&h, p, "OK 1\r\nOK 1\r\nOK 2\r\n");
    h_feed(&h, a, "CREDIT s2 0\r\n", strlen("CREDIT s2 0\r\n"), 3012);
    EXPECT(&h, a, "OK 5\r\nPUSH s2 1 8 2\r\na\r\nPUSH s2 1 9 1\r\nb\r\n");
    h_free(&h);
}

/* lease_scenario exercises every lease path; used under allocation
 * failures. */
static void lease_scenario(harness *h)
{
    uint32_t a = 99, b = 99, c = 99;
    beuss_conn_open(h->e, &a);
    beuss_conn_open(h->e, &b);
    beuss_conn_open(h->e, &c);
    if (a >= MAXC || b >= MAXC || c >= MAXC)
        return;
    h_feeds(h, b, "ON q CREDIT 2 LEASE 50 MAXDELIVER 2\r\n");
    h_feeds(h, c, "GET q WAIT 100 LEASE 50\r\n");
    h_feeds(h, a, "PUT q 1\r\n1\r\nPUT q 1\r\n2\r\nPUT q 1\r\n3\r\nPUT q 1\r\n4\r\n"
                  "GET q LEASE 50\r\nNACK 4 DELAY 10\r\nACK 5\r\nTOUCH 5\r\nQUEUES\r\nSTATS q\r\n");
    h_feeds(h, b, "ACK 1\r\nNACK 2\r\n");
    beuss_tick(h->e, 1060);
    h_drain(h);
    beuss_conn_close(h->e, b, 1070);
    h_drain(h);
    beuss_tick(h->e, 1200);
    h_drain(h);
}

static void test_lease_alloc_failures(void)
{
    harness h;
    long n, total;
    current = "lease paths under allocation failures lose no message";
    h_init(&h);
    lease_scenario(&h);
    total = h.ta.count;
    h_free(&h);
    for (n = 1; n <= total + 5; n++) {
        beuss_stats s;
        uint32_t i;
        if (h_start(&h, NULL, n) == NULL)
            continue;
        lease_scenario(&h);
        h.ta.fail_at = 0;
        /* Close everyone and let every retry run: nothing may stay leased
         * and every accepted message is ready, dead-lettered or acked. */
        for (i = 0; i < MAXC; i++)
            beuss_conn_close(h.e, i, 1300);
        beuss_tick(h.e, 10000);
        h_drain(&h);
        s = stats(&h);
        CHECK(s.leased == 0);
        if (s.messages + s.acked != s.puts) {
            CHECK(!"a message was lost or duplicated");
            fprintf(stderr, "  failing allocation %ld: puts %llu, ready %llu, acked %llu\n", n,
                    (unsigned long long)s.puts, (unsigned long long)s.messages,
                    (unsigned long long)s.acked);
        }
        h_free(&h);
    }
}


/* ---- a randomized check of at-least-once delivery ---- */

#define LM_CONNS 3
#define LM_MSGS 400
#define LM_HELD 2048 /* every leased delivery of a run fits: 400 messages x at most 4 deliveries */

typedef struct lmconn {
    uint32_t id;
    uint64_t held[LM_HELD]; /* lease ids this connection was handed */
    int msg[LM_HELD];       /* and their messages */
    int nheld;
    int on;                 /* has an ON ... LEASE on queue m */
} lmconn;

/* lm_parse reads every frame in out[0:n): leased MSG/PUSH go to c's held
 * list (a plain one counts as taken for good in *plain), and returns the
 * first reply line that is not a push (NULL if none), copied into line. */
static const char *lm_parse(lmconn *c, const char *out, size_t n, int *taken, char *line, size_t cap)
{
    size_t pos = 0;
    const char *reply = NULL;
    while (pos < n) {
        const char *eol = memchr(out + pos, '\n', n - pos);
        size_t ll;
        unsigned long long len = 0, lid = 0, d = 0;
        int got = 0;
        if (eol == NULL)
            break;
        ll = (size_t)(eol - (out + pos));
        if (ll >= 4 && memcmp(out + pos, "MSG ", 4) == 0)
            got = sscanf(out + pos + 4, "%llu %llu %llu", &len, &lid, &d);
        else if (ll >= 5 && memcmp(out + pos, "PUSH ", 5) == 0)
            got = sscanf(out + pos + 5, "%*s %llu %llu %llu", &len, &lid, &d);
        if (got >= 1) {
            int m = atoi(out + pos + ll + 1);
            if (got == 3 && c->nheld < LM_HELD) {
                c->held[c->nheld] = lid;
                c->msg[c->nheld++] = m;
            } else if (got == 3) {
                CHECK(!"more leases than the model holds");
            } else {
                taken[m]++;
            }
            if (out[pos] == 'M' && reply == NULL) {
                snprintf(line, cap, "MSG");
                reply = line;
            }
            pos += ll + 1 + len + 2;
            continue;
        }
        if (reply == NULL) {
            snprintf(line, cap, "%.*s", (int)(ll > 0 && out[pos + ll - 1] == '\r' ? ll - 1 : ll), out + pos);
            reply = line;
        }
        pos += ll + 1;
    }
    return reply;
}

/* lm_drop forgets held lease k of c. */
static void lm_drop(lmconn *c, int k)
{
    c->held[k] = c->held[c->nheld - 1];
    c->msg[k] = c->msg[c->nheld - 1];
    c->nheld--;
}

static void test_lease_model(uint32_t seed)
{
    harness h;
    lmconn cs[LM_CONNS];
    int acked[LM_MSGS], taken[LM_MSGS], i, k, puts = 0;
    uint64_t now = 1000;
    char line[200], req[160];
    current = "randomized lease model: every message acknowledged once, or ready, or dead";
    memset(cs, 0, sizeof cs);
    memset(acked, 0, sizeof acked);
    memset(taken, 0, sizeof taken);
    h_init(&h);
    for (i = 0; i < LM_CONNS; i++)
        cs[i].id = h_open(&h);
    for (i = 0; i < 20000; i++) {
        uint32_t r = rnd32(&seed);
        lmconn *c = &cs[r % LM_CONNS];
        size_t n;
        char *out;
        const char *rep;
        int op = (int)((r >> 4) % 12);
        req[0] = 0;
        if (op <= 2 && puts < LM_MSGS) {
            snprintf(req, sizeof req, "PUT m 6\r\n%06d\r\n", puts++);
        } else if (op == 3) {
            snprintf(req, sizeof req, "GET m LEASE %u MAXDELIVER %u\r\n", 1 + (r >> 8) % 40, 1 + (r >> 16) % 4);
        } else if (op == 4 && !c->on) {
            snprintf(req, sizeof req, "ON m CREDIT %u LEASE %u MAXDELIVER 3\r\n", 1 + (r >> 8) % 4, 1 + (r >> 12) % 40);
            c->on = 1;
        } else if (op <= 7 && c->nheld) {
            k = (int)((r >> 8) % (uint32_t)c->nheld);
            if (op == 5)
                snprintf(req, sizeof req, "ACK %llu\r\n", (unsigned long long)c->held[k]);
            else if (op == 6)
                snprintf(req, sizeof req, "NACK %llu DELAY %u\r\n", (unsigned long long)c->held[k], (r >> 16) % 20);
            else
                snprintf(req, sizeof req, "TOUCH %llu %u\r\n", (unsigned long long)c->held[k], 1 + (r >> 16) % 40);
        } else if (op == 8) {
            /* a plain GET of the dead-letter queue now and then: taken for good */
            snprintf(req, sizeof req, "GET m.dead\r\n");
        } else if (op == 9 && (r >> 8) % 8 == 0) {
            beuss_conn_close(h.e, c->id, now);
            h_drain(&h);
            h_skip(&h, c->id);
            c->nheld = 0;
            c->on = 0;
            c->id = h_open(&h);
            continue;
        } else {
            now += (r >> 8) % 7;
            beuss_tick(h.e, now);
            h_drain(&h);
            for (k = 0; k < LM_CONNS; k++) {
                out = h_take(&h, cs[k].id, &n);
                rep = lm_parse(&cs[k], out, n, taken, line, sizeof line);
                CHECK(rep == NULL); /* a tick answers nothing here: only pushes */
                free(out);
            }
            continue;
        }
        h_feed(&h, c->id, req, strlen(req), now);
        for (k = 0; k < LM_CONNS; k++) {
            lmconn *o = &cs[k];
            out = h_take(&h, o->id, &n);
            rep = lm_parse(o, out, n, taken, line, sizeof line);
            if (o == c) {
                CHECK(rep != NULL);
                if (rep && (req[0] == 'A' || req[0] == 'N')) {
                    int j;
                    unsigned long long lid = strtoull(req + (req[0] == 'A' ? 4 : 5), NULL, 10);
                    for (j = 0; j < c->nheld && c->held[j] != lid; j++)
                        ;
                    if (strcmp(rep, "OK") == 0) {
                        CHECK(j < c->nheld); /* only a held lease can be settled */
                        if (j < c->nheld) {
                            if (req[0] == 'A')
                                acked[c->msg[j]]++;
                            lm_drop(c, j);
                        }
                    } else {
                        /* expired in the meantime: forget it */
                        CHECK(strncmp(rep, "ERR UNKNOWN_LEASE", 17) == 0);
                        if (j < c->nheld)
                            lm_drop(c, j);
                    }
                }
            } else {
                CHECK(rep == NULL);
            }
            free(out);
        }
    }
    /* Everyone leaves; every lease comes back. Then count what is left. */
    for (k = 0; k < LM_CONNS; k++)
        beuss_conn_close(h.e, cs[k].id, now);
    beuss_tick(h.e, now + 100000);
    h_drain(&h);
    {
        uint32_t d = h_open(&h);
        beuss_stats st;
        char *out;
        size_t n;
        lmconn dc;
        memset(&dc, 0, sizeof dc);
        for (k = 0; k < 2 * LM_MSGS; k++)
            h_feeds(&h, d, "GET m\r\nGET m.dead\r\n");
        out = h_take(&h, d, &n);
        lm_parse(&dc, out, n, taken, line, sizeof line);
        free(out);
        st = stats(&h);
        CHECK(st.leased == 0 && st.messages == 0);
        /* The run went through every path, not just a few. */
        CHECK(st.acked > 10 && st.nacked > 10 && st.expired > 10 && st.redelivered > 10 &&
              st.dead_lettered > 0);
        if (getenv("BEUSS_LEASE_MODEL_VERBOSE"))
            fprintf(stderr, "lease model seed %u: puts %d acked %llu nacked %llu expired %llu redelivered %llu dead %llu\n",
                    seed, puts, (unsigned long long)st.acked, (unsigned long long)st.nacked,
                    (unsigned long long)st.expired, (unsigned long long)st.redelivered,
                    (unsigned long long)st.dead_lettered);
    }
    for (k = 0; k < puts; k++) {
        if (acked[k] + taken[k] != 1) {
            CHECK(!"a message was lost or delivered for good twice");
            fprintf(stderr, "  seed %u: message %d acked %d times, taken %d times\n", seed, k, acked[k], taken[k]);
            break;
        }
    }
    h_free(&h);
}

/* ---- record sizes at the store's header form boundaries ---- */

/* Lengths at the boundaries of every record header form (1 byte up to 127,
 * 2 up to 8191, 5 above), of the old 16 KiB form and of 64 KiB segments. */
static const size_t rs_lens[] = {0,     1,     126,   127,   128,   129,    8190,   8191,
                                 8192,  8193,  16383, 16384, 65535, 65536, 65537, 300000,
                                 1048579};
#define RS_N (sizeof rs_lens / sizeof rs_lens[0])
#define RS_MAX 1048579

/* rs_fill writes message k's len bytes at p, a pattern that differs between
 * messages and along each one, CR and LF bytes included. */
static void rs_fill(char *p, size_t len, size_t k)
{
    size_t j;
    for (j = 0; j < len; j++)
        p[j] = (char)(k * 131u + j * 7u + (j >> 8));
}

/* rs_frame writes "<head>\r\n<message k of len bytes>\r\n" at w and returns
 * its length. */
static size_t rs_frame(char *w, const char *head, size_t len, size_t k)
{
    size_t n = strlen(head);
    memcpy(w, head, n);
    w[n++] = '\r';
    w[n++] = '\n';
    rs_fill(w + n, len, k);
    n += len;
    w[n++] = '\r';
    w[n++] = '\n';
    return n;
}

/* rs_expect checks conn c's output is exactly want[0:n) and forgets it. */
static void rs_expect(harness *h, uint32_t c, const char *want, size_t n, size_t len)
{
    size_t got_n;
    char *got = h_take(h, c, &got_n);
    int ok = got_n == n && memcmp(got, want, n) == 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  message of %zu bytes: got %zu output bytes, want %zu: %.40s\n", len, got_n,
                n, got);
    free(got);
}

static void test_record_sizes(void)
{
    harness h;
    beuss_config cfg;
    uint32_t a;
    size_t order[2 * RS_N], n = 0, k, wn;
    uint64_t id = 0, now = 1000;
    char head[64];
    char *w = malloc(RS_MAX + 64), *want = malloc(RS_MAX + 64);
    beuss_stats st;
    current = "messages at every header size boundary, FIFO, byte for byte";
    beuss_config_init(&cfg);
    cfg.max_message_size = RS_MAX;
    /* Room for the biggest reply, so its connection is never paused. */
    cfg.output_high_water = 4 * RS_MAX;
    h_init_cfg(&h, &cfg);
    a = h_open(&h);
    for (k = 0; k < RS_N; k++)
        order[n++] = k;
    for (k = 0; k < RS_N; k++)
        order[n++] = k % 2 ? RS_N - 1 - k / 2 : k / 2;
    for (k = 0; k < n; k++) {
        size_t len = rs_lens[order[k]];
        snprintf(head, sizeof head, "PUT q %zu", len);
        wn = rs_frame(w, head, len, k);
        h_feed(&h, a, w, wn, now);
        snprintf(head, sizeof head, "OK %zu\r\n", len);
        rs_expect(&h, a, head, strlen(head), len);
    }
    for (k = 0; k < n; k++) {
        size_t len = rs_lens[order[k]];
        h_feeds(&h, a, "GET q\r\n");
        snprintf(head, sizeof head, "MSG %zu", len);
        wn = rs_frame(want, head, len, k);
        rs_expect(&h, a, want, wn, len);
    }
    st = stats(&h);
    CHECK(st.messages == 0 && st.bytes == 0);

    current = "messages of every size leased, put back with their count, taken again";
    for (k = 0; k < RS_N; k++) {
        size_t len = rs_lens[k];
        uint32_t round;
        snprintf(head, sizeof head, "PUT q %zu", len);
        wn = rs_frame(w, head, len, k);
        memcpy(w + wn, "PUT q 1\r\nz\r\n", 12);
        h_feed(&h, a, w, wn + 12, now);
        snprintf(head, sizeof head, "OK %zu\r\nOK 1\r\n", len);
        rs_expect(&h, a, head, strlen(head), len);
        /* Deliveries 1 and 2 end in NACK, 3 in expiry: two return paths. */
        for (round = 1; round <= 3; round++) {
            h_feed(&h, a, "GET q LEASE 100\r\n", 17, now);
            snprintf(head, sizeof head, "MSG %zu %llu %u", len, (unsigned long long)++id, round);
            wn = rs_frame(want, head, len, k);
            rs_expect(&h, a, want, wn, len);
            if (round < 3) {
                snprintf(head, sizeof head, "NACK %llu\r\n", (unsigned long long)id);
                h_feed(&h, a, head, strlen(head), now);
                EXPECT(&h, a, "OK\r\n");
            } else {
                now += 100;
                beuss_tick(h.e, now);
                h_drain(&h);
            }
        }
        h_feed(&h, a, "GET q\r\nGET q\r\n", 14, now);
        snprintf(head, sizeof head, "MSG %zu", len);
        wn = rs_frame(want, head, len, k);
        memcpy(want + wn, "MSG 1\r\nz\r\n", 10);
        rs_expect(&h, a, want, wn + 10, len);
    }
    st = stats(&h);
    CHECK(st.messages == 0 && st.leased == 0 && st.nacked == 2 * RS_N && st.expired == RS_N &&
          st.redelivered == 3 * RS_N);
    h_free(&h);
    free(w);
    free(want);
}

/* test_store_cost_stats checks through STATS memory what a queued message
 * costs: its payload and a 1-byte header, plus segment overhead. */
static void test_store_cost_stats(void)
{
    static const size_t lens[] = {0, 4, 127};
    size_t t;
    for (t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        harness h;
        uint32_t c;
        const size_t len = lens[t], n = 300000;
        size_t per = 0, i, wn = 0, chunk;
        char head[32], *in;
        beuss_stats s0, s1;
        uint64_t grown, bound;
        current = "STATS memory per queued small message";
        h_init(&h);
        c = h_open(&h);
        /* Every message the same frame; the first creates the queue. */
        snprintf(head, sizeof head, "PUT m %zu", len);
        in = malloc((n + 1) * (len + 32));
        per = rs_frame(in, head, len, 0);
        for (i = 1; i <= n; i++)
            memcpy(in + i * per, in, per);
        h_feed(&h, c, in, per, 1000);
        free(h_take(&h, c, NULL));
        s0 = stats(&h);
        /* in chunks of 64 KiB, as a socket delivers */
        for (wn = per; wn < (n + 1) * per; wn += chunk) {
            chunk = (n + 1) * per - wn < 65536 ? (n + 1) * per - wn : 65536;
            h_feed(&h, c, in + wn, chunk, 1000);
            free(h_take(&h, c, NULL));
        }
        s1 = stats(&h);
        CHECK(s1.messages == n + 1);
        /* At least 1 header byte per message; beyond n * (len + 1), at most
         * the doubling first segments (< 2 x 64 KiB), each 64 KiB segment's
         * struct and unfillable end (< 64 bytes), and the connection's
         * buffers for one 64 KiB chunk. */
        grown = s1.memory - s0.memory;
        bound = n * (len + 1) + 2 * 65536 + (n * (len + 1) / 65000 + 1) * 64 + 2 * 65536;
        CHECK(grown >= n * (len + 1));
        CHECK(grown <= bound);
        if (getenv("BEUSS_VERBOSE") || grown > bound)
            fprintf(stderr, "  len %zu: memory grew %llu bytes for %zu messages (bound %llu)\n", len,
                    (unsigned long long)grown, n, (unsigned long long)bound);
        free(in);
        h_free(&h);
    }
}

int main(void)
{
    test_basic_transcript();
    test_transcript_splits();
    test_put_split_everywhere_all_bytes();
    test_commands_and_errors();
    test_oversize();
    test_oversize_memory_bounded();
    test_full();
    test_wait();
    test_consumers();
    test_many_subscriptions();
    test_pause_resume_full();
    test_many_frames();
    test_close_mid_frame();
    test_stats_doc();
    test_config();
    test_alloc_failures();
    test_api_semantics();
    test_idle_cleanup();
    test_lease_basics();
    test_lease_expiry_touch_nack();
    test_lease_close_order();
    test_lease_dead_letter();
    test_lease_credit();
    test_lease_alloc_failures();
    test_record_sizes();
    test_store_cost_stats();
    {
        uint32_t k;
        for (k = 0; k < 8; k++)
            test_lease_model(977u + k * 7919u);
    }
    {
        /* BEUSS_MODEL_SEEDS=n runs the model check with n seeds (default 8). */
        const char *env = getenv("BEUSS_MODEL_SEEDS");
        uint32_t k, n = env ? (uint32_t)strtoul(env, NULL, 10) : 8;
        for (k = 0; k < n; k++)
            test_random_model(2463534242u + k * 7919u);
    }
    return checks_report();
}
