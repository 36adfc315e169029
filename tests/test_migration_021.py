"""Migration 021 (Citus's keys) on a database with data, as a production upgrade meets it: the rows
written under 020's keys are all there after it, the three child tables have their parent's org_id,
and the keys and foreign keys are the new ones (org_id in each, paired across tables)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ledger.runtime.settings import Settings
from ledger.store.migrate import migrate
from tests.test_citus_rules import ALLOWED, read_schema, violations

BEFORE = 20
AT = datetime(2026, 3, 1, tzinfo=UTC)
# The tables 021 changes, each read whole (ordered) before and after it.
TABLES = (
    "subscriptions", "subscription_plans", "period_facts", "seat_changes", "billing_charges", "plan_changes",
    "invoices", "invoice_lines", "payments", "refunds", "dunning", "invoice_overpayments", "recharges",
    "stripe_customers", "invitations",
)  # fmt: skip
CHILDREN = {"subscription_plans": "subscriptions", "seat_changes": "subscriptions", "invoice_lines": "invoices"}


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A database of its own, migrated up to 020."""
    name = f"migration_021_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(settings.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    connection = await asyncpg.connect(urlunsplit(urlsplit(settings.database_url)._replace(path=f"/{name}")))
    try:
        assert max(await migrate(connection, up_to=BEFORE)) == BEFORE
        yield connection
    finally:
        await connection.close()
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


async def _org_with_billing(connection: asyncpg.Connection, name: str, n: int) -> dict[str, uuid.UUID]:
    """An organization with a subscription (and its plan), a seat change, charges, a plan change, an
    invoice with lines paid by a payment (and one overpaying it, refunded), dunning, a recharge, a
    Stripe customer and an invitation, written as 020's code wrote them."""
    ids = {key: uuid.uuid4() for key in ("org", "subscription", "invoice", "payment", "extra", "refund", "alert")}
    org, subscription, invoice, payment = ids["org"], ids["subscription"], ids["invoice"], ids["payment"]
    end = AT + timedelta(days=31)
    await connection.execute("INSERT INTO organizations (id, name) VALUES ($1, $2)", org, name)
    await connection.execute(
        "INSERT INTO subscriptions (id, org_id, plan_key, interval, seats, anchor, timezone, status) "
        "VALUES ($1, $2, 'team', 'monthly', 3, $3, 'UTC', 'active')",
        subscription, org, AT,
    )  # fmt: skip
    await connection.executemany(
        "INSERT INTO subscription_plans (subscription_id, effective_at, plan_key, seats) VALUES ($1, $2, $3, $4)",
        [(subscription, AT, "team", 3), (subscription, AT + timedelta(days=10), "team", 5)],
    )
    await connection.execute(
        "INSERT INTO seat_changes (id, subscription_id, at, seats_before, seats_after, credits, amount, currency) "
        "VALUES ($1, $2, $3, 3, 5, 1000, 12.50, 'USD')",
        uuid.uuid4(), subscription, AT + timedelta(days=10),
    )  # fmt: skip
    await connection.execute(
        "INSERT INTO period_facts (subscription_id, period_start, reason, org_id, period_end, idempotency_key) "
        "VALUES ($1, $2, 'charge', $3, $4, $5)",
        subscription, AT, org, end, f"period:{subscription}:charge",
    )  # fmt: skip
    await connection.execute(
        "INSERT INTO billing_charges (id, org_id, subscription_id, idempotency_key, kind, description, quantity, "
        "unit_price, amount, currency) VALUES ($1, $2, $3, $4, 'plan', 'Team', 1, 99, 99, 'USD')",
        uuid.uuid4(), org, subscription, f"period:{subscription}:plan",
    )  # fmt: skip
    await connection.execute(
        "INSERT INTO plan_changes (id, subscription_id, org_id, at, plan_before, plan_after, seats, immediate, "
        "effective_at, credits, amount, currency) VALUES ($1, $2, $3, $4, 'team', 'scale', 5, true, $4, 0, 0, 'USD')",
        uuid.uuid4(), subscription, org, AT + timedelta(days=20),
    )  # fmt: skip
    for id, key, intent in ((payment, "invoice", f"pi_{n}_paid"), (ids["extra"], "again", f"pi_{n}_extra")):
        await connection.execute(
            "INSERT INTO payments (id, org_id, request_key, purpose, invoice_id, amount, currency, payment_intent_id, "
            "status, invoice_surplus) VALUES ($1, $2, $3, 'invoice', $4, 9900, 'USD', $5, 'succeeded', $6)",
            id, org, key, invoice, intent, id != payment,
        )  # fmt: skip
    await connection.execute(
        "INSERT INTO invoices (id, org_id, subscription_id, period_start, period_end, number, status, collection, "
        "currency, subtotal, total, amount_due, issued_at, due_at, paid_at, payment_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, 'paid', 'charge_automatically', 'USD', 9900, 9900, 9900, $5, $5, $5, $7)",
        invoice, org, subscription, AT, end, f"INV-2026-{n:06d}", payment,
    )  # fmt: skip
    await connection.executemany(
        "INSERT INTO invoice_lines (invoice_id, line_no, kind, description, quantity, unit_price, amount, source) "
        "VALUES ($1, $2, $3, $4, 1, 49.50, 4950, $5)",
        [(invoice, 1, "plan", "Team", "plan"), (invoice, 2, "seats", "Seats", "seats")],
    )
    await connection.execute(
        "INSERT INTO refunds (id, org_id, payment_id, request_key, amount, currency, credits, stripe_refund_id) "
        "VALUES ($1, $2, $3, 'refund', 9900, 'USD', 0, $4)",
        ids["refund"], org, ids["extra"], f"re_{n}",
    )  # fmt: skip
    await connection.execute(
        "INSERT INTO dunning (invoice_id, org_id, first_failed_at, resolved_at) VALUES ($1, $2, $3, $4)",
        invoice, org, end, end + timedelta(days=1),
    )  # fmt: skip
    await connection.execute(
        "INSERT INTO invoice_overpayments (payment_id, invoice_id, org_id, amount, currency, detected_at) "
        "VALUES ($1, $2, $3, 9900, 'USD', $4)",
        ids["extra"], invoice, org, end,
    )  # fmt: skip
    await connection.execute(
        "INSERT INTO recharges (alert_event_id, org_id, month, payment_id, amount, status) "
        "VALUES ($1, $2, $3, $4, 9900, 'succeeded')",
        ids["alert"], org, AT.date(), payment,
    )  # fmt: skip
    await connection.execute("INSERT INTO stripe_customers (org_id, customer_id) VALUES ($1, $2)", org, f"cus_{n}")
    await connection.execute(
        "INSERT INTO invitations (id, org_id, email, role, token_hash, idempotency_key, created_by, expires_at) "
        "VALUES ($1, $2, 'a@example.com', 'viewer', $3, 'invite', 'user:u1', now() + interval '1 day')",
        uuid.uuid4(), org, uuid.uuid4().bytes * 2,
    )  # fmt: skip
    return ids


