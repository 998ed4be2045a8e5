"""At-least-once delivery with the blocking client against a real beuss-server."""

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
