"""The pure core of the credit model: consumption order, at-zero policies, holds, quotes, rates,
budgets and caps, transfers, rollover, refunds, credit-backs, adjustments, and the wire format.

Every step goes through `check`, which holds each accepted command to double entry (its postings
sum to zero) and each rejected one to changing nothing."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from ledger.core import commands, validation, wire
from ledger.core.apply import apply
from ledger.core.charge import Spender
from ledger.core.commands import (
    AccessStatus,
    AdjustCredits,
    AlertKind,
    AtZero,
    CaptureHold,
    Command,
    CreditBack,
    Envelope,
    Expire,
    GrantCredits,
    IssueQuote,
    LotKind,
    LotSource,
    LotTerms,
    Payload,
    Period,
    PlaceHold,
    RaiseBillingAlert,
    RecordUsage,
    RefundLot,
    ReleaseHold,
    RemoveAlert,
    ResetLots,
    RevenueTreatment,
    RevokeCredits,
    RolloverRule,
    SetAccess,
    SetAlert,
    SetKindPriorities,
    SetMemberLimits,
    SetRate,
    SetSpendingPolicy,
    SetStorageUsage,
    SetSuspension,
    SetTeamBudget,
    TransferCredits,
)
from ledger.core.entries import Applied, Status
from ledger.core.errors import InvalidCommand
from ledger.core.money import ZERO, MicroCredits
from ledger.core.spending import estimate
from ledger.core.state import Debit, HoldStatus, OrgState, Rate, add_months

ORG = UUID("00000000-0000-4000-8000-000000000002")
TEAM = UUID("00000000-0000-4000-8000-0000000000a1")
TEAM_B = UUID("00000000-0000-4000-8000-0000000000b2")
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
FEB, MAR = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
RATES = {"sms": (Rate("sms", Decimal(1)),), "tokens": (Rate("tokens", Decimal("0.001")),)}


def credits(whole: int) -> MicroCredits:
    return MicroCredits(whole * 1_000_000)


def command(payload: Payload, at: datetime = T0, key: str = "k") -> Command:
    return Command(Envelope(uuid.uuid4(), ORG, key, at), payload)


def org() -> OrgState:
    return OrgState(ORG, rate_card=RATES, teams=frozenset({TEAM, TEAM_B}))


def check(state: OrgState, step: Applied) -> Applied:
    """Accepted: postings balance. Rejected: no postings, the very same state."""
    if step.result.status is Status.ACCEPTED:
        assert sum(p.amount for p in step.postings) == 0, step.postings
    else:
        assert step.postings == ()
        assert step.state is state
    return step


def send(state: OrgState, sent: Command) -> Applied:
    step = check(state, apply(state, sent))
    assert step.result.status is Status.ACCEPTED, step.result
    return step


def ok(state: OrgState, payload: Payload, at: datetime = T0) -> Applied:
    return send(state, command(payload, at))


def refused(state: OrgState, payload: Payload, code: str, at: datetime = T0) -> Applied:
    step = check(state, apply(state, command(payload, at)))
    assert (step.result.status, step.result.code) == (Status.REJECTED, code), step.result
    return step


def grant(state: OrgState, amount: int, kind: LotKind = LotKind.BASE, **options: object) -> tuple[OrgState, UUID]:
    step = ok(state, GrantCredits(credits(amount), kind, **options))  # type: ignore[arg-type]
    return step.state, step.new_lots[0].id


def remaining(state: OrgState, *lot_ids: UUID) -> list[int]:
    by_id = {lot.id: lot.remaining for lot in state.lots}
    return [by_id[lot_id] for lot_id in lot_ids]


def lot_moves(step: Applied) -> dict[UUID, int]:
    moves: dict[UUID, int] = {}
    for p in step.postings:
        if p.lot_id is not None:
            moves[p.lot_id] = moves.get(p.lot_id, 0) + p.amount
    return moves


def legs(step: Applied) -> list[tuple[str, int]]:
    """The postings on accounts other than a lot's, in order."""
    return [(p.account, p.amount) for p in step.postings if p.account != "lot"]


def usage(quantity: int | str, product: str = "sms", **options: object) -> RecordUsage:
    return RecordUsage(product, Decimal(quantity), **options)  # type: ignore[arg-type]


# --- consumption order -------------------------------------------------------------------------
def test_bonus_then_base_then_purchased() -> None:
    state, purchased = grant(org(), 10, LotKind.PURCHASED)
    state, base = grant(state, 10, LotKind.BASE, expires_at=T0 + 30 * DAY)
    state, bonus = grant(state, 10, LotKind.BONUS, expires_at=T0 + 90 * DAY)
    used = ok(state, usage(25))
    assert lot_moves(used) == {bonus: -credits(10), base: -credits(10), purchased: -credits(5)}
    assert legs(used) == [("usage:sms", credits(25))]
    assert remaining(used.state, bonus, base, purchased) == [0, 0, credits(5)]
    assert used.result.balance_after == credits(5)


