"""Revenue recognition for a window of time, from billing's charges and the ledger's postings. Pure.

Every figure is integer minor units of one currency and names its sources (billing charge keys, which
are also the invoice lines' `source`; ledger transaction ids; refund ids), so a finance team can
trace it. The policies (seed 000):

- **Subscription revenue** (the plan's fee, seats, extra kits, prorations): straight-line over the
  charge's service period; the part inside the window is recognized, what lies after the window's
  end is deferred. A proration's service period runs from its change to the period's end.
- **Purchased credits** by their lot's `revenue_treatment`: DEFERRED are recognized as they are
  consumed (usage, captures, a credit-back takes it back) and, when they expire unused, as
  **breakage**; IMMEDIATE are recognized at purchase. The money of a lot is its basis (what its
  payment charged, else credits x price per credit); its credits' share of it is
  cumulative: the money recognized by an instant is the basis x the credits moved out by then /
  the lot's credits, rounded half up, so a lot used to its end recognizes exactly its basis, and
  windows add up. A refund takes the refunded credits' share out of the deferred balance.
- **Bonus and promotional credits** (no price, or `MARKETING`): what is consumed is a marketing
  expense, priced at the catalog's credit price when it has one (else credits only).
- **Overage** is revenue of the invoice that bills it, straight-line over that invoice's period.

The roll-forward holds per currency: deferred at the start + deferred billed in the window =
recognized from deferred + breakage + refunded + deferred at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from uuid import UUID

from ledger import constants
from ledger.billing.money_format import round_minor, to_minor
from ledger.core.commands import LotKind, RevenueTreatment
from ledger.core.money import MICRO_PER_CREDIT

MARKETING_KINDS = frozenset({LotKind.BONUS, LotKind.PROMOTIONAL})


class Movement(StrEnum):
    """What moved credits out of a lot (or back in: a credit-back is negative consumption)."""

    CONSUMED = "consumed"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    REMOVED = "removed"  # an adjustment or a revocation: a correction, not revenue


@dataclass(frozen=True, slots=True)
class ServiceCharge:
    """Money billed for a service period: a subscription charge, or an invoice's overage line.
    `sources`: the charge's key, then the invoice line that bills it (`<number>#<line>`), if any."""

    sources: tuple[str, ...]
    currency: str
    amount: int  # minor units; negative for a credit
    service_start: datetime
    service_end: datetime
    overage: bool = False


@dataclass(frozen=True, slots=True)
class PricedLot:
    """A granted lot whose credits carry money (paid) or a marketing cost (bonus, promotional).
    Lots split from it (transfers, rollover banks) count as it: they keep its terms."""

    lot_id: UUID
    kind: LotKind
    treatment: RevenueTreatment
    credits: int  # micro-credits granted
    granted_at: datetime
    basis: int | None = None  # minor units it was sold for (None: free credits)
    currency: str | None = None
    source: str = ""  # its grant: the transaction id or payment intent

    @property
    def marketing(self) -> bool:
        free = self.basis is None or self.basis == 0
        return self.treatment is RevenueTreatment.MARKETING or (free and self.kind in MARKETING_KINDS)


