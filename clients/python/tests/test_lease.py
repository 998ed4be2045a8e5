"""At-least-once delivery (leases, consume with a lease, work()) with both clients against a real beuss-server."""

import asyncio
import unittest

import beuss

from .helpers import wait_until
from .test_client import ServerTestCase


class LeaseTest(ServerTestCase):
    def test_get_leased_ack_nack_touch_dead_letter(self):
        c, other = self.connect(), self.connect()
        if True:
            q = self.q()
            c.put(q, b"job")
            m = c.get_leased(q, lease=30)
            self.assertIsInstance(m, beuss.LeasedMessage)
            self.assertEqual((m.data, m.deliveries), (b"job", 1))
            self.assertEqual(c.len(q), 0)
            with self.assertRaises(beuss.UnknownLeaseError):
                other.ack(m.id)
            m.touch(60)
            m.nack()
            m2 = c.get_leased(q, lease=30, max_deliver=2)
            self.assertEqual((m2.data, m2.deliveries), (b"job", 2))
            self.assertNotEqual(m2.id, m.id)
            m2.nack()
            self.assertEqual(c.len(q), 0)
            self.assertEqual(c.len(q + ".dead"), 1)
            info = {i.name: i for i in c.queues()}
            self.assertEqual(info[q].dead, 1)
            d = c.get_leased(q + ".dead", lease=30)
            d.ack()
            with self.assertRaises(beuss.UnknownLeaseError):
                d.ack()
            self.assertIsNone(c.get_leased(q, lease=1, wait=0.05))

    def test_leases_return_when_the_client_disconnects(self):
        q = self.q()
        with beuss.connect(self.server.host, self.server.port) as c:
            c.put_many(q, [b"1", b"2", b"3"])
            held = [c.get_leased(q, lease=60) for _ in range(2)]
            self.assertEqual([m.data for m in held], [b"1", b"2"])
        with beuss.connect(self.server.host, self.server.port) as c:
            again = [c.get_leased(q, lease=60, wait=5) for _ in range(3)]
            self.assertEqual([(m.data, m.deliveries) for m in again], [(b"1", 2), (b"2", 2), (b"3", 1)])
            for m in again:
                m.ack()
            self.assertEqual(c.len(q), 0)

    def test_consume_with_a_lease_holds_at_most_prefetch_and_acks(self):
        q = self.q()
        c, p = self.connect(), self.connect()
        p.put_many(q, [b"a", b"b", b"c", b"d"])
        consumer = c.consume(q, prefetch=2, lease=30)
        first = consumer.next(timeout=5)
        self.assertIsInstance(first, beuss.LeasedMessage)
        self.assertEqual((first.data, first.deliveries), (b"a", 1))
        # Nothing settled: two leased (one handed out, one buffered), two ready.
        self.assertTrue(wait_until(lambda: {i.name: i for i in p.queues()}[q].leased == 2))
        self.assertEqual({i.name: i for i in p.queues()}[q].ready, 2)
        first.ack()
        second = consumer.next(timeout=5)
        second.nack()
        # c was pushed when a was acknowledged, b again (count 2) when it was NACKed;
        # d waits on the server until one of them is settled.
        got = [consumer.next(timeout=5) for _ in range(2)]
        self.assertEqual([(m.data, m.deliveries) for m in got], [(b"c", 1), (b"b", 2)])
        self.assertIsNone(consumer.next(timeout=0.1))
        for m in got:
            m.ack()
        last = consumer.next(timeout=5)
        self.assertEqual((last.data, last.deliveries), (b"d", 1))
        last.ack()
        consumer.close()
        self.assertTrue(wait_until(lambda: {i.name: i for i in p.queues()}[q].leased == 0))
        self.assertEqual(p.len(q), 0)



def _info(c, q):
    """Returns the QueueInfo of ``q`` seen by the blocking client ``c``."""
    return {i.name: i for i in c.queues()}[q]


