"""Each operation as the request bytes it sends and the reading of its reply, without I/O.

A function here checks an operation's arguments and returns a ``Command``:
the request, and ``result``, which turns the server's reply into what the
client returns (or raises). The blocking and the asyncio clients send
``command.request`` each in their own way and return
``command.result(reply)``; an ``ERR`` reply never reaches ``result``, the
clients raise it first.
"""

import datetime as _dt
import logging
from typing import Any, Callable, Generic, Iterable, List, Optional, Tuple, TypeVar, Union

from . import _protocol as P
from .errors import AlreadySubscribedError, InvalidArgumentError, ProtocolError, ServerError, server_error
from .message import LeasedMessage

#: Messages a consumer lets the server push ahead of what it has handled (as the Node.js client).
DEFAULT_PREFETCH = 64
#: Largest prefetch accepted (as the Node.js client).
MAX_PREFETCH = 1_000_000
#: Events a subscription keeps for a loop slower than the publishers (as the Node.js client).
DEFAULT_MAX_BUFFERED = 10_000
#: Lease of ``work()`` in seconds (as the Node.js client): a longer handler should ``touch()`` its message.
DEFAULT_WORK_LEASE = 30.0

# The range of a lease (ms) and of MAXDELIVER: 32-bit on the server.
_MAX_U32 = 0xFFFFFFFF

_log = logging.getLogger("beuss")

T = TypeVar("T")


class Command(Generic[T]):
    """One request: its bytes, the reading of its reply, and the seconds the server may hold that reply."""

    __slots__ = ("request", "result", "wait")

    def __init__(self, request: bytes, result: Callable[[P.Reply], T], wait: float = 0.0) -> None:
        self.request = request
        self.result = result
        # A GET ... WAIT: the blocking client's timeout counts from the end of it.
        self.wait = wait


class Batch(Generic[T]):
    """Requests sent pipelined, the reading of each reply, and whether ``OK <n>`` replies may come as plain ints."""

    __slots__ = ("requests", "result", "ok_ints")

    def __init__(self, requests: Iterable[bytes], result: Callable[[P.Reply], T], ok_ints: bool = False) -> None:
        self.requests = requests
        self.result = result
        self.ok_ints = ok_ints


# -- reading replies ---------------------------------------------------------------


def _unexpected(reply: P.Reply, request: str) -> ProtocolError:
    """Returns the error for a reply of the wrong kind to ``request``."""
    return ProtocolError(f"unexpected reply {reply[0]} to {request}")


def _ok_int(reply: P.Reply, request: str) -> int:
    """Returns the number of an ``OK <n>`` reply, or raises ProtocolError."""
    if reply[0] is not P.OK or not reply[1] or not reply[1][0].isdigit():
        raise _unexpected(reply, request)
    return int(reply[1][0])


def _msg_or_none(reply: P.Reply, request: str) -> Optional[bytes]:
    """Returns the payload of a ``MSG`` reply, None for ``EMPTY``, or raises ProtocolError."""
    if reply[0] is P.MSG:
        data: bytes = reply[1]
        return data
    if reply[0] is P.EMPTY:
        return None
    raise _unexpected(reply, request)


def _ok(request: str) -> Callable[[P.Reply], None]:
    def result(reply: P.Reply) -> None:
        if reply[0] is not P.OK:
            raise _unexpected(reply, request)

    return result


def _int(request: str) -> Callable[[P.Reply], int]:
    return lambda reply: _ok_int(reply, request)


def _msg(request: str) -> Callable[[P.Reply], Optional[bytes]]:
    return lambda reply: _msg_or_none(reply, request)


def _document(request: str, parse: Callable[[bytes], T]) -> Callable[[P.Reply], T]:
    def result(reply: P.Reply) -> T:
        if reply[0] is not P.DATA:
            raise _unexpected(reply, request)
        return parse(reply[1])

    return result


def _pong(reply: P.Reply) -> None:
    if reply[0] is not P.PONG:
        raise _unexpected(reply, "PING")


_PUT = _int("PUT")
_GET = _msg("GET")


