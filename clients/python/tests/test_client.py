"""The blocking client against a real beuss-server process on a free loopback port."""

import os
import socket
import threading
import time
import unittest
from typing import Dict, List
from unittest import mock

import beuss
from beuss import _protocol as P

from .helpers import Server, wait_until


class ServerTestCase(unittest.TestCase):
    """Starts one beuss-server for the test class; each test uses its own queue names."""

    server_args: List[str] = []
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(cls.server_args)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def connect(self, **kw) -> beuss.Client:
        c = beuss.connect(self.server.host, self.server.port, **kw)
        self.addCleanup(c.close)
        return c

    def q(self, suffix: str = "") -> str:
        """Returns a queue name unique to this test."""
        return self.id().rsplit(".", 1)[-1] + suffix


class BasicsTest(ServerTestCase):
    def test_ping_returns_a_round_trip_time(self):
        rtt = self.connect().ping()
        self.assertIsInstance(rtt, float)
        self.assertGreater(rtt, 0)

    def test_defaults_come_from_bhost_and_bport(self):
        with mock.patch.dict(os.environ, {"BHOST": "127.0.0.1", "BPORT": str(self.server.port)}):
            with beuss.connect() as c:
                self.assertEqual((c.host, c.port), ("127.0.0.1", self.server.port))
                self.assertTrue(c.ping())
            self.assertTrue(c.closed)
        with mock.patch.dict(os.environ, {"BPORT": "not-a-port"}):
            with self.assertRaises(beuss.InvalidArgumentError) as cm:
                beuss.connect()
            self.assertIn("BPORT", str(cm.exception))
        self.assertRaises(beuss.InvalidArgumentError, beuss.connect, "127.0.0.1", 70000)

    def test_put_then_get_bytes_and_str(self):
        c = self.connect()
        q = self.q()
        self.assertEqual(c.put(q, b"hello"), 5)
        self.assertEqual(c.put(q, "héllo"), len("héllo".encode()))
        self.assertEqual(c.put(q, bytearray(b"ba")), 2)
        self.assertEqual(c.put(q, memoryview(b"mv")), 2)
        self.assertEqual(c.put(q, b""), 0)
        self.assertEqual(c.len(q), 5)
        self.assertEqual(c.get(q), b"hello")
        self.assertEqual(c.get(q), "héllo".encode())
        self.assertEqual(c.get(q), b"ba")
        self.assertEqual(c.get(q), b"mv")
        self.assertEqual(c.get(q), b"")
        self.assertIsNone(c.get(q))

    def test_fifo_order_of_10000_messages(self):
        c = self.connect()
        q = self.q()
        msgs = [b"%05d:" % i + os.urandom(i % 50) for i in range(10_000)]
        self.assertEqual(c.put_many(q, msgs), [len(m) for m in msgs])
        self.assertEqual(c.len(q), 10_000)
        # One by one for the first part, pipelined for the rest.
        got = [c.get(q) for _ in range(1000)]
        got += c.get_many(q, 9_000)
        self.assertEqual(got, msgs)
        self.assertIsNone(c.get(q))
        self.assertEqual(c.get_many(q, 10), [])

    def test_every_byte_value_round_trips(self):
        c = self.connect()
        q = self.q()
        every = bytes(range(256))
        tricky = b"\r\nPUT other 1\r\nx\r\n\n\r\x00"
        singles = [bytes([b]) for b in range(256)]
        c.put(q, every)
        c.put(q, tricky)
        c.put_many(q, singles)
        self.assertEqual(c.peek(q), every)
        self.assertEqual(c.get(q), every)
        self.assertEqual(c.get(q), tricky)
        self.assertEqual(c.get_many(q, 256), singles)
        self.assertEqual(c.len("other"), 0)  # the payload was not run as a request
        # And through push.
        c.put_many(q, [every, tricky] + singles)
        with c.consume(q, prefetch=16) as consumer:
            got = [consumer.next(timeout=10) for _ in range(258)]
        self.assertEqual([m.data for m in got if m is not None], [every, tricky] + singles)

    def test_truncation_is_visible_in_the_result(self):
        c = self.connect()
        q = self.q()
        limit = c.stats()["max_message_size"]
        self.assertEqual(limit, 10240)
        big = bytes(range(256)) * 80  # 20480 bytes
        before = c.stats()["truncated"]
        self.assertEqual(c.put(q, big), limit)
        self.assertEqual(c.put_many(q, [big, b"small"]), [limit, 5])
        self.assertEqual(c.get(q), big[:limit])
        self.assertEqual(c.get(q), big[:limit])
        self.assertEqual(c.get(q), b"small")
        self.assertEqual(c.stats()["truncated"], before + 2)

    def test_peek_len_purge_queues_stats(self):
        c = self.connect()
        q = self.q()
        self.assertIsNone(c.peek(q))
        self.assertEqual(c.len(q), 0)
        c.put_many(q, [b"a", b"b", b"c"])
        self.assertEqual(c.peek(q), b"a")
        self.assertEqual(c.len(q), 3)
        info = {qi.name: qi for qi in c.queues()}
        self.assertEqual(info[q], beuss.QueueInfo(q, 3, 0))
        stats = c.stats()
        self.assertEqual(stats["protocol"], 2)
        self.assertEqual(stats["oversize"], "truncate")
        self.assertGreaterEqual(stats["messages"], 3)
        self.assertEqual(c.purge(q), 3)
        self.assertEqual(c.len(q), 0)
        self.assertEqual(c.purge(q), 0)

    def test_utf8_queue_names(self):
        c = self.connect()
        q = self.q("-café-队列")
        c.put(q, b"x")
        self.assertIn(q, [qi.name for qi in c.queues()])
        self.assertEqual(c.get(q.encode()), b"x")

    def test_get_wait_returns_none_when_time_runs_out(self):
        c = self.connect()
        self.assertIsNone(c.get(self.q(), wait=0.05))
        self.assertIsNone(c.get(self.q(), wait=0))

    def test_get_wait_is_answered_by_a_put_from_another_client(self):
        c = self.connect()
        producer = self.connect()
        q = self.q()
        # Put only once the server holds the GET, seen in its counters.
        waiting_before = producer.stats()["waiting"]

        def put_when_waiting() -> None:
            if wait_until(lambda: producer.stats()["waiting"] > waiting_before, 10):
                producer.put(q, b"late")

        t = threading.Thread(target=put_when_waiting)
        t.start()
        try:
            self.assertEqual(c.get(q, wait=30), b"late")
        finally:
            t.join(30)

    def test_pipeline_sends_mixed_requests_together(self):
        c = self.connect()
        q = self.q()
        with c.pipeline() as p:
            p.put(q, b"a").put(q, "b").len(q).peek(q).get(q).get(q).get(q).purge(q)
            self.assertEqual(len(p), 8)
            self.assertEqual(p.execute(), [1, 1, 2, b"a", b"a", b"b", None, 0])
            self.assertEqual(len(p), 0)
            self.assertEqual(p.execute(), [])
        p = c.pipeline()
        self.assertRaises(beuss.BadQueueNameError, p.put, "bad name", b"y")  # checked when queued
        p.put(q, b"kept")
        p.reset()
        self.assertEqual(p.execute(), [])
        self.assertEqual(c.len(q), 0)

    def test_pipeline_errors_in_place(self):
        c = self.connect()
        q = self.q()
        p = c.pipeline()
        p.put(q, b"1")
        p._queue(b"NOPE\r\n", lambda r: r)  # a request the server refuses, among others
        p.put(q, b"2")
        with self.assertRaises(beuss.UnknownCommandError) as cm:
            p.execute()
        self.assertEqual(cm.exception.results[0::2], [1, 1])
        self.assertIsInstance(cm.exception.results[1], beuss.UnknownCommandError)
        p.put(q, b"3")._queue(b"NOPE\r\n", lambda r: r)
        results = p.execute(raise_on_error=False)
        self.assertEqual(results[0], 1)
        self.assertIsInstance(results[1], beuss.UnknownCommandError)
        self.assertEqual(c.get_many(q, 10), [b"1", b"2", b"3"])


