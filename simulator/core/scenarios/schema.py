"""Scenario documents: the strict schema a document must pass, and reading one from text or a file.

Documents are validated completely before any rule is installed, so a bad document is never
half-loaded. Rule names of providers are checked against the names the caller knows (the running
providers): this module knows no provider.

Every number a rule holds is bounded here, and every string checked to be text, at load: a value
that parses but that nothing downstream can carry (a delay past year 9999, a NaN the JSON listing
cannot spell, a billion duplicate deliveries, a lone surrogate the dashboard cannot encode) would
otherwise surface later as a 500 on a provider request or on a read of the admin API, long after
the document was accepted.
"""
from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..clock import MAX_DURATION, DurationTooLong, check_range, parse_duration, parse_instant
from ..documents import DocumentError, clean, error_from_validation, load

# Counts (``nth``, ``times``, ``webhook.fail``): inside the 32-bit range, which every JSON reader
# of the listing keeps exact, and far beyond any count a test reaches.
MAX_COUNT = 1_000_000_000
# Each copy is a delivery in the outbox, which refuses writes at 100,000 pending: a larger
# ``duplicate`` would fill it from one request.
MAX_DUPLICATES = 100


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
        # NaN passes every range check (all its comparisons are false), and neither it nor an
        # infinity can be written as JSON: GET /_sandbox/scenarios would answer invalid JSON
        if not math.isfinite(value):
            raise ValidationError("must be a finite number")
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


def bounded_duration(value) -> timedelta:
    """``parse_duration`` up to MAX_DURATION (a century covers any subscription a test ages):
    ValueError if ``value`` is no duration at all, ValidationError if it is one but too long."""
    try:
        return parse_duration(value, MAX_DURATION)
    except DurationTooLong as exc:
        raise ValidationError(f"{exc} (100 years)") from None


class _Duration(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            bounded_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return value   # the outbox reads the text when the rule fires


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
            return ("duration", bounded_duration(value))
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
            json.dumps(data.get("body"), allow_nan=False)
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
    fail = _Int(validate=validate.Range(1, MAX_COUNT, error="must be 1 to {max}"))
    status = _Int(validate=validate.Range(300, 599, error="must be a failing HTTP status, 300-599"))
    drop = _Bool()
    duplicate = _Int(validate=validate.Range(1, MAX_DUPLICATES, error="must be 1 to {max}"))
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
    nth = _Int(validate=validate.Range(1, MAX_COUNT, error="must be 1 or more (1-based), at most {max}"))
    times = _Int(validate=validate.Range(1, MAX_COUNT, error="must be 1 or more, at most {max}"))
    probability = _Number(validate=validate.Range(0, 1, error="must be between 0 and 1"))
    after = _After()
    effect = fields.Nested(_EffectSchema, required=True)

    @validates_schema
    def _check(self, data, **kwargs):
        provider = data.get("provider", "any")
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


class _ClockSchema(_Strict):
    start = fields.Raw(required=True)

    @validates_schema
    def _start(self, data, **kwargs):
        try:
            check_range(parse_instant(data["start"]))
        except ValueError as exc:
            raise ValidationError({"start": [str(exc)]}) from None


class DocumentSchema(_Strict):
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


def _json_without_tabs(text) -> str | None:
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        json.loads(text)
    except ValueError:  # includes UnicodeDecodeError
        return None
    return text.replace("\t", " ") if "\t" in text else None


def check_providers(document: ScenarioDocument, known) -> None:
    """Every rule names ``any`` or one of the ``known`` providers; raise DocumentError otherwise."""
    known = list(known)
    for i, rule in enumerate(document.get("rules") or []):
        provider = rule.get("provider", "any") if isinstance(rule, dict) else "any"
        if provider != "any" and provider not in known:
            raise error_from_validation(
                document.source, document.lines,
                {"provider": [f"unknown provider; known: any, {', '.join(known)}"]}, prefix=("rules", i))


def parse(text: str | bytes, source: str, providers=None) -> ScenarioDocument:
    """Parse and validate one document (YAML or JSON); raise DocumentError naming the line."""
    try:
        data, lines = load(text, source)
    except DocumentError:
        # JSON is YAML except for tab indentation; in valid JSON a raw tab is only whitespace
        relaxed = _json_without_tabs(text)
        if relaxed is None:
            raise
        data, lines = load(relaxed, source)
    return validate(data, source, lines, providers)


def validate(data, source: str = "<document>", lines: dict | None = None, providers=None) -> ScenarioDocument:
    """``providers``: the provider names rules may use; None leaves them to be checked on install."""
    lines = lines or {}
    if data is None:
        raise DocumentError(source, 1, "empty scenario document: give name and rules")
    if not isinstance(data, dict):
        raise DocumentError(source, lines.get((), 1), "a scenario document is a mapping with name and rules")
    data, lines = clean(data, source, lines)   # a document given as data, not text, too
    try:
        DocumentSchema().load(data)
    except ValidationError as exc:
        raise error_from_validation(source, lines, exc.messages) from None
    doc = ScenarioDocument(data)
    doc.source, doc.lines = source, lines
    if providers is not None:
        check_providers(doc, providers)
    return doc


def read_files(paths: list[str], providers=None) -> list[ScenarioDocument]:
    docs = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                text = fh.read()
        except OSError as exc:
            raise DocumentError(path, None, f"cannot read: {exc.strerror}") from None
        docs.append(parse(text, path, providers))
    return docs
