"""The shape every provider package shares: one exception, one error table, one transition-table
form, one validation walker, one provider-scoped store and one machine base.

A provider package holds the same files with the same roles:

- ``__init__.py`` — the Provider: ``name``, ``mount``, ``config_schema``, ``authenticate``,
  ``error_table`` (kind -> ``ErrorSpec``) and ``envelope`` (how one row is put on the wire),
  ``machine_class``.
- ``routes.py`` — thin handlers: parse (schemas) -> machine -> view.
- ``schemas.py`` — request validation only; ``walk`` turns marshmallow's messages into pairs.
- ``machine.py`` — a ``Machine`` subclass: one ``Transitions`` table per stateful object and the
  business rules. It raises ``Refusal`` and never builds an HTTP response.
- ``views.py`` — every response body and webhook payload.
- ``testcards.py`` — the provider's magic values; ``templates/`` — hosted pages.

Every error a provider answers goes one way: something raises ``Refusal(kind, ...)``, the
pipeline (or ``Provider.idempotent``) hands it to ``Provider.error``, which looks the kind up in
``error_table`` and calls ``envelope``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Callable, Iterator

from marshmallow import ValidationError, missing, validate


class Refusal(Exception):
    """The one domain exception: ``kind`` names a row of the provider's error table.

    ``detail`` replaces the row's message (a string) or carries structured data the envelope
    understands (validation pairs, a decline reason); ``status`` overrides the row's HTTP status;
    ``fields`` are extra envelope members (``param=``, ``transaction_id=``...).
    """

    def __init__(self, kind: str, detail: Any = None, *, status: int | None = None, **fields: Any) -> None:
        super().__init__(kind if detail is None else f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        self.fields = fields


@dataclass(frozen=True)
class ErrorSpec:
    """One row of a provider's error table: HTTP status, the provider's code, its default message,
    any constant envelope members (``extra``), and whether the message is ``fixed`` (a string
    detail does not replace it: the core passes werkzeug's wording, which no provider uses).
    ``own_status``: the row's status wins over the one the core met (a provider may answer every
    unreadable body alike, whatever werkzeug made of it)."""
    status: int
    code: str
    message: str | None = None
    extra: dict = field(default_factory=dict)
    fixed: bool = False
    own_status: bool = False

    def text(self, detail: Any) -> str | None:
        """The message for one error: a string detail (unless ``fixed``), validation pairs as
        ``path: message; ...``, else the row's own message."""
        if isinstance(detail, str) and detail and not self.fixed:
            return detail
        if isinstance(detail, list) and detail:
            return "; ".join(f"{path}: {message}" for path, message in detail)
        return self.message