def test_team_lots_go_before_the_pool_and_the_pool_cannot_use_them() -> None:
    state, pool = grant(org(), 10, LotKind.BONUS)  # a lower priority than the team's base lot
    state, team = grant(state, 10, team_id=TEAM)
    used = ok(state, usage(15, team_id=TEAM))
    assert lot_moves(used) == {team: -credits(10), pool: -credits(5)}
    assert used.state.balance(T0, TEAM).total == 0
    # Without a team, only the pool: 10 credits of 20 in the org.
    refused(state, usage(11), "INSUFFICIENT_CREDITS")
    refused(state, usage(1, team_id=uuid.uuid4()), "NOT_FOUND")


def test_lots_for_other_products_are_skipped() -> None:
    state, tokens_only = grant(org(), 10, LotKind.BONUS, products=frozenset({"tokens"}))
    state, general = grant(state, 10)
    sms = ok(state, usage(4))
    assert lot_moves(sms) == {general: -credits(4)}
    tokens = ok(sms.state, usage(12_000, "tokens"))
    assert lot_moves(tokens) == {tokens_only: -credits(10), general: -credits(2)}
    refused(tokens.state, usage(5), "INSUFFICIENT_CREDITS")  # 4 left for sms


def test_member_without_shared_credits_spends_only_team_lots() -> None:
    state, _ = grant(org(), 100)
    state, team = grant(state, 5, team_id=TEAM)
    state = ok(state, SetMemberLimits("alice", shared_credits=False)).state
    refused(state, usage(6, team_id=TEAM, user_id="alice"), "INSUFFICIENT_CREDITS")
    refused(state, usage(1, user_id="alice"), "INSUFFICIENT_CREDITS")
    assert lot_moves(ok(state, usage(5, team_id=TEAM, user_id="alice"))) == {team: -credits(5)}
    ok(state, usage(50, user_id="bob"))


# --- at zero -----------------------------------------------------------------------------------
def test_block_rejects_and_overage_applies_posting_the_uncovered_part() -> None:
    state = ok(org(), SetRate("sms", T0, Decimal(1), overage_price_per_unit=Decimal("0.02"))).state
    state, base = grant(state, 10)
    blocked = refused(state, usage(15), "INSUFFICIENT_CREDITS")  # BLOCK by default: nothing changes
    assert (blocked.result.balance_after, blocked.result.credits_charged) == (credits(10), 0)
    state = ok(state, SetSpendingPolicy(AtZero.OVERAGE)).state
    used = ok(state, usage(15))
    assert lot_moves(used) == {base: -credits(10)}
    assert legs(used) == [("overage:sms", -credits(5)), ("usage:sms", credits(15))]
    assert used.result.credits_charged == credits(15)
    assert used.result.balance_after == 0
    details = used.result.details
    assert (details["overage_credits"], details["overage_amount"], details["currency"]) == ("5", "0.100000", "USD")


def test_credit_limit_goes_negative_down_to_the_limit_and_grants_repay_it() -> None:
    state = ok(org(), SetSpendingPolicy(AtZero.CREDIT_LIMIT, credit_limit=credits(20))).state
    state, base = grant(state, 10)
    drawn = ok(state, usage(25))
    assert legs(drawn) == [("credit_line", -credits(15)), ("usage:sms", credits(25))]
    assert (drawn.state.credit_drawn, drawn.result.balance_after) == (credits(15), -credits(15))
    at_limit = ok(drawn.state, usage(5))
    assert at_limit.state.balance(T0).total == -credits(20)
    refused(at_limit.state, usage(1), "INSUFFICIENT_CREDITS")

    repaid = ok(at_limit.state, GrantCredits(credits(50)))
    (new,) = repaid.new_lots
    assert legs(repaid) == [("issuance:base", -credits(50)), ("credit_line", credits(20))]
    assert lot_moves(repaid) == {new.id: credits(30)}
    assert (repaid.state.credit_drawn, remaining(repaid.state, new.id, base)) == (0, [credits(30), 0])
    assert repaid.result.balance_after == credits(30)


def test_a_grant_effective_later_does_not_repay_the_credit_line_now() -> None:
    state = ok(org(), SetSpendingPolicy(AtZero.CREDIT_LIMIT, credit_limit=credits(20))).state
    state = ok(state, usage(20)).state
    state = ok(state, GrantCredits(credits(50), effective_at=FEB)).state
    assert (state.credit_drawn, state.balance(T0).total) == (credits(20), -credits(20))
    refused(state, usage(1), "INSUFFICIENT_CREDITS")


# --- holds -------------------------------------------------------------------------------------
def held(state: OrgState, amount: int, **options: object) -> tuple[OrgState, UUID]:
    step = ok(state, PlaceHold(credits(amount), T0 + HOUR, **options))  # type: ignore[arg-type]
    return step.state, UUID(step.result.details["hold_id"])


