"""The virtual clock.

Without a configured start the clock follows ``datetime.now`` (so ``freezegun`` controls it) plus
the offsets the admin API added. With a start it is frozen there and moves only when told, which is
what makes two runs byte-identical. Each tenant may carry its own extra offset so that one test
suite can age its subscriptions without disturbing another tenant's.
"""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

from .memo import Memo
from .state import NullState

_SPACE = "clock"

# The range the virtual clock may be moved in. Providers schedule from it (an authorization's
# expiry, retries over days, a scenario's delay of up to MAX_DURATION): kept this far from the end
# of datetime's years 1-9999, every instant they compute exists.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
EARLIEST = EPOCH
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)   # excluded
RANGE_TEXT = "1970-01-01 to 8999-12-31"
# The longest duration a document (a scenario, a provider's config) may give: 100 years
MAX_DURATION = timedelta(days=36525)

# ASCII digits only: in a str pattern ``\d`` also matches other scripts' digits ("P\u0661D"), which
# float() would read as numbers; matched with fullmatch, as ``$`` also matches before a newline
_DURATION = re.compile(
    r"P(?:(?P<weeks>[0-9]+)W)?(?:(?P<days>[0-9]+)D)?"
    r"(?:T(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?(?:(?P<seconds>[0-9]+(?:\.[0-9]+)?)S)?)?"
)


class DurationTooLong(ValueError):
    """A duration as written, but longer than its bound."""


def parse_duration(text: str, longest: timedelta | None = None) -> timedelta:
    """ISO-8601 duration without years/months (their length is ambiguous): P30D, PT10M, P1DT2H.
    ValueError for anything else; DurationTooLong for one longer than ``longest``."""
    if not isinstance(text, str):
        raise ValueError("duration must be a string such as P30D or PT10M")
    # ASCII first: upper() turns some other letters into ASCII ones ("\u017f" into "S") and strip()
    # drops Unicode spaces
    spelled = text.strip().upper() if text.isascii() else ""
    m = _DURATION.fullmatch(spelled)
    if not m or spelled in ("P", "PT") or spelled.endswith("T"):
        raise ValueError(f"not an ISO-8601 duration (use weeks, days, hours, minutes, seconds): {text!r}")
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    try:
        delta = timedelta(**parts)
    except OverflowError:   # more days than a timedelta holds, or seconds float() read as inf
        delta = None
    if delta is None or (longest is not None and delta > longest):
        raise DurationTooLong(f"must be at most P{longest.days}D" if longest is not None
                              else f"longer than any clock can run: {text!r}")
    return delta


