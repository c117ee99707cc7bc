"""The shipped Gr4vy scenarios and the scenario hooks the Gr4vy machine honours: decline,
token (inactive / expired), require_3ds (buyer approval), decline_code_valid."""
import os
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from gr4vy import errors
from gr4vy_helpers import CARD, client, new_key

from simulator.testing import SandboxServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANUAL = {"seed": 1, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual"}


def scenario(name):
    return os.path.join(ROOT, "scenarios", name)


def load_rules(server, text):
    resp = requests.put(f"{server.url}/_sandbox/scenarios", data=text.encode(), timeout=10,
                        headers={"content-type": "application/yaml"})
    return resp


def vaulting_cit(sdk, **extra):
    return sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD, store=True,
                                   payment_source="recurring", merchant_initiated=False, **extra)


def renewal(sdk, pm_id):
    return sdk.transactions.create(amount=1000, currency="USD", payment_method={"method": "id", "id": pm_id},
                                   payment_source="recurring", merchant_initiated=True, is_subsequent_payment=True)


def test_renewal_insufficient_funds_scenario():
    with SandboxServer(MANUAL, scenario_files=[scenario("gr4vy-renewal-insufficient-funds.yaml")]) as srv:
        sdk = client(srv, new_key()[0])
        pm = vaulting_cit(sdk).payment_method.id
        first, second, third = (renewal(sdk, pm) for _ in range(3))
        assert first.status == "authorization_succeeded"
        assert (second.status, second.error_code, second.intent_outcome) == (
            "authorization_declined", "insufficient_funds", "failed")
        assert third.status == "authorization_succeeded"
        [summary] = requests.get(srv.url + "/_sandbox/scenarios", timeout=10).json()["scenarios"]
        assert summary["name"] == "gr4vy-renewal-insufficient-funds"


def test_stored_card_expires_scenario_kills_the_card_for_good():
    with SandboxServer(MANUAL, scenario_files=[scenario("gr4vy-stored-card-expires.yaml")]) as srv:
        sdk = client(srv, new_key()[0])
        pm = vaulting_cit(sdk).payment_method.id
        assert [renewal(sdk, pm).status for _ in range(2)] == ["authorization_succeeded"] * 2
        third = renewal(sdk, pm)
        assert (third.status, third.error_code) == ("authorization_declined", "expired_payment_method")
        assert sdk.payment_methods.get(payment_method_id=pm).status == "failed"
        fourth = renewal(sdk, pm)   # no rule fires any more: the card itself is dead
        assert (fourth.status, fourth.error_code) == ("authorization_declined", "expired_payment_method")
        # the same card typed in again is dead too
        raw = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD)
        assert raw.error_code == "expired_payment_method"


def test_token_inactive_effect(server):
    sdk = client(server, new_key()[0])
    pm = vaulting_cit(sdk).payment_method.id
    resp = load_rules(server, """
name: gr4vy-token-inactive
rules:
  - name: kill
    provider: gr4vy
    path: /gr4vy/transactions
    match: {payment_method.method: id}
    times: 1
    effect: {token: inactive}
""")
    assert resp.status_code == 200, resp.text
    dead = renewal(sdk, pm)
    assert (dead.status, dead.error_code) == ("authorization_declined", "canceled_payment_method")
    assert renewal(sdk, pm).error_code == "canceled_payment_method"
    # another card is unaffected
    assert sdk.transactions.create(amount=100, currency="USD",
                                   payment_method={**CARD, "number": "5555555555554444"}).error_code is None


def test_any_gr4vy_error_code_can_be_injected_and_unknown_codes_are_refused(server):
    sdk = client(server, new_key()[0])
    ok = load_rules(server, """
name: gr4vy-fail
rules:
  - name: fail-one
    provider: gr4vy
    path: /gr4vy/transactions
    times: 1
    effect: {decline: service_network_error}
""")
    assert ok.status_code == 200, ok.text
    tx = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD)
    assert (tx.status, tx.error_code) == ("authorization_failed", "service_network_error")
    bad = load_rules(server, """
name: gr4vy-bad
rules:
  - name: wrong-code
    provider: gr4vy
    effect: {decline: "20051"}
""")
    assert bad.status_code == 400
    provider = server.sandbox.providers["gr4vy"]
    assert provider.decline_code_valid("insufficient_funds") and provider.decline_code_valid("missing_redirect_url")
    assert not provider.decline_code_valid("20051") and not provider.decline_code_valid("Declined")


