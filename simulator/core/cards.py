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

from .memo import Memo

# 12 or more digits with only whitespace, dashes or '+' (a form-encoded space) between them: how
# people write card numbers, and every spelling ``digits_only`` (what a provider parses a card
# number with) reads as one, a tab or a no-break space between the groups included. Longer runs
# are masked too, or a PAN followed by more digits would slip through.
_PAN_IN_TEXT = re.compile(r"(?<!\d)\d(?:[\s+-]*\d){11,}(?![\s+-]*\d)")
# Card security codes by field name, in any provider's spelling (cvv, cvc2, security_code, ...).
_CVV = r"(?:card_?)?(?:cvv2?|cvc2?|cvn|cvd|cid|csc|security_?code)"
_CVV_NAME = re.compile("(?i)" + _CVV)
_CVV_IN_TEXT = re.compile(r"(?i)(?<![a-z0-9])(" + _CVV + r"""["']?\s*[:=]\s*["']?)([^"'&\s,;}\]]*)""")
# A UUID's groups are hex, so its decimal digits can line up into such a run across its dashes
# ("4d12-8345-678901234f4b"), as about one random UUID in thirty does. A UUID is an id,
# never a card number; its digits are read as letters, a UUID at a time and in place (every UUID is
# 36 characters), so positions in the text stay those of the original.
_HEX_GROUPS = [f"[0-9A-Fa-f]{{{n}}}" for n in (8, 4, 4, 4, 12)]
_NO_HEX_BEFORE, _NO_HEX_AFTER = "(?<![0-9A-Fa-f-])", "(?![0-9A-Fa-f-])"
_AS_LETTERS, _AS_LETTER_BYTES = "u" * 36, b"u" * 36
# A UUID spelled from its first group starts with a character class, so a search for it would try a
# match at every position of the body (~30 us for 2 KB). Matched from its first dash, with its
# first group in a lookbehind, it starts with a literal the regex engine jumps to (~3 us), and stays
# linear on a body of dashes.
_UUID_AT_DASH = f"-(?<={_NO_HEX_BEFORE}{_HEX_GROUPS[0]}-)" + "-".join(_HEX_GROUPS[1:]) + _NO_HEX_AFTER
_UUID_AT_DASH_IN_TEXT, _UUID_AT_DASH_IN_BYTES = re.compile(_UUID_AT_DASH), re.compile(_UUID_AT_DASH.encode())
# The pre-check runs on every journaled body, so it uses only C-level byte operations: every
# digit becomes "0" and separators vanish, then a plain substring search. The separators are the
# ASCII ones of ``_PAN_IN_TEXT`` (what ``str.isspace`` calls whitespace below 128); a body with
# other bytes is decoded and searched as text.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_SEPARATORS = b" +-\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_TWELVE_DIGITS = b"0" * 12
# Where a security-code name can start (a hint: "cv", "cid", "csc" or "security"), every one found
# in one scan: each hint has a "c", a literal the regex engine jumps to (a pattern that starts with
# an alternation is tried at every byte), where four substring searches would each walk the whole
# body. Only the "c" is consumed, so hints that overlap are all found; "security" is found at its
# "c", two characters in.
_HINT_AT_C = re.compile(rb"c(?=v|id|sc|urity)")
# a hint is only a code when a value follows it (a JSON key or ``cvv=``): "cvv_check" is not one
# ``\s`` of a bytes pattern leaves out \x1c-\x1f, which that of a text pattern (``str.isspace``) takes
_CVV_IN_BYTES = re.compile(_CVV_IN_TEXT.pattern.replace(r"\s*", r"[\t-\r\x1c-\x1f ]*")
                           .replace(r"&\s", r"&\t-\r\x1c-\x1f ").encode())


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


# the same run on bytes whose digits all read "0": a pattern that starts with a literal is found
# by a fast scan instead of a regex attempt at every position
_SEPARATOR_CLASS = rb"[ +\-\t-\r\x1c-\x1f]"
_PAN_IN_ZEROS = re.compile(rb"0(?<!00)(?:" + _SEPARATOR_CLASS + rb"*0){11,}(?!" + _SEPARATOR_CLASS + rb"*0)")


