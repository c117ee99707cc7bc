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

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """ISO-8601 duration without years/months (their length is ambiguous): P30D, PT10M, P1DT2H."""
    if not isinstance(text, str):
        raise ValueError("duration must be a string such as P30D or PT10M")
    m = _DURATION.match(text.strip().upper())
    if not m or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"not an ISO-8601 duration (use weeks, days, hours, minutes, seconds): {text!r}")
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    return timedelta(**parts)


def parse_instant(text: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError("timestamp must be an ISO-8601 string")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso_z(when: datetime, digits: int = 0) -> str:
    """UTC timestamp with a Z suffix and a fixed number of fractional digits."""
    when = when.astimezone(timezone.utc)
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        frac = f"{when.microsecond:06d}{'0' * max(0, digits - 6)}"[:digits]
        base += "." + frac
    return base + "Z"


class Clock:
    def __init__(self, start: datetime | None = None):
        self._lock = threading.Lock()
        self._start = start
        self._offset = timedelta(0)
        self._tenant_offsets: dict[str, timedelta] = {}

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

    def advance(self, delta: timedelta, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._offset += delta
            else:
                self._tenant_offsets[tenant] = self._tenant_offsets.get(tenant, timedelta(0)) + delta

    def set(self, when: datetime, tenant: str | None = None) -> None:
        self.advance(when - self.now(tenant), tenant)

    def restart(self, start: datetime | None) -> None:
        with self._lock:
            self._start = start
            self._offset = timedelta(0)
            self._tenant_offsets.clear()

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._offset = timedelta(0)
                self._tenant_offsets.clear()
            else:
                self._tenant_offsets.pop(tenant, None)
