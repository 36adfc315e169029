"""Streams read from the journal: an organization's usage as the ledger journals it, and its alerts
as they fire. Lossless, and resumable from the last event's cursor."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from graphql_api.context import Info
from graphql_api.inputs import (
    optional_id,
    parse_id,
)
from graphql_api.subscriptions.feeds import (
    journal,
    organization_feed,
    readers_of_the_organization,
)
from graphql_api.types.alerts import ALERT_EVENTS, AlertEvent
from graphql_api.types.history import HISTORY
from graphql_api.types.meters import UsageEvent
from ledger import constants
from ledger.store.alerts import alert_events_after, latest_alert_key
from ledger.store.history import debits_after, latest_key


@strawberry.type
class JournalSubscriptions:
    @strawberry.subscription(
        extensions=readers_of_the_organization(),
        description=(
            "Each accepted usage debit (usage events and hold captures) as the ledger journals it, oldest first; "
            "from now, or from `after` (an event's cursor) to resume without missing one."
        ),
    )
    async def usage_events(
        self,
        info: Info,
        organization_id: strawberry.ID,
        team_id: strawberry.ID | None = None,
        user_id: str | None = None,
        product: str | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[UsageEvent, None]:
        org_id = parse_id(organization_id, "organizationId")
        team = optional_id(team_id, "teamId")
        pool = info.context.resources.pool
        async with organization_feed(info, org_id) as feed:
            key = HISTORY.decode(org_id, after) if after is not None else await latest_key(pool, org_id)
            debits = journal(
                feed, key, lambda k: debits_after(pool, org_id, k, constants.journal_page_max), lambda debit: debit.key
            )
            async for debit in debits:
                if (
                    (team is None or debit.team_id == team)
                    and (user_id is None or debit.user_id == user_id)
                    and (product is None or debit.product == product)
                ):
                    yield UsageEvent.from_domain(org_id, debit)

    @strawberry.subscription(
        extensions=readers_of_the_organization(),
        description=(
            "Each alert of the organization as it fires (TRIGGERED) or stops holding (RESOLVED), as the ledger "
            "journals it; from now, or from `after` (an event's cursor) to resume without missing one."
        ),
    )
    async def alert_events(
        self, info: Info, organization_id: strawberry.ID, after: str | None = None
    ) -> AsyncGenerator[AlertEvent, None]:
        org_id = parse_id(organization_id, "organizationId")
        pool = info.context.resources.pool
        async with organization_feed(info, org_id) as feed:
            key = ALERT_EVENTS.decode(org_id, after) if after is not None else await latest_alert_key(pool, org_id)
            events = journal(
                feed, key, lambda k: alert_events_after(pool, org_id, k, constants.journal_page_max), lambda e: e.key
            )
            async for journaled in events:
                yield AlertEvent.from_domain(org_id, journaled)
