"""Live subscriptions over graphql-transport-ws, backed by Redis pub/sub, so any API process serves
any organization: meters (the organization's, a team's, a user's), its usage as the ledger journals
it, and its alerts as they fire.

Each is authorized like the query it mirrors when it starts, and again every `access_recheck_s`
while it runs (a fresh authentication and fresh lookups): a revoked key, an expired token or a
removed member stops receiving within that time, and the subscription ends with the error.

A meter starts from a full read of PostgreSQL, taken after it began listening (so nothing between
the two is missed), then follows the ledger's updates. The usage stream reads the journal itself,
woken by those updates (and every `access_recheck_s` regardless), so it misses nothing and can
resume from an event's cursor. Pub/sub is a notification path: a message lost while a connection
is down leaves a meter behind until the next change; alert events missed then are in `alertEvents`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import strawberry
from strawberry.extensions import FieldExtension

from graphql_api.access.authenticate import Unauthenticated
from graphql_api.access.authorize import Authorize, authorize, from_argument
from graphql_api.access.policy import Permission
from graphql_api.alerts import AlertEvent
from graphql_api.context import Info
from graphql_api.errors import ApiError, not_found
from graphql_api.history import decode_history_cursor
from graphql_api.ids import parse_id
from graphql_api.loaders import Loaders
from graphql_api.meters import TeamMeterReading, UsageEvent, UserMeterReading
from graphql_api.mutations import optional_id
from graphql_api.types import MeterReading, load_organization
from ledger.core.meter import LimitUse, MeterView, UserMeter, full_update
from ledger.store.balances import balances_by_orgs
from ledger.store.history import debits_after, latest_key
from ledger.store.states import load_live_states
from ledger.stream import feeds, keys

access_recheck_s = 30.0
# Debits a usage stream reads from the journal at a time.
usage_page_max = 200

T = TypeVar("T")


@dataclass
class _Feed:
    """A channel's messages for one subscription, with its access checked again as time passes."""

    info: Info
    organization_id: UUID
    queue: asyncio.Queue[bytes]
    recheck_at: float = field(default_factory=lambda: time.monotonic() + access_recheck_s)

    async def changed(self) -> None:
        """Until a message arrives (any queued since are taken with it), or `access_recheck_s` after
        the last check: a reader of the journal looks again then, whether or not a message came."""
        wait = self.recheck_at - time.monotonic()
        with contextlib.suppress(TimeoutError):
            if wait > 0:
                await asyncio.wait_for(self.queue.get(), wait)
        while not self.queue.empty():
            self.queue.get_nowait()
        if time.monotonic() >= self.recheck_at:
            await _recheck(self.info, self.organization_id)
            self.recheck_at = time.monotonic() + access_recheck_s

    async def next(self) -> bytes:
        while True:
            wait = self.recheck_at - time.monotonic()
            if wait <= 0:
                await _recheck(self.info, self.organization_id)
                self.recheck_at = time.monotonic() + access_recheck_s
                continue
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(self.queue.get(), wait)


@contextlib.asynccontextmanager
async def _feed(info: Info, organization_id: UUID, channel: str) -> AsyncIterator[_Feed]:
    await load_organization(info, organization_id)
    async with info.context.resources.hub.listen(channel) as queue:
        yield _Feed(info, organization_id, queue)


async def _recheck(info: Info, organization_id: UUID) -> None:
    """Authenticate the connection's credentials again and decide anew, from fresh lookups."""
    context = info.context
    try:
        context.principal = await context.resources.authenticator.authenticate(context.credentials)
    except Unauthenticated as error:
        raise ApiError("UNAUTHENTICATED", str(error)) from None
    context.decisions.clear()
    context.loaders = Loaders.create(context.resources.pool)
    await authorize(context, Permission.READ, [organization_id])


async def _view(info: Info, organization_id: UUID, teams: list[UUID], users: list[str]) -> MeterView:
    now = datetime.now(UTC)
    async with info.context.resources.pool.acquire() as connection:
        state = (await load_live_states(connection, [organization_id], now))[organization_id]
    return MeterView.read(full_update(state, now, teams, users))


async def _follow(feed: _Feed, view: MeterView, read: Callable[[MeterView], T]) -> AsyncIterator[tuple[T, datetime]]:
    """The reading now, then a new one whenever a change moves it (not when only time passed)."""
    last = read(view)
    yield last, view.at
    while True:
        view = view.merged(feeds.decode_meter(await feed.next()))
        reading = read(view)
        if reading != last:
            last = reading
            yield reading, view.at


