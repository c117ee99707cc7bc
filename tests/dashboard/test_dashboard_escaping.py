"""What the merchant sent is shown, escaped, on every page; a card number never in full."""
import re

import pytest
from cko_helpers import card_source, id_source, payment_request, sdk
from paysera_helpers import PayseraClient, first_payment

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
PAN = "4242424242424242"
CARD_LIKE = re.compile(r"(?<!\d)\d{13,19}(?!\d)")   # what a card number looks like, unmasked


@pytest.fixture
def hostile(server, receiver):
    """Objects whose references, descriptions and metadata carry markup and card numbers."""
    api = sdk(server.url)
    cit = api.payments.request_payment(payment_request(
        card_source(), reference=SCRIPT, description=f"card {PAN}",
        metadata={"note": IMG, "pan": PAN, PAN: "a card number as a key"}))
    mit = api.payments.request_payment(payment_request(
        id_source(cit.source.id), merchant_initiated=True, previous_payment_id=cit.id, reference=IMG))
    paysera = PayseraClient(server.url)
    pr = paysera.create(**first_payment(receiver.url, order_id=SCRIPT, description=f"{IMG} {PAN}"))
    assert pr.status_code == 200, pr.text
    server.hosted("paysera", pr.json()["id"], outcome="approve")
    server.flush()
    return {"checkout": [cit.id, mit.id], "paysera": pr.json()["id"]}


def pages(server, ids):
    base = server.url + "/_sandbox"
    return [base + "/", base + "/ui/objects", base + "/ui/objects?reference=script", base + "/ui/webhooks",
            base + "/ui/scenarios", base + "/ui/diagrams",
            *(f"{base}/ui/objects/checkout/payment/{i}" for i in ids["checkout"]),
            f"{base}/ui/objects/paysera/payment_request/{ids['paysera']}"]


def test_no_page_carries_raw_markup_or_a_full_card_number(server, hostile, browser):
    context = browser.new_context()   # JavaScript on: an unescaped script would run
    dialogs = []
    try:
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for url in pages(server, hostile):
            page.goto(url)
            html = page.content()
            assert SCRIPT not in html and "<img src=x" not in html, url
            assert PAN not in html and not CARD_LIKE.search(page.inner_text("body")), url
        page.goto(pages(server, hostile)[6])
        assert page.locator("#reference").inner_text() == SCRIPT       # shown as text, not markup
        assert "424242******4242" in page.locator("#data").inner_text()
        assert page.locator("#series li").count() == 2
    finally:
        context.close()
    assert dialogs == []


def test_json_views_mask_card_numbers(server, hostile):
    import requests
    base = server.url + "/_sandbox/objects"
    cit = hostile["checkout"][0]
    listing = requests.get(base + "?limit=500", timeout=10).text
    assert PAN not in listing and SCRIPT in listing        # JSON carries the reference as sent
    for path in (f"/checkout/payment/{cit}", f"/checkout/payment/{cit}/timeline",
                 f"/paysera/payment_request/{hostile['paysera']}/timeline"):
        text = requests.get(base + path, timeout=10).text
        assert PAN not in text and "424242******4242" in text, path
