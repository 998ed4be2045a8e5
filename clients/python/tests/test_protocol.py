"""The reply parser and request encoders, without a server: every reply shape, any split, broken input."""

import random
import unittest

from beuss import _protocol as P
from beuss.errors import BadQueueNameError, InvalidArgumentError, ProtocolError

# One of every reply and push the server sends, with its expected parse.
TRANSCRIPT = [
    (b"OK\r\n", (P.OK, [])),
    (b"OK 5\r\n", (P.OK, [b"5"])),
    (b"PONG\r\n", (P.PONG,)),
    (b"EMPTY\r\n", (P.EMPTY,)),
    (b"MSG 5\r\nhello\r\n", (P.MSG, b"hello")),
    (b"MSG 0\r\n\r\n", (P.MSG, b"")),
    (b"MSG 4\r\n\r\n\r\n\r\n", (P.MSG, b"\r\n\r\n")),
    (b"PUSH jobs 3\r\n\x00\xff\n\r\n", (P.PUSH, b"jobs", b"\x00\xff\n")),
    (b"DATA 12\r\na 1 0\nb 2 1\n\r\n", (P.DATA, b"a 1 0\nb 2 1\n")),
    (b"ERR BAD_QUEUE_NAME queue name is empty\r\n", (P.ERR, "BAD_QUEUE_NAME", "queue name is empty")),
    (b"ERR FULL\r\n", (P.ERR, "FULL", "")),
    (b"OK 10240\n", (P.OK, [b"10240"])),  # a bare \n is a line end too
    (b"MSG 2\nhi\n", (P.MSG, b"hi")),
]
STREAM = b"".join(raw for raw, _ in TRANSCRIPT)
EXPECTED = [parsed for _, parsed in TRANSCRIPT]


def parse_all(chunks):
    parser = P.ReplyParser()
    out = []
    for chunk in chunks:
        parser.feed(chunk)
        while True:
            frame = parser.next()
            if frame is None:
                break
            out.append(frame)
    return out, parser


class ReplyParserTest(unittest.TestCase):
    def test_whole_stream(self):
        out, parser = parse_all([STREAM])
        self.assertEqual(out, EXPECTED)
        self.assertEqual(parser.buffered, 0)

    def test_one_byte_at_a_time(self):
        out, parser = parse_all([STREAM[i : i + 1] for i in range(len(STREAM))])
        self.assertEqual(out, EXPECTED)
        self.assertEqual(parser.buffered, 0)

    def test_random_splits(self):
        rng = random.Random(6552)
        for _ in range(300):
            cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 12)))
            chunks = [STREAM[a:b] for a, b in zip([0] + cuts, cuts + [len(STREAM)])]
            out, _ = parse_all(chunks)
            self.assertEqual(out, EXPECTED, f"split at {cuts}")

    def test_incomplete_payload_waits(self):
        parser = P.ReplyParser()
        parser.feed(b"MSG 5\r\nhel")
        self.assertIsNone(parser.next())
        parser.feed(b"lo\r")  # the \r alone does not finish it: \r\n or \n must follow
        self.assertIsNone(parser.next())
        parser.feed(b"\n")
        self.assertEqual(parser.next(), (P.MSG, b"hello"))

    def test_every_byte_value_in_a_payload(self):
        payload = bytes(range(256)) * 4
        out, _ = parse_all([b"MSG %d\r\n%s\r\n" % (len(payload), payload)])
        self.assertEqual(out, [(P.MSG, payload)])

    def test_many_replies_compact_the_buffer(self):
        n = 50_000
        out, parser = parse_all([b"OK 64\r\n" * n])
        self.assertEqual(len(out), n)
        self.assertEqual(parser.buffered, 0)

    def test_bulk_ok_numbers_stop_at_anything_else(self):
        parser = P.ReplyParser()
        parser.feed(b"OK 1\r\nOK 22\nOK 333\r\nERR FULL no room\r\nOK 4\r\nOK 5")
        self.assertEqual(parser.take_ok_ints(10), [1, 22, 333])
        self.assertEqual(parser.take_ok_ints(10), [])
        self.assertEqual(parser.next(), (P.ERR, "FULL", "no room"))
        self.assertEqual(parser.take_ok_ints(10), [4])  # "OK 5" is not complete yet
        parser.feed(b"\r\nOK 6\r\n")
        self.assertEqual(parser.take_ok_ints(1), [5])
        self.assertEqual(parser.next(), (P.OK, [b"6"]))

    def test_payload_without_line_end_is_a_protocol_error(self):
        parser = P.ReplyParser()
        parser.feed(b"MSG 2\r\nhiX\r\n")
        with self.assertRaises(ProtocolError) as cm:
            parser.next()
        self.assertEqual(cm.exception.code, "PROTOCOL_VIOLATION")
        parser = P.ReplyParser()
        parser.feed(b"MSG 2\r\nhi\rX")
        self.assertRaises(ProtocolError, parser.next)

    def test_unknown_or_malformed_lines_are_protocol_errors(self):
        for bad in [
            b"HELLO\r\n",
            b"MSG x\r\n",
            b"MSG -1\r\n",
            b"MSG 1 2\r\n",
            b"PUSH q\r\n",
            b"PUSH q 1 2\r\n",
            b"EMPTY now\r\n",
            b"MSG 99999999999999999999\r\n",
            b"MSG 2000000000\r\n",  # over 1 GiB: a broken stream, not something to buffer
        ]:
            parser = P.ReplyParser()
            parser.feed(bad)
            with self.assertRaises(ProtocolError, msg=repr(bad)):
                parser.next()

    def test_endless_line_is_bounded(self):
        parser = P.ReplyParser()
        parser.feed(b"O" * (P.MAX_REPLY_LINE + 1))
        self.assertRaises(ProtocolError, parser.next)