def _code_matches(raw: bytes, lowered: bytes | None = None) -> list[re.Match]:
    """Matches of ``_CVV_IN_BYTES``, tried only where a field name can start (next to a hint)."""
    lowered = raw.lower() if lowered is None else lowered
    found: list[re.Match] = []
    for hint in _HINT_AT_C.finditer(lowered):
        at = hint.start()
        if lowered[at + 1:at + 2] == b"u":   # "security", found at its "c"
            if lowered[at - 2:at] != b"se":
                continue
            at -= 2
        for start in (at - 5, at - 4, at):   # "card_" or "card" may precede the name
            m = _CVV_IN_BYTES.match(raw, start) if start >= 0 else None
            if m is not None:
                found.append(m)
                break
    found.sort(key=lambda m: m.start())
    kept, end = [], -1
    for m in found:   # left to right without overlaps, as a substitution would find them
        if m.start() >= end:
            kept.append(m)
            end = m.end()
    return kept


def _uuids_as_letters(raw, at_dash: re.Pattern, letters):
    """``raw`` with each UUID replaced by ``letters``, each found from its first dash (``at_dash``,
    a match that starts eight characters into the UUID)."""
    pieces, at = [], 0
    for m in at_dash.finditer(raw):
        pieces += (raw[at:m.start() - 8], letters)
        at = m.end()
    return raw[:0].join(pieces) + raw[at:] if pieces else raw


_HEX, _HEX_BYTES = "0123456789abcdefABCDEF", b"0123456789abcdefABCDEF"
_HEX_ID_LENGTH = 32
# how far either side of a run its hex id is looked for: every run of a body costs at most this,
# and a hex run longer still (an encoded blob) counts as an id
_HEX_ID_REACH = 256


def _in_hex_id(s, start: int, end: int) -> bool:
    """Whether the digits ``s[start:end]`` lie inside a hex id or a hash: 32 or more hex characters,
    a letter among them, with no letter or digit on either side (a SHA-256 fingerprint, a token of
    64 hex characters). Twelve digits line up in one of about fifteen random 64-character hex strings; like a
    UUID's, they are not a card number. Digits with separators between them are never inside one."""
    if not s[start:end].isdigit():
        return False
    hex_chars = _HEX_BYTES if isinstance(s, bytes) else _HEX
    low, high = max(0, start - _HEX_ID_REACH), end + _HEX_ID_REACH
    first = low + len(s[low:start].rstrip(hex_chars))
    last = high - len(s[end:high].lstrip(hex_chars)) if high < len(s) else len(s) - len(s[end:].lstrip(hex_chars))
    if last - first < _HEX_ID_LENGTH or s[first:last].isdigit():
        return False
    before = first == low and low > 0 or not s[first - 1:first].isalnum()   # past the reach: a blob
    after = last == high or not s[last:last + 1].isalnum()
    return before and after


def _without_uuids(raw: bytes) -> bytes:
    return _uuids_as_letters(raw, _UUID_AT_DASH_IN_BYTES, _AS_LETTER_BYTES)


def _has_run(raw: bytes) -> bool:
    """Whether ``raw`` holds a card-like run of digits outside its UUIDs. Finding the UUIDs costs
    more than the digit test, so it is done only once that test finds a run."""
    if _TWELVE_DIGITS not in raw.translate(_DIGITS_AS_ZERO, _SEPARATORS):
        return False
    return b"-" not in raw or _TWELVE_DIGITS in _without_uuids(raw).translate(_DIGITS_AS_ZERO, _SEPARATORS)


def needs_masking(raw: bytes) -> bool:
    """Cheap test that ``raw`` may hold a card number or a security code: no walk without it."""
    if _TWELVE_DIGITS in raw.translate(_DIGITS_AS_ZERO, _SEPARATORS):
        return True
    if not raw.isascii() and _PAN_IN_TEXT.search(raw.decode("utf-8", "replace")):
        return True   # digits apart by a no-break or another non-ASCII space, or non-ASCII digits
    lowered = raw.lower()
    return _HINT_AT_C.search(lowered) is not None and bool(_code_matches(raw, lowered))


