"""The ledger worker: the actor loop that owns partitions and applies their commands.

Each turn: renew leases (shedding or taking partitions towards a fair share), read a batch from the
owned partitions, apply it with the pure core and journal it in one PostgreSQL transaction that
first checks this worker's fencing tokens, and only after the commit acknowledge the entries, answer
the callers, refresh balance snapshots and publish meter readings. A failure anywhere before the
acknowledgement leaves the entries pending; they are read again and, being already journaled or
not, applied exactly once.

Organizations' states stay warm between batches (`ledger.stream.warm`): the worker is their only
writer, so a batch of usage reads nothing but its idempotency keys and the catalog's rates.

Batches are pipelined: while one batch is being written and committed (PostgreSQL's work, on the
other core), the next is read and applied in Python on top of the states the first produced. The
second may only commit after the first did; if the first fails, both are dropped, with the warm
states, and their entries read again. So a single hot organization keeps both cores busy.

Poison isolation: a batch that fails with anything but an outage (a core bug, a value the store
refuses) is dropped like a failed one, and its entries read again from the pending list. Entries
read again are never pipelined: each batch of them is applied and written alone, and one that fails
is split in halves, each applied and written by itself, until the one entry that fails alone is
found; it is dead-lettered (`ledger.stream.dead_letters`) and its caller told `COMMAND_FAILED`,
and everything else is applied. An entry that kills its process leaves no exception to catch: each
new owner's claim counts a delivery, an entry delivered `dead_letter_alone_deliveries_min` times is
applied alone, and one delivered more than `dead_letter_deliveries_max` times is dead-lettered
unapplied. Nothing of this runs while batches succeed.

The loop, leases, fencing, pipelining and poison isolation are here; reading the partitions'
streams is `ledger.stream.inbox`'s, a prepared batch and the pure steps of preparing one are
`ledger.stream.batches`', and what follows a commit is `ledger.stream.acknowledgement`'s.
"""
# long: the loop, its leases, fencing, pipelining and poison isolation are one state machine

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from uuid import UUID

import asyncpg
import redis.asyncio as redis

from ledger import constants
from ledger.core.batch import IdempotencyKey, Stored
from ledger.core.commands import Command
from ledger.core.errors import ErrorCode
from ledger.core.state import OrgState
from ledger.runtime.outages import OUTAGES
from ledger.store import fences, journal
from ledger.store.catalog_rates import CatalogRates
from ledger.store.fences import FencedOut
from ledger.store.states import UnknownOrganizations, load_states
from ledger.stream.acknowledgement import acknowledge
from ledger.stream.batches import Prepared, apply_in_slices, priced_products
from ledger.stream.failpoints import failpoint, poisoned
from ledger.stream.inbox import Entry, Failure, Inbox, organizations, refuse
from ledger.stream.leases import Leases
from ledger.stream.warm import WarmStates, event_time

log = logging.getLogger(__name__)

# PostgreSQL's own trouble, not any entry's: waited out like an outage and never split on (a full
# disk would otherwise dead-letter every entry it met).
_SERVER_TROUBLE: tuple[type[BaseException], ...] = (
    asyncpg.InsufficientResourcesError,  # disk full, out of memory, too many connections
    asyncpg.TransactionRollbackError,  # deadlock, serialization failure
    asyncpg.ReadOnlySQLTransactionError,  # a failover left us on a standby
)
_RETRIED: tuple[type[BaseException], ...] = (*OUTAGES, *_SERVER_TROUBLE)


class LedgerWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        client: redis.Redis,
        partition_count: int,
        lease_ttl_ms: int = constants.lease_ttl_ms,
    ) -> None:
        self.pool = pool
        self.client = client
        self.partition_count = partition_count
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"
        self.lease_ttl_ms = lease_ttl_ms
        self.leases = Leases(client, self.worker_id, partition_count, lease_ttl_ms)
        self.inbox = Inbox(client, self.worker_id, lease_ttl_ms)
        # Per owned partition: the fencing token our commits must still hold.
        self._tokens: dict[int, int] = {}
        # Numbers this worker's batches in the order they commit (the second half of their
        # snapshots' version, after the token: `ledger.stream.feeds`).
        self._sequence = itertools.count(1)
        self._next_lease_at = 0.0
        self.warm = WarmStates(constants.warm_organizations_max)
        self.rates = CatalogRates(pool)
        # The batch being written, its organizations, and its new idempotency keys (not yet in
        # PostgreSQL, so the next batch must learn of them from here).
        self._inflight: asyncio.Task[None] | None = None
        self._inflight_orgs: set[UUID] = set()
        self._inflight_keys: dict[IdempotencyKey, Stored] = {}

    async def run(self, stop: asyncio.Event) -> None:
        log.info("%s started", self.worker_id)
        self.rates.start()
        try:
            outage_since: float | None = None  # an outage is logged once when it starts, once when it ends
            while not stop.is_set():
                try:
                    await self.turn()
                    if outage_since is not None:
                        down_s = time.monotonic() - outage_since
                        log.info("%s: PostgreSQL and Redis answer again after %.1f s", self.worker_id, down_s)
                        outage_since = None
                except _RETRIED as error:
                    if outage_since is None:
                        outage_since = time.monotonic()
                        log.error("%s: PostgreSQL or Redis is unreachable (%s: %s); retrying quietly until it is back",
                                  self.worker_id, type(error).__name__, error)  # fmt: skip
                    self._reread_pending()
                    await asyncio.sleep(constants.worker_retry_delay_s)
        finally:
            with contextlib.suppress(*OUTAGES):
                await self._settle()
                await self.leases.release_all()
            await self.rates.close()
            log.info("%s stopped", self.worker_id)

    async def turn(self) -> int:
        """One read-apply-acknowledge cycle; returns how many entries it handled."""
        entries: list[Entry] = []
        try:
            if time.monotonic() >= self._next_lease_at:
                await self._maintain_leases()
            entries = await self._read()
            if entries:
                await self._process(entries)
            else:
                await self._settle()
        except _BatchFailed as failed:
            await self._isolate(failed)
        return len(entries)

    async def _isolate(self, failed: _BatchFailed) -> None:
        """A batch failed, not for an outage: drop what was in flight and what is warm, and read
        the pending entries again, to be applied by halves until the entry at fault is found."""
        cause = failed.__cause__
        log.warning(
            "%s: a batch failed (%s: %s); applying its entries again, by halves if need be",
            self.worker_id, type(cause).__name__, cause,
        )  # fmt: skip
        with contextlib.suppress(_BatchFailed):  # the other batch in flight: read again with the rest
            await self._settle()
        self._abandon()

    def _reread_pending(self) -> None:
        self.inbox.reread_pending()

    async def _maintain_leases(self) -> None:
        # Partitions change hands only between batches.
        if not await self._settle():
            return
        _, lost = await self.leases.maintain()
        self._let_go(lost)
        if lost:
            log.info("%s gave up partitions %s", self.worker_id, sorted(lost))
        # Leases held but not yet adopted: just gained, or gained when a takeover step failed.
        unadopted = self.leases.held - self.inbox.cursors.keys()
        if unadopted:
            # Bump the fences first: from here on, a previous owner cannot commit, and what it did
            # commit is visible to the loads below.
            self._tokens.update(await fences.claim(self.pool, unadopted, self.worker_id))
            self.warm.drop_partitions(unadopted, self.partition_count)
            for partition in sorted(unadopted):
                await self.inbox.adopt(partition)
            log.info("%s took partitions %s", self.worker_id, sorted(unadopted))
        await self.inbox.reclaim_stranded(set(self.inbox.cursors) - unadopted)
        self._next_lease_at = time.monotonic() + self.lease_ttl_ms / 1000 / constants.lease_renewals_per_ttl

    def _let_go(self, partitions: set[int]) -> None:
        self.inbox.let_go(partitions)
        for partition in partitions:
            self._tokens.pop(partition, None)
        self.warm.drop_partitions(partitions, self.partition_count)

    async def _read(self) -> list[Entry]:
        # Read only while sure of the lease; a worker that stalled renews (or learns) first.
        if any(not self.leases.valid(partition) for partition in self.inbox.cursors):
            await self._maintain_leases()
        history = [p for p, cursor in self.inbox.cursors.items() if cursor == "0"]
        if history and await self._settle():  # pending entries include the batch in flight
            entries = await self.inbox.read_history(history)
            for partition in set(history) - {entry.partition for entry in entries}:
                self.inbox.cursors[partition] = ">"
            if entries:
                return entries
        live = [p for p, cursor in self.inbox.cursors.items() if cursor == ">"]
        if not live:
            await asyncio.sleep(constants.read_block_ms / 1000)
            return []
        share = max(constants.read_share_min, constants.batch_size_max // len(live))
        entries = await self._read_group({p: ">" for p in live}, block_ms=constants.read_block_ms, count=share)
        # Partitions that filled their share have more waiting: a hot organization's partition
        # fills the rest of the batch, rather than trickling in a share at a time.
        counts = Counter(entry.partition for entry in entries)
        full = [partition for partition, count in counts.items() if count == share]
        room = constants.batch_size_max - len(entries)
        if full and room >= len(full):
            entries += await self._read_group({p: ">" for p in full}, block_ms=None, count=room // len(full))
        return entries

    async def _read_group(self, cursors: dict[int, str], block_ms: int | None, count: int | None = None) -> list[Entry]:
        return await self.inbox.read_group(cursors, block_ms, count)

    async def _process(self, entries: Sequence[Entry]) -> None:
        if entries and entries[0].history:
            await self._process_alone(entries)
            return
        failpoint("before_apply")
        try:
            prepared = await self._prepare_known(entries)
        except _Abandoned:
            return
        except _PASS_THROUGH:
            raise
        except Exception as error:
            raise _BatchFailed from error
        # The previous batch must commit before this one may; if it failed, this one, built on
        # it, is dropped too (its entries stay pending and are read again).
        if await self._settle():
            self._inflight = asyncio.create_task(self._write(prepared))
            self._inflight_orgs = set(prepared.final)
            self._inflight_keys = prepared.keys

    async def _process_alone(self, entries: Sequence[Entry]) -> None:
        """Entries read again: nothing is in flight, and they are applied and written by
        themselves, so that a failure which is not an outage can be traced to its entry."""
        failpoint("before_apply")
        with contextlib.suppress(_Abandoned):
            await self._apply_or_split(entries, retried=False)

    async def _apply_or_split(self, entries: Sequence[Entry], retried: bool) -> None:
        """Apply and write entries in one transaction; if that fails, not for an outage, split them
        and try each half, until the entry that fails alone (twice: not a passing fault) is found
        and dead-lettered."""
        try:
            prepared = await self._prepare_known(entries)
            await self._journal(prepared)
        except _Abandoned:
            raise
        except FencedOut as fenced:
            self._fenced_out(fenced)
            raise _Abandoned from fenced
        except Exception as error:
            # Whatever was kept warm may have run ahead of the database.
            self.warm.drop(organizations(entries))
            if isinstance(error, _RETRIED):
                raise
            await self._split(entries, error, retried)
            return
        # Not in the try: a failure to acknowledge says nothing about the entries.
        await self._after_commit(prepared)

    async def _split(self, entries: Sequence[Entry], error: Exception, retried: bool) -> None:
        if len(entries) > 1:
            middle = len(entries) // 2
            log.warning(
                "%s: %d entries failed together (%s: %s); trying each half alone",
                self.worker_id, len(entries), type(error).__name__, error,
            )  # fmt: skip
            await self._apply_or_split(entries[:middle], retried=False)
            await self._apply_or_split(entries[middle:], retried=False)
        elif not retried:
            await self._apply_or_split(entries, retried=True)
        else:
            (entry,) = entries
            failure = Failure(type(error).__name__, str(error))
            aside = replace(entry, command=None, refused=entry.command, failure=failure)
            await self._after_commit(Prepared.of_entries([aside]))

    async def _prepare_known(self, entries: Sequence[Entry]) -> Prepared:
        """`_prepare`, with the commands of organizations that do not exist set aside (they can
        never apply; their callers are told NOT_FOUND)."""
        commands = [entry.command for entry in entries if entry.command is not None]
        if not commands:
            return Prepared.of_entries(entries)
        try:
            return await self._prepare(entries, commands)
        except UnknownOrganizations as unknown:
            log.warning("%s: dead-lettering commands for %s", self.worker_id, unknown)
            failure = Failure(
                type(unknown).__name__, str(unknown), code=ErrorCode.NOT_FOUND, reply="organization not found"
            )
            return await self._prepare_known([refuse(entry, unknown.organization_ids, failure) for entry in entries])

    async def _prepare(self, entries: Sequence[Entry], commands: list[Command]) -> Prepared:
        """Read what the batch needs and apply it, starting from warm states (the batch in flight
        included); the states it ends with are kept warm at once, for the next batch."""
        by_org: dict[UUID, list[Command]] = {}
        for command in commands:
            by_org.setdefault(command.organization_id, []).append(command)
        warm = {org: state for org, cmds in by_org.items() if (state := self.warm.usable(org, cmds)) is not None}
        cold = [command for command in commands if command.organization_id not in warm]
        # A fresh load must see the batch in flight committed.
        if any(c.organization_id in self._inflight_orgs for c in cold) and not await self._settle():
            raise _Abandoned
        try:
            async with self.pool.acquire() as connection:
                states = {**warm, **(await load_states(connection, cold) if cold else {})}
                states = await self._with_current_rates(connection, states, commands)
                stored = await journal.load_stored(
                    connection, [(c.organization_id, c.idempotency_key) for c in commands]
                )
            outcomes, final, keys = await apply_in_slices(states, commands, {**stored, **self._inflight_keys})
            poisoned("apply", (command.envelope.idempotency_key for command in commands))
        except BaseException:
            self.warm.drop(by_org)
            raise
        loaded_from = {org: min(event_time(c) for c in by_org[org]) for org in by_org.keys() - warm.keys()}
        self.warm.keep(final, loaded_from)
        partitions = {entry.partition for entry in entries}
        tokens = {p: self._tokens.get(p, 0) for p in partitions}
        return Prepared(entries, partitions, states, outcomes, final, keys, tokens, next(self._sequence))

    async def _write(self, prepared: Prepared) -> None:
        """Journal a prepared batch, then acknowledge and answer."""
        await self._journal(prepared)
        await self._after_commit(prepared)

    async def _journal(self, prepared: Prepared) -> None:
        """Write a prepared batch in one transaction that first checks our fencing tokens. One the
        journal writes by one statement (`journal.one_statement`: usage, nearly always) is its own
        transaction, sparing BEGIN and COMMIT; its crash and poison points come just before it is
        sent, where they leave what they leave inside a transaction: nothing committed."""
        if not prepared.outcomes:
            return
        tokens = prepared.tokens
        keys = (outcome.command.envelope.idempotency_key for outcome in prepared.outcomes)
        args = (prepared.outcomes, prepared.initial, prepared.final, tokens)
        async with self.pool.acquire() as connection:
            if journal.one_statement(prepared.outcomes, prepared.initial, prepared.final):
                poisoned("write", keys)
                failpoint("in_transaction")
                await journal.write_outcomes(connection, *args)
            else:
                async with connection.transaction():
                    await journal.write_outcomes(connection, *args)
                    poisoned("write", keys)
                    failpoint("in_transaction")
        failpoint("after_commit")

    async def _settle(self) -> bool:
        """Wait for the batch in flight. True if it committed (or there was none); False if it was
        fenced out. Any other failure is raised; either way, what is warm may have run ahead of the
        database, so it is dropped and the pending entries are read again."""
        task, self._inflight = self._inflight, None
        if task is None:
            return True
        try:
            await task
        except FencedOut as fenced:
            self._fenced_out(fenced)
            return False
        except _PASS_THROUGH:
            self._abandon()
            raise
        except Exception as error:
            self._abandon()
            raise _BatchFailed from error
        except BaseException:
            self._abandon()
            raise
        finally:
            self._inflight_orgs, self._inflight_keys = set(), {}
        return True

    async def _after_commit(self, prepared: Prepared) -> None:
        await acknowledge(self.client, prepared)

    def _fenced_out(self, fenced: FencedOut) -> None:
        # Another worker owns these now and will apply the entries; leave them pending.
        log.warning("%s: %s; nothing committed", self.worker_id, fenced)
        self.leases.forget(set(fenced.partitions))
        self._let_go(set(fenced.partitions))
        self._abandon()

    def _abandon(self) -> None:
        self.warm.clear()
        self._reread_pending()

    async def _with_current_rates(
        self, connection: asyncpg.Connection, states: dict[UUID, OrgState], commands: list[Command]
    ) -> dict[UUID, OrgState]:
        """Give every state the catalog's current rates for what the batch prices (the catalog is
        the one input the actor does not own)."""
        card = await self.rates.current(connection, priced_products(commands, states))
        return {org: s if s.rate_card is card else replace(s, rate_card=card) for org, s in states.items()}


class _Abandoned(Exception):
    """The batch in flight failed while the next one was being prepared: drop the next one too."""


class _BatchFailed(Exception):
    """A batch failed for something other than an outage or a fence (its `__cause__`): its
    entries are to be applied again, by halves."""


# What a pipelined batch's failure is not to be taken for: retried as it is.
_PASS_THROUGH: tuple[type[BaseException], ...] = (*_RETRIED, _BatchFailed, _Abandoned)
