"""Proration to the second: what a mid-period change charges and grants. Pure.

`prorate` is the one function both a preview and the change itself call, so what a customer is
shown is what they are charged and granted (a preview that differs from the charge is a known
incumbent bug).

The rules:

- The fraction of a period left at `at` is (seconds from `at` to the period's end) / (seconds in
  the period) (`Period.remaining_fraction`). Money uses the current *billing* period (a month or
  a year); credits use the current *credit* period (always a month: an annual plan's credits come
  monthly).
- A seat change of `delta` seats: credits = plan.credits_per_seat x delta x credit fraction, and
  money = per-seat price x (priced seats after - priced seats before) x billing fraction, where
  priced seats are those beyond `seats_included` and there is a per-seat price only on a `per_seat`
  plan. An increase is granted and charged; a decrease is taken back (`RevokeCredits`, up to what is
  left of the period's subscription lots) and credited (a negative line on the next invoice) x the
  credits revoked / the credits requested (`revoked_share`: spent credits are not refunded).
- A plan change to a plan that can generate, of a higher `rank` or out of a plan without
  generation (an upgrade), applies at once: money = (new price - old price) x billing fraction (a
  charge, or a credit when negative), and credits = (the new plan's monthly credits - the old
  plan's; a plan's monthly credits are its credits + credits_per_seat x seats, and never less than
  0 granted) x credit fraction, granted as a base lot that ends with the credit period (the old
  period's base is kept until the period ends, so chained upgrades add up to the last plan's).
  Out of a trial the old price was never paid: money = the new price x billing fraction; once the
  trial is over nothing was granted since, so credits = the new plan's monthly credits x fraction.
  Any other change (a lower or equal rank, or to a plan without generation such as Archive)
  applies at the billing period's end and prorates nothing. Staying on the plan prorates nothing
  (it undoes a pending change).
- Credits are rounded toward zero to the micro-credit (never more granted, nor more taken back, than
  the exact share); money is rounded half-up to the currency's minor unit (2 decimals for USD, 0 for
  JPY, 3 for KWD: `minor_unit_decimals`). A line is rounded once, and the totals are the lines' sums.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from ledger.billing.calendar import Calendar, Period
from ledger.billing.catalog import Interval, Plan
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits

# ISO 4217 minor units where they are not 2 (the currencies a catalog is likely to price in).
_MINOR_UNITS: dict[str, int] = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}  # fmt: skip
_MONEY_CONTEXT = decimal.Context(prec=80, traps=[decimal.InvalidOperation, decimal.Overflow])


def minor_unit_decimals(currency: str) -> int:
    """The decimals of the currency's minor unit (ISO 4217): 2 unless listed."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def prorated_money(amount: Decimal, fraction: Fraction, currency: str) -> Decimal:
    """`amount x fraction`, rounded half-up (away from zero on a tie) to the currency's minor unit."""
    exact = _MONEY_CONTEXT.divide(
        _MONEY_CONTEXT.multiply(amount, Decimal(fraction.numerator)), Decimal(fraction.denominator)
    )
    quantum = Decimal(1).scaleb(-minor_unit_decimals(currency))
    return exact.quantize(quantum, rounding=decimal.ROUND_HALF_UP, context=_MONEY_CONTEXT)


def prorated_credits(credits: int, fraction: Fraction) -> MicroCredits:
    """`credits x fraction` in micro-credits, rounded toward zero."""
    exact = Fraction(credits) * fraction
    whole = exact.numerator // exact.denominator if exact >= 0 else -((-exact.numerator) // exact.denominator)
    return MicroCredits(whole)


@dataclass(frozen=True, slots=True)
class ProrationLine:
    """One line of a proration, as both the preview and the change show it. `amount` is the money
    (negative: a credit on the next invoice); `credits` what is granted (negative: taken back)."""

    kind: str  # 'seats' or 'proration', as on `billing_charges`
    description: str
    quantity: Decimal  # seats, or 1 for a plan
    unit_price: Decimal  # per unit for the whole billing period, before the fraction
    amount: Decimal
    credits: MicroCredits


@dataclass(frozen=True, slots=True)
class SeatQuantity:
    """Set the seat quantity."""

    seats: int


@dataclass(frozen=True, slots=True)
class PlanSwitch:
    """Move to `plan` (the version in force at the change), from a trial (`from_trial`: its price
    was never paid) that may be over (`trial_over`: nothing was granted since)."""

    plan: Plan
    from_trial: bool = False
    trial_over: bool = False


Change = SeatQuantity | PlanSwitch


@dataclass(frozen=True, slots=True)
class Proration:
    """What a change does: at once (`immediate`) or at `effective_at`, the billing period's end."""

    at: datetime
    effective_at: datetime
    immediate: bool
    billing_period: Period
    credit_period: Period
    billing_fraction: Fraction
    credit_fraction: Fraction
    seats_before: int
    seats_after: int
    plan_before: Plan
    plan_after: Plan
    currency: str
    lines: tuple[ProrationLine, ...] = ()

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def credits(self) -> MicroCredits:
        return MicroCredits(sum(line.credits for line in self.lines))


