"""Live subscriptions over graphql-transport-ws, backed by Redis pub/sub, so any API process serves
any organization: meters (the organization's, a team's, a user's), its usage as the ledger journals
it, and its alerts as they fire.

Each is authorized like the query it mirrors when it starts (afresh: a fresh authentication and
fresh lookups, whatever an earlier operation on the same connection decided) and again every
`access_recheck_s` while it runs: a revoked key, an expired token or a removed member stops
receiving within that time, and the subscription ends with the error.

A meter starts from a full read of PostgreSQL, taken after it began listening (so nothing between
the two is missed), follows the ledger's meter updates, and reads the state afresh at every check
of access, so an update lost on the way (pub/sub drops what comes while a connection is down, and a
slow listener's oldest messages) leaves it behind for that long at most. Usage and alert events are
read from the journal itself, woken by those updates and at every check: they miss nothing, and a
client resumes a stream from the last event's cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import strawberry
from strawberry.extensions import FieldExtension

from graphql_api.access.authorize import Authorize, authorize, from_argument
from graphql_api.access.policy import Permission
from graphql_api.alerts import AlertEvent, decode_alert_cursor
from graphql_api.context import Info
from graphql_api.errors import not_found
from graphql_api.history import decode_history_cursor
from graphql_api.ids import parse_id
from graphql_api.meters import TeamMeterReading, UsageEvent, UserMeterReading
from graphql_api.mutations import optional_id
from graphql_api.types import MeterReading, load_organization
from ledger.core.meter import LimitUse, MeterView, UserMeter, full_update
from ledger.store.alerts import alert_events_after, latest_alert_key
from ledger.store.balances import balances_by_orgs
from ledger.store.history import debits_after, latest_key
from ledger.store.states import load_live_states
from ledger.stream import feeds, keys

access_recheck_s = 30.0
# Rows a journal stream reads at a time.
journal_page_max = 200

T = TypeVar("T")
K = TypeVar("K")


@dataclass
class _Feed:
    """An organization's meter updates for one subscription, with its access checked again as time
    passes."""

    info: Info
    organization_id: UUID
    queue: asyncio.Queue[bytes]
    recheck_at: float = field(default_factory=lambda: time.monotonic() + access_recheck_s)

    async def next(self) -> bytes | None:
        """The next update; or None once access was checked again, every `access_recheck_s` (the
        reader then reads afresh, whether or not an update came)."""
        if await self.recheck_if_due():
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self.queue.get(), self.recheck_at - time.monotonic())
        return None

    async def recheck_if_due(self) -> bool:
        if time.monotonic() < self.recheck_at:
            return False
        await _recheck(self.info, self.organization_id)
        self.recheck_at = time.monotonic() + access_recheck_s
        return True

    def drain(self) -> None:
        """Drop queued updates: a reader of the journal reads everything they announced at once."""
        while not self.queue.empty():
            self.queue.get_nowait()


@contextlib.asynccontextmanager
async def _feed(info: Info, organization_id: UUID) -> AsyncIterator[_Feed]:
    await load_organization(info, organization_id)
    async with info.context.resources.hub.listen(keys.meter_channel(organization_id)) as queue:
        yield _Feed(info, organization_id, queue)


async def _recheck(info: Info, organization_id: UUID) -> None:
    """Authenticate the connection's credentials again and decide anew, from fresh lookups."""
    await info.context.renew()
    await authorize(info.context, Permission.READ, [organization_id])


async def _view(info: Info, organization_id: UUID, teams: list[UUID], users: list[str]) -> MeterView:
    now = datetime.now(UTC)
    async with info.context.resources.pool.acquire() as connection:
        state = (await load_live_states(connection, [organization_id], now))[organization_id]
    return MeterView.start(full_update(state, now, teams, users))


async def _follow(
    feed: _Feed, reload: Callable[[], Awaitable[MeterView]], read: Callable[[MeterView], T]
) -> AsyncIterator[tuple[T, datetime]]:
    """The reading now, then a new one whenever a change moves it (not when only time passed)."""
    view = await reload()
    last = read(view)
    yield last, view.at
    while True:
        update = await feed.next()
        view = await reload() if update is None else view.merged(feeds.decode_meter(update))
        reading = read(view)
        if reading != last:
            last = reading
            yield reading, view.at


async def _journal(
    feed: _Feed, key: K, read_after: Callable[[K], Awaitable[list[T]]], key_of: Callable[[T], K]
) -> AsyncIterator[T]:
    """Rows of the journal after `key`, oldest first, as they are committed: read whenever an
    update says the organization changed (and at every check of access), a page at a time."""
    while True:
        feed.drain()
        rows = await read_after(key)
        for row in rows:
            key = key_of(row)
            yield row
        if len(rows) < journal_page_max:
            await feed.next()
        else:
            await feed.recheck_if_due()  # catching up: still checked as time passes


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
        pool = info.context.resources.pool
        # Listen before reading, so no change between the two is missed.
        async with _feed(info, org_id) as feed:
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
        extensions=_readers_of_the_organization(),
        description="A team's own credits and budget now, then whenever a change moves them.",
    )
    async def team_credit_meter(
        self, info: Info, organization_id: strawberry.ID, team_id: strawberry.ID
    ) -> AsyncGenerator[TeamMeterReading, None]:
        org_id, team = parse_id(organization_id, "organizationId"), parse_id(team_id, "teamId")
        async with _feed(info, org_id) as feed:
            if team not in await _team_ids(info, org_id):
                raise not_found("team")

            async def reload() -> MeterView:
                return await _view(info, org_id, [team], [])

            async for meter, at in _follow(feed, reload, lambda v: v.team(team)):
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
        async with _feed(info, org_id) as feed:
            chosen = optional_id(team_id, "teamId")
            if chosen is not None and chosen not in await _team_ids(info, org_id):
                raise not_found("team")
            team = chosen

            async def reload() -> MeterView:
                nonlocal team
                if chosen is None:  # the membership's team, as it is now (a move shows at the next read)
                    members = await info.context.loaders.members.load(org_id)
                    team = next((m.team_id for m in members if m.user_id == user_id), None)
                return await _view(info, org_id, [] if team is None else [team], [user_id])

            def read(v: MeterView) -> tuple[UserMeter, LimitUse | None]:
                return v.user(user_id, team), None if team is None else v.team(team).budget

            async for (meter, budget), at in _follow(feed, reload, read):
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
        async with _feed(info, org_id) as feed:
            key = decode_history_cursor(org_id, after) if after is not None else await latest_key(pool, org_id)
            debits = _journal(
                feed, key, lambda k: debits_after(pool, org_id, k, journal_page_max), lambda debit: debit.key
            )
            async for debit in debits:
                if (
                    (team is None or debit.team_id == team)
                    and (user_id is None or debit.user_id == user_id)
                    and (product is None or debit.product == product)
                ):
                    yield UsageEvent.from_domain(org_id, debit)

    @strawberry.subscription(
        extensions=_readers_of_the_organization(),
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
        async with _feed(info, org_id) as feed:
            key = decode_alert_cursor(org_id, after) if after is not None else await latest_alert_key(pool, org_id)
            events = _journal(
                feed, key, lambda k: alert_events_after(pool, org_id, k, journal_page_max), lambda e: e.key
            )
            async for journaled in events:
                yield AlertEvent.from_domain(org_id, journaled)