def hold_legs(steps: list[Applied], hold_id: UUID) -> list[int]:
    return [p.amount for step in steps for p in step.postings if p.account == "hold" and p.hold_id == hold_id]


def test_a_hold_fences_credits_without_spending_them() -> None:
    state, base = grant(org(), 100)
    placed = ok(state, PlaceHold(credits(60), T0 + HOUR))
    hold_id = UUID(placed.result.details["hold_id"])
    assert legs(placed) == [("hold", credits(60)), ("hold:offset", -credits(60))]
    assert placed.postings[0].hold_id == hold_id
    balance = placed.state.balance(T0)
    assert (balance.total, balance.held, balance.available) == (credits(100), credits(60), credits(40))
    assert remaining(placed.state, base) == [credits(100)]
    # Others cannot take what is held, but may take what is not.
    refused(placed.state, usage(41), "INSUFFICIENT_CREDITS")
    after = ok(placed.state, usage(40)).state.balance(T0)
    assert (after.total, after.held, after.available) == (credits(60), credits(60), 0)
    refused(state, PlaceHold(credits(101), T0 + HOUR), "INSUFFICIENT_CREDITS")


def test_captures_charge_the_hold_and_the_final_one_releases_the_rest() -> None:
    state, base = grant(org(), 100)
    placed = ok(state, PlaceHold(credits(60), T0 + HOUR))
    hold_id = UUID(placed.result.details["hold_id"])
    first = ok(placed.state, CaptureHold(hold_id, amount=credits(20)))
    assert legs(first) == [("usage:hold", credits(20)), ("hold", -credits(20)), ("hold:offset", credits(20))]
    assert first.result.credits_charged == credits(20)
    second = ok(first.state, CaptureHold(hold_id, amount=credits(15)))
    hold = second.state.holds[hold_id]
    assert (hold.reserved, hold.captured, hold.status) == (credits(25), credits(35), HoldStatus.OPEN)
    assert second.state.balance(T0).held == credits(25)
    final = ok(second.state, CaptureHold(hold_id, amount=credits(5), final=True))
    hold = final.state.holds[hold_id]
    assert (hold.reserved, hold.captured, hold.status) == (0, credits(40), HoldStatus.FINISHED)
    assert hold_legs([placed, first, second, final], hold_id) == [credits(60), -credits(20), -credits(15), -credits(25)]
    assert remaining(final.state, base) == [credits(60)]
    assert final.state.balance(T0).held == 0
    refused(final.state, CaptureHold(hold_id, amount=credits(1)), "HOLD_CLOSED")


def test_capture_by_quantity_prices_the_holds_product() -> None:
    state, _ = grant(org(), 100)
    state, hold_id = held(state, 10, product="tokens")
    captured = ok(state, CaptureHold(hold_id, quantity=Decimal(4000)))
    assert legs(captured)[0] == ("usage:tokens", credits(4))
    assert captured.result.details["credits_per_unit"] == "0.001"
    assert captured.state.holds[hold_id].reserved == credits(6)
    state, no_product = held(state, 10)
    refused(state, CaptureHold(no_product, quantity=Decimal(1)), "INVALID_INPUT")


def test_capture_beyond_the_reservation_only_from_free_credits_and_up_to_the_cap() -> None:
    state, _ = grant(org(), 100)
    state, first = held(state, 30, cap=credits(55))
    state, _ = held(state, 50)
    refused(state, CaptureHold(first, amount=credits(56)), "CAP_EXCEEDED")
    over = ok(state, CaptureHold(first, amount=credits(50)))  # 20 free credits beyond its 30
    assert (over.result.credits_charged, over.state.holds[first].reserved) == (credits(50), 0)
    assert hold_legs([over], first) == [-credits(30)]
    refused(over.state, CaptureHold(first, amount=credits(1)), "INSUFFICIENT_CREDITS")  # the rest is held
    assert over.state.balance(T0).available == 0
    refused(ok(state, usage(20)).state, CaptureHold(first, amount=credits(31)), "INSUFFICIENT_CREDITS")


def test_released_and_timed_out_holds_are_closed() -> None:
    state, _ = grant(org(), 100)
    state, hold_id = held(state, 60)
    released = ok(state, ReleaseHold(hold_id))
    assert legs(released) == [("hold", -credits(60)), ("hold:offset", credits(60))]
    assert released.state.holds[hold_id].status is HoldStatus.RELEASED
    assert released.state.balance(T0).available == credits(100)
    refused(released.state, CaptureHold(hold_id, amount=credits(1)), "HOLD_CLOSED")
    refused(released.state, ReleaseHold(hold_id), "HOLD_CLOSED")
    refused(state, CaptureHold(hold_id, amount=credits(1)), "HOLD_CLOSED", at=T0 + HOUR)
    refused(state, CaptureHold(uuid.uuid4(), amount=credits(1)), "NOT_FOUND")


