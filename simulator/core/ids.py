"""Seeded id factory and random generator.

Every id and every random draw comes from here, so the same seed and the same requests give the
same bytes. Ids and probability draws use separate streams: adding a probabilistic scenario rule
must not shift the ids of an otherwise identical run.

A stream is a keyed hash of (seed, position): draw n is ``blake2b(n, key=stream)``. That makes
one id one draw whatever its length, and makes the stream resumable from a single number. With a
state file the position is reserved ahead in blocks and the reservation is written before any id
of the block is handed out, so a restarted process continues past every id the old one could have
issued: a repeat is impossible, not merely detected.

What a timer's handler draws comes from streams of its own (``streams_for``), named after the
timer: in ``webhooks: auto`` a timer due at once (a ``capture_on`` of now, say) runs on the
dispatcher thread beside the requests, and drawing from the requests' stream would shift their
ids by however many the timer happened to draw before them.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from .state import NullState

BASE32_LOWER = "abcdefghijklmnopqrstuvwxyz234567"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
DIGITS = "0123456789"
HEX = "0123456789abcdef"

BLOCK = 1024
_SPACE = "ids"

# version 4, RFC 4122 variant: the bits uuid.UUID(version=4) clears and sets
_UUID_KEEP = ~((0xc000 << 48) | (0xf000 << 64))
_UUID_SET = (0x8000 << 48) | (4 << 76)
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@functools.cache
def _speller(length: int, alphabet: str) -> tuple[int, int, Callable[[int], str]]:
    """(modulus, bits to draw, spell) for ``length`` characters of ``alphabet``: ``spell`` writes a
    value below the modulus as its digits, least significant first."""
    base = len(alphabet)
    modulus = base ** length
    n = modulus.bit_length() + 64   # 64 spare bits make the modulo bias unmeasurable
    # C spells hex and base64, most significant digit first, in its own alphabet
    if base == 16:
        table = str.maketrans("0123456789abcdef", alphabet)
        return modulus, n, lambda v: f"{v:0{length}x}".translate(table)[::-1]
    if base == 64:
        table, size = str.maketrans(_B64, alphabet), -(-length // 4) * 3
        return modulus, n, lambda v: base64.urlsafe_b64encode(v.to_bytes(size, "big")).decode().translate(table)[:-length - 1:-1]
    # else two digits per step from a table of every value below base**2, low digit first
    pairs = [alphabet[i % base] + alphabet[i // base] for i in range(base * base)]
    last = alphabet if length % 2 else None
    if base & (base - 1) == 0:   # a power of two: shifts, not divisions
        width = 2 * (base.bit_length() - 1)
        shifts, mask, top = range(0, width * (length // 2), width), base * base - 1, width * (length // 2)
        return modulus, n, lambda v: "".join([pairs[v >> s & mask] for s in shifts]) + (last[v >> top] if last else "")
    square, halves = base * base, length // 2

    def spell(v: int) -> str:
        out = []
        for _ in range(halves):
            v, r = divmod(v, square)
            out.append(pairs[r])
        if last:
            out.append(last[v])
        return "".join(out)
    return modulus, n, spell


@functools.cache
def _digit_span(length: int) -> tuple[int, int, int]:
    span = 9 * 10 ** (length - 1)
    return 10 ** (length - 1), span, span.bit_length() + 64


class _Stream:
    def __init__(self, seed: int, name: str) -> None:
        key = hashlib.blake2b(f"{name}:{seed}".encode(), digest_size=32).digest()
        # a copy of the keyed state skips hashing the key block again on every draw
        self._keyed = hashlib.blake2b(key=key)
        self.position = 0

    def bits(self, n: int) -> int:
        """One draw: ``n`` uniform bits (n <= 512)."""
        h = self._keyed.copy()
        h.update(self.position.to_bytes(8, "big"))
        self.position += 1
        return int.from_bytes(h.digest(), "big") >> (512 - n)


class IdFactory:
    def __init__(self, seed: int | None = None, state: NullState | None = None):
        self._lock = threading.Lock()
        self._own = threading.local()   # .streams: (ids, draws) of the timer this thread runs
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

    @contextmanager
    def streams_for(self, name: str) -> Iterator[None]:
        """Ids and draws made by this thread in the block come from streams named ``name`` (a
        timer's key and due instant), whatever other threads draw meanwhile. Nothing is reserved in
        a state file: the streams start over from the name, so a timer run again after a kill draws
        what its first run drew (whose effects the kill undid)."""
        outer = getattr(self._own, "streams", None)
        self._own.streams = (_Stream(self.seed, f"ids:{name}"), _Stream(self.seed, f"draws:{name}"))
        try:
            yield
        finally:
            self._own.streams = outer

    def token(self, length: int, alphabet: str = BASE32_LOWER) -> str:
        modulus, n, spell = _speller(length, alphabet)
        return spell(self._draw_bits(n) % modulus)

    def _draw_bits(self, n: int) -> int:
        own = getattr(self._own, "streams", None)
        if own is not None:
            return own[0].bits(n)
        with self._lock:
            return self._bits(self._ids, n)

    def prefixed(self, prefix: str, length: int = 26, alphabet: str = BASE32_LOWER) -> str:
        return prefix + self.token(length, alphabet)

    def uuid4(self) -> str:
        # what uuid.UUID(int=..., version=4) makes of the draw, without building the object
        h = f"{self._draw_bits(128) & _UUID_KEEP | _UUID_SET:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def digits(self, length: int) -> str:
        """``length`` digits, the first not zero."""
        low, span, n = _digit_span(length)
        return str(low + self._draw_bits(n) % span)

    def integer(self, low: int, high: int) -> int:
        return low + self._draw_bits(64 + (high - low).bit_length()) % (high - low + 1)

    def draw(self) -> float:
        """A probability draw in [0, 1), from its own stream."""
        own = getattr(self._own, "streams", None)
        if own is not None:
            return own[1].bits(53) / (1 << 53)
        with self._lock:
            return self._bits(self._draws, 53) / (1 << 53)
