"""A memo keyed by what clients send (hosts, paths, tokens, field names): bounded, so a client
sending ever new keys cannot make it grow without end."""
from __future__ import annotations

from typing import Any


class Memo(dict):
    """A dict that forgets everything when full: entries are cheap to recompute, so a full memo is
    emptied rather than tracked in use order."""
    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: Any, value: Any) -> Any:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
