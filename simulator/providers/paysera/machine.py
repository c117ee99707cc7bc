"""Payment requests, tokens and notifications for Paysera Checkout.

The Machine owns Paysera's business rules: creating payment requests (and replacing unpaid ones
with the same ``unique_identifier``), token charges, capture and cancel, what the payer does on
the hosted page, token issue, expiry on ``valid_until`` and notifications until marked read.
Every status change goes through ``PAYMENT_REQUEST``; an illegal one is Paysera's 409
``invalid_state``.
"""
from __future__ import annotations

from datetime import datetime, timezone

from ...core import cards
from ..shape import Machine as BaseMachine, Refusal, Transitions
from . import testcards, views

PAYMENT_REQUEST = Transitions("payment request", "new", {
    ("new", "authorize"): "authorized",                 # token charge or hosted card payment
    ("authorized", "capture"): "captured",              # immediately after authorize unless two-step
    ("new", "cancel"): "canceled",
    ("authorized", "cancel"): "canceled",
    ("captured", "refund_on_capture"): "canceled",      # card verification: money returned at once
    ("new", "expire"): "canceled",                      # valid_until passed
    ("new", "replace"): "canceled",                     # same unique_identifier created again
}, message="Payment request is {state}; cannot {event}")

URLSAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
KIND_PR, KIND_TOKEN, KIND_NOTIFICATION = "payment_request", "token", "notification"


def unix(when: datetime) -> int:
    return int(when.timestamp())


def _card_digits(value) -> str | None:
    """An expiry or CVV field's 1-4 ASCII digits, or None. int() and isdigit() alone also take
    fullwidth, Arabic-Indic or superscript digits, "+12" and "1_2", which no card form does; only
    the spaces a browser's text field may carry around them are dropped."""
    text = str(value).strip(" \t")
    return text if len(text) <= 4 and text.isascii() and text.isdigit() else None


def _listed(obj: dict) -> bool:
    """The index every object is in: the tenant's whole list, paged and searched for a cursor like
    a filter's bucket (the store's listing keeps the order but not an object's place in it)."""
    return True


LISTED = "_listed"


