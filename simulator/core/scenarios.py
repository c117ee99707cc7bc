"""Scenario engine: load, validate, match, and decide effects (design.md section 5).

This is the interface the request pipeline calls; rule loading and matching are filled in by the
scenario-engine issue.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .effects import Effects


@dataclass
class Decision:
    effects: Effects = field(default_factory=Effects)
    latency_ms: int = 0
    drop_connection: str | None = None     # "before" | "after"
    http_error: dict | None = None


class ScenarioEngine:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.documents: list[dict] = []

    @staticmethod
    def read_files(paths: list[str]) -> list[dict]:
        if paths:
            raise NotImplementedError("scenario files are not supported yet")
        return []

    def add(self, document: dict) -> None:
        self.documents.append(document)

    def match(self, provider, tenant, request) -> Decision | None:
        return None

    def reset_counters(self, tenant=None) -> None:
        pass
