"""Bank 131 magic values. Bank 131 publishes no demo test cards, so these are the sandbox's own
convention (documented in docs/providers/bank131.md): Stripe-like numbers everyone recognises, and
amounts whose last digits mirror the cards, for recurrent charges where no card number is sent."""
from __future__ import annotations

SUCCESS_CARD = "4242424242424242"
THREE_DS = "3ds"

# PAN -> behaviour: None succeeds, "3ds" asks for 3-D Secure then succeeds, anything else is the
# error code the payment fails with after confirm.
CARDS = {
    SUCCESS_CARD: None,
    "5555555555554444": None,
    "2200000000000004": None,            # Mir
    "4000000000003220": THREE_DS,
    "4000000000000002": "declined_by_issuer_bank",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "bank_card_expired",
    "4000000000000119": "provider_timeout",
    "4000000000000127": "not_permitted_by_issuer_bank",
}
DECLINE_CARD = "4000000000000002"
THREE_DS_CARD = "4000000000003220"

# amount_details.amount (minor units) -> behaviour, for any payment including recurrent charges.
AMOUNTS = {
    1003: THREE_DS,                     # 10.03
    1002: "declined_by_issuer_bank",    # 10.02
    1051: "insufficient_funds",         # 10.51 (…9995's cousin: "51" is the ISO reason code)
    1069: "bank_card_expired",          # 10.69
    1119: "provider_timeout",           # 11.19
}

# Descriptions Bank 131 gives for its codes (one code may have several; these are ours).
DESCRIPTIONS = {
    "3DS_error": "3-D Secure authentication failed",
    "bank_card_expired": "Bank card has expired",
    "card_number_does_not_exist": "Card number does not exist",
    "declined_by_issuer_bank": "Declined by the issuer bank",
    "not_permitted_by_issuer_bank": "Operation not permitted by the issuer bank",
    "insufficient_funds": "Insufficient funds",
    "activity_count_exceeded": "Activity count limit exceeded",
    "binding_is_deactivated": "Recurrent token is deactivated",
    "amount_less_allowed_provider": "Amount is less than allowed",
    "operation_rejected": "Operation rejected by security rules",
    "provider_internal_error": "Provider internal error",
    "provider_issuer_unavailable": "Issuer unavailable",
    "provider_foreign_transfer_prohibited": "Foreign transfer prohibited",
    "provider_exceeds_amount_limit": "Amount limit exceeded",
    "provider_timeout": "Provider timeout",
    "session_cancelled_by_partner": "Session cancelled by partner",
    "confirm_timeout": "Partner did not confirm the payment in time",
}

# Codes a scenario may use as `decline:` — the ones a payment can fail with.
DECLINE_CODES = frozenset(DESCRIPTIONS) - {"session_cancelled_by_partner"}


def card_behaviour(number: str) -> str | None:
    return CARDS.get(number)


def amount_behaviour(amount: int) -> str | None:
    return AMOUNTS.get(amount)


def describe(code: str) -> str:
    return DESCRIPTIONS.get(code, code.replace("_", " ").capitalize())
