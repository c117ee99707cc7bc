"""The scenario engine (design.md section 5): install documents and decide, per request, which
rules fire.

Before every provider handler the pipeline asks ``match(provider, tenant, request)``; every rule
whose criteria hold counts the request (per rule and tenant), and fires when its ``nth`` /
``times`` / ``probability`` allow. The engine knows no provider: a rule names one by
``provider.name``, and a decline code is checked with that provider's own ``decline_code_valid``.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..clock import parse_instant
from ..documents import error_from_validation
from .matching import Decision, Rule, conditions, decide, request_body
from .schema import DocumentSchema, ScenarioDocument, check_providers, parse, read_files, validate


@dataclass
class Scenario:
    name: str
    description: str | None
    source: str
    document: dict
    rules: list[Rule]


# where a state file keeps the moment each scenario was loaded (see ``_loaded_at``)
_SPACE = "scenarios"


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
    parse = staticmethod(parse)
    validate = staticmethod(validate)
    read_files = staticmethod(read_files)

    def compile(self, document, *, at_start: bool = False) -> Scenario:
        """Validate against the running providers and build the rules; raises DocumentError.
        ``at_start``: passed with ``--scenario`` (see ``_loaded_at``)."""
        if not isinstance(document, ScenarioDocument):
            document = self.validate(document)
        source, lines = document.source, document.lines
        check_providers(document, self.sandbox.providers)
        loaded = DocumentSchema().load(document)
        rules = []
        for i, spec in enumerate(loaded["rules"]):
            provider = None if spec["provider"] == "any" else spec["provider"]
            effect = dict(spec["effect"])
            if "decline" in effect:
                p = self.sandbox.providers.get(provider)
                if p is None or not p.decline_code_valid(effect["decline"]):
                    raise error_from_validation(
                        source, lines, {"decline": [f"{effect['decline']!r} is not a {provider} decline code"]},
                        prefix=("rules", i, "effect"))
            rules.append(Rule(
                scenario=loaded["name"], name=spec["name"], spec=document["rules"][i], provider=provider,
                method=spec["method"].upper() if "method" in spec else None, path=spec.get("path"),
                conditions=conditions(spec.get("match")), nth=spec.get("nth"), times=spec.get("times"),
                probability=spec.get("probability"), after=None, effect=effect))
        # once the whole document is known good: a refused one leaves no load instant behind
        if any(spec.get("after") for spec in loaded["rules"]):
            at, offsets = self._loaded_at(loaded["name"], document, at_start)
            for rule, spec in zip(rules, loaded["rules"]):
                if (after := spec.get("after")) is None:
                    continue
                if after[0] == "duration":
                    # the clock stays years from datetime's end and durations are at most a century
                    rule.after, rule.after_offsets = at + after[1], offsets
                else:
                    rule.after = after[1]
        return Scenario(name=loaded["name"], description=loaded.get("description"), source=source,
                        document=dict(document), rules=rules)

    def _loaded_at(self, name: str, document: dict, at_start: bool) -> tuple[datetime, dict[str, timedelta]]:
        """The moment a duration ``after`` counts from: the shared clock and each tenant's offset when
        the scenario was loaded. Kept in a state file, so that the same document passed again with
        ``--scenario`` after a restart counts from its first load, not from the restart (which would
        put a P400D rule 400 days further off each time). A load through the admin API starts over."""
        state, clock = self.sandbox.state, self.sandbox.clock
        digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
        saved = state.get(_SPACE, name) if at_start else None
        if saved is not None and saved["document"] == digest:
            return parse_instant(saved["at"]), {t: timedelta(microseconds=us) for t, us in saved["offsets"].items()}
        at, offsets = clock.now(), clock.offsets()
        state.put(_SPACE, name, {"document": digest, "at": at.isoformat(),
                                 "offsets": {t: offset // timedelta(microseconds=1) for t, offset in offsets.items()}})
        return at, offsets

    def add(self, document, *, at_start: bool = False) -> Scenario:
        """Install a document; one with the same name is replaced (its counters restart)."""
        scenario = self.compile(document, at_start=at_start)
        with self._lock:
            old = self._scenarios.pop(scenario.name, None)
            if old is not None:
                self._drop_counters(lambda rule, tenant: rule.scenario == old.name)
            self._scenarios[scenario.name] = scenario
        return scenario

    def load_text(self, text: str | bytes, source: str = "<request body>") -> Scenario:
        return self.add(parse(text, source, self.sandbox.providers))

    def remove(self, name: str | None = None) -> list[str]:
        """Unload one scenario by name, or all; returns the names unloaded."""
        with self._lock:
            names = list(self._scenarios) if name is None else ([name] if name in self._scenarios else [])
            for n in names:
                del self._scenarios[n]
                self.sandbox.state.delete(_SPACE, n)
            self._drop_counters(lambda rule, tenant: rule.scenario in names)
        return names

    # -- matching --------------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        with self._lock:
            return [rule for s in self._scenarios.values() for rule in s.rules]

    def match(self, provider, tenant, request) -> Decision | None:
        if not self._scenarios:   # nothing loaded: no lock, no list on every request
            return None
        rules = self.rules()
        if not rules:
            return None
        cache = []

        def body_of():
            if not cache:
                cache.append(request_body(request))
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
                if not rule.reached(tenant, now):
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
        return decide(fired) if fired else None

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
