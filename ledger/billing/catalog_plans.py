"""A plan's and a pack's version as a catalog document writes it (`[[plans.versions]]`,
`[[packs.versions]]`): every field of `Plan` and `Pack`, bounded, under its own name, but
`price_monthly` / `price_annual` for a plan's prices. A field left out takes the default of
`ledger.billing.catalog`; a version names only products (and a pack only plans) of its document.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ledger.billing.catalog import CreditPolicy, Interval, Pack, Plan
from ledger.billing.catalog_fields import Refusal, Table
from ledger.core import bounds
from ledger.core.commands import AtZero
from ledger.core.money import MicroCredits

_PRICES = {"price_monthly": Interval.MONTHLY, "price_annual": Interval.ANNUAL}
PLAN_FIELDS = frozenset(
    {
        *_PRICES,
        "effective_at", "name", "description", "currency", "per_seat", "credits", "credits_per_seat",
        "seats_included", "kits_included", "extra_kit_price", "members_max", "storage_quota_gb", "credit_policy",
        "rollover_cap", "rollover_cycles", "bonus_expiry_days", "purchased_expiry_days", "trial_days",
        "trial_months", "products", "at_zero", "generation", "media_purge_days", "priority_queue", "pooled",
        "custom", "rank", "invoice_terms_days",
    }
)  # fmt: skip
PACK_FIELDS = frozenset(
    {
        "effective_at", "name", "credits", "price", "currency", "expires_after_days", "products",
        "surcharge_percent", "out_of_credit", "signup", "plans",
    }
)  # fmt: skip
_ROLLOVER_ONLY = ("rollover_cap", "rollover_cycles")


def _known(table: Table, field: str, kind: str, named: frozenset[str] | None, known: Mapping[str, Any]) -> None:
    unknown = sorted((named or frozenset()) - known.keys())
    if unknown:
        raise table.refuse(field, f"no {kind} {unknown[0]!r} in this catalog")


def read_plan(table: Table, key: str, currency: str, products: Mapping[str, Any]) -> Plan:
    policy = table.choice("credit_policy", CreditPolicy, CreditPolicy.RESET)
    if policy is not CreditPolicy.ROLLOVER:
        for field in _ROLLOVER_ONLY:
            if table.has(field):
                raise table.refuse(field, 'only with credit_policy = "rollover"')
    named = table.names("products", bounds.PRODUCTS_PER_PLAN_MAX, bounds.PRODUCT_KEY_LENGTH_MAX)
    _known(table, "products", "product", named, products)
    prices: dict[Interval, Decimal | None] = {}
    for field, interval in _PRICES.items():
        price = table.optional_decimal(field, bounds.MONEY_RATE_MAX)
        if price is not None:
            prices[interval] = price
    per_seat, credits, credits_per_seat = _seat_credits(table)
    return Plan(
        key=key,
        name=table.text("name"),
        effective_at=table.time(),
        currency=table.currency(currency),
        prices=prices,
        per_seat=per_seat,
        credits=credits,
        credits_per_seat=credits_per_seat,
        seats_included=table.count("seats_included", bounds.PLAN_COUNT_MAX),
        kits_included=table.optional_count("kits_included", bounds.PLAN_COUNT_MAX),
        extra_kit_price=table.optional_decimal("extra_kit_price", bounds.MONEY_RATE_MAX),
        members_max=table.optional_count("members_max", bounds.PLAN_COUNT_MAX),
        storage_quota_gb=table.optional_decimal("storage_quota_gb", bounds.STORAGE_GB_MAX, bounds.STORAGE_GB_DECIMALS),
        credit_policy=policy,
        rollover_cap=table.optional_credits("rollover_cap"),
        rollover_cycles=table.optional_count("rollover_cycles", bounds.ROLLOVER_CYCLES_MAX),
        bonus_expiry_days=table.optional_count("bonus_expiry_days", bounds.PLAN_DAYS_MAX),
        purchased_expiry_days=table.optional_count("purchased_expiry_days", bounds.PLAN_DAYS_MAX),
        trial_days=table.count("trial_days", bounds.PLAN_DAYS_MAX),
        trial_months=table.count("trial_months", bounds.PLAN_MONTHS_MAX),
        products=named,
        at_zero=table.choice("at_zero", AtZero, AtZero.BLOCK),
        generation=table.flag("generation", True),
        media_purge_days=table.optional_count("media_purge_days", bounds.PLAN_DAYS_MAX),
        priority_queue=table.flag("priority_queue", False),
        pooled=table.flag("pooled", True),
        custom=table.flag("custom", False),
        rank=table.count("rank", bounds.PLAN_RANK_MAX),
        description=table.text("description", bounds.TEXT_LENGTH_MAX, ""),
        invoice_terms_days=_invoice_terms(table),
    )


def _invoice_terms(table: Table) -> int | None:
    """Net-N invoicing: 1 to 365 days, or left out (the card is charged)."""
    refusal = f"a whole number of days from 1 to {bounds.INVOICE_TERMS_DAYS_MAX}, or left out"
    try:
        days = table.optional_count("invoice_terms_days", bounds.INVOICE_TERMS_DAYS_MAX)
    except Refusal:
        raise table.refuse("invoice_terms_days", refusal) from None
    if days == 0:
        raise table.refuse("invoice_terms_days", refusal)
    return days


def _seat_credits(table: Table) -> tuple[bool, MicroCredits, MicroCredits]:
    """Per-seat credits only on a per-seat plan (free seats must not bring credits), and a month's
    grant at the most seats a subscription may have within the ledger's range."""
    per_seat = table.flag("per_seat", False)
    credits, per_seat_credits = table.credits("credits"), table.credits("credits_per_seat")
    if per_seat_credits and not per_seat:
        raise table.refuse("credits_per_seat", "only with per_seat = true: seats that cost nothing bring no credits")
    if credits + per_seat_credits * bounds.SEATS_MAX > bounds.CREDITS_MAX:
        raise table.refuse(
            "credits_per_seat",
            f"credits + credits_per_seat x {bounds.SEATS_MAX:,} seats must stay within {bounds.CREDITS_MAX_WHOLE:,}",
        )
    return per_seat, credits, per_seat_credits


def read_pack(table: Table, key: str, currency: str, products: Mapping[str, Any], plans: Mapping[str, Any]) -> Pack:
    named_products = table.names("products", bounds.PRODUCTS_PER_PLAN_MAX, bounds.PRODUCT_KEY_LENGTH_MAX)
    _known(table, "products", "product", named_products, products)
    named_plans = table.names("plans", bounds.CATALOG_PLANS_MAX, bounds.PLAN_KEY_LENGTH_MAX)
    _known(table, "plans", "plan", named_plans, plans)
    credits = table.optional_credits("credits")
    if credits is None:
        raise table.refuse("credits", "required")
    return Pack(
        key=key,
        name=table.text("name"),
        effective_at=table.time(),
        credits=credits,
        price=table.decimal("price", bounds.MONEY_RATE_MAX),
        currency=table.currency(currency),
        expires_after_days=table.optional_count("expires_after_days", bounds.PLAN_DAYS_MAX),
        products=named_products,
        surcharge_percent=table.optional_decimal("surcharge_percent", bounds.SURCHARGE_PERCENT_MAX) or Decimal(0),
        out_of_credit=table.flag("out_of_credit", False),
        signup=table.flag("signup", False),
        plans=named_plans,
    )
