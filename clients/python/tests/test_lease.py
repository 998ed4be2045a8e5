"""At-least-once delivery with the blocking client against a real beuss-server."""

import unittest

import beuss

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


if __name__ == "__main__":
    unittest.main()