def batch_results(replies: Iterable[Any], result: Callable[[P.Reply], T]) -> List[Optional[T]]:
    """Returns each reply of a batch read by ``result``, None in the place of a refused one.

    The first refusal is raised once every reply is read, with the list in
    its ``results``. ``replies`` may hold plain ints (``OK <n>`` read in bulk).
    """
    results: List[Optional[T]] = []
    first_error: Optional[ServerError] = None
    for reply in replies:
        if type(reply) is int:
            results.append(reply)  # type: ignore[arg-type]  # T is int for PUTs
        elif reply[0] is P.ERR:
            if first_error is None:
                first_error = server_error(reply[1], reply[2])
            results.append(None)
        else:
            results.append(result(reply))
    if first_error is not None:
        first_error.results = results  # type: ignore[attr-defined]
        raise first_error
    return results


# -- arguments ---------------------------------------------------------------------


def lease_id(id: Any) -> bytes:
    """Returns a lease id as sent on the wire, or raises InvalidArgumentError."""
    s = str(id)
    if not s.isdigit() or len(s) > 19:
        raise InvalidArgumentError(f"a lease id is 1 to 19 decimal digits, got {id!r}")
    return s.encode()


def lease_to_ms(lease: float) -> int:
    """Returns a lease in seconds as milliseconds, or raises InvalidArgumentError."""
    ms = P.seconds_to_ms(lease, "lease")
    if ms < 1 or ms > _MAX_U32:
        raise InvalidArgumentError(f"lease must be from 0.001 to 4294967 seconds, got {lease!r}")
    return ms


def _wait_ms(wait: Optional[float]) -> int:
    return 0 if wait is None else P.seconds_to_ms(wait, "wait")


# -- the operations ----------------------------------------------------------------


def ping() -> Command[None]:
    """Returns the ``PING`` command."""
    return Command(b"PING\r\n", _pong)


def put(
    queue: P.QueueName,
    data: P.Data,
    delay: Union[None, int, float, str] = None,
    at: Union[None, int, float, _dt.datetime] = None,
) -> Command[int]:
    """Returns the ``PUT`` command; its result is the number of bytes stored. See ``when_suffix`` for ``delay``/``at``."""
    when = P.when_suffix(delay, at)
    return Command(P.encode_put(P.queue_bytes(queue), P.payload_bytes(data), when), _PUT)


def put_many(queue: P.QueueName, messages: Iterable[P.Data]) -> Batch[int]:
    """Returns the ``PUT`` of each message, encoded as it is sent (a message of the wrong type raises then)."""
    q = P.queue_bytes(queue)
    encode_put, payload_bytes = P.encode_put, P.payload_bytes
    return Batch((encode_put(q, payload_bytes(m)) for m in messages), _PUT, ok_ints=True)


def get(queue: P.QueueName, wait: Optional[float] = None) -> Command[Optional[bytes]]:
    """Returns the ``GET [WAIT]`` command; its result is the message, or None for an empty queue."""
    q = P.queue_bytes(queue)
    ms = _wait_ms(wait)
    return Command(b"GET %s WAIT %d\r\n" % (q, ms) if ms else b"GET %s\r\n" % q, _GET, ms / 1000)


def get_many(queue: P.QueueName, count: int) -> Batch[Optional[bytes]]:
    """Returns ``count`` plain ``GET``s of ``queue``."""
    q = P.queue_bytes(queue)
    P.check_int(count, "count", 0, P.MAX_NUMBER)
    req = b"GET %s\r\n" % q
    return Batch((req for _ in range(count)), _GET)


