"""What a queue consumer and a channel subscription hold, without I/O.

The ``Consumer`` and ``Subscription`` of both clients build on these: here
the buffer of what the server pushed, when to grant credit back and the count
of dropped events; there the waiting, and the sending of ``CREDIT`` (the
client's ``_grant``), ``OFF`` and ``UNSUB``.
"""

import builtins
from collections import deque
from typing import Any, Deque, Dict, Generic, List, Mapping, Optional, Protocol, TypeVar

from . import _protocol as P
from .errors import ProtocolError
from .message import ChannelEvent, LeasedMessage, Message


class _Granting(Protocol):
    def _grant(self, consumer: Any, n: int) -> None:
        """Sends ``CREDIT <queue> <n>`` for ``consumer`` without waiting for the reply."""


ClientT = TypeVar("ClientT", bound=_Granting)
FeedT = TypeVar("FeedT")


class ConsumerState(Generic[ClientT]):
    """An ``ON`` subscription's messages pushed but not handed out, and its credit with the server."""

    def __init__(self, client: ClientT, queue: bytes, prefetch: int, max: Optional[int], leased: bool = False) -> None:
        self._client = client
        #: True when messages come under a lease (``consume(..., lease=...)``).
        self.leased = leased
        #: The queue name as sent on the wire.
        self.queue_bytes = queue
        #: The queue name.
        self.queue = queue.decode("utf-8", "surrogateescape")
        self.prefetch = prefetch
        self.max = max
        self._batch = builtins.max(1, prefetch // 2)
        self._granted = prefetch if max is None else min(prefetch, max)
        self._handed = 0
        self._handled_since_grant = 0
        self._buf: Deque[Any] = deque()  # payloads, or (payload, id, deliveries) when leased
        self._active = True
        self._error: Optional[BaseException] = None

    @property
    def active(self) -> bool:
        """Returns True until the consumer is closed, reached ``max``, or its connection ended."""
        return self._active

    @property
    def received_count(self) -> int:
        """Returns how many messages this consumer has handed out so far."""
        return self._handed

    def _reached_max(self) -> bool:
        """Returns True once ``max`` messages were handed out: the consumer ends, even if more were pushed."""
        return self.max is not None and self._handed >= self.max

    def _take(self) -> Message:
        """Returns the oldest buffered message, granting credit back when a batch of them was handed out.

        Credit goes back in batches of half the prefetch, never beyond
        ``max`` (no message is taken from the queue needlessly), and never
        under a lease, where the server gives it back on each ACK/NACK.
        """
        item = self._buf.popleft()
        self._handed += 1
        # The hot path of a consumer: _reached_max() inlined.
        if self._active and not self.leased and (self.max is None or self._handed < self.max):
            self._handled_since_grant += 1
            if self._handled_since_grant >= self._batch:
                self._grant_back()
        return self._message(item)

    def _grant_back(self) -> None:
        n = self._handled_since_grant
        if self.max is not None:
            n = min(n, self.max - self._granted)
        self._handled_since_grant = 0
        if n > 0:
            self._granted += n
            self._client._grant(self, n)

    def _push(self, item: Any) -> None:
        """Keeps a message the server pushed: its payload, or (payload, id, deliveries) when leased."""
        self._buf.append(item)

    def _message(self, item: Any) -> Message:
        if isinstance(item, tuple):
            return LeasedMessage(self.queue, item[0], item[1], item[2], self._client)
        return Message(self.queue, item)

    def _take_all(self) -> List[Message]:
        """Returns every buffered message, leaving the buffer empty."""
        left = [self._message(d) for d in self._buf]
        self._buf.clear()
        return left


class SubscriptionState(Generic[ClientT]):
    """A ``SUB``'s events received but not handed out, and the count of those lost."""

    def __init__(self, client: ClientT, channel: bytes, max_buffered: int) -> None:
        self._client = client
        #: The channel name as sent on the wire.
        self.channel_bytes = channel
        #: The channel name.
        self.channel = channel.decode("utf-8", "surrogateescape")
        self.max_buffered = max_buffered
        self._buf: Deque[ChannelEvent] = deque()
        self._active = True
        self._error: Optional[BaseException] = None
        self._received = 0
        self._dropped = 0
        self._pending_lost = 0

    @property
    def active(self) -> bool:
        """Returns True until the subscription is closed or its connection ended."""
        return self._active

    @property
    def received_count(self) -> int:
        """Returns how many events the server sent to this subscription."""
        return self._received

    @property
    def dropped(self) -> int:
        """Returns how many events this subscription lost (the server's ``DROPPED`` counts plus the client's own)."""
        return self._dropped

    def _event(self, data: bytes) -> None:
        """Keeps one event, dropping the oldest past ``max_buffered``."""
        self._received += 1
        if len(self._buf) >= self.max_buffered:
            old = self._buf.popleft()
            self._dropped += 1
            carried = old.dropped_before + 1
            if self._buf:
                nxt = self._buf[0]
                self._buf[0] = ChannelEvent(nxt.channel, nxt.data, nxt.dropped_before + carried)
            else:
                self._pending_lost += carried
        self._buf.append(ChannelEvent(self.channel, data, self._pending_lost))
        self._pending_lost = 0

    def _lost(self, n: int) -> None:
        """Counts ``n`` events the server dropped for this subscriber."""
        self._dropped += n
        self._pending_lost += n


def deliver(
    frame: P.Reply, consumers: Mapping[bytes, ConsumerState[Any]], subscriptions: Mapping[bytes, SubscriptionState[Any]]
) -> bool:
    """Returns True if ``frame`` was a push or a channel event, handed to its consumer or subscription; False for a reply.

    Raises ProtocolError for a push of a queue the client does not consume.
    """
    kind = frame[0]
    if kind is P.PUSH:  # the hot path of a consumer: first
        consumer = consumers.get(frame[1])
        if consumer is None:
            raise ProtocolError(f"the server pushed a message of queue {frame[1]!r}, which this client does not consume")
        # A leased push carries (id, deliveries) after the payload: kept with it.
        consumer._push(frame[2] if len(frame) == 3 else frame[2:])
        return True
    if kind is P.EVENT or kind is P.DROPPED:
        sub = subscriptions.get(frame[1])
        if sub is not None:  # an event sent before our UNSUB was answered is dropped
            if kind is P.EVENT:
                sub._event(frame[2])
            else:
                sub._lost(frame[2])
        return True
    return False


def forget(feeds: Dict[bytes, FeedT], name: bytes, feed: FeedT) -> None:
    """Removes ``feed`` from a client's consumers or subscriptions, unless another one has taken its name since."""
    if feeds.get(name) is feed:
        del feeds[name]
