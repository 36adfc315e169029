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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError

from ledger import constants
from ledger.core.batch import IdempotencyKey, Outcome, Stored, apply_batch
from ledger.core.commands import Command, decode
from ledger.core.entries import Result, Status
from ledger.core.errors import ErrorCode
from ledger.core.references import references
from ledger.core.state import OrgState
from ledger.runtime.outages import OUTAGES
from ledger.store import fences, journal
from ledger.store.catalog_rates import CatalogRates
from ledger.store.fences import FencedOut
from ledger.store.states import UnknownOrganizations, load_states
from ledger.stream import dead_letters, feeds, keys
from ledger.stream.dead_letters import DeadLetter
from ledger.stream.failpoints import failpoint, poisoned
from ledger.stream.leases import Leases
from ledger.stream.replies import Reply, encode_reply
from ledger.stream.warm import WarmStates, event_time

log = logging.getLogger(__name__)

_COMMAND_FAILED_MESSAGE = "the ledger could not apply this command; it was set aside for an operator to review"
retry_delay_s = 0.5
# PostgreSQL's own trouble, not any entry's: waited out like an outage and never split on (a full
# disk would otherwise dead-letter every entry it met).
_SERVER_TROUBLE: tuple[type[BaseException], ...] = (
    asyncpg.InsufficientResourcesError,  # disk full, out of memory, too many connections
    asyncpg.TransactionRollbackError,  # deadlock, serialization failure
    asyncpg.ReadOnlySQLTransactionError,  # a failover left us on a standby
)
_RETRIED: tuple[type[BaseException], ...] = (*OUTAGES, *_SERVER_TROUBLE)
# Commands applied between yields to the event loop.
_APPLY_SLICE = 100

# Trim what every consumer has acknowledged: keep entries from the oldest still pending (or the
# newest delivered when none is pending) onwards, so nothing unacknowledged is ever dropped.
_TRIM = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local floor = ARGV[2]
if pending[1] > 0 then floor = pending[2] end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
"""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an entry was set aside: what its dead letter records, and what its caller is told."""

    error: str  # the exception's class, or what happened
    message: str
    code: ErrorCode = ErrorCode.COMMAND_FAILED
    reply: str = _COMMAND_FAILED_MESSAGE