class ConsumeTest(ServerTestCase):
    def test_consume_is_server_push(self):
        producer = self.connect()
        c = self.connect()
        q = self.q()
        pushed_before = producer.stats()["pushed"]
        with c.consume(q, prefetch=8) as consumer:
            self.assertEqual({qi.name: qi.consumers for qi in producer.queues()}.get(q), 1)
            producer.put_many(q, [b"m%d" % i for i in range(20)])
            got = [consumer.next(timeout=10) for _ in range(20)]
        self.assertEqual([m.data for m in got if m], [b"m%d" % i for i in range(20)])
        self.assertTrue(all(m.queue == q for m in got if m))
        # Delivered by PUSH, not fetched by GET.
        self.assertEqual(producer.stats()["pushed"] - pushed_before, 20)

    def test_fifo_order_of_10000_messages_by_push(self):
        producer = self.connect()
        c = self.connect()
        q = self.q()
        msgs = [b"%05d" % i for i in range(10_000)]
        producer.put_many(q, msgs)
        got = []
        with c.consume(q, prefetch=256, max=10_000) as consumer:
            for m in consumer:
                got.append(m.data)
        self.assertEqual(got, msgs)
        self.assertFalse(consumer.active)
        self.assertEqual(producer.len(q), 0)

    def test_credit_bounds_what_the_server_pushes(self):
        producer = self.connect()
        c = self.connect()
        q = self.q()
        producer.put_many(q, [b"%d" % i for i in range(100)])
        consumer = c.consume(q, prefetch=4)
        c.ping()  # pushes sent before PONG are in the consumer's buffer now
        self.assertEqual(len(consumer._buf), 4)
        self.assertEqual(producer.len(q), 96)
        self.assertEqual(consumer.next(timeout=10).data, b"0")
        c.ping()
        self.assertEqual(producer.len(q), 96)  # no credit granted back yet: half of 4 is 2
        self.assertEqual(consumer.next(timeout=10).data, b"1")  # grants 2 more
        c.ping()
        self.assertEqual(producer.len(q), 94)
        self.assertEqual(len(consumer._buf), 4)
        left = consumer.close()
        self.assertEqual([m.data for m in left], [b"2", b"3", b"4", b"5"])
        self.assertEqual(producer.len(q), 94)

    def test_leaving_the_with_block_keeps_what_was_pushed(self):
        producer = self.connect()
        c = self.connect()
        q = self.q()
        producer.put_many(q, [b"%d" % i for i in range(10)])
        with c.consume(q, prefetch=8) as consumer:
            for m in consumer:
                self.assertEqual(m.data, b"0")
                break
        self.assertFalse(consumer.active)
        self.assertEqual(producer.len(q), 2)  # 8 were pushed, none more after OFF
        # Nothing pushed is dropped: the loop hands out the rest, then ends.
        self.assertEqual([m.data for m in consumer], [b"%d" % i for i in range(1, 8)])
        self.assertEqual(consumer.close(), [])

    def test_max_takes_no_more_than_asked(self):
        producer = self.connect()
        c = self.connect()
        q = self.q()
        producer.put_many(q, [b"%d" % i for i in range(10)])
        got = [m.data for m in c.consume(q, prefetch=64, max=3)]
        self.assertEqual(got, [b"0", b"1", b"2"])
        self.assertEqual(producer.len(q), 7)
        # Consumer closed: the same client may consume the queue again.
        with c.consume(q, max=7) as consumer:
            self.assertEqual([m.data for m in consumer], [b"%d" % i for i in range(3, 10)])

    def test_two_consumers_share_a_queue(self):
        producer = self.connect()
        q = self.q()
        n = 2000
        results: Dict[str, List[int]] = {"a": [], "b": []}
        errors: List[BaseException] = []
        done = threading.Event()
        ready = threading.Barrier(3, timeout=30)

        def run(name: str) -> None:
            try:
                with beuss.connect(self.server.host, self.server.port) as c:
                    with c.consume(q, prefetch=8) as consumer:
                        ready.wait()
                        deadline = time.monotonic() + 60
                        while not done.is_set() and time.monotonic() < deadline:
                            m = consumer.next(timeout=0.05)
                            if m is not None:
                                results[name].append(int(m.data))
                                if len(results["a"]) + len(results["b"]) >= n:
                                    done.set()
            except BaseException as e:  # reported by the main thread
                errors.append(e)
                done.set()

        threads = [threading.Thread(target=run, args=(k,)) for k in results]
        for t in threads:
            t.start()
        ready.wait()
        self.assertEqual({qi.name: qi.consumers for qi in producer.queues()}.get(q), 2)
        producer.put_many(q, [b"%d" % i for i in range(n)])
        for t in threads:
            t.join(90)
        self.assertEqual(errors, [])
        a, b = results["a"], results["b"]
        self.assertEqual(sorted(a + b), list(range(n)), "every message exactly once")
        self.assertEqual(a, sorted(a), "each consumer sees queue order")
        self.assertEqual(b, sorted(b), "each consumer sees queue order")
        self.assertGreater(len(a), 0)
        self.assertGreater(len(b), 0)

    def test_big_batches_with_pushes_on_the_same_connection_do_not_stall(self):
        # put_many keeps reading (replies and pushes) while it sends, so a
        # batch far larger than the socket buffers cannot deadlock the two sides.
        c = self.connect()
        q = self.q()
        big = [bytes([i % 256]) * 10240 for i in range(3000)]  # 30 MB
        with c.consume(q, prefetch=3000) as consumer:
            self.assertEqual(c.put_many(q, big), [10240] * 3000)
            got = [consumer.next(timeout=30) for _ in range(3000)]
        self.assertTrue(all(m is not None for m in got))
        self.assertEqual([m.data for m in got], big)
        c.put_many(q, big)
        self.assertEqual(c.get_many(q, 3000), big)

    def test_get_wait_longer_than_the_client_timeout(self):
        c = self.connect(timeout=0.05)
        self.assertIsNone(c.get(self.q(), wait=0.2))
        self.assertTrue(c.ping())

    def test_client_timeout_closes_the_connection(self):
        c = self.connect(timeout=0.05)
        # A request the server holds past the client's timeout (sent raw,
        # since get() would extend the timeout by its wait).
        with self.assertRaises(TimeoutError):
            c._call(b"GET %s WAIT 5000\r\n" % self.q().encode())
        self.assertTrue(c.closed)
        self.assertRaises(beuss.ConnectionError, c.ping)

    def test_other_calls_work_while_consuming(self):
        c = self.connect()
        q = self.q()
        with c.consume(q, prefetch=2) as consumer:
            c.put_many(q, [b"1", b"2", b"3"])  # pushes arrive among these replies
            self.assertEqual(c.put(q + "-other", b"x"), 1)
            self.assertEqual(c.get(q + "-other"), b"x")
            self.assertEqual([consumer.next(timeout=10).data for _ in range(3)], [b"1", b"2", b"3"])
            self.assertIsNone(consumer.next(timeout=0.01))


