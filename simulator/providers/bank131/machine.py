"""Bank 131 state machines and business rules.

Three stateful objects, one explicit transition table each. The acquiring payment has two
internal "waiting" states that Bank 131 shows with the same wire status `pending`: waiting for the
partner's `session/confirm` (the session then carries `next_action: confirm`) and waiting for the
payer's 3-D Secure (the payment then carries `customer_interaction`).

Flow: start → payment pending (ready_to_confirm) → confirm → in_progress
      → [3-D Secure: pending + customer_interaction (action_required) → payer passes → in_progress]
      → succeeded | failed (payment_finished; a recurrent token is issued on success if asked for).
"""
from __future__ import annotations

import calendar
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable

from ...core import cards
from ...core.clock import iso_z
from ..shape import Machine as BaseMachine, Refusal, Transitions
from . import testcards, views

SESSION = Transitions("session", "created", {
    ("created", "start"): "in_progress",
    ("created", "cancel"): "cancelled",
    ("in_progress", "cancel"): "cancelled",
    ("in_progress", "succeed"): "accepted",
    ("in_progress", "fail"): "cancelled",
}, refusal="session_wrong_state", message="session {id} is {state}; cannot {event}")

# acquiring payment: internal states in `_state`; WIRE maps them to Bank 131's statuses
PAYMENT = Transitions("payment", "awaiting_confirm", {
    ("awaiting_confirm", "confirm"): "in_progress",
    ("awaiting_confirm", "cancel"): "failed",
    ("awaiting_confirm", "confirm_timeout"): "failed",
    ("in_progress", "require_action"): "awaiting_action",
    ("awaiting_action", "three_ds_pass"): "in_progress",
    ("awaiting_action", "three_ds_fail"): "failed",
    ("in_progress", "succeed"): "succeeded",
    ("in_progress", "fail"): "failed",
}, field="_state", refusal="session_wrong_state", message="payment {id} is {status}; cannot {event}")
WIRE = {"awaiting_confirm": "pending", "awaiting_action": "pending", "in_progress": "in_progress",
        "succeeded": "succeeded", "failed": "failed"}

REFUND = Transitions("refund", "in_progress", {
    ("in_progress", "accept"): "accepted",
    ("in_progress", "decline"): "declined",
}, refusal="session_wrong_state", message="refund {id} is {state}; cannot {event}")

# What recurrent/disable leaves in finished_at: the guide says "may contain a date of the year 2000".
DISABLED_FINISHED_AT = "2000-01-01T00:00:00.000000Z"


def ts(when: datetime) -> str:
    return iso_z(when, 6)


def brand(number: str) -> str:
    if number[:4] in ("2200", "2201", "2202", "2203", "2204"):
        return "mir"
    return {"Visa": "visa", "Mastercard": "mastercard", "Maestro": "maestro", "American Express": "amex",
            "JCB": "jcb", "Diners Club": "diners", "Discover": "discover"}.get(cards.scheme(number), "unknown")


