"""Integer minor units inside; each provider's wire format is converted at the edge."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

# The bound for minor-unit amounts where a provider states none: the largest signed 32-bit
# integer, what most acquirers' amount fields hold; beyond it a capture or refund of the same
# amount could not be represented either.
MAX_MINOR = 2**31 - 1

# ISO 4217 exponents that differ from 2; everything else has two decimals.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


def exponent(currency: str) -> int:
    return _EXPONENTS.get((currency or "").upper(), 2)


def to_minor(value, currency: str) -> int:
    """Major-unit decimal (string or number) to integer minor units; ValueError if not exact."""
    if isinstance(value, bool):
        raise ValueError("amount must be a number")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a decimal amount: {value!r}")
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"too many decimal places for {currency}: {value!r}")
    return int(scaled)


def to_major(minor: int, currency: str) -> str:
    """Integer minor units to a major-unit decimal string with the currency's exponent."""
    exp = exponent(currency)
    quant = Decimal(1).scaleb(-exp)
    with localcontext() as ctx:  # the default 28 digits would make an absurd amount an exception
        ctx.prec = max(ctx.prec, len(str(abs(int(minor)))) + exp + 1)
        return str((Decimal(minor).scaleb(-exp)).quantize(quant, rounding=ROUND_HALF_UP))
