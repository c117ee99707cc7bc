"""/_sandbox/scenarios: list, load, unload (filled in by the scenario-engine issue)."""
