"""One Stripe customer per organization (`stripe_customers`), made on first need.

Two first needs at once (two tabs attaching a card) must not make two customers: the maker holds a
per-organization advisory lock (a transaction-scoped one, so a crash frees it) from the check to
the insert, and the second finds the first's row once it gets the lock.
"""

from __future__ import annotations

from uuid import UUID

from ledger.core.errors import NotFound
from ledger.payments.context import PaymentContext
from ledger.store.pool import Connection

_CUSTOMER = "SELECT customer_id FROM stripe_customers WHERE org_id = $1"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('stripe_customer:' || $1::uuid::text, 0))"
_ORGANIZATION = "SELECT name FROM organizations WHERE id = $1"
_INSERT = "INSERT INTO stripe_customers (org_id, customer_id, created_at) VALUES ($1, $2, $3)"


async def customer_of(connection: Connection, organization_id: UUID) -> str | None:
    """The organization's Stripe customer, if it has one yet."""
    found: str | None = await connection.fetchval(_CUSTOMER, organization_id)
    return found


async def ensure_customer(ctx: PaymentContext, organization_id: UUID) -> str:
    """The organization's Stripe customer, made (once) if it has none."""
    existing = await customer_of(ctx.pool, organization_id)
    if existing is not None:
        return existing
    async with ctx.pool.acquire() as connection, connection.transaction():
        await connection.execute(_LOCK, organization_id)
        existing = await customer_of(connection, organization_id)
        if existing is not None:
            return existing
        name = await connection.fetchval(_ORGANIZATION, organization_id)
        if name is None:
            raise NotFound("no such organization")
        customer = await ctx.gateway.create_customer(str(organization_id), str(name))
        await connection.execute(_INSERT, organization_id, customer, ctx.now)
        return customer
