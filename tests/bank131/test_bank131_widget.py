"""The payment widget: a real HTML form for a session with a public token, and the consent box."""
import re

import requests

from bank131_client import bank  # noqa: F401

CONSENT = "I agree to recurring payments"


def _widget_session(bank, show_checkbox, recurrent=None, amount=10000):
    c = bank.client
    body = {"amount_details": {"amount": amount, "currency": "rub"}, "customer": {"reference": "lucky"}}
    if recurrent is not None:
        body["payment_options"] = {"recurrent": recurrent}
    sid = c.session("create", body).json()["session"]["id"]
    widget = {"session_id": sid}
    if show_checkbox is not None:
        widget["show_recurrent_checkbox"] = show_checkbox
    resp = c.post("/api/v1/token", {"acquiring_widget": widget})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ok"
    return sid, resp.json()["public_token"]


def _submit(bank, public_token, tick, number="4242424242424242"):
    url = f"{bank.server.url}/bank131/widget/{public_token}"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert re.search(r'<form method="post"', page.text)
    form = {"number": number, "expiration_month": "12", "expiration_year": "30", "security_code": "123",
            "cardholder_name": "IVAN IVANOV"}
    if tick:
        form["recurrent_consent"] = "1"   # what a browser sends for the ticked box
    return requests.post(url, data=form, timeout=10)


def _finish(bank, sid):
    assert bank.last_webhook("ready_to_confirm")["session"]["id"] == sid
    assert bank.client.confirm(sid).status_code == 200
    return bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]


def test_widget_shows_checkbox_only_when_asked(bank):
    _, with_box = _widget_session(bank, True)
    _, without = _widget_session(bank, False)
    _, default = _widget_session(bank, None)
    base = f"{bank.server.url}/bank131/widget/"
    assert CONSENT in requests.get(base + with_box, timeout=10).text
    assert 'type="checkbox"' in requests.get(base + with_box, timeout=10).text
    assert CONSENT not in requests.get(base + without, timeout=10).text
    assert CONSENT not in requests.get(base + default, timeout=10).text
    assert "100.00 RUB" in requests.get(base + default, timeout=10).text
    assert requests.get(base + "nope", timeout=10).status_code == 404


def test_box_ticked_gives_token(bank):
    sid, public_token = _widget_session(bank, True)
    resp = _submit(bank, public_token, tick=True)
    assert resp.status_code == 200 and "being processed" in resp.text   # after the 303 back to the page
    payment = _finish(bank, sid)
    assert payment["status"] == "succeeded"
    assert payment["payment_options"]["recurrent"] is True
    assert payment["recurrent"]["is_active"] is True
    token = payment["recurrent"]["token"]
    assert bank.client.token_info(token).json()["info"]["is_active"] is True
    assert "Payment succeeded" in requests.get(f"{bank.server.url}/bank131/widget/{public_token}", timeout=10).text


def test_box_not_ticked_no_token(bank):
    sid, public_token = _widget_session(bank, True)
    assert _submit(bank, public_token, tick=False).status_code == 200
    payment = _finish(bank, sid)
    assert payment["status"] == "succeeded"
    assert "recurrent" not in payment and payment["payment_options"]["recurrent"] is False


def test_unticked_box_refuses_even_with_session_recurrent_true(bank):
    sid, public_token = _widget_session(bank, True, recurrent=True)
    _submit(bank, public_token, tick=False)
    assert "recurrent" not in _finish(bank, sid)


def test_no_checkbox_session_recurrent_true_gives_token(bank):
    """Consent collected earlier by the merchant: recurrent: true + a widget without the box."""
    sid, public_token = _widget_session(bank, False, recurrent=True)
    _submit(bank, public_token, tick=False)
    assert _finish(bank, sid)["recurrent"]["is_active"] is True


def test_no_checkbox_a_forged_tick_is_ignored(bank):
    sid, public_token = _widget_session(bank, False)
    _submit(bank, public_token, tick=True)
    assert "recurrent" not in _finish(bank, sid)


def test_invalid_card_in_form_rerenders_with_error(bank):
    sid, public_token = _widget_session(bank, True)
    resp = _submit(bank, public_token, tick=True, number="12")
    assert resp.status_code == 400 and "14 to 19 digits" in resp.text and "<form" in resp.text
    assert bank.client.status(sid).json()["session"]["status"] == "created"


def test_widget_3ds_card_through_pages(bank):
    sid, public_token = _widget_session(bank, True)
    _submit(bank, public_token, tick=True, number="4000000000003220")
    bank.client.confirm(sid)
    action = bank.last_webhook("action_required")["session"]["acquiring_payments"][0]
    page = requests.get(f"{bank.server.url}/bank131/widget/{public_token}", timeout=10)
    assert action["customer_interaction"]["redirect"]["url"] in page.text
    done = requests.post(action["customer_interaction"]["redirect"]["url"], data={"result": "pass"}, timeout=10)
    assert done.status_code == 200 and "Payment succeeded" in done.text
    payment = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]
    assert payment["status"] == "succeeded" and payment["recurrent"]["is_active"] is True


def test_hosted_action_with_consent(bank):
    """CI does what the payer does via POST /_sandbox/hosted/bank131/<id>."""
    sid, public_token = _widget_session(bank, True)
    resp = bank.server.hosted("bank131", sid, outcome="approve", recurring_consent=True)
    assert resp.status_code == 200, resp.text
    assert resp.json()["session"]["acquiring_payments"][0]["status"] == "pending"
    assert _finish(bank, sid)["recurrent"]["is_active"] is True


def test_hosted_action_without_consent_and_by_public_token(bank):
    sid, public_token = _widget_session(bank, True)
    resp = bank.server.hosted("bank131", public_token, outcome="approve", recurring_consent=False)
    assert resp.status_code == 200, resp.text
    assert "recurrent" not in _finish(bank, sid)


def test_hosted_action_decline_cancel_and_3ds(bank):
    sid, _ = _widget_session(bank, True)
    bank.server.hosted("bank131", sid, outcome="decline", recurring_consent=True)
    payment = _finish(bank, sid)
    assert payment["status"] == "failed" and payment["error"]["code"] == "declined_by_issuer_bank"

    sid, _ = _widget_session(bank, True)
    resp = bank.server.hosted("bank131", sid, outcome="cancel")
    assert resp.json()["session"]["status"] == "cancelled"

    sid, _ = _widget_session(bank, True)
    bank.server.hosted("bank131", sid, recurring_consent=True,
                       card={"number": "4000000000003220", "exp_month": 1, "exp_year": 2031, "cvv": "999"})
    bank.client.confirm(sid)
    pm = bank.last_webhook("action_required")["session"]["acquiring_payments"][0]["id"]
    resp = bank.server.hosted("bank131", pm, three_ds="fail")
    assert resp.json()["session"]["acquiring_payments"][0]["error"]["code"] == "3DS_error"
    resp = bank.server.hosted("bank131", pm, three_ds="pass")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "session_wrong_state"
    assert bank.server.hosted("bank131", "ps_000").status_code == 404


def test_public_token_needs_a_created_session_of_this_project(bank):
    c = bank.client
    resp = c.post("/api/v1/token", {"acquiring_widget": {"session_id": "ps_1"}})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_request"
    resp = c.post("/api/v1/token", {"tokenize_widget": {"access": True}})
    assert resp.status_code == 400 and resp.json()["status"] == "error"
