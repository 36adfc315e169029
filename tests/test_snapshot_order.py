"""A balance snapshot never goes back: each carries its version (the fencing epoch its batch
committed under, then the worker's batch sequence) and the acknowledgement writes it only over an
older one. A late acknowledgement (a worker paused past its lease, a retried write) leaves the
newer snapshot, so a balance read after an APPLIED answer never shows credits spent since."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis

from ledger.stream import keys
from ledger.stream.acknowledgement import _SNAPSHOT, acknowledge
from ledger.stream.batches import Prepared
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.test_balance_snapshot import balance, snapshot


async def applied(service: Service, org: str, key: str, quantity: str) -> str:
    event = {"organizationId": org, "product": "sms.message", "quantity": quantity, "idempotencyKey": key}
    response = await service.client.post(
        "/v1/usage",
        json={"events": [event], "ack": "APPLIED"},
        headers={"authorization": f"Bearer {service.admin_key}"},
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["status"] == "ACCEPTED", result
    after: str = result["balanceAfter"]
    return after


async def two_batches(service: Service, org: str) -> list[Prepared]:
    """Apply two usage batches through the real worker, keeping what each acknowledged."""
    captured: list[Prepared] = []
    worker = service.worker
    original = worker._after_commit

    async def keep(prepared: Prepared) -> None:
        if prepared.outcomes:
            captured.append(prepared)
        await original(prepared)

    worker._after_commit = keep  # type: ignore[method-assign]
    try:
        assert await applied(service, org, "u1", "10") == "90"
        assert await applied(service, org, "u2", "20") == "70"
    finally:
        worker._after_commit = original  # type: ignore[method-assign]
    assert len(captured) == 2
    return captured


def stored_version(raw: Any) -> list[int]:
    assert raw is not None
    version: list[int] = json.loads(raw)["version"]
    return version


async def test_a_late_acknowledgement_leaves_the_newer_snapshot(service: Service, redis_client: redis.Redis) -> None:
    org = await Ledger.create(service, "Late ack")
    await org.accepted("grantCredits", amount="100")
    first, second = await two_batches(service, org.org)
    key = keys.balance_snapshot(uuid.UUID(org.org))
    assert second.sequence > first.sequence and second.tokens == first.tokens
    assert await balance(service, org.org) == {"total": "70", "held": "0", "available": "70"}

    # The first batch's worker, paused past its lease, runs its acknowledgement now.
    await acknowledge(redis_client, first)
    assert await balance(service, org.org) == {"total": "70", "held": "0", "available": "70"}
    assert json.loads(await redis_client.get(key))["balance"]["total"] == 70_000_000
    # The same batch acknowledged again (a retried write) changes nothing either.
    await acknowledge(redis_client, second)
    assert stored_version(await redis_client.get(key)) == [second.tokens[second.entries[0].partition], second.sequence]


async def test_a_takeover_orders_by_epoch_before_sequence(service: Service, redis_client: redis.Redis) -> None:
    """The new owner's sequence starts anew; its higher epoch is what puts it after the old owner's
    batches, however many those were."""
    org = await Ledger.create(service, "Takeover")
    await org.accepted("grantCredits", amount="100")
    first, second = await two_batches(service, org.org)
    partition = first.entries[0].partition
    epoch = first.tokens[partition]
    old_owner = replace(first, tokens={partition: epoch}, sequence=10_000)
    new_owner = replace(second, tokens={partition: epoch + 1}, sequence=1)
    await acknowledge(redis_client, new_owner)
    await acknowledge(redis_client, old_owner)
    assert await balance(service, org.org) == {"total": "70", "held": "0", "available": "70"}
    key = keys.balance_snapshot(uuid.UUID(org.org))
    assert stored_version(await redis_client.get(key)) == [epoch + 1, 1]
    # And a newer batch of the old epoch's owner would have been written (the order is not reversed).
    await acknowledge(redis_client, replace(first, tokens={partition: epoch + 1}, sequence=2))
    assert await balance(service, org.org) == {"total": "90", "held": "0", "available": "90"}


async def test_a_snapshot_without_a_version_is_older_and_forgotten_scripts_are_loaded(
    service: Service, redis_client: redis.Redis
) -> None:
    """An older release's snapshot (no version) is overwritten; after Redis forgets its scripts
    the snapshot is still written in the same acknowledgement, never left stale."""
    org = await Ledger.create(service, "Unversioned")
    await org.accepted("grantCredits", amount="100")
    first, second = await two_batches(service, org.org)
    key = keys.balance_snapshot(uuid.UUID(org.org))
    await redis_client.set(key, snapshot(org.org, 55_000_000, 0, datetime.now(UTC), None))
    assert await balance(service, org.org) == {"total": "55", "held": "0", "available": "55"}
    await redis_client.script_flush()
    await acknowledge(redis_client, first)
    assert await balance(service, org.org) == {"total": "90", "held": "0", "available": "90"}
    await redis_client.script_flush()
    await acknowledge(redis_client, second)
    assert await balance(service, org.org) == {"total": "70", "held": "0", "available": "70"}


async def test_one_call_writes_a_batch_s_snapshots_each_only_over_an_older_one(redis_client: redis.Redis) -> None:
    """On a single Redis one script call writes all of a batch's snapshots; each key is judged alone."""

    newer, older, absent = (f"balance:{{{uuid.uuid4()}}}" for _ in range(3))
    await redis_client.set(newer, '{"version":[3,9],"total":"1"}')
    await redis_client.set(older, '{"version":[3,1],"total":"2"}')
    written = await redis_client.eval(  # type: ignore[misc]
        _SNAPSHOT, 3, newer, older, absent,
        3, 5, '{"version":[3,5],"total":"a"}', 3, 5, '{"version":[3,5],"total":"b"}',
        3, 5, '{"version":[3,5],"total":"c"}',
    )  # fmt: skip
    assert written == 2
    assert json.loads(await redis_client.get(newer))["total"] == "1"
    assert json.loads(await redis_client.get(older))["total"] == "b"
    assert json.loads(await redis_client.get(absent))["total"] == "c"