def monthly_credits(plan: Plan, seats: int) -> MicroCredits:
    """A plan's base credits for one month: its own plus its per-seat credits for every seat."""
    return MicroCredits(plan.credits + plan.credits_per_seat * seats)


def priced_seats(plan: Plan, seats: int) -> int:
    """The seats a per-seat plan charges for: those beyond the ones it includes."""
    return max(0, seats - plan.seats_included) if plan.per_seat else 0


def period_price(plan: Plan, interval: Interval, seats: int) -> Decimal:
    """A plan's price for one billing period (per priced seat on a per-seat plan; 0 when custom)."""
    price = plan.price(interval)
    if price is None or plan.custom:
        return Decimal(0)
    return price * priced_seats(plan, seats) if plan.per_seat else price


def is_upgrade(before: Plan, after: Plan) -> bool:
    """An upgrade applies at once: to a plan that can generate, from one that cannot (out of
    Archive) or of a lower rank. Anything else waits for the period's end."""
    return after.generation and (not before.generation or after.rank > before.rank)


def prorate(
    plan: Plan, interval: Interval, seats: int, calendars: tuple[Calendar, Calendar], change: Change, at: datetime
) -> Proration:
    """What `change` to a subscription on `plan` with `seats` does at `at`. `calendars` are its
    billing and its credit calendar (`Subscription.billing_calendar`, `.credit_calendar`)."""
    billing, credit = calendars[0].period_at(at), calendars[1].period_at(at)
    base = Proration(
        at=at, effective_at=at, immediate=True, billing_period=billing, credit_period=credit,
        billing_fraction=billing.remaining_fraction(at), credit_fraction=credit.remaining_fraction(at),
        seats_before=seats, seats_after=seats, plan_before=plan, plan_after=plan, currency=plan.currency,
    )  # fmt: skip
    if isinstance(change, SeatQuantity):
        return _seats(base, interval, change.seats)
    return _plan(base, interval, change)


def _seats(base: Proration, interval: Interval, seats: int) -> Proration:
    plan, delta = base.plan_before, seats - base.seats_before
    if delta == 0:
        raise InvalidCommand(f"the subscription has {seats} seats already")
    unit_price = (plan.price(interval) or Decimal(0)) if plan.per_seat and not plan.custom else Decimal(0)
    priced = priced_seats(plan, seats) - priced_seats(plan, base.seats_before)
    credits = prorated_credits(plan.credits_per_seat * delta, base.credit_fraction)
    amount = prorated_money(unit_price * priced, base.billing_fraction, plan.currency)
    verb = "added" if delta > 0 else "removed"
    description = (
        f"{abs(delta)} seat(s) {verb} on {plan.name} for {_share(base.billing_fraction)} of the billing period"
        f" and {_share(base.credit_fraction)} of the month's credits"
    )
    line = ProrationLine("seats", description, Decimal(priced), unit_price, amount, credits)
    return _with(base, seats_after=seats, lines=(line,))


def _plan(base: Proration, interval: Interval, switch: PlanSwitch) -> Proration:
    before, seats, after = base.plan_before, base.seats_before, switch.plan
    if after.key == before.key:  # staying: nothing to prorate (it undoes a pending change)
        return base
    if after.currency != before.currency:
        raise InvalidCommand(f"{after.name} is priced in {after.currency}, the subscription in {before.currency}")
    if not is_upgrade(before, after):
        return _with(base, plan_after=after, immediate=False, effective_at=base.billing_period.end)
    paid = Decimal(0) if switch.from_trial else period_price(before, interval, seats)
    difference = period_price(after, interval, seats) - paid
    amount = prorated_money(difference, base.billing_fraction, after.currency)
    # The old plan's base for the month is kept: only what the new plan adds to it is granted.
    kept = 0 if switch.trial_over else monthly_credits(before, seats)
    added = max(0, monthly_credits(after, seats) - kept)
    credits = prorated_credits(added, base.credit_fraction)
    description = (
        f"Upgrade from {before.name} to {after.name} for {_share(base.billing_fraction)} of the billing period"
        f" and {_share(base.credit_fraction)} of {after.name}'s monthly credits"
    )
    line = ProrationLine("proration", description, Decimal(1), difference, amount, credits)
    return _with(base, plan_after=after, lines=(line,))


def revoked_share(proration: Proration, revoked: MicroCredits, requested: MicroCredits) -> Proration:
    """A decrease as applied when the ledger took back only `revoked` of the `requested` credits
    (the rest was spent): its money credited x revoked / requested, so spent credits are paid for."""
    if requested <= 0 or revoked >= requested:
        return proration
    share = Fraction(max(0, revoked), requested)
    lines = tuple(
        replace(line, amount=prorated_money(line.amount, share, proration.currency),
                credits=prorated_credits(line.credits, share))
        for line in proration.lines
    )  # fmt: skip
    return replace(proration, lines=lines)


def _with(base: Proration, **changes: object) -> Proration:
    return replace(base, **changes)  # type: ignore[arg-type]


def _share(fraction: Fraction) -> str:
    """A fraction as a percentage with two decimals, for descriptions (the amounts are exact)."""
    percent = Decimal(fraction.numerator * 100) / Decimal(fraction.denominator)
    return f"{percent.quantize(Decimal('0.01'), rounding=decimal.ROUND_HALF_UP)}%"
