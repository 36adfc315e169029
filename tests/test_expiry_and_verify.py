"""Expiry writes breakage through the org's actor; `verify` recomputes everything from the journal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from jobs.expiry import expire_credit_lots
from ledger.store.verify import verify
from ledger.stream.mailbox import Mailbox
from tests.conftest import Service
from tests.test_walking_skeleton import USAGE, balance, create_org

GRANT_EXPIRING = """
mutation($org: ID!, $amount: Credits!, $key: String!, $kind: LotKind!, $expiresAt: DateTime) {
  grantCredits(input: {organizationId: $org, amount: $amount, idempotencyKey: $key, kind: $kind,
                       expiresAt: $expiresAt}) { status }
}
"""


async def _eventually(predicate, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_expired_remainder_becomes_breakage_once(service: Service, pool: asyncpg.Pool) -> None:
    org = await create_org(service)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    await service.graphql(GRANT_EXPIRING, org=org, amount="20", key="bonus", kind="BONUS", expiresAt=soon)
    await service.graphql(GRANT_EXPIRING, org=org, amount="50", key="base", kind="BASE", expiresAt=None)
    used = await service.graphql(USAGE, org=org, product="sms.message", quantity="5", key="u1")
    assert used["data"]["recordUsage"]["balanceAfter"] == "65"  # the expiring bonus went first
    await asyncio.sleep(1.1)
    assert (await balance(service, org))["total"] == "50"  # expired credits are not spendable

    context = {"pool": pool, "mailbox": Mailbox(service.worker.client, service.settings.partition_count)}
    assert await expire_credit_lots(context) == 1

    async def breakage_written() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM ledger_postings WHERE account = 'breakage:bonus'"))

    await _eventually(breakage_written)
    assert await pool.fetchval("SELECT sum(amount) FROM ledger_postings WHERE account = 'breakage:bonus'") == 15_000_000
    assert await expire_credit_lots(context) == 0  # nothing left to expire
    assert (await balance(service, org))["total"] == "50"
    assert await verify(pool) == []


async def test_verify_reports_a_lot_that_disagrees_with_the_journal(service: Service, pool: asyncpg.Pool) -> None:
    org = await create_org(service)
    await service.graphql(GRANT_EXPIRING, org=org, amount="10", key="g", kind="BASE", expiresAt=None)
    assert await verify(pool) == []
    await pool.execute("UPDATE credit_lots SET remaining = remaining - 1")
    violations = await verify(pool)
    assert [v.rule for v in violations] == ["lot_remaining_equals_journal"]
    assert str(violations[0].organization_id) == org
    await pool.execute("UPDATE credit_lots SET remaining = remaining + 1")
