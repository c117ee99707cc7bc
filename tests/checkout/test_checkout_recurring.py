"""The seed guide's flow, end to end, through the official checkout-sdk and a plain HTML form."""
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from checkout_sdk.exception import CheckoutApiException
from checkout_sdk.payments.payments import CaptureRequest, RefundRequest

from cko_helpers import MANDATE_3DS, card_source, id_source, payment_request

# every response of this flow is checked against the provider's OpenAPI document
pytestmark = [pytest.mark.xdist_group("contract-checkout"), pytest.mark.usefixtures("contract_checked")]


def first_payment(api, **kw):
    req = payment_request(card_source(), three_ds=MANDATE_3DS, success_url="http://127.0.0.1:9/ok",
                          failure_url="http://127.0.0.1:9/fail", reference="ORD-5023-4E89", **kw)
    return api.payments.request_payment(req)


def test_cit_with_3ds_answers_202_pending_with_redirect(api):
    resp = first_payment(api)
    assert resp.http_metadata.status_code == 202
    assert resp.status == "Pending"
    assert re.fullmatch(r"pay_[a-z2-7]{26}", resp.id)
    assert getattr(resp, "3ds").enrolled == "Y"
    assert getattr(resp, "3ds").downgraded is False
    assert resp._links.redirect.href.startswith("http://127.0.0.1:")
    assert not hasattr(resp, "action_id")


def test_hosted_page_plain_form_authorizes_and_redirects_with_session_id(api):
    resp = first_payment(api)
    page = requests.get(resp._links.redirect.href, timeout=10)
    assert page.status_code == 200 and "<form" in page.text and 'name="password"' in page.text
    done = requests.post(resp._links.redirect.href, data={"password": "Checkout1!", "action": "submit"},
                         allow_redirects=False, timeout=10)
    assert done.status_code == 302
    target = urlsplit(done.headers["Location"])
    assert target.path == "/ok"
    session_id = parse_qs(target.query)["cko-session-id"][0]
    assert session_id.startswith("sid_")

    details = api.payments.get_payment_details(resp.id)
    assert details.status == "Captured"        # capture defaults to true
    assert details.approved is True
    assert re.fullmatch(r"src_[a-z2-7]{26}", details.source.id)
    assert getattr(details, "3ds").authentication_response == "Y"
    by_session = api.payments.get_payment_details(session_id)
    assert by_session.id == resp.id
    assert [a.type for a in by_session.actions] == ["Capture", "Authorization"]


def test_wrong_password_fails_authentication_and_redirects_to_failure_url(api):
    resp = first_payment(api)
    done = requests.post(resp._links.redirect.href, data={"password": "nope", "action": "submit"},
                         allow_redirects=False, timeout=10)
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path == "/fail"
    details = api.payments.get_payment_details(resp.id)
    assert details.status == "Declined"
    assert details.response_code == "20151"
    assert not hasattr(details.source, "id")


def test_ci_hosted_action_is_the_same_step(server, api):
    resp = first_payment(api, capture=False)
    answer = server.hosted("checkout", resp.id, outcome="approve", three_ds="pass")
    assert answer.status_code == 200 and answer.json()["status"] == "Authorized"
    assert api.payments.get_payment_details(resp.id).status == "Authorized"
    again = server.hosted("checkout", resp.id, outcome="approve")
    assert again.status_code == 409


def test_stored_card_mit_a_month_later_then_capture_refund(server, api):
    cit = first_payment(api)
    server.hosted("checkout", cit.id)
    src = api.payments.get_payment_details(cit.id).source.id

    server.advance("P30D")
    mit = api.payments.request_payment(payment_request(id_source(src), amount=5000, merchant_initiated=True,
                                                       previous_payment_id=cit.id, capture=False))
    assert mit.http_metadata.status_code == 201
    assert mit.status == "Authorized" and mit.approved is True and mit.response_code == "10000"
    assert not hasattr(mit, "3ds") or getattr(mit, "3ds", None) is None
    assert mit.source.id == src
    assert mit.balances.available_to_capture == 5000
    assert mit.expires_on.startswith("2026-02-07")  # processed_on + 7 days on the virtual clock

    cap = CaptureRequest()
    cap.amount = 3000
    api.payments.capture_payment(mit.id, cap)
    details = api.payments.get_payment_details(mit.id)
    assert details.status == "Partially Captured"
    assert details.balances.total_captured == 3000
    assert details.balances.available_to_capture == 0   # a partial capture is final by default

    part = RefundRequest()
    part.amount = 1000
    api.payments.refund_payment(mit.id, part)
    assert api.payments.get_payment_details(mit.id).balances.available_to_refund == 2000
    api.payments.refund_payment(mit.id)                  # no body: the rest
    details = api.payments.get_payment_details(mit.id)
    assert details.status == "Refunded"
    assert details.balances.total_refunded == 3000
    actions = api.payments.get_payment_actions(mit.id)
    assert [a.type for a in actions.items] == ["Refund", "Refund", "Capture", "Authorization"]
    assert actions.items[-1].id == mit.action_id


def test_mit_void_and_void_after_capture_forbidden(server, api):
    cit = first_payment(api)
    server.hosted("checkout", cit.id)
    src = api.payments.get_payment_details(cit.id).source.id
    mit = api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True,
                                                       previous_payment_id=cit.id, capture=False))
    api.payments.void_payment(mit.id)
    assert api.payments.get_payment_details(mit.id).status == "Voided"
    mit2 = api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True,
                                                        previous_payment_id=mit.id))
    assert api.payments.get_payment_details(mit2.id).status == "Captured"
    try:
        api.payments.void_payment(mit2.id)
        raise AssertionError("void of a captured payment must be refused")
    except Exception as exc:
        assert exc.http_metadata.status_code == 403


