"""Status machines: session, payment, refund; 3-D Secure; test cards and amounts; sync; refunds."""
import pytest
import requests

from bank131_client import bank, card, first_payment, token_charge  # noqa: F401
from simulator.providers.bank131 import machine, testcards


def test_transition_tables_are_explicit_and_closed():
    assert machine.SESSION.target("created", "start") == "in_progress"
    assert machine.SESSION.target("in_progress", "succeed") == "accepted"
    assert machine.SESSION.target("in_progress", "cancel") == "cancelled"
    assert machine.SESSION.target("accepted", "cancel") is None
    assert machine.PAYMENT.target("awaiting_confirm", "confirm") == "in_progress"
    assert {machine.WIRE[s] for s in ("awaiting_confirm", "awaiting_action")} == {"pending"}
    assert machine.PAYMENT.final("succeeded") and machine.PAYMENT.final("failed")   # finals are final


def test_ready_to_confirm_confirm_payment_finished_sequence(bank):
    resp = bank.client.init_payment(first_payment(recurrent=None))
    sid = resp.json()["session"]["id"]
    assert bank.client.status(sid).json()["session"]["acquiring_payments"][0]["status"] == "pending"
    assert [h["type"] for h in bank.webhooks()] == ["ready_to_confirm"]
    confirmed = bank.client.confirm(sid).json()["session"]
    assert confirmed["status"] == "accepted" and "next_action" not in confirmed
    assert confirmed["finished_at"] == confirmed["acquiring_payments"][0]["finished_at"]
    assert [h["type"] for h in bank.webhooks()] == ["ready_to_confirm", "payment_finished"]
    again = bank.client.confirm(sid)
    assert again.status_code == 400 and again.json()["error"]["code"] == "session_wrong_state"
    assert bank.client.session("cancel", {"session_id": sid}).json()["error"]["code"] == "session_wrong_state"


def test_3ds_card_action_required_and_hosted_page(bank):
    body = first_payment(details=card(testcards.THREE_DS_CARD))
    body["payment_options"]["return_url"] = "https://shop.example/back"
    sid, session = bank.pay_and_confirm(body)
    payment = session["acquiring_payments"][0]
    assert session["status"] == "in_progress" and payment["status"] == "pending"
    redirect = payment["customer_interaction"]["redirect"]
    assert payment["customer_interaction"]["type"] == "redirect" and redirect["method"] == "GET"
    assert redirect["url"].startswith(bank.server.url + "/bank131/3ds/pm_")
    assert bank.last_webhook("action_required")["session"]["acquiring_payments"][0]["customer_interaction"]
    page = requests.get(redirect["url"], timeout=10)
    assert page.status_code == 200 and 'name="result" value="pass"' in page.text
    back = requests.post(redirect["url"], data={"result": "pass"}, allow_redirects=False, timeout=10)
    assert back.status_code == 303 and back.headers["Location"] == "https://shop.example/back"
    finished = bank.last_webhook("payment_finished")["session"]
    assert finished["status"] == "accepted"
    assert finished["acquiring_payments"][0]["recurrent"]["is_active"] is True
    assert "customer_interaction" not in finished["acquiring_payments"][0]


def test_3ds_failed(bank):
    sid, session = bank.pay_and_confirm(first_payment(details=card(testcards.THREE_DS_CARD)))
    url = session["acquiring_payments"][0]["customer_interaction"]["redirect"]["url"]
    page = requests.post(url, data={"result": "fail"}, timeout=10)
    assert "3DS_error" in page.text
    finished = bank.last_webhook("payment_finished")["session"]
    assert finished["status"] == "cancelled" and finished["error"]["code"] == "3DS_error"
    assert "recurrent" not in finished["acquiring_payments"][0]


@pytest.mark.parametrize("number,code", [
    ("4000000000000002", "declined_by_issuer_bank"),
    ("4000000000009995", "insufficient_funds"),
    ("4000000000000069", "bank_card_expired"),
    ("4000000000000119", "provider_timeout"),
    ("4242424242424241", "card_number_does_not_exist"),
])
def test_decline_cards(bank, number, code):
    sid, session = bank.pay_and_confirm(first_payment(details=card(number)))
    payment = session["acquiring_payments"][0]
    assert session["status"] == "cancelled" and payment["status"] == "failed"
    assert payment["error"]["code"] == code and session["error"]["code"] == code
    assert "recurrent" not in payment   # only a successful payment yields a token


def test_magic_amounts_on_token_charges(bank):
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    sid, session = bank.pay_and_confirm(token_charge(token, amount=1051))
    assert session["acquiring_payments"][0]["error"]["code"] == "insufficient_funds"
    # a declined charge does not switch the token off: the next one goes through
    assert bank.client.token_info(token).json()["info"]["is_active"] is True
    sid, session = bank.pay_and_confirm(token_charge(token, amount=1003))
    assert session["acquiring_payments"][0]["customer_interaction"]["type"] == "redirect"
    sid, session = bank.pay_and_confirm(token_charge(token, amount=1004))
    assert session["status"] == "accepted"