def test_expire_releases_what_expired_holds_still_reserve() -> None:
    state, _ = grant(org(), 100)
    placed = ok(state, PlaceHold(credits(60), T0 + HOUR))
    hold_id = UUID(placed.result.details["hold_id"])
    captured = ok(placed.state, CaptureHold(hold_id, amount=credits(20)))
    early = ok(captured.state, Expire(T0 + HOUR - timedelta(seconds=1)), at=T0 + HOUR)
    assert early.postings == ()
    expired = ok(captured.state, Expire(T0 + HOUR), at=T0 + HOUR)
    assert legs(expired) == [("hold", -credits(40)), ("hold:offset", credits(40))]
    assert expired.state.holds[hold_id].status is HoldStatus.EXPIRED
    assert sum(hold_legs([placed, captured, expired], hold_id)) == 0
    assert expired.result.balance_after == credits(80)


def test_a_team_cannot_spend_pool_credits_held_for_the_pool() -> None:
    state, _ = grant(org(), 50)
    state, _ = grant(state, 50, team_id=TEAM_B)  # only TEAM_B may spend these
    state, _ = held(state, 50)  # a pool job holds the whole pool
    refused(state, usage(50, team_id=TEAM), "INSUFFICIENT_CREDITS")


# --- quotes and estimates ----------------------------------------------------------------------
def quoted(state: OrgState, quantity: int, product: str = "sms", expires_at: datetime = T0 + HOUR) -> Applied:
    return ok(state, IssueQuote(product, Decimal(quantity), expires_at))


def test_quotes_and_estimates_say_whether_the_org_can_afford_it() -> None:
    state, _ = grant(org(), 10)
    issued = quoted(state, 4)
    quote_id = UUID(issued.result.details["quote_id"])
    quote = issued.state.quotes[quote_id]
    assert (quote.amount, quote.credits_per_unit, quote.used_by) == (credits(4), Decimal(1), None)
    assert (issued.result.details["credits"], issued.result.details["affordable"]) == ("4", "true")
    assert (issued.postings, issued.state.lots) == ((), state.lots)
    assert quoted(state, 11).result.details["affordable"] == "false"
    # An estimate prices the same way but binds nothing.
    now, too_much = estimate(state, Spender(T0, "sms"), Decimal(4)), estimate(state, Spender(T0, "sms"), Decimal(11))
    assert (now.credits, now.affordable, now.code) == (credits(4), True, None)
    assert (too_much.credits, too_much.affordable, too_much.code) == (credits(11), False, "INSUFFICIENT_CREDITS")
    assert estimate(state, Spender(T0, "sms", team_id=uuid.uuid4()), Decimal(1)).code == "NOT_FOUND"


def test_a_quote_binds_its_price_for_one_use_before_it_expires() -> None:
    state, _ = grant(org(), 100)
    issued = quoted(state, 5)
    quote_id = UUID(issued.result.details["quote_id"])
    state = ok(issued.state, SetRate("sms", T0, Decimal(2))).state
    assert ok(state, usage(5)).result.credits_charged == credits(10)
    use = command(usage(5, quote_id=quote_id))
    used = send(state, use)
    assert used.result.credits_charged == credits(5)
    assert used.result.details["credits_per_unit"] == "1"
    assert used.state.quotes[quote_id].used_by == use.envelope.command_id
    refused(used.state, usage(5, quote_id=quote_id), "QUOTE_UNUSABLE")  # used
    refused(state, usage(5, quote_id=quote_id), "QUOTE_UNUSABLE", at=T0 + HOUR)  # expired
    refused(state, usage(5, "tokens", quote_id=quote_id), "QUOTE_UNUSABLE")  # another product
    refused(state, usage(6, quote_id=quote_id), "QUOTE_UNUSABLE")  # more than it quoted
    assert ok(state, usage(3, quote_id=quote_id)).result.credits_charged == credits(3)  # less, at its rate
    refused(state, usage(5, quote_id=uuid.uuid4()), "NOT_FOUND")


# --- rates -------------------------------------------------------------------------------------
def test_a_rate_version_applies_from_its_effective_time() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, SetRate("sms", T0 + 10 * DAY, Decimal(2), cost_per_unit=Decimal("0.0075"))).state
    before = ok(state, usage(3), at=T0 + 10 * DAY - timedelta(seconds=1))
    assert before.result.credits_charged == credits(3)
    assert "cost" not in before.result.details
    after = ok(state, usage(3), at=T0 + 10 * DAY)
    assert after.result.credits_charged == credits(6)
    assert (after.result.details["cost"], after.result.details["currency"]) == ("0.022500", "USD")
    late = ok(state, usage(3, occurred_at=T0), at=T0 + 10 * DAY)  # priced when it happened
    assert late.result.credits_charged == credits(3)


