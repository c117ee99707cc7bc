"""Seeded id factory and random generator.

Every id and every random draw comes from here, so the same seed and the same requests give the
same bytes. Ids and probability draws use separate streams: adding a probabilistic scenario rule
must not shift the ids of an otherwise identical run.
"""
from __future__ import annotations

import os
import random
import threading
import uuid

BASE32_LOWER = "abcdefghijklmnopqrstuvwxyz234567"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
DIGITS = "0123456789"
HEX = "0123456789abcdef"


class IdFactory:
    def __init__(self, seed: int | None = None):
        self._lock = threading.Lock()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self.seed = seed if seed is not None else int.from_bytes(os.urandom(8), "big")
            self._ids = random.Random(f"ids:{self.seed}")
            self._draws = random.Random(f"draws:{self.seed}")

    def token(self, length: int, alphabet: str = BASE32_LOWER) -> str:
        with self._lock:
            return "".join(self._ids.choice(alphabet) for _ in range(length))

    def prefixed(self, prefix: str, length: int = 26, alphabet: str = BASE32_LOWER) -> str:
        return prefix + self.token(length, alphabet)

    def uuid4(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def digits(self, length: int) -> str:
        first = self.token(1, "123456789")
        return first + self.token(length - 1, DIGITS)

    def integer(self, low: int, high: int) -> int:
        with self._lock:
            return self._ids.randint(low, high)

    def draw(self) -> float:
        """A probability draw in [0, 1), from its own stream."""
        with self._lock:
            return self._draws.random()
