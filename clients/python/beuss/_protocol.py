"""The wire protocol of docs/PROTOCOL.md, without I/O.

Encoders turn calls into request bytes; ``ReplyParser`` turns the bytes the
server sends, split in any way, into replies and pushed messages. The sync and
asyncio clients share this module and differ only in how they move bytes.
"""

import datetime as _dt
import math
import re
from functools import lru_cache
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from .errors import BadQueueNameError, InvalidArgumentError, ProtocolError

#: Payload types ``put`` accepts; ``str`` is sent as UTF-8.
Data = Union[bytes, bytearray, memoryview, str]
#: Queue names may be given as ``str`` (sent as UTF-8) or ``bytes``.
QueueName = Union[str, bytes]

# Reply kinds: the first item of every tuple ReplyParser.next() returns.
OK = "OK"  # ("OK", [token bytes...])
ERR = "ERR"  # ("ERR", code, text)
MSG = "MSG"  # ("MSG", payload)
EMPTY = "EMPTY"  # ("EMPTY",)
DATA = "DATA"  # ("DATA", payload)
PONG = "PONG"  # ("PONG",)
PUSH = "PUSH"  # ("PUSH", queue bytes, payload): not a reply, a delivery
EVENT = "EVENT"  # ("EVENT", channel bytes, payload): not a reply, a channel message
DROPPED = "DROPPED"  # ("DROPPED", channel bytes, n): not a reply, events a subscriber lost

Reply = Tuple[Any, ...]  # one of the shapes above

# The longest queue name the protocol allows (PROTOCOL.md, Framing).
MAX_QUEUE_NAME = 255
# Longest reply header line accepted. Server lines are short (an ERR text, a
# PUSH with a 255-byte queue name); a bound keeps a broken peer from making
# the client buffer without limit while it looks for a line end.
MAX_REPLY_LINE = 64 * 1024
# Longest reply payload accepted (as the Node.js client's maxPayload): the
# server caps messages at 256 MiB, and a QUEUES document this large would be
# millions of queues, so a longer length is a broken stream, not a reply.
MAX_REPLY_PAYLOAD = 1 << 30
# Largest number the protocol carries: 19 decimal digits.
MAX_NUMBER = 10 ** 19 - 1

_QUEUE_RE = re.compile(rb"[\x21-\x7e\x80-\xff]{1,255}")


def queue_name_problem(name: QueueName) -> Optional[str]:
    """Returns None if ``name`` (str or bytes) is a valid queue name, else the reason it is not."""
    try:
        queue_bytes(name)
    except BadQueueNameError as e:
        return e.server_text
    return None


def _raw_problem(raw: bytes) -> Optional[str]:
    if _QUEUE_RE.fullmatch(raw) is not None:
        return None
    if not raw:
        return "queue name is empty"
    if len(raw) > MAX_QUEUE_NAME:
        return f"queue name is {len(raw)} bytes long; the limit is {MAX_QUEUE_NAME}"
    bad = next(b for b in raw if not (0x21 <= b <= 0x7E or b >= 0x80))
    what = {0x20: "a space", 0x09: "a tab"}.get(bad, f"control character 0x{bad:02x}")
    return f"queue name {raw!r} contains {what}; names are printable characters without spaces"


@lru_cache(maxsize=4096)
def queue_bytes(name: QueueName) -> bytes:
    """Returns the wire form of a queue name, or raises ``BadQueueNameError``.

    Names are checked before sending because a space or line end inside one
    would split the request line and desynchronise the connection. A ``str``
    is encoded as UTF-8 (``surrogateescape``, so names read from ``queues()``
    round-trip even when they are not UTF-8).
    """
    if isinstance(name, str):
        try:
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise BadQueueNameError("BAD_QUEUE_NAME", f"queue name {name!r} is not valid Unicode (lone surrogate)") from None
    elif isinstance(name, bytes):
        raw = name
    else:
        raise BadQueueNameError("BAD_QUEUE_NAME", f"queue name must be str or bytes, got {type(name).__name__}")
    problem = _raw_problem(raw)
    if problem is not None:
        raise BadQueueNameError("BAD_QUEUE_NAME", problem)
    return raw


