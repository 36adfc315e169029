"""An organization's credits as the API shows them: its balance, per lot kind, its lots and holds."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from graphql_api.enums import LotKind
from graphql_api.scalars import Credits, id_of
from ledger.core.state import Balance as DomainBalance
from ledger.store.lots import HoldView, LotView


@strawberry.type(description="An organization's credits now.")
class Balance:
    total: Credits = strawberry.field(description="Credits in every lot usable now.")
    held: Credits = strawberry.field(description="Credits reserved by open holds.")
    available: Credits = strawberry.field(description="What can be spent now: total less held.")

    @classmethod
    def from_domain(cls, balance: DomainBalance) -> Balance:
        return cls(total=Credits(balance.total), held=Credits(balance.held), available=Credits(balance.available))


@strawberry.type(
    description=(
        "Credits usable now in the lots of one kind. Holds are not attributed to kinds (a hold fences lots "
        "only as its debits would reach them, decided anew at each debit), so there is no held here; and "
        "what a credit line has drawn belongs to no kind: the balance's total is the sum of these less it."
    )
)
class KindBalance:
    kind: LotKind = strawberry.field(description="The lot kind.")
    total: Credits = strawberry.field(description="Credits left in its lots usable now.")
    lots: int = strawberry.field(description="How many of its lots are usable now.")

    @classmethod
    def from_lots(cls, lots: list[LotView], at: datetime) -> list[KindBalance]:
        """Per kind, in the order of LotKind, only kinds with usable credits."""
        totals: dict[LotKind, tuple[int, int]] = {}
        for lot in lots:
            if lot.remaining > 0 and lot.effective_at <= at and (lot.expires_at is None or at < lot.expires_at):
                total, count = totals.get(lot.kind, (0, 0))
                totals[lot.kind] = (total + lot.remaining, count + 1)
        return [
            cls(kind=kind, total=Credits(totals[kind][0]), lots=totals[kind][1]) for kind in LotKind if kind in totals
        ]


@strawberry.type(description="A credit lot: one grant of credits, spent in consumption order.")
class CreditLot:
    id: strawberry.ID
    kind: LotKind
    amount: Credits = strawberry.field(description="Credits granted into the lot.")
    remaining: Credits = strawberry.field(description="Credits left.")
    priority: int = strawberry.field(description="Lower is consumed first.")
    effective_at: datetime
    expires_at: datetime | None
    team_id: strawberry.ID | None = strawberry.field(description="The owning team; null for the org's shared pool.")
    products: list[str] | None = strawberry.field(description="The products it pays for; null for all.")
    refundable: bool
    source: str = strawberry.field(
        description="subscription, payment, promotion, referral, manual, rollover, transfer."
    )
    parent_id: strawberry.ID | None = strawberry.field(description="The lot it was moved or rolled over from.")

    @classmethod
    def from_domain(cls, lot: LotView) -> CreditLot:
        return cls(
            id=strawberry.ID(str(lot.id)),
            kind=lot.kind,
            amount=Credits(lot.amount),
            remaining=Credits(lot.remaining),
            priority=lot.priority,
            effective_at=lot.effective_at,
            expires_at=lot.expires_at,
            team_id=id_of(lot.team_id),
            products=lot.products,
            refundable=lot.refundable,
            source=lot.source,
            parent_id=id_of(lot.parent_id),
        )


@strawberry.type(description="Credits reserved for a running job; captured as it goes, the rest released.")
class CreditHold:
    id: strawberry.ID
    amount: Credits = strawberry.field(description="Credits reserved when placed.")
    reserved: Credits = strawberry.field(description="Credits it still keeps others from spending.")
    captured: Credits = strawberry.field(description="Credits charged against it so far.")
    status: str = strawberry.field(description="open, finished, released or expired.")
    expires_at: datetime
    product: str | None
    team_id: strawberry.ID | None
    user_id: str | None
    run_id: str | None

    @classmethod
    def from_domain(cls, hold: HoldView) -> CreditHold:
        # A hold stops fencing credits at its TTL, before the expiry sweep journals its release:
        # show it as it counts.
        lapsed = hold.status == "open" and hold.expires_at <= datetime.now(UTC)
        return cls(
            id=strawberry.ID(str(hold.id)),
            amount=Credits(hold.amount),
            reserved=Credits(0 if lapsed else hold.reserved),
            captured=Credits(hold.captured),
            status="expired" if lapsed else hold.status,
            expires_at=hold.expires_at,
            product=hold.product,
            team_id=id_of(hold.team_id),
            user_id=hold.user_id,
            run_id=hold.run_id,
        )
