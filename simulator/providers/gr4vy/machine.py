"""Gr4vy's business rules: the card simulator, buyers, vaulted payment methods and transactions.

Objects are kept in their wire shape; keys starting with ``_`` are the sandbox's own bookkeeping
(``views.visible`` drops them). Every status change goes through a transition table.

Each change is told (``emit``) while the store lock is still held: the event's payload is encoded
there, so it shows the object as that change left it, and events are queued in the order of the
changes, whatever request gets the lock next.
"""
from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import Callable

from ...core import cards
from ...core.memo import Memo
from ..shape import Machine as BaseMachine, Refusal, Transitions
from . import testcards, views

_CANNOT = {"capture": "be captured", "void": "be voided"}

# An authorization is decided alike whether or not the buyer had to approve it first.
_DECIDE = {"authorize": "authorization_succeeded", "authorize_and_capture": "capture_succeeded",
           "authorize_and_capture_async": "capture_pending", "decline": "authorization_declined",
           "fail": "authorization_failed"}
TRANSACTION = Transitions("transaction", "processing", {
    ("processing", "require_approval"): "buyer_approval_pending",
    **{(state, event): target
       for state in ("processing", "buyer_approval_pending") for event, target in _DECIDE.items()},
    # merchant actions: capture and void only ever start from an authorised transaction
    ("authorization_succeeded", "capture"): "capture_succeeded",
    ("authorization_succeeded", "void"): "authorization_voided",
    ("capture_pending", "capture_settled"): "capture_succeeded",
    ("authorization_void_pending", "void_settled"): "authorization_voided",
}, message=lambda tx, event: f"Transaction in status {tx['status']} cannot {_CANNOT.get(event, event.split('_')[0])}")

# Refunds do not change a transaction's status (Gr4vy has no refunded status).
REFUNDABLE = {"capture_succeeded"}

# A vaulted card that a scenario's ``token`` effect killed stays failed for good.
PAYMENT_METHOD = Transitions("payment-method", "succeeded", {("succeeded", "invalidate"): "failed"})

EVENT_NAMES = {
    "buyer_approval_pending": "transaction.authentication-pending",
    "authorization_succeeded": "transaction.authorized",
    "capture_succeeded": "transaction.captured",
    "capture_pending": "transaction.capture-pending",
    "authorization_declined": "transaction.declined",
    "authorization_failed": "transaction.failed",
    "authorization_voided": "transaction.voided",
    "authorization_void_pending": "transaction.void-pending",
}

_SCHEMES = {"Visa": "visa", "Mastercard": "mastercard", "American Express": "amex", "Discover": "discover",
            "JCB": "jcb", "Diners Club": "diners-club", "Maestro": "maestro"}
# The card simulator settles an asynchronous capture a minute later on the virtual clock.
ASYNC_CAPTURE_DELAY = timedelta(minutes=1)
# payment sources of a series after its first payment: only they may say is_subsequent_payment
SUBSEQUENT_SOURCES = ("recurring", "installment", "card_on_file")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def iso(when: datetime) -> str:
    return when.isoformat()


def reconciliation_id(uuid_text: str) -> str:
    """A short base62 form of the id, as Gr4vy sends to processors."""
    n = int(uuid_text.replace("-", ""), 16)
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _BASE62[r] + out
    return out or "0"


def _copied(*path: str):
    """An index's value: the string at ``path`` in the transaction's copy of its buyer or card."""
    def value(tx: dict) -> str | None:
        for name in path:
            tx = tx.get(name) if isinstance(tx, dict) else None
        return tx if isinstance(tx, str) else None
    return value


# The transaction list's filters on what few values occur (currencies, sources, flags, amounts):
# one indexed string per transaction holds them all, the same string object for every
# transaction holding the same ones, so the index costs one entry per transaction and a filter
# tests each distinct string once. Their order in that string, the flags last, a digit each:
FACETS = ("currency", "country", "payment_source", "method", "error_code", "payment_method_scheme",
          "payment_method_country", "payment_service_id", "amount", "flags")
_SEP, _NONE = "\x1f", "\x00"
_facet_texts = Memo(4096)   # the values of a transaction's facets -> their string


