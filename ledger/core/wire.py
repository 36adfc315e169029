"""The wire format of a command: how it travels through Redis (`encode`, `decode`) and how its
payload rests in the journal (`canonical_json`) and is fingerprinted (`fingerprint`).

`ledger.core.codec` is the generic part (any of the core's frozen dataclasses to JSON-ready values
and back, driven by type hints; lots and settings use it too); this module is what only a command
has: its envelope's layout, the payload's `type` tag, and the one canonical text the fingerprint
hashes. Stored fingerprints must keep matching after a deploy, or retries become conflicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.core import codec
from ledger.core.commands import PAYLOAD_TYPES, Command, Envelope, Payload
from ledger.core.errors import InvalidCommand


def payload_to_dict(payload: Payload) -> dict[str, Any]:
    data: dict[str, Any] = codec.to_json(payload)
    return data


def payload_from_dict(data: Mapping[str, Any]) -> Payload:
    cls = PAYLOAD_TYPES.get(data.get("type", ""))
    if cls is None:
        raise InvalidCommand(f"unknown command type {data.get('type')!r}")
    return codec.from_json(cls, data)


def canonical_json(payload: Payload) -> str:
    """The payload as JSON text with sorted keys: what the journal stores and the fingerprint hashes."""
    return json.dumps(payload_to_dict(payload), sort_keys=True, separators=(",", ":"))


def fingerprint(payload: Payload, canonical: str | None = None) -> str:
    """A stable digest of what the caller asked for, to detect reuse of a key for another request."""
    text = canonical_json(payload) if canonical is None else canonical
    return hashlib.sha256(text.encode()).hexdigest()


def encode(command: Command) -> bytes:
    envelope = command.envelope
    return json.dumps(
        {
            "id": str(envelope.command_id),
            "org": str(envelope.organization_id),
            "key": envelope.idempotency_key,
            "at": envelope.received_at.isoformat(),
            "reply": envelope.reply_to,
            "payload": payload_to_dict(command.payload),
        },
        separators=(",", ":"),
    ).encode()


def decode(raw: bytes | str) -> Command:
    data = json.loads(raw)
    envelope = Envelope(
        command_id=UUID(data["id"]),
        organization_id=UUID(data["org"]),
        idempotency_key=data["key"],
        received_at=datetime.fromisoformat(data["at"]),
        reply_to=data["reply"],
    )
    return Command(envelope=envelope, payload=payload_from_dict(data["payload"]))
