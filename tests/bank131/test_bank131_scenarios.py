"""Scenario effects on Bank 131: shipped scenarios from scenarios/, and each effect the machine
honours (decline, require_3ds, token inactive/expired, webhook failures)."""
import os

import pytest

from bank131_client import Bank, first_payment, token_charge
from simulator.testing import SandboxServer, WebhookReceiver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def rcv():
    r = WebhookReceiver().start()
    yield r
    r.stop()


def started(scenario=None):
    files = [os.path.join(ROOT, "scenarios", scenario)] if scenario else None
    return SandboxServer({"webhooks": "manual"}, scenario_files=files).start()


def load(server, text):
    resp = server.admin("PUT", "/scenarios", data=text, headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 200, resp.text


def first_token(bank):
    bank.pay_and_confirm(first_payment())
    return bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]


def test_shipped_renewal_declined(rcv):
    srv = started("bank131-renewal-declined.yaml")
    try:
        bank = Bank(srv, rcv)
        token = first_token(bank)
        outcomes = []
        for _ in range(3):
            sid, session = bank.pay_and_confirm(token_charge(token))
            outcomes.append((session["status"], (session.get("error") or {}).get("code")))
        assert outcomes == [("accepted", None), ("cancelled", "insufficient_funds"), ("accepted", None)]
        finished = [h for h in bank.webhooks() if h["type"] == "payment_finished"]
        assert finished[2]["session"]["acquiring_payments"][0]["error"]["code"] == "insufficient_funds"
        assert bank.client.token_info(token).json()["info"]["is_active"] is True
        fired = [e["rules"] for e in srv.journal(provider="bank131") if e["path"].endswith("/init/payment")]
        assert fired == [[], [], ["second-token-charge-declined"], []]
    finally:
        srv.stop()


def test_shipped_token_deactivated(rcv):
    srv = started("bank131-token-deactivated.yaml")
    try:
        bank = Bank(srv, rcv)
        token = first_token(bank)
        assert bank.pay_and_confirm(token_charge(token))[1]["status"] == "accepted"
        for _ in range(2):   # off for good
            resp = bank.client.init_payment(token_charge(token))
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "binding_is_deactivated"
        assert bank.client.token_info(token).json()["info"]["is_active"] is False
        fresh = first_token(bank)
        assert bank.pay_and_confirm(token_charge(fresh))[1]["status"] == "accepted"
    finally:
        srv.stop()


def test_decline_on_confirm_and_require_3ds(rcv):
    srv = started()
    try:
        bank = Bank(srv, rcv)
        load(srv, "name: d\nrules:\n  - name: confirm-declined\n    provider: bank131\n"
                  "    path: /bank131/api/v1/session/confirm\n    nth: 1\n    effect: {decline: not_permitted_by_issuer_bank}\n"
                  "  - name: card-3ds\n    provider: bank131\n    path: /bank131/api/v1/session/init/payment\n"
                  "    match: {payment_details.type: card, amount_details.amount: 777}\n    effect: {require_3ds: true}\n")
        sid, session = bank.pay_and_confirm(first_payment())
        assert session["acquiring_payments"][0]["error"]["code"] == "not_permitted_by_issuer_bank"
        sid, session = bank.pay_and_confirm(first_payment(amount=777))
        assert session["acquiring_payments"][0]["customer_interaction"]["type"] == "redirect"
        assert bank.last_webhook("action_required")["session"]["id"] == sid
    finally:
        srv.stop()


def test_token_expired_and_require_3ds_on_mit(rcv):
    srv = started()
    try:
        bank = Bank(srv, rcv)
        token = first_token(bank)
        load(srv, "name: e\nrules:\n  - name: mit-3ds\n    provider: bank131\n    path: /bank131/api/v1/session/init/payment\n"
                  "    match: {amount_details.amount: 333}\n    effect: {require_3ds: true}\n"
                  "  - name: expire\n    provider: bank131\n    path: /bank131/api/v1/token/info\n    effect: {token: expired}\n")
        sid, session = bank.pay_and_confirm(token_charge(token, amount=333))
        assert session["acquiring_payments"][0]["status"] == "pending"
        assert session["acquiring_payments"][0]["customer_interaction"]["redirect"]["url"]
        info = bank.client.token_info(token).json()["info"]
        assert info["is_active"] is False
        resp = bank.client.init_payment(token_charge(token))
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "bank_card_expired"
    finally:
        srv.stop()


def test_token_expired_between_charge_and_confirm(rcv):
    """The bank switches the token off (scenario `token: expired`) after the charge was accepted:
    the confirm fails it the way a new charge on that token is refused, bank_card_expired."""
    srv = started()
    try:
        bank = Bank(srv, rcv)
        token = first_token(bank)
        sid = bank.client.init_payment(token_charge(token)).json()["session"]["id"]
        load(srv, "name: x\nrules:\n  - name: expire\n    provider: bank131\n    path: /bank131/api/v1/token/info\n"
                  "    effect: {token: expired}\n")
        assert bank.client.token_info(token).json()["info"]["is_active"] is False
        session = bank.client.confirm(sid).json()["session"]
        assert session["status"] == "cancelled"
        assert session["acquiring_payments"][0]["error"]["code"] == "bank_card_expired"
        resp = bank.client.init_payment(token_charge(token))
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "bank_card_expired"
    finally:
        srv.stop()


def test_webhook_fail_effect_retries(rcv):
    srv = started()
    try:
        bank = Bank(srv, rcv)
        load(srv, "name: w\nrules:\n  - name: hooks-fail\n    provider: bank131\n    path: /bank131/api/v1/session/confirm\n"
                  "    effect: {webhook: {fail: 2, status: 503}}\n")
        bank.pay_and_confirm(first_payment())
        srv.flush()
        srv.advance("PT3M")
        finished = [d for d in srv.webhooks(provider="bank131") if d["event_type"] == "payment_finished"][0]
        assert [a["status"] for a in finished["attempts"]] == [503, 503, 200]
        assert finished["status"] == "delivered"
    finally:
        srv.stop()


def test_unknown_decline_code_rejected(server):
    doc = "name: bad\nrules:\n  - name: r\n    provider: bank131\n    effect:\n      decline: \"05\"\n"
    resp = server.admin("PUT", "/scenarios", data=doc, headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 400 and "05" in resp.text
    load(server, doc.replace('"05"', "insufficient_funds"))
