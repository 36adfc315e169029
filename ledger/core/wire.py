"""The wire format of a command: how it travels through Redis (`encode`, `decode`) and how its
payload rests in the journal (`canonical_json`) and is fingerprinted (`fingerprint`).

On the wire a command is one JSON object, encoded and decoded by msgspec straight from and into
the core's frozen dataclasses (no per-field Python work):

    {"id": <command id>, "org": <organization id>, "key": <idempotency key>, "at": <received at>,
     "reply": <reply channel or null>, "type": <payload type>, "payload": {..., "type": <payload type>}}

The envelope's `type` lets the decoder pick the payload's class without reading the payload
twice. Entries written before it existed (json and `ledger.core.codec`, no envelope `type`,
times as `+00:00`) decode too, by the payload's own `type`: during a rolling deploy old API
processes keep appending the old layout, and old workers read the new one (its keys are a
superset; `datetime.fromisoformat` reads `Z`).

`canonical_json` is not the wire text: it is the sorted-key text the journal stores and the
fingerprint hashes, and stored fingerprints must keep matching after a deploy, or retries become
conflicts. It stays the `ledger.core.codec` form, byte for byte; usage, the hot payload, has a
writer of its own that produces the same bytes (tests/test_wire.py holds it to the generic one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any
from uuid import UUID

import msgspec

from ledger.core import codec
from ledger.core.commands import PAYLOAD_TYPES, Command, Envelope, Payload, RecordUsage
from ledger.core.errors import InvalidCommand


class _Envelope(msgspec.Struct, frozen=True):
    id: UUID
    org: UUID
    key: str
    at: datetime
    reply: str | None
    payload: msgspec.Raw
    type: str | None = None  # absent from entries written before it was added


class _Tag(msgspec.Struct):
    type: str = ""


class _Outgoing(msgspec.Struct, frozen=True):
    id: UUID
    org: UUID
    key: str
    at: datetime
    reply: str | None
    type: str
    payload: Any


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_TAG = msgspec.json.Decoder(_Tag)
_PAYLOADS: Mapping[str, msgspec.json.Decoder[Any]] = {
    tag: msgspec.json.Decoder(cls) for tag, cls in PAYLOAD_TYPES.items()
}
_ENCODER = msgspec.json.Encoder()


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
    if type(payload) is RecordUsage:
        return _canonical_usage(payload)
    return json.dumps(payload_to_dict(payload), sort_keys=True, separators=(",", ":"))


def fingerprint(payload: Payload, canonical: str | None = None) -> str:
    """A stable digest of what the caller asked for, to detect reuse of a key for another request."""
    text = canonical_json(payload) if canonical is None else canonical
    return hashlib.sha256(text.encode()).hexdigest()


def encode(command: Command) -> bytes:
    envelope, payload = command.envelope, command.payload
    outgoing = _Outgoing(
        envelope.command_id,
        envelope.organization_id,
        envelope.idempotency_key,
        envelope.received_at,
        envelope.reply_to,
        payload.type,
        payload,
    )
    return _ENCODER.encode(outgoing)


def decode(raw: bytes | str) -> Command:
    """A command as `encode` (or the json layout before it) wrote it. Malformed input raises a
    ValueError (msgspec's errors are ValueErrors); an unknown payload type InvalidCommand."""
    wire = _ENVELOPE.decode(raw)
    tag = wire.type if wire.type is not None else _TAG.decode(wire.payload).type
    decoder = _PAYLOADS.get(tag)
    if decoder is None:
        raise InvalidCommand(f"unknown command type {tag!r}")
    payload: Payload = decoder.decode(wire.payload)
    if payload.type != tag:  # `type` is a field too: the payload may not claim another one
        raise InvalidCommand(f"command type {payload.type!r} sent as {tag!r}")
    envelope = Envelope(wire.id, wire.org, wire.key, wire.at, wire.reply)
    return Command(envelope, payload)


def _canonical_usage(usage: RecordUsage) -> str:
    """`canonical_json` of a usage event, as json.dumps(codec.to_json(...), sort_keys=True) writes it
    (the same string escaping, ASCII only), without building the dictionary first."""
    dimensions = ",".join(
        f"{_json_string(str(name))}:{_json_string(str(value))}" for name, value in sorted(usage.dimensions.items())
    )
    occurred_at = "null" if usage.occurred_at is None else f'"{usage.occurred_at.isoformat()}"'
    return (
        f'{{"dimensions":{{{dimensions}}},"occurred_at":{occurred_at},"product":{_json_string(usage.product)},'
        f'"quantity":"{usage.quantity}","quote_id":{_optional(usage.quote_id)},"team_id":{_optional(usage.team_id)},'
        f'"type":"record_usage","user_id":{"null" if usage.user_id is None else _json_string(usage.user_id)}}}'
    )


def _optional(value: UUID | None) -> str:
    return "null" if value is None else f'"{value}"'