def payload_bytes(data: Data) -> bytes:
    """Returns ``data`` as bytes: ``str`` is encoded as UTF-8."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise InvalidArgumentError(f"message must be bytes, bytearray, memoryview or str, got {type(data).__name__}")


def check_int(value: int, what: str, lo: int, hi: int) -> int:
    """Returns ``value`` if it is an int from ``lo`` to ``hi``, else raises ``InvalidArgumentError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgumentError(f"{what} must be an integer from {lo} to {hi}, got {value!r}")
    return value


def seconds_to_ms(seconds: float, what: str) -> int:
    """Returns a duration in seconds (int or float) as whole milliseconds, rounded up.

    Rounding up keeps a tiny positive wait from becoming "do not wait".
    """
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or math.isnan(seconds)
        or math.isinf(seconds)
        or seconds < 0
    ):
        raise InvalidArgumentError(f"{what} must be a finite number of seconds >= 0, got {seconds!r}")
    return check_int(math.ceil(seconds * 1000), what + " in milliseconds", 0, MAX_NUMBER)


def encode_put(queue: bytes, data: bytes, when: bytes = b"") -> bytes:
    """Returns the bytes of ``PUT <queue> <len>`` (plus ``when``, e.g. `` DELAY 500``) with its payload."""
    return b"PUT %s %d%s\r\n%s\r\n" % (queue, len(data), when, data)


