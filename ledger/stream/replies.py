"""A command's reply: what the ledger worker publishes on the caller's reply channel once the
command's batch has committed (or the command was set aside), and the caller's mailbox decodes.

Both sides use this one encoding; neither imports the other's module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from ledger.core.entries import Result, result_from_dict, result_to_dict


@dataclass(frozen=True, slots=True)
class Reply:
    command_id: UUID
    transaction_id: UUID
    result: Result


def encode_reply(reply: Reply) -> bytes:
    return json.dumps(
        {
            "command_id": str(reply.command_id),
            "transaction_id": str(reply.transaction_id),
            "result": result_to_dict(reply.result),
        }
    ).encode()


def decode_reply(raw: bytes) -> Reply:
    data = json.loads(raw)
    return Reply(UUID(data["command_id"]), UUID(data["transaction_id"]), result_from_dict(data["result"]))
