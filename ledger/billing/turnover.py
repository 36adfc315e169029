"""Period turnover: the billing facts a subscription has due by `now`, in order, each with the
ledger command that carries it. Pure: `ledger.subscriptions.turnover` sends and records them.

One fact per (subscription, period, reason) (`period_facts`), its command's idempotency key derived
from it (`ledger.billing.keys.period_key`), so that the ledger applies it once however often it is
sent. Credit periods are monthly from the anchor (`Subscription.credit_calendar`: an annual plan's
credits come monthly); billing periods are the interval's (`billing_calendar`). At each time, in
this order:

    'close'      a credit period's end: Expire(as_of = its end). The period's base lot ends there
                 by its own expiry: into the rollover bank (within the bank's cap; a bank lot lives
                 the plan's cycles) or, on a reset plan, to breakage. Due every month while the
                 subscription lives, so bank lots and bonus lots also end on time.
    'trial_end'  at `trial_ends_at`: SetAccess TRIAL_ENDED. From then on nothing is granted or
                 charged (an upgrade clears the trial and grants start again).
    'end'        the first billing boundary after `cancel_at_period_end` was set (and not before
                 the `ends_at` it names): SetAccess INACTIVE, status canceled, `ends_at`; nothing
                 more falls due.
    'plan'       the first billing boundary after a downgrade was asked (`pending_plan_key`): a new
                 plan segment from that boundary and SetAccess for the new plan (Archive: status
                 archived and `media_purge_at`).
    'charge'     a billing period's start: its price (`ledger.billing.charges`), no command; nothing
                 while in a trial.
    'base'       a credit period's start: GrantCredits of the plan's credits plus its per-seat
                 credits, a BASE lot from the period's start to its end, for the plan's products,
                 rolling over as the plan says.

The plan (and version) and seats of a period are those in force at its start. `decided_until` is
the time up to which turnover already decided everything: facts at or before it that are not
recorded were not due when their time came (a trial was running, say) and never become due, so a
later change to the subscription is never applied to the past. Periods missed while the service was
down are caught up in order; one call returns at most `limit` facts, cut between two times.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from ledger import constants
from ledger.billing.calendar import MONTHS_PER, PERIOD_INDEX_MAX, Period, add_period
from ledger.billing.catalog import Catalog, CreditPolicy, Plan
from ledger.billing.charges import ChargeLine, period_charges
from ledger.billing.keys import period_key
from ledger.billing.proration import monthly_credits
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.core import bounds
from ledger.core.commands import (
    AccessStatus,
    Expire,
    GrantCredits,
    LotKind,
    LotSource,
    LotTerms,
    Payload,
    RolloverRule,
    SetAccess,
)
from ledger.core.money import MicroCredits


class Reason(StrEnum):
    CLOSE = "close"
    TRIAL_END = "trial_end"
    END = "end"
    PLAN = "plan"
    CHARGE = "charge"
    BASE = "base"


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact due: `period` is the credit period ('base', 'close', 'trial_end') or the billing
    period ('charge', 'plan', 'end') it belongs to, `at` when it falls due."""

    subscription_id: UUID
    reason: Reason
    period: Period
    at: datetime
    payload: Payload | None = None  # the ledger command's; None: a fact of billing only ('charge')
    credits: MicroCredits | None = None  # 'base': what is granted
    charges: tuple[ChargeLine, ...] = ()  # 'charge': the lines owed
    segment: PlanSegment | None = None  # 'plan': the segment it adds
    subscription: Subscription | None = None  # the subscription after the fact, when it changes it

    @property
    def key(self) -> str:
        """The idempotency key of its command (and of its row's `idempotency_key`)."""
        return period_key(self.subscription_id, self.period.start, self.reason.value)


@dataclass(frozen=True, slots=True)
class RecordedFact:
    period_start: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Turnover:
    facts: tuple[Fact, ...]
    subscription: Subscription  # after the facts
    decided_until: datetime | None  # everything due by then is among the facts or recorded
    next_due_at: datetime | None  # when the next fact falls due; None: never (the subscription ended)
    blocked: str | None = None  # why the walk stopped early (a plan the catalog lacks)


class _Blocked(Exception):
    pass


