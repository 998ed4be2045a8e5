"""The consumer and subscription state both clients share (beuss._consumer), without a server."""

import unittest
from typing import List, Tuple

import beuss
from beuss import _protocol as P
from beuss._consumer import ConsumerState, SubscriptionState, deliver, forget
from beuss.errors import ProtocolError


class _Grants:
    """Records the CREDIT a consumer state asks its client to send."""

    def __init__(self) -> None:
        self.sent: List[Tuple[bytes, int]] = []

    def _grant(self, consumer: ConsumerState["_Grants"], n: int) -> None:
        self.sent.append((consumer.queue_bytes, n))


class ConsumerStateTest(unittest.TestCase):
    def test_credit_goes_back_in_half_prefetch_batches(self):
        client = _Grants()
        state = ConsumerState(client, b"q", 4, None)
        for i in range(5):
            state._push(b"%d" % i)
        self.assertEqual([state._take().data for _ in range(5)], [b"0", b"1", b"2", b"3", b"4"])
        self.assertEqual(client.sent, [(b"q", 2), (b"q", 2)])
        self.assertEqual(state.received_count, 5)

    def test_credit_never_goes_beyond_max(self):
        client = _Grants()
        state = ConsumerState(client, b"q", 4, 5)
        for i in range(5):
            state._push(b"%d" % i)
        for _ in range(5):
            state._take()
        self.assertEqual(client.sent, [(b"q", 1)])  # 4 at ON, then 1: 5 in all
        self.assertTrue(state._reached_max())

    def test_no_credit_under_a_lease(self):
        client = _Grants()
        state = ConsumerState(client, b"q", 2, None, leased=True)
        state._push((b"x", "9", 1))
        msg = state._take()
        self.assertIsInstance(msg, beuss.LeasedMessage)
        self.assertEqual(client.sent, [])

    def test_take_all_empties_the_buffer(self):
        state = ConsumerState(_Grants(), b"q", 2, None)
        state._push(b"a")
        state._push(b"b")
        self.assertEqual([m.data for m in state._take_all()], [b"a", b"b"])
        self.assertEqual(state._take_all(), [])


class SubscriptionStateTest(unittest.TestCase):
    def test_the_oldest_event_is_dropped_and_counted(self):
        state = SubscriptionState(_Grants(), b"ch", 2)
        for data in (b"a", b"b", b"c"):
            state._event(data)
        state._lost(3)  # the server dropped 3 more
        state._event(b"d")
        self.assertEqual((state.received_count, state.dropped), (4, 5))
        # "a" and "b", dropped by the client past max_buffered, count before "c";
        # the server's 3 before "d".
        events = [(e.data, e.dropped_before) for e in state._buf]
        self.assertEqual(events, [(b"c", 2), (b"d", 3)])


class DeliverTest(unittest.TestCase):
    def test_pushes_and_events_go_to_their_consumer_or_subscription(self):
        consumer = ConsumerState(_Grants(), b"q", 2, None)
        sub = SubscriptionState(_Grants(), b"ch", 10)
        consumers, subs = {b"q": consumer}, {b"ch": sub}
        self.assertTrue(deliver((P.PUSH, b"q", b"x"), consumers, subs))
        self.assertTrue(deliver((P.PUSH, b"q", b"y", "5", 1), consumers, subs))
        self.assertEqual(list(consumer._buf), [b"x", (b"y", "5", 1)])
        self.assertTrue(deliver((P.EVENT, b"ch", b"e"), consumers, subs))
        self.assertTrue(deliver((P.DROPPED, b"ch", 2), consumers, subs))
        self.assertTrue(deliver((P.EVENT, b"gone", b"e"), consumers, subs))  # after UNSUB: dropped
        self.assertEqual((sub.received_count, sub.dropped), (1, 2))
        self.assertFalse(deliver((P.OK, []), consumers, subs))
        self.assertRaises(ProtocolError, deliver, (P.PUSH, b"other", b"x"), consumers, subs)

    def test_forget_leaves_a_newer_registration(self):
        old, new = ConsumerState(_Grants(), b"q", 2, None), ConsumerState(_Grants(), b"q", 2, None)
        feeds = {b"q": new}
        forget(feeds, b"q", old)
        self.assertIs(feeds[b"q"], new)
        forget(feeds, b"q", new)
        self.assertEqual(feeds, {})


if __name__ == "__main__":
    unittest.main()
