"""What buying a credit pack charges: the catalog's price plus its surcharge, half-up to the
currency's minor unit, and the cost basis per credit that the granted lot carries."""

from __future__ import annotations

import decimal
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from ledger.billing.catalog import Catalog, Pack
from ledger.billing.money_format import from_minor, round_minor, to_minor
from ledger.core.bounds import MICRO_PER_CREDIT
from ledger.core.errors import InvalidCommand, NotFound
from ledger.payments.charges import ChargeRequest
from ledger.payments.store import Purpose

# A cost basis per credit keeps this many decimals (what a lot's terms accept).
_COST_BASIS_DECIMALS = 12


def pack_price(pack: Pack) -> Decimal:
    """What the pack costs, surcharge included, rounded half-up to the currency's minor unit."""
    return round_minor(pack.price * (1 + pack.surcharge_percent / 100), pack.currency)


def cost_basis(amount_minor: int, currency: str, credits_micro: int) -> Decimal:
    """Money paid per credit."""
    money = from_minor(amount_minor, currency)
    per_credit = money * MICRO_PER_CREDIT / credits_micro
    return per_credit.quantize(Decimal(1).scaleb(-_COST_BASIS_DECIMALS), rounding=decimal.ROUND_HALF_UP).normalize()


def pack_for_sale(catalog: Catalog, pack_key: str, plan_key: str | None, at: datetime) -> Pack:
    """The pack in force at `at`, if an organization on `plan_key` (None: none) may buy it."""
    pack = catalog.pack_at(pack_key, at)
    if pack is None:
        raise NotFound(f"no credit pack {pack_key!r} in the catalog")
    if pack.signup or pack.price <= 0:
        raise InvalidCommand(f"the pack {pack_key!r} is granted at sign-up, not sold")
    if pack.plans is not None and plan_key not in pack.plans:
        raise InvalidCommand(f"the pack {pack_key!r} is not offered to this organization's plan")
    return pack


def pack_charge(
    pack: Pack,
    *,
    organization_id: UUID,
    request_key: str,
    payment_method_id: str | None,
    off_session: bool,
    purpose: Purpose = Purpose.PACK,
) -> ChargeRequest:
    """The charge that buys `pack` (a pack bought by hand, or an auto-recharge)."""
    amount = to_minor(pack_price(pack), pack.currency)
    return ChargeRequest(
        organization_id=organization_id, purpose=purpose, request_key=request_key, amount=amount,
        currency=pack.currency, off_session=off_session, payment_method_id=payment_method_id, pack_key=pack.key,
        credits=int(pack.credits), price_per_credit=cost_basis(amount, pack.currency, pack.credits),
        description=f"{pack.name} ({pack.key})",
    )  # fmt: skip