class EncodeTest(unittest.TestCase):
    def test_put_frame(self):
        self.assertEqual(P.encode_put(b"jobs", b"hi\r\n"), b"PUT jobs 4\r\nhi\r\n\r\n")
        self.assertEqual(P.encode_put(b"q", b""), b"PUT q 0\r\n\r\n")

    def test_payload_types(self):
        self.assertEqual(P.payload_bytes("é"), "é".encode())
        self.assertEqual(P.payload_bytes(bytearray(b"ab")), b"ab")
        self.assertEqual(P.payload_bytes(memoryview(b"ab")), b"ab")
        for bad in (None, 5, ["a"]):
            with self.assertRaises(InvalidArgumentError) as cm:
                P.payload_bytes(bad)
            self.assertEqual(cm.exception.code, "INVALID_ARGUMENT")
            self.assertIsInstance(cm.exception, TypeError)

    def test_queue_names(self):
        self.assertEqual(P.queue_bytes("jobs"), b"jobs")
        self.assertEqual(P.queue_bytes("café"), "café".encode())
        self.assertEqual(P.queue_bytes(b"\x80x"), b"\x80x")
        self.assertEqual(P.queue_bytes("x" * 255), b"x" * 255)
        # A name read back from QUEUES that is not UTF-8 round-trips.
        self.assertEqual(P.queue_bytes(b"\xff".decode("utf-8", "surrogateescape")), b"\xff")
        for bad in ["", "a b", "a\tb", "a\r\nPING", "x" * 256, "é" * 128, "\x7f", "\ud800", 5, None]:
            with self.assertRaises(BadQueueNameError, msg=repr(bad)) as cm:
                P.queue_bytes(bad)
            self.assertEqual(cm.exception.code, "BAD_QUEUE_NAME")
            self.assertIsInstance(cm.exception, ValueError)

    def test_wait_in_seconds(self):
        self.assertEqual(P.seconds_to_ms(1.5, "wait"), 1500)
        self.assertEqual(P.seconds_to_ms(0, "wait"), 0)
        self.assertEqual(P.seconds_to_ms(0.0001, "wait"), 1)  # rounds up: a tiny wait still waits
        for bad in (-1, float("nan"), float("inf"), "1", True, None):
            self.assertRaises(InvalidArgumentError, P.seconds_to_ms, bad, "wait")


class DocumentTest(unittest.TestCase):
    def test_queues(self):
        doc = b"a 3 0\nb\xff 0 2 1 0 4 extra-field\n"
        self.assertEqual(
            P.parse_queues(doc),
            [P.QueueInfo("a", 3, 0), P.QueueInfo(b"b\xff".decode("utf-8", "surrogateescape"), 0, 2, 1, 0, 4)],
        )
        self.assertEqual(P.parse_queues(b""), [])
        self.assertRaises(ProtocolError, P.parse_queues, b"a x 0\n")

    def test_stats(self):
        stats = P.parse_stats(b"protocol 1\noversize truncate\nmessages 0\n")
        self.assertEqual(stats, {"protocol": 1, "oversize": "truncate", "messages": 0})


if __name__ == "__main__":
    unittest.main()


class ExportsTest(unittest.TestCase):
    def test_every_error_class_is_exported(self):
        # Regression: the schedule and lease errors were missing from
        # beuss.errors.__all__, so `from beuss.errors import *` lacked them.
        import inspect

        import beuss
        from beuss import errors

        classes = {n for n, o in vars(errors).items() if inspect.isclass(o) and issubclass(o, errors.BeussError)}
        self.assertIn("UnknownLeaseError", classes)
        self.assertEqual(classes - set(errors.__all__), set())
        self.assertEqual(classes - set(beuss.__all__), set())
