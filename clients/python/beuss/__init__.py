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
from . import errors as _errors
from .errors import *  # noqa: F403 - the exception classes, listed once in errors.__all__
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
]
# Every exception class, as errors.__all__ lists them; server_error is the
# client's own helper. (Both forms are ones type checkers follow.)
__all__ += _errors.__all__
__all__.remove("server_error")