def parse_instant(text: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError("timestamp must be an ISO-8601 string")
    if not text.isascii():   # ISO-8601 is ASCII: no other scripts' digits, no Unicode spaces
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:   # in range as written, outside years 1-9999 once moved to UTC
        raise ValueError(f"not a timestamp in years 1-9999 (UTC): {text!r}") from None


def check_range(when: datetime) -> datetime:
    """``when`` if the virtual clock may stand there; ValueError otherwise."""
    if not EARLIEST <= when < LATEST:
        raise ValueError(f"the clock must stay within {RANGE_TEXT}")
    return when


def iso_z(when: datetime, digits: int = 0) -> str:
    """UTC timestamp with a Z suffix and a fixed number of fractional digits."""
    if when.tzinfo is None:   # read as local time, as astimezone does
        when = when.astimezone(timezone.utc)
    # an answer and its webhooks spell a dozen instants, most within the same second: the part up
    # to the seconds is kept per second, which halves the time isoformat takes (its offset has to
    # be computed and formatted on every call)
    second, fraction = divmod((when - EPOCH) // MICROSECOND, 1_000_000)
    head = _SECONDS.get(second) or _SECONDS.keep(second, (EPOCH + timedelta(seconds=second)).isoformat()[:19])
    if not digits:
        return head + "Z"
    fraction = "%06d" % fraction
    if digits < 6:
        fraction = fraction[:digits]
    elif digits > 6:
        fraction += "0" * (digits - 6)
    return head + "." + fraction + "Z"


_SECONDS = Memo(4096)   # whole seconds since the epoch -> 'YYYY-MM-DDTHH:MM:SS'


def _micros(delta: timedelta) -> int:
    return delta // MICROSECOND


class Clock:
    """With a state file the start and every offset are saved as they change, one row each, and a
    restart resumes them instead of the configured start."""

    def __init__(self, start: datetime | None = None, state: NullState | None = None):
        self._lock = threading.Lock()
        self._state = state or NullState()
        self._start = start
        self._offset = timedelta(0)
        self._tenant_offsets: dict[str, timedelta] = {}
        # resets of every clock, and of each tenant's: a move that began before one is void (``stamp``)
        self._resets = 0
        self._tenant_resets: dict[str, int] = {}
        saved = {key: value for key, _, value in self._state.rows(_SPACE)}
        if "" in saved:
            self._start = parse_instant(saved[""]["start"]) if saved[""]["start"] else None
            self._offset = timedelta(microseconds=saved[""]["offset"])
            self._tenant_offsets = {key[2:]: timedelta(microseconds=value["offset"])
                                    for key, value in saved.items() if key.startswith("t:")}
        else:
            self._save(None)

    def _save(self, tenant: str | None) -> None:
        # caller holds the lock (or is the constructor)
        if tenant is None:
            self._state.put(_SPACE, "", {"start": self._start.isoformat() if self._start else None,
                                         "offset": _micros(self._offset)})
        elif tenant in self._tenant_offsets:
            self._state.put(_SPACE, "t:" + tenant, {"offset": _micros(self._tenant_offsets[tenant])}, tenant)
        else:
            self._state.delete(_SPACE, "t:" + tenant)

    @property
    def frozen(self) -> bool:
        return self._start is not None

    def _base(self) -> datetime:
        if self._start is not None:
            return self._start
        return datetime.now(timezone.utc)

    def now(self, tenant: str | None = None) -> datetime:
        with self._lock:
            offset = self._offset + self._tenant_offsets.get(tenant, timedelta(0))
        return self._base() + offset

    def offset(self, tenant: str | None) -> timedelta:
        """How far ``tenant``'s clock runs ahead of the shared one."""
        with self._lock:
            return self._tenant_offsets.get(tenant, timedelta(0))

    def offsets(self) -> dict[str, timedelta]:
        """How far each tenant whose clock was moved on its own runs ahead of the shared one."""
        with self._lock:
            return dict(self._tenant_offsets)

    def stamp(self, tenant: str | None = None) -> tuple[int, int]:
        """What ``advance(..., since=)`` compares: it changes whenever a reset drops ``tenant``'s clock."""
        with self._lock:
            return self._stamp(tenant)

    def _stamp(self, tenant: str | None) -> tuple[int, int]:
        # caller holds the lock; a tenant's clock is dropped by a reset of every clock or of its own
        return self._resets, self._tenant_resets.get(tenant, 0) if tenant is not None else 0

    def advance(self, delta: timedelta, tenant: str | None = None, since: tuple[int, int] | None = None) -> bool:
        """Move ``tenant``'s clock by ``delta``; with ``since`` (a ``stamp``), only if no reset came
        in between: a long advance moves in steps, and a reset between two steps must not be undone
        by the steps that follow. Returns whether the clock moved."""
        with self._lock:
            if since is not None and since != self._stamp(tenant):
                return False
            if tenant is None:
                self._offset += delta
            else:
                self._tenant_offsets[tenant] = self._tenant_offsets.get(tenant, timedelta(0)) + delta
            self._save(tenant)
        return True

    def set(self, when: datetime, tenant: str | None = None) -> None:
        self.advance(when - self.now(tenant), tenant)

    def check_move(self, delta: timedelta, tenant: str | None = None) -> None:
        """ValueError if moving by ``delta`` would take a clock out of its range: ``tenant``'s, or
        with None the shared one and every tenant's running ahead of or behind it."""
        with self._lock:
            offsets = [self._tenant_offsets.get(tenant, timedelta(0))] if tenant is not None else \
                [timedelta(0), *self._tenant_offsets.values()]
        base = self._base() + self._offset
        try:
            for offset in offsets:
                check_range(base + offset + delta)
        except OverflowError:
            raise ValueError(f"the clock must stay within {RANGE_TEXT}") from None

    def restart(self, start: datetime | None) -> None:
        with self._lock:
            self._resets += 1
            self._start = start
            self._offset = timedelta(0)
            self._tenant_offsets.clear()
            self._state.clear(_SPACE)
            self._save(None)

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._resets += 1
                self._offset = timedelta(0)
                self._tenant_offsets.clear()
                self._state.clear(_SPACE)
            else:
                self._tenant_resets[tenant] = self._tenant_resets.get(tenant, 0) + 1
                self._tenant_offsets.pop(tenant, None)
            self._save(tenant)
