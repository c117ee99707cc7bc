"""Gr4vy's sandbox card simulator: every amount code, the postal-code (AVS) and CVV triggers."""
import pytest
from gr4vy import errors, models
from gr4vy_helpers import CARD, client, new_key

# The card simulator's amount table (docs: connections/payments/mock-card), written out on purpose:
# the test must not read the sandbox's own table.
AMOUNT_CODES = {
    200001: "canceled_payment_method", 200002: "disputed_transaction", 200003: "duplicate_transaction",
    200004: "expired_authorization", 200005: "expired_payment_method", 200006: "incorrect_billing_address",
    200007: "incorrect_country", 200008: "incorrect_currency", 200009: "incorrect_cvv",
    200010: "incorrect_expiry_date", 200011: "insufficient_funds", 200012: "issuer_decline",
    200013: "other_decline", 200014: "requires_buyer_authentication", 200015: "refused_transaction",
    200016: "service_decline", 200017: "suspected_fraud", 200018: "unavailable_payment_method",
    200019: "unknown_payment_method", 200020: "unsupported_transaction", 200021: "unsupported_payment_method",
    200022: "cancelled_buyer_approval", 300001: "insufficient_service_permissions", 300002: "invalid_amount",
    300003: "invalid_payment_method", 300004: "invalid_service_configuration",
    300005: "invalid_service_credentials", 300006: "invalid_service_response",
    300007: "invalid_tax_identifier", 300008: "missing_billing_address", 300009: "missing_cvv",
    300010: "missing_shipping_address", 300011: "missing_tax_identifier", 300012: "refund_period_expired",
    300013: "service_error", 300014: "service_network_error", 300015: "service_rate_limit",
    400001: "internal_error", 400002: "invalid_billing_address", 400003: "invalid_operation",
    400004: "invalid_request_parameters", 400005: "invalid_service_request",
    400006: "invalid_shipping_address", 400007: "service_resource_conflict", 400008: "unexpected_state",
    400009: "unknown_error", 400010: "unknown_service_resource", 400011: "unsupported_country",
    400012: "unsupported_currency", 400013: "unrecognised_country", 400014: "unrecognised_currency",
    400015: "unrecognised_payment_method", 400016: "unrecognised_scheme", 400017: "unsupported_scheme",
}

DECLINES = {"canceled_payment_method", "expired_authorization", "expired_payment_method",
            "incorrect_billing_address", "incorrect_country", "incorrect_currency", "incorrect_cvv",
            "incorrect_expiry_date", "insufficient_funds", "issuer_decline", "other_decline",
            "refused_transaction", "service_decline", "suspected_fraud"}


