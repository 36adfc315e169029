"""What live meters show, computed from an organization's state: the org's balance, each team's own
credits and budget, and what one user may spend now.

A user's spendable credits are their team's lots and (unless their shared-credit toggle is off) the
org's pool, less what open holds fence on those lots, capped by what their cap and their team's
budget leave. Fences on a team's lots come only from that team's holds, so "free" credits add up
per owner (the pool, each team): a meter can be kept current from the owners a change touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from ledger.core.charge import Spender, reserved_by_lot, spend_limits
from ledger.core.commands import Period
from ledger.core.entries import Applied
from ledger.core.money import MicroCredits
from ledger.core.state import Balance, OrgState

POOL: None = None  # the owner of the org's shared lots
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class LimitUse:
    """A budget or cap in its current period."""

    amount: MicroCredits
    spent: MicroCredits
    period: Period

    @property
    def remaining(self) -> MicroCredits:
        return MicroCredits(max(0, self.amount - self.spent))


@dataclass(frozen=True, slots=True)
class TeamMeter:
    balance: Balance  # the team's own usable lots and what its open holds reserve
    free: MicroCredits  # the team's lots less the fences on them
    budget: LimitUse | None


@dataclass(frozen=True, slots=True)
class UserLimits:
    cap: LimitUse | None
    shared_credits: bool


def free_by_owner(state: OrgState, at: datetime) -> dict[UUID | None, MicroCredits]:
    """Per owner (POOL or a team id), its usable credits that no open hold fences. Owners without
    usable lots are absent (or, the pool, 0). What a credit line has drawn is not taken off: it is
    repaid by grants, not by spending, so it leaves what a spender may take as it is."""
    reserved = reserved_by_lot(state, at) if state.holds else {}
    free: dict[UUID | None, int] = {POOL: 0}
    for lot in state.lots:
        if lot.usable_at(at):
            free[lot.team_id] = free.get(lot.team_id, 0) + lot.remaining - reserved.get(lot.id, 0)
    return {owner: MicroCredits(amount) for owner, amount in free.items()}


def team_meter(state: OrgState, at: datetime, team_id: UUID, free: Mapping[UUID | None, int]) -> TeamMeter:
    rule = state.budgets.get(team_id)
    budget = None if rule is None else _limit_use(state, Spender(at, None, team_id=team_id), rule.period)
    return TeamMeter(state.balance(at, team_id), MicroCredits(free.get(team_id, 0)), budget)


def user_limits(state: OrgState, at: datetime, user_id: str) -> UserLimits:
    member = state.members.get(user_id)
    if member is None:
        return UserLimits(None, True)
    return UserLimits(_limit_use(state, Spender(at, None, user_id=user_id), member.period), member.shared_credits)


def _limit_use(state: OrgState, spender: Spender, period: Period) -> LimitUse | None:
    """The one budget (a team alone) or cap (a user alone) a spender counts against, if any."""
    limits = spend_limits(state, spender)
    if not limits:
        return None
    ((key, amount, _),) = limits
    return LimitUse(amount, MicroCredits(state.spend.get(key, 0)), period)


def user_available(pool_free: int, team_id: UUID | None, team: TeamMeter | None, limits: UserLimits) -> MicroCredits:
    """The most a debit by this user, for `team_id`, could take now from credits: the team's free
    credits and the pool's (if shared), no more than their cap and the team's budget leave."""
    # As the charge path draws: the team's own lots, then the pool unless the toggle is off.
    reachable = (team.free if team_id is not None and team is not None else 0) + (
        pool_free if limits.shared_credits else 0
    )
    bounds = [reachable]
    if limits.cap is not None:
        bounds.append(limits.cap.remaining)
    if team is not None and team.budget is not None:
        bounds.append(team.budget.remaining)
    return MicroCredits(min(bounds))


def touched(before: OrgState, after: OrgState, applied: Iterable[Applied]) -> tuple[set[UUID], set[str]]:
    """The teams and users whose meters a batch may have moved (the pool's always may): teams whose
    lots, holds, budget or counters changed, users whose limits, holds or counters did."""
    teams: set[UUID] = set()
    users: set[str] = set()
    for change in applied:
        teams.update(lot.team_id for lot in (*change.new_lots, *change.touched_lots) if lot.team_id is not None)
    if before.holds is not after.holds:
        for hold_id, hold in after.holds.items():
            if before.holds.get(hold_id) != hold:
                if hold.team_id is not None:
                    teams.add(hold.team_id)
                if hold.user_id is not None:
                    users.add(hold.user_id)
    teams.update(_changed_keys(before.budgets, after.budgets))
    users.update(_changed_keys(before.members, after.members))
    if before.spend is not after.spend:
        for (scope, start), spent in after.spend.items():
            if before.spend.get((scope, start)) == spent:
                continue
            kind, _, owner = scope.partition(":")
            if kind == "team":
                teams.add(UUID(owner))
            elif kind == "user":
                users.add(owner)
    return teams & after.teams, users


def _changed_keys(before: Mapping[K, object], after: Mapping[K, object]) -> set[K]:
    if before is after:
        return set()
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


@dataclass(frozen=True, slots=True)
class MeterUpdate:
    """What a batch changed for an organization's meters: its balance and pool always, the teams
    and users it touched. Readers keep the last parts they saw of the others."""

    organization_id: UUID
    at: datetime
    balance: Balance
    pool_free: MicroCredits
    teams: Mapping[UUID, TeamMeter] = field(default_factory=dict)
    users: Mapping[str, UserLimits] = field(default_factory=dict)


def meter_update(before: OrgState, after: OrgState, applied: Iterable[Applied], at: datetime) -> MeterUpdate:
    teams, users = touched(before, after, applied)
    balance = after.balance(at)
    # Without holds or team lots, the pool's free credits are the whole balance (before the credit
    # line): no second pass over the lots.
    simple = not after.holds and all(lot.team_id is None for lot in after.lots)
    free: Mapping[UUID | None, MicroCredits] = (
        {POOL: MicroCredits(balance.total + after.credit_drawn)} if simple else free_by_owner(after, at)
    )
    return _update(after, at, balance, free, sorted(teams), sorted(users))


def full_update(
    state: OrgState, at: datetime, team_ids: Iterable[UUID] = (), user_ids: Iterable[str] = ()
) -> MeterUpdate:
    """The same, read from a whole state: what a meter starts from."""
    return _update(state, at, state.balance(at), free_by_owner(state, at), team_ids, user_ids)


def _update(
    state: OrgState,
    at: datetime,
    balance: Balance,
    free: Mapping[UUID | None, MicroCredits],
    team_ids: Iterable[UUID],
    user_ids: Iterable[str],
) -> MeterUpdate:
    return MeterUpdate(
        organization_id=state.organization_id,
        at=at,
        balance=balance,
        pool_free=free[POOL],
        teams={team_id: team_meter(state, at, team_id, free) for team_id in team_ids},
        users={user_id: user_limits(state, at, user_id) for user_id in user_ids},
    )


@dataclass(frozen=True, slots=True)
class UserMeter:
    team_id: UUID | None
    available: MicroCredits
    limits: UserLimits


_NO_TEAM_METER = TeamMeter(Balance(MicroCredits(0), MicroCredits(0)), MicroCredits(0), None)


@dataclass(frozen=True, slots=True)
class MeterView:
    """A reader's picture of an organization's meters: started from a full update, kept current by
    the batches' updates, which carry absolute values for what they touched. Updates are applied as
    they come, not ordered by their times (those are the workers' clocks, and a partition may move
    to a worker whose clock is behind); a reader that may have missed one reads the state again."""

    at: datetime  # when the values were taken
    balance: Balance
    pool_free: MicroCredits
    teams: Mapping[UUID, TeamMeter] = field(default_factory=dict)
    users: Mapping[str, UserLimits] = field(default_factory=dict)

    @classmethod
    def start(cls, update: MeterUpdate) -> MeterView:
        return cls(update.at, update.balance, update.pool_free, dict(update.teams), dict(update.users))

    def merged(self, update: MeterUpdate) -> MeterView:
        return MeterView(
            update.at,
            update.balance,
            update.pool_free,
            {**self.teams, **update.teams},
            {**self.users, **update.users},
        )

    def team(self, team_id: UUID) -> TeamMeter:
        return self.teams.get(team_id, _NO_TEAM_METER)

    def user(self, user_id: str, team_id: UUID | None) -> UserMeter:
        limits = self.users.get(user_id, UserLimits(None, True))
        team = None if team_id is None else self.team(team_id)
        return UserMeter(team_id, user_available(self.pool_free, team_id, team, limits), limits)
