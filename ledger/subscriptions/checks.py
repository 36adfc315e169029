"""What every subscription change checks first, and the ids its facts derive from.

The checks are pure and raise `ledger.core.errors`; the one read here (`locked_live`) takes the
subscription's row lock, so the change that follows sees no concurrent one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.calendar import zone
from ledger.billing.catalog import Catalog, Interval, Plan
from ledger.billing.subscription import Subscription, SubscriptionStatus
from ledger.core import bounds
from ledger.core.errors import InvalidCommand, NotFound, SubscriptionInactive
from ledger.subscriptions import store

# Fixed once: changing one would change every id derived from it, and the store holds them.
_SUBSCRIPTIONS = uuid.UUID("17f9aca6-a849-4e14-86e8-20f9547d24b2")
_CHANGES = uuid.UUID("63a3ba3e-ada7-4585-82cc-7b35005c651d")
_CHARGES = uuid.UUID("6ada5767-d2e0-4200-b3bb-bf64a3eb955f")


def subscription_id_for(organization_id: UUID, idempotency_key: str) -> UUID:
    """A subscription's id, from the org and the request's key: a retry names the same one."""
    return uuid.uuid5(_SUBSCRIPTIONS, f"{organization_id}:{idempotency_key}")


def change_id_for(subscription_id: UUID, what: str, idempotency_key: str) -> UUID:
    """A seat or plan change's id, from the subscription and the request's key."""
    return uuid.uuid5(_CHANGES, f"{subscription_id}:{what}:{idempotency_key}")


def charge_id_for(idempotency_key: str) -> UUID:
    """A charge line's id, from the fact's key that also keeps it unique."""
    return uuid.uuid5(_CHARGES, idempotency_key)


def check_seats(seats: int, plan: Plan | None = None) -> None:
    if not 0 <= seats <= bounds.SEATS_MAX:
        raise InvalidCommand(f"seats must be 0 to {bounds.SEATS_MAX:,}")
    if plan is not None and plan.per_seat and seats < 1:
        raise InvalidCommand(f"{plan.name} is priced per seat: it needs at least 1 seat")


def check_timezone(name: str) -> None:
    zone(name)


def check_anchor(anchor: datetime, now: datetime) -> None:
    bounds.check_window(anchor, "anchor", now, bounds.ANCHOR_WINDOW, bounds.ANCHOR_WINDOW)


def require_plan(catalog: Catalog, key: str, at: datetime) -> Plan:
    """The version of plan `key` in force at `at`, or NOT_FOUND."""
    plan = catalog.plan_at(key, at)
    if plan is None:
        raise NotFound(f"no plan {key[: bounds.PLAN_KEY_LENGTH_MAX]!r} in the catalog in force at {at.isoformat()}")
    return plan


def require_priced(plan: Plan, interval: Interval) -> None:
    """A plan is subscribed to for an interval it has a price for (custom plans: by contract)."""
    if not plan.custom and plan.price(interval) is None:
        raise InvalidCommand(f"{plan.name} has no {interval.value} price")


def require_live(subscription: Subscription | None, *, archived_too: bool = False) -> Subscription:
    """The org's subscription that can change: not ended (nor archived, unless `archived_too`)."""
    if subscription is None:
        raise NotFound("the organization has no subscription")
    if subscription.status is SubscriptionStatus.CANCELED or (
        subscription.status is SubscriptionStatus.ARCHIVED and not archived_too
    ):
        raise SubscriptionInactive(f"the subscription is {subscription.status.value}: it can no longer change this way")
    return subscription


async def locked_live(
    connection: asyncpg.Connection, organization_id: UUID, *, archived_too: bool = False
) -> Subscription:
    """The org's live subscription, its row locked until the transaction ends."""
    found = await store.live_subscription_of(connection, organization_id, for_update=True)
    return require_live(found, archived_too=archived_too)


def check_change_time(subscription: Subscription, at: datetime, now: datetime) -> None:
    """A change happens now, or (the service's callers: tests, imports) at a time in the current
    credit period (month) after the subscription's last change: never before what is already recorded."""
    bounds.check_window(at, "at", now, bounds.BACKDATE_MAX, bounds.CLOCK_SKEW_MAX)
    latest = subscription.segments[-1].effective_at if subscription.segments else subscription.anchor
    # Strictly after: a change at its predecessor's very time would reprice what that one just did.
    if at <= max(latest, subscription.anchor) and subscription.segments[1:]:
        raise InvalidCommand("a change is dated after the subscription's last change")
    if at < max(latest, subscription.anchor):
        raise InvalidCommand("a change cannot be dated before the subscription's start or its last change")
    # The credit period is a month and lies within a billing period: checking it checks both.
    if subscription.credit_calendar.period_at(at) != subscription.credit_calendar.period_at(now):
        raise InvalidCommand("a change is dated in the current month of the subscription")
