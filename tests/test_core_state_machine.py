"""Random sequences of ledger commands, retries included, against the ledger's invariants.

After every step: each transaction's postings sum to zero; every lot's remaining equals what the
journal says; no lot is below zero or was spent outside its validity; an org that blocks at zero is
never overdrawn; each idempotency key has at most one effect. Extended as commands are added.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.core.batch import Stored, apply_batch
from ledger.core.commands import Command, Envelope, Expire, GrantCredits, LotKind, Payload, RecordUsage
from ledger.core.entries import LOT_ACCOUNT, Status
from ledger.core.money import MicroCredits
from ledger.core.state import OrgState, Rate

ORG = uuid.UUID("00000000-0000-4000-8000-0000000000ff")
RATES = {"tokens": Rate("tokens", Decimal("0.0013")), "runs": Rate("runs", Decimal(80))}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = OrgState(ORG, (), RATES)
        self.now = T0
        self.stored: dict[tuple[uuid.UUID, str], Stored] = {}
        self.payloads: dict[str, Payload] = {}
        self.effects: dict[str, int] = defaultdict(int)
        self.lot_journal: dict[uuid.UUID, int] = defaultdict(int)
        self.sequence = 0

    def _send(self, payload: Payload, key: str | None = None) -> None:
        if key is None:
            self.sequence += 1
            key = f"k{self.sequence}"
        command = Command(Envelope(uuid.uuid4(), ORG, key, self.now), payload)
        before = self.state
        outcomes, final = apply_batch({ORG: self.state}, [command], self.stored)
        (outcome,) = outcomes
        self.state = final[ORG]
        if outcome.applied is None:
            assert self.state == before, "a replay or conflict changed state"
            if self.payloads.get(key) == payload:
                assert outcome.result == self.stored[(ORG, key)].result
            else:
                assert outcome.result.code == "IDEMPOTENCY_CONFLICT"
            return
        assert key not in self.payloads, "a key took effect twice"
        self.payloads[key] = payload
        self.stored[(ORG, key)] = Stored(command.envelope.command_id, outcome.fingerprint, outcome.result)
        self.effects[key] += 1
        postings = outcome.applied.postings
        assert sum(p.amount for p in postings) == 0
        if outcome.result.status is Status.REJECTED:
            assert postings == () and self.state == before
        for posting in postings:
            assert (posting.account == LOT_ACCOUNT) == (posting.lot_id is not None)
            if posting.lot_id is not None:
                self.lot_journal[posting.lot_id] += posting.amount
                if posting.amount < 0 and isinstance(payload, RecordUsage):
                    lot = next(lot for lot in before.lots if lot.id == posting.lot_id)
                    assert lot.usable_at(self.now), "spent a lot outside its validity"

    @rule(
        amount=st.integers(min_value=1, max_value=10**9),
        kind=st.sampled_from(list(LotKind)),
        expires_in_s=st.none() | st.integers(min_value=1, max_value=10**6),
    )
    def grant(self, amount: int, kind: LotKind, expires_in_s: int | None) -> None:
        expires_at = None if expires_in_s is None else self.now + timedelta(seconds=expires_in_s)
        self._send(GrantCredits(MicroCredits(amount), kind, expires_at=expires_at))

    @rule(product=st.sampled_from(sorted(RATES)), quantity=st.integers(min_value=1, max_value=10**6))
    def use(self, product: str, quantity: int) -> None:
        self._send(RecordUsage(product, Decimal(quantity)))

    @rule()
    def expire(self) -> None:
        self._send(Expire(self.now))

    @rule(seconds=st.integers(min_value=1, max_value=10**6))
    def advance_time(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: bool(self.payloads))
    @rule(data=st.data())
    def retry_same(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.payloads)))
        self._send(self.payloads[key], key)

    @precondition(lambda self: bool(self.payloads))
    @rule(data=st.data())
    def retry_with_another_payload(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.payloads)))
        self._send(RecordUsage("runs", Decimal(987_654)), key)

    @invariant()
    def lots_agree_with_the_journal(self) -> None:
        for lot in self.state.lots:
            assert lot.remaining == self.lot_journal[lot.id]
            assert 0 <= lot.remaining <= lot.amount

    @invariant()
    def never_overdrawn(self) -> None:
        assert self.state.balance(self.now).total >= 0

    @invariant()
    def one_effect_per_key(self) -> None:
        assert all(count == 1 for count in self.effects.values())


LedgerMachine.TestCase.settings = settings(max_examples=400, stateful_step_count=40, deadline=None)
test_ledger_state_machine = LedgerMachine.TestCase
