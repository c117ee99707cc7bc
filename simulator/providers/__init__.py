"""Provider registry: every package below this one that exists is mounted."""
from __future__ import annotations

import importlib
import importlib.util
import os

ORDER = ("checkout", "gr4vy", "paysera", "bank131", "zafapay")


def provider_classes() -> list:
    classes = []
    # PSP_SANDBOX_PROVIDERS=checkout,gr4vy mounts only those (a smaller dashboard, faster start)
    wanted = [n.strip() for n in os.environ.get("PSP_SANDBOX_PROVIDERS", "").split(",") if n.strip()]
    for name in wanted or ORDER:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        classes.append(module.PROVIDER)
    return classes