# --- budgets and caps --------------------------------------------------------------------------
def test_team_budget_caps_monthly_spend() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, SetTeamBudget(TEAM, credits(10))).state
    state = ok(state, usage(8, team_id=TEAM)).state
    refused(state, usage(3, team_id=TEAM), "CAP_EXCEEDED")
    ok(state, usage(3))  # the pool itself is not budgeted
    assert state.spend == {(f"team:{TEAM}", T0): credits(8)}
    february = ok(state, usage(3, team_id=TEAM), at=FEB + DAY).state
    assert february.spend[(f"team:{TEAM}", FEB)] == credits(3)
    unbudgeted = ok(state, SetTeamBudget(TEAM, None)).state
    ok(unbudgeted, usage(50, team_id=TEAM))
    refused(state, SetTeamBudget(uuid.uuid4(), credits(1)), "NOT_FOUND")


def test_member_cap_counts_per_user_and_period() -> None:
    state, _ = grant(org(), 100)
    state = ok(state, SetMemberLimits("alice", cap=credits(5), period=Period.DAY)).state
    state = ok(state, usage(5, user_id="alice")).state
    refused(state, usage(1, user_id="alice"), "CAP_EXCEEDED")
    state = ok(state, usage(7, user_id="bob")).state
    assert state.spend == {("user:alice", T0): credits(5)}
    tomorrow = ok(state, usage(1, user_id="alice"), at=T0 + DAY).state
    assert tomorrow.spend[("user:alice", T0 + DAY)] == credits(1)


# --- transfers ---------------------------------------------------------------------------------
def test_transfers_between_pool_and_team_keep_each_parts_terms() -> None:
    promo = LotTerms(source=LotSource.PROMOTION, revenue_treatment=RevenueTreatment.MARKETING)
    state, bonus = grant(org(), 10, LotKind.BONUS, expires_at=T0 + 30 * DAY, terms=promo)
    state, purchased = grant(state, 20, LotKind.PURCHASED)
    out = ok(state, TransferCredits(credits(15), to_team_id=TEAM))
    first, second = out.new_lots
    assert (first.parent_id, first.kind, first.expires_at, first.terms) == (bonus, LotKind.BONUS, T0 + 30 * DAY, promo)
    assert (second.parent_id, second.kind, second.expires_at) == (purchased, LotKind.PURCHASED, None)
    assert [(n.team_id, n.amount) for n in out.new_lots] == [(TEAM, credits(10)), (TEAM, credits(5))]
    assert lot_moves(out) == {bonus: -credits(10), first.id: credits(10), purchased: -credits(5), second.id: credits(5)}
    assert (out.state.balance(T0, TEAM).total, out.state.balance(T0).total) == (credits(15), credits(30))
    back = ok(out.state, TransferCredits(credits(12), from_team_id=TEAM))
    expected = [(first.id, None, credits(10)), (second.id, None, credits(2))]
    assert [(n.parent_id, n.team_id, n.amount) for n in back.new_lots] == expected
    assert back.state.balance(T0, TEAM).total == credits(3)
    # Refusals: more than the pool or team has, an unknown team, credits the pool's holds fence.
    refused(state, TransferCredits(credits(31), to_team_id=TEAM), "INSUFFICIENT_CREDITS")
    refused(out.state, TransferCredits(credits(16), from_team_id=TEAM), "INSUFFICIENT_CREDITS")
    refused(state, TransferCredits(credits(1), to_team_id=uuid.uuid4()), "NOT_FOUND")
    state, _ = held(state, 10)
    refused(state, TransferCredits(credits(21), to_team_id=TEAM), "INSUFFICIENT_CREDITS")
    ok(state, TransferCredits(credits(20), to_team_id=TEAM))


# --- expiry, rollover, reset -------------------------------------------------------------------
def test_rollover_banks_the_remainder_up_to_the_cap() -> None:
    monthly = RolloverRule(cap=credits(30), cycles=2)
    state, january = grant(org(), 100, expires_at=FEB, rollover=monthly)
    state = ok(state, usage(60)).state
    ended = ok(state, Expire(FEB), at=FEB)
    (bank,) = ended.new_lots
    assert lot_moves(ended) == {january: -credits(40), bank.id: credits(30)}
    assert legs(ended) == [("breakage:base", credits(10))]
    assert (bank.kind, bank.priority, bank.parent_id) == (LotKind.ROLLOVER, 300, january)
    assert (bank.effective_at, bank.expires_at) == (FEB, add_months(FEB, 2))
    assert bank.terms.source is LotSource.ROLLOVER
    # The bank is spent after the month's base credits.
    state, february = grant(ended.state, 50, expires_at=MAR, rollover=monthly)
    spent = ok(state, usage(60), at=FEB + DAY)
    assert lot_moves(spent) == {february: -credits(50), bank.id: -credits(10)}


