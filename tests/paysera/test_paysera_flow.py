"""The seed guide's whole flow over HTTP: hosted first payment, token, recurring charge, notifications."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from paysera_helpers import (PayseraClient, client, first_payment, hosted_token, notification_ids,  # noqa: F401
                            recurring_payment, two_tenants)

# every response of this flow is checked against the provider's OpenAPI document
pytestmark = [pytest.mark.xdist_group("contract-paysera"), pytest.mark.usefixtures("contract_checked")]


class FormReader(HTMLParser):
    """Reads the first POST form of a page the way a browser without JS would submit it."""

    def __init__(self):
        super().__init__()
        self.action, self.fields, self.buttons, self._in = None, {}, [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None and a.get("method", "").lower() == "post":
            self.action, self._in = a.get("action", ""), True
        elif self._in and tag == "input" and a.get("type") != "checkbox":
            self.fields[a["name"]] = a.get("value", "")
        elif self._in and tag == "button":
            self.buttons.append((a.get("name"), a.get("value")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._in = False


def pay_on_page(url, *, number="4111111111111111", exp_month="12", exp_year="2029", cvv="123",
                holder="John Doe", button="pay"):
    page = requests.get(url)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    form = FormReader()
    form.feed(page.text)
    assert {"card_number", "exp_month", "exp_year", "cvv", "holder_name"} <= set(form.fields)
    assert ("action", button) in form.buttons
    data = {**form.fields, "card_number": number, "exp_month": exp_month, "exp_year": exp_year, "cvv": cvv,
            "holder_name": holder, "action": button}
    return requests.post(urljoin(url, form.action), data=data, allow_redirects=False)


def handle_callback(client, receiver, index):
    """What the merchant's callback handler does: fetch the notification, then mark it read."""
    call = receiver.requests[index]
    nid = json.loads(call["body"])["notification_id"]
    assert parse_qs(urlsplit(call["path"]).query)["notification_id"] == [nid]
    note = client.notification(nid)
    assert note.status_code == 200, note.text
    read = client.read(nid)
    assert read.status_code == 200 and read.json()["status"] == "read"
    return note.json()


def test_seed_flow_first_payment_on_hosted_page_then_recurring_charge(server, client, receiver):
    created = client.create(**first_payment(receiver.url + "/cb"))
    assert created.status_code == 200, created.text
    pr = created.json()
    assert pr["status"] == "new" and re.fullmatch(r"PRA[A-Za-z0-9_-]{29}", pr["id"])
    assert pr["price"] == {"amount": "10.00", "currency": "EUR"}
    assert pr["authorization_url"].startswith(server.url + "/paysera/")

    done = pay_on_page(pr["authorization_url"])
    assert done.status_code == 303 and done.headers["Location"] == "https://shop.example/accept"

    server.flush()
    receiver.wait_for(1)
    note = handle_callback(client, receiver, 0)
    assert note["event"] == "payment_request.captured"
    paid = note["data"]["payment_request"]
    assert paid["id"] == pr["id"] and paid["status"] == "captured"
    assert paid["price_paid"] == {"amount": "10.00", "currency": "EUR"}
    token = paid["issued_token"]
    assert re.fullmatch(r"[A-Za-z0-9]{27}", token)
    assert client.get(pr["id"]).json()["issued_token"] == token

    # recurring charge: create + authorize with the stored token, captured at once
    second = client.create(**recurring_payment(receiver.url + "/cb")).json()
    assert second["status"] == "new" and second["order_id"] == "SUB_12345_MONTH_2"
    charged = client.authorize(second["id"], token)
    assert charged.status_code == 200, charged.text
    body = charged.json()
    assert body["status"] == "captured"
    assert body["price_paid"] == {"amount": 999, "currency": "EUR"}
    assert body["payer"] == {"email": "customer@example.com", "name": "John", "surname": "Doe"}

    server.flush()
    receiver.wait_for(2)
    note = handle_callback(client, receiver, 1)
    assert note["event"] == "payment_request.captured"
    assert note["data"]["payment_request"]["id"] == second["id"]
    assert note["data"]["payment_request"]["status"] == "captured"

    server.advance("P8D")   # both were marked read: nothing is re-sent
    assert len(receiver.requests) == 2


