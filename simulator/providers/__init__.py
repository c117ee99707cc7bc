"""Provider registry.

A provider is mounted when its package exists below this one AND its name is in ``REGISTERED``:
adding a sixth provider is its package plus one line here. (A provider that is not registered
can still be mounted by ``create_app(extra_providers=[cls])``, as the skeleton provider's test
does.) ``PSP_SANDBOX_PROVIDERS=checkout,gr4vy`` mounts only those.
"""
from __future__ import annotations

import importlib
import os

REGISTERED = (
    "checkout",
    "gr4vy",
    "paysera",
    "bank131",
    "zafapay",
)


def provider_classes() -> list:
    wanted = [n.strip() for n in os.environ.get("PSP_SANDBOX_PROVIDERS", "").split(",") if n.strip()]
    return [importlib.import_module(f"{__name__}.{name}").PROVIDER
            for name in wanted or REGISTERED if name in REGISTERED]
