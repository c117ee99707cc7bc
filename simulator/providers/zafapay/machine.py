"""ZafaPay business rules: one transition table per stateful object, and the charge paths.

A payment is one object from the moment it is created (``req_``) until it is settled; its
transaction id (``tx_``) is allotted at creation and surfaces once the customer (or the saved
card) has paid. Its ``amount`` is what was authorized until a capture, and what was captured from
then on: a partial capture releases the rest, so GET, refunds and every later webhook agree on one
amount and ``amount == amount_refunded`` means fully refunded. The tables below are the whole
state machine: any (status, event) pair that is not listed is answered with 400 ``invalid_status``.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from ...core import cards as cardlib
from ...core.ids import ALNUM
from ...core.money import to_major, to_minor
from ..shape import Machine as BaseMachine, Refusal, Transitions
from . import testcards, views


def _past(event: str) -> str:
    return {"capture": "captured", "void": "voided", "refund_partial": "refunded", "refund_full": "refunded",
            "cancel": "canceled", "complete": "completed", "authorize": "authorized", "fail": "failed",
            "challenge": "challenged", "open": "opened"}.get(event, event)


# ``new`` is the instant before the first status
PAYMENT = Transitions("payment", "new", {
    ("new", "open"): "pending",                 # hosted: waits for the customer
    ("new", "complete"): "completed",           # recurring / token, automatic capture
    ("new", "authorize"): "authorized",         # recurring / token, manual capture
    ("new", "challenge"): "requires_action",    # token payment needs 3-D Secure
    ("new", "fail"): "failed",
    ("pending", "complete"): "completed",
    ("pending", "authorize"): "authorized",
    ("pending", "challenge"): "requires_action",
    ("pending", "fail"): "failed",
    ("pending", "cancel"): "canceled",          # customer cancels on the hosted page
    ("requires_action", "complete"): "completed",
    ("requires_action", "authorize"): "authorized",
    ("requires_action", "fail"): "failed",
    ("requires_action", "cancel"): "canceled",  # customer abandons 3-D Secure
    ("authorized", "capture"): "completed",
    ("authorized", "void"): "canceled",
    ("completed", "refund_partial"): "partially_refunded",
    ("completed", "refund_full"): "refunded",
    ("partially_refunded", "refund_partial"): "partially_refunded",
    ("partially_refunded", "refund_full"): "refunded",
}, refusal="invalid_status",
    message=lambda pay, event: f"The payment cannot be {_past(event)} in status {pay['status']}.")

# anything on a detached card is payment_method_detached
PAYMENT_METHOD = Transitions("payment method", "active", {
    ("active", "block"): "blocked",
    ("blocked", "unblock"): "active",
    ("active", "detach"): "detached",
    ("blocked", "detach"): "detached",
}, refusal="invalid_status",
    message=lambda pm, event: f"The payment method cannot be {event}ed in status {pm['status']}.")

TOKEN_LIFETIME = timedelta(minutes=30)


def _captured_as_amount(pay: dict | None) -> dict | None:
    """A state file written before a capture rewrote ``amount`` keeps the captured amount beside
    the authorized one; read it the way a capture now leaves it, so a partial capture made then
    cannot be refunded beyond what was taken. Idempotent, so the copy need not be put back."""
    if pay is not None and "amount_captured" in pay:
        captured = pay.pop("amount_captured", None)
        if captured and pay["status"] in ("completed", "partially_refunded", "refunded"):
            pay["amount"] = captured
    return pay


def _default_card(now) -> dict:
    return {"number": testcards.SUCCESS_VISA, "exp_month": 12, "exp_year": now.year + 4, "cvc": "123"}


class Machine(BaseMachine):
    """ZafaPay's charge paths (hosted, token, recurring), capture/void/refund, saved cards and
    tokens. Declines are stored on the payment and then refused with the decline code."""

    tables = (PAYMENT, PAYMENT_METHOD)
    # a payment is stored under its request id (req_); its transaction id (tx_) finds it by index
    indexes = {"payment": ("id",), "payment_method": ("customer_id",)}
    retired = ("tx",)   # {"request_id": ...} per payment, before that index

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def move(pay: dict, event: str, now) -> str:
        to = PAYMENT.move(pay, event)
        pay["updated_at"] = now
        return to

    @staticmethod
    def move_card(pm: dict, event: str, now) -> None:
        if pm["status"] == "detached":
            raise Refusal("payment_method_detached", "The payment method has been detached and cannot be used.",
                          param="id")
        PAYMENT_METHOD.move(pm, event)
        pm["updated_at"] = now

    def _minor(self, value: Decimal, currency: str, param: str = "amount") -> int:
        try:
            minor = to_minor(value, currency)
        except ValueError:
            raise Refusal("invalid_amount", f"The amount has too many decimal places for {currency}.", param=param)
        if minor <= 0:
            raise Refusal("invalid_amount", "The amount must be greater than zero.", param=param)
        return minor

    def resolve_flow(self, flow_id: str | None) -> tuple[str, dict]:
        flow_id = flow_id or testcards.DEFAULT_FLOW
        flow = testcards.FLOWS.get(flow_id)
        if flow is None:
            raise Refusal("flow_not_found", f"No flow {flow_id} exists.", param="flow_id")
        if not flow["active"]:
            raise Refusal("flow_not_active", f"The flow {flow_id} is not active.", param="flow_id")
        return flow_id, flow

    def card_from_input(self, card: dict, now, *, salt: str) -> dict:
        """Validate a typed card; keep BIN, last four, fingerprint and the outcome profile only."""
        number = cardlib.digits_only(card.get("number", ""))
        if not cardlib.luhn_ok(number):
            raise Refusal("validation_error", "The card number is invalid.", param="card.number",
                          details=[{"param": "card.number", "message": "invalid card number"}])
        exp_month, exp_year = int(card["exp_month"]), int(card["exp_year"])
        if exp_year < 100:
            exp_year += 2000
        if cardlib.expired(exp_month, exp_year, now):
            raise Refusal("validation_error", "The card's expiry date is in the past.", param="card.exp_year",
                          details=[{"param": "card.exp_year", "message": "expiry date is in the past"}])
        return {
            "bin": number[:6], "last4": number[-4:], "brand": testcards.brand(cardlib.scheme(number)),
            "exp_month": exp_month, "exp_year": exp_year, "fingerprint": cardlib.fingerprint(number, salt),
            "cardholder_name": card.get("cardholder_name") or None, "country": "US", "funding": "credit",
            "profile": testcards.profile(number),
        }

    def emit(self, tenant: str, event: str, pay: dict) -> None:
        settings = self.p.settings
        if not settings.get("webhook_url"):
            return
        body = views.webhook(event, pay, merchant_id=self.p.merchant_id(tenant),
                             merchant_name=settings.get("merchant_name", "Sandbox Merchant"), now=self.p.now(tenant),
                             error_format=settings.get("webhook_error_format", "object"))
        self.p.emit(tenant, event, body, settings.get("webhook_url"), subject=pay["id"], schedule=self.p.schedule())

    # -- lookups ---------------------------------------------------------------------------------
    def payment(self, tenant: str | None, any_id: str) -> dict | None:
        """The payment with that request id (req_) or transaction id (tx_), of any tenant if None."""
        if any_id.startswith("tx_"):
            found = self.store.where("payment", tenant, "id", any_id, limit=1)
            return _captured_as_amount(found[0]) if found else None
        return _captured_as_amount(self.store.get("payment", any_id, tenant=tenant))

    def find_payment(self, tenant: str, any_id: str) -> dict:
        pay = self.payment(tenant, any_id)
        if pay is None:
            raise Refusal("unknown_object", f"No payment {any_id} exists.", param="id")
        return pay

    def find_card(self, tenant: str, pmi: str) -> dict:
        pm = self.store.get("payment_method", pmi, tenant=tenant)
        if pm is None:
            raise Refusal("unknown_object", f"No payment method {pmi} exists.", param="payment_method_id")
        return pm

    def cards_of(self, tenant: str, customer_id: str) -> list[dict]:
        """Newest first; detached cards are gone for good."""
        return [pm for pm in self.store.where("payment_method", tenant, "customer_id", customer_id, newest_first=True)
                if pm["status"] != "detached"]

    # -- create ----------------------------------------------------------------------------------
    def create_payment(self, tenant: str, data: dict):
        """-> (http status, payment). Raises the provider error for anything refused before a charge."""
        now = self.p.now(tenant)
        currency = data["currency"]
        if currency not in self.p.currencies():
            raise Refusal("unsupported_currency", f"The currency {currency} is not enabled.", param="currency")
        amount = self._minor(data["amount"], currency)
        major = Decimal(to_major(amount, currency))
        low, high = self.p.amount_limits()
        if major < low:
            raise Refusal("amount_below_minimum", f"The amount must be at least {low:.2f}.", param="amount")
        if major > high:
            raise Refusal("amount_above_maximum", f"The amount must be at most {high:.2f}.", param="amount")
        method = data.get("payment_method", "card")
        method = method.get("type") if isinstance(method, dict) else method
        if method != "card":
            raise Refusal("not_supported", f"The payment method {method} is not supported in the sandbox.",
                          param="payment_method")
        flow_id, flow = self.resolve_flow(data.get("flow_id"))

        if data.get("payment_method_id"):
            payment_type = "recurring"
        elif data.get("token"):
            payment_type = "token"
        elif data.get("save_card"):
            payment_type = "initial"
        else:
            payment_type = "single"
        if (data.get("save_card") or data.get("payment_method_id")) and not flow["recurring"]:
            raise Refusal("recurring_not_supported",
                          f"The connector of flow {flow_id} does not support recurring payments.", param="flow_id")

        pay = {
            "id": self.sb.ids.prefixed("tx_", 24, ALNUM),
            "request_id": self.sb.ids.prefixed("req_", 24, ALNUM),
            "status": "new",
            "payment_type": payment_type,
            "amount": amount,
            "currency": currency,
            "capture_method": data.get("capture_method") or "automatic",
            "flow_id": flow_id,
            "connector_id": flow["connector_id"],
            "external_id": data.get("external_id"),
            "metadata": data.get("metadata") or {},
            "customer_id": data.get("customer_id"),
            "save_card": bool(data.get("save_card")),
            "email": data.get("email"),
            "tel": data.get("tel"),
            "name": data.get("name"),
            "product_name": data.get("product_name"),
            "payment_method": "card",
            "return_url": data.get("return_url"),
            "card": None,
            "payment_method_id": None,
            "card_saved": False,
            "error_code": None,
            "amount_refunded": 0,
            "refunds": [],
            "psp_reference": None,
            "page_token": self.sb.ids.token(32, ALNUM),
            "created_at": now,
            "updated_at": now,
        }

        if payment_type == "recurring":
            return self._charge_saved_card(tenant, pay, data["payment_method_id"], now)
        if payment_type == "token":
            return self._charge_token(tenant, pay, data["token"], now)
        with self.store.lock:
            self.move(pay, "open", now)
            self._store(tenant, pay)
        return 201, pay

    def _store(self, tenant: str, pay: dict) -> None:
        self.store.put("payment", pay["request_id"], pay, tenant)

    def _charge_saved_card(self, tenant, pay, pmi, now):
        fx = self.p.effects()
        with self.store.lock:
            pm = self.find_card(tenant, pmi)
            if pm["customer_id"] != pay["customer_id"]:
                raise Refusal("unknown_object", f"No payment method {pmi} exists for customer {pay['customer_id']}.",
                              param="payment_method_id")
            if pm["status"] == "detached":
                raise Refusal("payment_method_detached", "The payment method has been detached and cannot be used.",
                              param="payment_method_id")
            if pm["status"] == "blocked":
                raise Refusal("payment_method_blocked", "The payment method is blocked.", param="payment_method_id")
            if pm["connector_id"] != pay["connector_id"]:
                raise Refusal("recurring_not_supported",
                              "The card was saved with another connector than the one of this flow.", param="flow_id")
            if fx.token in ("inactive", "expired") and not pm.get("stopped"):
                # a scenario's token effect: this saved card stops working for good
                pm["stopped"] = fx.token
                pm["updated_at"] = now
                self.store.put("payment_method", pm["id"], pm, tenant)
            pay["card"] = dict(pm["card"])
            pay["payment_method_id"] = pm["id"]
            card = pm["card"]
            if pm.get("stopped") == "expired" or cardlib.expired(card["exp_month"], card["exp_year"], now):
                decline = "expired_card"
            elif pm.get("stopped") == "inactive":
                decline = "card_declined"
            else:
                decline = fx.take_decline()
                if decline is None and card.get("profile") == "recurring_decline":
                    decline = "card_declined"
                if decline is None and pay["amount"] % 100 == testcards.INSUFFICIENT_FUNDS_CENTS \
                        and pay["currency"] != "jpy":
                    decline = "insufficient_funds"
            if decline:
                self._fail(tenant, pay, decline, now)
            else:
                self._succeed(tenant, pay, now)
            self._store(tenant, pay)
        return self._result(pay)

    def _charge_token(self, tenant, pay, tok_id, now):
        fx = self.p.effects()
        with self.store.lock:
            tok = self.store.get("token", tok_id)
            owner = self.store.tenant_of("token", tok_id)
            # a token made with an unmapped publishable key is usable by any tenant [ASSUMED]
            if tok is None or (owner != tenant and not owner.startswith("pk_")):
                raise Refusal("unknown_object", f"No token {tok_id} exists.", param="token")
            if fx.token == "expired" and not tok["used"]:
                tok["expires_at"] = now
            elif fx.token == "inactive":
                tok["used"] = True
            if tok["used"]:
                self.store.put("token", tok_id, tok, owner)
                raise Refusal("payment_token_already_used", "The token has already been used.", param="token")
            if now >= tok["expires_at"]:
                self.store.put("token", tok_id, tok, owner)
                raise Refusal("payment_token_expired", "The token has expired.", param="token")
            tok["used"] = True
            self.store.put("token", tok_id, tok, owner)
            pay["card"] = dict(tok["card"])
            self.authorize(tenant, pay, now)
            self._store(tenant, pay)
        return self._result(pay)

    def _result(self, pay):
        if pay["status"] == "failed":
            raise Refusal(pay["error_code"], transaction_id=pay["id"], request_id=pay["request_id"])
        return (202 if pay["status"] == "requires_action" else 201), pay

    # -- the authorization -----------------------------------------------------------------------
    def authorize(self, tenant, pay, now, *, three_ds: str | None = None) -> None:
        """Run a typed card (hosted page, token) through 3-D Secure and the decline rules.

        ``three_ds`` None means the customer has not answered a challenge yet (the HTML flow stops at
        ``requires_action`` and shows it); "pass" / "fail" / "cancel" answer it in the same call.
        """
        fx = self.p.effects()
        profile = pay["card"].get("profile")
        if pay["status"] != "requires_action" and (profile == "three_ds" or fx.require_3ds):
            self.move(pay, "challenge", now)
            if three_ds is None:
                return
        if pay["status"] == "requires_action":
            if three_ds is None:
                return
            if three_ds == "cancel":
                self.move(pay, "cancel", now)
                self.emit(tenant, "payment.canceled", pay)
                return
            if three_ds == "fail":
                self._fail(tenant, pay, "card_declined", now)
                return
        decline = fx.take_decline() or testcards.decline_of(profile)
        if decline:
            self._fail(tenant, pay, decline, now)
        else:
            self._succeed(tenant, pay, now)

    def _fail(self, tenant, pay, code, now) -> None:
        self.move(pay, "fail", now)
        pay["error_code"] = code
        self.emit(tenant, "payment.failed", pay)

    def _succeed(self, tenant, pay, now) -> None:
        pay["psp_reference"] = self.sb.ids.prefixed("pi_", 24, ALNUM)
        if pay["save_card"]:
            self._save_card(tenant, pay, now)
        if pay["capture_method"] == "manual":
            self.move(pay, "authorize", now)   # no webhook for authorized; payment.succeeded fires on capture
            return
        self.move(pay, "complete", now)
        self.emit(tenant, "payment.succeeded", pay)

    def _save_card(self, tenant, pay, now) -> None:
        with self.store.lock:
            has_default = any(c["is_default"] for c in self.cards_of(tenant, pay["customer_id"]))
            pm = {
                "id": self.sb.ids.prefixed("pmi_", 24, ALNUM),
                "customer_id": pay["customer_id"],
                "connector_id": pay["connector_id"],
                "card": dict(pay["card"]),
                "status": "active",
                "blocked_reason": None,
                "is_default": not has_default,
                "stopped": None,
                "created_at": now,
                "updated_at": now,
            }
            self.store.put("payment_method", pm["id"], pm, tenant)
        pay["payment_method_id"] = pm["id"]
        pay["card_saved"] = True

    # -- the hosted page -------------------------------------------------------------------------
    @staticmethod
    def step_refused(pay: dict, step: str) -> str | None:
        """Why the page's ``step`` (``card``: the card form, ``challenge``: the 3-D Secure form)
        cannot act on ``pay`` as it is now; None if it can."""
        status = pay["status"]
        if step == "card" and status != "pending":
            # one waiting for 3-D Secure is answered on its challenge form: a second click on Pay
            # must not pass the challenge for the customer
            return ("Answer the 3-D Secure challenge to finish this payment." if status == "requires_action"
                    else f"The payment is already {status}.")
        if step == "challenge" and status != "requires_action":
            return ("No 3-D Secure challenge is waiting: enter the card first." if status == "pending"
                    else f"The payment is already {status}.")
        return None

    def hosted_submit(self, pay: dict, outcome: str, card: dict | None, three_ds: str | None, *,
                      step: str | None = None) -> dict:
        """The customer's action on the payment page; the HTML forms (``step``, see ``step_refused``)
        and /_sandbox/hosted (any step) share it. The step is checked again under the lock: two
        clicks at once both passed the form's check while the payment was pending."""
        tenant = self.store.tenant_of("payment", pay["request_id"])
        now = self.p.now(tenant)
        with self.store.lock:
            if step is not None and (why := self.step_refused(pay, step)):
                raise Refusal("invalid_status", why)
            if pay["status"] == "requires_action":
                answer = {"cancel": "cancel", "decline": "fail"}.get(outcome, "pass")
                self.authorize(tenant, pay, now, three_ds=three_ds or answer)
            elif pay["status"] != "pending":
                raise Refusal("invalid_status", f"The payment is already {pay['status']}.")
            elif outcome == "cancel":
                self.move(pay, "cancel", now)
                self.emit(tenant, "payment.canceled", pay)
            else:
                pay["card"] = self.card_from_input(card or _default_card(now), now, salt=tenant)
                if outcome == "decline":
                    self._fail(tenant, pay, "card_declined", now)
                else:
                    self.authorize(tenant, pay, now, three_ds=three_ds)
            self._store(tenant, pay)
        return pay

    # -- capture, void, refund -------------------------------------------------------------------
    def capture(self, tenant, any_id, amount) -> dict:
        now = self.p.now(tenant)
        with self.store.lock:
            pay = self.find_payment(tenant, any_id)
            minor = pay["amount"] if amount is None else self._minor(amount, pay["currency"])
            if pay["status"] == "authorized" and minor > pay["amount"]:
                raise Refusal("invalid_amount", "The capture amount exceeds the authorized amount.", param="amount")
            self.move(pay, "capture", now)
            # the uncaptured rest is released, not kept for a later capture: from here on the
            # payment is worth what was taken, on GET, in refunds and in every webhook
            pay["amount"] = minor
            self.emit(tenant, "payment.succeeded", pay)
            self._store(tenant, pay)
        return pay

    def void(self, tenant, any_id) -> dict:
        now = self.p.now(tenant)
        with self.store.lock:
            pay = self.find_payment(tenant, any_id)
            self.move(pay, "void", now)
            self.emit(tenant, "payment.canceled", pay)
            self._store(tenant, pay)
        return pay

    def refund(self, tenant, any_id, data) -> tuple[dict, dict]:
        now = self.p.now(tenant)
        with self.store.lock:
            pay = self.find_payment(tenant, any_id)
            if pay["status"] not in ("completed", "partially_refunded"):
                raise Refusal("invalid_status", f"The payment cannot be refunded in status {pay['status']}.")
            if data.get("currency") and data["currency"] != pay["currency"]:
                raise Refusal("validation_error", "The refund currency must be the payment's currency.",
                              param="currency", details=[{"param": "currency", "message": "must match the payment"}])
            remaining = pay["amount"] - pay["amount_refunded"]
            minor = remaining if data.get("amount") is None else self._minor(data["amount"], pay["currency"])
            if minor > remaining:
                raise Refusal("invalid_amount", "The refund amount exceeds the refundable amount.", param="amount")
            self.move(pay, "refund_full" if minor == remaining else "refund_partial", now)
            pay["amount_refunded"] += minor
            item = {"id": self.sb.ids.prefixed("orf_", 24, ALNUM), "amount": minor, "status": "succeeded",
                    "reason": data.get("reason"), "psp_refund_id": self.sb.ids.prefixed("re_", 24, ALNUM),
                    "created_at": now}
            pay["refunds"].append(item)
            self.emit(tenant, "payment.refunded", pay)
            self._store(tenant, pay)
        return pay, item

    # -- saved cards -----------------------------------------------------------------------------
    def card_action(self, tenant, pmi, event, reason=None) -> dict:
        now = self.p.now(tenant)
        with self.store.lock:
            pm = self.find_card(tenant, pmi)
            self.move_card(pm, event, now)
            pm["blocked_reason"] = reason if event == "block" else None
            if event == "detach" and pm["is_default"]:
                pm["is_default"] = False
                rest = [c for c in self.cards_of(tenant, pm["customer_id"]) if c["status"] == "active"]
                if rest:
                    rest[0]["is_default"] = True
                    self.store.put("payment_method", rest[0]["id"], rest[0], tenant)
            self.store.put("payment_method", pm["id"], pm, tenant)
        return pm

    # -- tokens ----------------------------------------------------------------------------------
    def create_token(self, tenant, card_input) -> dict:
        now = self.p.now(tenant)
        card = self.card_from_input(card_input, now, salt=tenant)
        tok = {"id": self.sb.ids.prefixed("tok_", 24, ALNUM), "card": card, "connector_id": "conn_sandbox",
               "used": False, "created_at": now, "expires_at": now + TOKEN_LIFETIME}
        self.store.put("token", tok["id"], tok, tenant)
        return tok
