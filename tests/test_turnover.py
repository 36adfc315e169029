"""Period turnover, pure: the facts due for a subscription by a time, in order.

Worked examples (a month-end anchor, rollover and reset plans, an annual plan's monthly credits, a
trial, a downgrade and a cancel at the period's end, a catch-up), and properties for any anchor,
time zone, plan and pair of times: credit periods contiguous and non-overlapping, exactly one fact
per (period, reason), and turning over to t1 and then to t2 (in as many bounded runs as it takes)
gives exactly the facts of turning over to t2 in one go.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.billing.catalog import Catalog, CreditPolicy, Interval, Plan
from ledger.billing.charges import extra_kits, period_charges
from ledger.billing.subscription import PlanSegment, Subscription, SubscriptionStatus
from ledger.billing.turnover import Fact, Reason, RecordedFact, Turnover, command_time, due_facts
from ledger.core import bounds
from ledger.core.commands import AccessStatus, Expire, GrantCredits, LotKind, LotSource, RolloverRule, SetAccess
from ledger.core.money import MicroCredits

CREDIT = 1_000_000
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
CREATOR = Plan(
    "act3-creator", "Creator", EPOCH, prices={Interval.MONTHLY: Decimal(35)}, credits=MicroCredits(33_000 * CREDIT),
    credit_policy=CreditPolicy.ROLLOVER, rollover_cap=MicroCredits(66_000 * CREDIT), rollover_cycles=6, rank=2,
    storage_quota_gb=Decimal(100),
)  # fmt: skip
STARTER = Plan("act3-starter", "Starter", EPOCH, prices={Interval.MONTHLY: Decimal(0)},
               credits=MicroCredits(800 * CREDIT), trial_months=6, rank=1)  # fmt: skip
ARCHIVE = Plan("act3-archive", "Archive", EPOCH, prices={Interval.MONTHLY: Decimal(0)}, generation=False,
               media_purge_days=30, rank=0)  # fmt: skip
BUILD = Plan("meclabs-build", "BUILD", EPOCH, prices={Interval.MONTHLY: Decimal(495)},
             credits=MicroCredits(6_000 * CREDIT), kits_included=0, extra_kit_price=Decimal(20), rank=1)  # fmt: skip
TEAM = Plan(
    "seatsco-team", "Team", EPOCH, per_seat=True, credits_per_seat=MicroCredits(100 * CREDIT),
    prices={Interval.MONTHLY: Decimal(10), Interval.ANNUAL: Decimal(100)},
    products=frozenset({"ai-assistant", "ai-preview", "ai-summary"}),
)  # fmt: skip
# Creator's price goes up in 2029: periods from then on are charged the new version.
CREATOR_2029 = replace(CREATOR, effective_at=datetime(2029, 1, 1, tzinfo=UTC), prices={Interval.MONTHLY: Decimal(39)})
CATALOG = Catalog(
    plans={
        "act3-creator": (CREATOR, CREATOR_2029), "act3-starter": (STARTER,), "act3-archive": (ARCHIVE,),
        "meclabs-build": (BUILD,), "seatsco-team": (TEAM,),
    }
)  # fmt: skip
NEW_YORK = "America/New_York"


def local(year: int, month: int, day: int, timezone: str = NEW_YORK) -> datetime:
    return datetime(year, month, day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def subscription(
    plan: Plan,
    anchor: datetime,
    timezone: str = NEW_YORK,
    interval: Interval = Interval.MONTHLY,
    seats: int = 0,
    **more: object,
) -> Subscription:
    fields: dict[str, object] = {"status": SubscriptionStatus.ACTIVE, **more}
    return Subscription(
        id=uuid.uuid4(), organization_id=uuid.uuid4(), plan_key=plan.key, interval=interval, seats=seats,
        anchor=anchor, timezone=timezone, created_at=anchor, segments=(PlanSegment(anchor, plan.key, seats),),
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def of(turnover: Turnover, reason: Reason) -> list[Fact]:
    return [fact for fact in turnover.facts if fact.reason is reason]


def test_a_month_end_anchor_clamps_and_recovers_in_local_time_with_one_base_and_one_close_a_month() -> None:
    sub = subscription(CREATOR, local(2028, 1, 31))
    turnover = due_facts(sub, CATALOG, (), local(2028, 5, 15))
    bases = of(turnover, Reason.BASE)
    # Jan 31 -> Feb 29 -> Mar 31 -> Apr 30, each at local midnight across the DST change of March 12.
    assert [fact.period.start for fact in bases] == [
        local(2028, 1, 31), local(2028, 2, 29), local(2028, 3, 31), local(2028, 4, 30)
    ]  # fmt: skip
    assert [fact.period.end for fact in of(turnover, Reason.CLOSE)] == [local(2028, 2, 29), local(2028, 3, 31),
                                                                        local(2028, 4, 30)]  # fmt: skip
    assert bases[1].payload == GrantCredits(
        amount=MicroCredits(33_000 * CREDIT), kind=LotKind.BASE, effective_at=local(2028, 2, 29),
        expires_at=local(2028, 3, 31), rollover=RolloverRule(MicroCredits(66_000 * CREDIT), 6),
        terms=replace(bases[1].payload.terms, source=LotSource.SUBSCRIPTION),  # type: ignore[union-attr]
    )  # fmt: skip
    assert of(turnover, Reason.CLOSE)[0].payload == Expire(local(2028, 2, 29))
    # In order: each period's close comes before the next period's charge and grant.
    assert [fact.reason for fact in turnover.facts[:5]] == [
        Reason.CHARGE, Reason.BASE, Reason.CLOSE, Reason.CHARGE, Reason.BASE
    ]  # fmt: skip
    assert bases[0].key == f"period:{sub.id}:2028-01-31T05:00:00+00:00:base"
    assert turnover.next_due_at == local(2028, 5, 31) and turnover.decided_until == local(2028, 5, 15)


def test_each_period_is_priced_by_the_plan_version_in_force_at_its_start() -> None:
    sub = subscription(CREATOR, local(2028, 11, 30))
    charges = of(due_facts(sub, CATALOG, (), local(2029, 1, 30)), Reason.CHARGE)
    assert [fact.charges[0].amount for fact in charges] == [Decimal(35), Decimal(35), Decimal(39)]


def test_an_annual_plan_is_charged_yearly_and_granted_monthly_per_seat_for_its_products_only() -> None:
    sub = subscription(TEAM, local(2028, 2, 29, "Europe/Berlin"), "Europe/Berlin", Interval.ANNUAL, seats=4)
    turnover = due_facts(sub, CATALOG, (), local(2029, 3, 1, "Europe/Berlin"))
    bases = of(turnover, Reason.BASE)
    assert len(bases) == 13 and {fact.credits for fact in bases} == {400 * CREDIT}
    assert bases[0].payload.products == TEAM.products  # type: ignore[union-attr]
    assert bases[0].payload.rollover is None  # type: ignore[union-attr]  # use it or lose it
    charges = of(turnover, Reason.CHARGE)
    # A leap-day anchor: the next year starts on Feb 28, 2029 (clamped), local midnight.
    assert [fact.period.start for fact in charges] == [local(2028, 2, 29, "Europe/Berlin"),
                                                       local(2029, 2, 28, "Europe/Berlin")]  # fmt: skip
    assert [(line.kind, line.quantity, line.amount) for line in charges[0].charges] == [
        ("seats", Decimal(4), Decimal(400))
    ]


def test_extra_kits_are_charged_at_the_plan_price_and_a_free_period_charges_nothing() -> None:
    assert extra_kits(BUILD, 3) == 3 and extra_kits(CREATOR, 50) == 0
    lines = period_charges(BUILD, Interval.MONTHLY, 0, 3)
    assert [(line.kind, line.quantity, line.unit_price, line.amount) for line in lines] == [
        ("plan", Decimal(1), Decimal(495), Decimal(495)), ("kits", Decimal(3), Decimal(20), Decimal(60))
    ]  # fmt: skip
    assert period_charges(STARTER, Interval.MONTHLY, 0, 0) == ()


def test_a_trial_ends_access_and_stops_the_grants_while_closes_go_on() -> None:
    anchor = local(2028, 1, 31)
    sub = subscription(STARTER, anchor, status=SubscriptionStatus.TRIALING, trial_ends_at=local(2028, 7, 31))
    turnover = due_facts(sub, CATALOG, (), local(2028, 10, 1))
    assert len(of(turnover, Reason.BASE)) == 6  # Jan 31 to Jun 30: six periods of 800
    (trial_end,) = of(turnover, Reason.TRIAL_END)
    assert trial_end.at == local(2028, 7, 31) and trial_end.period.start == local(2028, 7, 31)
    assert trial_end.payload == SetAccess(AccessStatus.TRIAL_ENDED, "act3-starter", storage_quota_gb=None)
    assert len(of(turnover, Reason.CLOSE)) == 8  # Feb 29 to Sep 30: every month's end while it lives
    assert all(not fact.charges for fact in of(turnover, Reason.CHARGE))


def test_a_downgrade_applies_at_the_first_billing_boundary_after_it_was_asked_and_a_cancel_ends_all() -> None:
    anchor = local(2028, 3, 31)
    sub = subscription(CREATOR, anchor)
    first = due_facts(sub, CATALOG, (), local(2028, 4, 10))
    recorded = [RecordedFact(fact.period.start, fact.reason.value) for fact in first.facts]
    asked = replace(first.subscription, pending_plan_key="act3-archive")
    later = due_facts(asked, CATALOG, recorded, local(2028, 7, 1), decided_until=first.decided_until)
    (plan,) = of(later, Reason.PLAN)
    assert plan.at == local(2028, 4, 30) and plan.segment == PlanSegment(local(2028, 4, 30), "act3-archive", 0)
    assert plan.payload == SetAccess(AccessStatus.INACTIVE, "act3-archive")
    assert later.subscription.status is SubscriptionStatus.ARCHIVED
    assert later.subscription.media_purge_at == local(2028, 5, 30)
    assert not [fact for fact in of(later, Reason.BASE) if fact.at >= plan.at]  # Archive grants nothing
    canceled = replace(later.subscription, cancel_at_period_end=True)
    recorded += [RecordedFact(fact.period.start, fact.reason.value) for fact in later.facts]
    end = due_facts(canceled, CATALOG, recorded, local(2029, 1, 1), decided_until=later.decided_until)
    assert [fact.reason for fact in end.facts] == [Reason.CLOSE, Reason.END]
    assert end.subscription.status is SubscriptionStatus.CANCELED and end.subscription.ends_at == local(2028, 7, 31)
    assert end.next_due_at is None
    assert due_facts(end.subscription, CATALOG, (), local(2030, 1, 1)).facts == ()


def test_a_change_after_a_time_was_decided_never_reaches_back_before_it() -> None:
    sub = subscription(STARTER, local(2028, 1, 31), trial_ends_at=local(2028, 7, 31))
    first = due_facts(sub, CATALOG, (), local(2028, 9, 10))
    recorded = [RecordedFact(fact.period.start, fact.reason.value) for fact in first.facts]
    # An upgrade on Sep 10 clears the trial: the grants start again from the next period, not back in August.
    upgraded = replace(first.subscription, trial_ends_at=None, plan_key="act3-creator",
                       segments=(*sub.segments, PlanSegment(local(2028, 9, 10), "act3-creator", 0)))  # fmt: skip
    later = due_facts(upgraded, CATALOG, recorded, local(2028, 10, 5), decided_until=first.decided_until)
    assert [(fact.reason, fact.at, fact.credits) for fact in later.facts if fact.reason is not Reason.CLOSE] == [
        (Reason.CHARGE, local(2028, 9, 30), None), (Reason.BASE, local(2028, 9, 30), 33_000 * CREDIT)
    ]  # fmt: skip


def test_a_long_outage_is_caught_up_in_order_in_bounded_runs() -> None:
    sub = subscription(BUILD, local(2028, 1, 31, "Europe/Berlin"), "Europe/Berlin")
    first = due_facts(sub, CATALOG, (), local(2029, 6, 1, "Europe/Berlin"), limit=10)
    assert 7 <= len(first.facts) <= 10 and first.next_due_at is not None and first.next_due_at < local(2029, 1, 1)
    # The cut falls between two times, never inside one.
    assert first.facts[-1].at < first.next_due_at
    # A fact more than the ledger's backdating window late is received at the window's edge.
    late = first.facts[0]
    assert command_time(late.at, late.at + timedelta(days=500)) == late.at + bounds.BACKDATE_MAX - timedelta(days=1)


def test_a_plan_missing_from_the_catalog_blocks_the_walk_where_it_is_needed() -> None:
    sub = subscription(BUILD, local(2028, 1, 31), pending_plan_key="meclabs-gone")
    turnover = due_facts(sub, CATALOG, (), local(2028, 6, 1))
    assert turnover.blocked is not None and "meclabs-gone" in turnover.blocked
    assert turnover.next_due_at == local(2028, 2, 29) and len(turnover.facts) == 2


# --- properties ------------------------------------------------------------------------------------

ZONES = ("America/New_York", "Europe/Berlin", "UTC", "Australia/Lord_Howe", "Asia/Kathmandu")
ANCHOR_DAYS = (datetime(2028, 1, 31), datetime(2028, 2, 29), datetime(2028, 3, 31), datetime(2027, 11, 7, 1, 30))


@st.composite
def subscriptions(draw: st.DrawFn) -> Subscription:
    timezone = draw(st.sampled_from(ZONES))
    wall = draw(st.sampled_from(ANCHOR_DAYS)) + timedelta(minutes=draw(st.integers(0, 24 * 60 - 1)))
    plan = draw(st.sampled_from((CREATOR, STARTER, BUILD, TEAM)))
    interval = draw(st.sampled_from(tuple(plan.prices)))
    anchor = wall.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    trial = anchor + timedelta(days=draw(st.integers(1, 400))) if draw(st.booleans()) else None
    return subscription(
        plan, anchor, timezone, interval, seats=draw(st.integers(0, 5)), trial_ends_at=trial,
        pending_plan_key=draw(st.sampled_from((None, "act3-archive", "meclabs-build"))),
        cancel_at_period_end=draw(st.booleans()),
    )  # fmt: skip


def turn_over(sub: Subscription, until: datetime | None, now: datetime, limit: int) -> list[Fact]:
    """Run after run until nothing more is due by `now`, recording each run's facts."""
    facts: list[Fact] = []
    for _ in range(1_000):
        recorded = [RecordedFact(fact.period.start, fact.reason.value) for fact in facts]
        turnover = due_facts(sub, CATALOG, recorded, now, decided_until=until, limit=limit)
        facts += turnover.facts
        sub, until = turnover.subscription, turnover.decided_until
        if turnover.next_due_at is None or turnover.next_due_at > now:
            return facts
    raise AssertionError("turnover never caught up")


