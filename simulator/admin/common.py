"""What the admin modules share: the /_sandbox blueprint, its browser guard and request helpers.

The admin API has no authentication, so what keeps a web page in the user's browser from driving
it is that a browser cannot send a cross-site request the API accepts: a state-changing call with
an ``Origin`` of another site is refused (403), and one whose body is typed as something a plain
HTML form or a simple fetch can send (form, multipart, text/plain) is refused (415).
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, request

from ..core import inputs

admin = Blueprint("sandbox_admin", __name__, template_folder="templates")

_DOCUMENT_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class Refused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@admin.errorhandler(Refused)
def _refused(exc: Refused):
    return jsonify({"error": exc.message}), exc.status


@admin.before_request
def _same_origin_only():
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("Origin")
    if origin is not None and _host_of(origin) != request.host.lower():
        raise Refused(f"cross-site request from {origin} refused: the admin API has no authentication", 403)
    mimetype = request.mimetype
    if mimetype and not (mimetype in _DOCUMENT_TYPES or mimetype.endswith(("+json", "+yaml"))):
        raise Refused(f"Content-Type {mimetype} is not accepted: send application/json "
                      "(or application/yaml for config and scenarios)", 415)


def _host_of(origin: str) -> str | None:
    try:
        return urlsplit(origin).netloc.lower() or None  # "null" (sandboxed frames, files) has none
    except ValueError:
        return None


def sandbox():
    return current_app.extensions["sandbox"]


def bad_request(message: str, **extra):
    return jsonify({"error": message, **extra}), 400


_LONGEST_NUMBER = 1000   # digits; int() refuses more than 4,300 with a message about its own limit


def _json_int(digits: str) -> int:
    if len(digits) > _LONGEST_NUMBER:
        raise Refused(f"a number in the body has more than {_LONGEST_NUMBER} digits")
    return int(digits)


def body_dict() -> dict:
    """The JSON object in the body ({} when empty), or a 400 naming what is wrong with it."""
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_int=_json_int)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Refused(f"nested deeper than {inputs.MAX_DEPTH} levels") from None
    problem = inputs.json_problem(raw, data)
    if problem:
        raise Refused(problem)
    if not isinstance(data, dict):
        raise Refused("body must be a JSON object")
    tenant = data.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise Refused("tenant must be a string")
    return data


# digits as the wire spells them: ``isdigit()`` and ``int()`` also take other scripts' digits, and
# ``int()`` refuses more than 4,300 of them with an error of its own
_COUNT = re.compile(r"[0-9]{1,9}")


def int_arg(args, name: str, default=None, most: int | None = None):
    """A query argument that counts (a limit, an offset): ``default`` when absent or empty, at most
    ``most``; ValueError naming the argument for anything but ASCII digits (at most nine)."""
    raw = args.get(name)
    if raw in (None, ""):
        return default
    if not _COUNT.fullmatch(raw):
        raise ValueError(f"{name} must be a non-negative integer")
    value = int(raw)
    return min(value, most) if most is not None else value


def known_keys(body: dict, allowed: tuple[str, ...]) -> None:
    """ValueError naming the first key of ``body`` outside ``allowed``: a misspelt key must not
    turn a call into a wider one (a reset of every tenant, a move of the shared clock)."""
    for key in body:
        if key not in allowed:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise ValueError(f"unknown field {shown!r}: give only {', '.join(allowed)}")


def tenant_of(body: dict) -> str | None:
    """The body's ``tenant``: None when absent, else a non-empty string (ValueError otherwise)."""
    if "tenant" not in body:
        return None
    tenant = body["tenant"]
    if not isinstance(tenant, str) or not tenant:
        raise ValueError("tenant must be a non-empty string (leave it out for every tenant)")
    return tenant
