"""Exception classes of the beuss client, with the same names and codes as the Node.js client.

Every error has a stable ``code``: for errors the server sends
(``ERR <CODE> <text>``, see docs/PROTOCOL.md "Error codes") it is the
protocol's code and the class is a :class:`ServerError` subclass; the client's
own conditions use ``CONNECTION_CLOSED`` (or the system error name, such as
``ECONNREFUSED``), ``PROTOCOL_VIOLATION`` and ``INVALID_ARGUMENT``. Branch on
the class or on ``code``, never on the message text.
"""

import builtins
import errno
from typing import Dict, Optional, Type

__all__ = [
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
    "server_error",
]


class BeussError(Exception):
    """Base class of every error the beuss client raises; ``code`` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        #: A stable machine-readable code.
        self.code: str = code


class ServerError(BeussError):
    """Base class of the errors the server answers with (``ERR <CODE> <text>``).

    ``server_text`` is the server's human text, without the code. A code
    this client does not know (a newer server) gives a plain ``ServerError``.
    """

    def __init__(self, code: str, server_text: str) -> None:
        super().__init__(code, f"{code}: {server_text}" if server_text else code)
        #: The text the server sent after the code.
        self.server_text: str = server_text


class ConnectionError(BeussError, builtins.ConnectionError):
    """The connection could not be opened, was lost, or the client was closed.

    ``code`` is ``CONNECTION_CLOSED``, or the system error name when there is
    one (``ECONNREFUSED``, ``ECONNRESET``, ``ETIMEDOUT``...); ``host`` and
    ``port`` say which server. It is also a builtin ``ConnectionError``.
    """

    def __init__(self, code: str, message: str, host: str, port: int) -> None:
        BeussError.__init__(self, code, message)
        self.host = host
        self.port = port

    @staticmethod
    def code_of(exc: BaseException) -> str:
        """Returns the system error name of an OSError (``ECONNREFUSED``...), or ``CONNECTION_CLOSED``."""
        num = getattr(exc, "errno", None)
        if isinstance(exc, builtins.TimeoutError):
            return "ETIMEDOUT"
        if isinstance(num, int) and num in errno.errorcode:
            return errno.errorcode[num]
        return "CONNECTION_CLOSED"


class ProtocolError(BeussError):
    """The server sent bytes that do not follow the protocol; the client closed the connection. Code ``PROTOCOL_VIOLATION``."""

    def __init__(self, message: str) -> None:
        super().__init__("PROTOCOL_VIOLATION", message)


class InvalidArgumentError(BeussError, ValueError, TypeError):
    """An argument given to a client method is invalid; nothing was sent. Code ``INVALID_ARGUMENT``.

    It is also a ``ValueError`` and a ``TypeError``, so the usual Python
    ``except`` clauses catch it.
    """

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_ARGUMENT", message)


class LineTooLongError(ServerError):
    """``LINE_TOO_LONG``: a request header line over the server's limit; the server closed the connection."""


class BadFrameError(ServerError):
    """``BAD_FRAME``: a payload not followed by a line end; the server closed the connection."""


class BadNumberError(ServerError):
    """``BAD_NUMBER``: a number that is not 1 to 19 decimal digits."""


class UnknownCommandError(ServerError):
    """``UNKNOWN_COMMAND``: the server does not know the verb."""


class BadArgsError(ServerError):
    """``BAD_ARGS``: too few or too many arguments, or an unknown option."""


class BadQueueNameError(ServerError, ValueError):
    """``BAD_QUEUE_NAME``: a queue name that is not 1 to 255 bytes of ``!``..``~`` or bytes >= 128.

    The client checks names before sending (a space or line end would split
    the request), so it raises this class itself with the same code.
    """


class TooLargeError(ServerError):
    """``TOO_LARGE``: the payload is over the server's maximum and the server runs with ``--oversize reject``."""


class FullError(ServerError):
    """``FULL``: the server's cap on queued bytes would be exceeded; nothing was stored."""


class NotSubscribedError(ServerError):
    """``NOT_SUBSCRIBED``: ``CREDIT`` or ``OFF`` without a prior ``ON`` for that queue."""


class AlreadySubscribedError(ServerError):
    """``ALREADY_SUBSCRIBED``: this connection already consumes that queue."""


class TooManyConnectionsError(ServerError, builtins.ConnectionError):
    """``TOO_MANY_CONNECTIONS``: the server's connection cap is reached; it closed the connection.

    Also a builtin ``ConnectionError`` (not a :class:`beuss.ConnectionError`).
    """


class ShuttingDownError(ServerError, builtins.ConnectionError):
    """``SHUTTING_DOWN``: the server is stopping; it closed the connection.

    Also a builtin ``ConnectionError`` (not a :class:`beuss.ConnectionError`).
    """


class InternalServerError(ServerError):
    """``INTERNAL``: the server ran out of memory for this request; nothing was changed."""


class BadScheduleError(ServerError):
    """``BAD_SCHEDULE``: a schedule spec the server does not understand, or one that never fires."""


class NoScheduleError(ServerError):
    """``NO_SCHEDULE``: no schedule has that name."""


class UnknownLeaseError(ServerError):
    """``UNKNOWN_LEASE``: ACK, NACK or TOUCH of a lease this connection does not hold (settled, expired, another's)."""


_BY_CODE: Dict[str, Type[ServerError]] = {
    "LINE_TOO_LONG": LineTooLongError,
    "BAD_FRAME": BadFrameError,
    "BAD_NUMBER": BadNumberError,
    "UNKNOWN_COMMAND": UnknownCommandError,
    "BAD_ARGS": BadArgsError,
    "BAD_QUEUE_NAME": BadQueueNameError,
    "TOO_LARGE": TooLargeError,
    "FULL": FullError,
    "NOT_SUBSCRIBED": NotSubscribedError,
    "ALREADY_SUBSCRIBED": AlreadySubscribedError,
    "TOO_MANY_CONNECTIONS": TooManyConnectionsError,
    "SHUTTING_DOWN": ShuttingDownError,
    "INTERNAL": InternalServerError,
    "BAD_SCHEDULE": BadScheduleError,
    "NO_SCHEDULE": NoScheduleError,
    "UNKNOWN_LEASE": UnknownLeaseError,
}

# Codes after which the server closes the connection (PROTOCOL.md, Error codes).
FATAL_CODES = frozenset({"LINE_TOO_LONG", "BAD_FRAME", "TOO_MANY_CONNECTIONS", "SHUTTING_DOWN"})


def server_error(code: str, text: str) -> ServerError:
    """Returns the exception for a server ``ERR <code> <text>`` reply: the class of that code, or a plain ``ServerError``."""
    cls: Optional[Type[ServerError]] = _BY_CODE.get(code)
    return (cls or ServerError)(code, text)
