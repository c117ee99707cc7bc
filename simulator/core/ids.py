"""Seeded id factory and random generator.

Every id and every random draw comes from here, so the same seed and the same requests give the
same bytes. Ids and probability draws use separate streams: adding a probabilistic scenario rule
must not shift the ids of an otherwise identical run.

A stream is a keyed hash of (seed, position): draw n is ``blake2b(n, key=stream)``. That makes
one id one draw whatever its length, and makes the stream resumable from a single number. With a
state file the position is reserved ahead in blocks and the reservation is written before any id
of the block is handed out, so a restarted process continues past every id the old one could have
issued: a repeat is impossible, not merely detected.
"""
from __future__ import annotations

import base64
import hashlib
import os
import threading
import uuid

from .state import NullState

BASE32_LOWER = "abcdefghijklmnopqrstuvwxyz234567"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
DIGITS = "0123456789"
HEX = "0123456789abcdef"

BLOCK = 1024
_SPACE = "ids"


class _Stream:
    def __init__(self, seed: int, name: str) -> None:
        self._key = hashlib.blake2b(f"{name}:{seed}".encode(), digest_size=32).digest()
        self.position = 0

    def bits(self, n: int) -> int:
        """One draw: ``n`` uniform bits (n <= 512)."""
        digest = hashlib.blake2b(self.position.to_bytes(8, "big"), key=self._key).digest()
        self.position += 1
        return int.from_bytes(digest, "big") >> (512 - n)


class IdFactory:
    def __init__(self, seed: int | None = None, state: NullState | None = None):
        self._lock = threading.Lock()
        self._state = state or NullState()
        saved = self._state.get(_SPACE, "stream")
        if saved is not None:
            # the file's stream outlives a changed --seed: its ids must never repeat
            self._start(saved["seed"], saved["ids"], saved["draws"])
        else:
            self.reseed(seed)

    def _start(self, seed: int, ids_at: int, draws_at: int) -> None:
        self.seed = seed
        self._ids = _Stream(seed, "ids")
        self._draws = _Stream(seed, "draws")
        self._ids.position, self._draws.position = ids_at, draws_at
        self._reserve()

    def _reserve(self) -> None:
        self._reserved = (self._ids.position + BLOCK, self._draws.position + BLOCK)
        # at once, not with the request: other requests hand out ids of this block before it ends
        self._state.put(_SPACE, "stream", {"seed": self.seed, "ids": self._reserved[0], "draws": self._reserved[1]},
                        now=True)

    def _bits(self, stream: _Stream, n: int) -> int:
        # caller holds the lock
        if stream.position >= self._reserved[stream is self._draws]:
            self._reserve()
        return stream.bits(n)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._start(seed if seed is not None else int.from_bytes(os.urandom(8), "big"), 0, 0)

    def token(self, length: int, alphabet: str = BASE32_LOWER) -> str:
        base = len(alphabet)
        # 64 spare bits make the modulo bias unmeasurable
        value = self._draw_bits((base ** length).bit_length() + 64) % base ** length
        if alphabet is BASE32_LOWER:
            # the same digits, least significant first, by the C base32 encoder: whole 5-byte groups
            groups = -(-length // 8)
            return base64.b32encode(value.to_bytes(groups * 5, "big")).decode().lower()[:-length - 1:-1]
        chars = []
        for _ in range(length):
            value, digit = divmod(value, base)
            chars.append(alphabet[digit])
        return "".join(chars)

    def _draw_bits(self, n: int) -> int:
        with self._lock:
            return self._bits(self._ids, n)

    def prefixed(self, prefix: str, length: int = 26, alphabet: str = BASE32_LOWER) -> str:
        return prefix + self.token(length, alphabet)

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self._draw_bits(128), version=4))

    def digits(self, length: int) -> str:
        """``length`` digits, the first not zero."""
        span = 9 * 10 ** (length - 1)
        return str(10 ** (length - 1) + self._draw_bits(span.bit_length() + 64) % span)

    def integer(self, low: int, high: int) -> int:
        return low + self._draw_bits(64 + (high - low).bit_length()) % (high - low + 1)

    def draw(self) -> float:
        """A probability draw in [0, 1), from its own stream."""
        with self._lock:
            return self._bits(self._draws, 53) / (1 << 53)