def test_one_expiry_run_ends_each_period_in_turn_against_the_cap() -> None:
    monthly = RolloverRule(cap=credits(30), cycles=2)
    state, january = grant(org(), 100, expires_at=FEB, rollover=monthly)
    state, february = grant(state, 20, effective_at=FEB, expires_at=MAR, rollover=monthly)
    ended = ok(state, Expire(MAR), at=MAR)
    (bank,) = ended.new_lots  # January's remainder fills the bank; February's is all breakage
    assert (bank.parent_id, bank.remaining) == (january, credits(30))
    assert legs(ended) == [("breakage:base", credits(70)), ("breakage:base", credits(20))]
    assert remaining(ended.state, january, february) == [0, 0]
    assert ok(ended.state, Expire(add_months(FEB, 2)), at=add_months(FEB, 2)).result.balance_after == 0


def test_reset_ends_the_pools_base_lots_now() -> None:
    at = T0 + 5 * DAY
    state, base = grant(org(), 50, expires_at=FEB, rollover=RolloverRule(credits(20), 1))
    state, bonus = grant(state, 10, LotKind.BONUS)
    state, team = grant(state, 10, team_id=TEAM)
    reset = ok(state, ResetLots(), at=at)
    (bank,) = reset.new_lots
    assert lot_moves(reset) == {base: -credits(50), bank.id: credits(20)}
    assert legs(reset) == [("breakage:base", credits(30))]
    assert bank.expires_at == add_months(at, 1)
    assert remaining(reset.state, bonus, team) == [credits(10), credits(10)]


# --- refunds, credit-backs, adjustments --------------------------------------------------------
def test_refund_takes_back_a_refundable_lots_remainder() -> None:
    paid = LotTerms(LotSource.PAYMENT, refundable=True, price_per_credit=Decimal("0.01"), currency="USD")
    state, purchased = grant(org(), 100, LotKind.PURCHASED, terms=paid)
    state, free = grant(state, 10, LotKind.BONUS)
    state = ok(state, usage(70)).state
    refund = ok(state, RefundLot(purchased, "cancelled"))
    assert lot_moves(refund) == {purchased: -credits(40)}
    assert legs(refund) == [("refund:purchased", credits(40))]
    details = refund.result.details
    assert (details["credits_refunded"], details["amount_refunded"], details["currency"]) == ("40", "0.400000", "USD")
    refused(refund.state, RefundLot(purchased), "NOT_REVERSIBLE")  # nothing left
    refused(state, RefundLot(free), "NOT_REVERSIBLE")
    refused(state, RefundLot(uuid.uuid4()), "NOT_FOUND")


def debit_of(tx: Command, step: Applied, uncovered: int = 0, account: str | None = None) -> Debit:
    """What the store would load for a committed usage: the lot legs as taken."""
    assert isinstance(tx.payload, RecordUsage)
    legs_taken = tuple((p.lot_id, MicroCredits(-p.amount)) for p in step.postings if p.lot_id is not None)
    return Debit(
        tx.envelope.command_id, tx.payload.product, step.result.credits_charged, legs_taken,
        MicroCredits(uncovered), account, tx.at, tx.payload.team_id, tx.payload.user_id,
    )  # fmt: skip


def test_credit_back_returns_credits_to_the_very_lots() -> None:
    state, bonus = grant(org(), 10, LotKind.BONUS, expires_at=FEB)
    state, base = grant(state, 100)
    state = ok(state, SetTeamBudget(TEAM, credits(50))).state
    tx = command(usage(15, team_id=TEAM))
    used = send(state, tx)
    state = replace(used.state, debits={tx.envelope.command_id: debit_of(tx, used)})
    back = ok(state, CreditBack(tx.envelope.command_id, "job failed"))
    assert lot_moves(back) == {bonus: credits(10), base: credits(5)}
    assert legs(back) == [("usage:sms", -credits(15))]
    assert back.result.credits_charged == -credits(15)
    assert remaining(back.state, bonus, base) == [credits(10), credits(100)]
    assert back.state.spend[(f"team:{TEAM}", T0)] == 0
    assert back.state.debits[tx.envelope.command_id].reversed
    refused(back.state, CreditBack(tx.envelope.command_id), "NOT_REVERSIBLE")
    refused(state, CreditBack(uuid.uuid4()), "NOT_FOUND")


def test_credit_back_of_overage_cancels_it() -> None:
    state = ok(org(), SetSpendingPolicy(AtZero.OVERAGE)).state
    state, base = grant(state, 10)
    tx = command(usage(15))
    used = send(state, tx)
    state = replace(used.state, debits={tx.envelope.command_id: debit_of(tx, used, credits(5), "overage")})
    back = ok(state, CreditBack(tx.envelope.command_id))
    assert legs(back) == [("overage:sms", credits(5)), ("usage:sms", -credits(15))]
    assert remaining(back.state, base) == [credits(10)]


def test_credit_back_after_a_grant_repaid_the_credit_line_balances() -> None:
    state = ok(org(), SetSpendingPolicy(AtZero.CREDIT_LIMIT, credit_limit=credits(20))).state
    state, _ = grant(state, 10)
    tx = command(usage(25))
    used = send(state, tx)
    state, _ = grant(used.state, 5)  # repays 5 of the 15 drawn
    state = replace(state, debits={tx.envelope.command_id: debit_of(tx, used, credits(15), "credit_line")})
    back = ok(state, CreditBack(tx.envelope.command_id))  # postings must sum to zero
    assert (back.state.credit_drawn, back.state.balance(T0).total) == (0, credits(15))