async def _team_ids(info: Info, organization_id: UUID) -> set[UUID]:
    return {team.id for team in await info.context.loaders.teams.load(organization_id)}


def _readers_of_the_organization() -> list[FieldExtension]:
    return [Authorize(Permission.READ, from_argument("organization_id", "organizationId"))]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        extensions=_readers_of_the_organization(),
        description="The organization's balance now, then again after every command the ledger applies to it.",
    )
    async def credit_meter(self, info: Info, organization_id: strawberry.ID) -> AsyncGenerator[MeterReading, None]:
        org_id = parse_id(organization_id, "organizationId")
        # Listen before reading, so no change between the two is missed.
        async with _feed(info, org_id, keys.meter_channel(org_id)) as feed:
            now = datetime.now(UTC)
            balance = (await balances_by_orgs(info.context.resources.pool, [org_id], now))[org_id]
            yield MeterReading.from_balance(org_id, balance, now)
            while True:
                update = feeds.decode_meter(await feed.next())
                yield MeterReading.from_balance(org_id, update.balance, update.at)

    @strawberry.subscription(
        extensions=_readers_of_the_organization(),
        description="A team's own credits and budget now, then whenever a change moves them.",
    )
    async def team_credit_meter(
        self, info: Info, organization_id: strawberry.ID, team_id: strawberry.ID
    ) -> AsyncGenerator[TeamMeterReading, None]:
        org_id, team = parse_id(organization_id, "organizationId"), parse_id(team_id, "teamId")
        async with _feed(info, org_id, keys.meter_channel(org_id)) as feed:
            if team not in await _team_ids(info, org_id):
                raise not_found("team")
            view = await _view(info, org_id, [team], [])
            async for meter, at in _follow(feed, view, lambda v: v.team(team)):
                yield TeamMeterReading.from_domain(org_id, team, meter, at)

    @strawberry.subscription(
        extensions=_readers_of_the_organization(),
        description=(
            "What one user may spend now (their team's credits, the pool's, within their cap and the team's "
            "budget), then whenever a change moves it. The team is teamId, or else the user's membership's."
        ),
    )
    async def user_credit_meter(
        self, info: Info, organization_id: strawberry.ID, user_id: str, team_id: strawberry.ID | None = None
    ) -> AsyncGenerator[UserMeterReading, None]:
        org_id = parse_id(organization_id, "organizationId")
        async with _feed(info, org_id, keys.meter_channel(org_id)) as feed:
            team = optional_id(team_id, "teamId")
            if team is None:
                members = await info.context.loaders.members.load(org_id)
                team = next((m.team_id for m in members if m.user_id == user_id), None)
            elif team not in await _team_ids(info, org_id):
                raise not_found("team")
            view = await _view(info, org_id, [] if team is None else [team], [user_id])

            def read(v: MeterView) -> tuple[UserMeter, LimitUse | None]:
                return v.user(user_id, team), None if team is None else v.team(team).budget

            async for (meter, budget), at in _follow(feed, view, read):
                yield UserMeterReading.from_domain(org_id, user_id, meter, budget, at)

    @strawberry.subscription(
        extensions=_readers_of_the_organization(),
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
        # A meter update says the journal moved on; the events are read from the journal itself.
        async with _feed(info, org_id, keys.meter_channel(org_id)) as feed:
            key = decode_history_cursor(org_id, after) if after is not None else await latest_key(pool, org_id)
            while True:
                debits = await debits_after(pool, org_id, key, usage_page_max)
                for debit in debits:
                    key = debit.key
                    if (
                        (team is None or debit.team_id == team)
                        and (user_id is None or debit.user_id == user_id)
                        and (product is None or debit.product == product)
                    ):
                        yield UsageEvent.from_domain(org_id, debit)
                if len(debits) < usage_page_max:
                    await feed.changed()

    @strawberry.subscription(
        extensions=_readers_of_the_organization(),
        description="Each alert of the organization as it fires (TRIGGERED) or stops holding (RESOLVED).",
    )
    async def alert_events(self, info: Info, organization_id: strawberry.ID) -> AsyncGenerator[AlertEvent, None]:
        org_id = parse_id(organization_id, "organizationId")
        async with _feed(info, org_id, keys.alert_channel(org_id)) as feed:
            while True:
                for event in feeds.decode_alerts(await feed.next()):
                    yield AlertEvent.from_domain(event)