async def _rows(connection: asyncpg.Connection, table: str) -> list[dict[str, object]]:
    rows = await connection.fetch(f"SELECT * FROM {table}")
    return sorted((dict(row) for row in rows), key=repr)


async def _keys(connection: asyncpg.Connection, table: str) -> set[str]:
    rows = await connection.fetch(
        "SELECT pg_get_constraintdef(oid) AS key FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN "
        "('p', 'u', 'f')",
        table,
    )
    return {row["key"] for row in rows}


async def test_021_keeps_every_row_fills_org_id_and_puts_the_new_keys_in_place(
    database: asyncpg.Connection,
) -> None:
    first = await _org_with_billing(database, "First", 1)
    second = await _org_with_billing(database, "Second", 2)
    before = {table: await _rows(database, table) for table in TABLES}
    assert all(before.values())

    assert await migrate(database, up_to=21) == [21]

    for table in TABLES:
        after = await _rows(database, table)
        if table in CHILDREN:
            assert {row["org_id"] for row in after} == {first["org"], second["org"]}
            parent = CHILDREN[table]
            column = "subscription_id" if parent == "subscriptions" else "invoice_id"
            unmatched = await database.fetchval(
                f"SELECT count(*) FROM {table} c LEFT JOIN {parent} p ON p.id = c.{column} AND p.org_id = c.org_id "
                "WHERE p.id IS NULL"
            )
            assert unmatched == 0, f"{table}: org_id is not its parent's"
            after = [{k: v for k, v in row.items() if k != "org_id"} for row in after]
        assert after == before[table], table

    found = set(violations(await read_schema(database, "public")))
    assert found == set(ALLOWED)
    assert {
        "PRIMARY KEY (id, org_id)",
        "UNIQUE (number, org_id)",
        "UNIQUE (subscription_id, period_start, org_id)",
        "FOREIGN KEY (subscription_id, org_id) REFERENCES subscriptions(id, org_id)",
        "FOREIGN KEY (payment_id, org_id) REFERENCES payments(id, org_id)",
    } <= await _keys(database, "invoices")
    assert {
        "PRIMARY KEY (invoice_id, line_no, org_id)",
        "FOREIGN KEY (invoice_id, org_id) REFERENCES invoices(id, org_id)",
    } <= await _keys(database, "invoice_lines")
    assert "UNIQUE (payment_intent_id, org_id)" in await _keys(database, "payments")
    assert "UNIQUE (token_hash, org_id)" in await _keys(database, "invitations")
    assert "PRIMARY KEY (subscription_id, effective_at, org_id)" in await _keys(database, "subscription_plans")


async def test_after_021_a_row_cannot_point_at_another_organizations_parent(database: asyncpg.Connection) -> None:
    first = await _org_with_billing(database, "First", 1)
    second = await _org_with_billing(database, "Second", 2)
    await migrate(database, up_to=21)
    # 020 let an invoice line name any invoice; now its org_id must be the invoice's.
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="invoice_lines_invoice_fkey"):
        await database.execute(
            "INSERT INTO invoice_lines (org_id, invoice_id, line_no, kind, description, quantity, unit_price, amount) "
            "VALUES ($1, $2, 3, 'tax', 'Tax', 1, 0, 0)",
            second["org"], first["invoice"],
        )  # fmt: skip
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="refunds_payment_fkey"):
        await database.execute(
            "INSERT INTO refunds (id, org_id, payment_id, request_key, amount, currency, credits) "
            "VALUES ($1, $2, $3, 'cross', 1, 'USD', 0)",
            uuid.uuid4(), second["org"], first["payment"],
        )  # fmt: skip
    # The lookups by a Stripe id or a token alone use an index (the key's leading column).
    await database.execute("SET enable_seqscan = off")
    plan = await database.fetchval("EXPLAIN SELECT id FROM payments WHERE payment_intent_id = 'pi_1_paid'")
    assert "payments_payment_intent" in plan
