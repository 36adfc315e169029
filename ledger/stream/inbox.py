"""The worker's side of its partitions' streams: the entries it reads, and how it reads them.

Each owned partition has a cursor: "0" while the worker's own pending entries (left by a crash, an
outage or a previous owner) are to be read again, ">" for new entries. Pending entries are read
with XPENDING and XRANGE, which count no delivery, so that only a new owner's claim counts one
against an entry: an entry delivered `dead_letter_alone_deliveries_min` times is applied alone, and
one delivered more than `dead_letter_deliveries_max` times is set aside unapplied (it kept killing
the workers that held it). An entry whose command cannot be decoded is set aside too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import redis.asyncio as redis
from redis.exceptions import ResponseError

from ledger import constants
from ledger.core.commands import Command
from ledger.core.errors import ErrorCode
from ledger.core.wire import decode
from ledger.stream import connection, keys

# On a Redis Cluster, how long an idle worker waits between rounds of non-blocking reads: from the
# minimum after entries, doubling to the maximum, which bounds what a pause adds to the next
# entry's latency (a single Redis blocks in one XREADGROUP over every partition instead, waking at
# once). After a quiet second the bound is the quiet one: a round costs one command per partition,
# which an idle worker otherwise sends a hundred times a second. Measured: the README's Redis
# Cluster section.
_IDLE_DELAY_MIN_MS = 1
_IDLE_DELAY_MAX_MS = 8
_QUIET_AFTER_S = 1.0
_QUIET_DELAY_MAX_MS = 32

_COMMAND_FAILED_MESSAGE = "the ledger could not apply this command; it was set aside for an operator to review"


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


class Inbox:
    """The cursors of a worker's owned partitions, and the reads of their consumer group."""

    def __init__(self, client: redis.Redis, worker_id: str, lease_ttl_ms: int) -> None:
        self.client = client
        self.worker_id = worker_id
        self.lease_ttl_ms = lease_ttl_ms
        # Per owned partition: "0" to re-read our own pending entries first, ">" for new ones.
        self.cursors: dict[int, str] = {}
        self._cluster = connection.is_cluster(client)
        self._idle_delay_ms = _IDLE_DELAY_MIN_MS
        self._entries_at = time.monotonic()  # on a cluster: when a read last found entries

    def reread_pending(self) -> None:
        for partition in self.cursors:
            self.cursors[partition] = "0"

    def let_go(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.cursors.pop(partition, None)

    async def reclaim_stranded(self, partitions: set[int]) -> None:
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
                self.cursors[partition] = "0"

    async def adopt(self, partition: int) -> None:
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
        self.cursors[partition] = "0"

    async def read_group(self, cursors: dict[int, str], block_ms: int | None, count: int | None = None) -> list[Entry]:
        """Up to `count` entries of each partition; with `block_ms`, wait up to that long for one."""
        count = count or max(constants.read_share_min, constants.batch_size_max // len(cursors))
        if self._cluster:
            return await self._read_each(cursors, block_ms, count)
        answer = await self.client.xreadgroup(
            keys.CONSUMER_GROUP,
            self.worker_id,
            # Names and cursors as bytes: redis-py's encoder passes bytes through as they are.
            {_stream_name(p): _CURSORS[cursor] for p, cursor in cursors.items()},
            count=count,
            block=block_ms,
        )
        return decode_streams(answer)

    async def _read_each(self, cursors: dict[int, str], block_ms: int | None, count: int) -> list[Entry]:
        """On a Redis Cluster, where one XREADGROUP may not name streams of several slots: one
        non-blocking XREADGROUP per partition, pipelined (one round trip per node); while all come
        back empty, read again after an idle delay that doubles from `_IDLE_DELAY_MIN_MS` to
        `_IDLE_DELAY_MAX_MS` (`_QUIET_DELAY_MAX_MS` after a quiet second), until `block_ms` has
        passed. (Not BLOCK on one of them meanwhile: Redis 6.2 ends a blocking read's timeout on
        its 100 ms cron tick, not on time.)"""
        deadline = time.monotonic() + (block_ms or 0) / 1000
        while True:
            async with self.client.pipeline(transaction=False) as pipe:
                for partition, cursor in cursors.items():
                    self._queue_read(pipe, partition, cursor, count)
                answers = await pipe.execute()
            entries = [entry for answer in answers for entry in decode_streams(answer)]
            now = time.monotonic()
            remaining_ms = (deadline - now) * 1000
            if entries or remaining_ms <= 0:
                if entries:
                    self._idle_delay_ms, self._entries_at = _IDLE_DELAY_MIN_MS, now
                return entries
            await asyncio.sleep(min(self._idle_delay_ms, remaining_ms) / 1000)
            quiet = now - self._entries_at >= _QUIET_AFTER_S
            self._idle_delay_ms = min(self._idle_delay_ms * 2, _QUIET_DELAY_MAX_MS if quiet else _IDLE_DELAY_MAX_MS)

    def _queue_read(self, pipe: Any, partition: int, cursor: str, count: int) -> None:
        """Queue one partition's non-blocking XREADGROUP for the node that holds it, as the client
        last learned (redis-py would otherwise ask a node for the keys of every XREADGROUP, COMMAND
        GETKEYS, a round trip each); MOVED and ASK are still followed."""
        stream = _stream_name(partition)
        pipe.execute_command(
            "XREADGROUP", "GROUP", keys.CONSUMER_GROUP, self.worker_id, "COUNT", count,
            "STREAMS", stream, _CURSORS[cursor], target_nodes=connection.node_of(self.client, stream),
        )  # fmt: skip

    async def read_history(self, partitions: list[int]) -> list[Entry]:
        """Our pending entries, oldest first, with how often each was delivered. Read with XPENDING
        and XRANGE, which count no delivery: only a new owner's claim does (`adopt`), so retries
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
            for pending in next_run([Pending(row["message_id"], row["times_delivered"]) for row in rows])
        ]
        if not taken:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for partition, pending in taken:
                pipe.xrange(keys.stream(partition), pending.entry_id, pending.entry_id)
            found = await pipe.execute()
        return [history_entry(p, pending, rows) for (p, pending), rows in zip(taken, found, strict=True)]


@functools.cache
def _stream_name(partition: int) -> bytes:
    return keys.stream(partition).encode()


_CURSORS = {cursor: cursor.encode() for cursor in ("0", ">")}


@functools.cache
def _partition_of_stream(name: bytes) -> int:
    return int(name.decode().split("{")[1].rstrip("}"))


def decode_streams(answer: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None) -> list[Entry]:
    """An XREADGROUP answer's entries, each with its partition (from its stream's hash tag)."""
    entries: list[Entry] = []
    for stream_name, stream_entries in answer or []:
        partition = _partition_of_stream(stream_name)
        entries.extend(decode_entry(partition, entry_id, fields) for entry_id, fields in stream_entries)
    return entries


def refuse(entry: Entry, organization_ids: frozenset[UUID], failure: Failure) -> Entry:
    command = entry.command
    if command is None or command.organization_id not in organization_ids:
        return entry
    return replace(entry, command=None, refused=command, failure=failure)


def organizations(entries: Sequence[Entry]) -> set[UUID]:
    return {entry.command.organization_id for entry in entries if entry.command is not None}


def decode_entry(partition: int, entry_id: bytes, fields: dict[bytes, bytes] | None, history: bool = False) -> Entry:
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
class Pending:
    entry_id: bytes
    deliveries: int  # as XPENDING counts them: the first read, and each claim since


def next_run(pending: list[Pending]) -> list[Pending]:
    """Which of a partition's pending entries (oldest first) to take next: an entry delivered
    `dead_letter_alone_deliveries_min` times or more alone, so that a crash it causes counts
    against it only; otherwise every entry up to the first such."""
    alone = constants.dead_letter_alone_deliveries_min
    if pending and pending[0].deliveries >= alone:
        return pending[:1]
    return list(itertools.takewhile(lambda p: p.deliveries < alone, pending))


def history_entry(partition: int, pending: Pending, found: list[tuple[bytes, dict[bytes, bytes]]]) -> Entry:
    entry = decode_entry(partition, pending.entry_id, found[0][1] if found else None, history=True)
    if pending.deliveries <= constants.dead_letter_deliveries_max or entry.command is None:
        return entry
    failure = Failure(
        "DeliveriesExhausted",
        f"delivered {pending.deliveries} times without being acknowledged"
        f" (at most {constants.dead_letter_deliveries_max}): it kept its workers from finishing, so it was not applied",
    )
    return replace(entry, command=None, refused=entry.command, failure=failure)
