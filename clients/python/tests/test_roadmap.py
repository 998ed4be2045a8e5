"""Channels (publish/subscribe), delayed puts and schedules, with both clients, against a real beuss-server."""

import datetime
import threading
import time
import unittest

import beuss
import beuss.aio
from beuss import _protocol as P

from .helpers import Server, wait_until
from .test_aio import AioTestCase
from .test_client import ServerTestCase


class ProtocolTest(unittest.TestCase):
    def test_event_and_dropped_frames_in_any_split(self):
        wire = b"EVENT news 5\r\nhel\nl\r\nDROPPED news 7\r\nOK 2\r\nEVENT x 0\r\n\r\n"
        want = [(P.EVENT, b"news", b"hel\nl"), (P.DROPPED, b"news", 7), (P.OK, [b"2"]), (P.EVENT, b"x", b"")]
        for step in (len(wire), 1):
            p = P.ReplyParser()
            got = []
            for i in range(0, len(wire), step):
                p.feed(wire[i : i + step])
                while True:
                    f = p.next()
                    if f is None:
                        break
                    got.append(f)
            self.assertEqual(got, want)
        p = P.ReplyParser()
        p.feed(b"DROPPED news x\r\n")
        with self.assertRaises(beuss.ProtocolError):
            p.next()

    def test_when_suffix(self):
        self.assertEqual(P.when_suffix("1h30m", None), b" DELAY 5400000")
        self.assertEqual(P.when_suffix(0.25, None), b" DELAY 250")
        at = datetime.datetime(2026, 12, 1, 8, 0, tzinfo=datetime.timezone.utc)
        self.assertEqual(P.when_suffix(None, at), b" AT 1796112000000")
        self.assertEqual(P.when_suffix(None, None), b"")
        for delay, when in (("soon", None), (-1, None), (None, datetime.datetime(2026, 12, 1)), (1, 1)):
            with self.assertRaises(beuss.InvalidArgumentError):
                P.when_suffix(delay, when)


class SyncChannelsTest(ServerTestCase):
    def test_five_subscribers_get_every_message_in_order(self):
        ch = self.q("-ch")
        clients = [self.connect() for _ in range(5)]
        subs = [c.subscribe(ch) for c in clients]
        pub = self.connect()
        for i in range(200):
            self.assertEqual(pub.publish(ch, f"m{i}"), 5)
        for sub in subs:
            got = [sub.next(timeout=10).text() for _ in range(200)]
            self.assertEqual(got, [f"m{i}" for i in range(200)])
        for sub in subs:
            sub.close()
        self.assertEqual(pub.publish(ch, "late"), 0)

    def test_iteration_ends_on_close_from_another_thread_and_errors(self):
        ch = self.q("-ch")
        c = self.connect()
        sub = c.subscribe(ch)
        with self.assertRaises(beuss.AlreadySubscribedError):
            c.subscribe(ch)
        p = self.connect()
        got = []

        def reader():
            for ev in sub:
                got.append(ev.data)

        t = threading.Thread(target=reader)
        t.start()
        p.publish(ch, b"a")
        self.assertTrue(wait_until(lambda: got == [b"a"]))
        c.close()
        t.join(10)
        self.assertFalse(t.is_alive())

    def test_a_slow_loop_loses_the_oldest_past_max_buffered(self):
        ch = self.q("-ch")
        c = self.connect()
        sub = c.subscribe(ch, max_buffered=3)
        p = self.connect()
        for i in range(10):
            p.publish(ch, str(i))
        c.ping()  # the events came before the PONG: all are read
        self.assertEqual(sub.received_count, 10)
        self.assertEqual(sub.dropped, 7)
        evs = [sub.next(timeout=5) for _ in range(3)]
        self.assertEqual([e.text() for e in evs], ["7", "8", "9"])
        self.assertEqual([e.dropped_before for e in evs], [7, 0, 0])
        self.assertIsNone(sub.next(timeout=0.05))


