"""Hosted pages in a real browser: headless Debian Chromium driven by Playwright, JavaScript off.

Each test does what the customer does — types into the page and clicks its button — and then
checks the outcome through the provider's API. JavaScript is disabled because every hosted page
must work as a plain HTML form.
"""
import os
import shutil
import sys

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
for sub in ("checkout", "paysera", "bank131", "zafapay"):
    sys.path.insert(0, os.path.join(HERE, "..", sub))

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"),
              pytest.mark.xdist_group("browser")]

@pytest.fixture
def page(browser):
    context = browser.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_checkout_3ds_challenge_in_a_browser(server, page):
    from cko_helpers import MANDATE_3DS, card_source, payment_request, sdk
    api = sdk(server.url)
    back = f"{server.url}/_sandbox/health"
    pay = api.payments.request_payment(payment_request(card_source(), three_ds=MANDATE_3DS,
                                                       success_url=back + "?result=ok", failure_url=back + "?result=no"))
    page.goto(pay._links.redirect.href)
    page.fill("#password", "Checkout1!")
    page.click("button[value=submit]")
    assert "result=ok" in page.url and "cko-session-id=sid_" in page.url
    assert api.payments.get_payment_details(pay.id).status == "Captured"


def test_paysera_checkout_page_in_a_browser(server, receiver, page):
    from paysera_helpers import PayseraClient, first_payment
    client = PayseraClient(server.url)
    pr = client.create(**first_payment(receiver.url)).json()
    page.goto(pr["authorization_url"])
    page.fill("#card_number", "4111111111111111")
    page.fill("#exp_month", "12")
    page.fill("#exp_year", "2030")
    page.fill("#cvv", "123")
    page.click("button[value=pay]")
    got = client.get(pr["id"]).json()
    assert got["status"] == "captured" and got["issued_token"]


def test_bank131_widget_consent_box_in_a_browser(server, receiver, page):
    from bank131_client import Bank
    bank = Bank(server, receiver)
    body = {"amount_details": {"amount": 10000, "currency": "rub"}, "customer": {"reference": "lucky"}}
    sid = bank.client.session("create", body).json()["session"]["id"]
    public_token = bank.client.post("/api/v1/token", {"acquiring_widget": {
        "session_id": sid, "show_recurrent_checkbox": True}}).json()["public_token"]
    page.goto(f"{server.url}/bank131/widget/{public_token}")
    page.fill("#number", "4242424242424242")
    page.fill("#expiration_month", "12")
    page.fill("#expiration_year", "30")
    page.fill("#security_code", "123")
    page.check("#recurrent_consent")
    page.click("button[type=submit]")
    finished = bank.last_webhook("ready_to_confirm")
    assert finished["session"]["id"] == sid
    bank.client.confirm(sid)
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]
    assert token["is_active"] is True and token["token"]


def test_zafapay_payment_page_in_a_browser(server, page):
    from zafapay_helpers import ZafaPay
    api = ZafaPay(server.url)
    created = api.pay(payment_type="initial", save_card=True, customer_id="cus_browser").json()
    page.goto(created["payment_url"])
    page.fill("#card_number", "4242424242424242")
    page.click("button[value=pay]")
    assert api.get(f"/v1/payments/{created['id']}").json()["status"] == "completed"
    assert len(api.cards("cus_browser")) == 1
