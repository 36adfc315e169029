"""The balance query answered from the workers' Redis snapshot when it is current, and from
PostgreSQL when it is not (missing, unreadable, too old, past its `until`); the snapshot's `until`
is the first instant time alone changes the balance; a batch of replays writes it afresh."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import redis.asyncio as redis

from ledger import constants
from ledger.core.commands import LotKind
from ledger.core.meter import MeterUpdate
from ledger.core.money import MicroCredits
from ledger.core.state import Balance, Hold, Lot, OrgState
from ledger.stream import feeds, keys
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.test_reads import QueryLog, query_log

__all__ = ["query_log"]  # the fixture, shared with test_reads

_BALANCE = "query($id: ID!) { organization(id: $id) { balance { total held available } } }"


async def balance(service: Service, org: str) -> dict[str, str]:
    body = await service.graphql(_BALANCE, id=org)
    assert "errors" not in body, body
    answer: dict[str, str] = body["data"]["organization"]["balance"]
    return answer


def snapshot(org: str, total: int, held: int, at: datetime, until: datetime | None) -> bytes:
    update = MeterUpdate(uuid.UUID(org), at, Balance(MicroCredits(total), MicroCredits(held)), MicroCredits(total))
    return feeds.encode(update, until)


async def test_a_current_snapshot_answers_and_any_other_falls_back_to_postgresql(
    service: Service, redis_client: redis.Redis
) -> None:
    org = await Ledger.create(service, "Snapshot")
    await org.accepted("grantCredits", amount="10")
    await org.accepted("recordUsage", product="sms.message", quantity="3")
    key = keys.balance_snapshot(uuid.UUID(org.org))
    written = await redis_client.get(key)
    assert written is not None and json.loads(written)["balance"] == {"total": 7_000_000, "held": 0}
    assert await balance(service, org.org) == {"total": "7", "held": "0", "available": "7"}

    now = datetime.now(UTC)
    # A snapshot that is current is what the query answers (told apart here by a made-up total).
    await redis_client.set(key, snapshot(org.org, 5_000_000, 1_000_000, now, now + timedelta(hours=1)))
    assert await balance(service, org.org) == {"total": "5", "held": "1", "available": "4"}
    # Every other is read past, to PostgreSQL's committed 7.
    too_old = now - timedelta(seconds=constants.balance_snapshot_age_max_s + 1)
    for stale in (
        snapshot(org.org, 5_000_000, 0, too_old, None),  # older than the age bound
        snapshot(org.org, 5_000_000, 0, now - timedelta(seconds=2), now - timedelta(seconds=1)),  # past until
        snapshot(org.org, 5_000_000, 0, now + timedelta(minutes=1), None),  # written "in the future"
        b'{"organization_id":"x","at":"2026-01-01T00:00:00+00:00","balance":{"total":1,"held":0}}',  # no until
        b"not json",
    ):
        await redis_client.set(key, stale)
        assert (await balance(service, org.org))["total"] == "7", stale
    await redis_client.delete(key)
    assert (await balance(service, org.org))["total"] == "7"


async def test_a_balance_read_from_a_current_snapshot_sends_postgresql_nothing(
    query_log: QueryLog, service: Service
) -> None:
    org = await Ledger.create(service, "Quiet")
    await org.accepted("grantCredits", amount="10")
    await org.accepted("recordUsage", product="sms.message", quantity="1")
    await balance(service, org.org)  # warm: the caller's key is verified once
    query_log.statements.clear()
    assert await balance(service, org.org) == {"total": "9", "held": "0", "available": "9"}
    assert query_log.count() == 0, query_log.statements


async def test_a_lot_that_ends_is_gone_from_the_balance_at_once(service: Service, redis_client: redis.Redis) -> None:
    org = await Ledger.create(service, "Ending")
    ends = datetime.now(UTC) + timedelta(seconds=2)
    await org.accepted("grantCredits", amount="4", expiresAt=ends.isoformat())
    await org.accepted("grantCredits", amount="6")
    written = await redis_client.get(keys.balance_snapshot(uuid.UUID(org.org)))
    assert written is not None and datetime.fromisoformat(json.loads(written)["until"]) == ends
    assert (await balance(service, org.org))["total"] == "10"
    await asyncio.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.1)
    # No command has run since (the expiry job is not running): the snapshot says 10 but ended.
    assert (await balance(service, org.org))["total"] == "6"


async def test_replayed_commands_write_the_snapshot_again(service: Service, redis_client: redis.Redis) -> None:
    org = await Ledger.create(service, "Replayed")
    await org.accepted("grantCredits", amount="10", idempotencyKey="grant")
    key = keys.balance_snapshot(uuid.UUID(org.org))
    await redis_client.delete(key)  # as if the worker had crashed between its commit and its acknowledgement
    again = await org.accepted("grantCredits", amount="10", idempotencyKey="grant")
    assert again["balanceAfter"] == "10"
    written = await redis_client.get(key)
    assert written is not None and json.loads(written)["balance"]["total"] == 10_000_000


def _lot(remaining: int, effective_at: datetime, expires_at: datetime | None) -> Lot:
    return Lot(
        id=uuid.uuid4(),
        kind=LotKind.BASE,
        amount=MicroCredits(max(remaining, 1)),
        remaining=MicroCredits(remaining),
        priority=0,
        effective_at=effective_at,
        expires_at=expires_at,
        created_at=effective_at,
    )


def test_until_is_the_first_instant_time_alone_changes_the_balance() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    org = uuid.uuid4()
    assert feeds.valid_until(OrgState(org), at) is None
    forever = _lot(5, at - timedelta(days=1), None)
    assert feeds.valid_until(OrgState(org, lots=(forever,)), at) is None
    ending = _lot(5, at - timedelta(days=1), at + timedelta(days=3))
    starting = _lot(5, at + timedelta(days=2), at + timedelta(days=9))
    spent = _lot(0, at - timedelta(days=1), at + timedelta(hours=1))  # nothing left: its end changes nothing
    ended = _lot(5, at - timedelta(days=9), at - timedelta(days=1))
    state = OrgState(org, lots=(forever, ending, starting, spent, ended))
    assert feeds.valid_until(state, at) == at + timedelta(days=2)
    hold = Hold(
        id=uuid.uuid4(),
        transaction_id=uuid.uuid4(),
        amount=MicroCredits(1),
        reserved=MicroCredits(1),
        captured=MicroCredits(0),
        expires_at=at + timedelta(hours=5),
        placed_at=at - timedelta(hours=1),
    )
    assert feeds.valid_until(OrgState(org, lots=state.lots, holds={hold.id: hold}), at) == at + timedelta(hours=5)
