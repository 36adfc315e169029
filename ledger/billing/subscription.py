"""A subscription as billing reasons about it: a plan over time on a calendar. Pure data; its rows
are `ledger.subscriptions.store`'s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from ledger.billing.calendar import Calendar
from ledger.billing.catalog import Interval


class SubscriptionStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    CANCELED = "canceled"  # ended: `ends_at` is its last period's end
    ARCHIVED = "archived"  # on the Archive plan: no usage, history kept


@dataclass(frozen=True, slots=True)
class PlanSegment:
    """The plan (and seats) in force from `effective_at` until the next segment."""

    effective_at: datetime
    plan_key: str
    seats: int


@dataclass(frozen=True, slots=True)
class Subscription:
    id: UUID
    organization_id: UUID
    plan_key: str  # the plan in force now (the last segment's)
    interval: Interval
    seats: int
    anchor: datetime
    timezone: str
    status: SubscriptionStatus
    created_at: datetime
    trial_ends_at: datetime | None = None
    cancel_at_period_end: bool = False
    pending_plan_key: str | None = None  # a downgrade waiting for the period's end
    ends_at: datetime | None = None
    media_purge_at: datetime | None = None
    segments: tuple[PlanSegment, ...] = ()  # oldest first; the first starts at the anchor

    @property
    def billing_calendar(self) -> Calendar:
        """Periods of the interval: what is charged."""
        return Calendar.of(self.anchor, self.timezone, self.interval)

    @property
    def credit_calendar(self) -> Calendar:
        """Monthly periods from the same anchor: what is granted (an annual plan's credits come monthly)."""
        return Calendar.of(self.anchor, self.timezone, Interval.MONTHLY)

    def segment_at(self, at: datetime) -> PlanSegment:
        """The plan in force at `at` (the first segment for any time before it)."""
        return segment_at(self.segments, at)


def segment_at(segments: Sequence[PlanSegment], at: datetime) -> PlanSegment:
    found = segments[0]
    for segment in segments:
        if segment.effective_at <= at:
            found = segment
    return found
