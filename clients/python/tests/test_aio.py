"""The asyncio client against a real beuss-server process."""

import asyncio
import os
import unittest
from typing import Dict, List

import beuss
import beuss.aio

from .helpers import Server


class QuietAsyncTestCase(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        # unittest runs the loop in debug mode, which warns about any step
        # over 0.1 s (a server starting, a 10,000-message batch): not a fault here.
        asyncio.get_running_loop().slow_callback_duration = 10.0


class AioTestCase(QuietAsyncTestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    async def connect(self) -> beuss.aio.Client:
        c = await beuss.aio.connect(self.server.host, self.server.port)
        self.addAsyncCleanup(c.close)
        return c

    def q(self, suffix: str = "") -> str:
        return "aio-" + self.id().rsplit(".", 1)[-1] + suffix


class AioBasicsTest(AioTestCase):
    async def test_context_manager_and_round_trip(self):
        async with beuss.aio.connect(self.server.host, self.server.port) as c:
            q = self.q()
            self.assertGreater(await c.ping(), 0)
            self.assertEqual(await c.put(q, "héllo"), len("héllo".encode()))
            self.assertEqual(await c.peek(q), "héllo".encode())
            self.assertEqual(await c.len(q), 1)
            self.assertEqual(await c.get(q), "héllo".encode())
            self.assertIsNone(await c.get(q))
            self.assertIsNone(await c.get(q, wait=0.05))
        self.assertTrue(c.closed)
        with self.assertRaises(beuss.ConnectionError) as cm:
            await c.ping()
        self.assertEqual(cm.exception.code, "CONNECTION_CLOSED")

    async def test_fifo_order_of_10000_messages(self):
        c = await self.connect()
        q = self.q()
        msgs = [b"%05d:" % i + os.urandom(i % 40) for i in range(10_000)]
        self.assertEqual(await c.put_many(q, msgs), [len(m) for m in msgs])
        self.assertEqual(await c.len(q), 10_000)
        self.assertEqual(await c.get_many(q, 10_000), msgs)
        self.assertIsNone(await c.get(q))

    async def test_concurrent_calls_are_pipelined_and_each_gets_its_reply(self):
        c = await self.connect()
        q = self.q()
        results = await asyncio.gather(*(c.put(q, b"x" * i) for i in range(1000)))
        self.assertEqual(results, list(range(1000)))
        self.assertEqual(await c.len(q), 1000)
        got = await asyncio.gather(*(c.get(q) for _ in range(1000)), c.len(q))
        self.assertEqual(got, [b"x" * i for i in range(1000)] + [0])

    async def test_every_byte_value_and_truncation(self):
        c = await self.connect()
        q = self.q()
        every = bytes(range(256))
        big = every * 80
        self.assertEqual(await c.put_many(q, [every, big]), [256, 10240])
        self.assertEqual(await c.get(q), every)
        self.assertEqual(await c.get(q), big[:10240])

    async def test_queues_stats_purge(self):
        c = await self.connect()
        q = self.q()
        await c.put_many(q, [b"a", b"b"])
        self.assertIn(beuss.QueueInfo(q, 2, 0), await c.queues())
        self.assertEqual((await c.stats())["protocol"], 2)
        self.assertEqual(await c.purge(q), 2)

    async def test_a_cancelled_call_leaves_the_connection_in_sync(self):
        c = await self.connect()
        producer = await self.connect()
        q = self.q()
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(c.get(q, wait=30), 0.05)
        # The server still holds that GET; the next message answers it, and
        # the following call gets its own reply, not the abandoned one's.
        await producer.put(q, b"for the abandoned GET")
        await producer.put(q, b"mine")
        self.assertEqual(await c.get(q), b"mine")

    async def test_close_waits_for_calls_made_before(self):
        c = await beuss.aio.connect(self.server.host, self.server.port)
        q = self.q()
        puts = [asyncio.ensure_future(c.put(q, b"%d" % i)) for i in range(100)]
        await asyncio.sleep(0)  # the tasks have queued their requests
        await c.close()
        self.assertEqual([p.result() for p in puts], [len(b"%d" % i) for i in range(100)])
        self.assertIsNone(await c.wait_closed())
        other = await self.connect()
        self.assertEqual(await other.len(q), 100)

    async def test_forced_close_fails_the_calls_waiting(self):
        c = await beuss.aio.connect(self.server.host, self.server.port)
        waiting = asyncio.ensure_future(c.get(self.q(), wait=30))
        await asyncio.sleep(0)
        await c.close(force=True)
        with self.assertRaises(beuss.ConnectionError) as cm:
            await waiting
        self.assertEqual(cm.exception.code, "CONNECTION_CLOSED")

    async def test_errors(self):
        c = await self.connect()
        with self.assertRaises(beuss.BadQueueNameError):
            await c.put("a b", b"x")
        with self.assertRaises(beuss.InvalidArgumentError):
            await c.put(self.q(), 3.5)
        with self.assertRaises(beuss.InvalidArgumentError):
            await c.get(self.q(), wait=-1)
        with self.assertRaises(beuss.UnknownCommandError):
            await c._call(b"NOPE\r\n")
        self.assertGreater(await c.ping(), 0)

    async def test_connection_refused(self):
        with self.assertRaises(beuss.ConnectionError) as cm:
            await beuss.aio.connect("127.0.0.1", 1)
        self.assertEqual(cm.exception.code, "ECONNREFUSED")


class AioConsumeTest(AioTestCase):
    async def test_async_for_by_push_in_order(self):
        producer = await self.connect()
        c = await self.connect()
        q = self.q()
        msgs = [b"%05d" % i for i in range(10_000)]
        pushed_before = (await producer.stats())["pushed"]
        await producer.put_many(q, msgs)
        got = []
        async with c.consume(q, prefetch=128, max=10_000) as consumer:
            async for m in consumer:
                self.assertEqual(m.queue, q)
                got.append(m.data)
        self.assertEqual(got, msgs)
        self.assertEqual((await producer.stats())["pushed"] - pushed_before, 10_000)
        self.assertEqual(await producer.len(q), 0)

    async def test_credit_bounds_what_the_server_pushes(self):
        producer = await self.connect()
        c = await self.connect()
        q = self.q()
        await producer.put_many(q, [b"%d" % i for i in range(50)])
        consumer = c.consume(q, prefetch=4)
        await c.ping()
        self.assertEqual(len(consumer._buf), 4)
        self.assertEqual(await producer.len(q), 46)
        self.assertEqual((await consumer.next(timeout=10)).data, b"0")
        self.assertEqual((await consumer.next(timeout=10)).data, b"1")
        await c.ping()
        self.assertEqual(await producer.len(q), 44)
        left = await consumer.close()
        self.assertEqual([m.data for m in left], [b"2", b"3", b"4", b"5"])

    async def test_leaving_async_with_keeps_what_was_pushed(self):
        producer = await self.connect()
        c = await self.connect()
        q = self.q()
        await producer.put_many(q, [b"%d" % i for i in range(10)])
        async with c.consume(q, prefetch=8) as consumer:
            async for m in consumer:
                self.assertEqual(m.data, b"0")
                break
        self.assertFalse(consumer.active)
        self.assertEqual(await producer.len(q), 2)
        self.assertEqual([m.data async for m in consumer], [b"%d" % i for i in range(1, 8)])

    async def test_two_consumers_share_a_queue(self):
        producer = await self.connect()
        a_client = await self.connect()
        b_client = await self.connect()
        q = self.q()
        n = 2000
        seen: Dict[str, List[int]] = {"a": [], "b": []}
        done = asyncio.Event()

        async def run(name: str, consumer: beuss.aio.Consumer) -> None:
            async with consumer:
                while not done.is_set():
                    m = await consumer.next(timeout=0.05)
                    if m is not None:
                        seen[name].append(int(m.data))
                        if len(seen["a"]) + len(seen["b"]) >= n:
                            done.set()

        ca = a_client.consume(q, prefetch=8)
        cb = b_client.consume(q, prefetch=8)
        await a_client.ping()
        await b_client.ping()
        tasks = [asyncio.ensure_future(run("a", ca)), asyncio.ensure_future(run("b", cb))]
        await producer.put_many(q, [b"%d" % i for i in range(n)])
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        a, b = seen["a"], seen["b"]
        self.assertEqual(sorted(a + b), list(range(n)))
        self.assertEqual(a, sorted(a))
        self.assertEqual(b, sorted(b))
        self.assertGreater(len(a), 0)
        self.assertGreater(len(b), 0)

    async def test_a_waiting_task_is_woken_when_another_waiter_is_cancelled(self):
        producer = await self.connect()
        c = await self.connect()
        q = self.q()
        consumer = c.consume(q, prefetch=4)
        await c.ping()
        first = asyncio.ensure_future(consumer.next())
        second = asyncio.ensure_future(consumer.next())
        await asyncio.sleep(0)  # both wait on the consumer
        second.cancel()
        await producer.put(q, b"for the first")
        # Not a speed check: the bound only turns a task that was never woken into a failure.
        msg = await asyncio.wait_for(first, 30)
        self.assertEqual(msg.data, b"for the first")
        self.assertTrue(second.cancelled())
        await consumer.close()

    async def test_tasks_sharing_one_consumer_split_its_messages(self):
        producer = await self.connect()
        c = await self.connect()
        q = self.q()
        n = 2000
        consumer = c.consume(q, prefetch=32)
        seen: List[int] = []

        async def take() -> None:
            while True:
                m = await consumer.next()
                if m is None:  # unsubscribed below, once all were seen
                    return
                seen.append(int(m.data))
                if len(seen) == n:
                    await consumer.unsubscribe()

        takers = [asyncio.ensure_future(take()) for _ in range(3)]
        await asyncio.sleep(0)  # all three wait on the same consumer
        for i in range(0, n, 100):
            await producer.put_many(q, [b"%d" % j for j in range(i, i + 100)])
        await asyncio.wait_for(asyncio.gather(*takers), 60)
        self.assertEqual(sorted(seen), list(range(n)))

    async def test_refused_on_is_raised_by_the_first_step(self):
        c = await self.connect()
        q = self.q()
        # Subscribe behind the client's back, so the client's own ON is refused by the server.
        await c._call(b"ON %s\r\n" % q.encode())
        consumer = c.consume(q)
        with self.assertRaises(beuss.AlreadySubscribedError):
            await consumer.next(timeout=10)
        self.assertFalse(consumer.active)


class AioRejectModeTest(QuietAsyncTestCase):
    async def test_refused_messages_in_a_batch(self):
        server = Server(["--oversize", "reject", "--max-message-size", "100"])
        self.addCleanup(server.stop)
        async with beuss.aio.connect(server.host, server.port) as c:
            msgs = [b"a" * 10, b"b" * 101, b"c" * 100] * 2000
            with self.assertRaises(beuss.TooLargeError) as cm:
                await c.put_many("r", msgs)
            self.assertEqual(cm.exception.code, "TOO_LARGE")
            self.assertEqual(cm.exception.results, [10, None, 100] * 2000)
            self.assertEqual(await c.get_many("r", 5000), [m for m in msgs if len(m) <= 100])
            with self.assertRaises(beuss.TooLargeError):
                await c.put("r", b"x" * 101)
            self.assertEqual(await c.put("r", b"x" * 100), 100)


class AioStoppedServerTest(QuietAsyncTestCase):
    async def test_calls_and_consumers_fail_when_the_server_stops(self):
        server = Server()
        try:
            c = await beuss.aio.connect(server.host, server.port)
            c2 = await beuss.aio.connect(server.host, server.port)
            consumer = c2.consume("jobs", prefetch=4)
            await c.put_many("jobs", [b"1", b"2"])
            await c2.ping()
            waiting = asyncio.ensure_future(c.get("never", wait=60))
            await asyncio.sleep(0)  # let the GET go out
        finally:
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
        # The stopping server answers a GET it holds, or the connection just ends.
        with self.assertRaises((beuss.ConnectionError, beuss.ShuttingDownError)):
            await asyncio.wait_for(waiting, 30)
        self.assertEqual((await consumer.next(timeout=10)).data, b"1")
        self.assertEqual((await consumer.next(timeout=10)).data, b"2")
        with self.assertRaises(beuss.ConnectionError):
            await consumer.next(timeout=10)
        self.assertIsInstance(await c.wait_closed(), beuss.ConnectionError)
        await c.close()
        await c2.close()


if __name__ == "__main__":
    unittest.main()
