"""What a consumer receives: the bytes plus the queue they came from."""

import json as _json
from typing import Any, Optional

__all__ = ["Message", "ChannelEvent", "LeasedMessage"]


class _Payload:
    """The payload accessors that a queue message and a channel event share."""

    __slots__ = ("data",)

    data: bytes

    def text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Returns the bytes decoded (UTF-8 by default)."""
        return self.data.decode(encoding, errors)

    def json(self) -> Any:
        """Returns the bytes parsed as JSON."""
        return _json.loads(self.data)

    def __bytes__(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def _shown(self) -> str:
        """Returns the first 40 bytes as a repr, with "..." when there are more."""
        return f"{self.data[:40]!r}{'...' if len(self.data) > 40 else ''}"


class Message(_Payload):
    """A message delivered to a consumer: ``queue`` (str) and ``data`` (bytes, exactly as put)."""

    __slots__ = ("queue",)

    def __init__(self, queue: str, data: bytes) -> None:
        self.queue = queue
        self.data = data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return self.queue == other.queue and self.data == other.data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<beuss.Message queue={self.queue!r} data={self._shown()} ({len(self.data)} bytes)>"


class ChannelEvent(_Payload):
    """A message published to a channel, as a subscription receives it: ``channel`` (str), ``data`` (bytes),
    and ``dropped_before``, the events of the channel lost just before this one (usually 0)."""

    __slots__ = ("channel", "dropped_before")

    def __init__(self, channel: str, data: bytes, dropped_before: int = 0) -> None:
        self.channel = channel
        self.data = data
        self.dropped_before = dropped_before

    def __repr__(self) -> str:
        lost = f" after {self.dropped_before} dropped" if self.dropped_before else ""
        return f"<beuss.ChannelEvent channel={self.channel!r} data={self._shown()}{lost}>"


class LeasedMessage(Message):
    """A message taken under a lease (``get(..., lease=...)``): ``id`` (str) names
    this delivery, ``deliveries`` counts the deliveries of the message under a
    lease, this one included. Settle it with :meth:`ack` (done, deleted) or
    :meth:`nack` (put back, optionally after ``delay`` seconds); extend it with
    :meth:`touch`. Unsettled when the lease runs out or the connection closes,
    it goes back to the head of its queue."""

    __slots__ = ("id", "deliveries", "_client", "_settled")

    def __init__(self, queue: str, data: bytes, id: str, deliveries: int, client: Any) -> None:
        super().__init__(queue, data)
        self.id = id
        self.deliveries = deliveries
        self._client = client
        self._settled = False

    @property
    def settled(self) -> bool:
        """Returns True once :meth:`ack` or :meth:`nack` was called on this object (``work()`` then leaves it alone)."""
        return self._settled

    def ack(self) -> Any:
        """Acknowledges the message; raises UnknownLeaseError if the lease already ended.

        With the asyncio client, returns the coroutine to await."""
        self._settled = True
        return self._client.ack(self.id)

    def nack(self, delay: Optional[float] = None) -> Any:
        """Gives the message back, ready again now or after ``delay`` seconds (asyncio: a coroutine)."""
        self._settled = True
        return self._client.nack(self.id, delay)

    def touch(self, seconds: Optional[float] = None) -> Any:
        """Extends the lease to ``seconds`` from now (default: its own duration) (asyncio: a coroutine)."""
        return self._client.touch(self.id, seconds)

    def __repr__(self) -> str:
        return f"<beuss.LeasedMessage queue={self.queue!r} id={self.id} deliveries={self.deliveries} ({len(self.data)} bytes)>"
