"""The seed guide's recurring flow, end to end, with a signed client and verified webhooks."""
import pytest

from bank131_client import bank, first_payment, token_charge, verify  # noqa: F401

# every response of this flow is checked against the provider's OpenAPI document
pytestmark = [pytest.mark.xdist_group("contract-bank131"), pytest.mark.usefixtures("contract_checked")]


def test_seed_flow_card_with_recurrent_true(bank):
    c = bank.client
    # Step 1: a payment with an instruction to create a recurrent token
    resp = c.init_payment(first_payment(recurrent=True))
    assert resp.status_code == 200, resp.text
    session = resp.json()["session"]
    assert resp.json()["status"] == "ok"
    assert session["id"].startswith("ps_") and session["status"] == "in_progress"
    assert session["next_action"] == "confirm"
    payment = session["acquiring_payments"][0]
    assert payment["id"].startswith("pm_") and payment["status"] == "pending"
    assert payment["payment_details"] == {"type": "card", "card": {"brand": "visa", "last4": "4242"}}
    assert "4242424242424242" not in resp.text

    ready = bank.last_webhook("ready_to_confirm")
    assert ready["session"]["id"] == session["id"] and ready["session"]["next_action"] == "confirm"

    resp = c.confirm(session["id"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["session"]["status"] == "accepted"

    # Step 2: save the token from payment_finished (signature checked with the bank's public key)
    finished = bank.last_webhook("payment_finished")
    fin_payment = finished["session"]["acquiring_payments"][0]
    assert finished["session"]["status"] == "accepted" and fin_payment["status"] == "succeeded"
    assert fin_payment["payment_options"] == {"recurrent": True}
    recurrent = fin_payment["recurrent"]
    assert set(recurrent) == {"token", "created_at", "finished_at", "is_active"}
    assert recurrent["is_active"] is True and len(recurrent["token"]) == 64
    token = recurrent["token"]
    # the card expired in 01/22: finished_at is informational, never enforced
    assert recurrent["finished_at"].startswith("2022-01-31")

    info = c.token_info(token).json()
    assert info == {"status": "ok", "info": {"type": "recurrent_token", **recurrent}}

    # Step 3: a recurring charge with the token, no user interaction
    bank.receiver.requests.clear()
    sid, confirmed = bank.pay_and_confirm(token_charge(token, amount=25000))
    assert confirmed["status"] == "accepted"
    charge = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]
    assert charge["status"] == "succeeded" and "customer_interaction" not in charge
    assert charge["payment_details"] == {"type": "recurrent", "recurrent": {"token": token}}
    assert charge["amount_details"] == {"amount": 25000, "currency": "rub"}
    assert "recurrent" not in charge   # a charge with a token mints no new token
    assert [h["type"] for h in bank.webhooks()] == ["ready_to_confirm", "payment_finished"]

    # disable: is_active false, the year-2000 finished_at
    resp = c.disable(token)
    assert resp.status_code == 200
    assert resp.json()["recurrent"] == {"token": token, "created_at": recurrent["created_at"],
                                        "finished_at": "2000-01-01T00:00:00.000000Z", "is_active": False}
    assert c.token_info(token).json()["info"]["is_active"] is False
    assert c.disable(token).json() == resp.json()   # disabling twice changes nothing

    # the next charge is not processed
    sessions_before = len(bank.server.sandbox.store.list("bank131", "session", "my-project"))
    resp = c.init_payment(token_charge(token))
    assert resp.status_code == 400
    assert resp.json()["status"] == "error"
    assert resp.json()["error"]["code"] == "binding_is_deactivated"
    assert len(bank.server.sandbox.store.list("bank131", "session", "my-project")) == sessions_before


def test_token_finished_at_in_the_past_is_not_enforced(bank):
    bank.pay_and_confirm(first_payment(recurrent=True))
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    bank.server.advance("P3650D")   # ten years later, long past finished_at
    sid, session = bank.pay_and_confirm(token_charge(token))
    assert session["status"] == "accepted"


def test_no_recurrent_option_no_token(bank):
    for recurrent in (None, False):
        bank.receiver.requests.clear()
        bank.pay_and_confirm(first_payment(recurrent=recurrent))
        payment = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]
        assert payment["status"] == "succeeded" and "recurrent" not in payment


