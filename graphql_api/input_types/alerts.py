"""Inputs of the alert mutations."""

from __future__ import annotations

import strawberry

from graphql_api.enums import AlertKind, Period
from graphql_api.outcomes import Ack
from graphql_api.scalars import Credits


@strawberry.input(description="Create or replace an alert; it is judged at once and after every change.")
class SetAlertInput:
    organization_id: strawberry.ID
    kind: AlertKind
    threshold: Credits
    idempotency_key: str
    alert_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "The alert to create or replace (an upsert: a client may choose its alerts' ids); omitted, a new "
            "alert whose id is in the outcome's details."
        ),
    )
    name: str = ""
    team_id: strawberry.ID | None = strawberry.field(default=None, description="Watch this team instead of the org.")
    user_id: str | None = strawberry.field(default=None, description="Watch this user's spend (HIGH_SPEND only).")
    period: Period = Period.MONTH
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Remove an alert (its history stays).")
class RemoveAlertInput:
    organization_id: strawberry.ID
    alert_id: strawberry.ID
    idempotency_key: str
    ack: Ack = Ack.APPLIED
