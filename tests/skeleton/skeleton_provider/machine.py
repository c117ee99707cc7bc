"""One payment object: created pending, authorized on the hosted page or declined, or expired by
the clock after ``EXPIRES_AFTER``."""
from __future__ import annotations

from datetime import timedelta

from simulator.providers.shape import Machine as BaseMachine, Refusal, Transitions

from . import testcards, views

PAYMENT = Transitions("payment", "pending", {
    ("pending", "authorize"): "authorized",
    ("pending", "decline"): "declined",
    ("pending", "expire"): "expired",
}, message="payment {id} is {state}; cannot {event}")

EXPIRES_AFTER = timedelta(minutes=15)


class Machine(BaseMachine):
    tables = (PAYMENT,)
    timer_handlers = {"expire": "expire"}

    def create(self, tenant: str, data: dict) -> dict:
        now = self.p.now(tenant)
        pay = {"id": self.sb.ids.prefixed("pay_", 16), "status": PAYMENT.initial, "amount": data["amount"],
               "currency": data["currency"], "webhook_url": data.get("webhook_url"), "created_at": now}
        self.store.put("payment", pay["id"], pay, tenant)
        self.schedule(now + EXPIRES_AFTER, tenant, "expire", payment_id=pay["id"],
                      key=f"skeleton:expire:{pay['id']}")
        return pay

    def get(self, tenant: str | None, payment_id: str) -> dict:
        pay = self.store.get("payment", payment_id, tenant=tenant)
        if pay is None:
            raise Refusal("not_found")
        return pay

    def pay(self, payment_id: str, outcome: str) -> dict:
        """What the customer does on the hosted page; declines come from a scenario, the amount or
        the customer."""
        with self.store.lock:
            pay = self.get(None, payment_id)
            tenant = self.store.tenant_of("payment", payment_id)
            code = (self.p.effects().take_decline() or testcards.decline_for_amount(pay["amount"])
                    or ("do_not_honor" if outcome == "decline" else None))
            PAYMENT.move(pay, "decline" if code else "authorize")
            pay["decline_code"] = code
            self._save_and_notify(tenant, pay)
        if code:
            raise Refusal("declined", decline_code=code)
        return pay

    def expire(self, tenant: str, payment_id: str) -> None:
        with self.store.lock:
            pay = self.store.get("payment", payment_id, tenant=tenant)
            if pay is not None and PAYMENT.allows(pay, "expire"):
                PAYMENT.move(pay, "expire")
                self._save_and_notify(tenant, pay)

    def _save_and_notify(self, tenant: str, pay: dict) -> None:
        self.store.put("payment", pay["id"], pay, tenant)
        event = f"payment.{pay['status']}"
        self.p.emit(tenant, event, views.webhook(event, pay), pay["webhook_url"], subject=pay["id"])
