"""`references(command)`: what each command names, the one answer the state loader, the warm-state
check and the worker's rate lookup share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from ledger.core.commands import (
    AdjustCredits,
    AlertKind,
    CaptureHold,
    Command,
    CreditBack,
    Envelope,
    Expire,
    GrantCredits,
    IssueQuote,
    Payload,
    PlaceHold,
    RecordUsage,
    RefundLot,
    ReleaseHold,
    SetAlert,
    SetTeamBudget,
    TransferCredits,
)
from ledger.core.money import MicroCredits
from ledger.core.references import References, references
from ledger.core.state import Hold, OrgState
from ledger.stream.batches import priced_products
from ledger.stream.warm import covers, event_time

ORG = UUID("00000000-0000-4000-8000-000000000001")
TEAM = UUID("00000000-0000-4000-8000-0000000000a1")
TEAM_B = UUID("00000000-0000-4000-8000-0000000000b2")
THING = UUID("00000000-0000-4000-8000-0000000000c3")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
EARLIER = T0 - timedelta(hours=3)
AHEAD = T0 + timedelta(minutes=1)
ONE = MicroCredits(1_000_000)


def command(payload: Payload) -> Command:
    return Command(Envelope(uuid.uuid4(), ORG, "k", T0), payload)


def named(payload: Payload) -> References:
    return references(command(payload))


CASES: list[tuple[Payload, References]] = [
    (GrantCredits(ONE), References(T0)),
    (GrantCredits(ONE, team_id=TEAM, products=frozenset({"sms"})), References(T0, teams=frozenset({TEAM}))),
    (RecordUsage("sms", Decimal(1)), References(T0, products=frozenset({"sms"}))),
    (
        RecordUsage("sms", Decimal(1), occurred_at=EARLIER, team_id=TEAM, quote_id=THING),
        References(EARLIER, quotes=frozenset({THING}), teams=frozenset({TEAM}), products=frozenset({"sms"})),
    ),
    # Usage dated ahead (within the clock's skew) reads from when it was received.
    (RecordUsage("sms", Decimal(1), occurred_at=AHEAD), References(T0, products=frozenset({"sms"}))),
    (IssueQuote("tts", Decimal(2), T0 + timedelta(hours=1)), References(T0, products=frozenset({"tts"}))),
    (PlaceHold(ONE, T0 + timedelta(hours=1)), References(T0)),
    (
        PlaceHold(ONE, T0 + timedelta(hours=1), product="gpu", team_id=TEAM),
        References(T0, teams=frozenset({TEAM}), products=frozenset({"gpu"})),
    ),
    (CaptureHold(THING, amount=ONE), References(T0, holds=frozenset({THING}), charged_holds=frozenset({THING}))),
    (ReleaseHold(THING), References(T0, holds=frozenset({THING}))),
    (RefundLot(THING, "refund"), References(T0, lots=frozenset({THING}))),
    (CreditBack(THING, "failed job"), References(T0, debits=frozenset({THING}))),
    (TransferCredits(ONE, from_team_id=TEAM, to_team_id=TEAM_B), References(T0, teams=frozenset({TEAM, TEAM_B}))),
    (TransferCredits(ONE, to_team_id=TEAM_B), References(T0, teams=frozenset({TEAM_B}))),
    (AdjustCredits(ONE, "fix", team_id=TEAM), References(T0, teams=frozenset({TEAM}))),
    (SetTeamBudget(TEAM, ONE), References(T0, teams=frozenset({TEAM}))),
    (SetAlert(THING, AlertKind.LOW_BALANCE, ONE, team_id=TEAM), References(T0, teams=frozenset({TEAM}))),
    (Expire(T0), References(T0)),
]


@pytest.mark.parametrize(("payload", "expected"), CASES, ids=lambda case: type(case).__name__)
def test_references_name_what_each_command_touches(payload: Payload, expected: References) -> None:
    assert named(payload) == expected


def test_the_warm_state_serves_only_what_it_holds_of_what_a_command_names() -> None:
    hold = Hold(THING, THING, ONE, ONE, MicroCredits(0), T0 + timedelta(hours=1), T0, product="gpu")
    state = OrgState(ORG, holds={THING: hold}, teams=frozenset({TEAM}))
    assert covers(state, command(CaptureHold(THING, amount=ONE)))
    assert not covers(state, command(ReleaseHold(TEAM_B)))  # a hold it does not hold
    assert covers(state, command(TransferCredits(ONE, to_team_id=TEAM)))
    assert not covers(state, command(TransferCredits(ONE, from_team_id=TEAM, to_team_id=TEAM_B)))  # a new team
    assert not covers(state, command(RecordUsage("sms", Decimal(1), quote_id=THING)))  # a quote it does not hold
    assert not covers(state, command(RefundLot(THING, "refund")))  # a lot it does not hold
    assert not covers(state, command(CreditBack(THING, "failed job")))  # debits are read from the journal
    assert event_time(command(RecordUsage("sms", Decimal(1), occurred_at=EARLIER))) == EARLIER
    # The worker prices what the commands name, and the product of a hold charged against.
    sent = [
        command(CaptureHold(THING, amount=ONE)),
        command(RecordUsage("sms", Decimal(1))),
        command(ReleaseHold(THING)),
    ]
    assert priced_products(sent, {ORG: state}) == {"gpu", "sms"}
