"""The asyncio beuss client: the same operations as :mod:`beuss` as coroutines, and ``async for`` consumers.

::

    import beuss.aio

    async with beuss.aio.connect() as c:           # BHOST/BPORT, then localhost:6552
        await c.put("jobs", b"hello")
        print(await c.get("jobs", wait=1.0))
        async with c.consume("jobs", prefetch=64) as consumer:
            async for msg in consumer:
                print(msg.data)

Calls made concurrently on one client (``asyncio.gather``, several tasks)
are pipelined: requests made in the same event-loop turn go out in one socket
write, and each call gets its own reply (replies come in request order).
"""

import asyncio
import datetime
import inspect
import socket
import time
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Dict, Generator, Iterable, List, Optional, TypeVar, Union

from . import _commands as C
from . import _protocol as P
from ._commands import DEFAULT_MAX_BUFFERED, DEFAULT_PREFETCH, DEFAULT_WORK_LEASE, MAX_PREFETCH
from ._config import resolve_address
from ._consumer import ConsumerState, SubscriptionState, deliver, forget
from .errors import BeussError, ConnectionError, ProtocolError, UnknownLeaseError, server_error
from .message import ChannelEvent, LeasedMessage, Message

__all__ = ["Client", "Consumer", "connect", "DEFAULT_PREFETCH", "MAX_PREFETCH"]

# Bytes of pending requests after which they are written at once instead of
# at the end of the event-loop turn (as the Node.js client's flushThreshold).
_FLUSH_THRESHOLD = 64 * 1024
# put_many/get_many wait for the socket to drain every this many bytes, so a
# huge batch is not all buffered in the transport at once.
_DRAIN_EVERY = 256 * 1024
_READ_SIZE = 256 * 1024

T = TypeVar("T")


class _Slot:
    """Where the replies to one call land, in request order (see beuss.client._Slot).

    A call whose coroutine was cancelled leaves its slot behind; its replies
    still arrive and are matched to it, so later calls get their own.
    """

    __slots__ = ("n", "replies", "future", "consumer", "ok_ints")

    def __init__(
        self,
        n: int,
        future: "Optional[asyncio.Future[List[Any]]]",
        consumer: "Optional[Consumer]" = None,
        ok_ints: bool = False,
    ) -> None:
        self.n = n
        # Reply tuples, or plain ints for OK <n> replies read in bulk (ok_ints).
        self.replies: List[Any] = []
        self.future = future
        self.consumer = consumer
        self.ok_ints = ok_ints


