"""Inputs of the subscription mutations. Every one names the organization: its live subscription is
the one changed (an id of another tenant's subscription is never taken)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.enums import Interval


@strawberry.input(description="Subscribe an organization to a plan of the catalog.")
class SubscribeInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization (one live subscription each).")
    plan: str = strawberry.field(description='The plan\'s key, e.g. "seatsco-team"; its version in force at anchor.')
    idempotency_key: str = strawberry.field(
        description="Your unique key for this subscription: a retry answers the same one; other details, a conflict."
    )
    interval: Interval = strawberry.field(default=Interval.MONTHLY, description="How often it is billed.")
    seats: int = strawberry.field(default=0, description="Seats, 0 to 100,000 (a per-seat plan needs 1 or more).")
    anchor: datetime | None = strawberry.field(
        default=None, description="The first period's start, within 366 days of now; default: now."
    )
    timezone: str = strawberry.field(
        default="UTC", description="The IANA time zone its periods are computed in, e.g. Europe/Berlin."
    )


@strawberry.input(description="Set the seat quantity now: the difference is prorated to the second.")
class SetSeatsInput:
    organization_id: strawberry.ID = strawberry.field(description="The subscribed organization.")
    seats: int = strawberry.field(description="The new quantity, 0 to 100,000.")
    idempotency_key: str = strawberry.field(
        description="Your unique key for this change: a retry answers it again; another quantity, a conflict."
    )
    proration_at: datetime | None = strawberry.field(
        default=None,
        description=(
            "Prorate as of this time (a preview's `at`, at most 15 minutes ago) to get exactly the preview's "
            "lines; default: now."
        ),
    )


@strawberry.input(description="Move to another plan: an upgrade at once (prorated), anything else at period end.")
class ChangePlanInput:
    organization_id: strawberry.ID = strawberry.field(description="The subscribed organization.")
    plan: str = strawberry.field(description="The new plan's key; the current one undoes a pending change.")
    idempotency_key: str = strawberry.field(
        description="Your unique key for this change: a retry answers it again; another plan, a conflict."
    )
    interval: Interval | None = strawberry.field(
        default=None, description="The subscription's interval (a plan change keeps it); default: unchanged."
    )
    proration_at: datetime | None = strawberry.field(
        default=None,
        description=(
            "Prorate as of this time (a preview's `at`, at most 15 minutes ago) to get exactly the preview's "
            "lines; default: now."
        ),
    )


@strawberry.input(description="Cancel at the current billing period's end, or undo that.")
class SubscriptionOrganizationInput:
    organization_id: strawberry.ID = strawberry.field(description="The subscribed organization.")
