"""Alerts through the API: setting and removing them (ledger commands), reading their definitions
and their history, and the types the `alertEvents` subscription sends."""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import strawberry

from graphql_api.access.authorize import Authorize
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.cursors import decode_cursor, encode_cursor
from graphql_api.errors import invalid
from graphql_api.ids import parse_id
from graphql_api.mutations import optional_id
from graphql_api.scalars import Credits
from graphql_api.submit import submit
from graphql_api.types import Ack, CommandOutcome
from ledger.core.commands import AlertKind, Period, RemoveAlert, SetAlert, check_text
from ledger.core.entries import AlertState
from ledger.core.money import MicroCredits
from ledger.core.state import Alert as DomainAlert
from ledger.store.alerts import AlertEventKey, JournaledAlertEvent, alert_events_page

page_size_max = 200
# An alert made without an id gets one from its organization and idempotency key, so a retry of the
# same request names the same alert.
_ALERT_IDS = UUID("3c9e7a10-4f2b-4d86-b1a5-9e0d7c6f2a41")

strawberry.enum(
    AlertKind,
    name="AlertKind",
    description="LOW_BALANCE: available credits at or below the threshold. "
    "HIGH_SPEND: spend in the current period at or above it.",
)
strawberry.enum(
    AlertState, name="AlertState", description="TRIGGERED: the condition began to hold. RESOLVED: it ended."
)


@strawberry.type(description="A threshold the ledger judges after every change to the organization's credits.")
class Alert:
    id: strawberry.ID
    kind: AlertKind
    name: str
    threshold: Credits = strawberry.field(description="Credits: the balance at or below which, or spend at or above.")
    team_id: strawberry.ID | None = strawberry.field(description="The team it watches; null for the organization.")
    user_id: str | None = strawberry.field(description="The user whose spend it watches (HIGH_SPEND only).")
    period: Period = strawberry.field(description="The calendar period (UTC) HIGH_SPEND counts over.")
    triggered: bool = strawberry.field(description="Whether its condition held at the last change.")

    @classmethod
    def from_domain(cls, alert: DomainAlert) -> Alert:
        return cls(
            id=strawberry.ID(str(alert.id)),
            kind=alert.kind,
            name=alert.name,
            threshold=Credits(alert.threshold),
            team_id=None if alert.team_id is None else strawberry.ID(str(alert.team_id)),
            user_id=alert.user_id,
            period=alert.period,
            triggered=alert.triggered,
        )


@strawberry.type(description="An alert crossing its threshold, with the alert as it was then.")
class AlertEvent:
    cursor: str = strawberry.field(description="Pass as `after`: to the alertEvents subscription to resume after it.")
    id: strawberry.ID
    alert_id: strawberry.ID
    transaction_id: strawberry.ID = strawberry.field(description="The ledger command that made it cross.")
    state: AlertState
    kind: AlertKind
    name: str
    threshold: Credits
    value: Credits = strawberry.field(description="The balance or spend it measured.")
    team_id: strawberry.ID | None
    user_id: str | None
    at: datetime = strawberry.field(description="When the ledger applied the command.")

    @classmethod
    def from_domain(cls, organization_id: UUID, journaled: JournaledAlertEvent) -> AlertEvent:
        event = journaled.event
        return cls(
            cursor=encode_cursor(organization_id, journaled.key.committed_at, journaled.key.id),
            id=strawberry.ID(str(event.id)),
            alert_id=strawberry.ID(str(event.alert_id)),
            transaction_id=strawberry.ID(str(event.transaction_id)),
            state=event.state,
            kind=event.kind,
            name=event.name,
            threshold=Credits(event.threshold),
            value=Credits(event.value),
            team_id=None if event.team_id is None else strawberry.ID(str(event.team_id)),
            user_id=event.user_id,
            at=event.at,
        )


@strawberry.type(description="A page of alert events, newest first.")
class AlertEventPage:
    events: list[AlertEvent]
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` here for older events; null at the end. (An event's own cursor resumes the "
        "subscription.)"
    )


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


@strawberry.type
class AlertMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)],
        description="Create or replace a low-balance or high-spend alert; its events go to the alertEvents "
        "subscription and to the organization's alertEvents.",
    )
    async def set_alert(self, info: Info, input: SetAlertInput) -> CommandOutcome:
        org_id = parse_id(input.organization_id, "organizationId")
        check_text(input.idempotency_key, "idempotency key")  # before it names the alert
        alert_id = optional_id(input.alert_id, "alertId") or uuid.uuid5(_ALERT_IDS, f"{org_id}:{input.idempotency_key}")
        payload = SetAlert(
            alert_id=alert_id,
            kind=input.kind,
            threshold=MicroCredits(input.threshold),
            name=input.name,
            team_id=optional_id(input.team_id, "teamId"),
            user_id=input.user_id,
            period=input.period,
        )
        return await submit(info, org_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(extensions=[Authorize(Permission.MANAGE_CREDITS)], description="Remove an alert.")
    async def remove_alert(self, info: Info, input: RemoveAlertInput) -> CommandOutcome:
        org_id = parse_id(input.organization_id, "organizationId")
        payload = RemoveAlert(parse_id(input.alert_id, "alertId"))
        return await submit(info, org_id, input.idempotency_key, payload, input.ack)


async def alerts_of(info: Info, organization_id: UUID) -> list[Alert]:
    state = await info.context.loaders.spending_rules.load(organization_id)
    return [Alert.from_domain(alert) for alert in sorted(state.alerts.values(), key=lambda a: (a.name, str(a.id)))]


async def alert_events_of(
    info: Info, organization_id: UUID, first: int, after: str | None, alert_id: strawberry.ID | None
) -> AlertEventPage:
    if not 1 <= first <= page_size_max:
        raise invalid(f"first must be 1 to {page_size_max}")
    before = None if after is None else decode_alert_cursor(organization_id, after)
    found = await alert_events_page(
        info.context.resources.pool,
        organization_id,
        before=before,
        limit=first + 1,
        alert_id=optional_id(alert_id, "alertId"),
    )
    events = [AlertEvent.from_domain(organization_id, journaled) for journaled in found[:first]]
    return AlertEventPage(events=events, end_cursor=events[-1].cursor if len(found) > first else None)


def decode_alert_cursor(organization_id: UUID, cursor: str) -> AlertEventKey:
    committed_at, id_ = decode_cursor(organization_id, cursor, (datetime, UUID), "alert events")
    assert isinstance(committed_at, datetime) and isinstance(id_, UUID)
    return AlertEventKey(committed_at, id_)
