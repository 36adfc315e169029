"""What follows a batch's commit, in one Redis pipeline: acknowledge its entries, trim its streams
below the oldest pending entry, dead-letter the entries set aside, refresh the organizations'
balance snapshots (never with an older one: `ledger.stream.feeds`), answer the waiting callers, and
publish the organizations' meters.

Only ever after the commit: an entry acknowledged is never read again, so acknowledging first
could lose a command. A failure here says nothing about the entries (they are journaled): they
stay pending and are read again, and being journaled, return their stored results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from ledger.core.batch import Outcome
from ledger.core.entries import Result, Status
from ledger.stream import dead_letters, feeds, keys
from ledger.stream.batches import Prepared
from ledger.stream.connection import is_cluster
from ledger.stream.dead_letters import DeadLetter
from ledger.stream.inbox import Entry, Failure
from ledger.stream.replies import Reply, encode_reply

# Trim what every consumer has acknowledged: keep entries from the oldest still pending (or the
# newest delivered when none is pending) onwards, so nothing unacknowledged is ever dropped.
_TRIM = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local floor = ARGV[2]
if pending[1] > 0 then floor = pending[2] end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
"""
# Write each balance snapshot unless the one stored is as new or newer: versions `[epoch,sequence]`
# (`ledger.stream.feeds`) compared lexicographically; one without a version (an older release's)
# is older. ARGV holds epoch, sequence and value per key. On a single Redis one call writes a
# batch's snapshots (a command per organization cost the worker and Redis more than the check);
# on a Redis Cluster, where a script's keys must share a slot, one call per key.
_SNAPSHOT = """
local written = 0
for i, key in ipairs(KEYS) do
  local new_epoch, new_sequence = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local newer = true
  local stored = redis.call('GET', key)
  if stored then
    local epoch, sequence = string.match(stored, '^{"version":%[(%d+),(%d+)%]')
    if epoch then
      epoch, sequence = tonumber(epoch), tonumber(sequence)
      newer = epoch < new_epoch or (epoch == new_epoch and sequence < new_sequence)
    end
  end
  if newer then
    redis.call('SET', key, ARGV[3 * i])
    written = written + 1
  end
end
return written
"""
# EVALSHA straight away: redis-py's Script in a pipeline first asks SCRIPT EXISTS.
_TRIM_SHA = hashlib.sha1(_TRIM.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
_SNAPSHOT_SHA = hashlib.sha1(_SNAPSHOT.encode()).hexdigest()  # noqa: S324


async def acknowledge(client: redis.Redis, prepared: Prepared) -> None:
    """Acknowledge a committed batch's entries (dead-lettering those set aside), trim its streams,
    write its organizations' balance snapshots (each only if newer than the stored one), answer
    its callers, and publish its meters: one pipeline (two on a Redis Cluster)."""
    entries, outcomes = prepared.entries, prepared.outcomes
    now = datetime.now(UTC)
    by_partition: dict[int, list[bytes]] = {}
    versions: dict[UUID, feeds.Version] = {}
    for entry in entries:
        by_partition.setdefault(entry.partition, []).append(entry.entry_id)
        if entry.command is not None:
            versions[entry.command.organization_id] = (prepared.tokens.get(entry.partition, 0), prepared.sequence)
    meters = feeds.messages(outcomes, prepared.initial, prepared.final, now, versions)
    split = is_cluster(client) and bool(meters)
    async with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            if entry.command is None:
                set_aside(pipe, entry, now)
        for partition, entry_ids in by_partition.items():
            stream = keys.stream(partition)
            pipe.xack(stream, keys.CONSUMER_GROUP, *entry_ids)
            pipe.evalsha(_TRIM_SHA, 1, stream, keys.CONSUMER_GROUP, entry_ids[-1])  # type: ignore[arg-type]
        # The snapshots before the answers: a balance read after an APPLIED answer sees its commit.
        # One script per organization, not one for all: on a Redis Cluster the snapshots' keys sit
        # in different slots, and a pipeline may hold only single-key commands.
        first_snapshot = len(pipe)
        groups = _write_snapshots(pipe, meters, versions, single_call=not is_cluster(client))
        if not split:
            _publish(pipe, outcomes, meters)
        answers = await pipe.execute(raise_on_error=False)
    if split:
        # On a Redis Cluster a pipeline's commands go to each master at once, so an answer could
        # overtake its snapshot on another master: the answers go once the snapshots are written.
        async with client.pipeline(transaction=False) as pipe:
            _publish(pipe, outcomes, meters)
            answers += await pipe.execute(raise_on_error=False)
    snapshot_answers = answers[first_snapshot : first_snapshot + len(groups)]
    unwritten = {
        org_id: meters[org_id]
        for group, answer in zip(groups, snapshot_answers, strict=True)
        if isinstance(answer, NoScriptError)
        for org_id in group
    }
    if any(isinstance(answer, NoScriptError) for answer in answers):
        # Redis restarted or failed over and forgot the scripts; trimming can wait for the next
        # batch, but a snapshot not written would leave an older one trusted: write it now.
        await client.script_load(_TRIM)
        await client.script_load(_SNAPSHOT)
        if unwritten:
            async with client.pipeline(transaction=False) as pipe:
                _write_snapshots(pipe, unwritten, versions, single_call=not is_cluster(client))
                await pipe.execute()
    if errors := [
        answer for answer in answers if isinstance(answer, Exception) and not isinstance(answer, NoScriptError)
    ]:
        raise errors[0]


def _publish(pipe: Pipeline, outcomes: Sequence[Outcome], meters: Mapping[UUID, bytes]) -> None:
    """The waiting callers' answers, then the organizations' meter updates."""
    for outcome in outcomes:
        reply_to = outcome.command.envelope.reply_to
        if reply_to:
            reply = Reply(outcome.command.envelope.command_id, outcome.transaction_id, outcome.result)
            pipe.publish(reply_to, encode_reply(reply))
    for org_id, update in meters.items():
        pipe.publish(keys.meter_channel(org_id), update)


def _write_snapshots(
    pipe: Pipeline, meters: Mapping[UUID, bytes], versions: Mapping[UUID, feeds.Version], *, single_call: bool
) -> list[list[UUID]]:
    """Queue the snapshots' compare-and-set: one call for all, or one per organization; returns
    the organizations of each call queued, in order."""
    groups = [list(meters)] if single_call and meters else [[org_id] for org_id in meters]
    for group in groups:
        arguments: list[object] = []
        for org_id in group:
            arguments += [*versions[org_id], meters[org_id]]
        snapshot_keys = [keys.balance_snapshot(org_id) for org_id in group]
        pipe.evalsha(_SNAPSHOT_SHA, len(group), *snapshot_keys, *arguments)  # type: ignore[arg-type]
    return groups


def set_aside(pipe: Pipeline, entry: Entry, now: datetime) -> None:
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
