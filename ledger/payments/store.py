"""Payments rows (`payments`): what a charge started and how it ended.

Plain functions over a connection (the caller owns the transaction). A row is created before its
PaymentIntent, keyed (organization, request key), so a retry finds it; once Stripe answers it has
the intent's id (unique). `succeeded` is terminal: no later answer downgrades it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import asyncpg

from ledger.store.pool import Connection


class Purpose(StrEnum):
    PACK = "pack"
    RECHARGE = "recharge"
    INVOICE = "invoice"


class PaymentStatus(StrEnum):
    CREATING = "creating"  # the row exists, Stripe has not answered (yet)
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"  # the customer must authenticate (3-D Secure)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


UNSETTLED = frozenset({PaymentStatus.CREATING, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION})


@dataclass(frozen=True, slots=True)
class Payment:
    """A payments row. `credits` are micro-credits (what a pack or recharge grants); `client_secret`
    and `next_action_type` are never stored: they come with Stripe's latest answer, when there is one."""

    id: UUID
    organization_id: UUID
    purpose: Purpose
    status: PaymentStatus
    amount: int  # minor units
    currency: str  # ISO 4217, upper case
    payment_intent_id: str | None
    decline_code: str | None
    failure_message: str | None
    credits: int | None
    lot_id: UUID | None
    grant_transaction_id: UUID | None
    invoice_id: UUID | None
    pack_key: str | None
    created_at: datetime
    succeeded_at: datetime | None
    refunded_amount: int
    request_key: str = ""
    price_per_credit: Decimal | None = None
    payment_method_id: str | None = None
    client_secret: str | None = None
    next_action_type: str | None = None
    grant_attempts: int = 0  # grants the ledger refused so far


_COLUMNS = """
id, org_id, purpose, status, amount, currency, payment_intent_id, decline_code, failure_message, credits, lot_id,
grant_transaction_id, invoice_id, pack_key, created_at, succeeded_at, refunded_amount, request_key, price_per_credit,
payment_method_id, grant_attempts
"""


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(
        id=row["id"],
        organization_id=row["org_id"],
        purpose=Purpose(row["purpose"]),
        status=PaymentStatus(row["status"]),
        amount=row["amount"],
        currency=row["currency"],
        payment_intent_id=row["payment_intent_id"],
        decline_code=row["decline_code"],
        failure_message=row["failure_message"],
        credits=row["credits"],
        lot_id=row["lot_id"],
        grant_transaction_id=row["grant_transaction_id"],
        invoice_id=row["invoice_id"],
        pack_key=row["pack_key"],
        created_at=row["created_at"],
        succeeded_at=row["succeeded_at"],
        refunded_amount=row["refunded_amount"],
        request_key=row["request_key"],
        price_per_credit=row["price_per_credit"],
        payment_method_id=row["payment_method_id"],
        grant_attempts=row["grant_attempts"],
    )


_INSERT = f"""
INSERT INTO payments (id, org_id, request_key, purpose, pack_key, invoice_id, amount, currency, credits,
                      price_per_credit, payment_method_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
ON CONFLICT (org_id, request_key) DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608 - a constant column list


async def insert_payment(connection: Connection, payment: Payment) -> Payment | None:
    """Record a new payment (status creating); None when its (organization, request key) exists."""
    p = payment
    row = await connection.fetchrow(
        _INSERT, p.id, p.organization_id, p.request_key, p.purpose.value, p.pack_key, p.invoice_id, p.amount,
        p.currency, p.credits, p.price_per_credit, p.payment_method_id, p.created_at,
    )  # fmt: skip
    return None if row is None else _payment(row)


_BY_ID = f"SELECT {_COLUMNS} FROM payments WHERE id = $1"  # noqa: S608
_BY_INTENT = f"SELECT {_COLUMNS} FROM payments WHERE payment_intent_id = $1"  # noqa: S608
_BY_REQUEST = f"SELECT {_COLUMNS} FROM payments WHERE org_id = $1 AND request_key = $2"  # noqa: S608


async def payment_by_id(connection: Connection, id: UUID, *, for_update: bool = False) -> Payment | None:
    row = await connection.fetchrow(_BY_ID + (" FOR UPDATE" if for_update else ""), id)
    return None if row is None else _payment(row)


async def payment_by_intent(connection: Connection, intent_id: str) -> Payment | None:
    row = await connection.fetchrow(_BY_INTENT, intent_id)
    return None if row is None else _payment(row)


async def payment_by_request(connection: Connection, organization_id: UUID, request_key: str) -> Payment | None:
    row = await connection.fetchrow(_BY_REQUEST, organization_id, request_key)
    return None if row is None else _payment(row)


_OF_ORG = f"""
SELECT {_COLUMNS} FROM payments
WHERE org_id = $1 AND ($3::timestamptz IS NULL OR created_at < $3)
ORDER BY created_at DESC, id DESC LIMIT $2
"""  # noqa: S608


async def payments_of(
    connection: Connection, organization_id: UUID, limit: int, before: datetime | None = None
) -> list[Payment]:
    """The organization's payments, newest first, created before `before` if given."""
    return [_payment(row) for row in await connection.fetch(_OF_ORG, organization_id, limit, before)]


