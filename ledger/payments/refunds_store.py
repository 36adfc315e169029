"""Refunds in PostgreSQL (`refunds`): one row per (organization, request key), written before
anything is reversed, so its id is the one refund id that keys both the ledger's reversal
(`refund:<id>`) and Stripe's refund (`refund:<id>`, and `metadata.refund_id`).

Plain functions over a connection; the caller owns the transaction. The Stripe step runs under the
row's lock (`refund_by_id(..., for_update=True)`), so two retries at once cannot both create one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import asyncpg

from ledger.core.commands import LotSource, LotTerms, RevenueTreatment
from ledger.store.pool import Connection


class RefundStatus(StrEnum):
    PENDING = "pending"  # recorded; the reversal or Stripe's refund is on its way
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RefundRecord:
    id: UUID
    organization_id: UUID
    payment_id: UUID
    request_key: str
    amount: int  # minor units; an estimate until the ledger's reversal says what was left
    currency: str
    credits: int  # micro-credits taken back
    reason: str
    status: RefundStatus
    ledger_transaction_id: UUID | None = None
    stripe_refund_id: str | None = None
    created_at: datetime | None = None  # set by the store


_COLUMNS = """
id, org_id, payment_id, request_key, amount, currency, credits, reason, status, ledger_transaction_id,
stripe_refund_id, created_at
"""
_INSERT = """
INSERT INTO refunds (id, org_id, payment_id, request_key, amount, currency, credits, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (org_id, request_key) DO NOTHING
"""
_BY_KEY = f"SELECT {_COLUMNS} FROM refunds WHERE org_id = $1 AND request_key = $2"  # noqa: S608 - constant columns
_BY_ID = f"SELECT {_COLUMNS} FROM refunds WHERE id = $1"  # noqa: S608 - constant columns
_OF_PAYMENT = f"SELECT {_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at"  # noqa: S608 - constant columns
_REVERSED = """
UPDATE refunds SET ledger_transaction_id = $2, credits = $3, amount = $4, updated_at = now()
WHERE id = $1 AND ledger_transaction_id IS NULL
"""
_FAILED = "UPDATE refunds SET status = 'failed', updated_at = now() WHERE id = $1 AND status = 'pending'"
# Stripe's refund, recorded once: the payment's refunded amount grows with the row that names it.
_REFUNDED = """
WITH refund AS (
    UPDATE refunds SET stripe_refund_id = $2, status = $3, updated_at = now()
    WHERE id = $1 AND stripe_refund_id IS NULL
    RETURNING payment_id, amount
)
UPDATE payments p SET refunded_amount = p.refunded_amount + refund.amount, updated_at = now()
FROM refund WHERE p.id = refund.payment_id
"""
_SUCCEEDED = """
UPDATE refunds SET status = 'succeeded', updated_at = now()
WHERE stripe_refund_id = ANY($1::text[]) AND status = 'pending'
"""
_SUCCEEDED_OF_INTENT = """
UPDATE refunds r SET status = 'succeeded', updated_at = now()
FROM payments p
WHERE p.id = r.payment_id AND p.payment_intent_id = $1 AND r.stripe_refund_id IS NOT NULL AND r.status = 'pending'
"""


def _refund(row: asyncpg.Record) -> RefundRecord:
    return RefundRecord(
        id=row["id"],
        organization_id=row["org_id"],
        payment_id=row["payment_id"],
        request_key=row["request_key"],
        amount=row["amount"],
        currency=row["currency"],
        credits=row["credits"],
        reason=row["reason"],
        status=RefundStatus(row["status"]),
        ledger_transaction_id=row["ledger_transaction_id"],
        stripe_refund_id=row["stripe_refund_id"],
        created_at=row["created_at"],
    )


async def insert_refund(connection: Connection, refund: RefundRecord) -> RefundRecord:
    """Record the refund, or find the one recorded under its request key (a retry)."""
    r = refund
    await connection.execute(
        _INSERT, r.id, r.organization_id, r.payment_id, r.request_key, r.amount, r.currency, r.credits, r.reason
    )
    found = await refund_by_key(connection, r.organization_id, r.request_key)
    assert found is not None
    return found


async def refund_by_key(connection: Connection, organization_id: UUID, request_key: str) -> RefundRecord | None:
    row = await connection.fetchrow(_BY_KEY, organization_id, request_key)
    return None if row is None else _refund(row)


async def refund_by_id(connection: Connection, id: UUID, *, for_update: bool = False) -> RefundRecord | None:
    row = await connection.fetchrow(_BY_ID + (" FOR UPDATE" if for_update else ""), id)
    return None if row is None else _refund(row)


async def refunds_of_payment(connection: Connection, payment_id: UUID) -> list[RefundRecord]:
    return [_refund(row) for row in await connection.fetch(_OF_PAYMENT, payment_id)]


async def record_reversal(connection: Connection, id: UUID, transaction_id: UUID, credits: int, amount: int) -> None:
    """What the ledger took back (once): its transaction, the credits and their money."""
    await connection.execute(_REVERSED, id, transaction_id, credits, amount)


async def record_failed(connection: Connection, id: UUID) -> None:
    await connection.execute(_FAILED, id)


async def record_stripe_refund(connection: Connection, id: UUID, stripe_refund_id: str, status: RefundStatus) -> None:
    """Stripe's refund for the row (once), and the payment's refunded amount with it."""
    await connection.execute(_REFUNDED, id, stripe_refund_id, status.value)


async def mark_succeeded(connection: Connection, stripe_refund_ids: list[str], payment_intent: str | None) -> None:
    """Stripe says these refunds (or, for a fully refunded charge, every refund of its intent) went through."""
    if stripe_refund_ids:
        await connection.execute(_SUCCEEDED, stripe_refund_ids)
    if payment_intent is not None:
        await connection.execute(_SUCCEEDED_OF_INTENT, payment_intent)


@dataclass(frozen=True, slots=True)
class LotFacts:
    """What a refund needs to know of a lot: what it is and what is left of it."""

    id: UUID
    kind: str  # 'purchased', 'bonus', 'base', ...
    remaining: int  # micro-credits
    refundable: bool
    price_per_credit: Decimal | None
    currency: str | None


_LOT = """
SELECT id, kind, remaining, refundable, price_per_credit, currency FROM credit_lots WHERE org_id = $1 AND id = $2
"""
_PAYMENT_OF_LOT = "SELECT id FROM payments WHERE org_id = $1 AND lot_id = $2"


async def lot_facts(connection: Connection, organization_id: UUID, lot_id: UUID) -> LotFacts | None:
    row = await connection.fetchrow(_LOT, organization_id, lot_id)
    return None if row is None else LotFacts(**dict(row))


async def payment_of_lot(connection: Connection, organization_id: UUID, lot_id: UUID) -> UUID | None:
    """The payment that granted the lot, if one did."""
    found: UUID | None = await connection.fetchval(_PAYMENT_OF_LOT, organization_id, lot_id)
    return found


@dataclass(frozen=True, slots=True)
class LotRestore:
    """What a lot's credits given back keep of it: its expiry, scope and finance terms."""

    expires_at: datetime | None
    team_id: UUID | None
    products: frozenset[str] | None
    terms: LotTerms


_LOT_TERMS = """
SELECT expires_at, team_id, products, source, refundable, revenue_treatment, price_per_credit, currency
FROM credit_lots WHERE org_id = $1 AND id = $2
"""


async def lot_terms(connection: Connection, organization_id: UUID, lot_id: UUID) -> LotRestore | None:
    row = await connection.fetchrow(_LOT_TERMS, organization_id, lot_id)
    if row is None:
        return None
    terms = LotTerms(source=LotSource(row["source"]), refundable=row["refundable"],
                     revenue_treatment=RevenueTreatment(row["revenue_treatment"]),
                     price_per_credit=row["price_per_credit"], currency=row["currency"])  # fmt: skip
    products = None if row["products"] is None else frozenset(row["products"])
    return LotRestore(row["expires_at"], row["team_id"], products, terms)
