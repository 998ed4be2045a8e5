"""The blocking beuss client: one TCP connection, pipelined requests, push consumers."""

import datetime
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, TypeVar, Union

from . import _commands as C
from . import _protocol as P
# Defaults shared with beuss.aio, still importable from here ("as": re-exported for type checkers).
from ._commands import DEFAULT_MAX_BUFFERED as DEFAULT_MAX_BUFFERED
from ._commands import DEFAULT_PREFETCH as DEFAULT_PREFETCH
from ._commands import DEFAULT_WORK_LEASE as DEFAULT_WORK_LEASE
from ._commands import MAX_PREFETCH as MAX_PREFETCH
from ._config import resolve_address
from ._consumer import ConsumerState, SubscriptionState, deliver, forget
from .errors import (
    FATAL_CODES,
    BeussError,
    ConnectionError,
    ProtocolError,
    ServerError,
    UnknownLeaseError,
    server_error,
)
from .message import ChannelEvent, LeasedMessage, Message

__all__ = ["Client", "Consumer", "Pipeline", "connect", "DEFAULT_PREFETCH", "MAX_PREFETCH"]

# Pipelined calls (put_many, get_many) send at most this many requests or
# bytes before reading replies, and keep at most two such chunks unanswered,
# so neither side ever buffers a whole batch.
_CHUNK_REQUESTS = 4096
_CHUNK_BYTES = 256 * 1024
_RECV_SIZE = 256 * 1024

T = TypeVar("T")


class _Slot:
    """Where the replies to one call land, in request order.

    A call registers a slot for its ``n`` requests before sending them; the
    reader fills slots from the left. A call interrupted before its replies
    arrived (a timeout, KeyboardInterrupt) leaves its slot behind and the
    replies are still matched to it, so the connection stays in sync.
    """

    __slots__ = ("n", "replies", "consumer")

    def __init__(self, n: int, consumer: "Optional[Consumer]" = None) -> None:
        self.n = n
        # Reply tuples, or plain ints for OK <n> replies read in bulk.
        self.replies: List[Any] = []
        # Set for a CREDIT grant sent without waiting: its error goes to the consumer.
        self.consumer = consumer