def test_token_disabled_during_3ds_fails_the_charge(bank):
    """A client-initiated token charge waits for the payer's 3-D Secure; the merchant disables the
    token meanwhile: passing 3-D Secure must not take money with it."""
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    sid, session = bank.pay_and_confirm(token_charge(token, initiator="client"))
    url = session["acquiring_payments"][0]["customer_interaction"]["redirect"]["url"]
    assert bank.client.disable(token).json()["recurrent"]["is_active"] is False
    page = requests.post(url, data={"result": "pass"}, timeout=10)
    assert page.status_code == 200 and "binding_is_deactivated" in page.text
    session = bank.client.status(sid).json()["session"]
    payment = session["acquiring_payments"][0]
    assert payment["status"] == "failed" and payment["error"]["code"] == "binding_is_deactivated"
    assert session["status"] == "cancelled" and "customer_interaction" not in payment
    assert bank.last_webhook("payment_finished")["session"] == session


def test_cancel_at_ready_to_confirm(bank):
    sid = bank.client.init_payment(first_payment()).json()["session"]["id"]
    resp = bank.client.session("cancel", {"session_id": sid})
    session = resp.json()["session"]
    assert session["status"] == "cancelled"
    assert session["acquiring_payments"][0]["status"] == "failed"
    assert session["acquiring_payments"][0]["error"]["code"] == "session_cancelled_by_partner"
    assert bank.last_webhook("payment_finished")["session"]["status"] == "cancelled"


def test_cancel_created_session_and_start_after_cancel(bank):
    sid = bank.client.session("create", {}).json()["session"]["id"]
    assert bank.client.session("cancel", {"session_id": sid}).json()["session"]["status"] == "cancelled"
    resp = bank.client.session("start/payment", {"session_id": sid, **first_payment()})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "session_wrong_state"


def test_confirm_timeout(bank):
    sid = bank.client.init_payment(first_payment()).json()["session"]["id"]
    bank.server.advance("PT59M")
    assert bank.client.status(sid).json()["session"]["status"] == "in_progress"
    bank.server.advance("PT1M")
    session = bank.client.status(sid).json()["session"]
    assert session["status"] == "cancelled" and session["error"]["code"] == "confirm_timeout"
    assert bank.last_webhook("payment_finished")["session"]["id"] == sid


def test_auto_confirm_project(bank):
    bank.server.admin("PUT", "/config", json={"providers": {"bank131": {"projects": {
        "my-project": {"auto_confirm": True}}}}})
    session = bank.client.init_payment(first_payment()).json()["session"]
    assert session["status"] == "accepted"
    assert [h["type"] for h in bank.webhooks()] == ["payment_finished"]


def test_init_payment_sync(bank):
    body = first_payment()
    body["payment_options"]["return_url"] = "https://shop.example/r"
    resp = bank.client.session("init/payment/sync", body)
    session = resp.json()["session"]
    assert session["status"] == "accepted"
    assert session["acquiring_payments"][0]["recurrent"]["is_active"] is True
    body["payment_details"] = card(testcards.THREE_DS_CARD)
    pending = bank.client.session("init/payment/sync", body).json()["session"]["acquiring_payments"][0]
    assert pending["status"] == "pending" and pending["customer_interaction"]["redirect"]["url"]
    assert bank.webhooks() == []   # sync sends no webhooks
    del body["payment_options"]["return_url"]
    resp = bank.client.session("init/payment/sync", body)
    assert resp.status_code == 400 and "return_url" in resp.json()["error"]["description"]


def test_refunds(bank):
    sid, session = bank.pay_and_confirm(first_payment())
    resp = bank.client.session("refund", {"session_id": sid, "amount_details": {"amount": 4000, "currency": "rub"}})
    refund = resp.json()["session"]["acquiring_payments"][0]["refunds"][0]
    assert refund["id"].startswith("rf_") and refund["status"] == "in_progress"
    hook = bank.last_webhook("payment_refunded")["session"]
    assert hook["status"] == "accepted" and hook["acquiring_payments"][0]["refunds"][0]["status"] == "accepted"
    too_much = bank.client.session("refund", {"session_id": sid, "amount_details": {"amount": 6001, "currency": "rub"}})
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "refund_amount_too_large"
    assert too_much.json()["error"]["description"] == "refund amount 6001 exceeds the refundable 6000"
    rest = bank.client.session("refund", {"session_id": sid}).json()["session"]
    assert rest["acquiring_payments"][0]["refunds"][1]["amount_details"]["amount"] == 6000
    again = bank.client.session("refund", {"session_id": sid})
    assert again.json()["error"] == {"code": "refund_amount_too_large",
                                     "description": f"session {sid} is refunded in full: nothing is left to refund"}
    pending = bank.client.init_payment(first_payment()).json()["session"]["id"]
    assert bank.client.session("refund", {"session_id": pending}).json()["error"]["code"] == "session_wrong_state"


def test_capture_has_nothing_to_capture(bank):
    sid = bank.client.init_payment(first_payment()).json()["session"]["id"]
    resp = bank.client.session("capture", {"session_id": sid})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "session_wrong_state"


def test_decline_code_valid():
    from simulator.providers.bank131 import Bank131
    p = Bank131.__new__(Bank131)
    assert p.decline_code_valid("insufficient_funds") and p.decline_code_valid("3DS_error")
    assert not p.decline_code_valid("51") and not p.decline_code_valid("session_cancelled_by_partner")