class Client:
    """A connection to a beuss server for asyncio code; make one with :func:`connect`.

    Every operation is a coroutine. Use the client from the event loop that
    created it. It is an async context manager that closes on exit.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int) -> None:
        """Wraps an open stream; use :func:`connect`."""
        self.host = host
        self.port = port
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._parser = P.ReplyParser()
        self._slots: Deque[_Slot] = deque()
        self._consumers: Dict[bytes, Consumer] = {}
        self._subscriptions: Dict[bytes, Subscription] = {}
        self._out: List[bytes] = []
        self._out_size = 0
        self._flush_scheduled = False
        self._closed_reason: Optional[str] = None
        self._end_error: Optional[BeussError] = None
        self._quitting = False  # QUIT sent: the server closing is expected
        self._ended = self._loop.create_future()
        self._read_task = self._loop.create_task(self._read_loop())

    # -- lifetime -------------------------------------------------------------------

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<beuss.aio.Client {self.host}:{self.port} {'closed' if self.closed else 'open'}>"

    @property
    def closed(self) -> bool:
        """Returns True once the client is closed or its connection was lost."""
        return self._closed_reason is not None

    async def close(self, force: bool = False) -> None:
        """Closes the connection. Idempotent.

        By default it first waits for the replies of every call made before
        (``QUIT``: the server answers everything before it, then closes), as
        the Node.js client does; with ``force=True`` it closes at once and
        calls still waiting fail with ConnectionError (``CONNECTION_CLOSED``).
        Consumers end, dropping messages pushed but not yet handed out.
        """
        if self._closed_reason is None and not force and any(s.future is not None for s in self._slots):
            self._quitting = True
            quit_reply = self._send(b"QUIT\r\n", 1)
            assert quit_reply is not None
            try:
                await asyncio.shield(quit_reply)
            except BeussError:
                pass  # the connection ended first: the calls waiting were told
        if self._closed_reason is None:
            self._flush()
            self._end("the client was closed", None)
        try:
            await self._writer.wait_closed()
        except (OSError, asyncio.CancelledError):
            pass

    async def wait_closed(self) -> Optional[BeussError]:
        """Returns once the connection has ended: None after :meth:`close`, else the error that ended it."""
        return await asyncio.shield(self._ended)

    def _end(self, reason: str, error: Optional[BeussError]) -> None:
        """Closes the socket and fails every call and consumer still waiting."""
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        self._end_error = error
        self._out.clear()
        self._writer.close()
        if not self._read_task.done() and asyncio.current_task() is not self._read_task:
            self._read_task.cancel()
        for slot in self._slots:
            if slot.future is not None and not slot.future.done():
                slot.future.set_exception(self._closed_error())
        self._slots.clear()
        for consumer in self._consumers.values():
            consumer._ended(error)
        self._consumers.clear()
        for sub in self._subscriptions.values():
            sub._ended(error)
        self._subscriptions.clear()
        if not self._ended.done():
            self._ended.set_result(error)

    def _closed_by_user(self) -> bool:
        """Returns True when the connection ended by :meth:`close` rather than lost."""
        return self._closed_reason is not None and self._end_error is None

    def _closed_error(self) -> BeussError:
        if self._end_error is not None:
            code = self._end_error.code
            return ConnectionError(
                code, f"beuss at {self.host}:{self.port}: connection lost: {self._closed_reason}", self.host, self.port
            )
        return ConnectionError(
            "CONNECTION_CLOSED", f"beuss at {self.host}:{self.port}: the connection is closed ({self._closed_reason})", self.host, self.port
        )

    # -- reading ------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        parser = self._parser
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    if self._quitting:
                        self._end("the client was closed", None)
                    else:
                        why = "the server closed the connection"
                        self._end(why, self._lost_error("CONNECTION_CLOSED", why))
                    return
                parser.feed(data)
                while True:
                    slots = self._slots
                    if slots and slots[0].ok_ints:
                        # A batch of PUTs: read its OK <n> replies in bulk.
                        slot = slots[0]
                        ints = parser.take_ok_ints(slot.n - len(slot.replies))
                        if ints:
                            slot.replies.extend(ints)
                            if len(slot.replies) == slot.n:
                                self._complete(slots.popleft())
                            continue
                    frame = parser.next()
                    if frame is None:
                        break
                    self._process(frame)
        except asyncio.CancelledError:
            raise
        except ProtocolError as e:
            self._end(str(e), e)
        except BeussError as e:
            self._end(str(e), e)
        except OSError as e:
            self._end(str(e), self._lost_error(ConnectionError.code_of(e), str(e)))
        except Exception as e:
            # A bug must not leave every caller waiting forever.
            self._end(f"the client failed on data from the server: {e!r}", ProtocolError(f"the client failed on data from the server: {e!r}"))

    def _lost_error(self, code: str, why: str) -> ConnectionError:
        return ConnectionError(code, f"beuss at {self.host}:{self.port}: connection lost: {why}", self.host, self.port)

    def _process(self, frame: P.Reply) -> None:
        """Hands one parsed frame to its consumer, or to the oldest slot waiting for replies."""
        if deliver(frame, self._consumers, self._subscriptions):
            return
        if not self._slots:
            if frame[0] is P.ERR:
                # Sent unasked: TOO_MANY_CONNECTIONS on connect, SHUTTING_DOWN.
                raise server_error(frame[1], frame[2])
            raise ProtocolError(f"the server sent a reply {frame[0]} to no request")
        slot = self._slots[0]
        slot.replies.append(frame)
        if len(slot.replies) == slot.n:
            self._complete(self._slots.popleft())

    def _complete(self, slot: _Slot) -> None:
        """Hands a slot's replies to its caller, or a CREDIT refusal to its consumer."""
        if slot.future is not None:
            if not slot.future.done():
                slot.future.set_result(slot.replies)
        elif slot.consumer is not None:
            reply = slot.replies[-1]
            if type(reply) is tuple and reply[0] is P.ERR:
                slot.consumer._fail(server_error(reply[1], reply[2]))

    # -- writing ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed_reason is not None:
            raise self._closed_error()

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= _FLUSH_THRESHOLD:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self._closed_reason is None:
            out = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            self._out_size = 0
            self._writer.write(out)

    def _send(
        self, requests: bytes, n: int, consumer: "Optional[Consumer]" = None, ok_ints: bool = False
    ) -> "Optional[asyncio.Future[List[Any]]]":
        """Queues ``n`` requests; returns the future of their replies (None for a consumer's CREDIT)."""
        self._check_open()
        future = None if consumer is not None else self._loop.create_future()
        self._slots.append(_Slot(n, future, consumer, ok_ints))
        self._write(requests)
        return future

    async def _call(self, request: bytes) -> P.Reply:
        """Sends one request and returns its reply; an ``ERR`` reply is raised."""
        future = self._send(request, 1)
        assert future is not None
        reply: P.Reply = (await future)[0]
        if reply[0] is P.ERR:
            raise server_error(reply[1], reply[2])
        return reply

    async def _run(self, command: C.Command[T]) -> T:
        """Sends one command and returns its result; an ``ERR`` reply is raised."""
        return command.result(await self._call(command.request))

    async def _pipelined(self, batch: C.Batch[T]) -> List[Optional[T]]:
        """Sends a batch in chunks, waiting for the socket to drain between them; returns each reply's result.

        A refused request gives None in its place; the first refusal is
        raised once every reply is in, with the list in its ``results``.
        """
        self._check_open()
        futures: List["asyncio.Future[List[Any]]"] = []
        chunk: List[bytes] = []
        size = 0
        for req in batch.requests:
            chunk.append(req)
            size += len(req)
            if size >= _DRAIN_EVERY:
                fut = self._send(b"".join(chunk), len(chunk), None, batch.ok_ints)
                assert fut is not None
                futures.append(fut)
                chunk, size = [], 0
                self._flush()
                await self._drain()
        if chunk:
            fut = self._send(b"".join(chunk), len(chunk), None, batch.ok_ints)
            assert fut is not None
            futures.append(fut)
        replies: List[Any] = []
        for fut in futures:
            replies += await fut
        return C.batch_results(replies, batch.result)

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except OSError as e:
            self._end(str(e), self._lost_error(ConnectionError.code_of(e), str(e)))
        except Exception as e:
            # A bug must not leave every caller waiting forever.
            self._end(f"the client failed on data from the server: {e!r}", ProtocolError(f"the client failed on data from the server: {e!r}"))
            raise self._closed_error() from e

    # -- operations --------------------------------------------------------------------------

    async def ping(self) -> float:
        """Returns the round-trip time of a ``PING`` in seconds."""
        command = C.ping()
        t0 = time.perf_counter()
        await self._run(command)
        return time.perf_counter() - t0

    async def put(
        self,
        queue: P.QueueName,
        data: P.Data,
        *,
        delay: Union[None, int, float, str] = None,
        at: Union[None, int, float, datetime.datetime] = None,
    ) -> int:
        """Appends a message to ``queue`` and returns the number of bytes stored (less than sent: truncated).

        ``delay``/``at`` keep it invisible until then, as in :meth:`beuss.Client.put`.
        """
        return await self._run(C.put(queue, data, delay, at))

    async def put_many(self, queue: P.QueueName, messages: Iterable[P.Data]) -> List[int]:
        """Appends every message to ``queue`` in order, pipelined; returns the stored length of each.

        Refused messages (``FULL``, ``TOO_LARGE``) do not stop the others; the
        first error is raised at the end with ``results`` (None where refused).
        A message of the wrong type raises InvalidArgumentError, and the
        messages before it may be stored.
        """
        results = await self._pipelined(C.put_many(queue, messages))
        return results  # type: ignore[return-value]  # no None: errors were raised

    async def get(self, queue: P.QueueName, wait: Optional[float] = None) -> Optional[bytes]:
        """Takes the message at the head of ``queue``; returns its bytes, or None if empty.

        ``wait`` (seconds) makes the server hold the request until a message
        arrives or the time runs out. Other calls on this client made after
        a waiting GET wait for it (replies come in order): use a second
        client for them.
        """
        return await self._run(C.get(queue, wait))

    async def get_leased(
        self, queue: P.QueueName, lease: float, wait: Optional[float] = None, max_deliver: Optional[int] = None
    ) -> Optional[LeasedMessage]:
        """Takes the head of ``queue`` under a lease of ``lease`` seconds; returns a :class:`LeasedMessage`
        (``await msg.ack()``) or None when empty. See :meth:`beuss.Client.get_leased`."""
        return await self._run(C.get_leased(queue, lease, wait, max_deliver, self))

    async def ack(self, id: str) -> None:
        """Acknowledges the leased delivery ``id``. Raises UnknownLeaseError if it is not held."""
        await self._run(C.ack(id))

    async def nack(self, id: str, delay: Optional[float] = None) -> None:
        """Gives the leased delivery ``id`` back, now or after ``delay`` seconds."""
        await self._run(C.nack(id, delay))

    async def touch(self, id: str, seconds: Optional[float] = None) -> None:
        """Extends the lease ``id`` to ``seconds`` from now (default: its own duration)."""
        await self._run(C.touch(id, seconds))

    async def get_many(self, queue: P.QueueName, count: int) -> List[bytes]:
        """Takes up to ``count`` messages from the head of ``queue`` with pipelined GETs; returns them in order."""
        return [m for m in await self._pipelined(C.get_many(queue, count)) if m is not None]

    async def peek(self, queue: P.QueueName) -> Optional[bytes]:
        """Returns the message at the head of ``queue`` without taking it, or None if empty."""
        return await self._run(C.peek(queue))

    async def len(self, queue: P.QueueName) -> int:
        """Returns the number of messages ready in ``queue``."""
        return await self._run(C.length(queue))

    async def purge(self, queue: P.QueueName) -> int:
        """Deletes every message of ``queue``; returns how many were deleted."""
        return await self._run(C.purge(queue))

    async def queues(self) -> List[P.QueueInfo]:
        """Returns every queue as ``QueueInfo(name, ready, consumers)``, sorted by name."""
        return await self._run(C.queues())

    async def stats(self) -> P.Stats:
        """Returns the server's counters as a dict (ints for numbers, str otherwise)."""
        return await self._run(C.stats())

    def consume(
        self,
        queue: P.QueueName,
        prefetch: int = DEFAULT_PREFETCH,
        *,
        max: Optional[int] = None,
        lease: Optional[float] = None,
        max_deliver: Optional[int] = None,
    ) -> "Consumer":
        """Subscribes to ``queue`` by server push and returns the :class:`Consumer` (``async for`` it).

        Not a coroutine: ``ON`` is sent at once and a refusal is raised by
        the first ``async for`` step. Flow control, ``max``, ``lease``,
        ``max_deliver`` and delivery are as in :meth:`beuss.Client.consume`:
        with ``lease`` (seconds) it hands out :class:`LeasedMessage` objects
        (``await msg.ack()``) and ``prefetch`` bounds the unacknowledged
        ones, the server giving credit back on each ACK/NACK. One consumer
        per queue per client.
        """
        q, lease_ms = C.consume_args(queue, prefetch, max, lease, max_deliver)
        self._check_open()
        if q in self._consumers:
            raise C.already_consumes(queue)
        consumer = Consumer(self, q, prefetch, max, leased=bool(lease_ms))
        self._consumers[q] = consumer
        # Not awaited: the reply reaches the consumer, which raises a refusal from its first step.
        future = self._send(C.on(q, consumer._granted, lease_ms, max_deliver).request, 1)
        assert future is not None
        future.add_done_callback(consumer._on_reply)
        return consumer

    async def work(
        self,
        queue: P.QueueName,
        handler: Callable[[LeasedMessage], Union[Awaitable[Any], Any]],
        *,
        lease: float = DEFAULT_WORK_LEASE,
        prefetch: int = 1,
        max_deliver: Optional[int] = None,
        count: Optional[int] = None,
        retry_delay: Optional[float] = None,
        on_error: Optional[Callable[[BaseException, LeasedMessage], Any]] = None,
    ) -> int:
        """Awaits ``handler(msg)`` on each message of ``queue``, at least once; returns how many deliveries it handled.

        As :meth:`beuss.Client.work`, with a coroutine function as handler
        (a plain function works too, run in the event loop):
        the message is acknowledged when the handler returns, given back
        (``NACK``, after ``retry_delay`` seconds) when it raises, and
        dead-lettered to ``<queue>.dead`` after ``max_deliver`` deliveries.
        Runs until ``count`` deliveries were handled or the client is
        closed; cancel the task to stop it (the message being handled and
        those pushed behind it are given back).
        """
        C.check_work_args(handler, count, retry_delay, on_error)
        consumer = self.consume(queue, prefetch, max=count, lease=lease, max_deliver=max_deliver)
        handled = 0
        msg: Optional[LeasedMessage] = None
        try:
            async for got in consumer:
                assert isinstance(got, LeasedMessage)
                msg = got
                handled += 1
                try:
                    result = handler(msg)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    try:
                        if not msg.settled:
                            await msg.nack(retry_delay)
                    except UnknownLeaseError:
                        pass  # the lease ended already: the message is back in the queue anyway
                    except ConnectionError:
                        if not self._closed_by_user():
                            raise
                    C.handler_failed(exc, msg, on_error)
                    continue
                try:
                    if not msg.settled:
                        await msg.ack()
                except UnknownLeaseError:
                    pass  # the lease ran out during the handler: redelivered, as at-least-once allows
                except ConnectionError:
                    # close(force=True) during the ACK: the message goes back
                    # to the queue, as at-least-once allows.
                    if not self._closed_by_user():
                        raise
                    break
        finally:
            # Cancelled mid-handler, or messages pushed but not handed out:
            # give them back now rather than when their leases run out.
            left: List[Any] = await consumer.close()
            if msg is not None and not msg.settled:
                left.insert(0, msg)
            for m in reversed(left):  # last first: they end up at the head in their order
                if self.closed:
                    break
                try:
                    await m.nack()
                except (UnknownLeaseError, ConnectionError):
                    pass
        return handled

    async def publish(self, channel: P.QueueName, data: P.Data) -> int:
        """Sends ``data`` to every current subscriber of ``channel``; returns how many there were (0: nothing kept)."""
        return await self._run(C.publish(channel, data))

    async def subscribe(self, channel: P.QueueName, *, max_buffered: int = DEFAULT_MAX_BUFFERED) -> "Subscription":
        """Subscribes to ``channel`` and returns the :class:`Subscription` (``async for`` it) once the server confirmed.

        Delivery and ``max_buffered`` are as in :meth:`beuss.Client.subscribe`.
        """
        ch = C.subscribe_args(channel, max_buffered)
        self._check_open()
        if ch in self._subscriptions:
            raise C.already_subscribed(channel)
        sub = Subscription(self, ch, max_buffered)
        # Registered before SUB is sent: events may follow its OK at once.
        self._subscriptions[ch] = sub
        try:
            await self._run(C.sub(ch))
        except BaseException:
            forget(self._subscriptions, ch, sub)
            sub._active = False
            raise
        return sub

    async def schedule_add(self, name: P.QueueName, queue: P.QueueName, spec: str, data: P.Data = b"") -> datetime.datetime:
        """Adds (or replaces) a recurring schedule; see :meth:`beuss.Client.schedule_add`. Returns its first fire time."""
        return await self._run(C.schedule_add(name, queue, spec, data))

    async def schedules(self) -> List[P.ScheduleInfo]:
        """Returns every schedule as ``ScheduleInfo(name, queue, next, fired, spec)``, sorted by name."""
        return await self._run(C.schedules())

    async def schedule_remove(self, name: P.QueueName) -> None:
        """Removes the schedule ``name``; raises :class:`~beuss.NoScheduleError` when there is none."""
        await self._run(C.schedule_remove(name))

    async def _unsub(self, sub: "Subscription") -> None:
        try:
            await self._run(C.unsub(sub.channel_bytes))
        finally:
            forget(self._subscriptions, sub.channel_bytes, sub)

    # -- for Consumer --------------------------------------------------------------------------

    def _grant(self, consumer: "Consumer", n: int) -> None:
        if self._closed_reason is None:
            self._send(C.credit(consumer.queue_bytes, n), 1, consumer)

    def _release(self, consumer: "Consumer") -> None:
        forget(self._consumers, consumer.queue_bytes, consumer)