class ThreadsTest(ServerTestCase):
    """One client shared by threads."""

    def run_threads(self, targets, timeout=60.0):
        errors: List[BaseException] = []

        def wrap(fn):
            def run():
                try:
                    fn()
                except BaseException as e:  # reported by the test thread
                    errors.append(e)

            return run

        threads = [threading.Thread(target=wrap(fn)) for fn in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
        self.assertFalse(any(t.is_alive() for t in threads), "threads did not finish")
        self.assertEqual(errors, [])

    def test_calls_from_many_threads_each_get_their_own_replies(self):
        c = self.connect()
        base = self.q()

        def worker(k: int):
            def run():
                q = f"{base}-{k}"
                for i in range(300):
                    payload = b"%d:%d" % (k, i)
                    self.assertEqual(c.put(q, payload), len(payload))
                    if i % 3 == 0:
                        batch = [b"%d" % j for j in range(i, i + 5)]
                        self.assertEqual(c.put_many(q + "-m", batch), [len(b) for b in batch])
                        self.assertEqual(c.get_many(q + "-m", 5), batch)
                    self.assertEqual(c.get(q), payload)

            return run

        self.run_threads([worker(k) for k in range(6)])
        self.assertTrue(c.ping())

    def test_a_waiting_consumer_gets_pushes_read_by_other_threads(self):
        c = self.connect()
        q = self.q()
        n = 3000
        got: List[bytes] = []
        consumer = c.consume(q, prefetch=16)

        def consume():
            while len(got) < n:
                m = consumer.next(timeout=30)
                self.assertIsNotNone(m, f"no message after {len(got)}")
                got.append(m.data)

        def produce():
            # These calls read the pushes meant for the consumer, which is
            # waiting in another thread: it must be woken, not left asleep.
            for i in range(0, n, 10):
                c.put_many(q, [b"%d" % j for j in range(i, i + 10)])
                c.ping()

        self.run_threads([consume, produce])
        self.assertEqual(got, [b"%d" % i for i in range(n)])
        consumer.close()

    def test_a_push_read_by_another_thread_wakes_the_waiting_consumer(self):
        c = self.connect()
        q = self.q()
        consumer = c.consume(q)
        real = c._push_sel
        injected = threading.Event()

        class Seam:
            """Runs another thread's call in the window between the consumer's check and its wait."""

            def select(self, timeout=None):
                if not injected.is_set():
                    injected.set()
                    # This call reads the push meant for the consumer.
                    t = threading.Thread(target=lambda: (c.put(q, b"late"), c.ping()))
                    t.start()
                    t.join(10)
                return real.select(timeout)

            def close(self):
                real.close()

        c._push_sel = Seam()
        result: List[beuss.Message] = []
        waiter = threading.Thread(target=lambda: result.append(consumer.next()))
        waiter.start()
        waiter.join(10)
        slept_through = waiter.is_alive()
        if slept_through:
            c.close()  # ends the wait, so the thread does not outlive the test
            waiter.join(10)
        self.assertTrue(injected.is_set())
        self.assertFalse(slept_through, "the consumer slept through a push another thread read for it")
        self.assertEqual(result[0].data, b"late")

    def test_threads_sharing_one_consumer_split_its_messages(self):
        c = self.connect()
        producer = self.connect()
        q = self.q()
        n = 2000
        consumer = c.consume(q, prefetch=32)
        seen: List[int] = []
        lock = threading.Lock()

        def take():
            while True:
                with lock:
                    if len(seen) >= n:
                        return
                m = consumer.next(timeout=30)
                self.assertIsNotNone(m, "a waiting thread was not woken or gave up early")
                with lock:
                    seen.append(int(m.data))

        def produce():
            for i in range(0, n, 100):
                producer.put_many(q, [b"%d" % j for j in range(i, i + 100)])
            # Each taker may ask for one message past the last: spares.
            producer.put_many(q, [b"-1", b"-1"])

        self.run_threads([take, take, produce])
        got = [x for x in seen if x >= 0]
        self.assertEqual(sorted(got), list(range(n)))

    def test_close_from_another_thread_ends_a_waiting_consumer(self):
        c = self.connect()
        q = self.q()
        consumer = c.consume(q)
        ended = threading.Event()
        got: List[bytes] = []

        def consume():
            for m in consumer:  # blocks: nothing is put
                got.append(m.data)
            ended.set()

        t = threading.Thread(target=consume)
        t.start()
        # Close once the consumer thread is waiting on the socket.
        self.assertTrue(wait_until(lambda: c._idle_waiters > 0, 10))
        c.close()
        t.join(10)
        self.assertTrue(ended.is_set(), "the loop ended when the client closed")
        self.assertEqual(got, [])


class ErrorsTest(ServerTestCase):
    def test_bad_queue_names_are_refused_before_sending(self):
        c = self.connect()
        for bad in ["", "a b", "a\nPING", "x" * 256, "tab\there"]:
            with self.assertRaises(beuss.BadQueueNameError, msg=repr(bad)) as cm:
                c.put(bad, b"x")
            self.assertEqual(cm.exception.code, "BAD_QUEUE_NAME")
            self.assertIsInstance(cm.exception, beuss.ServerError)
            self.assertRaises(beuss.BadQueueNameError, c.get, bad)
            self.assertRaises(beuss.BadQueueNameError, c.consume, bad)
        self.assertTrue(c.ping())  # nothing broke the stream

    def test_bad_arguments(self):
        c = self.connect()
        q = self.q()
        for bad_call in [
            lambda: c.put(q, 42),
            lambda: c.put(q, None),
            lambda: c.get(q, wait=-1),
            lambda: c.get(q, wait="1"),
            lambda: c.consume(q, prefetch=0),
            lambda: c.consume(q, prefetch=1.5),
            lambda: c.consume(q, max=0),
            lambda: c.get_many(q, -1),
        ]:
            with self.assertRaises(beuss.InvalidArgumentError) as cm:
                bad_call()
            self.assertEqual(cm.exception.code, "INVALID_ARGUMENT")
        self.assertRaises(TypeError, c.put, q, 42)
        self.assertRaises(ValueError, c.get, q, -1)
        self.assertTrue(c.ping())

    def test_server_errors_map_to_classes_with_codes(self):
        c = self.connect()
        q = self.q()
        with self.assertRaises(beuss.UnknownCommandError) as cm:
            c._call(b"FOO\r\n")
        self.assertEqual(cm.exception.code, "UNKNOWN_COMMAND")
        self.assertIn("FOO", cm.exception.server_text)
        with self.assertRaises(beuss.NotSubscribedError) as cm:
            c._call(b"CREDIT %s 1\r\n" % q.encode())
        self.assertEqual(cm.exception.code, "NOT_SUBSCRIBED")
        self.assertRaises(beuss.BadArgsError, c._call, b"LEN\r\n")
        self.assertRaises(beuss.BadNumberError, c._call, b"GET q WAIT x\r\n")
        self.assertTrue(c.ping())  # these keep the connection open

    def test_second_consumer_of_a_queue_on_one_client(self):
        c = self.connect()
        q = self.q()
        with c.consume(q):
            with self.assertRaises(beuss.AlreadySubscribedError) as cm:
                c.consume(q)
            self.assertEqual(cm.exception.code, "ALREADY_SUBSCRIBED")
        # The server says the same when asked directly.
        c._call(b"ON %s\r\n" % q.encode())
        self.assertRaises(beuss.AlreadySubscribedError, c._call, b"ON %s\r\n" % q.encode())

    def test_line_too_long_closes_the_connection(self):
        c = self.connect()
        with self.assertRaises(beuss.LineTooLongError):
            c._call(b"PING " + b"x" * 5000 + b"\r\n")
        self.assertTrue(c.closed)
        with self.assertRaises(beuss.ConnectionError) as cm:
            c.ping()
        self.assertEqual(cm.exception.code, "CONNECTION_CLOSED")
        self.assertTrue(self.connect().ping(), "the server serves others")

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nobody listens on it now
        with self.assertRaises(beuss.ConnectionError) as cm:
            beuss.connect("127.0.0.1", port)
        self.assertEqual(cm.exception.code, "ECONNREFUSED")
        self.assertEqual((cm.exception.host, cm.exception.port), ("127.0.0.1", port))
        self.assertIsInstance(cm.exception, ConnectionError)  # the builtin too

    def test_calls_after_close_fail_clearly(self):
        c = self.connect()
        c.close()
        c.close()  # idempotent
        with self.assertRaises(beuss.ConnectionError) as cm:
            c.put(self.q(), b"x")
        self.assertEqual(cm.exception.code, "CONNECTION_CLOSED")
        self.assertIn("closed", str(cm.exception))


class StoppedServerTest(unittest.TestCase):
    """Each test stops its own server."""

    def test_calls_and_consumers_fail_when_the_server_stops(self):
        server = Server()
        try:
            c = beuss.connect(server.host, server.port)
            c2 = beuss.connect(server.host, server.port)
            consumer = c2.consume("jobs", prefetch=4)
            c.put_many("jobs", [b"1", b"2"])
            c2.ping()  # both pushes are in the consumer's buffer
        finally:
            server.stop()
        with self.assertRaises(beuss.ConnectionError):
            c.ping()
        self.assertTrue(c.closed)
        # What was received is handed out first, then the loss is raised.
        self.assertEqual(consumer.next(timeout=10).data, b"1")
        self.assertEqual(consumer.next(timeout=10).data, b"2")
        with self.assertRaises(beuss.ConnectionError):
            consumer.next(timeout=10)
        self.assertIsNone(consumer.next(timeout=0))
        c.close()
        c2.close()

    def test_too_many_connections(self):
        server = Server(["--max-connections", "1"])
        try:
            with beuss.connect(server.host, server.port) as first:
                self.assertTrue(first.ping())
                second = beuss.connect(server.host, server.port)
                # The refusal arrives unasked; the next call reports it.
                with self.assertRaises(beuss.BeussError) as cm:
                    second.ping()
                self.assertEqual(cm.exception.code, "TOO_MANY_CONNECTIONS")
                self.assertTrue(second.closed)
                self.assertTrue(first.ping())
        finally:
            server.stop()


class SmallMessagesTest(unittest.TestCase):
    def test_truncation_follows_the_server_bmaxmessagesize(self):
        server = Server(env={"BMAXMESSAGESIZE": "100"})
        try:
            with beuss.connect(server.host, server.port) as c:
                self.assertEqual(c.stats()["max_message_size"], 100)
                data = bytes(range(150))
                self.assertEqual(c.put("small", data), 100)
                self.assertEqual(c.put_many("small", [data, data[:100], data[:99]]), [100, 100, 99])
                self.assertEqual(c.get_many("small", 4), [data[:100], data[:100], data[:100], data[:99]])
        finally:
            server.stop()


class RejectModeTest(ServerTestCase):
    server_args = ["--oversize", "reject", "--max-message-size", "100", "--max-queued-bytes", "1k"]

    def test_oversize_is_refused_and_the_connection_stays_usable(self):
        c = self.connect()
        q = self.q()
        with self.assertRaises(beuss.TooLargeError) as cm:
            c.put(q, b"x" * 101)
        self.assertEqual(cm.exception.code, "TOO_LARGE")
        self.assertEqual(c.put(q, b"x" * 100), 100)
        with self.assertRaises(beuss.TooLargeError) as cm:
            c.put_many(q, [b"a", b"y" * 500, b"b"])
        self.assertEqual(cm.exception.results, [1, None, 1])
        self.assertEqual(c.get_many(q, 10), [b"x" * 100, b"a", b"b"])

    def test_full_server_refuses_puts(self):
        c = self.connect()
        q = self.q()
        with self.assertRaises(beuss.FullError) as cm:
            c.put_many(q, [b"z" * 100] * 20)
        self.assertEqual(cm.exception.code, "FULL")
        stored = [r for r in cm.exception.results if r is not None]
        self.assertEqual(len(stored), 10)  # 1 KiB of 100-byte messages
        self.assertEqual(c.purge(q), 10)
        self.assertEqual(c.put(q, b"z"), 1)
        c.purge(q)


if __name__ == "__main__":
    unittest.main()
