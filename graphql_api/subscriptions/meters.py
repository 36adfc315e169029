"""Live meters: the organization's balance, a team's and a user's budget or cap, each sent now and
again after every command the ledger applies."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

from graphql_api.context import Info
from graphql_api.errors import not_found
from graphql_api.inputs import (
    optional_id,
    parse_id,
)
from graphql_api.subscriptions.feeds import (
    follow,
    meter_view,
    organization_feed,
    readers_of_the_organization,
    team_ids,
)
from graphql_api.types.meters import MeterReading, TeamMeterReading, UserMeterReading
from ledger.core.meter import LimitUse, MeterView, UserMeter
from ledger.store.balances import balances_by_orgs
from ledger.stream import feeds


@strawberry.type
class MeterSubscriptions:
    @strawberry.subscription(
        extensions=readers_of_the_organization(),
        description="The organization's balance now, then again after every command the ledger applies to it.",
    )
    async def credit_meter(self, info: Info, organization_id: strawberry.ID) -> AsyncGenerator[MeterReading, None]:
        org_id = parse_id(organization_id, "organizationId")
        pool = info.context.resources.pool
        # Listen before reading, so no change between the two is missed.
        async with organization_feed(info, org_id) as feed:
            now = datetime.now(UTC)
            shown = (await balances_by_orgs(pool, [org_id], now))[org_id]
            yield MeterReading.from_balance(org_id, shown, now)
            while True:
                update = await feed.next()
                if update is not None:
                    meter = feeds.decode_meter(update)
                    shown = meter.balance
                    yield MeterReading.from_balance(org_id, shown, meter.at)
                    continue
                now = datetime.now(UTC)
                balance = (await balances_by_orgs(pool, [org_id], now))[org_id]
                if balance != shown:  # only what the updates did not already show
                    shown = balance
                    yield MeterReading.from_balance(org_id, shown, now)

    @strawberry.subscription(
        extensions=readers_of_the_organization(),
        description="A team's own credits and budget now, then whenever a change moves them.",
    )
    async def team_credit_meter(
        self, info: Info, organization_id: strawberry.ID, team_id: strawberry.ID
    ) -> AsyncGenerator[TeamMeterReading, None]:
        org_id, team = parse_id(organization_id, "organizationId"), parse_id(team_id, "teamId")
        async with organization_feed(info, org_id) as feed:
            if team not in await team_ids(info, org_id):
                raise not_found("team")

            async def reload() -> MeterView:
                return await meter_view(info, org_id, [team], [])

            async for meter, at in follow(feed, reload, lambda v: v.team(team)):
                yield TeamMeterReading.from_domain(org_id, team, meter, at)

    @strawberry.subscription(
        extensions=readers_of_the_organization(),
        description=(
            "What one user may spend now (their team's credits, the pool's, within their cap and the team's "
            "budget), then whenever a change moves it. The team is teamId, or else the user's membership's."
        ),
    )
    async def user_credit_meter(
        self, info: Info, organization_id: strawberry.ID, user_id: str, team_id: strawberry.ID | None = None
    ) -> AsyncGenerator[UserMeterReading, None]:
        org_id = parse_id(organization_id, "organizationId")
        async with organization_feed(info, org_id) as feed:
            chosen = optional_id(team_id, "teamId")
            if chosen is not None and chosen not in await team_ids(info, org_id):
                raise not_found("team")
            team = chosen

            async def reload() -> MeterView:
                nonlocal team
                if chosen is None:  # the membership's team, as it is now (a move shows at the next read)
                    members = await info.context.loaders.members.load(org_id)
                    team = next((m.team_id for m in members if m.user_id == user_id), None)
                return await meter_view(info, org_id, [] if team is None else [team], [user_id])

            def read(v: MeterView) -> tuple[UserMeter, LimitUse | None]:
                return v.user(user_id, team), None if team is None else v.team(team).budget

            async for (meter, budget), at in follow(feed, reload, read):
                yield UserMeterReading.from_domain(org_id, user_id, meter, budget, at)