_DURATION_RE = re.compile(r"(\d{1,9})(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> Optional[int]:
    """Returns the milliseconds of a duration such as ``"5m"``, ``"1h30m"``, ``"250ms"``, or None if it is not one."""
    pos, total = 0, 0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            return None
        total += int(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    return total if pos and pos == len(text) else None


def when_suffix(delay: Union[None, int, float, str], at: Union[None, int, float, _dt.datetime]) -> bytes:
    """Returns the `` DELAY <ms>`` or `` AT <unix-ms>`` option of a PUT, or b"" for neither.

    ``delay``: seconds (int or float) or a duration string (``"30s"``, ``"5m"``).
    ``at``: a timezone-aware ``datetime``, or a Unix time in seconds.
    """
    if delay is not None and at is not None:
        raise InvalidArgumentError("put: give delay or at, not both")
    if delay is not None:
        if isinstance(delay, str):
            ms = duration_ms(delay.strip())
            if ms is None:
                raise InvalidArgumentError(f"delay {delay!r} is not a duration like 500ms, 30s, 5m, 1h30m")
            return b" DELAY %d" % check_int(ms, "delay in milliseconds", 0, MAX_NUMBER)
        return b" DELAY %d" % seconds_to_ms(delay, "delay")
    if at is not None:
        if isinstance(at, _dt.datetime):
            if at.tzinfo is None:
                raise InvalidArgumentError("at must be a timezone-aware datetime (a naive one would depend on the local zone)")
            secs: float = at.timestamp()
        elif isinstance(at, (int, float)) and not isinstance(at, bool):
            secs = at
        else:
            raise InvalidArgumentError(f"at must be a timezone-aware datetime or Unix seconds, got {type(at).__name__}")
        return b" AT %d" % seconds_to_ms(secs, "at")
    return b""


def encode_schedule_add(name: bytes, queue: bytes, spec: str, data: bytes) -> bytes:
    """Returns the bytes of ``SCHEDULE ADD <name> <queue> <len>`` with its payload: the spec line, then the message."""
    if not isinstance(spec, str) or not spec.strip() or "\n" in spec or "\r" in spec or len(spec.encode()) > 200:
        raise InvalidArgumentError("schedule spec must be a one-line string of 1 to 200 bytes")
    payload = spec.strip().encode("utf-8") + b"\n" + data
    return b"SCHEDULE ADD %s %s %d\r\n%s\r\n" % (name, queue, len(payload), payload)


class ScheduleInfo(NamedTuple):
    """One line of ``SCHEDULE LS``: name, queue, next fire time (aware UTC datetime), messages put so far, spec."""

    name: str
    queue: str
    next: _dt.datetime
    fired: int
    spec: str


_SCHED_RE = re.compile(rb"(\S+) (\S+) (\d{1,19}) (\d{1,19}) (.+)")


def parse_schedules(doc: bytes) -> List[ScheduleInfo]:
    """Returns the schedules listed in a ``SCHEDULE LS`` document, sorted by name as the server sends them."""
    out: List[ScheduleInfo] = []
    for line in doc.split(b"\n"):
        if not line:
            continue
        m = _SCHED_RE.fullmatch(line)
        if m is None:
            raise ProtocolError(f"bad SCHEDULE LS line from the server: {line[:200]!r}")
        out.append(
            ScheduleInfo(
                m.group(1).decode("utf-8", "surrogateescape"),
                m.group(2).decode("utf-8", "surrogateescape"),
                unix_ms_to_datetime(int(m.group(3))),
                int(m.group(4)),
                m.group(5).decode("utf-8", "replace"),
            )
        )
    return out


def unix_ms_to_datetime(ms: int) -> _dt.datetime:
    """Returns the aware UTC datetime of a Unix time in milliseconds."""
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)


class QueueInfo(NamedTuple):
    """One line of ``QUEUES``: a queue's name, ready messages, ``ON`` consumers,
    messages held under a lease, delayed messages not yet due, and messages in
    its dead-letter queue ``<name>.dead`` (the last three are 0 from a
    protocol 1 server)."""

    name: str
    ready: int
    consumers: int
    leased: int = 0
    scheduled: int = 0
    dead: int = 0


def parse_queues(doc: bytes) -> List[QueueInfo]:
    """Returns the queues listed in a ``QUEUES`` document, in the server's (name) order.

    Names are decoded as UTF-8 with ``surrogateescape``, so a non-UTF-8 name
    encodes back to the same bytes. Extra fields, reserved for later
    versions, are ignored.
    """
    out: List[QueueInfo] = []
    for line in doc.split(b"\n"):
        if not line:
            continue
        fields = line.split()
        if len(fields) < 3:
            raise ProtocolError(f"bad QUEUES line from the server: {line[:200]!r}")
        try:
            counts = [int(f) for f in fields[1:6]]
            out.append(QueueInfo(fields[0].decode("utf-8", "surrogateescape"), *counts))
        except ValueError:
            raise ProtocolError(f"bad QUEUES line from the server: {line[:200]!r}") from None
    return out


#: What ``stats()`` returns: ints for numeric values, str otherwise.
Stats = Dict[str, Union[int, str]]


def parse_stats(doc: bytes) -> Stats:
    """Returns the ``STATS`` document as a dict; decimal values become ints."""
    out: Stats = {}
    for line in doc.decode("utf-8", "replace").split("\n"):
        key, _, value = line.strip().partition(" ")
        if not key:
            continue
        value = value.strip()
        out[key] = int(value) if value.isdigit() else value
    return out


def _length(token: bytes, line: bytes) -> int:
    if not token.isdigit() or len(token) > 19:
        raise ProtocolError(f"bad length in reply from the server: {line[:200]!r}")
    n = int(token)
    if n > MAX_REPLY_PAYLOAD:
        raise ProtocolError(f"reply length {n} from the server is beyond any sane size: {line[:200]!r}")
    return n


_OK_INT = re.compile(rb"OK (\d{1,19})\r?\n")


class ReplyParser:
    """Incremental parser of what the server sends.

    ``feed()`` the bytes as they arrive, in any split, then call ``next()``
    until it returns ``None`` (it needs more bytes). Each other result is a
    tuple whose first item is one of ``OK``, ``ERR``, ``MSG``, ``EMPTY``,
    ``DATA``, ``PONG`` (replies, in request order) or ``PUSH`` (a delivery to
    an ``ON`` subscription, never a reply). Broken input raises
    ``ProtocolError``; the parser is then unusable, like the stream.
    """

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        """Appends bytes received from the server."""
        if self._pos:
            # Drop consumed bytes in batches, not per reply: cheap amortised.
            if self._pos == len(self._buf):
                self._buf.clear()
                self._pos = 0
            elif self._pos > 65536:
                del self._buf[: self._pos]
                self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Returns the number of received bytes not yet returned as replies."""
        return len(self._buf) - self._pos

    def take_ok_ints(self, limit: int) -> List[int]:
        """Returns the numbers of up to ``limit`` leading ``OK <n>`` replies, consuming them.

        The fast path for a pipelined batch of PUTs: it stops at anything
        else (an error, a push, an incomplete line), which ``next()`` handles.
        """
        buf = self._buf
        pos = self._pos
        match = _OK_INT.match
        out: List[int] = []
        while len(out) < limit:
            m = match(buf, pos)
            if m is None:
                break
            out.append(int(m.group(1)))
            pos = m.end()
        self._pos = pos
        return out

    def next(self) -> Optional[Reply]:
        """Returns the next complete reply or push, or ``None`` if more bytes are needed."""
        buf = self._buf
        pos = self._pos
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if len(buf) - pos > MAX_REPLY_LINE:
                raise ProtocolError(f"reply line from the server longer than {MAX_REPLY_LINE} bytes")
            return None
        end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        line = bytes(buf[pos:end])
        word, _, rest = line.partition(b" ")
        if word == b"PUSH":
            # The hot path of a consumer: checked first, parsed inline.
            args = rest.split()
            # A leased push (4 fields) takes the general path below.
            if len(args) != 4 and (len(args) != 2 or not args[1].isdigit() or len(args[1]) > 19):
                raise ProtocolError(f"bad PUSH line from the server: {line[:200]!r}")
            start = nl + 1
            stop = start + int(args[1])
            if len(args) == 2 and len(buf) > stop + 1 and buf[stop] == 13 and buf[stop + 1] == 10:
                self._pos = stop + 2
                return (PUSH, args[0], bytes(buf[start:stop]))
        if word == b"OK":
            self._pos = nl + 1
            return (OK, rest.split())
        if word == b"MSG" or word == b"DATA" or word == b"PUSH" or word == b"EVENT":
            args = rest.split()
            # A leased MSG or PUSH adds "<id> <deliveries>" after the length.
            lease: Tuple[Any, ...] = ()
            if word == b"PUSH" or word == b"EVENT":
                if len(args) != 2 and not (word == b"PUSH" and len(args) == 4):
                    raise ProtocolError(f"bad {word.decode()} line from the server: {line[:200]!r}")
                n = _length(args[1], line)
                extra = args[2:]
            else:
                if len(args) != 1 and not (word == b"MSG" and len(args) == 3):
                    raise ProtocolError(f"unexpected {word.decode()} line from the server: {line[:200]!r}")
                n = _length(args[0], line)
                extra = args[1:]
            if extra:
                if not all(t.isdigit() and len(t) <= 19 for t in extra):
                    raise ProtocolError(f"bad lease in a line from the server: {line[:200]!r}")
                lease = (extra[0].decode(), int(extra[1]))
            start = nl + 1
            stop = start + n
            if len(buf) <= stop:
                return None
            if buf[stop] == 10:
                after = stop + 1
            elif buf[stop] == 13:
                if len(buf) <= stop + 1:
                    return None
                if buf[stop + 1] != 10:
                    raise ProtocolError(f"payload from the server not followed by a line end after {line[:200]!r}")
                after = stop + 2
            else:
                raise ProtocolError(f"payload from the server not followed by a line end after {line[:200]!r}")
            payload = bytes(buf[start:stop])
            self._pos = after
            if word == b"PUSH":
                return (PUSH, args[0], payload) + lease
            if word == b"EVENT":
                return (EVENT, args[0], payload)
            return (MSG if word == b"MSG" else DATA, payload) + lease
        self._pos = nl + 1
        if word == b"EMPTY" and not rest:
            return (EMPTY,)
        if word == b"PONG" and not rest:
            return (PONG,)
        if word == b"DROPPED":
            args = rest.split()
            if len(args) != 2 or not args[1].isdigit() or len(args[1]) > 19:
                raise ProtocolError(f"bad DROPPED line from the server: {line[:200]!r}")
            return (DROPPED, args[0], int(args[1]))
        if word == b"ERR":
            code, _, text = rest.partition(b" ")
            return (ERR, code.decode("ascii", "replace"), text.strip().decode("utf-8", "replace"))
        raise ProtocolError(f"unexpected line from the server: {line[:200]!r}")