# A payment that succeeded stays so; the intent's id, once known, never changes.
_RECORD_OUTCOME = f"""
UPDATE payments SET
    payment_intent_id = COALESCE(payment_intent_id, $2),
    status = CASE WHEN status = 'succeeded' THEN status ELSE $3 END,
    decline_code = CASE WHEN status = 'succeeded' THEN decline_code ELSE $4 END,
    failure_message = CASE WHEN status = 'succeeded' THEN failure_message ELSE $5 END,
    succeeded_at = CASE WHEN status <> 'succeeded' AND $3 = 'succeeded' THEN $6 ELSE succeeded_at END,
    updated_at = $6
WHERE id = $1
RETURNING {_COLUMNS}
"""  # noqa: S608


async def record_outcome(
    connection: Connection,
    id: UUID,
    intent_id: str | None,
    status: PaymentStatus,
    decline_code: str | None,
    failure_message: str | None,
    at: datetime,
) -> Payment:
    row = await connection.fetchrow(_RECORD_OUTCOME, id, intent_id or None, status.value, decline_code,
                                    failure_message, at)  # fmt: skip
    assert row is not None, id
    return _payment(row)


_RECORD_GRANT = f"""
UPDATE payments SET lot_id = COALESCE(lot_id, $2), grant_transaction_id = COALESCE(grant_transaction_id, $3),
                    updated_at = $4
WHERE id = $1
RETURNING {_COLUMNS}
"""  # noqa: S608


async def record_grant(connection: Connection, id: UUID, lot_id: UUID, transaction_id: UUID, at: datetime) -> Payment:
    row = await connection.fetchrow(_RECORD_GRANT, id, lot_id, transaction_id, at)
    assert row is not None, id
    return _payment(row)


_UNSETTLED = f"""
SELECT {_COLUMNS} FROM payments
WHERE status IN ('creating', 'processing', 'requires_action') AND created_at <= $1 AND created_at > $2
ORDER BY created_at LIMIT $3
"""  # noqa: S608


async def unsettled_payments(
    connection: Connection, created_before: datetime, created_after: datetime, limit: int
) -> list[Payment]:
    """Payments still waiting for an outcome, created in (`created_after`, `created_before`], oldest first."""
    return [_payment(row) for row in await connection.fetch(_UNSETTLED, created_before, created_after, limit)]


_UNGRANTED = f"""
SELECT {_COLUMNS} FROM payments
WHERE status = 'succeeded' AND purpose IN ('pack', 'recharge') AND lot_id IS NULL AND created_at <= $1
  AND grant_attempts < $3
ORDER BY created_at LIMIT $2
"""  # noqa: S608


async def ungranted_payments(
    connection: Connection, created_before: datetime, limit: int, attempts_max: int
) -> list[Payment]:
    """Succeeded pack and recharge payments whose grant is not recorded (a crash between the two),
    unless the ledger refused it `attempts_max` times already."""
    return [_payment(row) for row in await connection.fetch(_UNGRANTED, created_before, limit, attempts_max)]


_GRANT_REFUSED = (
    "UPDATE payments SET grant_attempts = grant_attempts + 1, updated_at = $2 WHERE id = $1 RETURNING grant_attempts"
)


async def count_grant_refused(connection: Connection, id: UUID, at: datetime) -> int:
    """Count one more grant the ledger refused; how many so far."""
    count: int = await connection.fetchval(_GRANT_REFUSED, id, at)
    return count