def test_v2_session_paths_and_payment_list(bank):
    c = bank.client
    resp = c.session("init/payment", first_payment(), version=2)
    assert resp.status_code == 200, resp.text
    session = resp.json()["session"]
    assert session["payment_list"] == session["acquiring_payments"]
    resp = c.session("confirm", {"session_id": session["id"]}, version=2)
    assert resp.json()["session"]["status"] == "accepted"
    # a v2 session read through v1 shows only acquiring_payments
    v1 = c.session("status", {"session_id": session["id"]}, version=1).json()["session"]
    assert "payment_list" not in v1 and v1["acquiring_payments"][0]["status"] == "succeeded"
    assert bank.last_webhook("payment_finished")["session"]["payment_list"][0]["recurrent"]["is_active"]


def test_create_then_start_payment_with_token(bank):
    """Later charges may also go session/create + session/start/payment."""
    c = bank.client
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    created = c.session("create", {"amount_details": {"amount": 500, "currency": "rub"},
                                   "customer": {"reference": "lucky"}, "metadata": {"order": "A-1"}}).json()
    assert created["session"]["status"] == "created"
    started = c.session("start/payment", {"session_id": created["session"]["id"], "payment_details": {
        "type": "recurrent", "recurrent": {"token": token}}})
    assert started.status_code == 200, started.text
    payment = started.json()["session"]["acquiring_payments"][0]
    assert payment["amount_details"] == {"amount": 500, "currency": "rub"} and payment["metadata"] == {"order": "A-1"}
    assert c.confirm(created["session"]["id"]).json()["session"]["status"] == "accepted"


def test_recurrent_status_old_endpoint(bank):
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    resp = bank.client.post("/api/v1/recurrent/status", {"recurrent": {"token": token}})
    assert resp.json()["recurrent"]["is_active"] is True and resp.json()["recurrent"]["token"] == token


def test_client_initiated_token_charge_asks_for_3ds(bank):
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    sid, session = bank.pay_and_confirm(token_charge(token, initiator="client"))
    payment = session["acquiring_payments"][0]
    assert payment["status"] == "pending" and payment["customer_interaction"]["type"] == "redirect"
    assert bank.last_webhook("action_required")["session"]["id"] == sid


def test_unknown_token_is_invalid_request(bank):
    resp = bank.client.init_payment(token_charge("f" * 64))
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_request"
    resp = bank.client.token_info("f" * 64)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_request"


def test_charge_confirmed_after_disable_fails_binding_is_deactivated(bank):
    """A charge accepted while the token was active, confirmed after recurrent/disable: the outcome
    is decided at confirm, and a disabled token takes no money (fact sheet §9, §6)."""
    c = bank.client
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    bank.receiver.requests.clear()
    resp = c.init_payment(token_charge(token, amount=700))
    assert resp.status_code == 200, resp.text
    sid = resp.json()["session"]["id"]
    assert resp.json()["session"]["acquiring_payments"][0]["status"] == "pending"
    assert c.disable(token).json()["recurrent"]["is_active"] is False

    resp = c.confirm(sid)
    assert resp.status_code == 200 and resp.json()["status"] == "ok", resp.text   # a failed payment, not an HTTP error
    session = resp.json()["session"]
    payment = session["acquiring_payments"][0]
    assert payment["status"] == "failed" and payment["error"]["code"] == "binding_is_deactivated"
    assert session["status"] == "cancelled" and session["error"]["code"] == "binding_is_deactivated"
    assert "next_action" not in session and session["finished_at"] == payment["finished_at"]
    assert c.status(sid).json()["session"] == session
    assert [h["type"] for h in bank.webhooks()] == ["ready_to_confirm", "payment_finished"]
    assert bank.last_webhook("payment_finished")["session"] == session
    # nothing was taken, so nothing can be refunded
    assert c.session("refund", {"session_id": sid}).json()["error"]["code"] == "session_wrong_state"
