"""Billing calendars: period k runs from anchor + k intervals to anchor + (k + 1) intervals.

Each bound is computed from the anchor, never from the previous period's end, so a month-end
anchor clamps and recovers (Jan 31 -> Feb 29 -> Mar 31 -> Apr 30) instead of drifting to the 28th
(lago-api #1567, killbill #127). The arithmetic is `dateutil.relativedelta` on the anchor's wall
time in the subscription's IANA time zone, so a period starts at the same local time across DST
changes; bounds are stored as UTC and periods are half-open, [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.relativedelta import relativedelta

from ledger.billing.catalog import Interval
from ledger.core.errors import InvalidCommand

MONTHS_PER: dict[Interval, int] = {Interval.MONTHLY: 1, Interval.ANNUAL: 12}
PERIOD_INDEX_MAX = 12 * 200  # two hundred years of months: no loop here ever runs longer


@dataclass(frozen=True, slots=True)
class Period:
    index: int
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def remaining_fraction(self, at: datetime) -> Fraction:
        """The part of the period from `at` to its end, to the second (0 at or after its end)."""
        left = int((self.end - max(at, self.start)).total_seconds())
        return Fraction(max(left, 0), self.seconds)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone named, or InvalidCommand."""
    if not name or len(name) > 64 or name not in _zone_names():
        raise InvalidCommand(f"timezone must be an IANA time zone name such as Europe/Berlin, not {name[:64]!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:  # pragma: no cover - listed but unreadable
        raise InvalidCommand(f"unknown timezone {name!r}") from error


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES  # read once: listing the zone files is slow
    if _ZONES is None:
        _ZONES = frozenset(available_timezones() | {"UTC"})
    return _ZONES


@dataclass(frozen=True, slots=True)
class Calendar:
    """The periods of one subscription: an anchor, a time zone and a length in months."""

    anchor: datetime  # aware
    timezone: str
    months: int = 1

    @classmethod
    def of(cls, anchor: datetime, timezone: str, interval: Interval) -> Calendar:
        return cls(anchor, timezone, MONTHS_PER[interval])

    def boundary(self, index: int) -> datetime:
        """The start of period `index` (its wall time in the zone, clamped to the month's end), in UTC."""
        if not 0 <= index <= PERIOD_INDEX_MAX + 1:
            raise InvalidCommand(f"period index {index} is outside 0..{PERIOD_INDEX_MAX}")
        if index == 0:
            # The anchor itself: its wall time may be the repeated hour of a DST change, which the
            # naive arithmetic below would read as the first of the two (an hour early).
            return self.anchor.astimezone(UTC)
        local = self.anchor.astimezone(zone(self.timezone)).replace(tzinfo=None)
        wall: datetime = local + relativedelta(months=self.months * index)
        return wall.replace(tzinfo=zone(self.timezone)).astimezone(UTC)

    def period(self, index: int) -> Period:
        return Period(index, self.boundary(index), self.boundary(index + 1))

    def index_at(self, at: datetime) -> int:
        """The index of the period holding `at` (0 for any time before the anchor)."""
        if at < self.boundary(0):
            return 0
        months = (at.year - self.anchor.year) * 12 + (at.month - self.anchor.month)
        index = max(0, min(PERIOD_INDEX_MAX, months // self.months))
        while index > 0 and self.boundary(index) > at:
            index -= 1
        while index < PERIOD_INDEX_MAX and self.boundary(index + 1) <= at:
            index += 1
        return index

    def period_at(self, at: datetime) -> Period:
        return self.period(self.index_at(at))

    def periods_until(self, at: datetime, first: int = 0) -> list[Period]:
        """Every period from `first` that has started by `at`, in order."""
        last = self.index_at(at) if at >= self.boundary(0) else -1
        return [self.period(index) for index in range(first, last + 1)]


def add_period(at: datetime, *, days: int = 0, months: int = 0, timezone: str = "UTC") -> datetime:
    """`at` plus days and months on the zone's wall clock (a trial's end, a pack's expiry), in UTC."""
    local = at.astimezone(zone(timezone)).replace(tzinfo=None)
    wall: datetime = local + relativedelta(months=months) + timedelta(days=days)
    return wall.replace(tzinfo=zone(timezone)).astimezone(UTC)