class Client:
    """A connection to a beuss server; make one with :func:`connect`.

    Methods block until the server has answered. A client may be shared by
    threads: calls take turns on the connection (a ``get(wait=...)`` holds
    it for its wait), while a consumer waiting for a push lets the others
    through. It is a context manager that closes the connection on exit.
    """

    def __init__(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        *,
        connect_timeout: Optional[float] = 10.0,
        timeout: Optional[float] = None,
    ) -> None:
        """Opens a connection; see :func:`connect` for the arguments."""
        self.host, self.port = resolve_address(host, port)
        self._timeout = timeout
        self._sock: Optional[socket.socket] = None
        self._closed_reason = "never connected"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=connect_timeout)
        except OSError as e:
            raise ConnectionError(
                ConnectionError.code_of(e), f"cannot connect to beuss at {self.host}:{self.port}: {e}", self.host, self.port
            ) from e
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Non-blocking, with our own waits: a large send then keeps reading
        # replies and pushes, so neither side's buffers fill up and stall.
        sock.setblocking(False)
        self._sock = sock
        self._sel = selectors.DefaultSelector()
        self._sel.register(sock, selectors.EVENT_READ)
        # Consumers wait for pushes outside the lock, on the socket and on a
        # wake-up pair: a thread that routes a push to them while they wait
        # (having read it itself) writes a byte there. This selector is never
        # modified, so several threads may wait on it at once.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._push_sel = selectors.DefaultSelector()
        self._push_sel.register(sock, selectors.EVENT_READ)
        self._push_sel.register(self._wake_r, selectors.EVENT_READ)
        self._idle_waiters = 0  # threads in that wait
        self._dead_sock: Optional[socket.socket] = None
        # Held while a call sends its requests and reads its replies, so
        # threads sharing the client keep the stream in step (reentrant: a
        # consumer's grant or OFF runs inside its own turn).
        self._lock = threading.RLock()
        self._closing = False
        self._parser = P.ReplyParser()
        self._slots: Deque[_Slot] = deque()
        self._consumers: Dict[bytes, Consumer] = {}
        self._subscriptions: Dict[bytes, Subscription] = {}

    # -- lifetime -------------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<beuss.Client {self.host}:{self.port} {'closed' if self.closed else 'open'}>"

    @property
    def closed(self) -> bool:
        """Returns True once the connection is closed or lost."""
        return self._sock is None

    def close(self) -> None:
        """Closes the connection. Idempotent; callable from any thread.

        Every reply a call waited for has arrived by the time it returns, so
        nothing is lost. A call still waiting in another thread fails with
        ConnectionError; consumers end (iteration stops once what was pushed
        to them is handed out).
        """
        self._closing = True
        sock = self._sock
        if sock is not None:
            try:
                # Wakes a thread blocked on the socket (it sees the end of
                # the stream) without waiting for the lock it holds.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            self._shutdown("the client was closed", lost=False)

    def _shutdown(self, reason: str, lost: bool = True, code: str = "CONNECTION_CLOSED") -> None:
        """Closes the socket; consumers of a lost connection raise ConnectionError once their buffer is empty."""
        if self._sock is None:
            return
        if self._closing:
            reason, lost, code = "the client was closed", False, "CONNECTION_CLOSED"
        self._closed_reason = reason
        sock, self._sock = self._sock, None
        self._sel.close()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._dead_sock = sock
        if self._idle_waiters:
            # Threads wait on these: the last one to leave closes them.
            self._wake_waiters()
        else:
            self._close_wait_resources()
        ended: List[Union[Consumer, Subscription]] = [*self._consumers.values(), *self._subscriptions.values()]
        for consumer in ended:
            consumer._active = False
            if lost and consumer._error is None:
                consumer._error = self._conn_error(code, f"connection lost: {reason}")
        self._consumers.clear()
        self._subscriptions.clear()

    def _wake_waiters(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # full (a wake-up is pending anyway) or closed

    def _close_wait_resources(self) -> None:
        self._push_sel.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._dead_sock is not None:
            self._dead_sock.close()
            self._dead_sock = None

    def _conn_error(self, code: str, what: str) -> ConnectionError:
        return ConnectionError(code, f"beuss at {self.host}:{self.port}: {what}", self.host, self.port)

    def _check_open(self) -> socket.socket:
        if self._sock is None:
            raise self._conn_error("CONNECTION_CLOSED", f"the connection is closed ({self._closed_reason})")
        return self._sock

    def _lost(self, why: str, cause: Optional[BaseException] = None) -> ConnectionError:
        code = "CONNECTION_CLOSED" if cause is None else ConnectionError.code_of(cause)
        self._shutdown(why, code=code)
        return self._conn_error(code, f"connection lost: {why}")

    def _timed_out(self, what: str) -> TimeoutError:
        # A request is half done: the stream can no longer be trusted.
        self._shutdown(f"no answer within {self._timeout} s ({what})", code="ETIMEDOUT")
        return TimeoutError(f"beuss at {self.host}:{self.port} did not answer within {self._timeout} s ({what}); connection closed")

    def _protocol_error(self, err: ProtocolError) -> ProtocolError:
        self._shutdown(str(err), code="PROTOCOL_VIOLATION")
        return err

    # -- moving bytes --------------------------------------------------------------

    def _recv(self, deadline: Optional[float]) -> bool:
        """Reads what the server sent into the parser; returns False if the deadline passed first."""
        sock = self._check_open()
        while True:
            try:
                data = sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self._sel.select(timeout) and deadline is not None and time.monotonic() >= deadline:
                    return False
                continue
            except OSError as e:
                raise self._lost(str(e), e) from e
            if not data:
                raise self._lost("the server closed the connection")
            self._parser.feed(data)
            return True

    def _send(self, data: bytes) -> None:
        """Sends all of ``data``, reading incoming bytes whenever the socket is full."""
        sock = self._check_open()
        view = memoryview(data)
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        try:
            self._send_view(sock, view, deadline)
        except BaseException:
            # A request half sent (or a reply slot with no request behind it,
            # after a KeyboardInterrupt) leaves the stream out of step for good.
            self._shutdown("interrupted while sending a request")
            raise

    def _send_view(self, sock: socket.socket, view: memoryview, deadline: Optional[float]) -> None:
        while view:
            try:
                view = view[sock.send(view) :]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                raise self._lost(str(e), e) from e
            self._sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            try:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                events = self._sel.select(timeout)
            finally:
                if self._sock is not None:
                    self._sel.modify(sock, selectors.EVENT_READ)
            if not events and deadline is not None and time.monotonic() >= deadline:
                raise self._timed_out("sending")
            if any(mask & selectors.EVENT_READ for _, mask in events):
                self._recv(time.monotonic())

    # -- matching replies -------------------------------------------------------------

    def _process(self, frame: P.Reply) -> None:
        """Hands one parsed frame to its consumer, or to the oldest slot waiting for replies."""
        try:
            if deliver(frame, self._consumers, self._subscriptions):
                if self._idle_waiters:
                    self._wake_waiters()
                return
        except ProtocolError as e:
            raise self._protocol_error(e) from None
        if not self._slots:
            if frame[0] is P.ERR and frame[1] in FATAL_CODES:
                # Sent unasked before the server closes: TOO_MANY_CONNECTIONS
                # on connect, SHUTTING_DOWN. (Asked for, _call closes.)
                err = server_error(frame[1], frame[2])
                self._shutdown(str(err), code=frame[1])
                raise err
            raise self._protocol_error(ProtocolError(f"the server sent a reply {frame[0]} to no request"))
        slot = self._slots[0]
        slot.replies.append(frame)
        if len(slot.replies) == slot.n:
            self._slots.popleft()
            consumer = slot.consumer
            if consumer is not None and frame[0] is P.ERR and consumer._error is None:
                consumer._error = server_error(frame[1], frame[2])

    def _next_frame(self) -> Optional[P.Reply]:
        try:
            return self._parser.next()
        except ProtocolError as e:
            raise self._protocol_error(e) from None

    def _pump(self, slot: _Slot, extra_wait: float = 0.0, ok_ints: bool = False) -> List[Any]:
        """Returns the replies of ``slot`` once they have all arrived.

        ``extra_wait``: seconds the server may hold them. ``ok_ints``: read
        leading ``OK <n>`` replies in bulk, as ints (a batch of PUTs).
        """
        deadline = None if self._timeout is None else time.monotonic() + self._timeout + extra_wait
        parser = self._parser
        while len(slot.replies) < slot.n:
            if ok_ints and self._slots and self._slots[0] is slot:
                ints = parser.take_ok_ints(slot.n - len(slot.replies))
                if ints:
                    slot.replies.extend(ints)
                    if len(slot.replies) == slot.n:
                        self._slots.popleft()
                    continue
            frame = self._next_frame()
            if frame is None:
                if not self._recv(deadline):
                    raise self._timed_out("waiting for a reply")
            else:
                self._process(frame)
        return slot.replies

    def _call(self, request: bytes, extra_wait: float = 0.0) -> P.Reply:
        """Sends one request and returns its reply; an ``ERR`` reply is raised."""
        with self._lock:
            self._check_open()
            slot = _Slot(1)
            self._slots.append(slot)
            self._send(request)
            reply: P.Reply = self._pump(slot, extra_wait)[0]
        if reply[0] is P.ERR:
            if reply[1] in FATAL_CODES:
                self._shutdown(f"the server sent {reply[1]}", code=reply[1])
            raise server_error(reply[1], reply[2])
        return reply

    def _exchange(self, requests: Iterable[bytes], ok_ints: bool = False) -> List[Any]:
        """Sends requests in chunks, at most two chunks unanswered, and returns every raw reply in order.

        ``ok_ints``: ``OK <n>`` replies come back as plain ints (read in bulk).
        """
        with self._lock:
            return self._exchange_locked(requests, ok_ints)

    def _exchange_locked(self, requests: Iterable[bytes], ok_ints: bool) -> List[Any]:
        self._check_open()
        replies: List[Any] = []
        pending: Deque[_Slot] = deque()

        def flush(batch: List[bytes]) -> None:
            slot = _Slot(len(batch))
            self._slots.append(slot)
            pending.append(slot)
            self._send(b"".join(batch))

        batch: List[bytes] = []
        size = 0
        for req in requests:
            batch.append(req)
            size += len(req)
            if len(batch) >= _CHUNK_REQUESTS or size >= _CHUNK_BYTES:
                flush(batch)
                batch, size = [], 0
                # Read the previous chunk's replies while this one is in flight.
                while len(pending) > 1:
                    replies += self._pump(pending.popleft(), ok_ints=ok_ints)
        if batch:
            flush(batch)
        while pending:
            replies += self._pump(pending.popleft(), ok_ints=ok_ints)
        return replies

    def _run(self, command: C.Command[T]) -> T:
        """Sends one command and returns its result; an ``ERR`` reply is raised."""
        return command.result(self._call(command.request, command.wait))

    def _pipelined(self, batch: C.Batch[T]) -> List[Optional[T]]:
        """Sends a batch pipelined and returns each reply's result.

        A refused request gives None in its place; the first refusal is
        raised once every reply is in, with the list in its ``results``.
        """
        return C.batch_results(self._exchange(batch.requests, batch.ok_ints), batch.result)

    def pipeline(self) -> "Pipeline":
        """Returns a :class:`Pipeline`: calls queued on it are sent together by ``execute()``."""
        return Pipeline(self)

    # -- operations ------------------------------------------------------------------

    def ping(self) -> float:
        """Returns the round-trip time of a ``PING`` in seconds (a float, so it is truthy)."""
        command = C.ping()
        t0 = time.perf_counter()
        self._run(command)
        return time.perf_counter() - t0

    def put(
        self,
        queue: P.QueueName,
        data: P.Data,
        *,
        delay: Union[None, int, float, str] = None,
        at: Union[None, int, float, datetime.datetime] = None,
    ) -> int:
        """Appends a message to ``queue`` (created on the fly) and returns the number of bytes stored.

        ``data`` is bytes-like, or ``str`` sent as UTF-8. A result smaller
        than ``len(data)`` means the server truncated an oversized message
        (its default); a server run with ``--oversize reject`` raises
        :class:`~beuss.TooLargeError` instead, and :class:`~beuss.FullError`
        when its memory cap is reached.

        With ``delay`` (seconds, or a duration string such as ``"30s"``,
        ``"5m"``) or ``at`` (a timezone-aware ``datetime``, or Unix seconds)
        the message stays invisible (not taken, not counted by :meth:`len`)
        until then, and joins the queue at that time.
        """
        return self._run(C.put(queue, data, delay, at))

    def put_many(self, queue: P.QueueName, messages: Iterable[P.Data]) -> List[int]:
        """Appends every message to ``queue`` in order, pipelined, and returns the stored length of each.

        Requests go out in chunks without waiting for each reply, so this is
        far faster than :meth:`put` in a loop. If the server refuses some
        (``FULL``, ``TOO_LARGE``), the rest are still sent; the first error is
        raised at the end, its ``results`` attribute holding each stored
        length (None where refused). ``messages`` may be any iterable, read
        as it is sent: a message of the wrong type raises
        InvalidArgumentError, and the messages before it may be stored.
        """
        results = self._pipelined(C.put_many(queue, messages))
        return results  # type: ignore[return-value]  # no None: errors were raised

    def get_leased(
        self, queue: P.QueueName, lease: float, wait: Optional[float] = None, max_deliver: Optional[int] = None
    ) -> Optional[LeasedMessage]:
        """Takes the message at the head of ``queue`` under a lease of ``lease`` seconds (at-least-once).

        Returns a :class:`LeasedMessage` to ``ack()``, or None if the queue is
        empty (after ``wait`` seconds, if given). Unacknowledged when the
        lease runs out or this client disconnects, the message goes back to
        the head of the queue; after ``max_deliver`` deliveries (server
        default 5) it goes to the dead-letter queue ``<queue>.dead``.
        """
        return self._run(C.get_leased(queue, lease, wait, max_deliver, self))

    def ack(self, id: str) -> None:
        """Acknowledges the leased delivery ``id``: the message is deleted. Raises UnknownLeaseError if it is not held."""
        self._run(C.ack(id))

    def nack(self, id: str, delay: Optional[float] = None) -> None:
        """Gives the leased delivery ``id`` back: ready again at the head of its queue, now or after ``delay`` seconds."""
        self._run(C.nack(id, delay))

    def touch(self, id: str, seconds: Optional[float] = None) -> None:
        """Extends the lease ``id`` to ``seconds`` from now (default: the lease's own duration)."""
        self._run(C.touch(id, seconds))

    def get(self, queue: P.QueueName, wait: Optional[float] = None) -> Optional[bytes]:
        """Takes the message at the head of ``queue``; returns its bytes, or None if the queue is empty.

        ``wait`` is in seconds (float): with an empty queue, the server holds
        the request until a message arrives or the time runs out (then
        None). Requests pipelined after a waiting GET on the same connection
        wait with it. The client's ``timeout``, if any, is added to ``wait``.
        """
        # The client's timeout counts from the end of the server's wait (command.wait).
        return self._run(C.get(queue, wait))

    def get_many(self, queue: P.QueueName, count: int) -> List[bytes]:
        """Takes up to ``count`` messages from the head of ``queue`` with pipelined GETs; returns them in queue order."""
        return [m for m in self._pipelined(C.get_many(queue, count)) if m is not None]

    def peek(self, queue: P.QueueName) -> Optional[bytes]:
        """Returns the message at the head of ``queue`` without taking it, or None if the queue is empty."""
        return self._run(C.peek(queue))

    def len(self, queue: P.QueueName) -> int:
        """Returns the number of messages ready in ``queue`` (0 for a queue that does not exist)."""
        return self._run(C.length(queue))

    def purge(self, queue: P.QueueName) -> int:
        """Deletes every message of ``queue`` and returns how many were deleted."""
        return self._run(C.purge(queue))

    def queues(self) -> List[P.QueueInfo]:
        """Returns every queue as ``QueueInfo(name, ready, consumers)``, sorted by name."""
        return self._run(C.queues())

    def stats(self) -> P.Stats:
        """Returns the server's counters as a dict: ints for numbers, str otherwise (see docs/PROTOCOL.md, STATS)."""
        return self._run(C.stats())

    def consume(
        self,
        queue: P.QueueName,
        prefetch: int = DEFAULT_PREFETCH,
        *,
        max: Optional[int] = None,
        lease: Optional[float] = None,
        max_deliver: Optional[int] = None,
    ) -> "Consumer":
        """Subscribes to ``queue`` by server push (``ON``) and returns the :class:`Consumer`, an iterator of :class:`Message`.

        The server pushes up to ``prefetch`` messages ahead of what the loop
        has handled; credit is granted back in batches of half of it. Each
        message of the queue goes to exactly one of its consumers. With
        ``max``, the consumer ends after that many messages and never takes
        more from the queue. One consumer per queue per client. Other calls
        on this client keep working while it consumes.

        With ``lease`` (seconds), every message is taken under a lease
        (at-least-once): the consumer hands out :class:`LeasedMessage` objects
        to ``ack()`` or ``nack()``, ``prefetch`` bounds the unacknowledged ones
        (the server gives credit back on each ACK/NACK, none is granted by
        the client), and a message not settled in time, or held when the
        connection closes, goes back to the head of the queue; after
        ``max_deliver`` deliveries (server default 5) it goes to ``<queue>.dead``.
        """
        q, lease_ms = C.consume_args(queue, prefetch, max, lease, max_deliver)
        with self._lock:
            self._check_open()
            if q in self._consumers:
                raise C.already_consumes(queue)
            consumer = Consumer(self, q, prefetch, max, leased=bool(lease_ms))
            # Registered before ON is sent: pushes may follow its OK at once.
            self._consumers[q] = consumer
            try:
                self._run(C.on(q, consumer._granted, lease_ms, max_deliver))
            except BaseException:
                forget(self._consumers, q, consumer)
                consumer._active = False
                raise
            return consumer

    def work(
        self,
        queue: P.QueueName,
        handler: Callable[[LeasedMessage], Any],
        *,
        lease: float = DEFAULT_WORK_LEASE,
        prefetch: int = 1,
        max_deliver: Optional[int] = None,
        count: Optional[int] = None,
        retry_delay: Optional[float] = None,
        on_error: Optional[Callable[[BaseException, LeasedMessage], Any]] = None,
    ) -> int:
        """Runs ``handler(msg)`` on each message of ``queue``, at least once; returns how many deliveries it handled.

        Each message is taken under a lease of ``lease`` seconds
        (``consume(queue, prefetch, lease=..., max_deliver=...)``): it is
        acknowledged when the handler returns, and given back (``NACK``,
        after ``retry_delay`` seconds) when it raises an ``Exception``, so it
        is tried again; after ``max_deliver`` deliveries (server default 5)
        it goes to ``<queue>.dead``. What the handler raised goes to
        ``on_error(exc, msg)``, or else is logged on the ``"beuss"`` logger,
        and the loop goes on. A handler may settle ``msg`` itself
        (``ack``/``nack``) or extend it (``touch``). Runs in the calling
        thread until ``count`` deliveries were handled (failures included)
        or the client is closed (from another thread); a lost connection
        raises ConnectionError. Messages pushed but not handled when it
        stops are given back.
        """
        C.check_work_args(handler, count, retry_delay, on_error)
        consumer = self.consume(queue, prefetch, max=count, lease=lease, max_deliver=max_deliver)
        handled = 0
        try:
            for msg in consumer:
                assert isinstance(msg, LeasedMessage)
                handled += 1
                try:
                    handler(msg)
                except Exception as exc:
                    try:
                        if not msg.settled:
                            msg.nack(retry_delay)
                    except UnknownLeaseError:
                        pass  # the lease ended already: the message is back in the queue anyway
                    except ConnectionError:
                        if not self._closing:
                            raise
                    C.handler_failed(exc, msg, on_error)
                    continue
                try:
                    if not msg.settled:
                        msg.ack()
                except UnknownLeaseError:
                    pass  # the lease ran out during the handler: redelivered, as at-least-once allows
                except ConnectionError:
                    # close() from another thread during the ACK: the message
                    # goes back to the queue, as at-least-once allows.
                    if not self._closing:
                        raise
                    break
        finally:
            # Pushed under a lease but not handed out: give them back now
            # rather than when their leases run out, last first so that they
            # stand at the head of the queue in their order.
            for left in reversed(consumer.close()):
                if self.closed:
                    break
                try:
                    left.nack()  # type: ignore[attr-defined]
                except (UnknownLeaseError, ConnectionError):
                    pass
        return handled

    def publish(self, channel: P.QueueName, data: P.Data) -> int:
        """Sends ``data`` to every current subscriber of ``channel`` (``PUB``) and returns how many there were.

        Nothing is kept when nobody listens: the result is then 0.
        """
        return self._run(C.publish(channel, data))

    def subscribe(self, channel: P.QueueName, *, max_buffered: int = DEFAULT_MAX_BUFFERED) -> "Subscription":
        """Subscribes to ``channel`` (``SUB``) and returns the :class:`Subscription`, an iterator of :class:`ChannelEvent`.

        Every subscriber receives every message published after this call
        returns. Events the loop has not taken yet are kept here, up to
        ``max_buffered``; past that the oldest is dropped and counted, as the
        server does for a subscriber that does not read. One subscription per
        channel per client.
        """
        ch = C.subscribe_args(channel, max_buffered)
        with self._lock:
            self._check_open()
            if ch in self._subscriptions:
                raise C.already_subscribed(channel)
            sub = Subscription(self, ch, max_buffered)
            self._subscriptions[ch] = sub
            try:
                self._run(C.sub(ch))
            except BaseException:
                forget(self._subscriptions, ch, sub)
                sub._active = False
                raise
            return sub

    def _unsub(self, sub: "Subscription") -> None:
        try:
            self._run(C.unsub(sub.channel_bytes))
        finally:
            forget(self._subscriptions, sub.channel_bytes, sub)

    def schedule_add(self, name: P.QueueName, queue: P.QueueName, spec: str, data: P.Data = b"") -> datetime.datetime:
        """Adds (or replaces) the schedule ``name``: ``data`` is put on ``queue`` at every tick of ``spec``.

        ``spec`` is a cron expression of 5 or 6 fields, a shortcut such as
        ``@hourly``, or ``@every 5m``; UTC unless prefixed with ``TZ=<zone> ``.
        Returns the first fire time (aware UTC datetime). Raises
        :class:`~beuss.BadScheduleError` when the server does not understand it.
        """
        return self._run(C.schedule_add(name, queue, spec, data))

    def schedules(self) -> List[P.ScheduleInfo]:
        """Returns every schedule as ``ScheduleInfo(name, queue, next, fired, spec)``, sorted by name."""
        return self._run(C.schedules())

    def schedule_remove(self, name: P.QueueName) -> None:
        """Removes the schedule ``name``; raises :class:`~beuss.NoScheduleError` when there is none."""
        self._run(C.schedule_remove(name))

    # -- for Consumer ------------------------------------------------------------------

    def _grant(self, consumer: "Consumer", n: int) -> None:
        """Sends ``CREDIT`` without waiting for its reply, which is matched later; an error goes to the consumer."""
        with self._lock:
            self._check_open()
            self._slots.append(_Slot(1, consumer))
            self._send(C.credit(consumer.queue_bytes, n))

    def _wait_push(self, consumer: "_Waiting", timeout: Optional[float]) -> None:
        """Reads until ``consumer`` (or subscription) has a message or an error, or has ended, or the timeout passes.

        The lock is held only while reading what has arrived; the wait for
        more happens outside it, so other threads' calls go through.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                while True:
                    # Route everything already received before reading again:
                    # one recv brings many pushes.
                    frame = self._next_frame()
                    while frame is not None:
                        self._process(frame)
                        frame = self._next_frame()
                    if consumer._buf or consumer._error is not None or not consumer._active or self._sock is None:
                        return
                    try:
                        if not self._recv(time.monotonic()):  # no wait: only what is there
                            break
                    except ConnectionError:
                        if self._closing:
                            return  # close() from another thread: the loop just ends
                        raise
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                self._idle_waiters += 1
            try:
                self._push_sel.select(left)
            finally:
                with self._lock:
                    self._idle_waiters -= 1
                    if self._idle_waiters == 0:
                        # The last waiter out clears the wake-ups (each waiter
                        # re-checks its consumer before waiting again).
                        if self._sock is None:
                            self._close_wait_resources()
                        else:
                            self._drain_wake()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass  # BlockingIOError: empty

    def _off(self, consumer: "Consumer") -> None:
        try:
            self._run(C.off(consumer.queue_bytes))
        finally:
            # Pushes sent before the OK are in consumer._buf by now.
            forget(self._consumers, consumer.queue_bytes, consumer)


class Pipeline:
    """Requests queued without waiting, sent together by :meth:`execute` (as a redis-py pipeline).

    Each method queues one request and returns the pipeline, so calls chain::

        with c.pipeline() as p:
            p.put("jobs", b"a").put("jobs", b"b").len("jobs")
            stored_a, stored_b, length = p.execute()

    Nothing is sent before ``execute()``; leaving a ``with`` block drops
    what was not executed. Requests run on the server in order, but not as a
    transaction: other clients' requests may run between them.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._requests: List[bytes] = []
        self._converts: List[Callable[[P.Reply], Any]] = []

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.reset()

    def __len__(self) -> int:
        return len(self._requests)

    def reset(self) -> None:
        """Drops the requests queued and not executed."""
        self._requests = []
        self._converts = []

    def _queue(self, request: bytes, convert: Callable[[P.Reply], Any]) -> "Pipeline":
        self._requests.append(request)
        self._converts.append(convert)
        return self

    def _add(self, command: C.Command[Any]) -> "Pipeline":
        return self._queue(command.request, command.result)

    def put(self, queue: P.QueueName, data: P.Data) -> "Pipeline":
        """Queues a :meth:`Client.put`; its result is the number of bytes stored."""
        return self._add(C.put(queue, data))

    def get(self, queue: P.QueueName, wait: Optional[float] = None) -> "Pipeline":
        """Queues a :meth:`Client.get`; its result is the message or None. A ``wait`` holds the requests after it."""
        return self._add(C.get(queue, wait))

    def peek(self, queue: P.QueueName) -> "Pipeline":
        """Queues a :meth:`Client.peek`."""
        return self._add(C.peek(queue))

    def len(self, queue: P.QueueName) -> "Pipeline":
        """Queues a :meth:`Client.len`."""
        return self._add(C.length(queue))

    def purge(self, queue: P.QueueName) -> "Pipeline":
        """Queues a :meth:`Client.purge`."""
        return self._add(C.purge(queue))

    def execute(self, raise_on_error: bool = True) -> List[Any]:
        """Sends every queued request, waits for all replies and returns their results in order.

        With ``raise_on_error`` (the default), the first refusal is raised
        once all replies are in, with the results (the exception in the
        refused places) in its ``results``; otherwise the exceptions are
        returned in place. The pipeline is empty afterwards.
        """
        requests, converts = self._requests, self._converts
        self.reset()
        results: List[Any] = []
        first_error: Optional[ServerError] = None
        for reply, convert in zip(self._client._exchange(requests), converts):
            if reply[0] is P.ERR:
                err = server_error(reply[1], reply[2])
                first_error = first_error or err
                results.append(err)
            else:
                results.append(convert(reply))
        if first_error is not None and raise_on_error:
            first_error.results = results  # type: ignore[attr-defined]
            raise first_error
        return results


class _Waiting:
    """What a consumer and a subscription share in the blocking client: waiting for what the client reads for them."""

    # Kept by ConsumerState or SubscriptionState.
    _client: Client
    _buf: Deque[Any]
    _active: bool
    _error: Optional[BaseException]

    def _wait(self, deadline: Optional[float]) -> None:
        """Returns once something is buffered, the feed has ended or failed, or the deadline passed (lock not held)."""
        if not self._buf and self._active:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._client._wait_push(self, left)
            except BeussError:
                self._error = None  # raised now, not again on the next call
                raise

    def _ends(self, deadline: Optional[float]) -> bool:
        """Raises the error kept for the loop, once; else returns True when the loop ends: the feed ended or the deadline passed (lock held)."""
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        return not self._active or (deadline is not None and time.monotonic() >= deadline)


class Consumer(ConsumerState[Client], _Waiting):
    """One ``ON`` subscription of a queue, fed by server push with credit flow control.

    Iterate over it to receive :class:`~beuss.Message` objects in queue
    order; the loop blocks until the next message arrives and ends when the
    consumer is closed or ``max`` is reached. ``next(timeout)`` waits at most
    ``timeout`` seconds.

    Delivery is at-most-once: the server removes a message when it pushes
    it. So ending the subscription never drops what was already pushed:
    ``unsubscribe()`` (or leaving a ``with`` block) sends ``OFF`` and keeps
    those messages for the loop to hand out before it ends; ``close()``
    sends ``OFF`` and returns them. When the connection is lost, the
    buffered ones are handed out first, then ConnectionError is raised.
    """

    def __repr__(self) -> str:
        return f"<beuss.Consumer {self.queue!r} prefetch={self.prefetch} {'active' if self._active else 'closed'}>"

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        msg = self.next()
        if msg is None:
            raise StopIteration
        return msg

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unsubscribe()

    def next(self, timeout: Optional[float] = None) -> Optional[Message]:
        """Returns the next message, waiting at most ``timeout`` seconds (None: no limit).

        Returns None when the time runs out, or once the consumer has ended.
        Raises :class:`~beuss.ConnectionError` when the connection was lost
        (after handing out what was already received).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._wait(deadline)
            with self._client._lock:
                if self._reached_max():
                    # Under a lease the server may push past max (ACKs give credit back):
                    # those stay for close().
                    return None
                if self._buf:
                    msg = self._take()
                    if self._active and self._reached_max():
                        self.unsubscribe()  # OFF as the last message is handed out
                    return msg
                if self._ends(deadline):
                    return None
                # Another thread iterating this consumer took the message: wait again.

    def unsubscribe(self) -> None:
        """Ends the subscription (``OFF``); messages already pushed stay here for the loop to hand out. Idempotent."""
        with self._client._lock:
            if self._active:
                self._active = False
                if not self._client.closed:
                    self._client._off(self)

    def close(self) -> List[Message]:
        """Ends the subscription (``OFF``) and returns the messages pushed but not yet handed out.

        Those messages were already taken from the queue: handle them or put
        them back. Idempotent; a no-op when the connection is closed.
        """
        with self._client._lock:
            self.unsubscribe()
            return self._take_all()


class Subscription(SubscriptionState[Client], _Waiting):
    """A subscription to a channel (``SUB``), made by :meth:`Client.subscribe`: an iterator of :class:`ChannelEvent`.

    ``for event in sub:`` waits for events and ends when the subscription is
    closed or the connection is closed; :meth:`next` takes a timeout. Events
    lost because this subscriber did not keep up (dropped by the server, or
    by the client past ``max_buffered``) are counted in :attr:`dropped` and
    in the ``dropped_before`` of the next event handed out.
    """

    def __repr__(self) -> str:
        return f"<beuss.Subscription {self.channel!r} {'active' if self._active else 'closed'}>"

    def __iter__(self) -> Iterator["ChannelEvent"]:
        return self

    def __next__(self) -> "ChannelEvent":
        ev = self.next()
        if ev is None:
            raise StopIteration
        return ev

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def next(self, timeout: Optional[float] = None) -> "Optional[ChannelEvent]":
        """Returns the next event, waiting at most ``timeout`` seconds (None: no limit); None when the time runs out or the subscription ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._wait(deadline)
            with self._client._lock:
                if self._buf:
                    return self._buf.popleft()
                if self._ends(deadline):
                    return None

    def close(self) -> None:
        """Ends the subscription (``UNSUB``) and drops the events not handed out yet. Idempotent."""
        with self._client._lock:
            if self._active:
                self._active = False
                self._buf.clear()
                if not self._client.closed:
                    self._client._unsub(self)


def connect(
    host: Optional[str] = None,
    port: Optional[int] = None,
    *,
    connect_timeout: Optional[float] = 10.0,
    timeout: Optional[float] = None,
) -> Client:
    """Returns a :class:`Client` connected to a beuss server.

    ``host`` and ``port`` default to the ``BHOST`` and ``BPORT`` environment
    variables, then ``localhost:6552``. ``connect_timeout`` (seconds) bounds
    the TCP connect. ``timeout`` (seconds, None by default as in redis-py)
    bounds each wait for the server; when it passes, ``TimeoutError`` is
    raised and the connection is closed, since a reply is still owed.

    Raises :class:`~beuss.ConnectionError` if the server cannot be reached.
    """
    return Client(host, port, connect_timeout=connect_timeout, timeout=timeout)
