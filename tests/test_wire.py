"""The wire format (msgspec) and the fingerprint: stored fingerprints never change, the usage
writer of `canonical_json` matches the generic one byte for byte, and entries and replies in the
layout used before msgspec (still in flight at deploy time) decode to the same values."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core import wire
from ledger.core.commands import Command, Envelope, GrantCredits, LotKind, RecordUsage
from ledger.core.entries import Result, Status, result_to_dict
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits
from ledger.stream.replies import Reply, decode_reply, encode_reply

TEAM = UUID("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b")
QUOTE = UUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")

# Computed by the json + codec implementation before msgspec; a change here turns every retry of
# a stored usage event into an idempotency conflict.
PINNED = [
    (RecordUsage("gpt-4o.input-tokens", Decimal(1234)),
     "9d8d7038fac8cc5e23e3f062d7153c39243cb5e69061e324d1b794762e383de3"),
    (RecordUsage("sms", Decimal("0.5"), occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), team_id=TEAM,
                 user_id="user-7", quote_id=QUOTE, dimensions={"model": "gpt-4o", "op": "chat"}),
     "2b3fd0bd9357cad6a549bceb2c79bb58eede9282caa070d6db81340221e8f78f"),
    (RecordUsage('café "x"', Decimal("1E+3"),
                 occurred_at=datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
                 user_id="ünï\\", dimensions={"ß": "\n"}),
     "be303a6791a1124b2ee706260cba9c742f9f6d175421f5707135aa1a11afc502"),
]  # fmt: skip


def _generic(payload: RecordUsage) -> str:
    return json.dumps(wire.payload_to_dict(payload), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize(("payload", "expected"), PINNED)
def test_usage_fingerprints_are_pinned(payload: RecordUsage, expected: str) -> None:
    assert wire.fingerprint(payload) == expected
    assert wire.canonical_json(payload) == _generic(payload)


texts = st.text(max_size=12)
usages = st.builds(
    RecordUsage,
    product=texts,
    quantity=st.decimals(allow_nan=False, allow_infinity=False, places=None),
    occurred_at=st.none() | st.datetimes(timezones=st.just(UTC) | st.just(timezone(timedelta(hours=-5)))),
    team_id=st.none() | st.uuids(),
    user_id=st.none() | texts,
    quote_id=st.none() | st.uuids(),
    dimensions=st.dictionaries(texts, texts, max_size=3),
)


@given(usages)
def test_the_usage_writer_is_the_generic_canonical_form(payload: RecordUsage) -> None:
    assert wire.canonical_json(payload) == _generic(payload)


def _command(payload: RecordUsage | GrantCredits, reply_to: str | None = "reply:abc") -> Command:
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    return Command(Envelope(uuid.uuid4(), uuid.uuid4(), "key-1", at, reply_to), payload)


def _old_encode(command: Command) -> bytes:
    """The layout before msgspec, as old API processes still append it during a rolling deploy."""
    envelope = command.envelope
    return json.dumps(
        {
            "id": str(envelope.command_id),
            "org": str(envelope.organization_id),
            "key": envelope.idempotency_key,
            "at": envelope.received_at.isoformat(),
            "reply": envelope.reply_to,
            "payload": wire.payload_to_dict(command.payload),
        },
        separators=(",", ":"),
    ).encode()


@pytest.mark.parametrize("payload", [pinned for pinned, _ in PINNED] + [GrantCredits(MicroCredits(5), LotKind.BONUS)])
def test_old_and_new_entries_decode_alike(payload: RecordUsage | GrantCredits) -> None:
    sent = _command(payload)
    assert wire.decode(wire.encode(sent)) == sent
    assert wire.decode(_old_encode(sent)) == sent
    assert wire.decode(_old_encode(sent).decode()) == sent
    # An old worker reads the new layout with json and the codec: its keys are a superset.
    new = json.loads(wire.encode(sent))
    assert wire.payload_from_dict(new["payload"]) == payload
    assert datetime.fromisoformat(new["at"]) == sent.envelope.received_at


def test_the_payload_may_not_claim_another_type() -> None:
    data = json.loads(wire.encode(_command(RecordUsage("sms", Decimal(1)))))
    data["payload"]["type"] = "grant_credits"
    with pytest.raises(InvalidCommand):
        wire.decode(json.dumps(data))
    data["type"] = data["payload"]["type"] = "mint_money"
    with pytest.raises(InvalidCommand):
        wire.decode(json.dumps(data))


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b'{"id":"x"}', b'{"id":"not-a-uuid","org":"x","key":"k","at":"now","reply":null,'
     b'"payload":{}}'],
)  # fmt: skip
def test_malformed_entries_raise_value_errors(raw: bytes) -> None:
    # The inbox sets aside an entry whose decode raises ValueError, KeyError or TypeError.
    with pytest.raises(ValueError):
        wire.decode(raw)


@pytest.mark.parametrize(
    "result",
    [
        Result(Status.ACCEPTED, MicroCredits(1500), MicroCredits(-20), details={"credits_per_unit": "0.001"}),
        Result(Status.REJECTED, balance_after=MicroCredits(7), code="INSUFFICIENT_CREDITS", message="short"),
    ],
)
def test_replies_read_across_a_rolling_deploy(result: Result) -> None:
    reply = Reply(uuid.uuid4(), uuid.uuid4(), result)
    assert decode_reply(encode_reply(reply)) == reply
    # The layout json and the codec wrote before msgspec, both ways.
    old = {"command_id": str(reply.command_id), "transaction_id": str(reply.transaction_id),
           "result": result_to_dict(result)}  # fmt: skip
    assert decode_reply(json.dumps(old).encode()) == reply
    assert json.loads(encode_reply(reply)) == old