class Exact(validate.Regexp):
    """A Regexp that must match the whole value: marshmallow's uses re.match, where "^[A-Z]{2}$"
    also takes "GB\n". The pattern stays as written, so the OpenAPI document shows it as is."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


@cache
def schema(cls) -> "_Loader":
    """The shared loader of a schema class: ``schema(cls).load(data)`` validates as ``cls().load``
    would. Instances are built once and shared (building one deep-copies every declared field, and
    ``load`` keeps no state between calls)."""
    return _Loader(cls)


class _Loader:
    """marshmallow walks every declared field on each load, present or not; a request names a few
    of a schema's many optional fields. So each set of fields a request names gets its own instance
    restricted (``only``) to those fields plus every one that reports or fills in a missing value
    (required, or with a load default), in declared order: the same fields are validated in the
    same order, with the same errors and the same unknown keys. A schema whose ``pre_load`` may
    change the keys is loaded whole."""

    def __init__(self, cls) -> None:
        self.whole = cls()
        self._by_key = {(f.data_key or name): name for name, f in self.whole.load_fields.items()}
        self._always = frozenset(name for name, f in self.whole.load_fields.items()
                                 if f.required or f.load_default is not missing)
        self._order = list(self.whole.load_fields)
        self._lean = not self.whole._hooks["pre_load"]
        self._for = lru_cache(maxsize=64)(self._restricted)

    def _restricted(self, names: frozenset):
        return type(self.whole)(only=[n for n in self._order if n in names])

    def load(self, data, **kwargs):
        if kwargs or not self._lean or not isinstance(data, dict):
            return self.whole.load(data, **kwargs)
        by_key = self._by_key
        names = self._always.union([by_key[k] for k in data if k in by_key])
        return (self.whole if len(names) == len(by_key) else self._for(names)).load(data)


def walk(messages: Any, path: str = "", sep: str = ".") -> Iterator[tuple[str, str]]:
    """marshmallow's nested error messages as ``(dotted.path, message)`` pairs.

    A schema-level message (``_schema``) belongs to the object that holds it; at the top it keeps
    the path ``_schema``. ``sep`` joins the keys (``"/"`` for JSON-pointer paths, whose keys may
    hold dots).
    """
    if isinstance(messages, dict):
        for key, value in messages.items():
            sub = path if key == "_schema" else (f"{path}{sep}{key}" if path else str(key))
            yield from walk(value, sub, sep)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            yield from walk(item, path, sep)
    else:
        yield (path or "_schema", str(messages))


class Transitions:
    """One stateful object's state machine: ``{(state, event): next_state}``.

    Everything the dashboard and the docs need is data here (``initial``, ``states``, ``edges``);
    ``move`` is the only way an object changes state, and an illegal move raises
    ``Refusal(refusal, message)``. ``message`` is a format string over the object's fields plus
    ``{state}``, ``{event}`` and ``{name}``, or a callable ``(obj, event) -> str``.
    """

    def __init__(self, name: str, initial: str, edges: dict[tuple[str, str], str], *, field: str = "status",
                 refusal: str = "invalid_state",
                 message: str | Callable[[dict, str], str] = "{name} is {state}; cannot {event}") -> None:
        self.name = name
        self.initial = initial
        self.edges = dict(edges)
        self.field = field
        self.refusal = refusal
        self.message = message

    @property
    def states(self) -> list[str]:
        seen = [self.initial]
        for (state, _), target in self.edges.items():
            for s in (state, target):
                if s not in seen:
                    seen.append(s)
        return seen

    def final(self, state: str) -> bool:
        return not any(s == state for s, _ in self.edges)

    def target(self, state: str, event: str) -> str | None:
        return self.edges.get((state, event))

    def allows(self, obj: dict, event: str) -> bool:
        return (obj[self.field], event) in self.edges

    def refuse(self, obj: dict, event: str) -> Refusal:
        state = obj[self.field]
        if callable(self.message):
            text = self.message(obj, event)
        else:
            text = self.message.format_map({**obj, "state": state, "event": event.replace("_", " "),
                                            "name": self.name})
        return Refusal(self.refusal, text)

    def move(self, obj: dict, event: str) -> str:
        target = self.edges.get((obj[self.field], event))
        if target is None:
            raise self.refuse(obj, event)
        obj[self.field] = target
        return target


def status_table(table: Transitions) -> str:
    """A Markdown status table generated from a transition table (for docs and README)."""
    lines = [f"| {table.name} status | event | next status |", "|---|---|---|"]
    for (state, event), target in table.edges.items():
        lines.append(f"| `{state}` | {event.replace('_', ' ')} | `{target}` |")
    return "\n".join(lines)


class ScopedStore:
    """``sandbox.store`` seen by one provider: no call names the provider.

    Mutate objects only while holding ``lock`` and ``put`` them again afterwards (persistence
    writes through). ``get(kind, id, tenant=caller)`` is None for another tenant's object.
    """

    def __init__(self, sandbox, provider_name: str) -> None:
        self._sandbox = sandbox
        self._name = provider_name

    @property
    def lock(self):
        return self._sandbox.store.lock

    def put(self, kind: str, id: str, obj: dict, tenant: str) -> dict:
        return self._sandbox.store.put(self._name, kind, id, obj, tenant)

    def pass_through(self, kind: str, id: str, obj: dict, tenant: str) -> None:
        self._sandbox.store.pass_through(self._name, kind, id, obj, tenant)

    def get(self, kind: str, id: str, tenant: str | None = None) -> dict | None:
        return self._sandbox.store.get(self._name, kind, id, tenant=tenant)

    def tenant_of(self, kind: str, id: str) -> str | None:
        return self._sandbox.store.tenant_of(self._name, kind, id)

    def list(self, kind: str, tenant: str) -> list[dict]:
        return self._sandbox.store.list(self._name, kind, tenant)

    def delete(self, kind: str, id: str) -> None:
        self._sandbox.store.delete(self._name, kind, id)

    def newest(self, kind: str, tenant: str, offset: int, limit: int) -> list[dict]:
        return self._sandbox.store.newest(self._name, kind, tenant, offset, limit)

    def size(self, kind: str, tenant: str) -> int:
        return self._sandbox.store.size(self._name, kind, tenant)

    def ordered(self, kind: str, tenant: str, keep: Callable[[dict], bool], offset: int,
                limit: int, match: list[tuple[str, Any]] = (),
                any_of: list[tuple[str, Any]] = ()) -> tuple[list[dict], bool]:
        """(one page, whether more follow) of what ``keep`` holds for, greatest ``Machine.orders``
        value first, ``match`` naming what it asks of indexed fields, ``any_of`` pairs one of which
        each object holds; see the store's."""
        return self._sandbox.store.ordered(self._name, kind, tenant, keep, offset, limit, match, any_of)

    def where(self, kind: str, tenant: str | None, field: str, value: Any, offset: int = 0, limit: int | None = None,
              newest_first: bool = False) -> list[dict]:
        """Objects with that indexed value (see ``Machine.indexes``), oldest first unless asked; a
        tenant of None: any tenant's."""
        return self._sandbox.store.where(self._name, kind, tenant, field, value, offset, limit, newest_first)

    def where_count(self, kind: str, tenant: str, field: str, value: Any) -> int:
        return self._sandbox.store.where_count(self._name, kind, tenant, field, value)

    def select(self, kind: str, tenant: str | None, match: dict[str, Any], offset: int = 0, limit: int | None = None,
               newest_first: bool = False, after: str | None = None,
               before: str | None = None) -> tuple[int, list[dict]] | None:
        """(count, one page) of the objects holding every indexed value of ``match``; see the store's."""
        return self._sandbox.store.select(self._name, kind, tenant, match, offset, limit, newest_first, after, before)