def mask_bytes(raw: bytes) -> tuple[bytes, bool]:
    """``mask_text`` on undecoded bytes, with C-level scans (what the journal does to a body it
    keeps as written), and whether every change lies in a whole quoted value: then masked JSON
    still parses to the same shape, with no need to parse it to know."""
    masked = _QUOTED_RUN.sub(_starred, raw)
    # a run written as a whole quoted JSON string (reference numbers, ids) is the usual case and
    # one C-level substitution; anything else card-like left over takes the general walk below
    if _has_run(masked):
        masked, quoted = _masked_runs(raw)
    else:
        quoted = True
    pieces, at = [], 0
    for m in _code_matches(masked):
        quoted = quoted and m.group(1).endswith(b'"') and masked[m.end(2):m.end(2) + 1] == b'"'
        pieces += (masked[at:m.start(2)], b"***")
        at = m.end(2)
    return (b"".join(pieces) + masked[at:] if pieces else masked), quoted


_QUOTED_RUN = re.compile(rb'"([0-9]{12,})"')


def _starred(m: re.Match) -> bytes:
    run = m.group(1)
    return b'"' + run[:6] + b"*" * (len(run) - 10) + run[-4:] + b'"'


def _masked_runs(raw: bytes) -> tuple[bytes, bool]:
    """Every card-like run of ``raw`` masked, and whether each was a whole quoted value."""
    out = bytearray(raw)
    quoted = True
    for m in _PAN_IN_ZEROS.finditer(_without_uuids(raw).translate(_DIGITS_AS_ZERO)):
        start, end = m.span()
        if raw[start:end].isdigit():   # no separators: one slice
            if _in_hex_id(raw, start, end):
                continue
            quoted = quoted and raw[start - 1:start] == b'"' and raw[end:end + 1] == b'"'
            out[start + 6:end - 4] = b"*" * (end - start - 10)
            continue
        quoted = quoted and raw[start - 1:start] == b'"' and raw[end:end + 1] == b'"'
        digits = [i for i in range(start, end) if 48 <= out[i] <= 57]
        for i in digits[6:-4]:
            out[i] = 42   # "*"
    return bytes(out), quoted


def _mask_run(run: str) -> str:
    positions = [i for i, ch in enumerate(run) if ch.isdigit()][6:-4]
    chars = list(run)
    for i in positions:
        chars[i] = "*"
    return "".join(chars)


def mask_text(text: str) -> str:
    """Mask card numbers (spaced, dashed or not) and security codes written as ``cvv=...`` or
    ``"cvv": "..."`` in free text: journal bodies, form posts, query strings."""
    # as in mask_bytes: UUIDs are looked for only once a run is found
    scanned = (_uuids_as_letters(text, _UUID_AT_DASH_IN_TEXT, _AS_LETTERS)
               if "-" in text and _PAN_IN_TEXT.search(text) else text)
    pieces, at = [], 0
    for m in _PAN_IN_TEXT.finditer(scanned):
        if _in_hex_id(scanned, m.start(), m.end()):
            continue
        pieces += (text[at:m.start()], _mask_run(text[m.start():m.end()]))
        at = m.end()
    if pieces:
        text = "".join(pieces) + text[at:]
    return _CVV_IN_TEXT.sub(lambda m: m.group(1) + "***", text)


# either thing mask_text replaces, found in one pass: most strings have neither
_SENSITIVE_TEXT = re.compile(f"{_PAN_IN_TEXT.pattern}|(?i:{_CVV_IN_TEXT.pattern.removeprefix('(?i)')})")
_code_keys = Memo(4096)   # field name -> names a security code (names repeat on every body)


def _is_code_key(key: str) -> bool:
    known = _code_keys.get(key)
    if known is None:
        known = _code_keys.keep(key, _CVV_NAME.fullmatch(key) is not None)
    return known


def mask_json(value: Any) -> Any:
    """Mask card numbers inside parsed JSON, including numbers sent as JSON integers, and every
    security code by its field name."""
    if isinstance(value, str):
        # a card number needs 12 characters, a written code a ":" or "="
        if (len(value) < 12 and "=" not in value and ":" not in value) or not _SENSITIVE_TEXT.search(value):
            return value
        return mask_text(value)
    if isinstance(value, dict):
        # keys too: a merchant's metadata may be keyed by a card number
        return {mask_json(k): "***" if isinstance(k, str) and _is_code_key(k) else mask_json(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) >= 12:
        return mask(str(value))
    if isinstance(value, float) and abs(value) >= 1e11:
        # 4.111111111111111e15 reads 4111111111111111.0: a card number, spelled as a float
        shown = repr(value)
        return mask_text(shown) if _PAN_IN_TEXT.search(shown) else value
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