def get_leased(
    queue: P.QueueName, lease: float, wait: Optional[float], max_deliver: Optional[int], client: Any
) -> Command[Optional[LeasedMessage]]:
    """Returns ``GET <q> [WAIT] LEASE <ms> [MAXDELIVER]``; its result is a LeasedMessage settled through ``client``, or None."""
    q = P.queue_bytes(queue)
    ms = _wait_ms(wait)
    req = b"GET %s" % q
    if ms:
        req += b" WAIT %d" % ms
    req += b" LEASE %d" % lease_to_ms(lease)
    if max_deliver is not None:
        P.check_int(max_deliver, "max_deliver", 1, _MAX_U32)
        req += b" MAXDELIVER %d" % max_deliver

    def result(reply: P.Reply) -> Optional[LeasedMessage]:
        if reply[0] is P.EMPTY:
            return None
        if reply[0] is not P.MSG or len(reply) != 4:
            raise _unexpected(reply, "GET ... LEASE")
        return LeasedMessage(q.decode("utf-8", "surrogateescape"), reply[1], reply[2], reply[3], client)

    return Command(req + b"\r\n", result, ms / 1000)


def ack(id: Any) -> Command[None]:
    """Returns the ``ACK`` of a leased delivery."""
    return Command(b"ACK %s\r\n" % lease_id(id), _ok("ACK"))


def nack(id: Any, delay: Optional[float]) -> Command[None]:
    """Returns the ``NACK [DELAY]`` of a leased delivery."""
    ms = 0 if delay is None else P.seconds_to_ms(delay, "delay")
    return Command(b"NACK %s DELAY %d\r\n" % (lease_id(id), ms) if ms else b"NACK %s\r\n" % lease_id(id), _ok("NACK"))


def touch(id: Any, seconds: Optional[float]) -> Command[None]:
    """Returns the ``TOUCH`` of a leased delivery: to ``seconds`` from now, or by its own duration."""
    wire_id = lease_id(id)
    if seconds is None:
        return Command(b"TOUCH %s\r\n" % wire_id, _ok("TOUCH"))
    return Command(b"TOUCH %s %d\r\n" % (wire_id, max(1, P.seconds_to_ms(seconds, "seconds"))), _ok("TOUCH"))


def peek(queue: P.QueueName) -> Command[Optional[bytes]]:
    """Returns the ``PEEK`` command; its result is the head message or None."""
    return Command(b"PEEK %s\r\n" % P.queue_bytes(queue), _msg("PEEK"))


def length(queue: P.QueueName) -> Command[int]:
    """Returns the ``LEN`` command."""
    return Command(b"LEN %s\r\n" % P.queue_bytes(queue), _int("LEN"))


def purge(queue: P.QueueName) -> Command[int]:
    """Returns the ``PURGE`` command; its result is how many messages were deleted."""
    return Command(b"PURGE %s\r\n" % P.queue_bytes(queue), _int("PURGE"))


def queues() -> Command[List[P.QueueInfo]]:
    """Returns the ``QUEUES`` command."""
    return Command(b"QUEUES\r\n", _document("QUEUES", P.parse_queues))


def stats() -> Command[P.Stats]:
    """Returns the ``STATS`` command."""
    return Command(b"STATS\r\n", _document("STATS", P.parse_stats))


def publish(channel: P.QueueName, data: P.Data) -> Command[int]:
    """Returns the ``PUB`` command; its result is how many subscribers got the message."""
    payload = P.payload_bytes(data)
    return Command(b"PUB %s %d\r\n%s\r\n" % (P.queue_bytes(channel), len(payload), payload), _int("PUB"))


def subscribe_args(channel: P.QueueName, max_buffered: int) -> bytes:
    """Returns the wire name of the channel of a ``subscribe()``, or raises for a bad argument."""
    ch = P.queue_bytes(channel)
    P.check_int(max_buffered, "max_buffered", 1, 10_000_000)
    return ch


def already_subscribed(channel: P.QueueName) -> AlreadySubscribedError:
    """Returns the error of a second subscription to ``channel`` on one client."""
    return AlreadySubscribedError("ALREADY_SUBSCRIBED", f"this client already subscribes to {channel!r}; close that subscription first")


def sub(channel: bytes) -> Command[None]:
    """Returns the ``SUB`` command."""
    return Command(b"SUB %s\r\n" % channel, _ok("SUB"))


def unsub(channel: bytes) -> Command[None]:
    """Returns the ``UNSUB`` command."""
    return Command(b"UNSUB %s\r\n" % channel, _ok("UNSUB"))