def plan_access(plan: Plan, status: AccessStatus = AccessStatus.ACTIVE) -> SetAccess:
    """What `plan` lets the organization do: `status`, or INACTIVE on a plan without generation."""
    return SetAccess(
        status=status if plan.generation else AccessStatus.INACTIVE,
        plan=plan.key,
        products=plan.products,
        storage_quota_gb=plan.storage_quota_gb,
        priority_queue=plan.priority_queue,
    )


def command_time(fact_at: datetime, now: datetime) -> datetime:
    """When a fact's command is received: now, or for a fact caught up more than the ledger's
    backdating window late, the latest time its dates are still accepted."""
    return min(now, fact_at + bounds.BACKDATE_MAX - timedelta(days=1))


def due_facts(
    subscription: Subscription,
    catalog: Catalog,
    recorded: Collection[RecordedFact],
    now: datetime,
    *,
    decided_until: datetime | None = None,
    kits_used: int = 0,
    limit: int = constants.turnover_facts_per_subscription_max,
) -> Turnover:
    """The facts due by `now` not yet recorded, in order (at most `limit`, cut between two times)."""
    done = {(fact.period_start, fact.reason) for fact in recorded}
    walk = _Walk(subscription, catalog, kits_used, decided_until)
    taken: list[Fact] = []
    until = decided_until
    try:
        for at, group in walk.groups():
            new = [fact for fact in group if (fact.period.start, fact.reason.value) not in done]
            if at > now:
                # Nothing falls due between the last time taken and this one: decided up to now.
                return _turnover(subscription, taken, _later(until, now), at)
            if taken and len(taken) + len(new) > limit:
                return _turnover(subscription, taken, until, at)
            taken.extend(new)
            until = at
    except _Blocked as blocked:
        return _turnover(subscription, taken, until, walk.at, str(blocked))
    return _turnover(subscription, taken, _later(until, now), None)


def _later(until: datetime | None, now: datetime) -> datetime:
    return now if until is None else max(until, now)


def _turnover(
    subscription: Subscription,
    taken: list[Fact],
    until: datetime | None,
    due: datetime | None,
    blocked: str | None = None,
) -> Turnover:
    after = subscription
    for fact in taken:
        after = fact.subscription or after
    return Turnover(tuple(taken), after, until, due, blocked)


