"""What a consumer receives: the bytes plus the queue they came from."""

import json as _json
from typing import Any

__all__ = ["Message"]


class Message:
    """A message delivered to a consumer: ``queue`` (str) and ``data`` (bytes, exactly as put)."""

    __slots__ = ("queue", "data")

    def __init__(self, queue: str, data: bytes) -> None:
        self.queue = queue
        self.data = data

    def text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Returns the message bytes decoded (UTF-8 by default)."""
        return self.data.decode(encoding, errors)

    def json(self) -> Any:
        """Returns the message bytes parsed as JSON."""
        return _json.loads(self.data)

    def __bytes__(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return self.queue == other.queue and self.data == other.data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = self.data[:40]
        more = "..." if len(self.data) > 40 else ""
        return f"<beuss.Message queue={self.queue!r} data={shown!r}{more} ({len(self.data)} bytes)>"