def consume_args(
    queue: P.QueueName, prefetch: int, max: Optional[int], lease: Optional[float], max_deliver: Optional[int]
) -> Tuple[bytes, int]:
    """Returns the wire name of the queue of a ``consume()`` and its lease in ms (0: none), or raises for a bad argument."""
    q = P.queue_bytes(queue)
    P.check_int(prefetch, "prefetch", 1, MAX_PREFETCH)
    if max is not None:
        P.check_int(max, "max", 1, P.MAX_NUMBER)
    ms = 0 if lease is None else lease_to_ms(lease)
    if max_deliver is not None:
        if not ms:
            raise InvalidArgumentError("max_deliver needs lease")
        P.check_int(max_deliver, "max_deliver", 1, _MAX_U32)
    return q, ms


def already_consumes(queue: P.QueueName) -> AlreadySubscribedError:
    """Returns the error of a second consumer of ``queue`` on one client."""
    return AlreadySubscribedError("ALREADY_SUBSCRIBED", f"this client already consumes {queue!r}; close that consumer first")


def on(queue: bytes, granted: int, lease_ms: int, max_deliver: Optional[int]) -> Command[None]:
    """Returns ``ON <queue> CREDIT <granted> [LEASE <ms> [MAXDELIVER <n>]]``."""
    req = b"ON %s CREDIT %d" % (queue, granted)
    if lease_ms:
        req += b" LEASE %d" % lease_ms
        if max_deliver is not None:
            req += b" MAXDELIVER %d" % max_deliver
    return Command(req + b"\r\n", _ok("ON"))


def off(queue: bytes) -> Command[None]:
    """Returns the ``OFF`` command."""
    return Command(b"OFF %s\r\n" % queue, _ok("OFF"))


def credit(queue: bytes, n: int) -> bytes:
    """Returns ``CREDIT <queue> <n>``, sent without waiting for its reply."""
    return b"CREDIT %s %d\r\n" % (queue, n)


def schedule_add(name: P.QueueName, queue: P.QueueName, spec: str, data: P.Data) -> Command[_dt.datetime]:
    """Returns ``SCHEDULE ADD``; its result is the first fire time."""
    req = P.encode_schedule_add(P.queue_bytes(name), P.queue_bytes(queue), spec, P.payload_bytes(data))
    return Command(req, lambda reply: P.unix_ms_to_datetime(_ok_int(reply, "SCHEDULE ADD")))


def schedules() -> Command[List[P.ScheduleInfo]]:
    """Returns ``SCHEDULE LS``."""
    return Command(b"SCHEDULE LS\r\n", _document("SCHEDULE LS", P.parse_schedules))


def schedule_remove(name: P.QueueName) -> Command[None]:
    """Returns ``SCHEDULE RM``."""
    return Command(b"SCHEDULE RM %s\r\n" % P.queue_bytes(name), _ok("SCHEDULE RM"))


# -- work() ------------------------------------------------------------------------


def check_work_args(handler: Any, count: Optional[int], retry_delay: Optional[float], on_error: Any) -> None:
    """Raises InvalidArgumentError for work() arguments that consume() does not check itself."""
    if not callable(handler):
        raise InvalidArgumentError(f"work(queue, handler): handler must be callable, got {handler!r}")
    if on_error is not None and not callable(on_error):
        raise InvalidArgumentError(f"work(): on_error must be callable, got {on_error!r}")
    if count is not None:
        P.check_int(count, "count", 1, P.MAX_NUMBER)
    if retry_delay is not None:
        P.seconds_to_ms(retry_delay, "retry_delay")


def handler_failed(exc: BaseException, msg: LeasedMessage, on_error: Any) -> None:
    """Reports what a work() handler raised: to on_error, else to the "beuss" logger (never silently)."""
    if on_error is not None:
        on_error(exc, msg)
    else:
        _log.warning(
            "work(%r): the handler raised on delivery %s of message %s; it was given back (NACK)",
            msg.queue, msg.deliveries, msg.id, exc_info=exc,
        )
