"""Provider registry: every package below this one that exists is mounted."""
from __future__ import annotations

import importlib
import importlib.util

ORDER = ("checkout", "gr4vy", "paysera", "bank131", "zafapay")


def provider_classes() -> list:
    classes = []
    for name in ORDER:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        classes.append(module.PROVIDER)
    return classes
