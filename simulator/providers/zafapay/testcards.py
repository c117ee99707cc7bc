"""ZafaPay's magic values.

ZafaPay publishes only 4242424242424242 (in its token examples); every other number below is a
simulator choice [ASSUMED], Stripe-style so the numbers look familiar. Outcomes are decided when
the card is entered (hosted page, token creation) and remembered as a *profile*, because the full
number is never kept.
"""
from __future__ import annotations

from decimal import Decimal

# unified decline codes: code -> (category, recommended_action, message)
# card_declined/soft_decline/use_different_card is documented; the rest of the table is [ASSUMED].
DECLINE_CODES = {
    "card_declined": ("soft_decline", "use_different_card", "The card was declined."),
    "insufficient_funds": ("soft_decline", "retry_later", "The card has insufficient funds."),
    "expired_card": ("hard_decline", "update_card", "The card has expired."),
    "processing_error": ("soft_decline", "retry", "An error occurred while processing the card."),
}

SUCCESS_VISA = "4242424242424242"
SUCCESS_MASTERCARD = "5555555555554444"
THREE_DS = "4000000000003220"
RECURRING_DECLINE = "4000000000000341"

# card number -> profile
CARDS = {
    SUCCESS_VISA: "success",
    SUCCESS_MASTERCARD: "success",
    THREE_DS: "three_ds",
    "4000000000000002": "decline:card_declined",
    "4000000000009995": "decline:insufficient_funds",
    "4000000000000069": "decline:expired_card",
    RECURRING_DECLINE: "recurring_decline",
}

# a recurring charge whose amount ends in .51 is declined for insufficient funds
INSUFFICIENT_FUNDS_CENTS = 51

# flows: connector, whether the connector supports recurring, whether the flow is active
FLOWS = {
    "flow_default": {"connector_id": "conn_sandbox", "recurring": True, "active": True},
    "flow_no_recurring": {"connector_id": "conn_sandbox_basic", "recurring": False, "active": True},
    "flow_inactive": {"connector_id": "conn_sandbox", "recurring": True, "active": False},
}
DEFAULT_FLOW = "flow_default"

DEFAULT_CURRENCIES = ("usd", "sgd", "jpy")
DEFAULT_MIN = Decimal("0.50")
DEFAULT_MAX = Decimal("100000.00")


def profile(number: str) -> str:
    """Unknown (but Luhn-valid) numbers succeed, as in most sandboxes."""
    return CARDS.get(number, "success")


def decline_of(profile_name: str | None) -> str | None:
    if profile_name and profile_name.startswith("decline:"):
        return profile_name.split(":", 1)[1]
    return None


def brand(scheme_name: str) -> str:
    return {"Visa": "visa", "Mastercard": "mastercard", "American Express": "amex", "Discover": "discover",
            "JCB": "jcb", "Diners Club": "diners", "Maestro": "maestro"}.get(scheme_name, "unknown")
