"""What follows a batch's commit, in one Redis pipeline: acknowledge its entries, trim its streams
below the oldest pending entry, dead-letter the entries set aside, answer the waiting callers, and
refresh and publish the organizations' meters.

Only ever after the commit: an entry acknowledged is never read again, so acknowledging first
could lose a command. A failure here says nothing about the entries (they are journaled): they
stay pending and are read again, and being journaled, return their stored results.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from ledger.core.entries import Result, Status
from ledger.stream import dead_letters, feeds, keys
from ledger.stream.batches import Prepared
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
# EVALSHA straight away: redis-py's Script in a pipeline first asks SCRIPT EXISTS.
_TRIM_SHA = hashlib.sha1(_TRIM.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


async def acknowledge(client: redis.Redis, prepared: Prepared) -> None:
    """Acknowledge a committed batch's entries (dead-lettering those set aside), trim its streams,
    answer its callers, and refresh and publish its organizations' meters: one pipeline."""
    entries, outcomes = prepared.entries, prepared.outcomes
    now = datetime.now(UTC)
    by_partition: dict[int, list[bytes]] = {}
    for entry in entries:
        by_partition.setdefault(entry.partition, []).append(entry.entry_id)
    async with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            if entry.command is None:
                set_aside(pipe, entry, now)
        for partition, entry_ids in by_partition.items():
            stream = keys.stream(partition)
            pipe.xack(stream, keys.CONSUMER_GROUP, *entry_ids)
            pipe.evalsha(_TRIM_SHA, 1, stream, keys.CONSUMER_GROUP, entry_ids[-1])  # type: ignore[arg-type]
        for outcome in outcomes:
            reply_to = outcome.command.envelope.reply_to
            if reply_to:
                reply = Reply(outcome.command.envelope.command_id, outcome.transaction_id, outcome.result)
                pipe.publish(reply_to, encode_reply(reply))
        meters = feeds.messages(outcomes, prepared.initial, prepared.final, now)
        # One SET per organization, not an MSET: on a Redis Cluster the snapshots' keys sit in
        # different slots, and a pipeline may hold only single-key commands.
        for org_id, update in meters.items():
            pipe.set(keys.balance_snapshot(org_id), update)
            pipe.publish(keys.meter_channel(org_id), update)
        answers = await pipe.execute(raise_on_error=False)
    if any(isinstance(answer, NoScriptError) for answer in answers):
        # Redis restarted and forgot the trim script; trimming can wait for the next batch.
        await client.script_load(_TRIM)
    elif errors := [answer for answer in answers if isinstance(answer, Exception)]:
        raise errors[0]


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
