"""Bounded request journal. Bodies are stored masked: no full card number is ever kept.

Bodies are kept as bytes and decoded only when the journal is read, which is rare next to writing
it. A body with a card-like digit run or a security-code field is masked as bytes first; only where
that would change what the body decodes to (a card number sent as a JSON integer, a code that is
not a string) or could miss a digit (a JSON escape, a non-ASCII digit) is it decoded and masked
field by field.
"""
from __future__ import annotations

import json
import re
import threading
from collections import deque
from urllib.parse import unquote_plus, unquote_to_bytes

from .cards import mask_bytes, mask_json, mask_text, needs_masking
from .inputs import json_problem
from .memo import Memo


_TEXT = object()
# every JSON escape but \" \\ and \/, which can neither be nor hide a digit (PHP escapes every "/")
_HIDING_ESCAPE = re.compile(rb'\\[^"\\/]')


def _text(raw: bytes) -> str:
    """The body as the provider reads it: UTF-8, or the UTF-16 or UTF-32 that ``json.loads`` (and
    so Flask) recognises by its first bytes. Read as UTF-8, a card number in those is digits with
    NUL bytes between them, which no masking sees."""
    return raw.decode(json.detect_encoding(raw), "replace")


def _json(raw: bytes, content_type: str | None):
    """The body's JSON value, or ``_TEXT`` when it is journaled as text."""
    declared = bool(content_type) and "json" in content_type
    if not declared and content_type and not content_type.startswith("text/plain"):
        return _TEXT   # a form, say: not decoded just to be told so
    text = _text(raw)
    if declared or text.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # absurdly deep nesting is journaled as text
            return _TEXT
        if not json_problem(raw, value):   # else text: a lone surrogate or deep nesting
            return value
    return _TEXT


def _decoded(raw: bytes, content_type: str | None, sensitive: bool):
    value = _json(raw, content_type)
    if value is not _TEXT:
        return mask_json(value) if sensitive else value
    text = _text(raw)
    return (mask_text(text) if sensitive else text)[:20000]


class _Masked:
    """A body already decoded and masked at record time."""
    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


# body -> what the journal keeps of it. Clients poll the same object and get the same bytes:
# masked once, and the journal holds one copy of them for every entry that repeats them. Keyed
# by the body's (keyed, 64-bit) hash, not the body: a body may hold a card number
_seen = Memo(256)
_SEEN_UP_TO = 4096   # bytes: longer bodies seldom repeat


def _kept(raw: bytes, content_type: str | None):
    if not raw:
        return None
    if len(raw) > _SEEN_UP_TO:
        return _keep(raw, content_type)
    key = (hash(raw), len(raw), content_type)
    kept = _seen.get(key)
    if kept is None:
        kept = _seen.keep(key, _keep(raw, content_type))
    return kept


def _escapes_hide_a_number(raw: bytes) -> bool:
    """Whether percent-escapes (a form body, a query string) spell a card number or a security
    code that the checks of the bytes as written cannot see."""
    return b"%" in raw and needs_masking(unquote_to_bytes(raw.replace(b"+", b" ")))


def _keep(raw: bytes, content_type: str | None):
    if _escapes_hide_a_number(raw) and _json(raw, content_type) is _TEXT:
        return _Masked(masked_path(raw.decode("utf-8", "replace"))[:20000])
    # a JSON escape (a digit as \u0034, a tab as \t), a non-ASCII digit or space, or a body in
    # UTF-16 or UTF-32 (NUL bytes: ASCII, but not UTF-8 text) can spell a number the byte checks
    # cannot see
    plain = raw.isascii() and b"\x00" not in raw and not _HIDING_ESCAPE.search(raw)
    if plain and not needs_masking(raw):
        return (raw, content_type)
    if plain:
        masked, quoted = mask_bytes(raw)
        # "*" is valid JSON only inside a string: if the masked body still parses, so did the
        # original, to the same shape
        if quoted or _json(masked, content_type) is not _TEXT or _json(raw, content_type) is _TEXT:
            return (masked, content_type)
    return _Masked(_decoded(raw, content_type, True))


