"""Scenario engine: load, validate, match, and decide effects (design.md section 5).

A scenario document is a list of rules. Before every provider handler the pipeline asks
``match(provider, tenant, request)``; every rule whose criteria hold counts the request (per rule
and tenant), and fires when its ``nth`` / ``times`` / ``probability`` allow. The fired rules'
effects are merged into one ``Decision``: HTTP-layer effects (latency, dropped connection, injected
HTTP error) are carried out by the pipeline, the rest travel in ``Effects`` to the provider's
machine (decline, require_3ds, token) and to the webhook outbox (webhook).

The engine knows no provider: a rule names one by ``provider.name``, and a decline code is checked
with that provider's own ``decline_code_valid``. Documents are validated completely before any
rule is installed, so a bad document is never half-loaded.
"""
from __future__ import annotations

import fnmatch
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import parse_qsl

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .clock import parse_duration, parse_instant
from .documents import DocumentError, error_from_validation, load
from .effects import Effects


@dataclass
class Decision:
    effects: Effects = field(default_factory=Effects)
    latency_ms: int = 0
    drop_connection: str | None = None     # "before" | "after"
    http_error: dict | None = None


# -- strict fields: YAML is forgiving, rules must not be ("3" is not 3, yes is not true) ---------

class _Int(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
        return value


class _Number(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        return float(value)


class _Bool(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class _Str(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("must be a non-empty string")
        return value


class _Code(fields.Field):
    """A decline code: YAML reads 20051 as a number, the provider's codes are strings."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
            raise ValidationError("must be the provider's decline code, e.g. \"20051\"")
        return str(value).strip()


class _Duration(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return value


class _DropConnection(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if value is True or value == "before":
            return "before"
        if value == "after":
            return "after"
        if value is False:
            return None
        raise ValidationError("must be true (= before: the request is not processed) or after "
                              "(processed, the response is lost)")


class _After(fields.Field):
    """``after``: an ISO-8601 duration from the moment the scenario is loaded, or an instant."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("must be an ISO-8601 duration (P400D) or timestamp")
        try:
            return ("duration", parse_duration(value))
        except ValueError:
            pass
        try:
            return ("instant", parse_instant(value))
        except ValueError:
            raise ValidationError(f"not an ISO-8601 duration (P400D) or timestamp: {value!r}") from None


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class _HttpErrorSchema(_Strict):
    status = _Int(load_default=503, validate=validate.Range(400, 599, error="must be an HTTP error status, 400-599"))
    body = fields.Raw(allow_none=True)

    @validates_schema
    def _json_body(self, data, **kwargs):
        try:
            json.dumps(data.get("body"))
        except (TypeError, ValueError):
            raise ValidationError({"body": ["must be JSON data (quote timestamps: YAML reads them as dates)"]}) from None


class _HttpError(fields.Field):
    """``http_error: 503`` is short for ``http_error: {status: 503}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            value = {"status": value}
        if not isinstance(value, dict):
            raise ValidationError("must be a status (503) or a mapping {status, body}")
        return _HttpErrorSchema().load(value)


class _WebhookSchema(_Strict):
    fail = _Int(validate=validate.Range(min=1, error="must be at least 1"))
    status = _Int(validate=validate.Range(300, 599, error="must be a failing HTTP status, 300-599"))
    drop = _Bool()
    duplicate = _Int(validate=validate.Range(min=1, error="must be at least 1"))
    delay = _Duration()
    bad_signature = _Bool()

    @validates_schema
    def _check(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one of fail, status, drop, duplicate, delay, bad_signature")
        if "status" in data and "fail" not in data:
            raise ValidationError({"status": ["status needs fail: N (how many attempts get it)"]})


EFFECTS = ("decline", "require_3ds", "http_error", "latency_ms", "drop_connection", "token", "webhook")


class _EffectSchema(_Strict):
    decline = _Code()
    require_3ds = _Bool()
    http_error = _HttpError()
    latency_ms = _Int(validate=validate.Range(0, 600_000, error="must be 0-600000 (ten minutes)"))
    drop_connection = _DropConnection()
    token = fields.Raw(validate=validate.OneOf(["inactive", "expired"], error="must be inactive or expired"))
    webhook = fields.Nested(_WebhookSchema)

    @validates_schema
    def _check(self, data, **kwargs):
        if not data:
            raise ValidationError(f"give at least one effect: {', '.join(EFFECTS)}")


OPERATORS = ("gte", "lte", "in", "regex", "exists")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_SCALARS = (str, int, float, bool, type(None))


def _check_condition(key, value) -> None:
    """Raise ValidationError (relative to the match key) for a malformed condition."""
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ValidationError(["must be a dotted path into the body, e.g. source.type"])
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, list):
        raise ValidationError(["a list is not a value: use {in: [...]}"])
    if isinstance(value, (date, datetime)):
        raise ValidationError(["quote timestamps: YAML reads an unquoted one as a date, the body has a string"])
    if not isinstance(value, dict) or not value:
        raise ValidationError([f"must be a value or a mapping of {', '.join(OPERATORS)}"])
    for op, operand in value.items():
        if op not in OPERATORS:
            raise ValidationError({op: [f"unknown operator; use {', '.join(OPERATORS)} "
                                        f"(nested fields are written as dotted paths: {key}.{op})"]})
        if op in ("gte", "lte") and (isinstance(operand, bool) or not isinstance(operand, (int, float, str))):
            raise ValidationError({op: ["must be a number or a string"]})
        if op == "in" and (not isinstance(operand, list) or not all(isinstance(v, _SCALARS) for v in operand)):
            raise ValidationError({op: ["must be a list of values"]})
        if op == "exists" and not isinstance(operand, bool):
            raise ValidationError({op: ["must be true or false"]})
        if op == "regex":
            if not isinstance(operand, str):
                raise ValidationError({op: ["must be a string"]})
            try:
                re.compile(operand)
            except re.error as exc:
                raise ValidationError({op: [f"invalid regular expression: {exc}"]}) from None


class _RuleSchema(_Strict):
    name = _Str(required=True)
    description = fields.String()
    provider = _Str(load_default="any")
    method = _Str()
    path = _Str()
    match = fields.Dict(keys=fields.Raw(), values=fields.Raw(allow_none=True))
    nth = _Int(validate=validate.Range(min=1, error="must be 1 or more (1-based)"))
    times = _Int(validate=validate.Range(min=1, error="must be 1 or more"))
    probability = _Number(validate=validate.Range(0, 1, error="must be between 0 and 1"))
    after = _After()
    effect = fields.Nested(_EffectSchema, required=True)

    @validates_schema
    def _check(self, data, **kwargs):
        known = self.context_providers()
        provider = data.get("provider", "any")
        if provider != "any" and provider not in known:
            raise ValidationError({"provider": [f"unknown provider; known: any, {', '.join(known)}"]})
        if "method" in data and data["method"].upper() not in METHODS:
            raise ValidationError({"method": [f"unknown HTTP method; use one of {', '.join(METHODS)}"]})
        if "path" in data and not data["path"].startswith(("/", "*")):
            raise ValidationError({"path": ["must start with / (the full path, mount included: /<provider>/payments)"]})
        if "nth" in data and "times" in data:
            raise ValidationError({"times": ["give nth (only the Nth match) or times (the first N), not both"]})
        if "decline" in data["effect"] and provider == "any":
            raise ValidationError({"effect": {"decline": ["a decline code is the provider's own: name the provider"]}})
        for key, value in (data.get("match") or {}).items():
            try:
                _check_condition(key, value)
            except ValidationError as exc:
                raise ValidationError({"match": {key: exc.messages}}) from None

    @staticmethod
    def context_providers() -> list[str]:
        from ..providers import provider_classes  # names only: the engine knows no provider
        return [cls.name for cls in provider_classes()]


class _ClockSchema(_Strict):
    start = fields.Raw(required=True)

    @validates_schema
    def _start(self, data, **kwargs):
        try:
            parse_instant(data["start"])
        except ValueError as exc:
            raise ValidationError({"start": [str(exc)]}) from None


class _DocumentSchema(_Strict):
    name = _Str(required=True)
    description = fields.String()
    seed = _Int()
    clock = fields.Nested(_ClockSchema)
    rules = fields.List(fields.Nested(_RuleSchema), required=True)

    @validates_schema
    def _unique(self, data, **kwargs):
        seen = set()
        for i, rule in enumerate(data.get("rules") or []):
            if rule["name"] in seen:
                raise ValidationError({"rules": {i: {"name": [f"duplicate rule name {rule['name']!r}"]}}})
            seen.add(rule["name"])


# -- compiled form ---------------------------------------------------------------------------

class ScenarioDocument(dict):
    """A validated document as the user wrote it (``seed`` and ``clock`` read by the app factory),
    carrying its source and line map for errors found when it is installed."""

    source: str = "<document>"
    lines: dict = {}


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


@dataclass
class Scenario:
    name: str
    description: str | None
    source: str
    document: dict
    rules: list[Rule]


def _conditions(match: dict) -> list[Condition]:
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


def _request_body(request):
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


def _json_without_tabs(text) -> str | None:
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        json.loads(text)
    except ValueError:  # includes UnicodeDecodeError
        return None
    return text.replace("\t", " ") if "\t" in text else None


class _Counter:
    __slots__ = ("matches", "hits")

    def __init__(self):
        self.matches = 0
        self.hits = 0


class ScenarioEngine:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.RLock()
        self._scenarios: dict[str, Scenario] = {}
        self._counters: dict[tuple[Rule, str | None], _Counter] = {}

    # -- loading ---------------------------------------------------------------------------
    @staticmethod
    def parse(text: str | bytes, source: str) -> ScenarioDocument:
        """Parse and validate one document (YAML or JSON); raise DocumentError naming the line."""
        try:
            data, lines = load(text, source)
        except DocumentError:
            # JSON is YAML except for tab indentation; in valid JSON a raw tab is only whitespace
            relaxed = _json_without_tabs(text)
            if relaxed is None:
                raise
            data, lines = load(relaxed, source)
        return ScenarioEngine.validate(data, source, lines)

    @staticmethod
    def validate(data, source: str = "<document>", lines: dict | None = None) -> ScenarioDocument:
        lines = lines or {}
        if data is None:
            raise DocumentError(source, 1, "empty scenario document: give name and rules")
        if not isinstance(data, dict):
            raise DocumentError(source, lines.get((), 1), "a scenario document is a mapping with name and rules")
        try:
            _DocumentSchema().load(data)
        except ValidationError as exc:
            raise error_from_validation(source, lines, exc.messages) from None
        doc = ScenarioDocument(data)
        doc.source, doc.lines = source, lines
        return doc

    @staticmethod
    def read_files(paths: list[str]) -> list[ScenarioDocument]:
        docs = []
        for path in paths:
            try:
                with open(path, "rb") as fh:
                    text = fh.read()
            except OSError as exc:
                raise DocumentError(path, None, f"cannot read: {exc.strerror}") from None
            docs.append(ScenarioEngine.parse(text, path))
        return docs

    def compile(self, document) -> Scenario:
        """Validate against the running providers and build the rules; raises DocumentError."""
        if not isinstance(document, ScenarioDocument):
            document = self.validate(document)
        source, lines = document.source, document.lines
        loaded = _DocumentSchema().load(document)
        rules = []
        now = self.sandbox.clock.now()
        for i, spec in enumerate(loaded["rules"]):
            provider = None if spec["provider"] == "any" else spec["provider"]
            effect = dict(spec["effect"])
            if "decline" in effect:
                p = self.sandbox.providers.get(provider)
                if p is None or not p.decline_code_valid(effect["decline"]):
                    raise error_from_validation(
                        source, lines, {"decline": [f"{effect['decline']!r} is not a {provider} decline code"]},
                        prefix=("rules", i, "effect"))
            after = spec.get("after")
            if after is not None:
                after = now + after[1] if after[0] == "duration" else after[1]
            rules.append(Rule(
                scenario=loaded["name"], name=spec["name"], spec=document["rules"][i], provider=provider,
                method=spec["method"].upper() if "method" in spec else None, path=spec.get("path"),
                conditions=_conditions(spec.get("match")), nth=spec.get("nth"), times=spec.get("times"),
                probability=spec.get("probability"), after=after, effect=effect))
        return Scenario(name=loaded["name"], description=loaded.get("description"), source=source,
                        document=dict(document), rules=rules)

    def add(self, document) -> Scenario:
        """Install a document; one with the same name is replaced (its counters restart)."""
        scenario = self.compile(document)
        with self._lock:
            old = self._scenarios.pop(scenario.name, None)
            if old is not None:
                self._drop_counters(lambda rule, tenant: rule.scenario == old.name)
            self._scenarios[scenario.name] = scenario
        return scenario

    def load_text(self, text: str | bytes, source: str = "<request body>") -> Scenario:
        return self.add(self.parse(text, source))

    def remove(self, name: str | None = None) -> list[str]:
        """Unload one scenario by name, or all; returns the names unloaded."""
        with self._lock:
            names = list(self._scenarios) if name is None else ([name] if name in self._scenarios else [])
            for n in names:
                del self._scenarios[n]
            self._drop_counters(lambda rule, tenant: rule.scenario in names)
        return names

    # -- matching --------------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        with self._lock:
            return [rule for s in self._scenarios.values() for rule in s.rules]

    def match(self, provider, tenant, request) -> Decision | None:
        rules = self.rules()
        if not rules:
            return None
        cache = []

        def body_of():
            if not cache:
                cache.append(_request_body(request))
            return cache[0]

        method, path = request.method.upper(), request.path
        candidates = [r for r in rules if r.criteria_hold(provider.name, method, path, body_of)]
        if not candidates:
            return None
        now = self.sandbox.clock.now(tenant)
        fired = []
        with self._lock:
            live = {id(r) for s in self._scenarios.values() for r in s.rules}
            for rule in candidates:
                if id(rule) not in live:   # unloaded while this request was being matched
                    continue
                if rule.after is not None and now < rule.after:
                    continue
                counter = self._counters.setdefault((rule, tenant), _Counter())
                counter.matches += 1
                if rule.nth is not None and counter.matches != rule.nth:
                    continue
                if rule.times is not None and counter.matches > rule.times:
                    continue
                if rule.probability is not None and not self.sandbox.ids.draw() < rule.probability:
                    continue
                counter.hits += 1
                fired.append(rule)
        return self.decide(fired) if fired else None

    @staticmethod
    def decide(fired: list[Rule]) -> Decision:
        """Merge the effects of the rules that fired; for each effect the first rule (load order) wins."""
        fx = Effects(rules=[r.name for r in fired])
        decision = Decision(effects=fx)
        for rule in fired:
            e = rule.effect
            if fx.decline is None and "decline" in e:
                fx.decline = e["decline"]
            if e.get("require_3ds"):
                fx.require_3ds = True
            if fx.token is None and "token" in e:
                fx.token = e["token"]
            for key, value in (e.get("webhook") or {}).items():
                fx.webhook.setdefault(key, value)
            if not decision.latency_ms and e.get("latency_ms"):
                decision.latency_ms = e["latency_ms"]
            if decision.drop_connection is None and e.get("drop_connection"):
                decision.drop_connection = e["drop_connection"]
            if decision.http_error is None and "http_error" in e:
                decision.http_error = dict(e["http_error"])
        return decision

    # -- counters and listing --------------------------------------------------------------
    def _drop_counters(self, predicate) -> None:
        for key in [k for k in self._counters if predicate(*k)]:
            del self._counters[key]

    def reset_counters(self, tenant=None) -> None:
        with self._lock:
            if tenant is None:
                self._counters.clear()
            else:
                self._drop_counters(lambda rule, t: t == tenant)

    def _rule_listing(self, rule: Rule) -> dict:
        per_tenant = [{"tenant": t, "matches": c.matches, "hits": c.hits}
                      for (r, t), c in self._counters.items() if r is rule]
        return {**rule.spec, "scenario": rule.scenario, "name": rule.name,
                "hits": sum(x["hits"] for x in per_tenant), "matches": sum(x["matches"] for x in per_tenant),
                "tenants": per_tenant}

    def listing(self) -> list[dict]:
        with self._lock:
            out = []
            for s in self._scenarios.values():
                doc = {k: v for k, v in s.document.items() if k != "rules"}
                out.append({**doc, "source": s.source, "rules": [self._rule_listing(r) for r in s.rules]})
            return out

    def summary(self) -> list[dict]:
        """One item per loaded rule (scenario, name, hits), for the dashboard."""
        with self._lock:
            return [self._rule_listing(r) for s in self._scenarios.values() for r in s.rules]
