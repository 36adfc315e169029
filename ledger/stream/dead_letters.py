"""The dead-letter stream: entries the ledger set aside rather than let them stall a partition, and
the operator's tools for them.

An entry is dead-lettered, unapplied, when
- applying or journaling it fails on its own (the ledger worker splits a failing batch until it
  finds the one entry that fails; an outage is retried instead),
- it was delivered more than `dead_letter_deliveries_max` times without being acknowledged (it
  kept killing the workers that held it, so no exception was ever caught),
- it cannot be read, or it names an organization that does not exist.

Each dead letter keeps the command exactly as it was sent (field `c`), so `retry` can append it to
its partition again; the command's idempotency key makes a retry harmless if it succeeded since.
Each raises an alert: an ERROR log line, a `dead_letters` count in the `ledger:health` hash, and a
JSON message on the `ledger:admin-alerts` channel.

On Redis Cluster the dead-letter stream lives on its own slot, apart from the partitions. Nothing
needs it in one script with a partition's keys: the worker adds a dead letter in the same
non-transactional pipeline that acknowledges the entry (a crash between the two leaves at worst a
duplicate dead letter), and `retry` appends to the partition before deleting the dead letter (a
crash between the two replays the command twice, which its idempotency key absorbs).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from ledger import constants
from ledger.stream import keys

log = logging.getLogger(__name__)

HEALTH_FIELD = "dead_letters"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    entry_id: str  # the entry's id in its partition stream
    command: bytes  # the `c` field as sent (empty if the entry had none)
    error: str  # the exception's class, or what happened
    message: str
    at: datetime
    organization_id: str = ""  # empty if the command could not be read
    command_type: str = ""
    id: str = ""  # its own id in the dead-letter stream, once stored


def to_fields(letter: DeadLetter) -> dict[str, bytes | str]:
    return {
        "partition": str(letter.partition),
        "entry": letter.entry_id,
        "c": letter.command,
        "error": letter.error,
        "message": letter.message[: constants.dead_letter_message_length_max],
        "at": letter.at.isoformat(),
        "organization": letter.organization_id,
        "type": letter.command_type,
    }


def from_fields(letter_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    def text(name: bytes) -> str:
        return fields.get(name, b"").decode(errors="replace")

    return DeadLetter(
        partition=int(text(b"partition")),
        entry_id=text(b"entry"),
        command=fields.get(b"c", b""),
        error=text(b"error"),
        message=text(b"message"),
        at=datetime.fromisoformat(text(b"at")) if b"at" in fields else datetime.fromtimestamp(0, UTC),
        organization_id=text(b"organization"),
        command_type=text(b"type"),
        id=letter_id.decode(),
    )


def record(pipe: Pipeline, letter: DeadLetter) -> None:
    """Queue on `pipe` what a dead letter does (store it, count it, alert the admins), and log it
    now. The caller executes the pipeline together with the entry's acknowledgement."""
    log.error(
        "dead letter: partition %d entry %s organization %s command %s: %s: %s",
        letter.partition, letter.entry_id, letter.organization_id or "?", letter.command_type or "?",
        letter.error, letter.message,
    )  # fmt: skip
    fields = to_fields(letter)
    pipe.xadd(
        keys.DEAD_LETTER_STREAM, fields,  # type: ignore[arg-type]  # str and bytes values are fine
        maxlen=constants.dead_letter_stream_length_max, approximate=True,
    )  # fmt: skip
    pipe.hincrby(keys.HEALTH_KEY, HEALTH_FIELD, 1)
    alert = {"kind": "dead_letter", **{k: v for k, v in fields.items() if k != "c"}}
    pipe.publish(keys.ADMIN_ALERTS_CHANNEL, json.dumps(alert))


async def list_dead_letters(
    client: redis.Redis, count: int = constants.dead_letter_list_default_count
) -> list[DeadLetter]:
    """The oldest `count` dead letters, oldest first."""
    rows = await client.xrange(keys.DEAD_LETTER_STREAM, count=count)
    return [from_fields(letter_id, fields) for letter_id, fields in rows]


async def get_dead_letter(client: redis.Redis, letter_id: str) -> DeadLetter | None:
    rows = await client.xrange(keys.DEAD_LETTER_STREAM, min=letter_id, max=letter_id)
    return from_fields(*rows[0]) if rows else None


class NothingToReplay(ValueError):
    """The dead letter's entry had no command to send again (drop it instead)."""


async def retry(client: redis.Redis, letter_id: str) -> str | None:
    """Append the dead letter's command, as sent, to its partition again and delete the dead
    letter; return the new entry's id, or None if there is no such dead letter."""
    letter = await get_dead_letter(client, letter_id)
    if letter is None:
        return None
    if not letter.command:
        raise NothingToReplay(f"dead letter {letter_id} holds no command (it had no `c` field)")
    # Append first: a crash before the delete leaves the dead letter, and a second retry is harmless.
    entry_id = await client.xadd(keys.stream(letter.partition), {"c": letter.command})
    await client.xdel(keys.DEAD_LETTER_STREAM, letter_id)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def drop(client: redis.Redis, letter_id: str) -> bool:
    """Delete a dead letter for good; False if there was none."""
    deleted: int = await client.xdel(keys.DEAD_LETTER_STREAM, letter_id)
    return deleted > 0