@dataclass(frozen=True, slots=True)
class LotActivity:
    """A lot's credits moved out, as the ledger's postings say: before the window (any movement) and,
    per movement, inside it, with the transactions that moved them."""

    lot: PricedLot
    before: int = 0
    within: Mapping[Movement, int] = field(default_factory=dict)
    sources: Mapping[Movement, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refund:
    """Money given back (a `refunds` row that succeeded), recognized as negative revenue."""

    source: str
    currency: str
    amount: int  # minor units, positive


@dataclass(slots=True)
class Figure:
    amount: int = 0  # minor units
    credits: int | None = None  # micro-credits it is about, when it is about credits
    sources: list[str] = field(default_factory=list)
    sources_truncated: bool = False

    def add(self, amount: int, sources: Iterable[str], credits: int | None = None) -> None:
        self.amount += amount
        if credits is not None:
            self.credits = (self.credits or 0) + credits
        for source in sources:
            if len(self.sources) >= constants.revenue_report_sources_max:
                self.sources_truncated = True
                return
            if source not in self.sources:
                self.sources.append(source)


@dataclass(slots=True)
class CurrencyRevenue:
    """One currency's figures for the window (and its deferred balances at both ends)."""

    currency: str
    subscription_recognized: Figure = field(default_factory=Figure)
    subscription_deferred: Figure = field(default_factory=Figure)  # at the window's end
    purchased_recognized: Figure = field(default_factory=Figure)
    breakage: Figure = field(default_factory=Figure)
    purchased_deferred: Figure = field(default_factory=Figure)  # at the window's end
    refunds: Figure = field(default_factory=Figure)  # negative
    overage_billed: Figure = field(default_factory=Figure)
    marketing_expense: Figure = field(default_factory=Figure)
    # The roll-forward of the deferred balance (subscription and deferred credits) over the window.
    deferred_opening: int = 0  # deferred at the window's start
    deferred_billed: int = 0  # billed in the window and deferred at first
    deferred_recognized: int = 0  # recognized out of the deferred balance (not breakage)
    deferred_refunded: int = 0  # refunded or corrected credits' share of their lots' basis

    @property
    def recognized(self) -> int:
        """Revenue of the window: subscription, credits, breakage, overage, less refunds."""
        return (
            self.subscription_recognized.amount
            + self.purchased_recognized.amount
            + self.breakage.amount
            + self.overage_billed.amount
            + self.refunds.amount
        )

    @property
    def deferred_closing(self) -> int:
        return self.subscription_deferred.amount + self.purchased_deferred.amount

    def rolls_forward(self) -> bool:
        """Opening + billed = recognized + breakage + refunded + closing, to the minor unit."""
        released = self.deferred_recognized + self.breakage.amount + self.deferred_refunded
        return self.deferred_opening + self.deferred_billed == released + self.deferred_closing


@dataclass(frozen=True, slots=True)
class RevenueReport:
    window_start: datetime
    window_end: datetime
    currencies: tuple[CurrencyRevenue, ...]
    marketing_credits: int  # micro-credits of free credits consumed in the window
    marketing_sources: tuple[str, ...]


def _share(amount: int, part: Fraction) -> int:
    """`amount x part`, rounded half up (away from zero) to a whole minor unit."""
    exact = Fraction(amount) * part
    rounded = Decimal(exact.numerator) / Decimal(exact.denominator)
    return int(rounded.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def recognized_by(charge: ServiceCharge, at: datetime) -> int:
    """The money of a service charge recognized by `at`: straight-line over its service period."""
    if at <= charge.service_start:
        return 0
    if at >= charge.service_end:
        return charge.amount
    length = (charge.service_end - charge.service_start).total_seconds()
    elapsed = (at - charge.service_start).total_seconds()
    return _share(charge.amount, Fraction(elapsed) / Fraction(length))


def _lot_money(lot: PricedLot, moved: int) -> int:
    assert lot.basis is not None
    return _share(lot.basis, Fraction(moved, lot.credits))


def report(
    window_start: datetime,
    window_end: datetime,
    charges: Sequence[ServiceCharge],
    lots: Sequence[LotActivity],
    refunds: Sequence[Refund] = (),
    credit_price: Decimal | None = None,
    catalog_currency: str = "USD",
) -> RevenueReport:
    """The report for `[window_start, window_end)`. `charges` are those whose service starts before
    the window's end; `lots` those granted before it; `refunds` those made inside it."""
    if window_end <= window_start:
        raise ValueError("the window must end after it starts")
    figures: dict[str, CurrencyRevenue] = {}

    def of(currency: str) -> CurrencyRevenue:
        return figures.setdefault(currency, CurrencyRevenue(currency))

    for charge in charges:
        _recognize_charge(of(charge.currency), charge, window_start, window_end)
    marketing = Figure(credits=0)
    for activity in lots:
        lot = activity.lot
        if lot.marketing:
            _marketing(marketing, activity)
        elif lot.basis is not None and lot.currency is not None:
            _recognize_lot(of(lot.currency), activity, window_start)
    for refund in refunds:
        of(refund.currency).refunds.add(-refund.amount, [refund.source])
    if marketing.credits and credit_price is not None:
        money = Decimal(marketing.credits) / MICRO_PER_CREDIT * credit_price
        amount = to_minor(round_minor(money, catalog_currency), catalog_currency)
        of(catalog_currency).marketing_expense.add(amount, marketing.sources, marketing.credits)
    ordered = tuple(figures[currency] for currency in sorted(figures))
    return RevenueReport(window_start, window_end, ordered, marketing.credits or 0, tuple(marketing.sources))


def _recognize_charge(revenue: CurrencyRevenue, charge: ServiceCharge, start: datetime, end: datetime) -> None:
    before, by_end = recognized_by(charge, start), recognized_by(charge, end)
    recognized = by_end - before
    if charge.overage:
        if recognized:
            revenue.overage_billed.add(recognized, charge.sources)
        return
    if recognized:
        revenue.subscription_recognized.add(recognized, charge.sources)
        revenue.deferred_recognized += recognized
    deferred = charge.amount - by_end
    if deferred:
        revenue.subscription_deferred.add(deferred, charge.sources)
    if charge.service_start >= start:
        revenue.deferred_billed += charge.amount
    else:
        revenue.deferred_opening += charge.amount - before


def _recognize_lot(revenue: CurrencyRevenue, activity: LotActivity, start: datetime) -> None:
    lot = activity.lot
    assert lot.basis is not None
    if lot.treatment is RevenueTreatment.IMMEDIATE:
        if lot.granted_at >= start:
            revenue.purchased_recognized.add(lot.basis, [lot.source], lot.credits)
        return
    if lot.granted_at >= start:
        revenue.deferred_billed += lot.basis
    else:
        revenue.deferred_opening += lot.basis - _lot_money(lot, activity.before)
    moved = activity.before
    # One order for the movements inside the window, so the cumulative rounding is reproducible.
    for movement in (Movement.CONSUMED, Movement.EXPIRED, Movement.REFUNDED, Movement.REMOVED):
        credits = activity.within.get(movement, 0)
        if not credits:
            continue
        money = _lot_money(lot, moved + credits) - _lot_money(lot, moved)
        moved += credits
        sources = activity.sources.get(movement, ())
        if movement is Movement.CONSUMED:
            revenue.purchased_recognized.add(money, sources, credits)
            revenue.deferred_recognized += money
        elif movement is Movement.EXPIRED:
            revenue.breakage.add(money, sources, credits)
        else:
            # Refunded credits leave the deferred balance; the money returned is the refund's own
            # figure. A correction's share leaves it too (it is no one's revenue).
            revenue.deferred_refunded += money
    left = lot.basis - _lot_money(lot, moved)
    if left:
        revenue.purchased_deferred.add(left, [lot.source], lot.credits - moved)


def _marketing(figure: Figure, activity: LotActivity) -> None:
    consumed = activity.within.get(Movement.CONSUMED, 0)
    if consumed:
        figure.add(0, activity.sources.get(Movement.CONSUMED, ()), consumed)
