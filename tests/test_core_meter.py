"""Live meters in the pure core: free credits per owner, what a user may spend, and a reader kept
current by batch updates that always agrees with a full read of the state."""

from __future__ import annotations

import uuid
from datetime import datetime

from hypothesis import Phase, settings
from hypothesis.stateful import invariant

from ledger.core.batch import Outcome
from ledger.core.commands import (
    AdjustCredits,
    AtZero,
    CaptureHold,
    Payload,
    Period,
    PlaceHold,
    SetMemberLimits,
    SetSpendingPolicy,
    SetTeamBudget,
    TransferCredits,
)
from ledger.core.entries import Status
from ledger.core.meter import POOL, MeterView, free_by_owner, full_update, meter_update, touched, user_available
from ledger.core.state import OrgState
from tests.test_core_credit_model import HOUR, T0, TEAM, TEAM_B, credits, grant, ok, org, usage
from tests.test_core_state_machine import TEAM_A, LedgerMachine
from tests.test_core_state_machine import TEAM_B as MACHINE_TEAM_B


def test_free_credits_add_up_per_owner_with_holds_fencing_team_lots_first() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, TransferCredits(credits(10), None, TEAM)).state
    # A team hold of 30: 10 fenced on the team's lot, the other 20 on the pool.
    state = ok(state, PlaceHold(credits(30), T0 + HOUR, team_id=TEAM)).state
    free = free_by_owner(state, T0)
    assert free == {POOL: credits(70), TEAM: 0}
    assert sum(free.values()) == state.balance(T0).available


def test_a_drawn_credit_line_leaves_what_a_user_may_spend() -> None:
    state = ok(org(), SetSpendingPolicy(AtZero.CREDIT_LIMIT, credit_limit=credits(100))).state
    state = ok(state, AdjustCredits(credits(100), "team credits", TEAM)).state
    state = ok(state, usage(50)).state  # the pool has nothing: 50 drawn on the line
    view = MeterView.start(full_update(state, T0, [TEAM], ["ana"]))
    assert (view.balance.total, view.pool_free) == (credits(50), 0)
    assert view.user("ana", TEAM).available == credits(100)


def test_a_user_may_spend_the_team_then_the_pool_within_cap_and_budget() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, TransferCredits(credits(40), None, TEAM)).state
    view = MeterView.start(full_update(state, T0, [TEAM], ["ana"]))
    assert view.user("ana", TEAM).available == credits(100)
    assert view.user("ana", None).available == credits(60)  # no team: the pool only
    state = ok(state, SetMemberLimits("ana", credits(25), Period.MONTH, shared_credits=False)).state
    state = ok(state, usage(5, team_id=TEAM, user_id="ana")).state
    view = MeterView.start(full_update(state, T0, [TEAM], ["ana"]))
    ana = view.user("ana", TEAM)
    assert ana.limits.cap is not None and (ana.limits.cap.spent, ana.limits.cap.remaining) == (credits(5), credits(20))
    assert ana.available == credits(20)  # the team has 35 left, the cap 20
    assert view.user("ana", None).available == 0  # shared credits off and no team
    state = ok(state, SetTeamBudget(TEAM, credits(8))).state
    view = MeterView.start(full_update(state, T0, [TEAM], ["ana"]))
    assert view.user("ana", TEAM).available == credits(8)
    assert user_available(credits(60), None, None, view.users["ana"]) == 0


def test_touched_names_the_teams_and_users_a_change_moved() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, TransferCredits(credits(40), None, TEAM)).state
    placed = ok(state, PlaceHold(credits(5), T0 + HOUR, team_id=TEAM_B, user_id="bo"))
    assert touched(state, placed.state, [placed]) == ({TEAM_B}, {"bo"})
    used = ok(placed.state, usage(1, team_id=TEAM))
    assert touched(placed.state, used.state, [used]) == ({TEAM}, set())
    capped = ok(used.state, SetMemberLimits("cy", credits(1)))
    assert touched(used.state, capped.state, [capped]) == (set(), {"cy"})
    hold_id = uuid.UUID(placed.result.details["hold_id"])
    captured = ok(capped.state, CaptureHold(hold_id, amount=credits(2), final=True))
    assert touched(capped.state, captured.state, [captured]) == ({TEAM_B}, {"bo"})


class MeterMachine(LedgerMachine):
    """The ledger machine at a fixed time (so nothing changes but by commands), with a reader that
    starts from a full read and then only applies each command's update, as a subscription does."""

    def __init__(self) -> None:
        super().__init__()
        self.view = MeterView.start(full_update(self.state, self.now, [TEAM_A, MACHINE_TEAM_B], ["u1", "u2"]))

    def advance_time(self, seconds: int) -> None:  # no longer a rule: time stands still
        raise AssertionError("time must not pass in this machine")

    def _send(self, payload: Payload, key: str | None = None) -> Outcome:
        before = self.state
        outcome = super()._send(payload, key)
        if outcome.applied is not None and outcome.result.status is Status.ACCEPTED:
            self.view = self.view.merged(meter_update(before, self.state, [outcome.applied], self.now))
        return outcome

    @invariant()
    def the_reader_agrees_with_a_full_read(self) -> None:
        full = MeterView.start(full_update(self.state, self.now, [TEAM_A, MACHINE_TEAM_B], ["u1", "u2"]))
        assert (self.view.balance, self.view.pool_free) == (full.balance, full.pool_free)
        for team in (TEAM_A, MACHINE_TEAM_B):
            assert self.view.team(team) == full.team(team), team
        for user in ("u1", "u2"):
            for team in (None, TEAM_A, MACHINE_TEAM_B):
                assert self.view.user(user, team) == full.user(user, team), (user, team)

    @invariant()
    def a_users_free_credits_are_what_the_charge_path_could_take(self) -> None:
        for user in ("u1", "u2"):
            for team in (None, TEAM_A, MACHINE_TEAM_B):
                reachable = _model_free(self.state, self.now, team, user)
                meter = self.view.user(user, team)
                if meter.limits.cap is None and (team is None or self.view.team(team).budget is None):
                    assert meter.available == reachable  # a drawn credit line takes nothing off


def _model_free(state: OrgState, at: datetime, team: uuid.UUID | None, user: str) -> int:
    """The machine's own fences: every usable lot the user may draw on (any product), less them."""
    fences = LedgerMachine._fencing(state, at)
    fenced: dict[uuid.UUID, int] = {}
    for lots in fences.values():
        for lot_id, part in lots.items():
            fenced[lot_id] = fenced.get(lot_id, 0) + part
    limits = state.members.get(user)
    owners = [team] if team is not None else []
    if limits is None or limits.shared_credits:
        owners.append(None)
    return sum(
        lot.remaining - fenced.get(lot.id, 0) for lot in state.lots if lot.team_id in owners and lot.usable_at(at)
    )


MeterMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, phases=[p for p in Phase if p is not Phase.explain]
)
test_meter_machine = MeterMachine.TestCase