def test_mit_without_previous_payment_id_finds_the_series_itself(server, api):
    cit = first_payment(api)
    server.hosted("checkout", cit.id)
    src = api.payments.get_payment_details(cit.id).source.id
    mit = api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True))
    assert mit.status == "Authorized"


def test_mit_with_raw_stored_card_as_in_the_guide(server, api):
    cit = first_payment(api)
    server.hosted("checkout", cit.id)
    source = card_source(cvv=None)
    source.stored = True
    mit = api.payments.request_payment(payment_request(source, merchant_initiated=True, previous_payment_id=cit.id))
    assert mit.http_metadata.status_code == 201 and mit.status == "Authorized"


def test_unknown_previous_payment_id_is_rejected(api):
    try:
        api.payments.request_payment(payment_request(card_source(), merchant_initiated=True,
                                                     previous_payment_id="pay_" + "a" * 26))
        raise AssertionError("expected 422")
    except Exception as exc:
        assert exc.http_metadata.status_code == 422
        assert exc.error_details == ["previous_payment_id_invalid"]


def test_scheme_transaction_id_from_another_psp_is_accepted(api):
    mit = api.payments.request_payment(payment_request(card_source(), merchant_initiated=True,
                                                       previous_payment_id="481108533665280"))
    assert mit.status == "Authorized"


def test_cit_without_mandate_indicator_makes_later_mits_soft_decline(server, api):
    cit = api.payments.request_payment(payment_request(card_source(), three_ds={"enabled": True}))
    server.hosted("checkout", cit.id)
    src = api.payments.get_payment_details(cit.id).source.id
    mit = api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True,
                                                       previous_payment_id=cit.id))
    assert mit.http_metadata.status_code == 201
    assert mit.status == "Declined" and mit.response_code == "20154"


def test_stored_card_declines_as_expired_after_its_expiry_passes(server, api):
    cit = api.payments.request_payment(payment_request(card_source(month=3, year=2026), three_ds=MANDATE_3DS))
    server.hosted("checkout", cit.id)
    src = api.payments.get_payment_details(cit.id).source.id
    ok = api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True, previous_payment_id=cit.id))
    assert ok.approved is True
    server.advance("P100D")   # 2026-04-11: the card expired at the end of March
    late = api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True,
                                                        previous_payment_id=cit.id))
    assert late.http_metadata.status_code == 201
    assert late.status == "Declined" and late.response_code == "20054"
    assert late.response_summary == "Expired card"


def test_unattended_challenge_times_out_after_15_minutes(server, api):
    resp = first_payment(api)
    server.advance("PT14M")
    assert api.payments.get_payment_details(resp.id).status == "Pending"
    server.advance("PT2M")
    details = api.payments.get_payment_details(resp.id)
    assert details.status == "Declined" and details.response_code == "20152"


def test_uncaptured_authorization_expires_after_seven_days(server, api):
    resp = api.payments.request_payment(payment_request(card_source(), capture=False))
    server.advance("P7DT1M")
    assert api.payments.get_payment_details(resp.id).status == "Expired"


def _non_final_capture(api, payment_id, amount):
    cap = CaptureRequest()
    cap.amount, cap.capture_type = amount, "NonFinal"
    return api.payments.capture_payment(payment_id, cap)


def test_what_non_final_captures_left_is_released_when_the_authorization_expires(server, api):
    resp = api.payments.request_payment(payment_request(card_source(), amount=1000, capture=False))
    _non_final_capture(api, resp.id, 100)
    server.advance("P6D")
    _non_final_capture(api, resp.id, 200)   # within expires_on the rest is still there to capture
    before = api.payments.get_payment_details(resp.id)
    assert before.balances.available_to_capture == 700 and hasattr(before._links, "capture")
    server.advance("P1DT1M")                # past expires_on
    after = api.payments.get_payment_details(resp.id)
    assert after.status == "Partially Captured"
    assert after.balances.available_to_capture == 0 and not hasattr(after._links, "capture")
    assert after.balances.total_captured == 300 and after.balances.available_to_refund == 300
    with pytest.raises(CheckoutApiException) as err:   # as capturing an Expired authorization
        api.payments.capture_payment(resp.id)
    assert err.value.http_metadata.status_code == 403
    api.payments.refund_payment(resp.id)   # what was captured stays refundable, all of it
    assert api.payments.get_payment_details(resp.id).status == "Refunded"


def test_a_refund_between_non_final_captures_does_not_keep_the_rest_past_expiry(server, api):
    resp = api.payments.request_payment(payment_request(card_source(), amount=1000, capture=False))
    _non_final_capture(api, resp.id, 400)
    refund = RefundRequest()
    refund.amount = 100
    api.payments.refund_payment(resp.id, refund)
    assert api.payments.get_payment_details(resp.id).balances.available_to_capture == 600
    server.advance("P7DT1M")
    after = api.payments.get_payment_details(resp.id)
    assert after.status == "Partially Refunded" and after.balances.available_to_capture == 0


def test_card_verification_with_zero_amount_stores_the_card(api):
    resp = api.payments.request_payment(payment_request(card_source(), amount=0, payment_type="Regular"))
    assert resp.http_metadata.status_code == 201
    assert resp.status == "Card Verified" and resp.approved is True
    assert resp.source.id.startswith("src_")
    assert api.payments.get_payment_actions(resp.id).items[0].type == "Card Verification"
