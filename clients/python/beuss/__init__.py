"""beuss: the Python client of the beuss message bus.

A blocking client (:func:`connect`) and an asyncio one (:mod:`beuss.aio`), in
pure standard-library Python, speaking the wire protocol of
docs/PROTOCOL.md::

    import beuss

    with beuss.connect() as c:              # BHOST/BPORT, then localhost:6552
        c.put("jobs", b"hello")             # -> 5, the bytes stored
        c.get("jobs")                       # -> b"hello", or None when empty
        for msg in c.consume("jobs"):       # server push, credit flow control
            print(msg.queue, msg.data)
"""

from ._config import DEFAULT_HOST, DEFAULT_PORT
from ._protocol import MAX_QUEUE_NAME, QueueInfo, ScheduleInfo, queue_name_problem
from .client import DEFAULT_MAX_BUFFERED, DEFAULT_PREFETCH, MAX_PREFETCH, Client, Consumer, Pipeline, Subscription, connect
from .errors import (
    AlreadySubscribedError,
    BadArgsError,
    BadFrameError,
    BadNumberError,
    BadQueueNameError,
    BadScheduleError,
    BeussError,
    ConnectionError,
    FullError,
    InternalServerError,
    InvalidArgumentError,
    LineTooLongError,
    NoScheduleError,
    NotSubscribedError,
    ProtocolError,
    ServerError,
    ShuttingDownError,
    TooLargeError,
    TooManyConnectionsError,
    UnknownCommandError,
    UnknownLeaseError,
)
from .message import ChannelEvent, LeasedMessage, Message

__version__ = "0.1.0"

__all__ = [
    "connect",
    "Client",
    "Consumer",
    "Pipeline",
    "Message",
    "Subscription",
    "ChannelEvent",
    "LeasedMessage",
    "QueueInfo",
    "ScheduleInfo",
    "DEFAULT_MAX_BUFFERED",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_PREFETCH",
    "MAX_PREFETCH",
    "MAX_QUEUE_NAME",
    "queue_name_problem",
    "BeussError",
    "ServerError",
    "ConnectionError",
    "ProtocolError",
    "InvalidArgumentError",
    "LineTooLongError",
    "BadFrameError",
    "BadNumberError",
    "UnknownCommandError",
    "BadArgsError",
    "BadQueueNameError",
    "TooLargeError",
    "FullError",
    "NotSubscribedError",
    "AlreadySubscribedError",
    "TooManyConnectionsError",
    "ShuttingDownError",
    "InternalServerError",
    "BadScheduleError",
    "NoScheduleError",
    "UnknownLeaseError",
]
