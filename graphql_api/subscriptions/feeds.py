"""Live subscriptions over graphql-transport-ws, backed by Redis pub/sub, so any API process serves
any organization: meters (the organization's, a team's, a user's), its usage as the ledger journals
it, and its alerts as they fire.

Each is authorized like the query it mirrors when it starts (afresh: a fresh authentication and
fresh lookups, whatever an earlier operation on the same connection decided) and again every
`access_recheck_s` (`ledger.constants`) while it runs: a revoked key, an expired token or a removed member stops
receiving within that time, and the subscription ends with the error.

A meter starts from a full read of PostgreSQL, taken after it began listening (so nothing between
the two is missed), follows the ledger's meter updates, and reads the state afresh at every check
of access, so an update lost on the way (pub/sub drops what comes while a connection is down, and a
slow listener's oldest messages) leaves it behind for that long at most. Usage and alert events are
read from the journal itself, woken by those updates and at every check: they miss nothing, and a
client resumes a stream from the last event's cursor.

This module holds what every subscription shares: the feed of an organization's updates, the
recheck of access, and the journal followed page by page."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from strawberry.extensions import FieldExtension

from graphql_api.access.authorize import Authorize, authorize, from_argument
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.inputs import load_organization
from ledger import constants
from ledger.core.meter import MeterView, full_update
from ledger.store.states import load_live_states
from ledger.stream import feeds, keys

T = TypeVar("T")


K = TypeVar("K")


@dataclass
class Feed:
    """An organization's meter updates for one subscription, with its access checked again as time
    passes."""

    info: Info
    organization_id: UUID
    queue: asyncio.Queue[bytes]
    recheck_at: float = field(default_factory=lambda: time.monotonic() + constants.access_recheck_s)

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
        await recheck(self.info, self.organization_id)
        self.recheck_at = time.monotonic() + constants.access_recheck_s
        return True

    def drain(self) -> None:
        """Drop queued updates: a reader of the journal reads everything they announced at once."""
        while not self.queue.empty():
            self.queue.get_nowait()


@contextlib.asynccontextmanager
async def organization_feed(info: Info, organization_id: UUID) -> AsyncIterator[Feed]:
    await load_organization(info, organization_id)
    async with info.context.resources.hub.listen(keys.meter_channel(organization_id)) as queue:
        yield Feed(info, organization_id, queue)


async def recheck(info: Info, organization_id: UUID) -> None:
    """Authenticate the connection's credentials again and decide anew, from fresh lookups."""
    await info.context.renew()
    await authorize(info.context, Permission.READ, [organization_id])


async def meter_view(info: Info, organization_id: UUID, teams: list[UUID], users: list[str]) -> MeterView:
    now = datetime.now(UTC)
    async with info.context.resources.pool.acquire() as connection:
        state = (await load_live_states(connection, [organization_id], now))[organization_id]
    return MeterView.start(full_update(state, now, teams, users))


async def follow(
    feed: Feed, reload: Callable[[], Awaitable[MeterView]], read: Callable[[MeterView], T]
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


async def journal(
    feed: Feed, key: K, read_after: Callable[[K], Awaitable[list[T]]], key_of: Callable[[T], K]
) -> AsyncIterator[T]:
    """Rows of the journal after `key`, oldest first, as they are committed: read whenever an
    update says the organization changed (and at every check of access), a page at a time."""
    while True:
        feed.drain()
        rows = await read_after(key)
        for row in rows:
            key = key_of(row)
            yield row
        if len(rows) < constants.journal_page_max:
            await feed.next()
        else:
            await feed.recheck_if_due()  # catching up: still checked as time passes


async def team_ids(info: Info, organization_id: UUID) -> set[UUID]:
    return {team.id for team in await info.context.loaders.teams.load(organization_id)}


def readers_of_the_organization() -> list[FieldExtension]:
    return [Authorize(Permission.READ, from_argument("organization_id", "organizationId"))]
