"""Auto-recharge as the API shows it: the settings, this month's spend against the cap, and the
recharges made (one per crossing of the threshold)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from graphql_api.billing.invoices_types import Money
from graphql_api.scalars import Credits, id_of
from ledger.billing.auto_recharge import RechargeStatus
from ledger.payments.recharge_store import AutoRecharge as DomainAutoRecharge
from ledger.payments.recharge_store import Recharge as DomainRecharge

strawberry.enum(
    RechargeStatus,
    name="RechargeStatus",
    description="STARTED: the charge is being made (it counts against the cap). SUCCEEDED: paid and granted. "
    "FAILED: declined or needing the cardholder; not retried, the next crossing waits for a payment. "
    "OVER_CAP: not charged, the month's cap would have been passed. DISABLED: auto-recharge was off.",
)


@strawberry.input(description="Auto-recharge: below `threshold` credits, buy `pack` with the default card.")
class SetAutoRechargeInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    enabled: bool = strawberry.field(description="False keeps the settings and stops recharging.")
    threshold: Credits = strawberry.field(
        description="Recharge once when the available credits fall to this or below (once per crossing)."
    )
    pack: str = strawberry.field(description='The pack\'s key, e.g. "cheddar-50": priced, and offered to the plan.')
    monthly_cap: str = strawberry.field(
        description='Money charged by recharges per calendar month (UTC) at most, in the pack\'s currency, e.g. "300"; '
        "at least the pack's price."
    )


@strawberry.type(description="One recharge: what one crossing of the threshold did.")
class Recharge:
    alert_event_id: strawberry.ID = strawberry.field(description="The AUTO_RECHARGE alert event (the crossing).")
    status: RechargeStatus
    money: Money = strawberry.field(description="Money charged (0 unless started or succeeded).")
    month: date = strawberry.field(description="The calendar month (UTC) it counts in: its first day.")
    payment_id: strawberry.ID | None = strawberry.field(description="The payment, once the charge was made.")
    detail: str = strawberry.field(description="Why it failed or was not charged.")
    created_at: datetime

    @classmethod
    def from_domain(cls, recharge: DomainRecharge, currency: str) -> Recharge:
        r = recharge
        return cls(
            alert_event_id=strawberry.ID(str(r.alert_event_id)), status=r.status,
            money=Money.of(r.amount, currency), month=r.month, payment_id=id_of(r.payment_id),
            detail=r.detail, created_at=r.created_at or datetime.min,
        )  # fmt: skip


@strawberry.type(description="An organization's auto-recharge settings and this month's recharges against the cap.")
class AutoRecharge:
    enabled: bool
    threshold: Credits
    pack: str = strawberry.field(description="The pack's key.")
    monthly_cap: Money = strawberry.field(description="Money per calendar month (UTC) at most.")
    currency: str = strawberry.field(description="ISO 4217, the pack's.")
    charged_this_month: Money = strawberry.field(description="Money recharges charged (or are charging) this month.")
    updated_at: datetime
    recharges: list[Recharge] = strawberry.field(description="The newest recharges first (at most 50).")

    @classmethod
    def from_domain(cls, settings: DomainAutoRecharge, charged: int, recharges: list[DomainRecharge]) -> AutoRecharge:
        s = settings
        return cls(
            enabled=s.enabled, threshold=Credits(s.threshold), pack=s.pack_key,
            monthly_cap=Money.of(s.monthly_cap, s.currency), currency=s.currency,
            charged_this_month=Money.of(charged, s.currency), updated_at=s.updated_at or datetime.min,
            recharges=[Recharge.from_domain(r, s.currency) for r in recharges],
        )  # fmt: skip