# each boolean list filter's value for a transaction
_FLAG_OF = {
    "merchant_initiated": lambda tx: bool(tx.get("merchant_initiated")),
    "is_subsequent_payment": lambda tx: bool(tx.get("is_subsequent_payment")),
    # Gr4vy: "at least one completed refund"; a failed one refunds nothing
    "has_refunds": lambda tx: tx["refunded_amount"] > 0,
    "pending_review": lambda tx: bool(tx.get("pending_review")),
    "disputed": lambda tx: bool(tx.get("disputed")),
    "has_gift_card_redemptions": lambda tx: bool(tx.get("gift_card_redemptions")),
    # a settlement record makes the transaction (partly) settled
    "has_settlements": lambda tx: bool(tx.get("settled")),
    "used_3ds": lambda tx: bool(tx.get("_used_3ds")),
}
FLAGS = tuple(_FLAG_OF)


def flag(tx: dict, name: str) -> bool:
    """A transaction's value for a boolean list filter."""
    return _FLAG_OF[name](tx)


def facets(tx: dict) -> str:
    pm = tx.get("payment_method") or {}
    service = tx.get("payment_service")
    values = (tx.get("currency"), tx.get("country"), tx.get("payment_source"), tx.get("method"),
              tx.get("error_code"), pm.get("scheme"), pm.get("country"), service.get("id") if service else None,
              tx.get("amount"), *[value(tx) for value in _FLAG_OF.values()])
    text = _facet_texts.get(values)
    if text is None:
        head, flags = values[:len(FACETS) - 1], values[len(FACETS) - 1:]
        text = _facet_texts.keep(values, sys.intern(_SEP.join(
            [*(_NONE if v is None else str(v) for v in head), "".join("1" if on else "0" for on in flags)])))
    return text


def facets_test(one_of: dict[str, list[str]], amount: tuple[int | None, int | None],
                flags: dict[str, bool | None]) -> Callable[[str], bool] | None:
    """What the ``facets`` index is asked for a query: each named facet one of its values, the
    amount within its bounds, each named flag as asked; None when the query names none of them."""
    named = [(FACETS.index(name), set(values)) for name, values in one_of.items() if values]
    low, high = amount
    asked = [(FLAGS.index(name), "1" if value else "0") for name, value in flags.items() if value is not None]
    if not named and low is None and high is None and not asked:
        return None
    amount_at, flags_at = FACETS.index("amount"), FACETS.index("flags")

    def test(value: str) -> bool:
        parts = value.split(_SEP)
        if any(parts[at] not in wanted for at, wanted in named):
            return False
        if low is not None or high is not None:
            held = int(parts[amount_at])
            if (low is not None and held < low) or (high is not None and held > high):
                return False
        held = parts[flags_at]
        return all(held[at] == digit for at, digit in asked)
    return test


def metadata_pairs(tx: dict) -> frozenset | None:
    metadata = tx.get("metadata")
    return frozenset(metadata.items()) if metadata else None


def buyer_data(buyer: dict | None) -> frozenset:
    """What ``buyer_search`` looks in: the transaction's buyer's names, identifiers, contact details
    and address, each a whole value."""
    if not buyer:
        return frozenset()
    billing = buyer.get("billing_details") or {}
    values = [buyer.get("display_name"), buyer.get("external_identifier"), buyer.get("account_number"),
              billing.get("first_name"), billing.get("last_name"), billing.get("email_address"),
              billing.get("phone_number"), (billing.get("tax_id") or {}).get("value"),
              *(billing.get("address") or {}).values()]
    return frozenset(v for v in values if isinstance(v, str))


# what the buyer list's ``search`` (a partial match) looks in, lower case, one string per buyer:
# a search tests each buyer's string once, from the index, and reads only the buyers it finds
BUYER_SEARCHED = ("id", "display_name", "external_identifier")


def searched_text(buyer: dict) -> str:
    return "\x00".join(str(buyer.get(name) or "").lower() for name in BUYER_SEARCHED)