class _Waiting:
    """What a consumer and a subscription share in asyncio: waiting for what the read loop hands them."""

    # Kept by ConsumerState or SubscriptionState.
    _client: Client
    _buf: Deque[Any]
    _active: bool
    _error: Optional[BaseException]
    # One future shared by every task waiting on this feed; asyncio.wait
    # neither cancels it on timeout nor when a waiting task is cancelled, so
    # the others still get woken.
    _waiter: "Optional[asyncio.Future[None]]" = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, err: BaseException) -> None:
        if self._error is None:
            self._error = err
        self._wake()

    def _ended(self, err: Optional[BaseException]) -> None:
        """Ends the feed with its connection; ``err`` (a lost connection) is raised once what was received is handed out."""
        self._active = False
        if err is not None:
            self._fail(self._client._closed_error())
        self._wake()

    async def _wait(self, timeout: Optional[float]) -> None:
        """Returns once something is buffered, the feed has ended or failed, or ``timeout`` seconds (None: no limit) passed."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._buf and self._active and self._error is None:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            if self._waiter is None or self._waiter.done():
                self._waiter = loop.create_future()
            await asyncio.wait([self._waiter], timeout=left)

    def _raise_error(self) -> None:
        """Raises the error kept for the loop, once; returns if there is none."""
        if self._error is not None:
            err, self._error = self._error, None
            raise err


class Consumer(ConsumerState[Client], _Waiting):
    """One ``ON`` subscription, read with ``async for``; see :class:`beuss.Consumer` for delivery rules.

    ``async with`` unsubscribes on exit (a plain ``break`` out of ``async
    for`` leaves it subscribed until :meth:`unsubscribe` or :meth:`close`).
    ``await consumer.next(timeout)`` waits at most ``timeout`` seconds.
    """

    def __init__(self, client: Client, queue: bytes, prefetch: int, max: Optional[int], leased: bool = False) -> None:
        super().__init__(client, queue, prefetch, max, leased)
        self._closing: "Optional[asyncio.Future[List[Any]]]" = None

    def __repr__(self) -> str:
        return f"<beuss.aio.Consumer {self.queue!r} prefetch={self.prefetch} {'active' if self._active else 'closed'}>"

    # Called by the client.
    def _push(self, data: Any) -> None:
        self._buf.append(data)  # as ConsumerState._push, without the cost of super() per message
        self._wake()

    def _on_reply(self, future: "asyncio.Future[List[Any]]") -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._fail(exc)
            return
        reply = future.result()[0]
        if reply[0] is P.ERR:
            # The server refused ON: the subscription never existed.
            self._active = False
            self._client._release(self)
            self._fail(server_error(reply[1], reply[2]))

    # Iteration.
    def __aiter__(self) -> "Consumer":
        return self

    async def __anext__(self) -> Message:
        if self._buf and not self._reached_max():
            # A message is here: no coroutine of next() needed.
            msg = self._take()
            if self._active and self._reached_max():
                await self.unsubscribe()
            return msg
        waited = await self.next()
        if waited is None:
            raise StopAsyncIteration
        return waited

    async def __aenter__(self) -> "Consumer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.unsubscribe()

    async def next(self, timeout: Optional[float] = None) -> Optional[Message]:
        """Returns the next message, waiting at most ``timeout`` seconds (None: no limit).

        Returns None when the time runs out or once the consumer has ended;
        raises ConnectionError (after handing out what was received) when the
        connection was lost, or the server's error if it refused the ``ON``.
        """
        await self._wait(timeout)
        if self._reached_max():
            # Under a lease the server may push past max (ACKs give credit back): those stay for close().
            return None
        if not self._buf:
            self._raise_error()
            return None
        msg = self._take()
        if self._active and self._reached_max():
            await self.unsubscribe()
        return msg

    async def close(self) -> List[Message]:
        """Ends the subscription (``OFF``) and returns the messages pushed but not yet handed out. Idempotent."""
        await self.unsubscribe()
        return self._take_all()

    async def unsubscribe(self) -> None:
        """Ends the subscription (``OFF``); messages already pushed stay here for ``async for`` to hand out. Idempotent."""
        if self._active:
            self._active = False
            if not self._client.closed:
                self._closing = self._client._send(C.off(self.queue_bytes).request, 1)
            self._wake()
        if self._closing is not None:
            try:
                await asyncio.shield(self._closing)
            except ConnectionError:
                pass
            finally:
                self._client._release(self)


class _Connecting:
    """What :func:`connect` returns: await it for a :class:`Client`, or use it with ``async with``."""

    def __init__(self, host: Optional[str], port: Optional[int], connect_timeout: Optional[float]) -> None:
        self._host, self._port = resolve_address(host, port)
        self._connect_timeout = connect_timeout
        self._client: Optional[Client] = None

    async def _connect(self) -> Client:
        host, port = self._host, self._port
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self._connect_timeout)
        except asyncio.TimeoutError as e:
            raise ConnectionError("ETIMEDOUT", f"cannot connect to beuss at {host}:{port}: timed out", host, port) from e
        except OSError as e:
            raise ConnectionError(ConnectionError.code_of(e), f"cannot connect to beuss at {host}:{port}: {e}", host, port) from e
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Client(reader, writer, host, port)

    def __await__(self) -> Generator[Any, None, Client]:
        return self._connect().__await__()

    async def __aenter__(self) -> Client:
        self._client = await self._connect()
        return self._client

    async def __aexit__(self, *exc: Any) -> None:
        if self._client is not None:
            await self._client.close()


def connect(host: Optional[str] = None, port: Optional[int] = None, *, connect_timeout: Optional[float] = 10.0) -> _Connecting:
    """Returns a connection in progress: ``await`` it for a :class:`Client`, or ``async with`` it.

    ``host`` and ``port`` default to ``BHOST``/``BPORT``, then
    ``localhost:6552``. Raises :class:`~beuss.ConnectionError` if the server
    cannot be reached. Bound waits with ``asyncio.wait_for`` or
    ``asyncio.timeout``: a cancelled call leaves the connection in sync.
    """
    return _Connecting(host, port, connect_timeout)


class Subscription(SubscriptionState[Client], _Waiting):
    """One ``SUB``, read with ``async for``; see :class:`beuss.Subscription` for what is delivered and dropped.

    ``async with`` unsubscribes on exit; ``await sub.next(timeout)`` waits at
    most ``timeout`` seconds.
    """

    def __repr__(self) -> str:
        return f"<beuss.aio.Subscription {self.channel!r} {'active' if self._active else 'closed'}>"

    def _event(self, data: bytes) -> None:
        super()._event(data)
        self._wake()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> ChannelEvent:
        ev = await self.next()
        if ev is None:
            raise StopAsyncIteration
        return ev

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def next(self, timeout: Optional[float] = None) -> Optional[ChannelEvent]:
        """Returns the next event, waiting at most ``timeout`` seconds (None: no limit); None when the time runs out or it ended."""
        await self._wait(timeout)
        if self._buf:
            return self._buf.popleft()
        self._raise_error()
        return None

    async def close(self) -> None:
        """Ends the subscription (``UNSUB``) and drops the events not handed out yet. Idempotent."""
        if not self._active:
            return
        self._active = False
        self._buf.clear()
        self._wake()
        if self._client._closed_reason is None:
            await self._client._unsub(self)