@pytest.fixture(scope="module")
def shared():
    from simulator.testing import SandboxServer
    srv = SandboxServer({"seed": 3, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual"}).start()
    yield srv, client(srv, new_key()[0])
    srv.stop()


@pytest.mark.parametrize("amount,code", sorted(AMOUNT_CODES.items()))
def test_every_authorization_amount_code(shared, amount, code):
    _, sdk = shared
    tx = sdk.transactions.create(amount=amount, currency="USD", payment_method=CARD, intent="capture")
    expected = "authorization_declined" if code in DECLINES else "authorization_failed"
    assert (tx.status, tx.error_code) == (expected, code)
    assert tx.intent_outcome == "failed"
    assert tx.authorized_amount == 0 and tx.captured_amount == 0
    assert tx.raw_response_code == code and tx.raw_response_description
    assert tx.scheme_transaction_id is None


def test_other_amounts_succeed(shared):
    _, sdk = shared
    for amount in (0, 1, 199999, 200000, 200023, 600000):
        tx = sdk.transactions.create(amount=amount, currency="USD", payment_method=CARD)
        assert tx.status == "authorization_succeeded", amount
        assert tx.error_code is None


@pytest.mark.parametrize("amount,code,status", [(500001, "service_network_error", "failed"),
                                                (500002, "refused_transaction", "declined")])
def test_capture_amount_codes(shared, amount, code, status):
    _, sdk = shared
    tx = sdk.transactions.create(amount=amount, currency="USD", payment_method=CARD)
    assert tx.status == "authorization_succeeded"
    wrapper = sdk.transactions.capture(transaction_id=tx.id, prefer=["resource=transaction-capture"])
    assert isinstance(wrapper, models.TransactionCapture)
    assert (wrapper.status, wrapper.code) == (status, code)
    assert wrapper.transaction.status == "authorization_succeeded"
    assert wrapper.transaction.captured_amount == 0
    # intent capture on the same amount: authorised, but the capture leg fails
    both = sdk.transactions.create(amount=amount, currency="USD", payment_method=CARD, intent="capture")
    assert (both.status, both.intent_outcome, both.error_code) == ("authorization_succeeded", "failed", code)


@pytest.mark.parametrize("amount,code,status", [(510001, "service_network_error", "failed"),
                                                (510002, "issuer_decline", "declined")])
def test_void_amount_codes(shared, amount, code, status):
    _, sdk = shared
    tx = sdk.transactions.create(amount=amount, currency="USD", payment_method=CARD)
    wrapper = sdk.transactions.void(transaction_id=tx.id, prefer=["resource=transaction-void"])
    assert (wrapper.status, wrapper.code) == (status, code)
    assert sdk.transactions.get(transaction_id=tx.id).status == "authorization_succeeded"


@pytest.mark.parametrize("amount,code,status", [(520001, "disputed_transaction", "failed"),
                                                (520002, "issuer_decline", "declined"),
                                                (520003, "service_error", "failed"),
                                                (520004, "refund_already_satisfied", "failed")])
def test_refund_amount_codes(shared, amount, code, status):
    _, sdk = shared
    tx = sdk.transactions.create(amount=amount, currency="USD", payment_method=CARD, intent="capture")
    assert tx.status == "capture_succeeded"
    refund = sdk.transactions.refunds.create(transaction_id=tx.id, amount=100)
    assert (refund.status, refund.error_code) == (status, code)
    assert sdk.transactions.get(transaction_id=tx.id).refunded_amount == 0


@pytest.mark.parametrize("postal_code,avs", [("1077", "no_match"), ("88100", "partial_match_postcode"),
                                              ("99501", "partial_match_address"), ("10001", "match")])
def test_postal_code_triggers_avs(shared, postal_code, avs):
    _, sdk = shared
    guest = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD,
                                    buyer={"billing_details": {"address": {"postal_code": postal_code}}})
    assert guest.avs_response_code == avs
    buyer = sdk.buyers.create(billing_details={"first_name": "Ada", "address": {"postal_code": postal_code,
                                                                               "country": "US"}})
    stored = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD, buyer_id=buyer.id)
    assert stored.avs_response_code == avs


def test_no_billing_address_gives_avs_unavailable(shared):
    _, sdk = shared
    assert sdk.transactions.create(amount=100, currency="USD", payment_method=CARD).avs_response_code == "unavailable"


@pytest.mark.parametrize("security_code,cvv", [("222", "not_provided"), ("333", "no_match"), ("123", "match"),
                                               (None, "not_provided")])
def test_security_code_triggers_cvv(shared, security_code, cvv):
    _, sdk = shared
    card = {**CARD, "security_code": security_code}
    if security_code is None:
        card.pop("security_code")
    tx = sdk.transactions.create(amount=100, currency="USD", payment_method=card)
    assert tx.status == "authorization_succeeded"
    assert tx.cvv_response_code == cvv


def test_invalid_card_number_is_a_validation_error(shared):
    _, sdk = shared
    with pytest.raises(errors.Error400) as exc:
        sdk.transactions.create(amount=100, currency="USD", payment_method={**CARD, "number": "4111111111111112"})
    assert exc.value.data.details[0].pointer == "/payment_method/number"
