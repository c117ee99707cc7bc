"""Scenarios (design.md section 5), in three parts: ``schema`` (what a valid document is),
``matching`` (a rule against a request, and merging what fired) and ``engine`` (installed
documents, counters, per-request decisions)."""
from .engine import Scenario, ScenarioEngine
from .matching import Decision
from .schema import ScenarioDocument

__all__ = ["Decision", "Scenario", "ScenarioDocument", "ScenarioEngine"]