def test_adjustments_add_a_lot_or_debit_in_consumption_order() -> None:
    state, bonus = grant(org(), 10, LotKind.BONUS)
    state, base = grant(state, 10)
    added = ok(state, AdjustCredits(credits(5), "goodwill"))
    (new,) = added.new_lots
    assert (new.kind, new.priority, new.expires_at, new.amount) == (LotKind.ADJUSTMENT, 500, None, credits(5))
    assert added.result.details["lot_id"] == str(new.id)
    assert legs(added) == [("issuance:adjustment", -credits(5))]
    removed = ok(added.state, AdjustCredits(credits(-15), "double grant"))
    assert lot_moves(removed) == {bonus: -credits(10), base: -credits(5)}
    assert legs(removed) == [("adjustment", credits(15))]
    refused(removed.state, AdjustCredits(credits(-11), "too much"), "INSUFFICIENT_CREDITS")
    refused(state, AdjustCredits(credits(1), "x", team_id=uuid.uuid4()), "NOT_FOUND")


# --- wire format and validation ----------------------------------------------------------------

SOME_ID = UUID("00000000-0000-4000-8000-0000000000c3")
LATER = T0 + DAY
SAMPLES: list[Payload] = [
    GrantCredits(
        credits(5), LotKind.PURCHASED, 150, T0, LATER, TEAM, frozenset({"tokens", "sms"}), RolloverRule(credits(2), 3),
        LotTerms(LotSource.PAYMENT, True, RevenueTreatment.IMMEDIATE, Decimal("0.01"), "EUR"),
    ),
    RecordUsage("tokens", Decimal("1.50"), T0, TEAM, "alice", SOME_ID, {"model": "m1", "op": "chat"}),
    Expire(T0),
    ResetLots(LotKind.BONUS, TEAM),
    TransferCredits(credits(3), None, TEAM),
    RefundLot(SOME_ID, "cancelled"),
    CreditBack(SOME_ID, "job failed"),
    AdjustCredits(credits(-2), "fix", TEAM),
    PlaceHold(credits(4), LATER, "sms", TEAM, "alice", "run-1", credits(6)),
    CaptureHold(SOME_ID, quantity=Decimal("2.5"), final=True),
    ReleaseHold(SOME_ID),
    IssueQuote("sms", Decimal(3), LATER, TEAM, "alice"),
    SetSpendingPolicy(AtZero.CREDIT_LIMIT, "sms", credits(50)),
    SetTeamBudget(TEAM, None, Period.WEEK),
    SetMemberLimits("alice", credits(7), Period.DAY, shared_credits=False),
    SetKindPriorities({LotKind.PURCHASED: 50, LotKind.BONUS: 150}),
    SetRate("sms", T0, Decimal("1.25"), Decimal("0.02"), Decimal("0.003"), "EUR"),
    SetAlert(SOME_ID, AlertKind.HIGH_SPEND, credits(1000), "user_1234 over 1,000", None, "user_1234", Period.WEEK),
    RemoveAlert(SOME_ID),
    SetAccess(AccessStatus.ACTIVE, "seatsco-team", frozenset({"ai.assistant", "ai.preview"}), Decimal("10.5"), True),
    SetStorageUsage(Decimal("12.000001")),
    RevokeCredits(credits(50), LATER, "seats 5 -> 4"),
    SetSuspension(True, "INV-2026-000001"),
    RaiseBillingAlert(AlertKind.PAYMENT_FAILED, "payment failed: card_declined", MicroCredits(1150)),
]  # fmt: skip


def test_the_samples_cover_every_payload_type() -> None:
    assert sorted(type(p).__name__ for p in SAMPLES) == sorted(cls.__name__ for cls in commands.PAYLOAD_TYPES.values())


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_every_payload_round_trips(payload: Payload) -> None:
    data = wire.payload_to_dict(payload)
    assert wire.payload_from_dict(json.loads(json.dumps(data))) == payload
    sent = command(payload, key="retry-1")
    validation.validate(sent)
    assert wire.decode(wire.encode(sent)) == sent
    assert wire.fingerprint(wire.payload_from_dict(data)) == wire.fingerprint(payload)


def test_fingerprint_is_canonical_and_stable() -> None:
    # Stored fingerprints must keep matching after a deploy, or retries become conflicts.
    expected = "61b54c6eef895365ac0d79315ad442ca8f6dd2046ec4ab700aebaff8c597cc86"
    assert wire.fingerprint(GrantCredits(credits(5))) == expected
    one = RecordUsage("sms", Decimal(1), dimensions={"a": "1", "b": "2"})
    assert wire.fingerprint(one) == wire.fingerprint(RecordUsage("sms", Decimal(1), dimensions={"b": "2", "a": "1"}))
    assert wire.fingerprint(one) != wire.fingerprint(replace(one, quantity=Decimal(2)))
    with pytest.raises(InvalidCommand):
        wire.payload_from_dict({"type": "mint_money"})


