"""Paysera's magic values in the sandbox.

Paysera publishes no test cards (recurring billing is production-only), so these are the
sandbox's own choice, documented in docs/providers/paysera.md. Decline reasons are the values of
``error_data.reason`` in the authorize error and the codes a scenario may name in ``decline:``.
"""
from __future__ import annotations

DECLINE_REASONS = {
    "do_not_honor": "Payment was declined by the card issuer",
    "insufficient_funds": "Insufficient funds",
    "card_expired": "The card has expired",
    "lost_card": "The card was reported lost",
    "stolen_card": "The card was reported stolen",
    "card_restricted": "The card is restricted",
    "limit_exceeded": "The card's limit is exceeded",
    "suspected_fraud": "Suspected fraud",
}

# Cards typed on the hosted page. Any other Luhn-valid number is approved.
APPROVE_CARDS = {
    "4111111111111111": "Visa, approved",
    "5555555555554444": "Mastercard, approved",
}
DECLINE_CARDS = {
    "4000000000000002": "do_not_honor",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "card_expired",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
}
# A card whose token charges are declined later (the hosted payment itself succeeds): lets a
# merchant rehearse a renewal that fails for insufficient funds.
TOKEN_DECLINE_CARDS = {
    "4000000000000341": "insufficient_funds",
}

DEFAULT_APPROVE_CARD = "4111111111111111"
DEFAULT_DECLINE_CARD = "4000000000000002"

# Amounts: the last two digits of the amount in minor units (cents) pick a decline for both the
# hosted page and token charges: 10.51 EUR -> insufficient_funds. Currencies without decimals use
# the last two digits of the whole amount.
DECLINE_AMOUNT_ENDINGS = {
    51: "insufficient_funds",
    5: "do_not_honor",
    54: "card_expired",
    59: "suspected_fraud",
    61: "limit_exceeded",
}


def decline_for_card(number: str) -> str | None:
    return DECLINE_CARDS.get(number)


def decline_for_amount(minor: int) -> str | None:
    return DECLINE_AMOUNT_ENDINGS.get(minor % 100)
