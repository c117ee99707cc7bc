"""Every test card, amount trigger, 3DS card and soft-decline rule of the fact sheet, via the SDK."""
import pytest

from cko_helpers import MANDATE_3DS, card_source, id_source, payment_request, sdk
from simulator.providers.checkout import testcards
from simulator.testing import DEFAULT_START, SandboxServer


@pytest.mark.parametrize("number,code", sorted(testcards.DECLINE_CARDS.items()))
def test_decline_cards(api, number, code):
    resp = api.payments.request_payment(payment_request(card_source(number), payment_type="Regular"))
    if code == "20154":   # the soft-decline card is upgraded to 3DS instead (see below)
        assert resp.http_metadata.status_code == 202
        return
    assert resp.http_metadata.status_code == 201
    assert resp.approved is False and resp.status == "Declined"
    assert resp.response_code == code
    assert resp.response_summary == testcards.summary(code)
    assert not hasattr(resp.source, "id")           # only approved payments store the card
    assert set(vars(resp._links)) - {"http_metadata"} == {"self", "actions"}


@pytest.mark.parametrize("number", ["4242424242424242", "5436031030606378", "345678901234564", "6011111111111117"])
def test_approved_cards(api, number):
    cvv = "1000" if number.startswith("3") else "100"
    resp = api.payments.request_payment(payment_request(card_source(number, cvv=cvv), payment_type="Regular",
                                                        capture=False))
    assert resp.approved is True and resp.status == "Authorized" and resp.response_code == "10000"
    assert resp.source.last4 == number[-4:] and resp.source.bin == number[:6]


@pytest.mark.parametrize("number,code", sorted(testcards.VERIFICATION_ONLY_DECLINES.items()))
def test_verification_only_decline_cards(api, number, code):
    verify = api.payments.request_payment(payment_request(card_source(number), amount=0, payment_type="Regular"))
    assert verify.status == "Card Verified"
    charge = api.payments.request_payment(payment_request(card_source(number), payment_type="Regular"))
    assert charge.status == "Declined" and charge.response_code == code


AMOUNT_CASES = [(12305, "20005"), (1012, "20012"), (1014, "20014"), (1051, "20051"), (1054, "20087"),
                (1062, "20062"), (1063, "20063"), (1033, "30033"), (9998, "20068"), (4001, "40101"),
                (4008, "40108"), (2011, "200R1"), (2013, "200R3"), (1000, "10000")]


def test_amount_triggers_are_off_by_default(api):
    resp = api.payments.request_payment(payment_request(card_source(), amount=1051, payment_type="Regular"))
    assert resp.approved is True


@pytest.mark.parametrize("amount,code", AMOUNT_CASES)
def test_amount_triggers_when_enabled(amount, code):
    with SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                        "providers": {"checkout": {"amount_triggers": True}}}) as srv:
        resp = sdk(srv.url).payments.request_payment(payment_request(card_source(), amount=amount,
                                                                     payment_type="Regular"))
        assert resp.response_code == code


def test_soft_decline_20154_is_upgraded_to_3ds(server, api):
    resp = api.payments.request_payment(payment_request(card_source("4500622868341387"), payment_type="Recurring"))
    assert resp.http_metadata.status_code == 202 and resp.status == "Pending"
    assert getattr(resp, "3ds").upgrade_reason == "sca_retry"
    assert resp._links.redirect.href
    server.hosted("checkout", resp.id, outcome="approve", three_ds="pass")
    details = api.payments.get_payment_details(resp.id)
    assert details.status == "Captured" and details.approved is True


def test_soft_decline_20154_without_allow_upgrade_is_declined(api):
    resp = api.payments.request_payment(payment_request(card_source("4500622868341387"),
                                                        three_ds={"allow_upgrade": False}))
    assert resp.http_metadata.status_code == 201
    assert resp.status == "Declined" and resp.response_code == "20154"


def test_merchant_initiated_20154_is_never_upgraded(api):
    resp = api.payments.request_payment(payment_request(card_source("4500622868341387"), merchant_initiated=True,
                                                        previous_payment_id="481108533665280"))
    assert resp.http_metadata.status_code == 201
    assert resp.status == "Declined" and resp.response_code == "20154"


def test_decline_card_stored_earlier_declines_merchant_initiated_charge(server, api):
    # an approved verification stores the card; the card's decline applies once money moves
    verify = api.payments.request_payment(payment_request(card_source("4546381219393284"), amount=0,
                                                          payment_type="Recurring"))
    mit = api.payments.request_payment(payment_request(id_source(verify.source.id), merchant_initiated=True))
    assert mit.status == "Declined" and mit.response_code == "20051"


@pytest.mark.parametrize("number,expected", [
    ("4485040371536584", "Captured"),   # frictionless, authenticated
    ("4010061700000021", "Captured"),   # challenge, authenticated
    ("4539628347117863", "Declined"),   # frictionless, not authenticated
    ("4243754271700719", "Declined"),   # challenge, not authenticated
    ("4150561000000019", "Declined"),   # challenge, rejected
    ("4556574722325580", "Captured"),   # attempted
])
def test_3ds_cards(server, api, number, expected):
    resp = api.payments.request_payment(payment_request(card_source(number), three_ds=MANDATE_3DS))
    assert resp.http_metadata.status_code == 202
    server.hosted("checkout", resp.id, outcome="approve", three_ds="pass")
    details = api.payments.get_payment_details(resp.id)
    assert details.status == expected
    if expected == "Declined":
        assert details.response_code == "20151"


def test_frictionless_page_needs_no_password(api):
    import requests
    resp = api.payments.request_payment(payment_request(card_source("4485040371536584"), three_ds=MANDATE_3DS))
    page = requests.get(resp._links.redirect.href, timeout=10)
    assert 'name="password"' not in page.text
    requests.post(resp._links.redirect.href, data={"action": "submit"}, timeout=10)
    assert api.payments.get_payment_details(resp.id).status == "Captured"


def test_not_enrolled_card_with_3ds_is_declined_20150(api):
    resp = api.payments.request_payment(payment_request(card_source("4484070000035519"), three_ds=MANDATE_3DS))
    assert resp.http_metadata.status_code == 201
    assert resp.status == "Declined" and resp.response_code == "20150"


def test_not_enrolled_card_with_attempt_n3d_is_downgraded(api):
    resp = api.payments.request_payment(payment_request(card_source("4484070000035519"),
                                                        three_ds={"enabled": True, "attempt_n3d": True}))
    assert resp.status == "Authorized"
    three_ds = getattr(resp, "3ds")
    assert three_ds.downgraded is True and three_ds.enrolled == "N"


def test_declined_3ds_card_after_authentication_keeps_issuer_code(server, api):
    resp = api.payments.request_payment(payment_request(card_source("4544249167673670"), three_ds=MANDATE_3DS))
    server.hosted("checkout", resp.id)
    details = api.payments.get_payment_details(resp.id)
    assert details.status == "Declined" and details.response_code == "20051"


def test_cancel_on_challenge_page_fails_authentication(server, api):
    resp = api.payments.request_payment(payment_request(card_source(), three_ds=MANDATE_3DS))
    server.hosted("checkout", resp.id, outcome="cancel")
    assert api.payments.get_payment_details(resp.id).response_code == "20151"
