"""The config document (design.md section 4): loaded from a file, merged at run time."""
from __future__ import annotations

import copy

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .core.clock import check_range, parse_instant
from .core.documents import DocumentError, error_from_validation, load
from .providers import provider_classes


class _ClockSchema(Schema):
    class Meta:
        unknown = RAISE
    start = fields.String(required=True)

    @validates_schema
    def _start(self, data, **kw):
        try:
            check_range(parse_instant(data["start"]))
        except (ValueError, KeyError) as exc:
            raise ValidationError(str(exc), "start") from None


class _ConfigSchema(Schema):
    class Meta:
        unknown = RAISE
    seed = fields.Integer(allow_none=True, strict=True)
    clock = fields.Nested(_ClockSchema, allow_none=True)
    webhooks = fields.String(validate=validate.OneOf(["auto", "manual"]))
    webhook_timeout = fields.Float(validate=validate.Range(min=0.1, max=60))
    providers = fields.Dict(keys=fields.String(), values=fields.Dict(allow_none=True))

    @validates_schema
    def _providers(self, data, **kw):
        known = {cls.name: cls for cls in provider_classes()}
        for name, section in (data.get("providers") or {}).items():
            if name not in known:
                raise ValidationError({name: [f"unknown provider; known: {', '.join(known)}"]}, "providers")
            schema_cls = known[name].config_schema
            if schema_cls is not None and section is not None:
                errors = schema_cls(unknown=RAISE).validate(section)
                if errors:
                    raise ValidationError({name: errors}, "providers")


class Config:
    def __init__(self, document: dict) -> None:
        self.document = document

    @classmethod
    def from_document(cls, document, source: str = "<config>", lines: dict | None = None) -> "Config":
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise DocumentError(source, 1, "a config document is a mapping")
        try:
            _ConfigSchema().load(document)
        except ValidationError as exc:
            raise error_from_validation(source, lines or {}, exc.messages) from None
        return cls(copy.deepcopy(document))

    @classmethod
    def from_text(cls, text, source: str) -> "Config":
        data, lines = load(text, source)
        return cls.from_document(data, source, lines)

    @classmethod
    def from_file(cls, path: str) -> "Config":
        try:
            with open(path, "rb") as fh:
                text = fh.read()
        except OSError as exc:
            raise DocumentError(path, None, f"cannot read: {exc.strerror}") from None
        return cls.from_text(text, path)

    def merged(self, other: dict, source: str = "<config>", lines: dict | None = None) -> "Config":
        return Config.from_document(_deep_merge(copy.deepcopy(self.document), other or {}), source, lines)

    @property
    def seed(self):
        return self.document.get("seed")

    @property
    def clock_start(self):
        return (self.document.get("clock") or {}).get("start")

    @property
    def webhooks(self) -> str:
        return self.document.get("webhooks", "auto")

    @property
    def providers(self) -> dict:
        return self.document.get("providers") or {}

    def masked(self) -> dict:
        doc = copy.deepcopy(self.document)
        secret_keys = {cls.name: cls.secret_config_keys for cls in provider_classes()}
        for name, section in (doc.get("providers") or {}).items():
            _mask(section, set(secret_keys.get(name, ())))
        return doc


def _deep_merge(base: dict, other: dict) -> dict:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def _mask(node, secret: set) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in secret:
                node[key] = _masked_value(value)
            else:
                _mask(value, secret)
    elif isinstance(node, list):
        for item in node:
            _mask(item, secret)


def _masked_value(value):
    if isinstance(value, list):
        return [_masked_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked_value(v) for k, v in value.items()}
    text = str(value)
    return text[:6] + "…" if len(text) > 8 else "…"