@dataclass(frozen=True, slots=True)
class Entry:
    partition: int
    entry_id: bytes
    command: Command | None  # None: set aside for the dead-letter stream, not applied
    raw: bytes = b""  # the `c` field as sent: what a dead letter keeps, to be replayed
    refused: Command | None = None  # set aside, yet readable: its caller is told why
    failure: Failure | None = None  # why it was set aside
    history: bool = False  # read again from the pending list: applied alone, never pipelined


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
        # EVALSHA straight away: redis-py's Script in a pipeline first asks SCRIPT EXISTS.
        self._trim_sha = hashlib.sha1(_TRIM.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        # Per owned partition: "0" to re-read our own pending entries first, ">" for new ones.
        self._cursors: dict[int, str] = {}
        # Per owned partition: the fencing token our commits must still hold.
        self._tokens: dict[int, int] = {}
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
                    await asyncio.sleep(retry_delay_s)
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
        for partition in self._cursors:
            self._cursors[partition] = "0"

    async def _maintain_leases(self) -> None:
        # Partitions change hands only between batches.
        if not await self._settle():
            return
        _, lost = await self.leases.maintain()
        self._let_go(lost)
        if lost:
            log.info("%s gave up partitions %s", self.worker_id, sorted(lost))
        # Leases held but not yet adopted: just gained, or gained when a takeover step failed.
        unadopted = self.leases.held - self._cursors.keys()
        if unadopted:
            # Bump the fences first: from here on, a previous owner cannot commit, and what it did
            # commit is visible to the loads below.
            self._tokens.update(await fences.claim(self.pool, unadopted, self.worker_id))
            self.warm.drop_partitions(unadopted, self.partition_count)
            for partition in sorted(unadopted):
                await self._adopt(partition)
            log.info("%s took partitions %s", self.worker_id, sorted(unadopted))
        await self._reclaim_stranded(set(self._cursors) - unadopted)
        self._next_lease_at = time.monotonic() + self.lease_ttl_ms / 1000 / constants.lease_renewals_per_ttl

    def _let_go(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._cursors.pop(partition, None)
            self._tokens.pop(partition, None)
        self.warm.drop_partitions(partitions, self.partition_count)

    async def _reclaim_stranded(self, partitions: set[int]) -> None:
        """Entries a fenced-out worker read after we took its partition stay pending under its
        name: once idle for a lease's length, they are ours to apply."""
        if not partitions:
            return
        ordered = sorted(partitions)
        async with self.client.pipeline(transaction=False) as pipe:
            for partition in ordered:
                pipe.xautoclaim(
                    keys.stream(partition), keys.CONSUMER_GROUP, self.worker_id, self.lease_ttl_ms, "0-0",
                    count=constants.batch_size_max, justid=True,
                )  # fmt: skip
            answers = await pipe.execute(raise_on_error=False)
        for partition, answer in zip(ordered, answers, strict=True):
            if isinstance(answer, (list, tuple)) and len(answer) > 1 and answer[1]:
                self._cursors[partition] = "0"

    async def _adopt(self, partition: int) -> None:
        """Take a partition over: its group must exist, and entries a previous owner left pending
        become ours, to be applied before anything new."""
        stream = keys.stream(partition)
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self.client.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
        start = "0-0"
        while True:
            # Claiming only moves ownership; the entries are then read as our own pending history.
            answer = await self.client.xautoclaim(
                stream, keys.CONSUMER_GROUP, self.worker_id, 0, start, count=constants.batch_size_max
            )
            start = answer[0].decode()
            if start == "0-0":
                break
        self._cursors[partition] = "0"

    async def _read(self) -> list[Entry]:
        # Read only while sure of the lease; a worker that stalled renews (or learns) first.
        if any(not self.leases.valid(partition) for partition in self._cursors):
            await self._maintain_leases()
        history = [p for p, cursor in self._cursors.items() if cursor == "0"]
        if history and await self._settle():  # pending entries include the batch in flight
            entries = await self._read_history(history)
            for partition in set(history) - {entry.partition for entry in entries}:
                self._cursors[partition] = ">"
            if entries:
                return entries
        live = [p for p, cursor in self._cursors.items() if cursor == ">"]
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
        count = count or max(constants.read_share_min, constants.batch_size_max // len(cursors))
        answer = await self.client.xreadgroup(
            keys.CONSUMER_GROUP,
            self.worker_id,
            {keys.stream(p): cursor for p, cursor in cursors.items()},
            count=count,
            block=block_ms,
        )
        entries: list[Entry] = []
        for stream_name, stream_entries in answer or []:
            partition = int(stream_name.decode().split("{")[1].rstrip("}"))
            entries.extend(_entry(partition, entry_id, fields) for entry_id, fields in stream_entries)
        return entries

    async def _read_history(self, partitions: list[int]) -> list[Entry]:
        """Our pending entries, oldest first, with how often each was delivered. Read with XPENDING
        and XRANGE, which count no delivery: only a new owner's claim does (`_adopt`), so retries
        through an outage never count against an entry, and deaths do."""
        count = max(constants.read_share_min, constants.batch_size_max // len(partitions))
        async with self.client.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.xpending_range(
                    keys.stream(partition), keys.CONSUMER_GROUP, "-", "+", count, consumername=self.worker_id
                )
            answers = await pipe.execute()
        taken = [
            (partition, pending)
            for partition, rows in zip(partitions, answers, strict=True)
            for pending in _next_run([_Pending(row["message_id"], row["times_delivered"]) for row in rows])
        ]
        if not taken:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for partition, pending in taken:
                pipe.xrange(keys.stream(partition), pending.entry_id, pending.entry_id)
            found = await pipe.execute()
        return [_history_entry(p, pending, rows) for (p, pending), rows in zip(taken, found, strict=True)]

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
            self._inflight_keys = {
                (o.command.organization_id, o.command.idempotency_key): _stored(o)
                for o in prepared.outcomes
                if o.applied is not None
            }

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
            self.warm.drop(_organizations(entries))
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
            await self._after_commit(_Prepared([aside], {aside.partition}, {}, [], {}))

    async def _prepare_known(self, entries: Sequence[Entry]) -> _Prepared:
        """`_prepare`, with the commands of organizations that do not exist set aside (they can
        never apply; their callers are told NOT_FOUND)."""
        commands = [entry.command for entry in entries if entry.command is not None]
        if not commands:
            return _Prepared(entries, {entry.partition for entry in entries}, {}, [], {})
        try:
            return await self._prepare(entries, commands)
        except UnknownOrganizations as unknown:
            log.warning("%s: dead-lettering commands for %s", self.worker_id, unknown)
            failure = Failure(
                type(unknown).__name__, str(unknown), code=ErrorCode.NOT_FOUND, reply="organization not found"
            )
            return await self._prepare_known([_refuse(entry, unknown.organization_ids, failure) for entry in entries])

    async def _prepare(self, entries: Sequence[Entry], commands: list[Command]) -> _Prepared:
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
            outcomes, final = await _apply_in_slices(states, commands, {**stored, **self._inflight_keys})
            poisoned("apply", (command.envelope.idempotency_key for command in commands))
        except BaseException:
            self.warm.drop(by_org)
            raise
        loaded_from = {org: min(event_time(c) for c in by_org[org]) for org in by_org.keys() - warm.keys()}
        self.warm.keep(final, loaded_from)
        return _Prepared(entries, {entry.partition for entry in entries}, states, outcomes, final)

    async def _write(self, prepared: _Prepared) -> None:
        """Journal a prepared batch, then acknowledge and answer."""
        await self._journal(prepared)
        await self._after_commit(prepared)

    async def _journal(self, prepared: _Prepared) -> None:
        """Write a prepared batch in one transaction that first checks our fencing tokens."""
        if prepared.outcomes:
            async with self.pool.acquire() as connection, connection.transaction():
                await fences.check(connection, {p: self._tokens.get(p, 0) for p in prepared.partitions})
                await journal.write_outcomes(connection, prepared.outcomes, prepared.initial, prepared.final)
                poisoned("write", (outcome.command.envelope.idempotency_key for outcome in prepared.outcomes))
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
        card = await self.rates.current(connection, _priced_products(commands, states))
        return {org: s if s.rate_card is card else replace(s, rate_card=card) for org, s in states.items()}

    async def _after_commit(self, prepared: _Prepared) -> None:
        entries, outcomes = prepared.entries, prepared.outcomes
        now = datetime.now(UTC)
        by_partition: dict[int, list[bytes]] = {}
        for entry in entries:
            by_partition.setdefault(entry.partition, []).append(entry.entry_id)
        async with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                if entry.command is None:
                    _set_aside(pipe, entry, now)
            for partition, entry_ids in by_partition.items():
                stream = keys.stream(partition)
                pipe.xack(stream, keys.CONSUMER_GROUP, *entry_ids)
                pipe.evalsha(self._trim_sha, 1, stream, keys.CONSUMER_GROUP, entry_ids[-1])  # type: ignore[arg-type]
            for outcome in outcomes:
                reply_to = outcome.command.envelope.reply_to
                if reply_to:
                    reply = Reply(outcome.command.envelope.command_id, outcome.transaction_id, outcome.result)
                    pipe.publish(reply_to, encode_reply(reply))
            meters = feeds.messages(outcomes, prepared.initial, prepared.final, now)
            if meters:
                pipe.mset({keys.balance_snapshot(org_id): update for org_id, update in meters.items()})
            for org_id, update in meters.items():
                pipe.publish(keys.meter_channel(org_id), update)
            answers = await pipe.execute(raise_on_error=False)
        if any(isinstance(answer, NoScriptError) for answer in answers):
            # Redis restarted and forgot the trim script; trimming can wait for the next batch.
            await self.client.script_load(_TRIM)
        elif errors := [answer for answer in answers if isinstance(answer, Exception)]:
            raise errors[0]


class _Abandoned(Exception):
    """The batch in flight failed while the next one was being prepared: drop the next one too."""


class _BatchFailed(Exception):
    """A batch failed for something other than an outage or a fence (its `__cause__`): its
    entries are to be applied again, by halves."""


# What a pipelined batch's failure is not to be taken for: retried as it is.
_PASS_THROUGH: tuple[type[BaseException], ...] = (*_RETRIED, _BatchFailed, _Abandoned)


@dataclass(frozen=True, slots=True)
class _Prepared:
    entries: Sequence[Entry]
    partitions: set[int]
    initial: dict[UUID, OrgState]
    outcomes: list[Outcome]
    final: dict[UUID, OrgState]


async def _apply_in_slices(
    states: dict[UUID, OrgState], commands: list[Command], stored: dict[IdempotencyKey, Stored]
) -> tuple[list[Outcome], dict[UUID, OrgState]]:
    """`apply_batch`, a slice at a time, yielding to the event loop in between so the batch in
    flight can make progress with PostgreSQL meanwhile."""
    outcomes: list[Outcome] = []
    current = states
    seen = dict(stored)
    for start in range(0, len(commands), _APPLY_SLICE):
        if start:
            await asyncio.sleep(0)
        sliced, current = apply_batch(current, commands[start : start + _APPLY_SLICE], seen)
        for o in sliced:
            if o.applied is not None:
                seen[(o.command.organization_id, o.command.idempotency_key)] = _stored(o)
        outcomes += sliced
    return outcomes, {**states, **current}


def _stored(outcome: Outcome) -> Stored:
    return Stored(outcome.transaction_id, outcome.fingerprint, outcome.result)


def _priced_products(commands: Sequence[Command], states: Mapping[UUID, OrgState]) -> set[str]:
    products: set[str] = set()
    for command in commands:
        named = references(command)
        products |= named.products
        holds = states[command.organization_id].holds
        products.update(hold.product for hold_id in named.charged_holds
                        if (hold := holds.get(hold_id)) is not None and hold.product is not None)  # fmt: skip
    return products


def _refuse(entry: Entry, organization_ids: frozenset[UUID], failure: Failure) -> Entry:
    command = entry.command
    if command is None or command.organization_id not in organization_ids:
        return entry
    return replace(entry, command=None, refused=command, failure=failure)


def _organizations(entries: Sequence[Entry]) -> set[UUID]:
    return {entry.command.organization_id for entry in entries if entry.command is not None}


def _entry(partition: int, entry_id: bytes, fields: dict[bytes, bytes] | None, history: bool = False) -> Entry:
    raw = fields.get(b"c") if fields else None
    if raw is None:
        # Deleted from the stream while pending (history gives no fields), or sent without a command.
        failure = Failure("MissingCommand", "the entry holds no command")
        return Entry(partition, entry_id, None, failure=failure, history=history)
    try:
        return Entry(partition, entry_id, decode(raw), raw, history=history)
    except (ValueError, KeyError, TypeError) as error:
        return Entry(partition, entry_id, None, raw, failure=Failure(type(error).__name__, str(error)), history=history)


@dataclass(frozen=True, slots=True)
class _Pending:
    entry_id: bytes
    deliveries: int  # as XPENDING counts them: the first read, and each claim since


def _next_run(pending: list[_Pending]) -> list[_Pending]:
    """Which of a partition's pending entries (oldest first) to take next: an entry delivered
    `dead_letter_alone_deliveries_min` times or more alone, so that a crash it causes counts
    against it only; otherwise every entry up to the first such."""
    alone = constants.dead_letter_alone_deliveries_min
    if pending and pending[0].deliveries >= alone:
        return pending[:1]
    return list(itertools.takewhile(lambda p: p.deliveries < alone, pending))


def _history_entry(partition: int, pending: _Pending, found: list[tuple[bytes, dict[bytes, bytes]]]) -> Entry:
    entry = _entry(partition, pending.entry_id, found[0][1] if found else None, history=True)
    if pending.deliveries <= constants.dead_letter_deliveries_max or entry.command is None:
        return entry
    failure = Failure(
        "DeliveriesExhausted",
        f"delivered {pending.deliveries} times without being acknowledged"
        f" (at most {constants.dead_letter_deliveries_max}): it kept its workers from finishing, so it was not applied",
    )
    return replace(entry, command=None, refused=entry.command, failure=failure)


def _set_aside(pipe: Pipeline, entry: Entry, now: datetime) -> None:
    """Queue an entry's dead letter and its caller's answer on the pipeline that acknowledges it."""
    failure = entry.failure or Failure("Unknown", "set aside")
    command = entry.refused
    letter = DeadLetter(
        partition=entry.partition,
        entry_id=entry.entry_id.decode(),
        command=entry.raw,
        error=failure.error,
        message=failure.message,
        at=now,
        organization_id=str(command.organization_id) if command is not None else "",
        command_type=command.payload.type if command is not None else "",
    )
    dead_letters.record(pipe, letter)
    if command is not None and command.envelope.reply_to:
        command_id = command.envelope.command_id
        refusal = Result(Status.REJECTED, code=failure.code, message=failure.reply)
        pipe.publish(command.envelope.reply_to, encode_reply(Reply(command_id, command_id, refusal)))
