"""QA's walk through the dashboard with Checkout.com (issue 12, steps 1-6), in a real browser.

The merchant's side is the official checkout-sdk; everything QA does (load a scenario, move the
clock, complete 3-D Secure, redeliver, flush, reset, export) is done by clicking the dashboard
with JavaScript off.
"""
import json
import os

import pytest
import requests
from cko_helpers import MANDATE_3DS, card_source, id_source, payment_request, sdk

from simulator.providers.checkout.machine import INSTRUMENT, PAYMENT
from simulator.testing import DEFAULT_START, SandboxServer

BROKEN = """name: broken
rules:
  - name: bad-nth
    provider: checkout
    nth: two
    effect: {decline: "20051"}
"""


@pytest.fixture
def cko(receiver):
    receiver.status = 503  # the merchant's webhook endpoint is down at first
    srv = SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                         "providers": {"checkout": {"webhook_url": receiver.url + "/cko",
                                                    "webhook_signing_key": "cko-signing-key"}}}).start()
    yield srv
    srv.stop()


def rows(page, selector):
    # locator.all() does not wait: after a click that navigates, the new page may still be parsing
    page.wait_for_load_state()
    return [r.inner_text() for r in page.locator(selector).all()]


def test_checkout_renewal_declined_by_a_scenario_walked_in_the_dashboard(cko, receiver, page, shots):
    api = sdk(cko.url)
    dash = cko.url + "/_sandbox/"

    # 1. the overview: clock, webhook mode, nothing stored yet
    page.goto(dash)
    assert page.locator("#clock").inner_text() == "2026-01-01T00:00:00.000Z"
    assert "webhooks manual" in page.locator("header .status").inner_text()
    shots(page, "overview-empty")

    # 3. a wrong scenario is refused with its line; a shipped one loads
    page.click("text=Scenarios")
    page.fill("#document", BROKEN)
    page.click("#load-pasted button")
    error = page.locator("#scenario-error").inner_text()
    assert "line 5" in error and "nth" in error
    assert page.locator("#document").input_value() == BROKEN   # the text is kept for fixing
    shots(page, "scenario-error")
    page.select_option("select[name=shipped]", "renewal-insufficient-funds.yaml")
    page.click("#load-shipped button")
    assert "loaded scenario renewal-insufficient-funds" in page.locator(".notice").inner_text()
    assert rows(page, "table.rules td.hits") == ["0"]
    shots(page, "scenario-loaded")

    # the merchant's system runs: a customer payment stores the card, then three renewals
    cit = api.payments.request_payment(payment_request(card_source(), reference="sub-1-cit"))
    mits = [api.payments.request_payment(payment_request(id_source(cit.source.id), merchant_initiated=True,
                                                         previous_payment_id=cit.id, reference=f"sub-1-mit-{n}"))
            for n in (1, 2, 3)]
    assert [m.approved for m in mits] == [True, False, True]
    declined = mits[1]

    page.goto(dash)
    assert page.locator("td.hits").inner_text() == "1"
    assert "payment" in page.locator("#kinds").inner_text()
    shots(page, "overview-after-run")

    # 1. filter and search
    page.goto(cko.url + "/_sandbox/ui/objects")
    page.fill("input[name=status]", "declined")
    page.click(".filters button")
    listed = rows(page, "#objects tr:has(td)")
    assert len(listed) == 1 and declined.id in listed[0] and "5000 USD" in listed[0]
    shots(page, "objects-declined")
    page.fill("input[name=status]", "")
    page.fill("input[name=reference]", "sub-1-mit")
    page.click(".filters button")
    assert len(rows(page, "#objects tr:has(td)")) == 3

    # 2. the declined renewal: rule in its timeline, the series on one line, the diagram
    page.click(f"text={declined.id}")
    assert page.locator("#status").inner_text() == "Declined"
    request_row = page.locator("#timeline tr.request").first.inner_text()
    assert "POST /checkout/payments" in request_row and "rule fired: second-mit-declined" in request_row
    assert "created → Declined" in page.locator("#timeline tr.transition").first.inner_text()
    series = rows(page, "#series li")
    assert [s.split()[0] for s in series] == [cit.id] + [m.id for m in mits]
    assert [s.split()[1] for s in series] == ["CIT", "MIT", "MIT", "MIT"]
    assert "Declined" in series[2]
    assert page.locator("#diagram g.state.current").get_attribute("data-state") == "Declined"
    assert page.locator("#diagram g.edge.walked").count() == 1
    shots(page, "payment-declined")

    # 4. the receiver is down while the clock moves: retries fail, visible in the timeline
    page.click("#clock-form button[value=PT1H]")
    assert "clock moved by PT1H" in page.locator(".notice").inner_text()
    attempts = rows(page, "#timeline tr.attempt")
    assert len(attempts) >= 3 and all("HTTP 503" in a for a in attempts)
    assert "failed" in page.locator("#timeline tr.webhook").first.inner_text()
    shots(page, "payment-webhooks-failing")
    receiver.status = 200
    page.click("#clock-form button[value=P1D]")
    assert "HTTP 200" in rows(page, "#timeline tr.attempt")[-1]
    assert "now delivered" in page.locator("#timeline tr.webhook").first.inner_text()
    shots(page, "payment-webhooks-delivered")

    page.click("text=Webhooks")
    page.click("a[href='?status=delivered']")
    delivered = rows(page, "table.deliveries tr[data-delivery]")
    # approved and captured for each of three payments, declined for one
    assert len(delivered) == 7 and all("delivered" in r for r in delivered)
    shots(page, "webhooks-delivered")
    page.click("text=State diagrams")
    page.wait_for_load_state()
    drawn = {g.get_attribute("data-state") for g in page.locator("#checkout svg g.state").all()}
    assert drawn == set(PAYMENT.states) | set(INSTRUMENT.states)   # drawn from both tables
    assert page.locator("#paysera svg").count() == 1
    shots(page, "diagrams")
    page.go_back()
    page.go_back()
    page.go_back()

    # 5. redeliver one webhook and flush
    before = len(receiver.requests)
    page.locator("#timeline tr.webhook button").first.click()
    assert "re-sent" in page.locator(".notice").inner_text() and ": 200" in page.locator(".notice").inner_text()
    assert len(receiver.requests) == before + 1
    page.click("#flush")
    assert "flushed" in page.locator(".notice").inner_text()

    # 6. export the timeline: the same events, as JSON
    href = page.locator("#export").get_attribute("href")
    exported = requests.get(cko.url + href, timeout=10)
    assert "attachment" in exported.headers["Content-Disposition"]
    doc = exported.json()
    assert doc["object"]["id"] == declined.id and doc["state"]["current"] == "Declined"
    fired = [e for e in doc["events"] if e["type"] == "request" and e["rules"]]
    assert fired[0]["rules"] == ["second-mit-declined"]
    assert [e["status"] for e in doc["events"] if e["type"] == "webhook_attempt"][-2:] == [200, 200]

    # 5. a customer step from the payment page: 3-D Secure failed, then passed
    for outcome, expected in (("fail", "Declined"), ("pass", "Captured")):
        pending = api.payments.request_payment(payment_request(card_source(), three_ds=MANDATE_3DS,
                                                               reference=f"3ds-{outcome}"))
        assert pending.status == "Pending"
        page.goto(f"{cko.url}/_sandbox/ui/objects/checkout/payment/{pending.id}")
        assert page.locator("details.actions").get_attribute("open") is not None
        page.check(f"#hosted input[name=three_ds][value={outcome}]")
        page.click("#hosted button")
        assert "hosted step done" in page.locator(".notice").inner_text()
        assert page.locator("#status").inner_text() == expected
        assert api.payments.get_payment_details(pending.id).status == expected
        shots(page, f"payment-3ds-{outcome}")

    # reset the tenant: its objects are gone
    page.goto(dash)
    page.click("form:has(input[name=tenant]) button.danger")
    assert "reset tenant" in page.locator(".notice").inner_text()
    assert "Nothing stored yet" in page.locator("main").inner_text()
    shots(page, "overview-reset")
    assert all(os.path.getsize(path) > 0 for path in shots.taken)


def test_the_pages_work_with_javascript_on_too(cko, browser, shots):
    api = sdk(cko.url)
    pay = api.payments.request_payment(payment_request(card_source(), reference="js-on"))
    context = browser.new_context()
    try:
        pg = context.new_page()
        errors = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(f"{cko.url}/_sandbox/ui/objects/checkout/payment/{pay.id}")
        assert pg.locator("#live").is_visible()    # the optional live refresh shows up only with JavaScript
        pg.click("#clock-form button[value=PT1H]")
        assert "clock moved" in pg.locator(".notice").inner_text()
        assert errors == []
        shots(pg, "javascript-on")
    finally:
        context.close()
    assert json.loads(requests.get(cko.url + "/_sandbox/clock", timeout=10).text)["now"] == "2026-01-01T01:00:00.000Z"
