"""Checkout.com business rules: the payment and instrument transition tables, the authorization
decision, 3DS, scheduled retries, follow-up actions, the vault (tokens, customers, instruments).

Every status change is one ``move`` on a table below; an action the payment's status does not
allow is Checkout.com's 403 (``Refusal("forbidden")``). Public methods take ``store.lock`` for the
whole read-check-write, so concurrent captures cannot both spend the same authorized amount.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from ...core import cards, effects
from ...core.clock import iso_z, parse_instant
from ..shape import Machine as BaseMachine, Refusal, Transitions
from . import testcards, views
from .testcards import CardProfile

# "Requested" is the status of a payment being created.
PAYMENT = Transitions("payment", "Requested", {
    ("Requested", "authorization_approved"): "Authorized",
    ("Requested", "verification_approved"): "Card Verified",
    ("Requested", "declined"): "Declined",
    ("Requested", "action_required"): "Pending",
    ("Pending", "authorization_approved"): "Authorized",
    ("Pending", "verification_approved"): "Card Verified",
    ("Pending", "declined"): "Declined",
    ("Requested", "retry_scheduled"): "Retry Scheduled",
    ("Retry Scheduled", "retry_scheduled"): "Retry Scheduled",
    ("Retry Scheduled", "authorization_approved"): "Authorized",
    ("Retry Scheduled", "declined"): "Declined",
    ("Retry Scheduled", "cancel"): "Canceled",
    ("Authorized", "capture_partial"): "Partially Captured",
    ("Authorized", "capture_full"): "Captured",
    ("Authorized", "void"): "Voided",
    ("Authorized", "expire"): "Expired",
    ("Partially Captured", "capture_partial"): "Partially Captured",
    ("Partially Captured", "capture_full"): "Captured",
    # expires_on ends the authorization, captured or not: what NonFinal captures left is released
    ("Partially Captured", "expire"): "Partially Captured",
    ("Partially Captured", "refund_partial"): "Partially Refunded",
    ("Partially Captured", "refund_full"): "Refunded",
    ("Captured", "refund_partial"): "Partially Refunded",
    ("Captured", "refund_full"): "Refunded",
    ("Partially Refunded", "refund_partial"): "Partially Refunded",
    ("Partially Refunded", "refund_full"): "Refunded",
    # a NonFinal partial capture leaves money to capture after a refund
    ("Partially Refunded", "capture_partial"): "Partially Refunded",
    ("Partially Refunded", "capture_full"): "Partially Refunded",
    ("Partially Refunded", "expire"): "Partially Refunded",
}, refusal="forbidden")

# A stored card: revoked by the merchant, or made unusable by a scenario (``token: expired`` or
# any other value); updating an expired card's expiry renews it. Paying with an inactive one is
# 422 source_id_invalid, with an expired one a 20054 decline.
INSTRUMENT = Transitions("instrument", "active", {
    ("active", "revoke"): "inactive",
    ("expired", "revoke"): "inactive",
    ("inactive", "revoke"): "inactive",
    ("active", "expire"): "expired",
    ("expired", "expire"): "expired",
    ("inactive", "expire"): "expired",
    ("expired", "renew"): "active",
}, field="state", refusal="forbidden")

AUTH_VALIDITY = timedelta(days=7)          # expires_on = processed_on + 7 days [SEED]
THREE_DS_TIMEOUT = timedelta(minutes=15)   # then 20152
TOKEN_VALIDITY = timedelta(minutes=15)

# Scheduled retries of declined merchant-initiated payments (request field ``retry``). The provider
# documents which decline codes are retried and the bounds of the request fields; its own timing is
# machine-learned and unpublished, so the sandbox spreads the attempts evenly over the window: with
# max_attempts N over D days, retry k runs k*D/N days after the first decline.
RETRY_TYPES = ("Recurring", "Unscheduled")
RETRY_CODES = {
    "dunning": {"20005", "20013", "20014", "20015", "20016", "20020", "20022", "20030", "20051", "20057",
                "20061", "20065", "20068"},
    "downtime": {"20068", "20091", "20096"},
}
DOWNTIME_RETRY = {"max_attempts": 2, "end_after_days": 1}


# The seed guide's payment shows "scheme": "Visa" (the fact sheet saw "VISA" too, and names no
# other casing for tokens or instruments): one spelling everywhere, so a scheme kept from a token
# compares equal to the payment source's. Brands as the guide's scheme table and the fact sheet's
# test cards name them.
SCHEMES = {"Visa": "Visa", "Mastercard": "Mastercard", "American Express": "Amex", "Discover": "Discover",
           "JCB": "JCB", "Diners Club": "Diners Club", "Maestro": "Maestro"}


def scheme_of(number: str) -> str:
    name = cards.scheme(number)
    return SCHEMES.get(name, name)


@dataclass
class Card:
    """A card as the sandbox may keep it: no full number, only what a provider shows plus its profile."""
    bin: str
    last4: str
    expiry_month: int
    expiry_year: int
    fingerprint: str
    scheme: str
    profile: dict
    name: str | None = None
    instrument_id: str | None = None
    cvv_given: bool = False
    billing_address: dict | None = None
    phone: dict | None = None

    @classmethod
    def from_number(cls, number: str, expiry_month: int, expiry_year: int, *, name=None, cvv=None,
                    billing_address=None, phone=None) -> "Card":
        return cls(bin=number[:6], last4=number[-4:], expiry_month=expiry_month, expiry_year=expiry_year,
                   fingerprint=cards.fingerprint(number, "checkout"), scheme=scheme_of(number),
                   profile=testcards.profile_for(number).as_dict(), name=name, cvv_given=bool(cvv),
                   billing_address=billing_address, phone=phone)

    @classmethod
    def from_record(cls, rec: dict, **extra) -> "Card":
        return cls(bin=rec["bin"], last4=rec["last4"], expiry_month=rec["expiry_month"], expiry_year=rec["expiry_year"],
                   fingerprint=rec["fingerprint"], scheme=rec["scheme"], profile=rec["profile"], name=rec.get("name"),
                   **extra)


class _RetryRequest:
    """What the scenario engine reads of a request, for an attempt no client sent."""
    method = "POST"
    content_type = "application/json"

    def __init__(self, path: str, body: dict) -> None:
        self.path = path
        self._data = json.dumps(body).encode()

    def get_data(self, cache: bool = True) -> bytes:
        return self._data


def _card_slot(instrument: dict, holder: str | None) -> str | None:
    """What a stored card is reused by: its card, expiry and customer (none: nobody's yet). With
    one index entry per card, a test card every customer pays with would make each payment read
    every customer's instrument of it."""
    if instrument.get("state") == "inactive":
        return None
    return f"{instrument['fingerprint']}:{instrument['expiry_month']}:{instrument['expiry_year']}:{holder or ''}"


def _series_card(payment: dict) -> str | None:
    """The card of an approved customer-initiated payment that can start a recurring series: what
    a merchant-initiated one with neither a previous payment nor a used instrument is matched by."""
    if not payment["merchant_initiated"] and payment["payment_type"] in ("Recurring", "Installment") \
            and payment.get("approved"):
        return payment.get("card_fingerprint")
    return None


class Machine(BaseMachine):
    """Checkout.com's payments from request to refund, the 3DS step between, scheduled retries of
    declined merchant-initiated payments, and the vault: tokens, customers and instruments."""

    timer_handlers = {"expire": "expire", "capture": "scheduled_capture", "3ds": "authentication_timeout",
                      "retry": "retry"}

    tables = (PAYMENT, INSTRUMENT)
    indexes = {"payment": {"reference": None, "_series_card": _series_card},
               "instrument": {"_card_slot": lambda i: _card_slot(i, i.get("customer_id"))},
               "customer": {"email": lambda c: (c.get("email") or "").lower() or None}}

    def __init__(self, provider) -> None:
        super().__init__(provider)
        self.ids = self.sb.ids

    # -- transitions and lookups ---------------------------------------------------------------
    @staticmethod
    def allowed(payment: dict, event: str) -> bool:
        return PAYMENT.allows(payment, event)

    @staticmethod
    def move(payment: dict, event: str) -> None:
        PAYMENT.move(payment, event)

    def find(self, kind: str, object_id: str, tenant: str) -> dict:
        obj = self.store.get(kind, object_id, tenant)
        if obj is None:
            raise Refusal("not_found")
        return obj

    def find_payment(self, tenant: str, payment_id: str) -> dict:
        """A payment by its ``pay_`` id or by the ``sid_`` of its 3DS session."""
        if payment_id.startswith("sid_"):
            session = self.store.get("session", payment_id, tenant)
            payment_id = session["payment_id"] if session else ""
        return self.find("payment", payment_id, tenant)

    def awaiting_customer(self, object_id: str) -> dict | None:
        """The payment a 3DS page (``sid_`` or ``pay_``) belongs to, whoever's it is."""
        if object_id.startswith("pay_"):
            return self.store.get("payment", object_id)
        session = self.store.get("session", object_id)
        return self.store.get("payment", session["payment_id"]) if session else None

    def emit(self, payment: dict, event_type: str, action: dict | None) -> None:
        url = self.p.settings.get("webhook_url")
        if not url:
            return
        event_id = self.ids.prefixed("evt_")
        payload = views.event(payment, event_type, action, event_id, self.p.now(payment["tenant"]), self)
        self.p.emit(payment["tenant"], event_type, payload, url, subject=payment["id"], event_id=event_id)

    def save(self, payment: dict) -> None:
        self.store.put("payment", payment["id"], payment, payment["tenant"])

    # -- sources -----------------------------------------------------------------------------
    def resolve_source(self, tenant: str, source: dict, now, fx: effects.Effects) -> Card:
        kind = source["type"]
        if kind == "card":
            card = Card.from_number(source["number"], source["expiry_month"], source["expiry_year"],
                                    name=source.get("name"), cvv=source.get("cvv"),
                                    billing_address=source.get("billing_address"), phone=source.get("phone"))
            if cards.expired(card.expiry_month, card.expiry_year, now):
                raise Refusal("validation", "card_expired")
            return card
        if kind == "token":
            token = self.store.get("token", source["token"])
            if token is None:
                raise Refusal("validation", "token_invalid")
            if token["used"]:
                raise Refusal("validation", "token_used")
            if now > token["expires_on"]:
                raise Refusal("validation", "token_expired")
            # not spent here: a later check may still refuse the request (spend_token)
            return Card.from_record(token, cvv_given=token.get("cvv_given", False),
                                    billing_address=source.get("billing_address") or token.get("billing_address"),
                                    phone=source.get("phone") or token.get("phone"))
        if kind == "customer":
            customer = self.store.get("customer", source["id"], tenant)
            if customer is None:
                raise Refusal("validation", "customer_not_found")
            # a default deleted before deleting cleared it (an older state file) is no default either
            if not customer.get("default") or self.store.get("instrument", customer["default"], tenant) is None:
                raise Refusal("validation", "customer_source_invalid")
            source = {"type": "id", "id": customer["default"]}
        instrument = self.store.get("instrument", source["id"], tenant)
        if instrument is None:
            raise Refusal("validation", "source_id_unknown")
        self.spoil(instrument, fx, tenant)
        if instrument.get("state") == "inactive":
            raise Refusal("validation", "source_id_invalid")
        return Card.from_record(instrument, instrument_id=instrument["id"], cvv_given=bool(source.get("cvv")),
                                billing_address=source.get("billing_address"), phone=source.get("phone"))

    def spend_token(self, source: dict) -> None:
        """Mark the request's card token used, once nothing can refuse the request any more: a
        refused request stores nothing, so the corrected retry may still pay with the token. The
        caller holds the store lock from ``resolve_source``'s check to here, so of two requests
        with one token exactly one pays."""
        if source["type"] != "token":
            return
        token = self.store.get("token", source["token"])
        token["used"] = True
        self.store.put("token", token["id"], token, self.store.tenant_of("token", token["id"]))

    def spoil(self, instrument: dict | None, fx: effects.Effects, tenant: str) -> None:
        """A scenario's ``token`` effect makes this stored card stop working, for good."""
        if instrument is not None and fx.token:
            INSTRUMENT.move(instrument, "expire" if fx.token == "expired" else "revoke")
            self.store.put("instrument", instrument["id"], instrument, tenant)

    def store_instrument(self, tenant: str, card: Card, payment: dict, customer: dict | None) -> dict | None:
        """Keep the card for later merchant-initiated charges: one instrument per card, expiry and
        customer. The customer's own is reused, else one nobody owns (the customer adopts it);
        another customer's never, or the same card paid for two customers would be both
        customers' card, or taken from the first one."""
        if card.instrument_id:
            return self.store.get("instrument", card.instrument_id, tenant)
        owner = customer["id"] if customer else None
        card_of = {"fingerprint": card.fingerprint, "expiry_month": card.expiry_month, "expiry_year": card.expiry_year}
        for holder in dict.fromkeys((owner, None)):
            existing = self.store.where("instrument", tenant, "_card_slot", _card_slot(card_of, holder), limit=1)
            if existing:
                return existing[0]
        instrument = {
            "id": self.ids.prefixed("src_"), "type": "card", "bin": card.bin, "last4": card.last4,
            "expiry_month": card.expiry_month, "expiry_year": card.expiry_year, "fingerprint": card.fingerprint,
            "scheme": card.scheme, "profile": card.profile, "name": card.name, "customer_id": None,
            "state": "active", "cit_payment_id": payment["id"] if not payment["merchant_initiated"] else None,
            "cit_three_ds": payment.get("three_ds_request"),
        }
        return self.store.put("instrument", instrument["id"], instrument, tenant)

    # -- customers ---------------------------------------------------------------------------
    def customer_for_payment(self, tenant: str, body_customer: dict | None) -> dict | None:
        if not body_customer:
            return None
        if body_customer.get("id"):
            customer = self.store.get("customer", body_customer["id"], tenant)
            if customer is None:
                raise Refusal("validation", "customer_not_found")
            return customer
        email = body_customer.get("email")
        if not email:
            return None
        existing = self.customer_by_email(tenant, email)
        if existing is not None:
            return existing
        return self.create_customer(tenant, {"email": email, "name": body_customer.get("name"),
                                             "phone": body_customer.get("phone")})

    def customer_by_email(self, tenant: str, email: str) -> dict | None:
        return next(iter(self.store.where("customer", tenant, "email", email.lower(), limit=1)), None)

    def create_customer(self, tenant: str, data: dict) -> dict:
        customer = {"id": self.ids.prefixed("cus_"), "email": data["email"], "name": data.get("name"),
                    "phone": data.get("phone"), "metadata": data.get("metadata") or {},
                    "default": data.get("default"), "instruments": []}
        return self.store.put("customer", customer["id"], customer, tenant)

    def attach_instrument(self, tenant: str, customer: dict | None, instrument: dict, make_default: bool = True) -> None:
        """Give the stored card to ``customer``. A card has one customer: one it belonged to
        loses it first (and its default, if it was that)."""
        if customer is None:
            return
        if instrument.get("customer_id") not in (None, customer["id"]):
            self.detach_instrument(tenant, instrument)
        if instrument["id"] not in customer["instruments"]:
            customer["instruments"].append(instrument["id"])
        if make_default or not customer.get("default"):
            customer["default"] = instrument["id"]
        instrument["customer_id"] = customer["id"]
        self.store.put("customer", customer["id"], customer, tenant)
        self.store.put("instrument", instrument["id"], instrument, tenant)

    def detach_instrument(self, tenant: str, instrument: dict) -> None:
        """Take a stored card from its customer. A customer whose default it was is left with none
        rather than another card picked for it: a charge by customer source then refuses instead
        of charging a card the merchant never chose."""
        customer = self.store.get("customer", instrument["customer_id"], tenant) if instrument.get("customer_id") else None
        instrument["customer_id"] = None
        if customer is None:
            return
        if instrument["id"] in customer["instruments"]:
            customer["instruments"].remove(instrument["id"])
        if customer.get("default") == instrument["id"]:
            customer["default"] = None
        self.store.put("customer", customer["id"], customer, tenant)

    # -- series ------------------------------------------------------------------------------
    def series_origin(self, tenant: str, payment: dict, card: Card) -> dict | None:
        """The customer-initiated payment that started this merchant-initiated series, if known."""
        seen = set()
        prev_id = payment.get("previous_payment_id")
        while prev_id and prev_id.startswith("pay_") and prev_id not in seen:
            seen.add(prev_id)
            prev = self.store.get("payment", prev_id, tenant)
            if prev is None:
                return None
            if not prev["merchant_initiated"]:
                return prev
            prev_id = prev.get("previous_payment_id") or prev.get("series_origin_id")
        if prev_id:
            return None  # a scheme transaction id from another PSP: nothing to check
        # fallback [SEED]: look up the initial CIT ourselves
        if card.instrument_id:
            inst = self.store.get("instrument", card.instrument_id, tenant)
            if inst and inst.get("cit_payment_id"):
                return self.store.get("payment", inst["cit_payment_id"], tenant)
        first = self.store.where("payment", tenant, "_series_card", card.fingerprint, limit=1)
        return first[0] if first else None

    # -- creating payments -------------------------------------------------------------------
    def request_payment(self, tenant: str, body: dict, base: str, fx: effects.Effects,
                        answer: Callable[[dict], Any]) -> Any:
        """Create and process a payment; returns ``answer(payment)`` taken before ``capture: true``
        captures it at the same instant (rendering the answer first spares a copy of the payment)."""
        with self.store.lock:
            payment = self._process(tenant, body, base, fx)
            answered = answer(payment)
            self.save_authorized(payment)
        return answered

    def payments(self, tenant: str, reference: str | None, skip: int, limit: int) -> tuple[int, list[dict]]:
        """How many of the tenant's payments (with that reference) there are, and one page of
        them, newest first."""
        if reference is None:
            return self.store.size("payment", tenant), self.store.newest("payment", tenant, skip, limit)
        return (self.store.where_count("payment", tenant, "reference", reference),
                self.store.where("payment", tenant, "reference", reference, skip, limit, newest_first=True))

    def _process(self, tenant: str, body: dict, base: str, fx: effects.Effects) -> dict:
        now = self.p.now(tenant)
        prev = body.get("previous_payment_id")
        if prev and prev.startswith("pay_") and self.store.get("payment", prev, tenant) is None:
            raise Refusal("validation", "previous_payment_id_invalid")
        card = self.resolve_source(tenant, body["source"], now, fx)
        customer = self.customer_for_payment(tenant, body.get("customer"))
        self.spend_token(body["source"])   # the last refusal is behind us
        three_ds_req = body.get("three_ds") or {}
        amount = body.get("amount", 0)
        payment = {
            "id": self.ids.prefixed("pay_"), "tenant": tenant, "status": "Requested",
            "amount": amount, "currency": body["currency"].upper(),
            "payment_type": body.get("payment_type", "Regular"),
            "merchant_initiated": body.get("merchant_initiated", False),
            "previous_payment_id": prev, "reference": body.get("reference"),
            "description": body.get("description"), "capture": body.get("capture", True),
            "capture_on": iso_z(body["capture_on"]) if body.get("capture_on") else None,
            "metadata": body.get("metadata") or {}, "customer_id": customer["id"] if customer else None,
            "success_url": body.get("success_url"), "failure_url": body.get("failure_url"),
            "three_ds_request": three_ds_req or None, "three_ds": None,
            "store_for_future_use": body["source"].get("store_for_future_use", True),
            "requested_on": now, "processed_on": None, "expires_on": None, "approved": None,
            "response_code": None, "response_summary": None, "auth_code": None, "scheme_id": None,
            "eci": None, "processing": None, "action_id": None, "actions": [], "session_id": None,
            "card": card.__dict__.copy(), "card_fingerprint": card.fingerprint, "instrument_id": None,
            "authorized": 0, "captured": 0, "refunded": 0, "voided": 0, "capture_final": False,
            "forced_decline": fx.take_decline(), "series_origin_id": None, "base": base,
            "retry": self.retry_plan(body),
        }
        if body.get("billing_descriptor"):   # a key only where given: most payments have none
            payment["billing_descriptor"] = body["billing_descriptor"]
        verification = amount == 0
        profile = CardProfile(**card.profile)

        if payment["merchant_initiated"]:
            origin = self.series_origin(tenant, payment, card)
            payment["series_origin_id"] = origin["id"] if origin else None
            code = self.decide(payment, card, after_3ds=False, origin=origin, require_3ds=fx.require_3ds)
            self.finish_authorization(payment, card, code, now)
        elif three_ds_req.get("enabled") and three_ds_req.get("cryptogram"):
            # the merchant's own MPI authenticated the cardholder: authorize at once, no challenge
            payment["three_ds"] = {"downgraded": False, "enrolled": "Y",
                                   "authentication_response": three_ds_req.get("status", "Y"),
                                   **{k: three_ds_req[k] for k in ("cryptogram", "xid", "version", "authentication_id")
                                      if k in three_ds_req}}
            payment["eci"] = three_ds_req["eci"]
            authenticated = payment["three_ds"]["authentication_response"] in ("Y", "A")
            code = self.decide(payment, card, after_3ds=True) if authenticated else testcards.FAILED_3DS
            self.finish_authorization(payment, card, code, now)
        elif three_ds_req.get("enabled"):
            if not profile.enrolled:
                if three_ds_req.get("attempt_n3d"):
                    payment["three_ds"] = {"downgraded": True, "enrolled": "N"}
                    self.finish_authorization(payment, card, self.decide(payment, card), now)
                else:
                    payment["three_ds"] = {"downgraded": False, "enrolled": "N"}
                    self.finish_authorization(payment, card, testcards.NOT_ENROLLED, now)
            else:
                self.require_authentication(payment, now, upgrade_reason=None)
        else:
            code = self.decide(payment, card, require_3ds=fx.require_3ds)
            if code == testcards.SOFT_DECLINE_3DS and three_ds_req.get("allow_upgrade", True):
                self.require_authentication(payment, now, upgrade_reason="sca_retry")
            else:
                self.finish_authorization(payment, card, code, now)
        if verification and payment["status"] == "Authorized":  # pragma: no cover - guarded by decide
            raise AssertionError("zero amount cannot authorize")
        return payment

    def decide(self, payment: dict, card: Card, *, after_3ds: bool = False, origin: dict | None = None,
               require_3ds: bool = False) -> str:
        """The response code this authorization gets, in order of precedence."""
        profile = CardProfile(**card.profile)
        if payment.get("forced_decline"):
            return payment.pop("forced_decline")
        now = self.p.now(payment["tenant"])
        instrument_state = None
        if card.instrument_id:
            inst = self.store.get("instrument", card.instrument_id)
            instrument_state = inst.get("state") if inst else None
        if instrument_state == "expired" or cards.expired(card.expiry_month, card.expiry_year, now):
            return testcards.EXPIRED_CARD
        if payment["merchant_initiated"]:
            # MITs are out of SCA scope and never upgraded: a 20154 is a plain decline
            if require_3ds:
                return testcards.SOFT_DECLINE_3DS
            cit_3ds = (origin or {}).get("three_ds_request") or {}
            if cit_3ds.get("enabled") and cit_3ds.get("challenge_indicator") != "challenge_requested_mandate":
                return testcards.SOFT_DECLINE_3DS
        elif require_3ds and not after_3ds:
            return testcards.SOFT_DECLINE_3DS
        if self.p.settings.get("amount_triggers") and payment["amount"]:
            trigger = testcards.amount_trigger(payment["amount"])
            if trigger and not (after_3ds and trigger == testcards.SOFT_DECLINE_3DS):
                return trigger
        code = profile.response_code
        if profile.verification_only and payment["amount"] == 0:
            return testcards.APPROVED
        if after_3ds and code == testcards.SOFT_DECLINE_3DS:
            return testcards.APPROVED
        return code

    def finish_authorization(self, payment: dict, card: Card, code: str, now) -> None:
        tenant = payment["tenant"]
        approved = code.startswith("10")
        verification = payment["amount"] == 0
        action = {
            "id": self.ids.prefixed("act_"),
            "type": "Card Verification" if verification else "Authorization",
            "processed_on": iso_z(now, 7), "amount": payment["amount"], "approved": approved,
            "auth_code": self.ids.digits(6) if approved else "000000",
            "response_code": code, "response_summary": testcards.summary(code),
            "reference": payment.get("reference"),
            "processing": {"retrieval_reference_number": self.ids.digits(12),
                           "acquirer_transaction_id": self.ids.digits(21)},
            "metadata": payment.get("metadata") or {},
        }
        payment["actions"].append(action)
        payment.update({"action_id": action["id"], "approved": approved, "response_code": code,
                        "response_summary": action["response_summary"], "auth_code": action["auth_code"],
                        "processed_on": now, "processing": dict(action["processing"])})
        if not approved:
            if self.schedule_retry(payment, code, now):
                self.emit(payment, "payment_retry_scheduled", action)
                return
            self.move(payment, "declined")
            self.emit(payment, "card_verification_declined" if verification else "payment_declined", action)
            return
        payment["scheme_id"] = self.ids.digits(15)
        if payment["three_ds"] and payment["three_ds"].get("authentication_response") == "Y" and not payment["eci"]:
            payment["eci"] = "05"
        should_store = (payment["payment_type"] in ("Recurring", "Installment")
                        or payment["store_for_future_use"] or card.instrument_id)
        if should_store:
            customer = self.store.get("customer", payment["customer_id"], tenant) if payment["customer_id"] else None
            instrument = self.store_instrument(tenant, card, payment, customer)
            if instrument is not None:   # None: its src_ was deleted while the cardholder did 3DS
                payment["instrument_id"] = instrument["id"]
                # paying with another customer's src_ does not move it: PATCH /instruments or
                # PATCH /customers does, when the merchant means it
                if instrument.get("customer_id") in (None, payment["customer_id"]):
                    self.attach_instrument(tenant, customer, instrument)
        if verification:
            self.move(payment, "verification_approved")
            self.emit(payment, "card_verified", action)
            return
        payment["authorized"] = payment["amount"]
        payment["expires_on"] = now + AUTH_VALIDITY
        self.move(payment, "authorization_approved")
        self.emit(payment, "payment_approved", action)
        if not self.captured_at_once(payment):
            # a timer that the capture a moment later would cancel costs a state-file row and its
            # deletion in the same commit
            self.schedule(payment["expires_on"], tenant, "expire", payment_id=payment["id"],
                          key=f"checkout:expire:{payment['id']}")
        if payment["capture_on"]:
            when = max(parse_instant(payment["capture_on"]), now)
            self.schedule(when, tenant, "capture", payment_id=payment["id"],
                          key=f"checkout:capture:{payment['id']}")

    # -- scheduled retries ----------------------------------------------------------------------
    @staticmethod
    def retry_plan(body: dict) -> dict | None:
        if not body.get("merchant_initiated") or body.get("payment_type") not in RETRY_TYPES or not body.get("amount"):
            return None
        retry = body.get("retry") or {}
        dunning = retry.get("dunning") or (retry if retry.get("enabled") else {})
        if dunning.get("enabled"):
            kind, limits = "dunning", {"max_attempts": dunning.get("max_attempts", 6),
                                       "end_after_days": dunning.get("end_after_days", 30)}
        elif (retry.get("downtime") or {}).get("enabled"):
            kind, limits = "downtime", DOWNTIME_RETRY
        else:
            return None
        return {"kind": kind, **limits, "attempts_made": 0, "started_on": None, "next_attempt_on": None}

    def schedule_retry(self, payment: dict, code: str, now) -> bool:
        """After a declined attempt: plan the next one if the request asked for retries and any are left."""
        plan = payment.get("retry")
        if not plan or code not in RETRY_CODES[plan["kind"]] or plan["attempts_made"] >= plan["max_attempts"]:
            return False
        if plan["started_on"] is None:
            plan["started_on"] = iso_z(now, 7)
        started = parse_instant(plan["started_on"])
        step = timedelta(days=plan["end_after_days"]) / plan["max_attempts"]
        when = started + step * (plan["attempts_made"] + 1)
        plan["next_attempt_on"] = iso_z(when, 7)
        self.move(payment, "retry_scheduled")
        self.schedule(when, payment["tenant"], "retry", payment_id=payment["id"],
                      key=f"checkout:retry:{payment['id']}")
        return True

    def retry(self, tenant: str, payment_id: str) -> None:
        """One scheduled attempt. Scenario rules see it as ``POST <mount>/payments/<id>/retries``."""
        with self.store.lock:
            payment = self.store.get("payment", payment_id)
            if payment is None or payment["status"] != "Retry Scheduled":
                return
            tenant = payment["tenant"]
            plan = payment["retry"]
            plan["attempts_made"] += 1
            fx = self.retry_effects(payment)
            token = effects.install(fx)
            try:
                card = Card(**payment["card"])
                if card.instrument_id:
                    self.spoil(self.store.get("instrument", card.instrument_id, tenant), fx, tenant)
                payment["forced_decline"] = fx.take_decline()
                origin = self.store.get("payment", payment["series_origin_id"], tenant) \
                    if payment.get("series_origin_id") else None
                code = self.decide(payment, card, origin=origin, require_3ds=fx.require_3ds)
                self.finish_authorization(payment, card, code, self.p.now(tenant))
                self.save_authorized(payment)
            finally:
                effects.uninstall(token)

    def retry_effects(self, payment: dict) -> effects.Effects:
        engine = self.sb.scenarios
        if engine is None:
            return effects.Effects()
        body = {"payment_id": payment["id"], "attempt": payment["retry"]["attempts_made"],
                "amount": payment["amount"], "currency": payment["currency"],
                "payment_type": payment["payment_type"], "merchant_initiated": True,
                "reference": payment.get("reference"), "previous_payment_id": payment.get("previous_payment_id")}
        decision = engine.match(self.p, payment["tenant"],
                                _RetryRequest(f"{self.p.mount}/payments/{payment['id']}/retries", body))
        return decision.effects if decision else effects.Effects()

    def cancel_retry(self, payment: dict, reference) -> dict:
        self.move(payment, "cancel")
        payment["retry"]["next_attempt_on"] = None
        self.sb.timers.cancel(f"checkout:retry:{payment['id']}")
        action = {"id": self.ids.prefixed("act_"), "reference": reference}
        self.save(payment)
        self.emit(payment, "payment_canceled", None)
        return action

    @staticmethod
    def captured_at_once(payment: dict) -> bool:
        return payment["capture"] and not payment["capture_on"]

    def save_authorized(self, payment: dict) -> None:
        """Save a payment that has just authorized (or declined). ``capture: true`` (the default)
        captures it right after the 201, at the same instant; the authorization in between
        reaches the status history only (``pass_through``), so the payment is saved once, not
        twice. Every path that authorizes ends here."""
        if payment["status"] == "Authorized" and self.captured_at_once(payment):
            self.store.pass_through("payment", payment["id"], payment, payment["tenant"])
            self.capture(payment, None, None, None, None)   # saves it
        else:
            self.save(payment)

    def scheduled_capture(self, tenant: str, payment_id: str) -> None:
        with self.store.lock:
            payment = self.store.get("payment", payment_id)
            if payment and payment["status"] == "Authorized":
                self.capture(payment, None, None, None, None)

    def expire(self, tenant: str, payment_id: str) -> None:
        """``expires_on`` has passed. An authorization nothing was captured from is Expired; after
        NonFinal captures the status stays and the uncaptured rest is released, as a final
        capture releases it, without ``payment_expired``: the payment itself has not expired."""
        with self.store.lock:
            payment = self.store.get("payment", payment_id)
            if payment is None or not self.allowed(payment, "expire") or self.available_to_capture(payment) == 0:
                return
            uncaptured = payment["status"] == "Authorized"
            self.move(payment, "expire")
            if uncaptured:
                self.save(payment)
                self.emit(payment, "payment_expired", None)
            else:
                payment["capture_final"] = True
                self.save(payment)

    # -- 3DS -----------------------------------------------------------------------------------
    def require_authentication(self, payment: dict, now, upgrade_reason: str | None) -> None:
        payment["session_id"] = self.ids.prefixed("sid_")
        payment["three_ds"] = {"downgraded": False, "enrolled": "Y"}
        if upgrade_reason:
            payment["three_ds"]["upgrade_reason"] = upgrade_reason
        self.move(payment, "action_required")
        self.store.put("session", payment["session_id"], {"id": payment["session_id"], "payment_id": payment["id"]},
                       payment["tenant"])
        self.emit(payment, "payment_pending", None)
        self.schedule(now + THREE_DS_TIMEOUT, payment["tenant"], "3ds", payment_id=payment["id"],
                      key=f"checkout:3ds:{payment['id']}")

    def authentication_timeout(self, tenant: str, payment_id: str) -> None:
        with self.store.lock:
            payment = self.store.get("payment", payment_id)
            if payment and payment["status"] == "Pending":
                self.fail_authentication(payment, testcards.TIMED_OUT_3DS)
                self.save(payment)

    def fail_authentication(self, payment: dict, code: str) -> None:
        payment.update({"approved": False, "response_code": code, "response_summary": testcards.summary(code),
                        "processed_on": self.p.now(payment["tenant"])})
        payment["three_ds"].update({"authentication_response": "N", "challenged": True})
        self.move(payment, "declined")
        self.emit(payment, "payment_authentication_failed", None)

    def complete_authentication(self, payment: dict, passed: bool) -> None:
        """The cardholder finished (or abandoned) the challenge page."""
        with self.store.lock:
            self._complete_authentication(payment, passed)

    def _complete_authentication(self, payment: dict, passed: bool) -> None:
        if payment["status"] != "Pending":
            raise Refusal("forbidden")
        self.sb.timers.cancel(f"checkout:3ds:{payment['id']}")
        card = Card(**payment["card"])
        profile = CardProfile(**card.profile)
        outcome = profile.three_ds_outcome if passed else "N"
        if outcome not in ("Y", "A"):
            self.fail_authentication(payment, testcards.FAILED_3DS)
            self.save(payment)
            return
        payment["three_ds"].update({"authentication_response": outcome, "challenged": profile.three_ds_flow == "challenge",
                                    "signature_valid": "Y", "version": "2.2.0"})
        now = self.p.now(payment["tenant"])
        self.finish_authorization(payment, card, self.decide(payment, card, after_3ds=True), now)
        self.save_authorized(payment)

    # -- follow-up actions ---------------------------------------------------------------------
    def follow_up(self, tenant: str, payment_id: str, run) -> tuple[dict, dict]:
        """``run(payment)`` (a capture, refund, void or cancellation) on one payment, under the lock."""
        with self.store.lock:
            payment = self.find_payment(tenant, payment_id)
            return payment, run(payment)

    def available_to_capture(self, payment: dict) -> int:
        if payment["status"] not in ("Authorized", "Partially Captured", "Partially Refunded") or payment["capture_final"]:
            return 0
        return payment["authorized"] - payment["captured"]

    def available_to_void(self, payment: dict) -> int:
        return payment["authorized"] if payment["status"] == "Authorized" else 0

    def available_to_refund(self, payment: dict) -> int:
        return payment["captured"] - payment["refunded"]

    def _record(self, payment: dict, kind: str, event: str, amount: int, reference, metadata) -> dict:
        """Append the follow-up action, persist, and tell the merchant."""
        action = self._action(payment, kind, amount, reference, metadata)
        self.save(payment)
        self.emit(payment, event, action)
        return action

    def _action(self, payment: dict, kind: str, amount: int, reference, metadata) -> dict:
        now = self.p.now(payment["tenant"])
        action = {"id": self.ids.prefixed("act_"), "type": kind, "processed_on": iso_z(now, 7), "amount": amount,
                  "approved": True, "response_code": "10000", "response_summary": "Approved",
                  "reference": reference, "processing": {"acquirer_reference_number": self.ids.digits(23)},
                  "metadata": metadata or {}}
        payment["actions"].append(action)
        return action

    def capture(self, payment: dict, amount, capture_type, reference, metadata) -> dict:
        available = self.available_to_capture(payment)
        if available <= 0:
            raise Refusal("forbidden")
        amount = available if amount is None else amount
        if amount > available:
            raise Refusal("validation", "capture_value_greater_than_remaining_authorized")
        final = capture_type != "NonFinal"
        rest = available - amount
        self.move(payment, "capture_full" if rest == 0 else "capture_partial")
        payment["captured"] += amount
        if final:
            payment["capture_final"] = True
        if final or rest == 0:   # a NonFinal capture leaves the rest to expire at expires_on
            self.sb.timers.cancel(f"checkout:expire:{payment['id']}")
        return self._record(payment, "Capture", "payment_captured", amount, reference, metadata)

    def refund(self, payment: dict, amount, reference, metadata) -> dict:
        available = self.available_to_refund(payment)
        if available <= 0 or not (self.allowed(payment, "refund_partial") or self.allowed(payment, "refund_full")):
            raise Refusal("forbidden")
        amount = available if amount is None else amount
        if amount > available:
            raise Refusal("validation", "amount_exceeds_balance")
        fully = amount == available and self.available_to_capture(payment) == 0
        self.move(payment, "refund_full" if fully else "refund_partial")
        payment["refunded"] += amount
        return self._record(payment, "Refund", "payment_refunded", amount, reference, metadata)

    def void(self, payment: dict, reference, metadata) -> dict:
        amount = self.available_to_void(payment)
        if amount <= 0:
            raise Refusal("forbidden")
        self.move(payment, "void")
        payment["voided"] = amount
        self.sb.timers.cancel(f"checkout:expire:{payment['id']}")
        return self._record(payment, "Void", "payment_voided", amount, reference, metadata)

    # -- the vault: tokens, customers, instruments ---------------------------------------------
    def create_token(self, public_key: str, body: dict) -> dict:
        now = self.p.now(public_key)
        if cards.expired(body["expiry_month"], body["expiry_year"], now):
            raise Refusal("validation", "card_expired")
        card = Card.from_number(body["number"], body["expiry_month"], body["expiry_year"], name=body.get("name"),
                                cvv=body.get("cvv"), billing_address=body.get("billing_address"), phone=body.get("phone"))
        token = {"id": self.ids.prefixed("tok_"), **card.__dict__, "used": False, "expires_on": now + TOKEN_VALIDITY}
        return self.store.put("token", token["id"], token, public_key)

    def _default_instrument(self, tenant: str, body: dict) -> dict | None:
        if not body.get("default"):
            return None
        instrument = self.store.get("instrument", body["default"], tenant)
        if instrument is None:
            raise Refusal("validation", "instrument_not_found")
        return instrument

    def add_customer(self, tenant: str, body: dict) -> dict:
        with self.store.lock:
            instrument = self._default_instrument(tenant, body)
            customer = self.create_customer(tenant, body)
            if instrument is not None:
                self.attach_instrument(tenant, customer, instrument)
            return customer

    def customer(self, tenant: str, id_or_email: str) -> dict:
        customer = self.store.get("customer", id_or_email, tenant)
        if customer is None and "@" in id_or_email:
            customer = self.customer_by_email(tenant, id_or_email)
        if customer is None:
            raise Refusal("not_found")
        return customer

    def update_customer(self, tenant: str, customer_id: str, body: dict) -> None:
        with self.store.lock:
            customer = self.find("customer", customer_id, tenant)
            instrument = self._default_instrument(tenant, body)
            if instrument is not None:
                self.attach_instrument(tenant, customer, instrument)
            for key in ("email", "name", "phone", "metadata"):
                if key in body:
                    customer[key] = body[key]
            self.store.put("customer", customer_id, customer, tenant)

    def delete_customer(self, tenant: str, customer_id: str) -> None:
        """Checkout.com deletes a customer "and all of their linked payment instruments": a
        renewal by one of its ``src_`` is then refused as a card that was never stored."""
        with self.store.lock:
            customer = self.find("customer", customer_id, tenant)
            for instrument_id in customer["instruments"]:
                self.store.delete("instrument", instrument_id)
            self.store.delete("customer", customer_id)

    def delete_instrument(self, tenant: str, instrument_id: str) -> None:
        """The card leaves its customer first, so no ``default`` points at a card that is gone."""
        with self.store.lock:
            inst = self.find("instrument", instrument_id, tenant)
            self.detach_instrument(tenant, inst)
            self.store.delete("instrument", instrument_id)

    def create_instrument(self, tenant: str, body: dict, fx: effects.Effects) -> dict:
        with self.store.lock:
            now = self.p.now(tenant)
            if body["type"] == "token":
                source = {"type": "token", "token": body["token"]}
                card = self.resolve_source(tenant, source, now, fx)
            else:
                source = {"type": "card"}   # raw card details: no token to spend
                if cards.expired(body["expiry_month"], body["expiry_year"], now):
                    raise Refusal("validation", "card_expired")
                card = Card.from_number(body["number"], body["expiry_month"], body["expiry_year"], name=body.get("name"))
            owner = body.get("customer") or {}
            customer = self.customer_for_payment(tenant, owner) if (owner.get("id") or owner.get("email")) else None
            self.spend_token(source)   # the last refusal is behind us
            instrument = self.store_instrument(tenant, card, {"id": None, "merchant_initiated": True}, customer)
            if body.get("account_holder"):
                instrument["account_holder"] = body["account_holder"]
            self.attach_instrument(tenant, customer, instrument, make_default=bool(owner.get("default")))
            return self.store.put("instrument", instrument["id"], instrument, tenant)

    def update_instrument(self, tenant: str, instrument_id: str, body: dict) -> dict:
        with self.store.lock:
            inst = self.find("instrument", instrument_id, tenant)
            owner = body.get("customer")
            customer = self.instrument_owner(tenant, inst, owner) if owner is not None else None   # refusals first
            for key in ("expiry_month", "expiry_year", "name", "account_holder"):
                if key in body:
                    inst[key] = body[key]
            if ("expiry_month" in body or "expiry_year" in body) and INSTRUMENT.allows(inst, "renew"):
                INSTRUMENT.move(inst, "renew")   # the card was renewed: a new expiry makes it usable again
            if customer is not None:
                self.attach_instrument(tenant, customer, inst, make_default=bool(owner.get("default")))
            return self.store.put("instrument", instrument_id, inst, tenant)

    def instrument_owner(self, tenant: str, instrument: dict, owner: dict) -> dict:
        """The customer a PATCH /instruments names, by id or e-mail, or the instrument's own when
        it names neither (``{"default": true}``). It must exist: an update creates no customer."""
        if owner.get("id"):
            customer = self.store.get("customer", owner["id"], tenant)
        elif owner.get("email"):
            customer = self.customer_by_email(tenant, owner["email"])
        elif instrument.get("customer_id"):
            customer = self.store.get("customer", instrument["customer_id"], tenant)
        else:
            raise Refusal("validation", "customer_id_required")
        if customer is None:
            raise Refusal("validation", "customer_not_found")
        return customer

    def revoke_instrument(self, tenant: str, instrument_id: str) -> None:
        with self.store.lock:
            inst = self.find("instrument", instrument_id, tenant)
            INSTRUMENT.move(inst, "revoke")
            self.store.put("instrument", instrument_id, inst, tenant)
