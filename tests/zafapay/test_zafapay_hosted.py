"""The hosted payment page behind payment_url: plain HTML forms, and the same path for CI."""
from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import requests

from simulator.testing import SandboxServer
from zafapay_helpers import (ZafaPay, api, config, forms, pay_on_page, submit_page,  # noqa: F401
                             verify_signature, webhooks_of, zp)


def test_page_is_a_plain_form_that_works_without_javascript(zp, api):
    created = api.pay(amount=25.00, currency="usd", customer_id="html", save_card=True, product_name="Gym").json()
    page = requests.get(created["payment_url"], timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<script" not in page.text.lower()
    (form,) = forms(page.text)
    assert form["method"] == "post"
    assert {"card_number", "exp_month", "exp_year", "cvc", "token"} <= set(form["inputs"])
    assert [v for _, v in form["buttons"]] == ["pay", "decline", "cancel"]
    assert "25.00 USD" in page.text and "Gym" in page.text


def test_customer_types_a_card_and_it_is_saved(zp, api, receiver):
    created = api.pay(customer_id="typed", save_card=True).json()
    done = pay_on_page(created["payment_url"], "pay", {"card_number": "5555 5555 5555 4444", "exp_month": "7",
                                                        "exp_year": "2031", "cardholder_name": "Ada Lovelace"})
    assert done.status_code == 200 and 'data-status="completed"' in done.text
    zp.flush()
    (event, raw), = webhooks_of(receiver, "payment.succeeded")
    assert verify_signature(raw["body"], raw["headers"]["X-Zafapay-Signature-Sandbox"])
    assert event["card_brand"] == "mastercard" and event["card_last4"] == "4444"
    assert event["cardholder_name"] == "Ada Lovelace" and event["card_exp_year"] == 2031
    (card,) = api.cards("typed")
    assert card["id"] == event["payment_method_id"] and card["card"]["exp_month"] == 7
    # the full number is kept nowhere: not in the payment, the journal or the page
    assert "5555555555554444" not in str(zp.sandbox.store.list("zafapay", "payment", "zp_test_merchant_one_0001"))
    assert "5555555555554444" not in str(zp.journal())
    # a hosted payment is completed once; the page then shows its final state
    again = requests.get(created["payment_url"], timeout=10)
    assert 'data-status="completed"' in again.text and not forms(again.text)


def test_decline_and_cancel_buttons(zp, api, receiver):
    declined = api.pay(customer_id="dc", save_card=True).json()
    page = pay_on_page(declined["payment_url"], "decline")
    assert 'data-status="failed"' in page.text
    canceled = api.pay().json()
    page = pay_on_page(canceled["payment_url"], "cancel")
    assert 'data-status="canceled"' in page.text
    assert api.get(f"/v1/payments/{canceled['id']}").json()["status"] == "canceled"
    assert api.cards("dc") == []                         # a failed initial payment saves nothing
    zp.flush()
    # two payments' events go out in parallel: compare them as a multiset
    assert sorted(e["event"] for e, _ in webhooks_of(receiver)) == ["payment.canceled", "payment.failed"]


def test_decline_test_cards_on_the_page(zp, api):
    for number, code in [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds"),
                         ("4000000000000069", "expired_card")]:
        created = api.pay().json()
        page = pay_on_page(created["payment_url"], "pay", {"card_number": number})
        assert code in page.text
        got = api.get(f"/v1/payments/{created['id']}").json()
        assert got["status"] == "failed" and got["error_code"] == code


def test_bad_card_input_is_shown_on_the_page(zp, api):
    created = api.pay().json()
    browser = requests.Session()
    page = browser.get(created["payment_url"], timeout=10)
    resp = submit_page(browser, created["payment_url"], page.text, "pay", {"card_number": "4242424242424241"})
    assert resp.status_code == 400 and 'id="error"' in resp.text and "card number" in resp.text.lower()
    resp = submit_page(browser, created["payment_url"], page.text, "pay", {"exp_month": "1", "exp_year": "2025"})
    assert resp.status_code == 400 and "past" in resp.text
    resp = submit_page(browser, created["payment_url"], page.text, "pay", {"exp_month": "xx"})
    assert resp.status_code == 400 and 'id="error"' in resp.text
    assert api.get(f"/v1/payments/{created['id']}").json()["status"] == "pending"   # still payable
    assert 'data-status="completed"' in submit_page(browser, created["payment_url"], page.text, "pay").text


def test_a_refused_card_form_does_not_show_the_card_number_or_cvc_again(zp, api):
    created = api.pay().json()
    browser = requests.Session()
    page = browser.get(created["payment_url"], timeout=10)
    resp = submit_page(browser, created["payment_url"], page.text, "pay",
                       {"card_number": "5555555555554444", "exp_month": "13", "cvc": "987"})
    assert resp.status_code == 400 and 'id="error"' in resp.text
    assert "5555555555554444" not in resp.text and 'value="987"' not in resp.text
    assert 'id="exp_month" name="exp_month" value="13"' in resp.text   # the rest comes back as typed


def test_wrong_or_missing_page_token_is_403(zp, api):
    created = api.pay().json()
    url = created["payment_url"]
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403
    assert requests.get(url.split("?")[0] + "?token=wrong", timeout=10).status_code == 403
    req_id = created["id"]
    resp = requests.post(f"{zp.url}/zafapay/checkout/{req_id}", data={"token": "wrong", "action": "pay"}, timeout=10)
    assert resp.status_code == 403
    assert requests.get(f"{zp.url}/zafapay/checkout/req_unknown?token=x", timeout=10).status_code == 403
    assert api.get(f"/v1/payments/{req_id}").json()["status"] == "pending"


def test_three_ds_card_shows_a_challenge(zp, api, receiver):
    created = api.pay(customer_id="sca", save_card=True).json()
    browser = requests.Session()
    page = browser.get(created["payment_url"], timeout=10)
    challenge = submit_page(browser, created["payment_url"], page.text, "pay", {"card_number": "4000000000003220"})
    assert challenge.status_code == 200 and 'id="challenge"' in challenge.text
    assert api.get(f"/v1/payments/{created['id']}").json()["status"] == "requires_action"
    done = submit_page(browser, created["payment_url"], challenge.text, "pass")
    assert 'data-status="completed"' in done.text
    assert len(api.cards("sca")) == 1
    # abandoning 3DS cancels the payment
    other = api.pay().json()
    page = browser.get(other["payment_url"], timeout=10)
    challenge = submit_page(browser, other["payment_url"], page.text, "pay", {"card_number": "4000000000003220"})
    assert 'data-status="canceled"' in submit_page(browser, other["payment_url"], challenge.text, "cancel").text
    zp.flush()
    assert sorted(e["event"] for e, _ in webhooks_of(receiver)) == ["payment.canceled", "payment.succeeded"]


def test_a_second_click_on_pay_does_not_answer_the_challenge(zp, api, receiver):
    # the card form posted again while 3-D Secure waits (a double click, another card, garbage)
    # once passed the challenge for the customer and sent payment.succeeded
    for second in ("4000000000003220", "4000000000000002", "1234"):
        created = api.pay().json()
        browser = requests.Session()
        page = browser.get(created["payment_url"], timeout=10)
        challenge = submit_page(browser, created["payment_url"], page.text, "pay", {"card_number": "4000000000003220"})
        again = submit_page(browser, created["payment_url"], page.text, "pay", {"card_number": second})
        assert again.status_code == 400 and "3-D Secure challenge" in again.text
        assert 'id="challenge"' in again.text   # the page still asks for the answer
        assert api.get(f"/v1/payments/{created['id']}").json()["status"] == "requires_action"
        assert 'data-status="failed"' in submit_page(browser, created["payment_url"], challenge.text, "fail").text
    zp.flush()
    assert [e["event"] for e, _ in webhooks_of(receiver)] == ["payment.failed"] * 3


def test_merchant_redirect_urls_after_the_page():
    cfg = config(success_redirect_url="https://shop.example/ok?x=1", failure_redirect_url="https://shop.example/ko")
    with SandboxServer(cfg) as srv:
        api = ZafaPay(srv.url)
        ok = api.pay().json()
        resp = pay_on_page(ok["payment_url"], "pay", allow_redirects=False)
        assert resp.status_code == 302
        parts = urlsplit(resp.headers["Location"])
        assert parts.netloc == "shop.example" and parse_qs(parts.query) == {"x": ["1"], "status": ["succeeded"],
                                                                             "id": [ok["id"]]}
        ko = api.pay().json()
        resp = pay_on_page(ko["payment_url"], "decline", allow_redirects=False)
        assert resp.headers["Location"] == f"https://shop.example/ko?status=failed&id={ko['id']}"


def test_ci_hosted_action(zp, api, receiver):
    created = api.pay(customer_id="ci", save_card=True).json()
    resp = zp.hosted("zafapay", created["id"], outcome="approve",
                     card={"number": "4000000000003220", "exp_month": 3, "exp_year": 2029, "cvv": "123"},
                     three_ds="pass")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed" and resp.json()["card_last4"] == "3220"
    assert resp.json()["payment_method_id"] == api.cards("ci")[0]["id"]
    again = zp.hosted("zafapay", created["id"], outcome="approve")
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_status"
    failed = zp.hosted("zafapay", api.pay().json()["id"], outcome="approve",
                       card={"number": "4000000000003220", "exp_month": 3, "exp_year": 2029}, three_ds="fail")
    assert failed.json()["status"] == "failed"
    canceled = zp.hosted("zafapay", api.pay().json()["id"], outcome="cancel")
    assert canceled.json()["status"] == "canceled"
    bad = zp.hosted("zafapay", api.pay().json()["id"], card={"number": "123", "exp_month": 1, "exp_year": 2030})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    bad = zp.hosted("zafapay", api.pay().json()["id"], card={"number": "4242424242424242"})
    assert bad.status_code == 400 and bad.json()["error"]["param"].startswith("card.")
    assert zp.hosted("zafapay", "req_missing").status_code == 404


def test_two_clicks_on_pay_at_once_leave_the_3ds_challenge_to_the_customer(zp, api, receiver, monkeypatch):
    """Both clicks pass the page's check while the payment is pending; the first sends it to its
    challenge, and the second must not then answer the challenge for the customer."""
    from simulator.providers.zafapay.machine import Machine
    both_checked = threading.Barrier(2, timeout=10)
    submit = Machine.hosted_submit

    def after_the_check(self, *args, **kw):
        both_checked.wait()
        return submit(self, *args, **kw)
    monkeypatch.setattr(Machine, "hosted_submit", after_the_check)
    created = api.pay().json()
    page_url = created["payment_url"]
    html = requests.get(page_url, timeout=10).text
    card = {"card_number": "4000000000003220", "exp_month": "12", "exp_year": "2030", "cvc": "123"}
    answers = []
    clicks = [threading.Thread(target=lambda: answers.append(submit_page(requests.Session(), page_url, html, "pay", card)))
              for _ in range(2)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    assert sorted(a.status_code for a in answers) == [200, 400]
    assert "Answer the 3-D Secure challenge" in next(a.text for a in answers if a.status_code == 400)
    assert api.get(f"/v1/payments/{created['id']}").json()["status"] == "requires_action"
    zp.flush()
    assert webhooks_of(receiver, "payment.succeeded") == []


def test_the_challenge_form_does_not_pay_a_payment_without_a_card(zp, api):
    created = api.pay().json()
    token = parse_qs(urlsplit(created["payment_url"]).query)["token"][0]
    challenge = created["payment_url"].split("?")[0] + "/3ds"
    answer = requests.post(challenge, data={"token": token, "action": "pass"}, timeout=10)
    assert answer.status_code == 400 and "enter the card first" in answer.text
    assert api.get(f"/v1/payments/{created['id']}").json()["status"] == "pending"
