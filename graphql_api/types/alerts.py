"""Alerts as the API shows them: their definitions, whether each is triggered now, and their
crossings, a page at a time (also what the `alertEvents` subscription sends)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from graphql_api.context import Info
from graphql_api.enums import AlertKind, AlertState, Period
from graphql_api.inputs import optional_id
from graphql_api.pagination import Keyset, page
from graphql_api.scalars import Credits, id_of
from ledger.core.state import Alert as DomainAlert
from ledger.store.alerts import AlertEventKey, JournaledAlertEvent, alert_events_page

# How an alert event's key travels as a cursor.
ALERT_EVENTS = Keyset("alert events", (datetime, UUID), lambda key: (key.committed_at, key.id), AlertEventKey)


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
            team_id=id_of(alert.team_id),
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
            cursor=ALERT_EVENTS.encode(organization_id, journaled.key),
            id=strawberry.ID(str(event.id)),
            alert_id=strawberry.ID(str(event.alert_id)),
            transaction_id=strawberry.ID(str(event.transaction_id)),
            state=event.state,
            kind=event.kind,
            name=event.name,
            threshold=Credits(event.threshold),
            value=Credits(event.value),
            team_id=id_of(event.team_id),
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


async def alerts_of(info: Info, organization_id: UUID) -> list[Alert]:
    state = await info.context.loaders.spending_rules.load(organization_id)
    return [Alert.from_domain(alert) for alert in sorted(state.alerts.values(), key=lambda a: (a.name, str(a.id)))]


async def alert_events_of(
    info: Info, organization_id: UUID, first: int, after: str | None, alert_id: strawberry.ID | None
) -> AlertEventPage:
    only = optional_id(alert_id, "alertId")

    async def fetch(before: AlertEventKey | None, limit: int) -> list[JournaledAlertEvent]:
        pool = info.context.resources.pool
        return await alert_events_page(pool, organization_id, before=before, limit=limit, alert_id=only)

    found = await page(organization_id, first, after, ALERT_EVENTS, fetch)
    events = [AlertEvent.from_domain(organization_id, journaled) for journaled in found.rows]
    return AlertEventPage(events=events, end_cursor=events[-1].cursor if found.has_next else None)
