"""Scenario matching: a rule's criteria against one request, and the merge of fired rules' effects.

HTTP-layer effects (latency, dropped connection, injected HTTP error) are carried out by the
pipeline; the rest travel in ``Effects`` to the provider's machine (decline, require_3ds, token)
and to the webhook outbox (webhook).
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from ..effects import Effects


@dataclass
class Decision:
    effects: Effects = field(default_factory=Effects)
    latency_ms: int = 0
    drop_connection: str | None = None     # "before" | "after"
    http_error: dict | None = None


_MISSING = object()


def _lookup(body, path: tuple):
    node = body
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _equal(actual, expected) -> bool:
    if actual is _MISSING:
        return expected is None
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return actual == expected


def _ordered(actual, bound, ge: bool) -> bool:
    if actual is _MISSING or isinstance(actual, bool):
        return False
    numeric = (int, float)
    if isinstance(bound, numeric) and isinstance(actual, numeric):
        pass
    elif isinstance(bound, str) and isinstance(actual, str):
        pass
    else:
        return False
    return actual >= bound if ge else actual <= bound


@dataclass(eq=False)
class Condition:
    path: tuple
    op: str
    operand: object

    def holds(self, body) -> bool:
        actual = _lookup(body, self.path)
        if self.op == "eq":
            return _equal(actual, self.operand)
        if self.op == "gte":
            return _ordered(actual, self.operand, True)
        if self.op == "lte":
            return _ordered(actual, self.operand, False)
        if self.op == "in":
            return any(_equal(actual, v) for v in self.operand)
        if self.op == "exists":
            return (actual is not _MISSING and actual is not None) == self.operand
        if self.op == "regex":
            if actual is _MISSING or actual is None or isinstance(actual, (dict, list)):
                return False
            text = json.dumps(actual) if isinstance(actual, bool) else str(actual)
            return self.operand.search(text) is not None
        return False


@dataclass(eq=False)
class Rule:
    scenario: str
    name: str
    spec: dict                     # the rule as loaded, for listing
    provider: str | None
    method: str | None
    path: str | None
    conditions: list[Condition]
    nth: int | None
    times: int | None
    probability: float | None
    after: datetime | None
    effect: dict
    # a duration ``after`` counts on each tenant's clock from where it stood at the load: ``after``
    # is then the shared clock's load instant plus the duration, and this the tenants' offsets then
    after_offsets: dict[str, timedelta] | None = None

    def reached(self, tenant: str | None, now: datetime) -> bool:
        """Whether ``now`` on ``tenant``'s clock is past ``after``."""
        if self.after is None:
            return True
        if self.after_offsets is None:
            return now >= self.after
        return now >= self.after + self.after_offsets.get(tenant, timedelta(0))

    def criteria_hold(self, provider_name: str, method: str, path: str, body_of) -> bool:
        if self.provider is not None and self.provider != provider_name:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and not fnmatch.fnmatchcase(path, self.path):
            return False
        if self.conditions:
            body = body_of()
            return all(c.holds(body) for c in self.conditions)
        return True


def conditions(match: dict) -> list[Condition]:
    out = []
    for key, value in (match or {}).items():
        path = tuple(key.split("."))
        if isinstance(value, dict):
            for op, operand in value.items():
                if op == "regex":
                    operand = re.compile(operand)
                out.append(Condition(path, op, operand))
        else:
            out.append(Condition(path, "eq", value))
    return out


def request_body(request):
    """The body as a tree for ``match``: JSON, or form fields; None when there is none."""
    try:
        raw = request.get_data(cache=True)
    except Exception:  # too large or unreadable: nothing to match against
        return None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        pass
    if "form-urlencoded" in (request.content_type or ""):
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return None
    return None


def decide(fired: list[Rule]) -> Decision:
    """Merge the effects of the rules that fired; for each effect the first rule (load order) that
    gives it wins, whatever it gives: ``latency_ms: 0`` or ``require_3ds: false`` in an earlier rule
    holds against a later rule's delay or challenge. A null is no value."""
    fx = Effects(rules=[r.name for r in fired])
    first: dict = {}
    for rule in fired:
        for key, value in rule.effect.items():
            if value is not None:
                first.setdefault(key, value)
        for key, value in (rule.effect.get("webhook") or {}).items():
            fx.webhook.setdefault(key, value)
    fx.decline = first.get("decline")
    fx.require_3ds = bool(first.get("require_3ds"))
    fx.token = first.get("token")
    decision = Decision(effects=fx, latency_ms=first.get("latency_ms") or 0,
                        drop_connection=first.get("drop_connection") or None)
    if "http_error" in first:
        decision.http_error = dict(first["http_error"])
    return decision
