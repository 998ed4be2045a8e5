"""Connection defaults: ``localhost:6552``, overridden by ``BHOST`` and ``BPORT``."""

import os
from typing import Optional, Tuple

from .errors import InvalidArgumentError

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 6552


def resolve_address(host: Optional[str], port: Optional[int]) -> Tuple[str, int]:
    """Returns the (host, port) to connect to.

    Arguments win; then the ``BHOST``/``BPORT`` environment variables (the
    same ones the server and the CLI read); then ``localhost:6552``.
    """
    if host is None:
        host = os.environ.get("BHOST") or DEFAULT_HOST
    if port is None:
        env = os.environ.get("BPORT")
        if env:
            if not env.strip().isdigit() or not 0 < int(env) < 65536:
                raise InvalidArgumentError(f"BPORT must be a port number from 1 to 65535, got {env!r}")
            port = int(env)
        else:
            port = DEFAULT_PORT
    elif isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidArgumentError(f"port must be an integer from 1 to 65535, got {port!r}")
    return host, port
