"""Magic values: an amount ending in 51 is declined for insufficient funds."""
DECLINE_CODES = ("insufficient_funds", "do_not_honor")


def decline_for_amount(amount: int) -> str | None:
    return "insufficient_funds" if amount % 100 == 51 else None
