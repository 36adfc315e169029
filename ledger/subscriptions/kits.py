"""Kits (members' assigned seats, the directory's `kit`) counted against the plan. Pure.

A plan that prices extra kits leaves the kit limit open and charges each kit beyond those included
(MECLABS SELL: 10 included, the 11th at $20 a period); a plan that does not makes its included kits
the directory's limit (`plan_effects.limits_for`), so there is never an extra one to charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledger.billing.catalog import Plan


@dataclass(frozen=True, slots=True)
class KitUsage:
    included: int | None  # None: unlimited
    used: int  # members holding a kit
    extra: int  # kits beyond those included, charged per billing period
    extra_price: Decimal | None  # per extra kit per billing period; None: extra kits are refused
    extra_amount: Decimal  # extra x extra_price: the period's kits line


def kit_usage(plan: Plan, used: int) -> KitUsage:
    """How many of the plan's kits are used, and what the ones beyond the included cost a period."""
    extra = 0 if plan.kits_included is None else max(0, used - plan.kits_included)
    price = plan.extra_kit_price
    amount = Decimal(0) if price is None else price * extra
    return KitUsage(plan.kits_included, used, extra, price, amount)
