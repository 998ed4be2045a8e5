/* parser.c: the incremental request parser. A pure state machine:
 * (state, bytes) -> one frame at a time, or "need more", or a sticky error.
 * Frames are views into the bytes fed; only what straddles two feeds is
 * copied: a partial header line (at most max_line bytes), a PUT's queue name,
 * and the kept part of a payload (at most max_message_size bytes; the rest
 * of an oversized payload is skipped as it arrives). */
#include <stdio.h>

#include "internal.h"

/* bp_init prepares p for a new connection. */
void bp_init(bparser *p, size_t max_line, size_t max_msg, int reject)
{
    memset(p, 0, sizeof *p);
    p->state = BPS_LINE;
    p->max_line = max_line;
    p->max_msg = max_msg;
    p->reject = reject;
}

/* bp_free releases p's buffers. */
void bp_free(bparser *p, balloc *al)
{
    if (p->line)
        ba_free(al, p->line, p->max_line);
    p->line = NULL;
    buf_free(al, &p->pay);
}

/* bp_tok_is returns 1 if t equals the upper-case word w (letters only),
 * ignoring case. */
int bp_tok_is(bview t, const char *w)
{
    size_t i;
    for (i = 0; i < t.n; i++)
        if (w[i] == 0 || (t.p[i] | 0x20) != (w[i] | 0x20))
            return 0;
    return w[i] == 0;
}

/* bp_parse_number returns 1 and stores in *v the value of a token of 1..19
 * decimal digits, or returns 0. */
