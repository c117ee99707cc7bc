"""Card numbers: validation, brand, masking, and expiry on the virtual clock.

The full number never leaves the request that carried it: objects keep the BIN, the last four and
a fingerprint; the journal keeps a masked copy.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

_PAN_IN_TEXT = re.compile(r"(?<!\d)(\d{6})\d{3,9}(\d{4})(?!\d)")


def digits_only(number: Any) -> str:
    return re.sub(r"[\s-]", "", str(number))


def luhn_ok(number: str) -> bool:
    # isdigit() alone also passes superscripts and other Unicode digits that int() refuses
    if not (number.isascii() and number.isdigit()) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def scheme(number: str) -> str:
    """Card scheme by IIN range, in the words most providers use."""
    if number.startswith("4"):
        return "Visa"
    if re.match(r"^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))", number):
        return "Mastercard"
    if re.match(r"^3[47]", number):
        return "American Express"
    if re.match(r"^(6011|65|64[4-9])", number):
        return "Discover"
    if re.match(r"^35(2[89]|[3-8])", number):
        return "JCB"
    if re.match(r"^3(0[0-5]|[68])", number):
        return "Diners Club"
    if re.match(r"^(5018|5020|5038|6304|6759|676[1-3])", number):
        return "Maestro"
    return "Unknown"


def mask(number: str) -> str:
    """First six and last four, the most any log or object may hold."""
    number = digits_only(number)
    if len(number) < 12:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_text(text: str) -> str:
    """Mask every run of 13-19 digits in free text (journal bodies, form posts)."""
    return _PAN_IN_TEXT.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 10) + m.group(2), text)


def mask_json(value: Any) -> Any:
    """Mask card numbers inside parsed JSON, including numbers sent as JSON integers."""
    if isinstance(value, dict):
        return {k: mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and 12 <= len(str(abs(value))) <= 19:
        return mask(str(value))
    return value


def fingerprint(number: str, salt: str = "") -> str:
    """Stable per card (and per salt, e.g. a tenant): lets merchants dedupe without the PAN."""
    return hashlib.sha256(f"{salt}:{digits_only(number)}".encode()).hexdigest().upper()


def expired(exp_month: int, exp_year: int, now: datetime) -> bool:
    """A card is valid through the last day of its expiry month."""
    if exp_year < 100:
        exp_year += 2000
    return (now.year, now.month) > (exp_year, exp_month)


def masked_dump(value: Any) -> str:
    return json.dumps(mask_json(value), separators=(",", ":"))