def masked_body(text: str, content_type: str | None = "application/json") -> str:
    """``text`` masked as the journal keeps a body: in place where that leaves it valid JSON of the
    same shape (or it is not JSON), else its value masked and encoded again; ``text`` itself when
    there is nothing to mask. Not through the journal's memo: a listing of thousands of webhook
    payloads would push out the bodies clients repeat."""
    raw = text.encode()
    kept = _keep(raw, content_type)
    if isinstance(kept, _Masked):
        value = kept.value
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if kept[0] == raw else kept[0].decode()


def _shown(kept):
    if kept is None:
        return None
    if isinstance(kept, _Masked):
        return kept.value
    raw, content_type = kept
    return _decoded(raw, content_type, False)


def masked_path(path: str) -> str:
    """The path with its query string (or a form body), card numbers and security codes masked."""
    raw = path.encode()
    if not needs_masking(raw) and not _escapes_hide_a_number(raw):
        return path
    decoded = unquote_plus(path)
    masked_decoded = mask_text(decoded)
    if masked_decoded == decoded:
        return path
    masked = mask_text(path)
    # digits behind percent-escapes: journal the path decoded, so none slips through
    return masked if unquote_plus(masked) == masked_decoded else masked_decoded


class Journal:
    def __init__(self, limit: int = 1000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[tuple[int, tuple]] = deque(maxlen=limit)
        self._seq = 0

    def record(self, *, provider, tenant, method, path, status, at, rules, request_body, request_type,
               response_body, response_type, verified=True) -> None:
        entry = (provider, tenant, method, masked_path(path), status, at, tuple(rules), verified,
                 _kept(request_body, request_type), _kept(response_body, response_type))
        with self._lock:
            self._seq += 1
            self._entries.append((self._seq, entry))

    @property
    def last_seq(self) -> int:
        return self._seq

    def entries(self, provider=None, tenant=None, limit=None, mentioning: set[str] | None = None) -> list[dict]:
        """Entries oldest first; ``mentioning``: only those whose path or a body holds one of these
        strings (looked for in the kept bytes, so the others are never decoded)."""
        with self._lock:
            kept = [(seq, e) for seq, e in self._entries
                    if (provider is None or e[0] == provider) and (tenant is None or e[1] == tenant)]
        if mentioning is not None:
            wanted = [(n, n.encode()) for n in mentioning]
            kept = [(seq, e) for seq, e in kept if _mentions(e, wanted)]
        if limit is not None:   # 0 is none, as in every other listing
            kept = kept[len(kept) - limit:] if limit < len(kept) else kept
        return [_entry(seq, e) for seq, e in kept]

    def reset(self, tenant=None) -> None:
        with self._lock:
            if tenant is None:
                self._entries.clear()
            else:
                kept = [e for e in self._entries if e[1][1] != tenant]
                self._entries.clear()
                self._entries.extend(kept)


def _mentions(e: tuple, wanted: list[tuple[str, bytes]]) -> bool:
    path, bodies = e[3], (e[8], e[9])
    for body in bodies:
        if isinstance(body, _Masked):
            value = body.value
            body = (value if isinstance(value, str) else json.dumps(value)).encode()
        elif body is not None:
            body = body[0]
        else:
            body = b""
        if any(b in body for _, b in wanted):
            return True
    return any(n in path for n, _ in wanted)


def _entry(seq: int, e: tuple) -> dict:
    provider, tenant, method, path, status, at, rules, verified, request, response = e
    return {"provider": provider, "tenant": tenant, "method": method, "path": path, "status": status, "at": at,
            "rules": list(rules), "verified": verified, "request": _shown(request), "response": _shown(response),
            "seq": seq}
