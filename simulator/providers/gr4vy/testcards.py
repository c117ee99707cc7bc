"""Gr4vy's sandbox card simulator: the outcome is picked by the amount (docs "mock card"),
AVS by the buyer's billing postal code, CVV by the security code. Plus the sandbox's own magic
values for the recurring-payment guide's warnings, which Gr4vy documents but gives no trigger for.
"""
from __future__ import annotations

# -- error_code vocabulary, grouped as the error-codes page groups it --------------------------
# "Connector declines" end as authorization_declined, "connector failures" as authorization_failed.
CONNECTOR_DECLINES = {
    "canceled_payment_method", "expired_authorization", "expired_payment_method",
    "incorrect_billing_address", "incorrect_country", "incorrect_currency", "incorrect_cvv",
    "incorrect_expiry_date", "insufficient_funds", "issuer_decline", "other_decline",
    "refused_transaction", "service_decline", "suspected_fraud",
}
CORE_FAILURES = {"incomplete_buyer_approval", "failed_buyer_approval", "missing_redirect_url",
                 "flow_decline", "all_attempts_skipped", "canceled"}

# Authorization outcome by amount (minor units).
AUTHORIZATION_CODES = {
    200001: "canceled_payment_method", 200002: "disputed_transaction", 200003: "duplicate_transaction",
    200004: "expired_authorization", 200005: "expired_payment_method", 200006: "incorrect_billing_address",
    200007: "incorrect_country", 200008: "incorrect_currency", 200009: "incorrect_cvv",
    200010: "incorrect_expiry_date", 200011: "insufficient_funds", 200012: "issuer_decline",
    200013: "other_decline", 200014: "requires_buyer_authentication", 200015: "refused_transaction",
    200016: "service_decline", 200017: "suspected_fraud", 200018: "unavailable_payment_method",
    200019: "unknown_payment_method", 200020: "unsupported_transaction", 200021: "unsupported_payment_method",
    200022: "cancelled_buyer_approval",
    300001: "insufficient_service_permissions", 300002: "invalid_amount", 300003: "invalid_payment_method",
    300004: "invalid_service_configuration", 300005: "invalid_service_credentials",
    300006: "invalid_service_response", 300007: "invalid_tax_identifier", 300008: "missing_billing_address",
    300009: "missing_cvv", 300010: "missing_shipping_address", 300011: "missing_tax_identifier",
    300012: "refund_period_expired", 300013: "service_error", 300014: "service_network_error",
    300015: "service_rate_limit",
    400001: "internal_error", 400002: "invalid_billing_address", 400003: "invalid_operation",
    400004: "invalid_request_parameters", 400005: "invalid_service_request", 400006: "invalid_shipping_address",
    400007: "service_resource_conflict", 400008: "unexpected_state", 400009: "unknown_error",
    400010: "unknown_service_resource", 400011: "unsupported_country", 400012: "unsupported_currency",
    400013: "unrecognised_country", 400014: "unrecognised_currency", 400015: "unrecognised_payment_method",
    400016: "unrecognised_scheme", 400017: "unsupported_scheme",
}
# Follow-up operations key off the transaction's amount (void has no amount of its own).
CAPTURE_CODES = {500001: "service_network_error", 500002: "refused_transaction"}
VOID_CODES = {510001: "service_network_error", 510002: "issuer_decline"}
REFUND_CODES = {520001: "disputed_transaction", 520002: "issuer_decline", 520003: "service_error",
                520004: "refund_already_satisfied"}

ALL_CODES = (set(AUTHORIZATION_CODES.values()) | set(CAPTURE_CODES.values()) | set(VOID_CODES.values())
             | set(REFUND_CODES.values()) | CORE_FAILURES)


def declined(code: str) -> bool:
    """Whether an error_code is a decline (as opposed to a failure)."""
    return code in CONNECTOR_DECLINES


def avs_response(postal_code: str | None) -> str:
    if not postal_code:
        return "unavailable"
    if "77" in postal_code:
        return "no_match"
    if "88" in postal_code:
        return "partial_match_postcode"
    if "99" in postal_code:
        return "partial_match_address"
    return "match"


def cvv_response(security_code: str | None) -> str:
    if not security_code or security_code == "222":
        return "not_provided"
    if security_code == "333":
        return "no_match"
    return "match"


# -- sandbox magic values (not Gr4vy's; the guide warns, the sandbox makes it reproducible) ----
# A customer-initiated transaction on this card without a security_code is declined: the guide
# says leaving out the CVV on a CIT "could result in declined transactions".
CVV_REQUIRED_CARD = "4000000000000101"
CIT_WITHOUT_CVV = ("issuer_decline", "cvv_required",
                   "Issuer requires the security code on a customer-initiated transaction")
# A merchant-initiated transaction on this card, typed in (not vaulted) and naming no earlier
# customer-initiated one (no previous_scheme_transaction_id), is declined: the guide only says it
# is "recommended" to link such an MIT, so on any other card it is approved.
MIT_LINK_REQUIRED_CARD = "4000000000000200"
MIT_NOT_LINKED = ("issuer_decline", "mit_not_linked",
                  "Merchant-initiated transaction is not linked to a customer-initiated transaction: "
                  "send previous_scheme_transaction_id or use a stored payment method")
# A stored card that a scenario's `token` effect killed.
TOKEN_DEAD = {"inactive": ("canceled_payment_method", "token_inactive", "Stored payment method is no longer active"),
              "expired": ("expired_payment_method", "token_expired", "Stored payment method has expired")}

RAW_RESPONSES = {code: code.replace("_", " ").capitalize() for code in ALL_CODES}