class Machine:
    """Base of every provider's machine: the business rules of one provider.

    The Provider builds exactly one (``Provider.machine_class``) and keeps it as
    ``provider.machine``. Subclasses list their transition tables in ``tables`` (one per stateful
    object), keep state in ``self.store`` and time/ids/effects on ``self.p`` / ``self.sb``, and
    raise ``Refusal`` for anything they refuse.
    """

    tables: tuple[Transitions, ...] = ()
    # timer name -> method name. Timers are data (a name and JSON arguments) so that a state file
    # can carry them across a restart; the handler is found again by its name.
    timer_handlers: dict[str, str] = {}
    # kind -> the fields list filters and lookups use, as names or {name: extract(obj) -> value}:
    # the store keeps them indexed, so ``store.where`` costs its page, not the number stored
    indexes: dict[str, tuple[str, ...] | dict[str, Callable[[dict], Any]]] = {}
    # kind -> the field its list endpoint sorts by (a string such as an instant): the store keeps the
    # objects sorted by it, so ``store.ordered`` reads a page without sorting every object
    orders: dict[str, str] = {}
    # kinds the provider stored once and no longer does (an index took their place): a state file
    # written before still holds them, and they are dropped at start
    retired: tuple[str, ...] = ()

    def __init__(self, provider) -> None:
        self.p = provider
        self.sb = provider.sandbox
        self.store = provider.store
        store = self.sb.store
        for kind in {**self.indexes, **self.orders}:
            fields = self.indexes.get(kind, ())
            store.declare(provider.name, kind, fields if isinstance(fields, dict) else dict.fromkeys(fields),
                          self.orders.get(kind))
        for name, tenant, kind, _ in store.groups():
            if name == provider.name and kind in self.retired:
                for id, _ in list(store.items(name, kind, tenant)):
                    store.delete(name, kind, id)
        for name, method in self.timer_handlers.items():
            self.sb.timers.register(f"{provider.name}.{name}", getattr(self, method))

    def schedule(self, when, tenant: str, name: str, *, key: str, **args) -> None:
        """Run ``timer_handlers[name]`` as ``method(tenant, **args)`` at ``when`` on the tenant's
        clock; a later schedule with the same ``key`` replaces this one."""
        self.sb.timers.at(when, tenant, f"{self.p.name}.{name}", args, key=key)
