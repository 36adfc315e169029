"""The pure step: grants, priced usage, consumption order, rejection at zero, idempotency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.apply import apply
from ledger.core.batch import apply_batch
from ledger.core.commands import Command, Envelope, Expire, GrantCredits, LotKind, RecordUsage
from ledger.core.entries import Status
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits
from ledger.core.state import OrgState, Rate
from ledger.core.validation import validate

ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RATES = {"sms": (Rate("sms", Decimal(1)),), "tokens": (Rate("tokens", Decimal("0.001")),)}


def command(payload: GrantCredits | RecordUsage, key: str, at: datetime = T0) -> Command:
    return Command(Envelope(uuid.uuid4(), ORG, key, at), payload)


def credits(whole: int) -> MicroCredits:
    return MicroCredits(whole * 1_000_000)


def empty() -> OrgState:
    return OrgState(ORG, (), RATES)


def test_grant_then_usage_posts_balanced_double_entry() -> None:
    granted = apply(empty(), command(GrantCredits(credits(100)), "g"))
    used = apply(granted.state, command(RecordUsage("sms", Decimal(30)), "u"))
    for step in (granted, used):
        assert step.result.status is Status.ACCEPTED
        assert sum(p.amount for p in step.postings) == 0
    assert used.result.credits_charged == credits(30)
    assert used.state.balance(T0).total == credits(70)


def test_consumption_order_bonus_then_base_then_purchased() -> None:
    state = empty()
    grants = [
        GrantCredits(credits(10), LotKind.PURCHASED),
        GrantCredits(credits(10), LotKind.BASE, expires_at=T0 + timedelta(days=30)),
        GrantCredits(credits(10), LotKind.BONUS, expires_at=T0 + timedelta(days=90)),
    ]
    lots = {}
    for index, grant in enumerate(grants):
        step = apply(state, command(grant, f"g{index}"))
        state = step.state
        lots[grant.kind] = step.new_lots[0].id
    step = apply(state, command(RecordUsage("sms", Decimal(15)), "u"))
    taken = {p.lot_id: -p.amount for p in step.postings if p.lot_id}
    assert taken == {lots[LotKind.BONUS]: credits(10), lots[LotKind.BASE]: credits(5)}


def test_expired_and_future_lots_are_not_spent() -> None:
    state = empty()
    for key, grant in {
        "old": GrantCredits(credits(50), expires_at=T0 + timedelta(hours=1)),
        "later": GrantCredits(credits(50), effective_at=T0 + timedelta(days=2)),
    }.items():
        state = apply(state, command(grant, key)).state
    later = T0 + timedelta(days=1)
    assert state.balance(later).total == 0
    step = apply(state, command(RecordUsage("sms", Decimal(1)), "u", at=later))
    assert step.result.code == "INSUFFICIENT_CREDITS"


def test_blocked_usage_changes_nothing() -> None:
    state = apply(empty(), command(GrantCredits(credits(10)), "g")).state
    step = apply(state, command(RecordUsage("sms", Decimal(11)), "u"))
    assert step.result.status is Status.REJECTED
    assert step.postings == ()
    assert step.state == state


def test_unknown_product_is_rejected() -> None:
    step = apply(empty(), command(RecordUsage("nope", Decimal(1)), "u"))
    assert step.result.code == "UNKNOWN_PRODUCT"


def test_batch_applies_each_key_once_and_flags_reuse() -> None:
    grant = command(GrantCredits(credits(100)), "g")
    use = command(RecordUsage("sms", Decimal(30)), "u")
    retry = command(RecordUsage("sms", Decimal(30)), "u")
    reuse = command(RecordUsage("sms", Decimal(31)), "u")
    outcomes, final = apply_batch({ORG: empty()}, [grant, use, retry, reuse], {})
    assert [o.applied is not None for o in outcomes] == [True, True, False, False]
    assert outcomes[2].result == outcomes[1].result
    assert outcomes[2].transaction_id == use.envelope.command_id
    assert outcomes[3].result.code == "IDEMPOTENCY_CONFLICT"
    assert final[ORG].balance(T0).total == credits(70)


@settings(max_examples=300, deadline=None)  # a busy CI machine must not fail a correctness test
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=50)), max_size=40))
def test_balance_never_negative_and_equals_the_postings(steps: list[tuple[bool, int]]) -> None:
    state = empty()
    lot_postings = 0
    for index, (is_grant, amount) in enumerate(steps):
        payload = GrantCredits(credits(amount)) if is_grant else RecordUsage("tokens", Decimal(amount * 777))
        step = apply(state, command(payload, str(index)))
        assert sum(p.amount for p in step.postings) == 0
        lot_postings += sum(p.amount for p in step.postings if p.lot_id is not None)
        state = step.state
        assert all(lot.remaining >= 0 for lot in state.lots)
        assert state.balance(T0).total == lot_postings


def test_expiry_moves_the_remainder_to_breakage_and_only_once() -> None:
    state = empty()
    for key, grant in {
        "bonus": GrantCredits(credits(20), LotKind.BONUS, expires_at=T0 + timedelta(days=1)),
        "base": GrantCredits(credits(50)),
    }.items():
        state = apply(state, command(grant, key)).state
    state = apply(state, command(RecordUsage("sms", Decimal(5)), "u")).state
    later = T0 + timedelta(days=2)
    expired = apply(state, command(Expire(later), "x", at=later))
    assert sorted((p.account, p.amount) for p in expired.postings) == [
        ("breakage:bonus", credits(15)),
        ("lot", -credits(15)),
    ]
    assert expired.result.balance_after == credits(50)
    again = apply(expired.state, command(Expire(later), "x2", at=later))
    assert again.postings == ()


def test_expiry_ahead_of_time_is_invalid() -> None:
    with pytest.raises(InvalidCommand):
        validate(command(Expire(T0 + timedelta(seconds=1)), "x", at=T0))
