"""Checks applied at the edge, before a handler or a document loader trusts a value.

A parsed JSON body can still hold what no handler is written for: lone UTF-16 surrogates (legal
JSON escapes that are not text, so every later encode fails after the object was created) and
nesting deep enough to exhaust the interpreter's stack in whatever walks it next.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

MAX_DEPTH = 64

# A lone surrogate can only arrive as a \uD800-\uDFFF escape; a body without one needs no walk.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def json_problem(raw: bytes, value: Any) -> str | None:
    """Why a parsed JSON body must be refused, or None. ``raw`` lets clean bodies skip the walk."""
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    if not (deep or surrogates):
        return None
    return value_problem(value)


def value_problem(value: Any) -> str | None:
    """Walk without recursion: the value may be nested as deep as the parser allowed."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            for key, item in node.items():
                if isinstance(key, str) and not text_ok(key):
                    return "invalid Unicode (a lone surrogate) in a name"
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str) and not text_ok(node):
            return "invalid Unicode (a lone surrogate) in a value"
    return None


def text_ok(text: str) -> bool:
    """True if ``text`` can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def http_url_ok(value: Any) -> bool:
    """An absolute http(s) URL with a host and no whitespace or control characters: the only
    kind that may end up in a Location header, a link or a webhook delivery."""
    if not isinstance(value, str) or not value or len(value) > 2048 or _CONTROL.search(value):
        return False
    if not text_ok(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def http_url(value: Any) -> None:
    """marshmallow validator form of ``http_url_ok``."""
    from marshmallow import ValidationError
    if value is not None and not http_url_ok(value):
        raise ValidationError("must be an absolute http or https URL")


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 9110 field-value: visible ASCII, obs-text (latin-1) and spaces or tabs between them
_FIELD_VALUE = re.compile(r"[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*|")


def http_header(name: Any, value: Any) -> None:
    """marshmallow validator of a header the sandbox will send (a configured webhook header): a
    CR or LF in one would split the request, and every delivery would fail at the wire."""
    from marshmallow import ValidationError
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise ValidationError(f"not a header name: {name!r}")
    if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
        raise ValidationError(f"header {name}: not a header value (control characters, line breaks, "
                              "spaces around it or characters beyond latin-1)")
