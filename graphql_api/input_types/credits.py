"""Inputs of the credit mutations: grants, usage, holds, quotes, transfers and corrections."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry

from graphql_api.enums import LotKind, LotSource, RevenueTreatment
from graphql_api.outcomes import Ack
from graphql_api.scalars import Credits, Quantity
from ledger import constants


@strawberry.input(description="Unused credits roll into a bank lot when this lot ends (ACT3's rollover bank).")
class RolloverInput:
    cap: Credits = strawberry.field(description="Most the bank may hold, e.g. 66000 on Creator.")
    cycles: int = strawberry.field(description="Calendar months a banked amount lasts, e.g. 6.")


@strawberry.input(description="Credits to add as a new lot.")
class GrantCreditsInput:
    organization_id: strawberry.ID
    amount: Credits = strawberry.field(description="Positive amount of credits.")
    idempotency_key: str = strawberry.field(description="Your unique key for this grant; a retry with it applies once.")
    kind: LotKind = strawberry.field(default=LotKind.BASE, description="Lot kind; sets the default priority.")
    priority: int | None = strawberry.field(default=None, description="Lower is consumed first; defaults by kind.")
    effective_at: datetime | None = strawberry.field(default=None, description="When it becomes usable (default now).")
    expires_at: datetime | None = strawberry.field(default=None, description="When it expires (default never).")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="Give it to a team, not the pool.")
    products: list[str] | None = strawberry.field(default=None, description="Only these products (default all).")
    rollover: RolloverInput | None = strawberry.field(default=None, description="Bank what is left when it ends.")
    source: LotSource = LotSource.MANUAL
    refundable: bool = False
    revenue_treatment: RevenueTreatment = RevenueTreatment.DEFERRED
    price_per_credit: Quantity | None = strawberry.field(default=None, description="Cost basis: money per credit.")
    currency: str | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A dimension of a usage event, e.g. model = gpt-4o.")
class DimensionInput:
    name: str
    value: str


@strawberry.input(description="One usage event, priced through the rate card and debited from the lots.")
class UsageEventInput:
    organization_id: strawberry.ID
    product: str = strawberry.field(description="The product key on the rate card.")
    quantity: Quantity = strawberry.field(description="Positive quantity in the product's unit.")
    idempotency_key: str = strawberry.field(description="Your unique id for this event; a retry charges once.")
    occurred_at: datetime | None = strawberry.field(default=None, description="When it happened (default now).")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="The team using it: its lots first.")
    user_id: str | None = strawberry.field(default=None, description="Your id of the user; their cap applies.")
    quote_id: strawberry.ID | None = strawberry.field(default=None, description="Charge a binding quote's price.")
    dimensions: list[DimensionInput] = strawberry.field(default_factory=list, description="For usage reports.")


@strawberry.input(description="One usage event, priced through the rate card and debited from the lots.")
class RecordUsageInput(UsageEventInput):
    ack: Ack = Ack.APPLIED


def _usage_event(cls: type[UsageEventInput], value: Mapping[str, Any], _: object) -> UsageEventInput:
    """A usage event built straight from graphql-core's coerced input value (scalars already parsed:
    what Strawberry's generic conversion would give, without its per-field type inspection, which
    cost a batch of a thousand events about 70 ms). Optional fields may be absent."""
    return cls(
        organization_id=value["organizationId"],
        product=value["product"],
        quantity=value["quantity"],
        idempotency_key=value["idempotencyKey"],
        occurred_at=value.get("occurredAt"),
        team_id=value.get("teamId"),
        user_id=value.get("userId"),
        quote_id=value.get("quoteId"),
        dimensions=[DimensionInput(name=d["name"], value=d["value"]) for d in value.get("dimensions") or ()],
        **({"ack": value["ack"]} if "ack" in value else {}),
    )


UsageEventInput.__strawberry_definition__.from_input = _usage_event  # type: ignore[attr-defined]
RecordUsageInput.__strawberry_definition__.from_input = _usage_event  # type: ignore[attr-defined]


@strawberry.input(description=f"Up to {constants.usage_batch_max} usage events, for one or many organizations.")
class RecordUsageBatchInput:
    events: list[UsageEventInput] = strawberry.field(description="Applied in this order within each organization.")
    ack: Ack = strawberry.field(default=Ack.QUEUED, description="QUEUED (default) answers once all are durably queued.")


@strawberry.input(description="Reserve credits for a job whose cost is known only at its end.")
class PlaceHoldInput:
    organization_id: strawberry.ID
    amount: Credits = strawberry.field(description="Credits to reserve.")
    expires_at: datetime = strawberry.field(description="When the hold lapses and releases what it still reserves.")
    idempotency_key: str
    product: str | None = strawberry.field(default=None, description="Needed to capture by quantity.")
    team_id: strawberry.ID | None = None
    user_id: str | None = None
    run_id: str | None = strawberry.field(default=None, description="Your id of the job or agent run.")
    cap: Credits | None = strawberry.field(default=None, description="Most the hold may ever capture.")
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Charge part of a job against its hold: an amount of credits or a quantity.")
class CaptureHoldInput:
    organization_id: strawberry.ID
    hold_id: strawberry.ID
    idempotency_key: str
    amount: Credits | None = None
    quantity: Quantity | None = strawberry.field(default=None, description="Priced at the hold's product rate.")
    final: bool = strawberry.field(default=False, description="The job is done: release what is still reserved.")
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Release everything a hold still reserves.")
class ReleaseHoldInput:
    organization_id: strawberry.ID
    hold_id: strawberry.ID
    idempotency_key: str
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A binding price: usage naming the quote before it expires is charged this price.")
class IssueQuoteInput:
    organization_id: strawberry.ID
    product: str
    quantity: Quantity
    expires_at: datetime
    idempotency_key: str
    team_id: strawberry.ID | None = None
    user_id: str | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Move credits between the org's shared pool (null) and a team, or between teams.")
class TransferCreditsInput:
    organization_id: strawberry.ID
    amount: Credits
    idempotency_key: str
    from_team_id: strawberry.ID | None = None
    to_team_id: strawberry.ID | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Take back what is left of a refundable lot.")
class RefundLotInput:
    organization_id: strawberry.ID
    lot_id: strawberry.ID
    idempotency_key: str
    reason: str = ""
    ack: Ack = Ack.APPLIED


@strawberry.input(description="Reverse a usage debit (e.g. a failed job) into the very lots it came from.")
class CreditBackInput:
    organization_id: strawberry.ID
    transaction_id: strawberry.ID = strawberry.field(description="The usage or capture transaction to reverse.")
    idempotency_key: str
    reason: str = ""
    ack: Ack = Ack.APPLIED


@strawberry.input(description="A manual correction: positive adds an adjustment lot, negative removes credits.")
class AdjustCreditsInput:
    organization_id: strawberry.ID
    amount: Credits = strawberry.field(description='Signed, e.g. "25" or "-10".')
    reason: str
    idempotency_key: str
    team_id: strawberry.ID | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="End the usable lots of a kind now (e.g. reset the month's base credits).")
class ResetLotsInput:
    organization_id: strawberry.ID
    idempotency_key: str
    kind: LotKind = LotKind.BASE
    team_id: strawberry.ID | None = None
    ack: Ack = Ack.APPLIED


@strawberry.input(description="End the lots and holds due by asOf now instead of at the next expiry run.")
class ExpireCreditsInput:
    organization_id: strawberry.ID
    idempotency_key: str
    as_of: datetime | None = strawberry.field(default=None, description="Not in the future; default now.")
    ack: Ack = Ack.APPLIED
