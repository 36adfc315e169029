"""An organization's ledger state as its actor holds it: lots and the rate card it prices with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from ledger.core.commands import LotKind
from ledger.core.money import MicroCredits


@dataclass(frozen=True, slots=True)
class Lot:
    """A grant of credits: spent in consumption order until empty, expired or ended."""

    id: UUID
    kind: LotKind
    amount: MicroCredits
    remaining: MicroCredits
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    created_at: datetime

    def usable_at(self, at: datetime) -> bool:
        return self.remaining > 0 and self.effective_at <= at and (self.expires_at is None or at < self.expires_at)

    def consumption_key(self) -> tuple[int, int, datetime, datetime, str]:
        """Priority, then soonest expiry (lots that never expire last), then oldest."""
        never = 1 if self.expires_at is None else 0
        return (self.priority, never, self.expires_at or self.created_at, self.created_at, str(self.id))


@dataclass(frozen=True, slots=True)
class Rate:
    """The price of one native unit of a product (a token, a minute, a message) in credits."""

    product: str
    credits_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    total: MicroCredits
    held: MicroCredits

    @property
    def available(self) -> MicroCredits:
        return MicroCredits(self.total - self.held)


@dataclass(frozen=True, slots=True)
class OrgState:
    organization_id: UUID
    lots: tuple[Lot, ...] = ()
    rate_card: Mapping[str, Rate] = field(default_factory=dict)

    def balance(self, at: datetime) -> Balance:
        total = sum(lot.remaining for lot in self.lots if lot.usable_at(at))
        return Balance(total=MicroCredits(total), held=MicroCredits(0))

    def with_lots(self, lots: Iterable[Lot]) -> OrgState:
        return OrgState(self.organization_id, tuple(lots), self.rate_card)

    def with_updated_lots(self, updated: Iterable[Lot]) -> OrgState:
        """The same lots in the same order, with these replacing their namesakes."""
        by_id = {lot.id: lot for lot in updated}
        return self.with_lots(by_id.get(lot.id, lot) for lot in self.lots)
