"""QA's walk through the dashboard with Paysera (issue 12, steps 1-6), in a real browser.

The merchant's side is a MAC-signed `requests` client. The customer's hosted step is completed
from the dashboard; notifications are re-sent until the merchant marks them read, and the
dashboard shows the re-sends stop.
"""
import os

import pytest
import requests
from paysera_helpers import PayseraClient, first_payment, recurring_payment

from simulator.testing import DEFAULT_START, SandboxServer


@pytest.fixture
def srv():
    s = SandboxServer({"seed": 2, "clock": {"start": DEFAULT_START}, "webhooks": "manual"}).start()
    yield s
    s.stop()


def attempts(page):
    # locator.all() does not wait: after a click that navigates, the new page may still be parsing
    page.wait_for_load_state()
    return [r.inner_text() for r in page.locator("#timeline tr.attempt").all()]


def test_paysera_token_series_with_a_declined_charge_and_resends_stopping_once_read(srv, receiver, page, shots):
    client = PayseraClient(srv.url)
    dash = srv.url + "/_sandbox"

    page.goto(dash + "/ui/scenarios")
    page.select_option("select[name=shipped]", "paysera-renewal-insufficient-funds.yaml")
    page.click("#load-shipped button")
    assert "loaded scenario paysera-renewal-insufficient-funds" in page.locator(".notice").inner_text()

    # the first payment waits for the customer: completed from its dashboard page
    first = client.create(**first_payment(receiver.url + "/cb")).json()
    assert first["status"] == "new"
    page.goto(f"{dash}/ui/objects/paysera/payment_request/{first['id']}")
    assert page.locator("details.actions").get_attribute("open") is not None
    shots(page, "first-payment-waiting")
    page.check("#hosted input[name=recurring_consent][value=true]")
    page.click("#hosted button")
    assert "hosted step done: approve" in page.locator(".notice").inner_text()
    assert page.locator("#status").inner_text() == "captured"
    token = client.get(first["id"]).json()["issued_token"]
    assert token

    # renewals on the token: the second charge is declined by the scenario, the retry goes through
    second = client.create(**recurring_payment(receiver.url + "/cb", "SUB_12345_MONTH_2")).json()
    assert client.authorize(second["id"], token).status_code == 200
    third = client.create(**recurring_payment(receiver.url + "/cb", "SUB_12345_MONTH_3")).json()
    refused = client.authorize(third["id"], token)
    assert refused.status_code == 409 and refused.json()["error_data"]["reason"] == "insufficient_funds"
    assert client.authorize(third["id"], token).status_code == 200

    page.goto(f"{dash}/ui/objects/paysera/payment_request/{third['id']}")
    fired = [r.inner_text() for r in page.locator("#timeline tr.request").all() if "rule fired" in r.inner_text()]
    assert len(fired) == 1 and "second-token-charge-declined" in fired[0] and "409" in fired[0]
    series = [li.inner_text() for li in page.locator("#series li").all()]
    assert [s.split()[0] for s in series] == [first["id"], second["id"], third["id"]]
    assert [s.split()[1] for s in series] == ["CIT", "MIT", "MIT"]
    assert page.locator("#diagram g.state.current").get_attribute("data-state") == "captured"
    shots(page, "third-payment-declined-then-captured")

    # the clock moves an hour: unread notifications are re-sent, each attempt in the timeline
    page.goto(f"{dash}/ui/objects/paysera/payment_request/{first['id']}")
    page.click("#clock-form button[value=PT1H]")
    resent = attempts(page)
    assert len(resent) >= 5 and all("HTTP 200" in a for a in resent)
    shots(page, "notification-resent")

    # the merchant reads the notification: after a day more, no further re-send
    notification = client.notifications().json()["items"]
    nid = next(n["id"] for n in notification if n["data"]["payment_request"]["id"] == first["id"])
    assert client.read(nid).status_code == 200
    page.click("#clock-form button[value=P1D]")
    assert attempts(page) == resent
    assert "next attempt" not in page.locator("#timeline tr.webhook").first.inner_text()
    shots(page, "notification-read")

    # a settled delivery cannot be redelivered
    page.locator("#timeline tr.webhook button").first.click()
    assert "settled" in page.locator(".problem").inner_text()

    # the notification itself is an object with its own page
    page.goto(f"{dash}/ui/objects?kind=notification")
    page.click(f"text={nid}")
    assert page.locator("#status").inner_text() == "read"
    shots(page, "notification-object")

    # the export carries the re-sends and nothing after the read
    doc = requests.get(f"{dash}/objects/paysera/payment_request/{first['id']}/timeline?download=1", timeout=10).json()
    sent = [e for e in doc["events"] if e["type"] == "webhook_attempt"]
    assert len(sent) == len(resent)
    assert all(e["at"] < "2026-01-01T01:00:00.001Z" for e in sent)
    assert all(os.path.getsize(p) > 0 for p in shots.taken)
