"""The bulk route's wire: msgspec structs for a batch of usage events (a JSON object or NDJSON
lines) and for its per-event answer.

Decoding is compiled: field names, types, unknown fields and the quantity grammar (the one
`graphql_api.scalars.parse_quantity`, called by msgspec as it meets each quantity) are checked
while the bytes are read, and a refusal says where (`$.events[3].quantity`). What needs the ledger
(ids, products, bounds) is checked afterwards by `graphql_api.usage_events`, as for GraphQL.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from graphql_api.errors import ApiError, RefusedEvent, invalid
from graphql_api.outcomes import Ack
from graphql_api.scalars import parse_quantity, parse_time
from ledger import constants
from ledger.core.entries import Status
from ledger.core.errors import ErrorCode, InvalidCommand
from ledger.core.money import format_credits
from ledger.stream.replies import Reply

JSON = "application/json"
NDJSON = "application/x-ndjson"
_NDJSON_TYPES = frozenset({NDJSON, "application/ndjson", "application/jsonl"})
# The path msgspec puts last in its message ("... - at `$.events[3].quantity`"): anchored at the end,
# so text the client sent (an unknown field's name) cannot pose as it.
_EVENT_INDEX = re.compile(r" - at `\$(?:\.events)?\[(\d+)\][^`]*`$")
_BOM = b"\xef\xbb\xbf"


class WireQuantity(Decimal):
    """A quantity field: msgspec hands its raw JSON value to `_decode_hook`, which parses it."""


class WireTime(datetime):
    """A time field: its text is read by GraphQL's own DateTime parser (`scalars.parse_time`), so
    both ways in accept the same forms and read them alike (fractions past six digits too)."""


class Dimension(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    value: str


class UsageEvent(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """GraphQL's UsageEventInput, field for field (`graphql_api.usage_events.UsageEventFields`)."""

    organization_id: str
    product: str
    quantity: WireQuantity
    idempotency_key: str
    occurred_at: WireTime | None = None
    team_id: str | None = None
    user_id: str | None = None
    quote_id: str | None = None
    dimensions: list[Dimension] = msgspec.field(default_factory=list)


class UsageBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[UsageEvent]
    ack: Literal["QUEUED", "APPLIED"] = "QUEUED"


class Rejection(msgspec.Struct):
    code: str
    message: str


class EventResult(msgspec.Struct, rename="camel"):
    command_id: str
    status: str
    transaction_id: str | None = None
    credits_charged: str | None = None
    balance_after: str | None = None
    rejection: Rejection | None = None
    details: dict[str, str] = msgspec.field(default_factory=dict)


class Results(msgspec.Struct):
    results: list[EventResult]


def _decode_hook(kind: type, value: Any) -> Any:
    try:
        if kind is WireQuantity:
            return WireQuantity(parse_quantity(value))
        if kind is WireTime:
            parsed = parse_time(value)
            return WireTime.combine(parsed.date(), parsed.timetz())
    except InvalidCommand as error:
        raise ValueError(error.message) from None
    raise NotImplementedError(kind)


_BATCH = msgspec.json.Decoder(UsageBatch, dec_hook=_decode_hook)
_EVENT = msgspec.json.Decoder(UsageEvent, dec_hook=_decode_hook)
_RESULTS = msgspec.json.Encoder()


def media_type(content_type: str | None) -> str | None:
    """JSON or NDJSON as the Content-Type names it (parameters such as charset aside), else None."""
    if content_type is None:
        return None
    kind = content_type.partition(";")[0].strip().lower()
    if kind == JSON:
        return JSON
    return NDJSON if kind in _NDJSON_TYPES else None


def decode_batch(kind: str, body: bytes, ack_parameter: str | None) -> tuple[list[UsageEvent], Ack]:
    """The events and ack of a request body of `kind` (`media_type`); `ack_parameter` is the query
    string's, for NDJSON only. Raises ApiError: BAD_REQUEST for what is not JSON, INVALID_INPUT
    (naming the event) for a field of the wrong type or shape, REQUEST_TOO_LARGE past
    `usage_batch_max`. A leading UTF-8 byte order mark is skipped."""
    body = body.removeprefix(_BOM)
    try:
        if kind == JSON:
            if ack_parameter is not None:
                raise invalid('a JSON body says its ack in the body ({"events": [...], "ack": "APPLIED"})')
            batch = _BATCH.decode(body)
            events, ack = batch.events, batch.ack
        else:
            events = _lines(body)
            ack = _ack_parameter(ack_parameter)
    except msgspec.ValidationError as error:
        raise _refused_field(str(error)) from None
    except msgspec.DecodeError as error:
        raise ApiError(ErrorCode.BAD_REQUEST, f"the body is not {_described(kind)}: {error}") from None
    if len(events) > constants.usage_batch_max:
        message = f"at most {constants.usage_batch_max} usage events in one request; send the rest in another"
        raise ApiError(ErrorCode.REQUEST_TOO_LARGE, message)
    if not events:
        raise invalid(f"events must hold 1 to {constants.usage_batch_max} usage events")
    return events, Ack[ack]


def _lines(body: bytes) -> list[UsageEvent]:
    """NDJSON: one event a line (blank lines skipped); a line holding anything else, two objects
    too, is refused naming its event."""
    events: list[UsageEvent] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        if len(events) > constants.usage_batch_max:
            break  # refused as too large by the caller, without decoding the rest
        try:
            events.append(_EVENT.decode(line))
        except msgspec.ValidationError as error:
            raise RefusedEvent(len(events), invalid(str(error))) from None
        except msgspec.DecodeError as error:
            raise RefusedEvent(len(events), ApiError(ErrorCode.BAD_REQUEST, f"not one JSON object: {error}")) from None
    return events


def encode_results(command_ids: list[str], replies: list[Reply] | None) -> bytes:
    """The 200 answer: each event's outcome in request order."""
    if replies is None:
        return _RESULTS.encode(Results([EventResult(command_id, "QUEUED") for command_id in command_ids]))
    return _RESULTS.encode(Results([_outcome(reply) for reply in replies]))


def _outcome(reply: Reply) -> EventResult:
    result = reply.result
    rejected = result.status is not Status.ACCEPTED
    return EventResult(
        command_id=str(reply.command_id),
        status="REJECTED" if rejected else "ACCEPTED",
        transaction_id=str(reply.transaction_id),
        credits_charged=format_credits(result.credits_charged),
        balance_after=format_credits(result.balance_after),
        rejection=Rejection(result.code or "", result.message or "") if rejected else None,
        details=dict(sorted(result.details.items())),
    )


def _ack_parameter(value: str | None) -> Literal["QUEUED", "APPLIED"]:
    if value is None or value == "QUEUED":
        return "QUEUED"
    if value == "APPLIED":
        return "APPLIED"
    raise invalid(f"ack must be QUEUED or APPLIED, not {value[:20]!r}")


def _refused_field(message: str) -> ApiError:
    """A field msgspec refused, as INVALID_INPUT naming its event when it is inside one."""
    found = _EVENT_INDEX.search(message)
    error = invalid(message)
    return error if found is None else RefusedEvent(int(found.group(1)), error)


def _described(kind: str) -> str:
    return "a JSON object" if kind == JSON else "NDJSON (one JSON object per line)"