def test_refund_on_capture_issues_a_token_without_charging(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb", description="Card verification",
                                       parameters={"refund_on_capture": True})).json()
    assert pay_on_page(pr["authorization_url"]).status_code == 303
    server.flush()
    receiver.wait_for(1)
    note = handle_callback(client, receiver, 0)
    assert note["event"] == "payment_request.checkout_token_issued"
    data = note["data"]["payment_request"]
    assert data["status"] == "canceled"
    assert data["token_strategy"] == "required" and data["parameters"] == {"refund_on_capture": True}
    assert "price_paid" not in data
    token = data["issued_token"]
    again = client.get(pr["id"]).json()
    assert again["status"] == "canceled" and again["issued_token"] == token
    # only that one notification for the whole flow
    listed = client.notifications().json()["items"]
    assert [n["event"] for n in listed] == ["payment_request.checkout_token_issued"]

    second = client.create(**recurring_payment(receiver.url + "/cb")).json()
    charged = client.authorize(second["id"], token).json()
    assert charged["status"] == "captured" and charged["price_paid"] == {"amount": 999, "currency": "EUR"}


def test_refund_on_capture_top_level_alias(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb", refund_on_capture=True)).json()
    assert pr["parameters"] == {"refund_on_capture": True}
    result = server.hosted("paysera", pr["id"], outcome="approve").json()
    assert result["payment_request"]["status"] == "canceled" and result["payment_request"]["issued_token"]


def test_hosted_page_decline_card_keeps_request_payable(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    declined = pay_on_page(pr["authorization_url"], number="4000000000009995")
    assert declined.status_code == 200 and "insufficient_funds" in declined.text
    assert client.get(pr["id"]).json()["status"] == "new"
    expired_card = pay_on_page(pr["authorization_url"], exp_month="11", exp_year="2025")
    assert "card_expired" in expired_card.text
    invalid = pay_on_page(pr["authorization_url"], number="4111111111111112")
    assert "Card number is invalid" in invalid.text
    server.flush()
    assert receiver.requests == []
    assert pay_on_page(pr["authorization_url"]).status_code == 303
    assert client.get(pr["id"]).json()["status"] == "captured"
    # paid: the page no longer offers a form, and a second submit changes nothing
    page = requests.get(pr["authorization_url"])
    assert "cannot be paid" in page.text and "<form" not in page.text
    assert requests.post(pr["authorization_url"], data={"action": "pay"}).status_code == 409


def test_hosted_page_cancel_returns_to_merchant_and_request_stays_new(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    gone = pay_on_page(pr["authorization_url"], button="cancel")
    assert gone.status_code == 303 and gone.headers["Location"] == "https://shop.example/cancel"
    assert client.get(pr["id"]).json()["status"] == "new"


def test_hosted_page_without_accept_url_shows_its_own_result(server, client, receiver):
    body = first_payment(receiver.url + "/cb")
    del body["accept_url"], body["cancel_url"]
    pr = client.create(**body).json()
    done = pay_on_page(pr["authorization_url"])
    assert done.status_code == 200 and "Payment successful" in done.text


def test_ci_hosted_action_outcomes(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    declined = server.hosted("paysera", pr["id"], outcome="decline").json()
    assert declined["result"] == "declined" and declined["reason"] == "do_not_honor"
    canceled = server.hosted("paysera", pr["id"], outcome="cancel").json()
    assert canceled["result"] == "canceled" and canceled["redirect_url"] == "https://shop.example/cancel"
    bad = server.hosted("paysera", pr["id"], outcome="approve", card={"number": "123"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_parameters"
    paid = server.hosted("paysera", pr["id"], outcome="approve",
                         card={"number": "5555555555554444", "exp_month": 1, "exp_year": 2030, "cvv": "999"}).json()
    assert paid["result"] == "paid" and paid["payment_request"]["status"] == "captured"
    again = server.hosted("paysera", pr["id"], outcome="approve")
    assert again.status_code == 409 and again.json()["error"] == "invalid_state"
    assert server.hosted("paysera", "PRAnope", outcome="approve").status_code == 404


def test_optional_token_strategy_follows_recurring_consent(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb", token_strategy="optional")).json()
    no = server.hosted("paysera", pr["id"], outcome="approve", recurring_consent=False).json()
    assert no["payment_request"]["status"] == "captured" and "issued_token" not in no["payment_request"]
    pr = client.create(**first_payment(receiver.url + "/cb", token_strategy="optional")).json()
    yes = server.hosted("paysera", pr["id"], outcome="approve", recurring_consent=True).json()
    assert yes["payment_request"]["issued_token"]


def test_without_token_strategy_no_token_is_issued(server, client, receiver):
    body = first_payment(receiver.url + "/cb")
    del body["token_strategy"]
    pr = client.create(**body).json()
    assert "issued_token" not in server.hosted("paysera", pr["id"], outcome="approve").json()["payment_request"]


def test_tenant_isolation(two_tenants, receiver):
    a = PayseraClient(two_tenants.url, "shop-a", "key-a-secret")
    b = PayseraClient(two_tenants.url, "shop-b", "key-b-secret")
    pr_id, token = hosted_token(two_tenants, a, receiver)
    two_tenants.flush()
    nid = notification_ids(receiver)[0]

    for resp in (b.get(pr_id), b.cancel(pr_id), b.authorize(pr_id, token), b.notification(nid), b.read(nid)):
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"] == "not_found"
    assert b.request("GET", "/checkout/rest/v1/payment-requests").json()["items"] == []
    assert b.notifications().json()["items"] == []
    # shop-a's token does not work for shop-b
    own = b.create(**recurring_payment(receiver.url + "/cb")).json()
    foreign = b.authorize(own["id"], token)
    assert foreign.status_code == 400 and "token" in foreign.json()["error_properties"]
    assert a.get(pr_id).status_code == 200


def test_list_payment_requests_filters_and_pages(server, client, receiver):
    ids = [client.create(**recurring_payment(receiver.url + "/cb", order_id=f"o{i}")).json()["id"] for i in range(5)]
    client.cancel(ids[0])
    listing = client.request("GET", "/checkout/rest/v1/payment-requests", params={"limit": 2}).json()
    assert [i["id"] for i in listing["items"]] == [ids[4], ids[3]]
    assert listing["_metadata"]["total"] == 5 and listing["_metadata"]["has_next"] is True
    nxt = client.request("GET", "/checkout/rest/v1/payment-requests",
                         params={"limit": 2, "after": listing["_metadata"]["cursors"]["after"]}).json()
    assert [i["id"] for i in nxt["items"]] == [ids[2], ids[1]]
    canceled = client.request("GET", "/checkout/rest/v1/payment-requests", params={"status": "canceled"}).json()
    assert [i["id"] for i in canceled["items"]] == [ids[0]]
    asc = client.request("GET", "/checkout/rest/v1/payment-requests",
                         params={"order_direction": "asc", "offset": 1, "limit": 1}).json()
    assert [i["id"] for i in asc["items"]] == [ids[1]] and asc["_metadata"]["has_previous"] is True
    for bad in ({"limit": "0"}, {"limit": "x"}, {"status": "paid"}, {"order_direction": "up"}):
        resp = client.request("GET", "/checkout/rest/v1/payment-requests", params=bad)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_parameters", bad


def test_public_info_needs_no_credentials(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    info = requests.get(f"{server.url}/paysera/checkout/rest/v1/payment-requests/{pr['id']}/public-info").json()
    assert info == {"status": "new", "price": {"amount": "10.00", "currency": "EUR"},
                    "description": "Monthly subscription - January", "payer_email_present": True}


def test_hosted_form_post_is_journaled_without_the_card_number(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    assert pay_on_page(pr["authorization_url"], number="4000000000009995").status_code == 200
    entry = [e for e in server.journal(provider="paysera") if e["method"] == "POST"][-1]
    assert "card_number=400000******9995" in entry["request"]
    assert "4000000000009995" not in str(server.journal())
    assert "4000000000009995" not in str(server.sandbox.store.list("paysera", "payment_request", "sandbox-mac-id"))