class Machine(BaseMachine):
    """Bank 131's business rules: payment sessions (create, init, start, confirm, cancel,
    refund), the confirm timeout, 3-D Secure, recurrent tokens and the payment widget. The PAN is
    reduced to a card profile on the way in and never kept."""

    tables = (SESSION, PAYMENT, REFUND)
    # a session starts once, so it holds at most one payment: the payment's id finds its session
    indexes = {"public_token": ("session_id",),
               "session": {"payment_id": lambda s: s["_payments"][0]["id"] if s["_payments"] else None}}
    retired = ("payment",)   # {"session_id": ...} per payment, before that index
    timer_handlers = {"confirm": "confirm_timeout", "refund": "settle_refund"}

    @staticmethod
    def step(table: Transitions, obj: dict, event: str) -> None:
        table.move(obj, event)
        if table is PAYMENT:
            obj["status"] = WIRE[obj["_state"]]

    def new_id(self, prefix: str, holder: Callable[[str], Any]) -> str:
        """Nine random digits after ``prefix`` that ``holder(id)`` finds nobody holding (None)."""
        while True:
            candidate = prefix + self.sb.ids.digits(9)
            if holder(candidate) is None:
                return candidate

    def _session_of(self, payment_id: str) -> dict | None:
        """The session holding that payment, whoever's it is (the index of ``indexes``)."""
        found = self.store.where("session", None, "payment_id", payment_id, limit=1)
        return found[0] if found else None

    def token_lookup(self, token: str):
        return self.store.get("recurrent_token", token)

    def render(self, session: dict, version: int | None = None) -> dict:
        return views.render_session(session, self.token_lookup, version)

    def emit(self, tenant: str, event_type: str, session: dict) -> None:
        url = self.p.webhook_url(tenant)
        if session.get("_sync") or not url:
            return  # init/payment/sync sends no webhooks at all
        self.p.emit(tenant, event_type, views.payload(event_type, session, self.token_lookup), url,
                    subject=session["id"])

    def save(self, tenant: str, session: dict) -> None:
        self.store.put("session", session["id"], session, tenant)

    def get_session(self, session_id: str, tenant: str) -> dict:
        session = self.store.get("session", session_id, tenant=tenant)
        if session is None:
            raise Refusal("invalid_request", f"session {session_id} not found")
        return session

    def find_payment(self, payment_id: str):
        """(tenant, session, payment) for a payment id, without credentials (hosted pages)."""
        session = self._session_of(payment_id)
        if session is None:
            return None, None, None
        return self.store.tenant_of("session", session["id"]), session, session["_payments"][0]

    # -- request normalisation: the PAN is reduced to a card profile here and never kept --------
    def card_profile(self, bank_card: dict, tenant: str) -> dict:
        number = cards.digits_only(bank_card["number"])
        if not cards.luhn_ok(number):
            behaviour = "card_number_does_not_exist"
        else:
            behaviour = testcards.card_behaviour(number)
        year = bank_card["expiration_year"]
        return {"bin": number[:6], "last4": number[-4:], "brand": brand(number),
                "fingerprint": cards.fingerprint(number, tenant),
                "expiration_month": bank_card["expiration_month"], "expiration_year": year[-2:],
                "behaviour": behaviour}

    def draft(self, data: dict, tenant: str) -> dict:
        out = {k: data[k] for k in ("amount_details", "customer", "payment_options", "metadata") if k in data}
        details = data.get("payment_details")
        if details:
            if details["type"] == "card":
                out["payment_details"] = {"type": "card", "_card": self.card_profile(details["card"]["bank_card"],
                                                                                    tenant)}
            else:
                out["payment_details"] = {"type": "recurrent", "recurrent": dict(details["recurrent"])}
        return out

    @staticmethod
    def merge(base: dict, update: dict) -> dict:
        out = dict(base)
        for key, value in update.items():
            if key == "payment_options" and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
        return out

    # -- sessions ----------------------------------------------------------------------------
    def create_session(self, tenant: str, draft: dict, version: int) -> dict:
        now = ts(self.p.now(tenant))
        with self.store.lock:
            session = {"id": self.new_id("ps_", partial(self.store.tenant_of, "session")), "status": "created",
                       "created_at": now, "updated_at": now, "_version": version, "_draft": draft, "_payments": []}
            self.save(tenant, session)
        return session

    def check_payment(self, tenant: str, spec: dict, sync: bool = False) -> dict | None:
        """Every rule a payment request must pass, before anything is written. Returns the token
        record for a recurrent charge."""
        details = spec.get("payment_details")
        if not details:
            raise Refusal("invalid_request", "payment_details: required")
        if not spec.get("amount_details"):
            raise Refusal("invalid_request", "amount_details: required")
        if not (spec.get("customer") or {}).get("reference"):
            raise Refusal("invalid_request", "customer.reference: required")
        options = spec.get("payment_options") or {}
        if sync and not options.get("return_url"):
            raise Refusal("invalid_request", "payment_options.return_url: required for init/payment/sync")
        if details["type"] != "recurrent":
            return None
        if options.get("recurrent"):
            raise Refusal("invalid_request", "payment_options.recurrent: recurrent tokens are issued for bank card "
                                             "payments only")
        token = details["recurrent"]["token"]
        rec = self.store.get("recurrent_token", token, tenant=tenant)
        if rec is None:
            raise Refusal("invalid_request", "recurrent token not found")
        self.apply_token_effect(rec, tenant)
        code = self.token_unusable(rec)
        if code == "bank_card_expired":
            raise Refusal(code, "recurrent token has expired; the payment was not processed")
        if code:
            raise Refusal(code, "recurrent token is not active (is_active: false); the payment was not processed")
        return rec

    @staticmethod
    def token_unusable(rec: dict | None) -> str | None:
        """The error code a charge on this token is refused with, or None while it can be charged.
        One rule for both moments a token is checked: when the charge is requested and when its
        outcome is decided (the token may have been disabled in between)."""
        if rec is None:   # tokens are not deleted on their own; were one gone, there is nothing to charge
            return "binding_is_deactivated"
        if rec.get("_expired"):
            return "bank_card_expired"
        return None if rec["is_active"] else "binding_is_deactivated"

    def token_refusal(self, tenant: str, payment: dict) -> str | None:
        """For a token charge, the code it fails with if its token stopped working after the charge
        was accepted. Read under the store lock, like recurrent/disable's write: once a disable is
        answered, no confirm or 3-D Secure decided after it can take money with that token."""
        token = payment.get("_token")
        if not token:
            return None
        return self.token_unusable(self.store.get("recurrent_token", token, tenant=tenant))

    def apply_token_effect(self, rec: dict, tenant: str) -> None:
        """Scenario `token: inactive | expired`: the bank switched this token off, for good."""
        effect = self.p.effects().token
        if effect not in ("inactive", "expired"):
            return
        with self.store.lock:
            rec["is_active"] = False
            rec["_deactivated_by"] = "bank"
            if effect == "expired":
                rec["_expired"] = True
                rec["finished_at"] = ts(self.p.now(tenant))
            self.store.put("recurrent_token", rec["token"], rec, tenant)

    def init_payment(self, tenant: str, draft: dict, version: int, sync: bool = False) -> dict:
        with self.store.lock:
            self.check_payment(tenant, draft, sync=sync)
            session = self.create_session(tenant, {}, version)
            session["_sync"] = sync
            return self.start_payment(tenant, session, draft)

    def start_payment(self, tenant: str, session: dict, draft: dict, consent: bool | None = None) -> dict:
        """Start the session's payment. ``consent`` is the widget checkbox when it was shown."""
        with self.store.lock:
            spec = self.merge(session["_draft"], draft)
            self.check_payment(tenant, spec, sync=session.get("_sync", False))
            self.step(SESSION, session, "start")
            fx = self.p.effects()
            now = ts(self.p.now(tenant))
            details = spec["payment_details"]
            options = dict(spec.get("payment_options") or {})
            if details["type"] == "card":
                wants_token = bool(options.get("recurrent")) if consent is None else consent
                if consent is not None or "recurrent" in options:
                    options["recurrent"] = wants_token
                card = details["_card"]
                wire_details = {"type": "card", "card": {"brand": card["brand"], "last4": card["last4"]}}
            else:
                wants_token, card = False, None
                wire_details = {"type": "recurrent", "recurrent": {
                    k: v for k, v in details["recurrent"].items() if k in ("token", "initiator")}}
            payment = {
                "id": self.new_id("pm_", self._session_of), "_state": "awaiting_confirm", "status": "pending",
                "created_at": now, "updated_at": now, "customer": spec["customer"],
                "payment_details": wire_details, "amount_details": spec["amount_details"],
                "payment_options": options or None, "metadata": spec.get("metadata"),
                "_card": card, "_token": details.get("recurrent", {}).get("token"),
                "_initiator": details.get("recurrent", {}).get("initiator", "merchant"),
                "_wants_token": wants_token, "_decline": fx.take_decline(), "_force_3ds": bool(fx.require_3ds),
            }
            session["_payments"].append(payment)
            session["next_action"] = "confirm"
            session["updated_at"] = now
            self.save(tenant, session)
            if session.get("_sync") or self.p.auto_confirm(tenant):
                self._confirm(tenant, session, payment)
            else:
                self.emit(tenant, views.READY_TO_CONFIRM, session)
                self.schedule(self.p.now(tenant) + self.p.confirm_timeout(), tenant, "confirm",
                              session_id=session["id"], payment_id=payment["id"],
                              key=f"bank131:confirm:{payment['id']}")
            return session

    def current_payment(self, session: dict) -> dict | None:
        return session["_payments"][-1] if session["_payments"] else None

    def confirm(self, tenant: str, session: dict) -> dict:
        with self.store.lock:
            payment = self.current_payment(session)
            if payment is None or payment["_state"] != "awaiting_confirm":
                raise Refusal("session_wrong_state", f"session {session['id']} is {session['status']} and has no "
                                                     "payment waiting for confirmation")
            fx = self.p.effects()
            decline = fx.take_decline()
            if decline:
                payment["_decline"] = decline
            if fx.require_3ds:
                payment["_force_3ds"] = True
            self._confirm(tenant, session, payment)
            return session

    def _confirm(self, tenant: str, session: dict, payment: dict) -> None:
        self.sb.timers.cancel(f"bank131:confirm:{payment['id']}")
        now = self.p.now(tenant)
        self.step(PAYMENT, payment, "confirm")
        payment["updated_at"] = session["updated_at"] = ts(now)
        session.pop("next_action", None)
        # a token disabled while the charge waited for confirm: fail it now, without 3-D Secure
        refused = self.token_refusal(tenant, payment)
        if refused:
            self._finish(tenant, session, payment, refused)
            return
        if self.needs_3ds(payment):
            self.step(PAYMENT, payment, "require_action")
            url = f"{self.p.base_url()}/3ds/{payment['id']}"
            payment["customer_interaction"] = {"type": "redirect", "redirect": {
                "url": url, "base_url": url, "method": "GET", "qs": {}}}
            self.save(tenant, session)
            self.emit(tenant, views.ACTION_REQUIRED, session)
            return
        self._finish(tenant, session, payment)

    def needs_3ds(self, payment: dict) -> bool:
        if payment["_force_3ds"] or payment["_initiator"] == "client":
            return True
        if testcards.amount_behaviour(payment["amount_details"]["amount"]) == testcards.THREE_DS:
            return True
        card = payment.get("_card")
        return bool(card and card["behaviour"] == testcards.THREE_DS)

    def outcome(self, payment: dict) -> str | None:
        """The error code the payment fails with, or None for success."""
        if payment.get("_decline"):
            return payment["_decline"]
        by_amount = testcards.amount_behaviour(payment["amount_details"]["amount"])
        if by_amount and by_amount != testcards.THREE_DS:
            return by_amount
        card = payment.get("_card")
        if card and card["behaviour"] not in (None, testcards.THREE_DS):
            return card["behaviour"]
        return None

    def _finish(self, tenant: str, session: dict, payment: dict, code: str | None = None) -> None:
        # the token goes first: a payment on a dead binding is not processed, so never declined
        code = code or self.token_refusal(tenant, payment) or self.outcome(payment)
        now = self.p.now(tenant)
        if code:
            self._fail(tenant, session, payment, "fail", code)
            return
        self.step(PAYMENT, payment, "succeed")
        self.step(SESSION, session, "succeed")
        if payment["_wants_token"]:
            payment["_issued_token"] = self.issue_token(tenant, session, payment, now)
        payment["updated_at"] = payment["finished_at"] = ts(now)
        session["updated_at"] = session["finished_at"] = ts(now)
        payment.pop("customer_interaction", None)
        self.save(tenant, session)
        self.emit(tenant, views.PAYMENT_FINISHED, session)

    def _fail(self, tenant: str, session: dict, payment: dict, event: str, code: str) -> None:
        now = ts(self.p.now(tenant))
        self.step(PAYMENT, payment, event)
        self.step(SESSION, session, "fail" if event != "cancel" else "cancel")
        error = {"code": code, "description": testcards.describe(code)}
        payment["error"] = dict(error)
        session["error"] = dict(error)
        payment["updated_at"] = payment["finished_at"] = now
        session["updated_at"] = session["finished_at"] = now
        session.pop("next_action", None)
        payment.pop("customer_interaction", None)
        self.save(tenant, session)
        self.emit(tenant, views.PAYMENT_FINISHED, session)

    def cancel(self, tenant: str, session: dict) -> dict:
        with self.store.lock:
            payment = self.current_payment(session)
            if session["status"] == "created":
                self.step(SESSION, session, "cancel")
                session["updated_at"] = session["finished_at"] = ts(self.p.now(tenant))
                self.save(tenant, session)
                return session
            if payment is None or not PAYMENT.allows(payment, "cancel"):
                raise Refusal("session_wrong_state", f"session {session['id']} is {session['status']}; only a created "
                                                     "session or one waiting for confirmation can be cancelled")
            self.sb.timers.cancel(f"bank131:confirm:{payment['id']}")
            self._fail(tenant, session, payment, "cancel", "session_cancelled_by_partner")
            return session

    def confirm_timeout(self, tenant: str, session_id: str, payment_id: str) -> None:
        with self.store.lock:
            session = self.store.get("session", session_id, tenant=tenant)
            if session is None:
                return
            payment = next((p for p in session["_payments"] if p["id"] == payment_id), None)
            if payment is None or payment["_state"] != "awaiting_confirm":
                return
            self._fail(tenant, session, payment, "confirm_timeout", "confirm_timeout")

    def three_ds(self, tenant: str, session: dict, payment: dict, passed: bool) -> dict:
        with self.store.lock:
            if payment["_state"] != "awaiting_action":
                raise Refusal("session_wrong_state", f"payment {payment['id']} is not waiting for 3-D Secure")
            if not passed:
                self._fail(tenant, session, payment, "three_ds_fail", "3DS_error")
                return session
            self.step(PAYMENT, payment, "three_ds_pass")
            payment.pop("customer_interaction", None)
            self._finish(tenant, session, payment)
            return session

    # -- recurrent tokens --------------------------------------------------------------------
    def issue_token(self, tenant: str, session: dict, payment: dict, now: datetime) -> str:
        card = payment["_card"]
        while True:
            token = self.sb.ids.token(64, "0123456789abcdef")
            if self.store.tenant_of("recurrent_token", token) is None:
                break
        # finished_at: informational only (never enforced) — the end of the card's expiry month
        year, month = 2000 + int(card["expiration_year"]), int(card["expiration_month"])
        end = datetime(year, month, calendar.monthrange(year, month)[1], 23, 59, 59, tzinfo=timezone.utc)
        rec = {"token": token, "created_at": ts(now), "finished_at": ts(end), "is_active": True,
               "_card": card, "_payment_id": payment["id"], "_session_id": session["id"]}
        self.store.put("recurrent_token", token, rec, tenant)
        return token

    def get_token(self, tenant: str, token: str) -> dict:
        rec = self.store.get("recurrent_token", token, tenant=tenant)
        if rec is None:
            raise Refusal("invalid_request", "recurrent token not found")
        self.apply_token_effect(rec, tenant)
        return rec

    def disable_token(self, tenant: str, token: str) -> dict:
        with self.store.lock:
            rec = self.get_token(tenant, token)
            if rec["is_active"] or rec["finished_at"] != DISABLED_FINISHED_AT:
                rec["is_active"] = False
                rec["finished_at"] = DISABLED_FINISHED_AT
                rec["_disabled_at"] = ts(self.p.now(tenant))
                self.store.put("recurrent_token", token, rec, tenant)
            return rec

    # -- widget ------------------------------------------------------------------------------
    def issue_public_token(self, tenant: str, widget: dict) -> str:
        with self.store.lock:
            session = self.get_session(widget["session_id"], tenant)
            if session["status"] != "created":
                raise Refusal("session_wrong_state", f"session {session['id']} is {session['status']}; the payment "
                                                     "widget needs a created session")
            token = self.sb.ids.token(64, "0123456789abcdef")
            self.store.put("public_token", token, {
                "token": token, "session_id": session["id"],
                "show_recurrent_checkbox": bool(widget.get("show_recurrent_checkbox", False)),
                "success_return_url": widget.get("success_return_url"),
                "failure_return_url": widget.get("failure_return_url"),
                "created_at": ts(self.p.now(tenant))}, tenant)
            return token

    def widget(self, public_token: str):
        """(tenant, widget record, session) for a public token, or Nones."""
        rec = self.store.get("public_token", public_token)
        if rec is None:
            return None, None, None
        tenant = self.store.tenant_of("public_token", public_token)
        return tenant, rec, self.store.get("session", rec["session_id"])

    def widget_pay(self, tenant: str, session: dict, show_checkbox: bool, bank_card: dict,
                   ticked: bool) -> dict:
        """The payer submitted the widget form: start the payment with the card they typed.

        The checkbox decides when it was shown (an unticked box is a refused consent, even over a
        `recurrent: true` sent with the session); without it the session's payment_options decide."""
        with self.store.lock:
            if session["status"] != "created":
                raise Refusal("session_wrong_state", f"session {session['id']} is {session['status']}")
            draft = {"payment_details": {"type": "card", "_card": self.card_profile(bank_card, tenant)}}
            if not (session["_draft"].get("customer") or {}).get("reference"):
                draft["customer"] = {"reference": f"widget-{session['id']}"}
            return self.start_payment(tenant, session, draft, consent=ticked if show_checkbox else None)

    # -- refunds -----------------------------------------------------------------------------
    def refund(self, tenant: str, session: dict, amount_details: dict | None, metadata) -> dict:
        with self.store.lock:
            payment = self.current_payment(session)
            if session["status"] != "accepted" or payment is None or payment["_state"] != "succeeded":
                raise Refusal("session_wrong_state", f"session {session['id']} is {session['status']}; only an "
                                                     "accepted session with a succeeded payment can be refunded")
            paid = payment["amount_details"]
            taken = sum(r["amount_details"]["amount"] for r in payment.get("refunds") or []
                        if r["status"] in ("in_progress", "accepted"))
            remaining = paid["amount"] - taken
            amount = amount_details["amount"] if amount_details else remaining
            if amount_details and amount_details["currency"] != paid["currency"]:
                raise Refusal("invalid_request", f"amount_details.currency: must be {paid['currency']}")
            if remaining <= 0:
                raise Refusal("refund_amount_too_large", f"session {session['id']} is refunded in full: nothing is "
                                                         "left to refund")
            if amount > remaining:
                raise Refusal("refund_amount_too_large", f"refund amount {amount} exceeds the refundable {remaining}")
            now = self.p.now(tenant)
            refund = {"id": self.new_id("rf_", partial(self.store.tenant_of, "refund")), "status": "in_progress",
                      "amount_details": {"amount": amount, "currency": paid["currency"]},
                      "created_at": ts(now)}
            if metadata is not None:
                refund["metadata"] = metadata
            payment.setdefault("refunds", []).append(refund)
            session["updated_at"] = ts(now)
            self.store.put("refund", refund["id"], {"session_id": session["id"]}, tenant)
            self.save(tenant, session)
            # the bank answers at once and reports the result later, in payment_refunded
            self.schedule(now, tenant, "refund", session_id=session["id"], refund_id=refund["id"],
                          key=f"bank131:refund:{refund['id']}")
            return session

    def settle_refund(self, tenant: str, session_id: str, refund_id: str) -> None:
        with self.store.lock:
            session = self.store.get("session", session_id, tenant=tenant)
            if session is None:
                return
            payment = self.current_payment(session)
            refund = next((r for r in payment.get("refunds") or [] if r["id"] == refund_id), None)
            if refund is None or refund["status"] != "in_progress":
                return
            self.step(REFUND, refund, "accept")
            refund["finished_at"] = ts(self.p.now(tenant))
            session["updated_at"] = refund["finished_at"]
            self.save(tenant, session)
            self.emit(tenant, views.PAYMENT_REFUNDED, session)