class Machine(BaseMachine):
    """Gr4vy's business rules: the card simulator (amount codes, 3-D Secure approval, dead tokens,
    the recurring guide's MIT checks), buyers, vaulted payment methods, transactions with their
    captures, voids and refunds, and the webhooks each of them sends. Raises ``Refusal`` only."""

    tables = (TRANSACTION, PAYMENT_METHOD)
    # every filter of the transaction list but the free-text ``search`` (which finds by the
    # indexed identifiers), and those of the payment-method list: see routes.list_transactions
    indexes = {"transaction": {
        "_buyer_id": None, "external_identifier": None, "_pm_id": None, "reconciliation_id": None, "status": None,
        "payment_service_transaction_id": None, "_ip_address": None, "created_at": None, "updated_at": None,
        "buyer_external_identifier": _copied("buyer", "external_identifier"),
        "buyer_email_address": _copied("buyer", "billing_details", "email_address"),
        "payment_method_fingerprint": _copied("payment_method", "fingerprint"),
        "payment_method_label": _copied("payment_method", "label"),
        "payment_method_bin": _copied("payment_method", "details", "bin"),
        "facets": facets, "metadata": metadata_pairs,
        "buyer_data": lambda tx: buyer_data(tx.get("buyer")) or None},
        "payment-method": ("_buyer_id", "external_identifier", "status"),
        "buyer": {"external_identifier": None, "searched_text": searched_text}}
    # Gr4vy lists transactions and buyers most recently updated first, payment methods newest first
    orders = {"transaction": "updated_at", "buyer": "updated_at", "payment-method": "created_at"}
    timer_handlers = {"capture": "settle_async_capture"}

    # -- helpers -------------------------------------------------------------------------------
    def now(self, tenant):
        return self.sb.clock.now(tenant)

    def new_id(self) -> str:
        return self.sb.ids.uuid4()

    def emit(self, tenant: str, name: str, target: dict) -> None:
        url = self.p.settings.get("webhook_url")
        if not url:
            return
        event_id = self.new_id()
        payload = views.event(event_id, name, self.now(tenant), self.p.merchant_account_id(tenant),
                              self.p.gr4vy_id, target)
        self.p.emit(tenant, name, payload, url, subject=target.get("id"), event_id=event_id)

    def still_stored(self, tenant: str, kind: str, obj: dict) -> None:
        """Callers hold the lock. Routes read ``obj`` before taking it, so a request that deleted it
        meanwhile makes this one the provider's 404, rather than a second delete (and a second
        event) or an update whose ``put`` stores the deleted object again."""
        if self.store.get(kind, obj["id"], tenant=tenant) is None:
            raise Refusal("not_found")

    def card_summary(self, number: str, expiration_date: str, tenant: str) -> dict:
        name = cards.scheme(number)
        return {"bin": number[:6], "last4": number[-4:], "scheme": _SCHEMES.get(name, name.lower()),
                "expiration_date": expiration_date, "fingerprint": cards.fingerprint(number, tenant)[:40].lower()}

    @staticmethod
    def card_expired(expiration_date: str, now: datetime) -> bool:
        month, year = expiration_date.split("/")
        return cards.expired(int(month), int(year), now)

    # -- buyers --------------------------------------------------------------------------------
    def find_buyer(self, tenant: str, buyer_id=None, external_identifier=None) -> dict | None:
        if buyer_id:
            return self.store.get("buyer", buyer_id, tenant=tenant)
        if external_identifier:
            return next(iter(self.store.where("buyer", tenant, "external_identifier", external_identifier, limit=1)),
                        None)
        return None

    def named_buyer(self, tenant: str, data: dict) -> dict | None:
        """The buyer a request names by ``buyer_id`` or ``buyer_external_identifier``, if any;
        a name that finds no buyer is a validation error."""
        if not (data.get("buyer_id") or data.get("buyer_external_identifier")):
            return None
        buyer = self.find_buyer(tenant, data.get("buyer_id"), data.get("buyer_external_identifier"))
        if buyer is None:
            field = "buyer_id" if data.get("buyer_id") else "buyer_external_identifier"
            raise Refusal("validation", [(f"/{field}", "Buyer not found")])
        return buyer

    def create_buyer(self, tenant: str, data: dict) -> dict:
        now = iso(self.now(tenant))
        with self.store.lock:
            ext = data.get("external_identifier")
            if ext:
                clash = self.find_buyer(tenant, external_identifier=ext)
                if clash is not None:
                    raise Refusal("conflict", "A buyer with this external_identifier already exists",
                                  resource_id=clash["id"])
            bid = self.new_id()
            buyer = {"type": "buyer", "id": bid, "reconciliation_id": reconciliation_id(bid),
                     "merchant_account_id": self.p.merchant_account_id(tenant),
                     "display_name": data.get("display_name"), "external_identifier": ext,
                     "billing_details": data.get("billing_details"), "account_number": data.get("account_number"),
                     "created_at": now, "updated_at": now}
            self.store.put("buyer", bid, buyer, tenant)
            self.emit(tenant, "buyer.created", buyer)
        return buyer

    def update_buyer(self, tenant: str, buyer: dict, data: dict) -> dict:
        with self.store.lock:
            self.still_stored(tenant, "buyer", buyer)
            ext = data.get("external_identifier")
            if ext and ext != buyer.get("external_identifier"):
                clash = self.find_buyer(tenant, external_identifier=ext)
                if clash is not None:
                    raise Refusal("conflict", "A buyer with this external_identifier already exists",
                                  resource_id=clash["id"])
            for key in ("display_name", "external_identifier", "billing_details", "account_number"):
                if key in data:
                    buyer[key] = data[key]
            buyer["updated_at"] = iso(self.now(tenant))
            self.store.put("buyer", buyer["id"], buyer, tenant)
            self.emit(tenant, "buyer.updated", buyer)
        return buyer

    def delete_buyer(self, tenant: str, buyer: dict) -> None:
        # A buyer's stored payment methods go with it: nothing may charge an orphaned card.
        with self.store.lock:
            self.still_stored(tenant, "buyer", buyer)
            for pm in self.store.where("payment-method", tenant, "_buyer_id", buyer["id"]):
                self.store.delete("payment-method", pm["id"])
            self.store.delete("buyer", buyer["id"])
            self.emit(tenant, "buyer.deleted", buyer)

    # -- payment methods -----------------------------------------------------------------------
    def vault_card(self, tenant: str, card: dict, buyer: dict | None, external_identifier=None) -> dict:
        now = iso(self.now(tenant))
        pid = self.new_id()
        pm = {"type": "payment-method", "id": pid, "merchant_account_id": self.p.merchant_account_id(tenant),
              "method": "card", "mode": "card", "scheme": card["scheme"], "label": card["last4"],
              "expiration_date": card["expiration_date"],
              "details": {"bin": card["bin"], "card_type": "credit", "card_issuer_name": None},
              "fingerprint": card["fingerprint"], "status": "succeeded", "approval_url": None,
              "country": None, "currency": None, "external_identifier": external_identifier,
              "cit_usage_count": 0, "usage_count": 0, "has_replacement": False,
              "scheme_transaction_id": None, "scheme_transaction_id_scheme": None,
              "last_used_at": None, "cit_last_used_at": None, "created_at": now, "updated_at": now,
              "_buyer_id": buyer["id"] if buyer else None, "_card": card, "_dead": None}
        self.store.put("payment-method", pid, pm, tenant)
        return pm

    def create_payment_method(self, tenant: str, data: dict) -> dict:
        buyer = self.named_buyer(tenant, data)
        number = data["number"]
        if not cards.luhn_ok(number):
            raise Refusal("validation", [("/number", "Invalid card number")])
        card = self.card_summary(number, data["expiration_date"], tenant)
        with self.store.lock:
            pm = self.vault_card(tenant, card, buyer, data.get("external_identifier"))
        return pm

    def buyer_of(self, tenant: str, pm: dict) -> dict | None:
        """The buyer a vaulted method belongs to, as it is now.

        A method keeps only its buyer's id and is rendered with the stored buyer, so a buyer update
        shows on its methods at once and agrees with the ``buyer_external_identifier`` filter."""
        return self.store.get("buyer", pm["_buyer_id"], tenant=tenant) if pm.get("_buyer_id") else None

    def delete_payment_method(self, tenant: str, pm: dict) -> None:
        with self.store.lock:
            self.still_stored(tenant, "payment-method", pm)
            # rendered before the delete so the event shows the buyer the method had
            target = views.payment_method(pm, self.buyer_of(tenant, pm))
            self.store.delete("payment-method", pm["id"])
            self.emit(tenant, "payment-method.deleted", target)

    def payment_service(self, tenant: str) -> dict:
        """The tenant's card simulator connection, with a UUID as the spec requires; callers hold the lock."""
        service = next(iter(self.store.list("payment-service", tenant)), None)
        if service is None:
            service = {"type": "payment-service", "id": self.new_id(), "payment_service_definition_id": "mock-card",
                       "method": "card", "display_name": "Card simulator"}
            self.store.put("payment-service", service["id"], service, tenant)
        return dict(service)

    # -- transactions --------------------------------------------------------------------------
    def create_transaction(self, tenant: str, data: dict, base_url: str, ip_address: str | None = None) -> dict:
        """``ip_address``: the buyer's, which the transaction list's ``ip_address`` filter matches."""
        fx = self.p.effects()
        now_dt = self.now(tenant)
        now = iso(now_dt)
        pmdata = data["payment_method"]
        with self.store.lock:
            buyer = self.named_buyer(tenant, data)
            stored = None
            if pmdata["method"] == "id":
                stored = self.store.get("payment-method", pmdata["id"], tenant=tenant)
                if stored is None:
                    raise Refusal("validation", [("/payment_method/id", "Payment method not found")])
                if buyer is not None and stored.get("_buyer_id") not in (None, buyer["id"]):
                    raise Refusal("validation", [("/payment_method/id", "Payment method belongs to another buyer")])
                if buyer is None and stored.get("_buyer_id"):
                    buyer = self.store.get("buyer", stored["_buyer_id"], tenant=tenant)
                card = stored["_card"]
                security_code = pmdata.get("security_code")
            else:
                if not cards.luhn_ok(pmdata["number"]):
                    raise Refusal("validation", [("/payment_method/number", "Invalid card number")])
                card = self.card_summary(pmdata["number"], pmdata["expiration_date"], tenant)
                security_code = pmdata.get("security_code")
            source = data.get("payment_source") or "ecommerce"
            mit = data["merchant_initiated"]
            # The guide: is_subsequent_payment is ignored outside recurring/installment/card_on_file.
            subsequent = data["is_subsequent_payment"] if source in SUBSEQUENT_SOURCES else False
            postal = None
            billing = (buyer or {}).get("billing_details") or (data.get("buyer") or {}).get("billing_details") or {}
            if billing:
                postal = (billing.get("address") or {}).get("postal_code")
            tid = self.new_id()
            tx = {
                "type": "transaction", "id": tid, "reconciliation_id": reconciliation_id(tid),
                "merchant_account_id": self.p.merchant_account_id(tenant),
                "currency": data["currency"], "amount": data["amount"], "country": data.get("country"),
                "status": "processing", "authorized_amount": 0, "captured_amount": 0, "refunded_amount": 0,
                "settled_amount": 0, "settled": False, "settled_currency": None, "intent": data["intent"],
                "intent_outcome": "pending", "gift_card_redemptions": [], "multi_tender": False,
                "account_funding_transaction": False, "disputed": False, "pending_review": False,
                "payment_source": source, "merchant_initiated": mit, "is_subsequent_payment": subsequent,
                "external_identifier": data.get("external_identifier"), "metadata": data.get("metadata"),
                "statement_descriptor": data.get("statement_descriptor"), "cart_items": data.get("cart_items"),
                "method": "card", "instrument_type": "pan" if stored is None else "card_token",
                "payment_method": self._tx_payment_method(card, stored),
                "buyer": self._tx_buyer(buyer, data.get("buyer")),
                "error_code": None, "raw_response_code": None, "raw_response_description": None,
                "auth_response_code": None, "avs_response_code": testcards.avs_response(postal),
                "cvv_response_code": testcards.cvv_response(security_code),
                "scheme_transaction_id": None, "payment_service_transaction_id": None,
                "payment_service": self.payment_service(tenant),
                "created_at": now, "updated_at": now, "authorized_at": None, "captured_at": None,
                "voided_at": None, "canceled_at": None, "approval_expires_at": None,
                "_buyer_id": buyer["id"] if buyer else None, "_pm_id": stored["id"] if stored else None,
                "_fingerprint": card["fingerprint"], "_card": card,
                "_store": bool(data["store"]) and stored is None, "_async_capture": data.get("async_capture", False),
                "_previous_scheme_transaction_id": data.get("previous_scheme_transaction_id"),
                "_refund_ids": [], "_ip_address": ip_address,
            }
            outcome = self._decide(tenant, tx, stored, card, security_code, data, fx, now_dt)
            if outcome == "approval":
                redirect_url = pmdata.get("redirect_url")
                if not redirect_url:
                    self._finish_failed(tx, "missing_redirect_url", "fail")
                else:
                    TRANSACTION.move(tx, "require_approval")
                    tx["_redirect_url"] = redirect_url
                    # the buyer is sent to the 3DS challenge: the list's ``used_3ds`` (attempted,
                    # whatever the outcome); without a redirect_url there was no challenge to attempt
                    tx["_used_3ds"] = True
                    tx["payment_method"]["approval_url"] = f"{base_url}/approval/{tid}"
                    tx["payment_method"]["approval_target"] = "any"
            elif outcome is None:
                self._finish_success(tenant, tx, stored)
            self.store.put("transaction", tid, tx, tenant)
            self.emit(tenant, EVENT_NAMES.get(tx["status"], "transaction.modified"), tx)
        return tx

    def _tx_payment_method(self, card: dict, stored: dict | None) -> dict:
        return {"type": "payment-method", "method": "card", "mode": "card", "id": stored["id"] if stored else None,
                "scheme": card["scheme"], "label": card["last4"], "expiration_date": card["expiration_date"],
                "details": {"bin": card["bin"], "card_type": "credit", "card_issuer_name": None},
                "fingerprint": card["fingerprint"], "approval_url": None, "approval_target": None,
                "country": None, "currency": None, "external_identifier": None}

    @staticmethod
    def _tx_buyer(buyer: dict | None, guest: dict | None) -> dict | None:
        # A copy, unlike a payment method's buyer: the transaction records whom it charged (a guest
        # has no record to read back), and it outlives a deleted buyer.
        if buyer is not None:
            return {k: buyer.get(k) for k in ("type", "id", "display_name", "external_identifier",
                                             "billing_details", "account_number")}
        if guest:
            return {"type": "buyer", "id": None, **{k: guest.get(k) for k in (
                "display_name", "external_identifier", "billing_details", "account_number")}}
        return None

    def _dead_token(self, tenant: str, stored: dict | None, fingerprint: str) -> str | None:
        if stored is not None and stored.get("_dead"):
            return stored["_dead"]
        dead = self.store.get("dead-card", fingerprint, tenant=tenant)
        return dead["kind"] if dead else None

    def _kill_token(self, tenant: str, stored: dict | None, fingerprint: str, kind: str) -> None:
        """A scenario's ``token`` effect: this card stops working, for good."""
        if stored is not None:
            stored["_dead"] = kind
            if PAYMENT_METHOD.allows(stored, "invalidate"):
                PAYMENT_METHOD.move(stored, "invalidate")
            stored["updated_at"] = iso(self.now(tenant))
            self.store.put("payment-method", stored["id"], stored, tenant)
        self.store.put("dead-card", fingerprint, {"kind": kind}, tenant)

    def _is_card(self, card: dict, number: str, tenant: str) -> bool:
        # by fingerprint: a stored method keeps no card number
        return card["fingerprint"] == self.card_summary(number, "01/99", tenant)["fingerprint"]

    def _decide(self, tenant, tx, stored, card, security_code, data, fx, now_dt) -> str | None:
        """Run the card simulator; returns None (approve), "approval" or a decided failure."""
        if self.card_expired(card["expiration_date"], now_dt):
            return self._finish_failed(tx, "expired_payment_method", raw=("54", "Expired card"))
        dead = self._dead_token(tenant, stored, card["fingerprint"])
        if fx.token in ("inactive", "expired"):
            self._kill_token(tenant, stored, card["fingerprint"], fx.token)
            dead = fx.token
        if dead:
            code, raw_code, raw_text = testcards.TOKEN_DEAD[dead]
            return self._finish_failed(tx, code, raw=(raw_code, raw_text))
        code = fx.take_decline()
        if code:
            return self._finish_failed(tx, code)
        # The guide only recommends previous_scheme_transaction_id on an MIT with a raw card ("could"
        # decline), so only the magic card declines without it; a stored method links itself.
        if (tx["merchant_initiated"] and stored is None and not data.get("previous_scheme_transaction_id")
                and self._is_card(card, testcards.MIT_LINK_REQUIRED_CARD, tenant)):
            code, raw_code, raw_text = testcards.MIT_NOT_LINKED
            return self._finish_failed(tx, code, raw=(raw_code, raw_text))
        if (not tx["merchant_initiated"] and not security_code
                and self._is_card(card, testcards.CVV_REQUIRED_CARD, tenant)):
            code, raw_code, raw_text = testcards.CIT_WITHOUT_CVV
            return self._finish_failed(tx, code, raw=(raw_code, raw_text))
        code = testcards.AUTHORIZATION_CODES.get(tx["amount"])
        if code:
            return self._finish_failed(tx, code)
        if fx.require_3ds:
            return "approval"
        return None

    def _finish_failed(self, tx: dict, code: str, event: str | None = None, raw=None) -> str:
        event = event or ("decline" if testcards.declined(code) else "fail")
        TRANSACTION.move(tx, event)
        raw_code, raw_text = raw or (code, testcards.RAW_RESPONSES.get(code, code))
        tx.update(error_code=code, raw_response_code=raw_code, raw_response_description=raw_text,
                  intent_outcome="failed")
        if event == "decline":
            tx["auth_response_code"] = "05"
        return code

    def _finish_success(self, tenant: str, tx: dict, stored: dict | None) -> None:
        """The authorization is approved: capture if asked, link the recurring series, vault."""
        now = iso(self.now(tenant))
        card = tx["_card"]
        tx["scheme_transaction_id"] = self.sb.ids.digits(15)
        tx["payment_service_transaction_id"] = self.new_id()
        tx["auth_response_code"] = "00"
        tx["raw_response_code"] = "00"
        tx["raw_response_description"] = "Approved"
        tx["authorized_amount"] = tx["amount"]
        tx["authorized_at"] = now
        capture_code = testcards.CAPTURE_CODES.get(tx["amount"])
        if tx["intent"] == "capture" and capture_code is None:
            if tx["_async_capture"]:
                TRANSACTION.move(tx, "authorize_and_capture_async")
                tx["intent_outcome"] = "pending"
                self.schedule(self.now(tenant) + ASYNC_CAPTURE_DELAY, tenant, "capture", tx_id=tx["id"],
                              key=f"gr4vy:capture:{tx['id']}")
            else:
                TRANSACTION.move(tx, "authorize_and_capture")
                tx["captured_amount"] = tx["amount"]
                tx["captured_at"] = now
                tx["intent_outcome"] = "succeeded"
        else:
            TRANSACTION.move(tx, "authorize")
            if tx["intent"] == "capture":   # the capture leg failed on the simulator's amount code
                tx.update(intent_outcome="failed", error_code=capture_code, raw_response_code=capture_code,
                          raw_response_description=testcards.RAW_RESPONSES[capture_code])
            else:
                tx["intent_outcome"] = "succeeded"
        if stored is None and tx["_store"]:
            buyer = self.store.get("buyer", tx["_buyer_id"], tenant=tenant) if tx["_buyer_id"] else None
            stored = self.vault_card(tenant, card, buyer)
            tx["_pm_id"] = stored["id"]
            tx["payment_method"]["id"] = stored["id"]
        if stored is not None:
            stored["usage_count"] += 1
            stored["last_used_at"] = now
            if not tx["merchant_initiated"]:
                stored["cit_usage_count"] += 1
                stored["cit_last_used_at"] = now
                # The first approved CIT anchors the series: later MITs on this method link to it.
                if stored["scheme_transaction_id"] is None:
                    stored["scheme_transaction_id"] = tx["scheme_transaction_id"]
                    stored["scheme_transaction_id_scheme"] = card["scheme"]
            elif not tx["_previous_scheme_transaction_id"]:
                tx["_previous_scheme_transaction_id"] = stored["scheme_transaction_id"]
            stored["updated_at"] = now
            self.store.put("payment-method", stored["id"], stored, tenant)

    def settle_async_capture(self, tenant: str, tx_id: str) -> None:
        with self.store.lock:
            tx = self.store.get("transaction", tx_id, tenant=tenant)
            if tx is None or tx["status"] != "capture_pending":
                return
            TRANSACTION.move(tx, "capture_settled")
            now = iso(self.now(tenant))
            tx.update(captured_amount=tx["amount"], captured_at=now, updated_at=now, intent_outcome="succeeded")
            self.store.put("transaction", tx_id, tx, tenant)
            self.emit(tenant, "transaction.captured", tx)

    # -- buyer approval (3DS / redirect) -------------------------------------------------------
    def approve(self, tenant: str, tx: dict, outcome: str, three_ds: str) -> dict:
        with self.store.lock:
            if tx["status"] != "buyer_approval_pending":
                raise Refusal("invalid_state", f"Transaction in status {tx['status']} is not waiting for the buyer")
            stored = self.store.get("payment-method", tx["_pm_id"], tenant=tenant) if tx["_pm_id"] else None
            if outcome == "cancel":
                self._finish_failed(tx, "cancelled_buyer_approval", "fail")
            elif outcome == "decline" or three_ds == "fail":
                self._finish_failed(tx, "failed_buyer_approval", "fail")
            else:
                self._finish_success(tenant, tx, stored)
            tx["payment_method"]["approval_url"] = None
            tx["updated_at"] = iso(self.now(tenant))
            self.store.put("transaction", tx["id"], tx, tenant)
            self.emit(tenant, EVENT_NAMES.get(tx["status"], "transaction.modified"), tx)
        return tx

    # -- follow-up operations ------------------------------------------------------------------
    def capture(self, tenant: str, tx: dict, data: dict) -> dict:
        """Capture ``tx`` (updated in place); returns the outcome for the TransactionCapture view."""
        with self.store.lock:
            if not TRANSACTION.allows(tx, "capture"):
                raise TRANSACTION.refuse(tx, "capture")
            # A zero-amount authorization only verifies the card: Gr4vy wants amount > 0 to capture
            # (intent capture) and refuses to void one, so there is nothing to capture either.
            if tx["authorized_amount"] == 0:
                raise Refusal("invalid_state", "A zero-amount authorization cannot be captured")
            amount = data.get("amount") or tx["authorized_amount"]
            if amount > tx["authorized_amount"]:
                raise Refusal("validation", [("/amount", "Amount exceeds the authorized amount")])
            now = iso(self.now(tenant))
            code = testcards.CAPTURE_CODES.get(tx["amount"])
            if code:
                wrapper_status = "declined" if testcards.declined(code) else "failed"
                tx.update(error_code=code, raw_response_code=code,
                          raw_response_description=testcards.RAW_RESPONSES[code], updated_at=now)
                name = "transaction.capture-failed"   # Gr4vy has no capture-declined transaction event
            else:
                TRANSACTION.move(tx, "capture")
                wrapper_status = "succeeded"
                tx.update(captured_amount=amount, captured_at=now, updated_at=now, error_code=None)
                if tx["intent"] == "capture":
                    tx["intent_outcome"] = "succeeded"
                name = "transaction.captured"
            self.store.put("transaction", tx["id"], tx, tenant)
            self.emit(tenant, name, tx)
        return {"status": wrapper_status, "code": code, "capture_id": self.new_id() if not code else None}

    def void(self, tenant: str, tx: dict) -> dict:
        """Void ``tx`` (updated in place); returns the outcome for the TransactionVoid view."""
        with self.store.lock:
            if not TRANSACTION.allows(tx, "void"):
                raise TRANSACTION.refuse(tx, "void")
            if tx["authorized_amount"] == 0:
                raise Refusal("invalid_state", "A zero-amount authorization cannot be voided")
            now = iso(self.now(tenant))
            code = testcards.VOID_CODES.get(tx["amount"])
            if code:
                wrapper_status = "declined" if testcards.declined(code) else "failed"
                tx.update(updated_at=now)
                name = "transaction.void-declined" if wrapper_status == "declined" else "transaction.void-failed"
            else:
                TRANSACTION.move(tx, "void")
                wrapper_status = "succeeded"
                tx.update(voided_at=now, updated_at=now)
                name = "transaction.voided"
            self.store.put("transaction", tx["id"], tx, tenant)
            self.emit(tenant, name, tx)
        return {"status": wrapper_status, "code": code}

    def refund(self, tenant: str, tx: dict, data: dict, *, all_remaining: bool = False) -> dict | None:
        with self.store.lock:
            if tx["status"] not in REFUNDABLE:
                raise Refusal("invalid_state", f"Transaction in status {tx['status']} cannot be refunded")
            remaining = tx["captured_amount"] - tx["refunded_amount"]
            if all_remaining and remaining == 0:
                return None
            amount = data.get("amount") or remaining
            if remaining <= 0:
                raise Refusal("invalid_state", "Transaction has already been fully refunded")
            if amount > remaining:
                raise Refusal("validation", [("/amount", f"Amount exceeds the refundable amount of {remaining}")])
            now = iso(self.now(tenant))
            code = testcards.REFUND_CODES.get(tx["amount"])
            status = ("declined" if testcards.declined(code) else "failed") if code else "succeeded"
            rid = self.new_id()
            refund = {"type": "refund", "id": rid, "transaction_id": tx["id"],
                      "payment_service_refund_id": None if code else self.new_id(),
                      "status": status,
                      "currency": tx["currency"], "amount": amount, "reason": data.get("reason"),
                      "target_type": data.get("target_type", "payment-method"), "target_id": tx["_pm_id"],
                      "reconciliation_id": reconciliation_id(rid),
                      "transaction_reconciliation_id": tx["reconciliation_id"],
                      "external_identifier": data.get("external_identifier"),
                      "transaction_external_identifier": tx.get("external_identifier"),
                      "error_code": code, "raw_response_code": code,
                      "raw_response_description": testcards.RAW_RESPONSES.get(code) if code else None,
                      "settled": False, "settled_amount": 0, "created_at": now, "updated_at": now}
            self.store.put("refund", rid, refund, tenant)
            if status == "succeeded":
                tx["refunded_amount"] += amount
            tx["_refund_ids"].append(rid)
            tx["updated_at"] = now
            self.store.put("transaction", tx["id"], tx, tenant)
            self.emit(tenant, f"refund.{status}", refund)
        return refund