class SyncDelayedAndSchedulesTest(ServerTestCase):
    def test_delayed_messages_appear_at_their_time_in_order(self):
        c = self.connect()
        q = self.q()
        # Seconds, not hundreds of ms: the checks below must run before either is due.
        c.put(q, b"later", delay="3s")
        c.put(q, b"sooner", at=time.time() + 2)
        self.assertEqual(c.len(q), 0)
        self.assertIsNone(c.get(q))
        info = [x for x in c.queues() if x.name == q][0]
        self.assertEqual((info.ready, info.scheduled), (0, 2))
        self.assertEqual(c.get(q, wait=10), b"sooner")
        self.assertEqual(c.get(q, wait=10), b"later")

    def test_schedule_add_ls_rm(self):
        c = self.connect()
        q = self.q()
        now = datetime.datetime.now(datetime.timezone.utc)
        before = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the server counts ms
        nxt = c.schedule_add("py-tick", q, "@every 1s", b"tick")
        # The server's wall time is its floored monotonic clock plus an offset:
        # it may trail this process by 1-2 ms (as in the Node tests).
        self.assertGreaterEqual(nxt, before + datetime.timedelta(seconds=1) - datetime.timedelta(milliseconds=2))
        ls = [s for s in c.schedules() if s.name == "py-tick"]
        self.assertEqual(len(ls), 1)
        self.assertEqual((ls[0].queue, ls[0].spec, ls[0].fired), (q, "@every 1s", 0))
        self.assertEqual(c.get(q, wait=10), b"tick")
        c.schedule_remove("py-tick")
        with self.assertRaises(beuss.NoScheduleError):
            c.schedule_remove("py-tick")
        with self.assertRaisesRegex(beuss.BadScheduleError, "fields"):
            c.schedule_add("py-bad", q, "* * *")
        with self.assertRaises(beuss.InvalidArgumentError):
            c.schedule_add("py-bad", q, "0 1 * * *\nx")


class AioRoadmapTest(AioTestCase):
    async def test_publish_subscribe_delay_and_schedules(self):
        ch = self.q("-ch")
        subs_clients = [await self.connect() for _ in range(3)]
        subs = [await c.subscribe(ch) for c in subs_clients]
        pub = await self.connect()
        for i in range(50):
            self.assertEqual(await pub.publish(ch, f"m{i}"), 3)
        for sub in subs:
            got = []
            async for ev in sub:
                got.append(ev.text())
                if len(got) == 50:
                    break
            self.assertEqual(got, [f"m{i}" for i in range(50)])
            await sub.close()
        self.assertEqual(await pub.publish(ch, "late"), 0)

        q = self.q()
        await pub.put(q, b"d", delay=2)
        self.assertEqual(await pub.len(q), 0)
        self.assertEqual(await pub.get(q, wait=10), b"d")

        await pub.schedule_add("aio-tick", q, "@every 1s", b"t")
        self.assertIn("aio-tick", [s.name for s in await pub.schedules()])
        self.assertEqual(await pub.get(q, wait=10), b"t")
        await pub.schedule_remove("aio-tick")
        with self.assertRaises(beuss.NoScheduleError):
            await pub.schedule_remove("aio-tick")


class StalledSubscriberTest(unittest.TestCase):
    def test_server_drops_for_a_stalled_subscriber_and_says_how_many(self):
        srv = Server(["--sub-buffer", "5"])
        self.addCleanup(srv.stop)
        c = beuss.connect(srv.host, srv.port)
        self.addCleanup(c.close)
        sub = c.subscribe("stall")
        p = beuss.connect(srv.host, srv.port)
        self.addCleanup(p.close)
        # The subscriber does not read: its socket fills, then the server
        # keeps 5 events and drops older ones.
        big = b"x" * 8000
        for i in range(2000):
            p.publish("stall", b"%08d" % i + big)
        seen, dropped, last = 0, 0, -1
        while last < 1999:
            ev = sub.next(timeout=20)
            self.assertIsNotNone(ev)
            i = int(ev.data[:8])
            dropped += ev.dropped_before
            self.assertEqual(i, seen + dropped)
            seen += 1
            last = i
        self.assertGreater(dropped, 0)
        self.assertEqual(sub.dropped, dropped)
        self.assertEqual(p.stats()["events_dropped"], dropped)


if __name__ == "__main__":
    unittest.main()
