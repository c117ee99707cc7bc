"""Bounded request journal. Bodies are stored masked: no full card number is ever kept."""
from __future__ import annotations

import json
import threading
from collections import deque
from urllib.parse import unquote_plus

from .cards import mask_json, mask_text, needs_masking
from .inputs import json_problem


def _masked_body(raw: bytes, content_type: str | None):
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    sensitive = needs_masking(raw)
    looks_json = (content_type and "json" in content_type) or (
        not content_type or content_type.startswith("text/plain")) and raw.lstrip()[:1] in (b"{", b"[")
    if looks_json:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # absurdly deep nesting is journaled as text
            pass
        else:
            if not json_problem(raw, value):   # else text: a lone surrogate or deep nesting
                return mask_json(value) if sensitive else value
    return (mask_text(text) if sensitive else text)[:20000]


def masked_path(path: str) -> str:
    """The path with its query string, card numbers and security codes masked."""
    if not needs_masking(path.encode()):
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
        self._entries: deque[dict] = deque(maxlen=limit)
        self._seq = 0

    def record(self, *, provider, tenant, method, path, status, at, rules, request_body, request_type,
               response_body, response_type, verified=True) -> dict:
        entry = {
            "provider": provider,
            "tenant": tenant,
            "method": method,
            "path": masked_path(path),
            "status": status,
            "at": at,
            "rules": list(rules),
            "verified": verified,
            "request": _masked_body(request_body, request_type),
            "response": _masked_body(response_body, response_type),
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)
        return entry

    @property
    def last_seq(self) -> int:
        return self._seq

    def entries(self, provider=None, tenant=None, limit=None) -> list[dict]:
        with self._lock:
            out = [e for e in self._entries
                   if (provider is None or e["provider"] == provider) and (tenant is None or e["tenant"] == tenant)]
        return out[-limit:] if limit else out

    def reset(self, tenant=None) -> None:
        with self._lock:
            if tenant is None:
                self._entries.clear()
            else:
                kept = [e for e in self._entries if e["tenant"] != tenant]
                self._entries.clear()
                self._entries.extend(kept)
