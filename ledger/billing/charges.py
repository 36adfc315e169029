"""What a billing period charges: the plan's price for the interval (per priced seat on a per-seat
plan) and the kits beyond those the plan includes at its price per extra kit. Pure.

The period's turnover records these lines once (`ledger.subscriptions.turnover`, fact 'charge'),
and a preview shows the same lines, since both call `period_charges`. A custom plan (Enterprise) is
priced by contract and charges nothing here; a line of no money is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ledger.billing.catalog import Interval, Plan
from ledger.billing.proration import minor_unit_decimals, priced_seats


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """One line a billing period owes, as `billing_charges` stores it."""

    kind: str  # 'plan', 'seats' or 'kits'
    description: str
    quantity: Decimal
    unit_price: Decimal  # per unit for the whole billing period
    amount: Decimal  # quantity x unit price, in the currency's minor unit
    currency: str


def extra_kits(plan: Plan, kits_used: int) -> int:
    """The kits in use beyond those the plan includes (none beyond an unlimited allowance)."""
    if plan.kits_included is None:
        return 0
    return max(0, kits_used - plan.kits_included)


def _money(amount: Decimal, currency: str) -> Decimal:
    # Half up, as prorations round (never the thread's default context, which rounds half even).
    return amount.quantize(Decimal(1).scaleb(-minor_unit_decimals(currency)), rounding=ROUND_HALF_UP)


def _line(kind: str, description: str, quantity: int, unit_price: Decimal, currency: str) -> ChargeLine:
    amount = _money(unit_price * quantity, currency)
    return ChargeLine(kind, description, Decimal(quantity), unit_price, amount, currency)


def period_charges(plan: Plan, interval: Interval, seats: int, kits_used: int) -> tuple[ChargeLine, ...]:
    """The lines one billing period of `plan` owes with `seats` seats and `kits_used` kits."""
    price = plan.price(interval)
    if plan.custom or price is None:
        return ()
    per, currency = "year" if interval is Interval.ANNUAL else "month", plan.currency
    lines: list[ChargeLine] = []
    if plan.per_seat:
        priced = priced_seats(plan, seats)
        lines.append(_line("seats", f"{plan.name}: {priced} seat(s), one {per}", priced, price, currency))
    else:
        lines.append(_line("plan", f"{plan.name}, one {per}", 1, price, currency))
    kits = extra_kits(plan, kits_used)
    if kits and plan.extra_kit_price is not None:
        # The extra kit price is per interval, like the plan's own.
        description = f"{plan.name}: {kits} extra kit(s), one {per}"
        lines.append(_line("kits", description, kits, plan.extra_kit_price, currency))
    return tuple(line for line in lines if line.amount != 0)


def charges_total(lines: tuple[ChargeLine, ...]) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))