@pytest.fixture
def three_ds():
    with SandboxServer(MANUAL, scenario_files=[scenario("gr4vy-cit-3ds-challenge.yaml")]) as srv:
        yield srv, client(srv, new_key()[0])


def test_require_3ds_approved_through_the_admin_hosted_action(three_ds):
    srv, sdk = three_ds
    tx = sdk.transactions.create(amount=1000, currency="USD", store=True, payment_source="recurring",
                                 payment_method={**CARD, "redirect_url": "https://merchant.example/return?o=1"})
    assert tx.status == "buyer_approval_pending" and tx.intent_outcome == "pending"
    assert tx.payment_method.approval_url == f"{srv.url}/gr4vy/approval/{tx.id}"
    assert tx.payment_method.id is None
    page = requests.get(tx.payment_method.approval_url, timeout=10)
    assert page.status_code == 200 and "Authenticate" in page.text
    resp = srv.hosted("gr4vy", tx.id, outcome="approve", three_ds="pass")
    assert resp.status_code == 200 and resp.json()["status"] == "authorization_succeeded"
    done = sdk.transactions.get(transaction_id=tx.id)
    assert done.status == "authorization_succeeded" and done.scheme_transaction_id
    assert done.payment_method.id   # vaulted once the buyer approved
    assert sdk.payment_methods.get(payment_method_id=done.payment_method.id).scheme_transaction_id == \
        done.scheme_transaction_id
    # MITs are not challenged: the series continues without the buyer
    assert renewal(sdk, done.payment_method.id).status == "authorization_succeeded"
    again = srv.hosted("gr4vy", tx.id, outcome="approve")
    assert again.status_code == 400


def test_require_3ds_failed_on_the_html_page_redirects_back(three_ds):
    srv, sdk = three_ds
    tx = sdk.transactions.create(amount=1000, currency="USD", intent="capture",
                                 payment_method={**CARD, "redirect_url": "https://merchant.example/return"})
    resp = requests.post(tx.payment_method.approval_url, data={"outcome": "decline"}, allow_redirects=False,
                         timeout=10)
    assert resp.status_code == 302
    target = urlsplit(resp.headers["location"])
    assert target.netloc == "merchant.example"
    assert parse_qs(target.query) == {"gr4vy_transaction_id": [tx.id],
                                      "gr4vy_transaction_status": ["authorization_failed"]}
    failed = sdk.transactions.get(transaction_id=tx.id)
    assert (failed.status, failed.error_code) == ("authorization_failed", "failed_buyer_approval")


def test_require_3ds_cancelled_by_the_buyer(three_ds):
    srv, sdk = three_ds
    tx = sdk.transactions.create(amount=1000, currency="USD",
                                 payment_method={**CARD, "redirect_url": "https://merchant.example/return"})
    srv.hosted("gr4vy", tx.id, outcome="cancel")
    assert sdk.transactions.get(transaction_id=tx.id).error_code == "cancelled_buyer_approval"


def test_require_3ds_without_redirect_url_fails(three_ds):
    _, sdk = three_ds
    tx = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD)
    assert (tx.status, tx.error_code) == ("authorization_failed", "missing_redirect_url")


def test_approval_page_for_unknown_transaction_is_404(three_ds):
    srv, _ = three_ds
    assert requests.get(f"{srv.url}/gr4vy/approval/unknown", timeout=10).status_code == 404
    assert srv.hosted("gr4vy", "unknown", outcome="approve").status_code == 404


def test_pending_transaction_cannot_be_captured(three_ds):
    _, sdk = three_ds
    tx = sdk.transactions.create(amount=1000, currency="USD",
                                 payment_method={**CARD, "redirect_url": "https://merchant.example/r"})
    with pytest.raises(errors.Error400):
        sdk.transactions.capture(transaction_id=tx.id)
