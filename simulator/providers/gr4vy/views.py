"""Every body Gr4vy sends: API answers, list pages and webhook payloads.

Objects are stored in their wire shape; keys starting with ``_`` are the sandbox's own bookkeeping
and ``visible`` drops them. List items use the published API document's summary shapes (the
official SDK's models are generated from it).
"""
from __future__ import annotations

import base64
import json
from datetime import datetime

from ...core.store import public
from . import testcards

TRANSACTION_SUMMARY = (
    "type", "id", "reconciliation_id", "merchant_account_id", "currency", "amount", "status",
    "authorized_amount", "captured_amount", "refunded_amount", "settled_currency", "settled_amount", "settled",
    "country", "external_identifier", "intent", "payment_method", "method", "instrument_type", "error_code",
    "payment_service", "pending_review", "buyer", "raw_response_code", "raw_response_description",
    "shipping_details", "checkout_session_id", "gift_card_redemptions", "gift_card_service", "created_at",
    "updated_at", "disputed", "reauthorized_from_transaction_id")
PAYMENT_METHOD_SUMMARY = (
    "type", "approval_url", "country", "currency", "details", "expiration_date", "fingerprint", "label",
    "last_replaced_at", "method", "mode", "scheme", "id", "merchant_account_id", "additional_schemes",
    "cit_last_used_at", "cit_usage_count", "has_replacement", "last_used_at", "usage_count",
    "scheme_transaction_id", "scheme_transaction_id_scheme", "transaction_link_id")


def visible(obj: dict | None) -> dict | None:
    """A stored object without the sandbox's bookkeeping (keys starting with ``_``)."""
    if obj is None:
        return None
    return public(obj)


def payment_method(pm: dict, buyer: dict | None) -> dict:
    """A PaymentMethod with its buyer in full (``buyer_of``): the method stores only the buyer's id."""
    return {**visible(pm), "buyer": visible(buyer)}


def transaction_summary(tx: dict) -> dict:
    """A ``GET /transactions`` list item: the spec's TransactionSummary, not the full transaction."""
    return {k: tx[k] for k in TRANSACTION_SUMMARY if k in tx}


def payment_method_summary(pm: dict) -> dict:
    """A buyer's payment-method list item: the spec's PaymentMethodSummary."""
    return {k: pm[k] for k in PAYMENT_METHOD_SUMMARY if k in pm}


def cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).rstrip(b"=").decode()


def page(chunk: list[dict], limit: int, offset: int, more: bool, render=visible) -> dict:
    """One page of a cursor-paginated list: ``chunk`` is what follows the first ``offset`` items,
    ``more`` whether any follow it; the cursor is an opaque token for an offset."""
    return {"items": [render(i) for i in chunk], "limit": limit,
            "next_cursor": cursor(offset + limit) if more else None,
            "previous_cursor": cursor(max(0, offset - limit)) if offset > 0 else None}


def items(objects: list[dict], render=visible) -> dict:
    return {"items": [render(o) for o in objects]}


def _outcome(kind: str, result: dict) -> dict:
    code = result["code"]
    return {"type": kind, "status": result["status"], "code": code, "raw_response_code": code,
            "raw_response_description": testcards.RAW_RESPONSES.get(code) if code else None}


def capture(tx: dict, result: dict) -> dict:
    """The TransactionCapture wrapper (``Prefer: resource=transaction-capture``)."""
    return {**_outcome("transaction-capture", result), "capture_id": result.get("capture_id"),
            "payment_service_capture_id": None, "transaction": visible(tx)}


def void(tx: dict, result: dict) -> dict:
    """The TransactionVoid wrapper (``Prefer: resource=transaction-void``)."""
    return {**_outcome("transaction-void", result), "transaction": visible(tx)}


def event(event_id: str, name: str, at: datetime, merchant_account_id: str, gr4vy_id: str, target: dict) -> dict:
    """A webhook payload: Gr4vy's current ("new") event shape, a superset of the older one."""
    return {"type": "event", "id": event_id, "name": name, "created_at": at.isoformat(),
            "merchant_account_id": merchant_account_id, "gr4vy_id": gr4vy_id, "environment": "sandbox",
            "target": visible(target)}


def error_detail(pointer: str, message: str, location: str, kind: str | None = None) -> dict:
    """One item of an error's ``details``: all four members, the SDK rejects a detail that lacks one."""
    if kind is None:
        kind = "value_error.missing" if "Missing data" in message else (
            "type_error" if message.startswith("Not a valid") else "value_error")
    return {"location": location, "pointer": pointer, "message": message, "type": kind}
