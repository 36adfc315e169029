"""Commands: the only way an organization's credits change.

A command is what a caller asks for; its `payload` (everything the caller chose) is fingerprinted so
that a retry under the same idempotency key can be told apart from a different request reusing it.
The envelope (command id, time received, where to reply) is not part of the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeAlias
from uuid import UUID

from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits

IDEMPOTENCY_KEY_LENGTH_MAX = 255
PRODUCT_KEY_LENGTH_MAX = 100


class LotKind(StrEnum):
    BASE = "base"
    BONUS = "bonus"
    PURCHASED = "purchased"
    ROLLOVER = "rollover"
    SEAT = "seat"
    PROMOTIONAL = "promotional"
    ADJUSTMENT = "adjustment"


# Lower goes first. Expiring bonus before base before purchased (seed 000), monthly before the
# rollover bank (seed 001), included before top-ups (seed 003). Ties break on expiry, then age.
DEFAULT_PRIORITY: Mapping[LotKind, int] = {
    LotKind.PROMOTIONAL: 100,
    LotKind.BONUS: 100,
    LotKind.BASE: 200,
    LotKind.SEAT: 200,
    LotKind.ROLLOVER: 300,
    LotKind.PURCHASED: 400,
    LotKind.ADJUSTMENT: 500,
}


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the transport adds to a command: never part of its fingerprint."""

    command_id: UUID
    organization_id: UUID
    idempotency_key: str
    received_at: datetime
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class GrantCredits:
    amount: MicroCredits
    kind: LotKind = LotKind.BASE
    priority: int | None = None
    effective_at: datetime | None = None
    expires_at: datetime | None = None
    type: str = field(default="grant_credits", init=False)


@dataclass(frozen=True, slots=True)
class RecordUsage:
    product: str
    quantity: Decimal
    occurred_at: datetime | None = None
    type: str = field(default="record_usage", init=False)


@dataclass(frozen=True, slots=True)
class ExpireLots:
    """Write off what is left of every lot that expired at or before `as_of`, as breakage."""

    as_of: datetime
    type: str = field(default="expire_lots", init=False)


Payload: TypeAlias = GrantCredits | RecordUsage | ExpireLots


@dataclass(frozen=True, slots=True)
class Command:
    envelope: Envelope
    payload: Payload

    @property
    def organization_id(self) -> UUID:
        return self.envelope.organization_id

    @property
    def idempotency_key(self) -> str:
        return self.envelope.idempotency_key


def validate(command: Command) -> None:
    """Reject what no state could ever accept; raised before the command is sent."""
    key = command.envelope.idempotency_key
    if not key or len(key) > IDEMPOTENCY_KEY_LENGTH_MAX:
        raise InvalidCommand(f"idempotency key must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} characters")
    payload = command.payload
    if isinstance(payload, GrantCredits):
        if payload.amount <= 0:
            raise InvalidCommand("amount must be positive")
        start = payload.effective_at
        if payload.expires_at is not None and start is not None and payload.expires_at <= start:
            raise InvalidCommand("expiresAt must be after effectiveAt")
    elif isinstance(payload, ExpireLots):
        if payload.as_of > command.envelope.received_at:
            raise InvalidCommand("lots cannot be expired ahead of time")
    else:
        if not payload.product or len(payload.product) > PRODUCT_KEY_LENGTH_MAX:
            raise InvalidCommand(f"product must be 1 to {PRODUCT_KEY_LENGTH_MAX} characters")
        if payload.quantity <= 0:
            raise InvalidCommand("quantity must be positive")


# --- wire format -------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def payload_to_dict(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, GrantCredits):
        return {
            "type": payload.type,
            "amount": payload.amount,
            "kind": payload.kind.value,
            "priority": payload.priority,
            "effective_at": _time(payload.effective_at),
            "expires_at": _time(payload.expires_at),
        }
    if isinstance(payload, ExpireLots):
        return {"type": payload.type, "as_of": payload.as_of.isoformat()}
    return {
        "type": payload.type,
        "product": payload.product,
        "quantity": str(payload.quantity),
        "occurred_at": _time(payload.occurred_at),
    }


def payload_from_dict(data: Mapping[str, Any]) -> Payload:
    kind = data["type"]
    if kind == "grant_credits":
        return GrantCredits(
            amount=MicroCredits(int(data["amount"])),
            kind=LotKind(data["kind"]),
            priority=data["priority"],
            effective_at=_parse_time(data["effective_at"]),
            expires_at=_parse_time(data["expires_at"]),
        )
    if kind == "record_usage":
        return RecordUsage(
            product=data["product"],
            quantity=Decimal(data["quantity"]),
            occurred_at=_parse_time(data["occurred_at"]),
        )
    if kind == "expire_lots":
        return ExpireLots(as_of=datetime.fromisoformat(data["as_of"]))
    raise InvalidCommand(f"unknown command type {kind!r}")


def fingerprint(payload: Payload) -> str:
    """A stable digest of what the caller asked for, to detect reuse of a key for another request."""
    canonical = json.dumps(payload_to_dict(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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
