"""Webhook payloads: Gr4vy's current ("new") event shape, a superset of the older one."""
from __future__ import annotations

from datetime import datetime


def event(event_id: str, name: str, at: datetime, merchant_account_id: str, gr4vy_id: str, target: dict) -> dict:
    return {"type": "event", "id": event_id, "name": name, "created_at": at.isoformat(),
            "merchant_account_id": merchant_account_id, "gr4vy_id": gr4vy_id, "environment": "sandbox",
            "target": target}