class Machine(BaseMachine):
    tables = (PAYMENT_REQUEST,)
    # every list filter is an index (None: the field's own value). A query naming several filters
    # reads the smallest of their buckets and checks the others' values in the index, so it scans
    # that bucket: no index holds a combination (one per combination would cost every object an
    # entry more for queries few clients make), and _metadata.total must be exact
    indexes = {KIND_PR: {"unique_identifier": None, "status": None, "business_id": None, "method_key": None,
                         LISTED: _listed},
               KIND_NOTIFICATION: {"status": None, LISTED: _listed}}
    timer_handlers = {"expire": "_expire"}

    def _move(self, pr: dict, event: str, now: datetime) -> None:
        target = PAYMENT_REQUEST.move(pr, event)
        pr[f"{target}_at"] = unix(now)

    def get(self, pr_id: str, tenant: str | None) -> dict:
        pr = self.store.get(KIND_PR, pr_id, tenant=tenant)
        if pr is None:
            raise Refusal("not_found")
        return pr

    def listing(self, kind: str, tenant: str, filters: dict[str, str], offset: int, limit: int,
                newest_first: bool, after: str | None, before: str | None) -> tuple[int, list[dict]]:
        """How many of the tenant's objects of ``kind`` hold every filter's value (after ``after``,
        before ``before``), and one page of them, from the indexes: the page costs the page."""
        found = self.store.select(kind, tenant, filters or {LISTED: True}, offset, limit, newest_first, after, before)
        if found is None:
            raise Refusal("invalid_cursor")
        return found

    # -- create ------------------------------------------------------------------------------
    def create(self, tenant: str, data: dict, pay_base: str) -> dict:
        now = self.p.now(tenant)
        price = data["price"]
        expires = None
        if data.get("valid_until") is not None:
            if data["valid_until"] <= unix(now):
                raise Refusal("validation", [("valid_until", "valid_until must be in the future")])
            # converted before anything is written: should it raise, no predecessor is replaced
            # and no orphan request stays behind
            expires = datetime.fromtimestamp(data["valid_until"], timezone.utc)
        params = dict(data.get("parameters") or {})
        if data.get("refund_on_capture") is not None and "refund_on_capture" not in params:
            params["refund_on_capture"] = data["refund_on_capture"]
        pr_id = "PRA" + self.sb.ids.token(29, URLSAFE)
        pr = {
            "id": pr_id, "status": "new",
            "_amount": price["minor"], "_currency": price["currency"], "_form": price["amount"][0],
            "_paid": None,
            "authorization_url": f"{pay_base}/checkout/pay/{pr_id}",
            "created_at": unix(now),
        }
        for key in ("business_id", "order_id", "unique_identifier", "valid_until", "locale", "description",
                    "method_country", "method_key", "payer", "information_request", "card_data_restriction",
                    "accept_url", "cancel_url", "callback_url", "affiliate_key", "token_strategy"):
            if data.get(key) is not None:
                pr[key] = data[key]
        if params:
            pr["parameters"] = params
        store = self.store
        with store.lock:
            uid = data.get("unique_identifier")
            if uid:
                same = store.where(KIND_PR, tenant, "unique_identifier", uid)
                for old in same:   # every refusal before the first replacement is written
                    if old["status"] in ("captured", "authorized") or old.get("issued_token"):
                        raise Refusal("payment_request_not_unique")
                for old in [o for o in same if o["status"] == "new"]:
                    self._move(old, "replace", now)
                    store.put(KIND_PR, old["id"], old, tenant)
                    self.notify(tenant, old, views.CANCELED)
            store.put(KIND_PR, pr_id, pr, tenant)
        if expires is not None:
            self.schedule(expires, tenant, "expire", pr_id=pr_id, key=f"paysera:expire:{pr_id}")
        return pr

    def _expire(self, tenant: str, pr_id: str) -> None:
        store = self.store
        with store.lock:
            pr = store.get(KIND_PR, pr_id, tenant=tenant)
            if pr is None or pr["status"] != "new":
                return
            self._move(pr, "expire", self.p.now(tenant))
            store.put(KIND_PR, pr_id, pr, tenant)
            self.notify(tenant, pr, views.CANCELED)

    # -- token charge ------------------------------------------------------------------------
    @staticmethod
    def token_error(message: str) -> Refusal:
        return Refusal("validation", [("token", message)])

    def authorize(self, tenant: str, pr_id: str, token_value: str) -> dict:
        store = self.store
        fx = self.p.effects()
        with store.lock:
            pr = self.get(pr_id, tenant)
            if not PAYMENT_REQUEST.allows(pr, "authorize"):
                raise PAYMENT_REQUEST.refuse(pr, "authorize")
            now = self.p.now(tenant)
            token = store.get(KIND_TOKEN, token_value, tenant=tenant)
            if token is None:
                raise self.token_error("Token is invalid")
            if fx.token in ("inactive", "expired") and token["status"] == "active":
                token["status"] = "revoked" if fx.token == "inactive" else "expired"
                store.put(KIND_TOKEN, token_value, token, tenant)
            if token["status"] == "active" and cards.expired(token["exp_month"], token["exp_year"], now):
                token["status"] = "expired"
                store.put(KIND_TOKEN, token_value, token, tenant)
            if token["status"] == "revoked":
                raise self.token_error("Token is revoked")
            if token["status"] == "expired":
                raise self.token_error("Token has expired")
            reason = fx.take_decline() or token.get("decline") or testcards.decline_for_amount(pr["_amount"])
            if reason:
                raise Refusal("declined", reason=reason)
            self._move(pr, "authorize", now)
            pr["_token"] = token_value
            payer = dict(pr.get("payer") or {})
            for key, value in (token.get("payer") or {}).items():
                payer.setdefault(key, value)
            pr["payer"] = payer
            if self.p.settings.get("two_step"):
                event = views.AUTHORIZED
            else:
                self._move(pr, "capture", now)
                pr["_paid"] = pr["_amount"]
                event = views.CAPTURED
            store.put(KIND_PR, pr_id, pr, tenant)
            self.notify(tenant, pr, event)
            return pr

    def capture(self, tenant: str, pr_id: str, amount: dict | None) -> dict:
        store = self.store
        with store.lock:
            pr = self.get(pr_id, tenant)
            if not PAYMENT_REQUEST.allows(pr, "capture"):
                raise PAYMENT_REQUEST.refuse(pr, "capture")
            paid = pr["_amount"]
            if amount is not None:
                if amount["currency"] != pr["_currency"]:
                    raise Refusal("validation", [("capture_amount.currency",
                                                  "Capture currency must match the payment request currency")])
                if amount["minor"] > pr["_amount"]:
                    raise Refusal("validation", [("capture_amount.amount",
                                                  "Capture amount cannot exceed the authorized amount")])
                paid = amount["minor"]
            self._move(pr, "capture", self.p.now(tenant))
            pr["_paid"] = paid
            store.put(KIND_PR, pr_id, pr, tenant)
            self.notify(tenant, pr, views.CAPTURED)
            return pr

    def cancel(self, tenant: str, pr_id: str) -> dict:
        store = self.store
        with store.lock:
            pr = self.get(pr_id, tenant)
            self._move(pr, "cancel", self.p.now(tenant))
            store.put(KIND_PR, pr_id, pr, tenant)
            self.notify(tenant, pr, views.CANCELED)
            return pr

    # -- hosted payment ----------------------------------------------------------------------
    def pay(self, pr_id: str, outcome: str, card: dict, consent: bool) -> dict:
        """What the payer does on the hosted page. Returns {"result": paid|declined|canceled, ...}.

        Raises invalid_state when the request no longer waits for the payer; card input errors
        come back as {"result": "invalid", "errors": {...}} so the page can show them.
        """
        store = self.store
        with store.lock:
            pr = self.get(pr_id, None)
            tenant = store.tenant_of(KIND_PR, pr_id)
            if pr["status"] != "new":
                raise Refusal("invalid_state", f"Payment request is {pr['status']}")
            if outcome == "cancel":
                # the payer may come back and pay: the request stays new
                return {"result": "canceled", "redirect": pr.get("cancel_url"), "payment_request": pr}
            errors, number, exp_month, exp_year = self._read_card(card)
            if errors:
                return {"result": "invalid", "errors": errors, "payment_request": pr}
            now = self.p.now(tenant)
            reason = (self.p.effects().take_decline() or testcards.decline_for_card(number)
                      or ("card_expired" if cards.expired(exp_month, exp_year, now) else None)
                      or testcards.decline_for_amount(pr["_amount"]))
            if outcome == "decline" and not reason:
                reason = "do_not_honor"
            if reason:
                return {"result": "declined", "reason": reason, "payment_request": pr}
            self._move(pr, "authorize", now)
            self._move(pr, "capture", now)
            pr["_paid"] = pr["_amount"]
            holder = str(card.get("holder_name") or card.get("name") or "John Doe").strip() or "John Doe"
            name, _, surname = holder.partition(" ")
            payer = dict(pr.get("payer") or {})
            payer.setdefault("name", name)
            if surname:
                payer.setdefault("surname", surname)
            pr["payer"] = payer
            strategy = pr.get("token_strategy")
            if strategy == "required" or (strategy == "optional" and consent):
                pr["issued_token"] = self._issue_token(tenant, pr, number, exp_month, exp_year, payer, now)
            event = views.CAPTURED
            if (pr.get("parameters") or {}).get("refund_on_capture"):
                self._move(pr, "refund_on_capture", now)
                pr["_paid"] = None
                pr["_refunded"] = pr["_amount"]
                event = views.CHECKOUT_TOKEN_ISSUED if pr.get("issued_token") else views.CANCELED
            store.put(KIND_PR, pr_id, pr, tenant)
            self.notify(tenant, pr, event)
            return {"result": "paid", "redirect": pr.get("accept_url"), "payment_request": pr}

    @staticmethod
    def _read_card(card: dict):
        errors = {}
        number = cards.digits_only(card.get("number") or "")
        if not cards.luhn_ok(number):
            errors["number"] = "Card number is invalid"
        month = _card_digits(card.get("exp_month", ""))
        exp_month = int(month) if month is not None else 0
        if not 1 <= exp_month <= 12:
            exp_month = 0
            errors["exp_month"] = "Expiry month is invalid"
        year = _card_digits(card.get("exp_year", ""))
        exp_year = int(year) if year is not None else 0
        if year is not None and exp_year < 100:
            exp_year += 2000
        if not 2000 <= exp_year <= 2099:
            exp_year = 0
            errors["exp_year"] = "Expiry year is invalid"
        cvv = _card_digits(card.get("cvv", ""))
        if cvv is None or not 3 <= len(cvv) <= 4:
            errors["cvv"] = "CVV is invalid"
        return errors, number, exp_month, exp_year

    def _issue_token(self, tenant, pr, number, exp_month, exp_year, payer, now) -> str:
        value = self.sb.ids.token(27, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        token = {
            "token": value, "status": "active", "created_at": unix(now), "payment_request_id": pr["id"],
            "card": {"bin": number[:6], "last4": number[-4:], "scheme": cards.scheme(number),
                     "fingerprint": cards.fingerprint(number, tenant)},
            "exp_month": exp_month, "exp_year": exp_year,
            "payer": {k: payer[k] for k in ("name", "surname") if payer.get(k)},
            "decline": testcards.TOKEN_DECLINE_CARDS.get(number),
        }
        self.store.put(KIND_TOKEN, value, token, tenant)
        return value

    # -- notifications -----------------------------------------------------------------------
    def notify(self, tenant: str, pr: dict, event: str) -> dict | None:
        url = pr.get("callback_url")
        now = self.p.now(tenant)
        nid = self.sb.ids.token(32, URLSAFE)
        note = views.notification(nid, event, views.payment_request(pr), unix(now))
        note["_deliveries"] = []
        self.store.put(KIND_NOTIFICATION, nid, note, tenant)
        if url:
            mode = self.p.settings.get("callback_notification_id", "both")
            target = views.callback_url(url, nid) if mode in ("both", "query") else url
            payload = views.callback_body(nid) if mode in ("both", "body") else b""
            # re-sent until the merchant marks it read, whatever the callback answered
            deliveries = self.p.emit(tenant, event, payload, target, subject=pr["id"], event_id=nid,
                                     settle_on_success=False)
            note["_deliveries"] = [d["id"] for d in deliveries]
            self.store.put(KIND_NOTIFICATION, nid, note, tenant)
        return note

    def get_notification(self, tenant: str, nid: str) -> dict:
        note = self.store.get(KIND_NOTIFICATION, nid, tenant=tenant)
        if note is None:
            raise Refusal("not_found")
        return note

    def mark_read(self, tenant: str, nid: str) -> dict:
        with self.store.lock:
            note = self.get_notification(tenant, nid)
            note["status"] = "read"
            self.store.put(KIND_NOTIFICATION, nid, note, tenant)
            for delivery_id in note.get("_deliveries", []):
                self.sb.outbox.settle(delivery_id)
            return note