MALFORMED: list[Command] = [
    command(GrantCredits(credits(1)), key=""), command(GrantCredits(credits(1)), key="k" * 256),
    command(GrantCredits(MicroCredits(0))), command(GrantCredits(credits(1), effective_at=LATER, expires_at=LATER)),
    command(GrantCredits(credits(1), rollover=RolloverRule(credits(1), 1))),  # rolls over but never ends
    command(RecordUsage("sms", Decimal(0))), command(usage(1, dimensions={str(i): "x" for i in range(17)})),
    command(Expire(LATER)), command(TransferCredits(credits(1), TEAM, TEAM)), command(AdjustCredits(ZERO, "zero")),
    command(PlaceHold(credits(1), T0)), command(PlaceHold(credits(2), LATER, cap=credits(1))),
    command(CaptureHold(SOME_ID)), command(IssueQuote("sms", Decimal(1), T0)),
    command(SetSpendingPolicy(AtZero.BLOCK, credit_limit=credits(1))),
    command(SetRate("sms", T0, Decimal(1), currency="US")), command(SetKindPriorities({LotKind.BONUS: -1})),
    command(SetAlert(SOME_ID, AlertKind.LOW_BALANCE, MicroCredits(-1))),
    # PostgreSQL cannot store U+0000: such a command would fail its batch's write again and again.
    command(GrantCredits(credits(1)), key="k\x00"), command(usage(1, user_id="a\x00")),
    command(usage(1, dimensions={"model": "\x00"})), command(IssueQuote("sms", Decimal(1), LATER, user_id="\x00")),
    command(GrantCredits(credits(1), terms=LotTerms(currency="U\x00D"))),
    command(usage(1, user_id="\ud800")), command(GrantCredits(credits(1)), key="\udfff"),  # lone surrogates
    command(SetAlert(SOME_ID, AlertKind.LOW_BALANCE, credits(1), user_id="alice")),  # a user's balance is no alert
    command(SetAlert(SOME_ID, AlertKind.HIGH_SPEND, credits(1), team_id=TEAM, user_id="alice")),
    command(SetAlert(SOME_ID, AlertKind.HIGH_SPEND, credits(1), user_id="")),
    command(SetAlert(SOME_ID, AlertKind.HIGH_SPEND, credits(1), name="n" * 501)),
    command(SetAlert(SOME_ID, AlertKind.STORAGE_OVER_QUOTA, credits(1))),  # built in, never set
    command(SetAccess(AccessStatus.ACTIVE, "p" * 101)), command(SetAccess(AccessStatus.ACTIVE, "p\x00")),
    command(SetAccess(AccessStatus.ACTIVE, "p", frozenset())),
    command(SetAccess(AccessStatus.ACTIVE, "p", frozenset(str(i) for i in range(101)))),
    command(SetAccess(AccessStatus.ACTIVE, "p", storage_quota_gb=Decimal("0.0000001"))),
    command(SetAccess(AccessStatus.ACTIVE, "p", storage_quota_gb=Decimal(10**9 + 1))),
    command(SetAccess(AccessStatus.ACTIVE, "p", storage_quota_gb=Decimal("-1"))),
    command(SetStorageUsage(Decimal("NaN"))), command(SetStorageUsage(Decimal(-1))),
    command(SetStorageUsage(Decimal(10**9 + 1))), command(SetStorageUsage(Decimal("1.0000001"))),
    command(RevokeCredits(ZERO, LATER)), command(RevokeCredits(MicroCredits(10**18 + 1), LATER)),
    command(RevokeCredits(credits(1), T0 + timedelta(days=400 * 366))),
    command(RevokeCredits(credits(1), LATER, "\x00")),
    command(SetSuspension(True, "\x00")), command(RaiseBillingAlert(AlertKind.LOW_BALANCE, "not billing's")),
    command(RaiseBillingAlert(AlertKind.PAYMENT_FAILED, "n" * 501)),
    command(RaiseBillingAlert(AlertKind.PAYMENT_FAILED, "x", MicroCredits(10**18 + 1))),
    command(SetAlert(SOME_ID, AlertKind.PAYMENT_FAILED, credits(1))),  # raised by billing, never a rule
    command(SetAlert(SOME_ID, AlertKind.AUTO_RECHARGE, credits(1), team_id=TEAM)),
]  # fmt: skip


@pytest.mark.parametrize("malformed", MALFORMED, ids=lambda c: type(c.payload).__name__)
def test_malformed_commands_are_invalid(malformed: Command) -> None:
    with pytest.raises(InvalidCommand):
        validation.validate(malformed)
