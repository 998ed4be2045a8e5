"""The requests and reply readings both clients share (beuss._commands), without a server."""

import datetime
import unittest

import beuss
from beuss import _commands as C
from beuss import _protocol as P
from beuss.errors import InvalidArgumentError, ProtocolError


class RequestTest(unittest.TestCase):
    def test_request_bytes(self):
        self.assertEqual(C.put("q", "hé", delay="1m").request, b"PUT q 3 DELAY 60000\r\nh\xc3\xa9\r\n")
        self.assertEqual(C.get("q").request, b"GET q\r\n")
        self.assertEqual(C.get("q", wait=1.5).request, b"GET q WAIT 1500\r\n")
        self.assertEqual(C.get("q", wait=1.5).wait, 1.5)  # the blocking client's timeout starts after it
        self.assertEqual(C.get_leased("q", 30, None, 3, None).request, b"GET q LEASE 30000 MAXDELIVER 3\r\n")
        self.assertEqual(C.get_leased("q", 1, 2, None, None).request, b"GET q WAIT 2000 LEASE 1000\r\n")
        self.assertEqual(C.nack("7", None).request, b"NACK 7\r\n")
        self.assertEqual(C.nack("7", 5).request, b"NACK 7 DELAY 5000\r\n")
        self.assertEqual(C.touch("7", None).request, b"TOUCH 7\r\n")
        self.assertEqual(C.touch("7", 0.0001).request, b"TOUCH 7 1\r\n")
        self.assertEqual(C.publish("news", b"hi").request, b"PUB news 2\r\nhi\r\n")
        self.assertEqual(C.on(b"q", 8, 0, None).request, b"ON q CREDIT 8\r\n")
        self.assertEqual(C.on(b"q", 8, 500, 2).request, b"ON q CREDIT 8 LEASE 500 MAXDELIVER 2\r\n")
        self.assertEqual(C.credit(b"q", 4), b"CREDIT q 4\r\n")
        self.assertEqual(list(C.get_many("q", 2).requests), [b"GET q\r\n"] * 2)
        self.assertEqual(list(C.put_many("q", [b"a", "b"]).requests), [b"PUT q 1\r\na\r\n", b"PUT q 1\r\nb\r\n"])

    def test_bad_arguments_raise_before_anything_is_built(self):
        self.assertRaises(beuss.BadQueueNameError, C.put_many, "a b", [])
        self.assertRaises(InvalidArgumentError, C.ack, "x1")
        self.assertRaises(InvalidArgumentError, C.get_leased, "q", 0, None, None, None)
        self.assertRaises(InvalidArgumentError, C.consume_args, "q", 0, None, None, None)
        self.assertRaises(InvalidArgumentError, C.consume_args, "q", 1, None, None, 3)  # max_deliver needs lease
        self.assertEqual(C.consume_args("q", 1, None, 2.5, 3), (b"q", 2500))
        self.assertRaises(InvalidArgumentError, C.subscribe_args, "ch", 0)


class ResultTest(unittest.TestCase):
    def test_replies_are_read_or_refused(self):
        self.assertEqual(C.length("q").result((P.OK, [b"3"])), 3)
        self.assertIsNone(C.peek("q").result((P.EMPTY,)))
        self.assertEqual(C.peek("q").result((P.MSG, b"x")), b"x")
        epoch = datetime.datetime.fromtimestamp(0, datetime.timezone.utc)
        self.assertEqual(C.schedule_add("s", "q", "@hourly", b"").result((P.OK, [b"0"])), epoch)
        leased = C.get_leased("q", 1, None, None, None).result((P.MSG, b"x", "12", 2))
        self.assertIsInstance(leased, beuss.LeasedMessage)
        assert leased is not None
        self.assertEqual((leased.queue, leased.data, leased.id, leased.deliveries), ("q", b"x", "12", 2))
        for command, reply in [
            (C.length("q"), (P.EMPTY,)),
            (C.peek("q"), (P.OK, [])),
            (C.stats(), (P.OK, [])),
            (C.ping(), (P.OK, [])),
            (C.sub(b"ch"), (P.PONG,)),
        ]:
            self.assertRaises(ProtocolError, command.result, reply)

    def test_batch_results_raise_the_first_refusal_with_every_result(self):
        batch = C.get_many("q", 3)
        replies = [(P.MSG, b"a"), (P.ERR, "FULL", "no room"), (P.ERR, "TOO_LARGE", "")]
        with self.assertRaises(beuss.FullError) as cm:
            C.batch_results(replies, batch.result)
        self.assertEqual(cm.exception.results, [b"a", None, None])  # type: ignore[attr-defined]
        # OK <n> replies read in bulk come as ints.
        self.assertEqual(C.batch_results([5, (P.OK, [b"6"])], C.put_many("q", []).result), [5, 6])


if __name__ == "__main__":
    unittest.main()