class WorkTest(ServerTestCase):
    """The blocking client's work() and leases returned when a consumer's connection closes."""

    def test_work_retries_a_failing_message_then_dead_letters_it_and_handles_the_rest_in_order(self):
        q = self.q()
        c, p = self.connect(), self.connect()
        p.put_many(q, [b"bad", b"m1", b"m2", b"m3"])
        tries, done, errors = [], [], []

        def handler(msg):
            if msg.data == b"bad":
                tries.append(msg.deliveries)
                raise RuntimeError("cannot handle " + msg.text())
            done.append(msg.data)

        n = c.work(q, handler, lease=30, max_deliver=3, count=6, on_error=lambda e, m: errors.append((str(e), m.deliveries)))
        self.assertEqual(n, 6)
        self.assertEqual(tries, [1, 2, 3])
        self.assertEqual(done, [b"m1", b"m2", b"m3"])
        self.assertEqual(errors, [("cannot handle bad", 1), ("cannot handle bad", 2), ("cannot handle bad", 3)])
        self.assertEqual(p.len(q), 0)
        self.assertEqual(p.get(q + ".dead"), b"bad")
        self.assertTrue(wait_until(lambda: _info(p, q).leased == 0))

    def test_work_acks_after_the_handler_and_gives_back_what_it_did_not_handle(self):
        q = self.q()
        c, p = self.connect(), self.connect()
        p.put_many(q, [b"a", b"b", b"c", b"d"])
        seen = []
        # Credit 2 (count caps it) pushes a and b; acking a gives credit back and
        # c is pushed too, though only two are handled: c must be given back.
        # Taking b, the second, ends the subscription: d is never pushed.
        self.assertEqual(c.work(q, lambda m: seen.append(m.data), prefetch=4, count=2), 2)
        self.assertEqual(seen, [b"a", b"b"])
        self.assertTrue(wait_until(lambda: _info(p, q).leased == 0))
        rest = [p.get_leased(q, lease=30) for _ in range(2)]
        self.assertEqual([(m.data, m.deliveries) for m in rest], [(b"c", 2), (b"d", 1)])
        for m in rest:
            m.ack()
        self.assertEqual(c.len(q), 0)

    def test_work_leaves_a_message_the_handler_settled_itself(self):
        q = self.q()
        c, p = self.connect(), self.connect()
        p.put(q, b"x")

        def handler(msg):
            msg.touch(60)
            msg.nack(delay=0.05)  # work() must not ACK it after this

        self.assertEqual(c.work(q, handler, count=1), 1)
        m = p.get_leased(q, lease=30, wait=5)
        self.assertEqual((m.data, m.deliveries), (b"x", 2))
        m.ack()

    def test_work_returns_when_the_client_is_closed_from_another_thread(self):
        import threading

        q = self.q()
        c, p = self.connect(), self.connect()
        p.put(q, b"one")
        handled = threading.Event()
        out = []

        def run():
            out.append(c.work(q, lambda m: handled.set()))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.assertTrue(handled.wait(10))
        self.assertTrue(wait_until(lambda: _info(p, q).leased == 0))  # acknowledged
        c.close()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(out, [1])
        self.assertEqual(p.len(q), 0)

    def test_work_checks_its_arguments_before_subscribing(self):
        c = self.connect()
        q = self.q()
        self.assertRaises(beuss.InvalidArgumentError, c.work, q, "not callable")
        self.assertRaises(beuss.InvalidArgumentError, c.work, q, print, count=0)
        self.assertRaises(beuss.InvalidArgumentError, c.work, q, print, retry_delay=-1)
        self.assertRaises(beuss.InvalidArgumentError, c.work, q, print, lease=0)
        # None of them subscribed: the queue can still be consumed on this client.
        self.assertEqual(c.consume(q, lease=1).close(), [])

    def test_leases_held_by_a_closed_consumer_go_to_another_consumer(self):
        q = self.q()
        p = self.connect()
        p.put_many(q, [b"a", b"b", b"c", b"d", b"e"])
        first = beuss.connect(self.server.host, self.server.port)
        try:
            held = first.consume(q, prefetch=3, lease=60)
            self.assertEqual(held.next(timeout=5).data, b"a")  # a handed out, b and c pushed: none settled
            self.assertTrue(wait_until(lambda: _info(p, q).leased == 3))
            second = self.connect().consume(q, prefetch=10, lease=60)
            got = [second.next(timeout=5) for _ in range(2)]
        finally:
            first.close()
        got += [second.next(timeout=5) for _ in range(3)]
        self.assertEqual(
            [(m.data, m.deliveries) for m in got], [(b"d", 1), (b"e", 1), (b"a", 2), (b"b", 2), (b"c", 2)]
        )
        for m in got:
            m.ack()
        self.assertTrue(wait_until(lambda: _info(p, q).leased == 0))
        self.assertEqual(p.len(q), 0)