@dataclass
class _Walk:
    """The subscription's facts, time by time, after `until`; the subscription as the facts change it."""

    subscription: Subscription
    catalog: Catalog
    kits_used: int
    until: datetime | None
    at: datetime | None = None
    _months: int = field(init=False)

    def __post_init__(self) -> None:
        self._months = MONTHS_PER[self.subscription.interval]

    def groups(self) -> Iterator[tuple[datetime, list[Fact]]]:
        if self._ended():
            return
        credit = self.subscription.credit_calendar
        first = 0 if self.until is None else credit.index_at(self.until)
        previous = None if first == 0 else credit.boundary(first - 1)
        for index in range(first, PERIOD_INDEX_MAX + 1):
            at = credit.boundary(index)
            trial = self.subscription.trial_ends_at
            if trial is not None and previous is not None and previous < trial < at and self._after(trial):
                self.at = trial
                yield trial, [self._trial_end(trial)]
            previous = at
            if not self._after(at):
                continue
            self.at = at
            yield at, self._group(index, at)
            if self._ended():
                return

    def _ended(self) -> bool:
        return self.subscription.status is SubscriptionStatus.CANCELED

    def _after(self, at: datetime) -> bool:
        return self.until is None or at > self.until

    def _group(self, index: int, at: datetime) -> list[Fact]:
        sub = self.subscription
        facts: list[Fact] = []
        if index >= 1:
            facts.append(self._close(index - 1))
        if sub.trial_ends_at == at and index >= 1:
            facts.append(self._trial_end(at))
        trial_over = sub.trial_ends_at is not None and at >= sub.trial_ends_at
        if index % self._months == 0:
            billing = sub.billing_calendar.period(index // self._months)
            if index >= 1 and sub.cancel_at_period_end and (sub.ends_at is None or at >= sub.ends_at):
                facts.append(self._end(sub.billing_calendar.period(billing.index - 1)))
                return facts
            if index >= 1 and sub.pending_plan_key is not None:
                facts.append(self._plan(billing, sub.pending_plan_key, trial_over))
            if not trial_over:
                facts.append(self._charge(billing))
        if not trial_over and (base := self._base(index)) is not None:
            facts.append(base)
        return facts

    def _plan_at(self, key: str, at: datetime) -> Plan:
        plan = self.catalog.plan_at(key, at)
        if plan is None:
            raise _Blocked(f"the catalog has no plan {key!r} in force at {at.isoformat()}")
        return plan

    def _fact(self, reason: Reason, period: Period, at: datetime, **fields: object) -> Fact:
        return Fact(self.subscription.id, reason, period, at, **fields)  # type: ignore[arg-type]

    def _close(self, index: int) -> Fact:
        period = self.subscription.credit_calendar.period(index)
        return self._fact(Reason.CLOSE, period, period.end, payload=Expire(period.end))

    def _trial_end(self, at: datetime) -> Fact:
        segment = self.subscription.segment_at(at)
        access = plan_access(self._plan_at(segment.plan_key, at), AccessStatus.TRIAL_ENDED)
        period = self.subscription.credit_calendar.period_at(at)
        return self._fact(Reason.TRIAL_END, period, at, payload=access)

    def _end(self, billing: Period) -> Fact:
        sub = self.subscription
        plan = self._plan_at(sub.segment_at(billing.start).plan_key, billing.start)
        access = replace(plan_access(plan), status=AccessStatus.INACTIVE)
        self.subscription = replace(sub, status=SubscriptionStatus.CANCELED, ends_at=billing.end)
        return self._fact(Reason.END, billing, billing.end, payload=access, subscription=self.subscription)

    def _plan(self, billing: Period, key: str, trial_over: bool) -> Fact:
        sub = self.subscription
        plan = self._plan_at(key, billing.start)
        segment = PlanSegment(billing.start, plan.key, sub.segment_at(billing.start).seats)
        status, purge = sub.status, sub.media_purge_at
        if not plan.generation:
            status = SubscriptionStatus.ARCHIVED
            if purge is None and plan.media_purge_days is not None:
                purge = add_period(billing.start, days=plan.media_purge_days, timezone=sub.timezone)
        elif status is SubscriptionStatus.ARCHIVED:
            status = SubscriptionStatus.ACTIVE
        self.subscription = replace(
            sub, plan_key=plan.key, pending_plan_key=None, status=status, media_purge_at=purge,
            segments=(*sub.segments, segment),
        )  # fmt: skip
        access = plan_access(plan, AccessStatus.TRIAL_ENDED if trial_over else AccessStatus.ACTIVE)
        return self._fact(
            Reason.PLAN, billing, billing.start, payload=access, segment=segment, subscription=self.subscription
        )

    def _charge(self, billing: Period) -> Fact:
        sub = self.subscription
        in_trial = sub.trial_ends_at is not None and billing.start < sub.trial_ends_at
        segment = sub.segment_at(billing.start)
        plan = self._plan_at(segment.plan_key, billing.start)
        lines = () if in_trial else period_charges(plan, sub.interval, segment.seats, self.kits_used)
        return self._fact(Reason.CHARGE, billing, billing.start, charges=lines)

    def _base(self, index: int) -> Fact | None:
        sub = self.subscription
        period = sub.credit_calendar.period(index)
        segment = sub.segment_at(period.start)
        plan = self._plan_at(segment.plan_key, period.start)
        amount = monthly_credits(plan, segment.seats)
        if amount <= 0 or not plan.generation:
            return None
        grant = GrantCredits(
            amount=amount,
            kind=LotKind.BASE,
            effective_at=period.start,
            expires_at=period.end,
            products=plan.products,
            rollover=_rollover(plan),
            terms=LotTerms(source=LotSource.SUBSCRIPTION, currency=plan.currency),
        )
        return self._fact(Reason.BASE, period, period.start, payload=grant, credits=amount)


def _rollover(plan: Plan) -> RolloverRule | None:
    if plan.credit_policy is not CreditPolicy.ROLLOVER or plan.rollover_cap is None or not plan.rollover_cycles:
        return None
    return RolloverRule(plan.rollover_cap, plan.rollover_cycles)
