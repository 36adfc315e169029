"""A command's reply: what the ledger worker publishes on the caller's reply channel once the
command's batch has committed (or the command was set aside), and the caller's mailbox decodes.

Both sides use this one encoding; neither imports the other's module. It is JSON,
`{"command_id", "transaction_id", "result": {status, credits_charged, balance_after, code,
message, details}}`, encoded and decoded by msgspec straight from and into the dataclasses (the
same layout json and `ledger.core.codec` wrote before, so old and new processes read each other's
replies during a rolling deploy).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import msgspec

from ledger.core.entries import Result


@dataclass(frozen=True, slots=True)
class Reply:
    command_id: UUID
    transaction_id: UUID
    result: Result


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Reply)


def encode_reply(reply: Reply) -> bytes:
    return _ENCODER.encode(reply)


def decode_reply(raw: bytes) -> Reply:
    return _DECODER.decode(raw)