class AioLeasedConsumeTest(ServerTestCase):
    """beuss.aio: consume(lease=...) and work()."""

    def aio(self, coro_fn):
        async def run():
            from beuss import aio

            c = await aio.connect(self.server.host, self.server.port)
            try:
                await coro_fn(c)
            finally:
                await c.close()

        asyncio.run(asyncio.wait_for(run(), 60))

    def test_leased_consume_acks_and_redelivers_on_nack(self):
        q = self.q()
        p = self.connect()
        p.put_many(q, [b"a", b"b", b"c", b"d"])

        async def body(c):
            consumer = c.consume(q, prefetch=2, lease=30, max_deliver=4)
            self.assertTrue(consumer.leased)
            first = await consumer.next(timeout=5)
            self.assertIsInstance(first, beuss.LeasedMessage)
            self.assertEqual((first.data, first.deliveries), (b"a", 1))
            # Nothing settled: two leased (one handed out, one buffered), two ready.
            self.assertTrue(await asyncio.to_thread(wait_until, lambda: _info(p, q).leased == 2))
            self.assertEqual(_info(p, q).ready, 2)
            await first.ack()
            second = await consumer.next(timeout=5)
            self.assertEqual(second.data, b"b")
            await second.nack()
            # The ACK gave back the credit that pushed c, the NACK the one that pushed b again.
            got = [await consumer.next(timeout=5) for _ in range(2)]
            self.assertEqual([(m.data, m.deliveries) for m in got], [(b"c", 1), (b"b", 2)])
            self.assertIsNone(await consumer.next(timeout=0.1))  # d waits on the server: no credit
            for m in got:
                await m.ack()
            last = await consumer.next(timeout=5)
            self.assertEqual((last.data, last.deliveries), (b"d", 1))
            await last.ack()
            with self.assertRaises(beuss.UnknownLeaseError):
                await last.ack()
            self.assertEqual(await consumer.close(), [])

        self.aio(body)
        self.assertTrue(wait_until(lambda: _info(p, q).leased == 0))
        self.assertEqual(p.len(q), 0)

    def test_consume_rejects_max_deliver_without_lease(self):
        async def body(c):
            with self.assertRaises(beuss.InvalidArgumentError):
                c.consume(self.q(), max_deliver=3)
            with self.assertRaises(beuss.InvalidArgumentError):
                c.consume(self.q(), lease=0)

        self.aio(body)

    def test_work_retries_a_failing_message_then_dead_letters_it_and_handles_the_rest_in_order(self):
        q = self.q()
        p = self.connect()
        p.put_many(q, [b"m1", b"bad", b"m2", b"m3"])
        tries, done, errors = [], [], []

        async def handler(msg):
            await asyncio.sleep(0)
            if msg.data == b"bad":
                tries.append(msg.deliveries)
                raise ValueError("bad")
            done.append(msg.data)

        async def body(c):
            n = await c.work(q, handler, lease=30, max_deliver=2, count=5, on_error=lambda e, m: errors.append(type(e)))
            self.assertEqual(n, 5)

        self.aio(body)
        self.assertEqual(tries, [1, 2])
        self.assertEqual(done, [b"m1", b"m2", b"m3"])
        self.assertEqual(errors, [ValueError, ValueError])
        self.assertEqual(p.len(q), 0)
        self.assertEqual(p.get_many(q + ".dead", 5), [b"bad"])
        self.assertTrue(wait_until(lambda: _info(p, q).leased == 0))

    def test_cancelled_work_gives_its_message_back(self):
        q = self.q()
        p = self.connect()
        p.put_many(q, [b"slow", b"next"])

        async def body(c):
            started = asyncio.Event()

            async def handler(msg):
                started.set()
                await asyncio.sleep(3600)

            # A plain function is called as is.
            seen = []
            await c.put(q + "-sync", b"s")
            self.assertEqual(await c.work(q + "-sync", lambda m: seen.append(m.data), count=1), 1)
            self.assertEqual(seen, [b"s"])
            info = {i.name: i for i in await c.queues()}[q + "-sync"]
            self.assertEqual((info.ready, info.leased), (0, 0))  # acknowledged

            task = asyncio.ensure_future(c.work(q, handler, prefetch=2))
            await asyncio.wait_for(started.wait(), 10)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            await c.ping()  # the NACKs were sent before this

        self.aio(body)
        self.assertTrue(wait_until(lambda: _info(p, q).leased == 0))
        back = [p.get_leased(q, lease=30) for _ in range(2)]
        self.assertEqual([(m.data, m.deliveries) for m in back], [(b"slow", 2), (b"next", 2)])

    def test_leases_held_by_a_closed_consumer_go_to_another_consumer(self):
        q = self.q()
        p = self.connect()
        p.put_many(q, [b"a", b"b", b"c"])

        async def body(c):
            from beuss import aio

            first = await aio.connect(self.server.host, self.server.port)
            held = first.consume(q, prefetch=2, lease=60)
            self.assertEqual((await held.next(timeout=5)).data, b"a")
            self.assertTrue(await asyncio.to_thread(wait_until, lambda: _info(p, q).leased == 2))
            other = c.consume(q, prefetch=5, lease=60)
            self.assertEqual((await other.next(timeout=5)).data, b"c")
            await first.close(force=True)
            got = [await other.next(timeout=5) for _ in range(2)]
            self.assertEqual([(m.data, m.deliveries) for m in got], [(b"a", 2), (b"b", 2)])
            for m in got:
                await m.ack()
            await other.close()

        self.aio(body)


class AioLeaseTest(ServerTestCase):
    def test_asyncio_get_leased_ack_nack(self):
        import asyncio

        from beuss import aio

        q = self.q()

        async def run():
            c = await aio.connect(self.server.host, self.server.port)
            try:
                await c.put(q, b"z")
                m = await c.get_leased(q, lease=30)
                self.assertEqual((m.data, m.deliveries), (b"z", 1))
                await m.touch(60)
                await m.nack()
                m2 = await c.get_leased(q, lease=30, max_deliver=3)
                self.assertEqual(m2.deliveries, 2)
                await m2.ack()
                with self.assertRaises(beuss.UnknownLeaseError):
                    await m2.ack()
                self.assertIsNone(await c.get_leased(q, lease=1))
            finally:
                await c.close()

        asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