@settings(max_examples=150, deadline=None)
@given(subscriptions(), st.integers(0, 40 * 24 * 31), st.integers(0, 40 * 24 * 31), st.integers(1, 12))
def test_turnover_in_steps_is_turnover_in_one_go(sub: Subscription, first_h: int, more_h: int, limit: int) -> None:
    t1 = sub.anchor - timedelta(days=3) + timedelta(hours=first_h)
    t2 = t1 + timedelta(hours=more_h)
    whole = due_facts(sub, CATALOG, (), t2, limit=10_000)
    assert whole.next_due_at is None or whole.next_due_at > t2
    first = due_facts(sub, CATALOG, (), t1, limit=10_000)
    recorded = [RecordedFact(fact.period.start, fact.reason.value) for fact in first.facts]
    rest = due_facts(first.subscription, CATALOG, recorded, t2, decided_until=first.decided_until, limit=10_000)
    assert first.facts + rest.facts == whole.facts
    assert rest.subscription == whole.subscription
    # Bounded runs give the same facts as unbounded ones.
    assert turn_over(sub, None, t2, limit) == list(whole.facts)

    keys = [fact.key for fact in whole.facts]
    assert len(keys) == len(set(keys)), "one fact per (period, reason)"
    assert [fact.at for fact in whole.facts] == sorted(fact.at for fact in whole.facts)
    assert all(fact.at <= t2 for fact in whole.facts)
    closes = [fact.period for fact in whole.facts if fact.reason is Reason.CLOSE]
    bases = [fact.period for fact in whole.facts if fact.reason is Reason.BASE]
    for periods in (closes, bases):
        for before, after in itertools.pairwise(periods):
            assert before.end <= after.start, "periods never overlap"
    # Closes come every month from the anchor without a gap: contiguous periods, in order.
    assert [period.index for period in closes] == list(range(len(closes)))
    for before, after in itertools.pairwise(closes):
        assert before.end == after.start
    # Every base lot is closed at its period's end, once its end has come.
    assert {period.index for period in bases if period.end <= t2} <= {period.index for period in closes}