int bp_parse_number(bview t, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;
    if (t.n == 0 || t.n > 19)
        return 0;
    for (i = 0; i < t.n; i++) {
        unsigned d = (unsigned)t.p[i] - '0';
        if (d > 9)
            return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

/* bp_valid_queue returns 1 if t is 1..255 bytes, each printable ASCII or
 * >= 128. */
int bp_valid_queue(bview t)
{
    size_t i;
    if (t.n == 0 || t.n > BEUSS_MAX_QUEUE_NAME)
        return 0;
    for (i = 0; i < t.n; i++)
        if (t.p[i] <= 0x20 || t.p[i] == 0x7f)
            return 0;
    return 1;
}

/* bp_escape writes a printable rendering of t[0:n) into dst (cap >= 8),
 * escaping other bytes as \xHH and cutting long input with "...". It returns
 * the length written, excluding the terminating NUL. */
size_t bp_escape(char *dst, size_t cap, const uint8_t *t, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    for (i = 0; i < n; i++) {
        uint8_t c = t[i];
        if (o + 8 >= cap) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o] = 0;
    return o;
}

/* fail makes the parser's error sticky and returns BP_ERROR. */
static int fail(bparser *p, berr e, const char *text)
{
    p->state = BPS_DEAD;
    p->err = e;
    snprintf(p->errstr, sizeof p->errstr, "%s", text);
    return BP_ERROR;
}

/* cls[c] classifies bytes for the tokenizer, the engine's hottest loop, in
 * one load per byte: SEP separates tokens, NONAME cannot be in a queue name
 * (control bytes and DEL), so names are checked while they are split. */
#define SEP 1
#define NONAME 2
static const uint8_t cls[256] = {
    [0] = NONAME, [1] = NONAME, [2] = NONAME, [3] = NONAME, [4] = NONAME, [5] = NONAME,
    [6] = NONAME, [7] = NONAME, [8] = NONAME, ['\t'] = SEP | NONAME, [10] = NONAME,
    [11] = NONAME, [12] = NONAME, [13] = NONAME, [14] = NONAME, [15] = NONAME,
    [16] = NONAME, [17] = NONAME, [18] = NONAME, [19] = NONAME, [20] = NONAME,
    [21] = NONAME, [22] = NONAME, [23] = NONAME, [24] = NONAME, [25] = NONAME,
    [26] = NONAME, [27] = NONAME, [28] = NONAME, [29] = NONAME, [30] = NONAME,
    [31] = NONAME, [' '] = SEP | NONAME, [127] = NONAME,
};

/* word returns the first n (<= 8) bytes of p, lower-cased if letters, as an
 * integer, so a verb is matched with one comparison. */
static uint64_t word(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    size_t i;
    for (i = 0; i < n; i++)
        w |= (uint64_t)(p[i] | 0x20) << (8 * i);
    return w;
}

/* lit returns the integer word() returns for the lower-case verb s (a
 * constant the compiler folds). */
static uint64_t lit(const char *s, size_t n)
{
    return word((const uint8_t *)s, n);
}

/* verb returns the command named by t, ignoring case. OR-ing 0x20 maps
 * only 'X' and 'x' to 'x', so letters match exactly and nothing else does. */
static bcmd verb(bview t)
{
    uint64_t w;
    if (t.n < 2 || t.n > 8)
        return BC_UNKNOWN;
    w = word(t.p, t.n);
    switch (t.n) {
    case 2:
        if (w == lit("on", 2))
            return BC_ON;
        break;
    case 3:
        if (w == lit("ack", 3))
            return BC_ACK;
        if (w == lit("put", 3))
            return BC_PUT;
        if (w == lit("get", 3))
            return BC_GET;
        if (w == lit("off", 3))
            return BC_OFF;
        if (w == lit("len", 3))
            return BC_LEN;
        if (w == lit("pub", 3))
            return BC_PUB;
        if (w == lit("sub", 3))
            return BC_SUB;
        break;
    case 4:
        if (w == lit("peek", 4))
            return BC_PEEK;
        if (w == lit("ping", 4))
            return BC_PING;
        if (w == lit("quit", 4))
            return BC_QUIT;
        if (w == lit("nack", 4))
            return BC_NACK;
        break;
    case 5:
        if (w == lit("purge", 5))
            return BC_PURGE;
        if (w == lit("stats", 5))
            return BC_STATS;
        if (w == lit("touch", 5))
            return BC_TOUCH;
        if (w == lit("unsub", 5))
            return BC_UNSUB;
        break;
    case 6:
        if (w == lit("credit", 6))
            return BC_CREDIT;
        if (w == lit("queues", 6))
            return BC_QUEUES;
        break;
    case 8:
        if (w == lit("schedule", 8))
            return BC_SCHEDULE;
        break;
    }
    return BC_UNKNOWN;
}

/* parse_put_when reads a PUT's DELAY <ms> or AT <unix-ms> option from
 * tokens 3 and 4 into f, or sets f->err. */
static void parse_put_when(bframe *f, uint32_t nt)
{
    uint64_t v;
    if (nt != 5) {
        f->err = BE_BAD_ARGS;
        return;
    }
    if (bp_tok_is(f->tok[3], "DELAY"))
        f->when = BW_DELAY;
    else if (bp_tok_is(f->tok[3], "AT"))
        f->when = BW_AT;
    else {
        f->err = BE_BAD_ARGS;
        return;
    }
    if (!bp_parse_number(f->tok[4], &v)) {
        f->err = BE_BAD_NUMBER;
        return;
    }
    f->when_ms = v;
}

/* parse_line splits the header line s[0:n) (line end removed) into p->f. It
 * returns 0 for an empty line, 1 for a one-line request, 2 for a payload
 * request (its payload comes next), or BP_ERROR. */
static int parse_line(bparser *p, const uint8_t *s, size_t n)
{
    bframe *f = &p->f;
    size_t i = 0;
    uint32_t nt = 0, badname = 0, lentok, maxtok;
    uint64_t d, keep;
    const char *usage;
    for (;;) {
        size_t st;
        unsigned bad = 0;
        while (i < n && (cls[s[i]] & SEP))
            i++;
        if (i == n)
            break;
        st = i;
        while (i < n && !(cls[s[i]] & SEP))
            bad |= cls[s[i++]];
        if (nt < BP_MAX_TOK) {
            f->tok[nt].p = s + st;
            f->tok[nt].n = i - st;
            if (bad || i - st > BEUSS_MAX_QUEUE_NAME)
                badname |= 1u << nt;
        }
        nt++;
    }
    f->badname = badname;
    if (nt == 0)
        return 0;
    f->ntok = nt;
    f->err = BE_NONE;
    f->truncated = 0;
    f->when = BW_NOW;
    f->when_ms = 0;
    f->declared = 0;
    f->payload = NULL;
    f->plen = 0;
    f->cmd = verb(f->tok[0]);
    switch (f->cmd) {
    case BC_PUT:
        lentok = 2;
        maxtok = 5;
        usage = "PUT needs a queue and a length: PUT <queue> <bytes>";
        break;
    case BC_PUB:
        lentok = 2;
        maxtok = 3;
        usage = "PUB needs a channel and a length: PUB <channel> <bytes>";
        break;
    case BC_SCHEDULE:
        if (nt < 2 || !bp_tok_is(f->tok[1], "ADD"))
            return 1;
        lentok = 4;
        maxtok = 5;
        usage = "SCHEDULE ADD needs a name, a queue and a length: SCHEDULE ADD <name> <queue> <bytes>";
        break;
    default:
        return 1;
    }
    if (nt <= lentok)
        return fail(p, BE_BAD_ARGS, usage);
    if (!bp_parse_number(f->tok[lentok], &d)) {
        char esc[48], msg[128];
        bp_escape(esc, sizeof esc, f->tok[lentok].p, f->tok[lentok].n);
        snprintf(msg, sizeof msg, "%s length '%s' is not 1 to 19 decimal digits",
                 f->cmd == BC_PUT ? "PUT" : f->cmd == BC_PUB ? "PUB" : "SCHEDULE ADD", esc);
        return fail(p, BE_BAD_NUMBER, msg);
    }
    f->declared = d;
    keep = d;
    if (nt > maxtok || (f->cmd != BC_PUT && nt != maxtok)) {
        f->err = BE_BAD_ARGS;
    } else if (f->cmd == BC_PUT && nt > 3) {
        parse_put_when(f, nt);
    }
    if (f->err == BE_NONE && (f->badname & (f->cmd == BC_SCHEDULE ? 0xCu : 2u)))
        f->err = BE_BAD_QUEUE_NAME;
    if (f->err != BE_NONE) {
        keep = 0;
    } else if (d > p->max_msg) {
        if (p->reject) {
            f->err = BE_TOO_LARGE;
            keep = 0;
        } else {
            f->truncated = 1;
            keep = p->max_msg;
        }
    }
    p->need = d;
    p->keep = keep;
    return 2;
}

/* fast_put recognizes the most common request whole: "PUT <queue>
 * <bytes>\r\n<payload>\r\n" (or bare \n), verb in any case, single spaces, a
 * valid name, a length within max_message_size, everything present in
 * s[0:avail). It fills p->f and returns the bytes the request spans, or
 * returns 0 and leaves any other input to the general path, which gives the
 * same result byte for byte (the fuzzer checks that). */
static size_t fast_put(bparser *p, const uint8_t *s, size_t avail)
{
    bframe *f = &p->f;
    size_t i, ns, ne, nd, de, lim, end;
    uint64_t d = 0;
    if (avail < 9 || (s[0] | 0x20) != 'p' || (s[1] | 0x20) != 'u' || (s[2] | 0x20) != 't' ||
        s[3] != ' ')
        return 0;
    ns = i = 4;
    lim = avail < 4 + BEUSS_MAX_QUEUE_NAME + 1 ? avail : 4 + BEUSS_MAX_QUEUE_NAME + 1;
    while (i < lim && cls[s[i]] == 0)
        i++;
    ne = i;
    if (ne == ns || i >= lim || s[i] != ' ')
        return 0;
    nd = ++i;
    while (i < avail && i - nd < 19 && (unsigned)(s[i] - '0') <= 9)
        d = d * 10 + (unsigned)(s[i++] - '0');
    if (i == nd || i >= avail)
        return 0;
    de = i;
    if (s[i] == '\r' && ++i >= avail)
        return 0;
    if (s[i] != '\n' || ++i > p->max_line || d > p->max_msg || avail - i <= d)
        return 0;
    end = i + (size_t)d;
    if (s[end] == '\n')
        end += 1;
    else if (s[end] == '\r' && end + 1 < avail && s[end + 1] == '\n')
        end += 2;
    else
        return 0;
    f->cmd = BC_PUT;
    f->err = BE_NONE;
    f->truncated = 0;
    f->when = BW_NOW;
    f->ntok = 3;
    f->badname = 0;
    f->tok[0].p = s;
    f->tok[0].n = 3;
    f->tok[1].p = s + ns;
    f->tok[1].n = ne - ns;
    f->tok[2].p = s + nd;
    f->tok[2].n = de - nd;
    f->declared = d;
    f->payload = s + i;
    f->plen = (size_t)d;
    return end;
}

/* reserve_pay makes p->pay able to hold n bytes without growing, allocating
 * exactly n so a payload never holds more than the maximum. It returns 0 or
 * -1. */
static int reserve_pay(bparser *p, balloc *al, size_t n)
{
    uint8_t *q;
    if (p->pay.cap >= n)
        return 0;
    q = ba_realloc(al, p->pay.p, p->pay.cap, n);
    if (q == NULL)
        return -1;
    p->pay.p = q;
    p->pay.cap = n;
    return 0;
}

/* bp_next parses data[0:len). See internal.h. */
int bp_next(bparser *p, balloc *al, const uint8_t *data, size_t len,
            size_t *used, bframe **fo)
{
    size_t pos = 0;
    if (p->state == BPS_LINE && p->pay.cap)
        buf_free(al, &p->pay); /* the last frame's copy is no longer needed */
    for (;;) {
        switch (p->state) {
        case BPS_LINE: {
            const uint8_t *line, *nl;
            size_t ll;
            int r;
            if (p->line_len == 0) {
                size_t n = fast_put(p, data + pos, len - pos);
                if (n) {
                    *used = pos + n;
                    *fo = &p->f;
                    return BP_FRAME;
                }
            }
            nl = pos < len ? memchr(data + pos, '\n', len - pos) : NULL;
            if (p->line_len == 0 && nl != NULL) {
                line = data + pos;
                ll = (size_t)(nl - line) + 1;
                if (ll > p->max_line) {
                    *used = pos;
                    return fail(p, BE_LINE_TOO_LONG, "header line too long");
                }
                pos += ll;
            } else {
                size_t take = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;
                if (take == 0)
                    goto more;
                if (p->line_len + take > p->max_line ||
                    (nl == NULL && p->line_len + take >= p->max_line)) {
                    *used = pos;
                    return fail(p, BE_LINE_TOO_LONG, "header line too long");
                }
                if (p->line == NULL) {
                    p->line = ba_malloc(al, p->max_line);
                    if (p->line == NULL) {
                        *used = pos;
                        return fail(p, BE_INTERNAL, "out of memory buffering a header line");
                    }
                }
                memcpy(p->line + p->line_len, data + pos, take);
                p->line_len += take;
                pos += take;
                if (nl == NULL)
                    goto more;
                line = p->line;
                ll = p->line_len;
                p->line_len = 0;
            }
            ll--; /* the \n */
            if (ll && line[ll - 1] == '\r')
                ll--;
            r = parse_line(p, line, ll);
            if (r == 0)
                continue;
            if (r < 0) {
                *used = pos;
                return BP_ERROR;
            }
            if (r == 1) {
                *used = pos;
                *fo = &p->f;
                return BP_FRAME;
            }
            p->pview = NULL;
            p->pay.len = 0;
            if (len - pos >= p->need) {
                /* The whole payload is here: a view, no copy. */
                p->pview = data + pos;
                p->f.plen = (size_t)p->keep;
                pos += (size_t)p->need;
                p->need = p->keep = 0;
                p->state = BPS_END;
            } else {
                if (p->keep && reserve_pay(p, al, (size_t)p->keep) != 0) {
                    p->f.err = BE_INTERNAL;
                    p->keep = 0;
                }
                p->state = BPS_PAYLOAD;
            }
            continue;
        }
        case BPS_PAYLOAD: {
            size_t avail = len - pos, n, k;
            if (avail == 0)
                goto more;
            n = avail < p->need ? avail : (size_t)p->need;
            k = n < p->keep ? n : (size_t)p->keep;
            if (k) {
                memcpy(p->pay.p + p->pay.len, data + pos, k);
                p->pay.len += k;
                p->keep -= k;
            }
            p->need -= n;
            pos += n;
            if (p->need == 0)
                p->state = BPS_END;
            continue;
        }
        case BPS_END:
            if (pos == len)
                goto more;
            if (data[pos] == '\n') {
                pos++;
                goto emit;
            }
            if (data[pos] == '\r') {
                pos++;
                p->state = BPS_END_LF;
                continue;
            }
            *used = pos;
            {
                char msg[96];
                snprintf(msg, sizeof msg,
                         "expected a line end after the %llu-byte payload, got byte 0x%02x",
                         (unsigned long long)p->f.declared, data[pos]);
                return fail(p, BE_BAD_FRAME, msg);
            }
        case BPS_END_LF:
            if (pos == len)
                goto more;
            if (data[pos] == '\n') {
                pos++;
                goto emit;
            }
            *used = pos;
            {
                char msg[96];
                snprintf(msg, sizeof msg,
                         "expected \\n after \\r after the %llu-byte payload, got byte 0x%02x",
                         (unsigned long long)p->f.declared, data[pos]);
                return fail(p, BE_BAD_FRAME, msg);
            }
        case BPS_DEAD:
        default:
            *used = 0;
            return BP_ERROR;
        }
    }

emit:
    p->state = BPS_LINE;
    if (p->pview) {
        p->f.payload = p->pview;
        p->pview = NULL;
    } else {
        p->f.payload = p->pay.p;
        p->f.plen = p->f.err == BE_NONE ? p->pay.len : 0;
    }
    if (p->f.err != BE_NONE)
        p->f.plen = 0;
    *used = pos;
    *fo = &p->f;
    return BP_FRAME;

more:
    if (p->state == BPS_PAYLOAD || p->state == BPS_END || p->state == BPS_END_LF) {
        bframe *f = &p->f;
        /* The bytes fed go away when we return: copy what the frame needs. */
        if (p->pview) {
            if (f->plen && reserve_pay(p, al, f->plen) != 0) {
                f->err = BE_INTERNAL;
            } else if (f->plen) {
                memcpy(p->pay.p, p->pview, f->plen);
                p->pay.len = f->plen;
            }
            p->pview = NULL;
        }
        /* Tokens that point into the fed bytes move to the line buffer,
         * unused while a payload is read; they came from one line, so they
         * fit. Tokens already there (a line that straddled feeds) stay. */
        if (!(p->line && f->tok[0].p >= p->line && f->tok[0].p < p->line + p->max_line)) {
            uint32_t k, nt = f->ntok < BP_MAX_TOK ? f->ntok : BP_MAX_TOK;
            size_t o = 0;
            if (p->line == NULL)
                p->line = ba_malloc(al, p->max_line);
            for (k = 0; k < nt; k++) {
                if (p->line == NULL) {
                    f->tok[k].p = (const uint8_t *)"";
                    f->tok[k].n = 0;
                    continue;
                }
                memmove(p->line + o, f->tok[k].p, f->tok[k].n);
                f->tok[k].p = p->line + o;
                o += f->tok[k].n;
            }
            if (p->line == NULL)
                f->err = BE_INTERNAL;
        }
    }
    *used = pos;
    return BP_MORE;
}
