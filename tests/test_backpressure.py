"""Bounds and the caller's wait: a full partition refuses with OVERLOADED instead of growing, a
caller that waits too long gets RESULT_TIMEOUT and may retry safely, streams are trimmed only
below what is still pending, and batches of usage events go in whole or not at all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis

from ledger import constants
from ledger.billing.catalog import Catalog
from ledger.core.commands import Command, Envelope, RecordUsage
from ledger.runtime.settings import Settings
from ledger.stream import keys
from ledger.stream.mailbox import Mailbox
from ledger.stream.worker import LedgerWorker
from tests.conftest import Service
from tests.ledger_api import Ledger

BATCH = """
mutation($input: RecordUsageBatchInput!) {
  recordUsageBatch(input: $input) { status creditsCharged rejection { code } }
}
"""


def _usage_event(org: str, key: str, quantity: str = "1", product: str = "sms.message") -> dict[str, Any]:
    return {"organizationId": org, "product": product, "quantity": quantity, "idempotencyKey": key}


async def test_a_full_partition_refuses_with_overloaded_and_queues_nothing(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await Ledger.create(service, "Busy")
    await org.accepted("grantCredits", amount="10")
    monkeypatch.setattr(constants, "stream_length_max", 0)
    body = await service.graphql(
        "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { status } }",
        i=_usage_event(org.org, "refused"),
    )
    assert body["errors"][0]["extensions"]["code"] == "OVERLOADED"
    monkeypatch.undo()
    assert (await org.balance())["total"] == "10"
    # The same key goes through once the ledger has room again.
    outcome = await org.accepted("recordUsage", product="sms.message", quantity="1", idempotencyKey="refused")
    assert outcome["creditsCharged"] == "1"


async def test_a_caller_that_times_out_may_retry_and_is_charged_once(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await Ledger.create(service, "Impatient")
    await org.accepted("grantCredits", amount="10")
    monkeypatch.setattr(constants, "apply_wait_timeout_ms", 0)
    body = await service.graphql(
        "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { status } }",
        i=_usage_event(org.org, "slow", quantity="3"),
    )
    assert body["errors"][0]["extensions"]["code"] == "RESULT_TIMEOUT"
    monkeypatch.undo()
    retried = await org.accepted("recordUsage", product="sms.message", quantity="3", idempotencyKey="slow")
    again = await org.accepted("recordUsage", product="sms.message", quantity="3", idempotencyKey="slow")
    assert retried["transactionId"] == again["transactionId"]
    assert (await org.balance())["total"] == "7"


async def test_usage_batches_apply_per_event_and_reject_bad_input_whole(service: Service) -> None:
    first, second = await Ledger.create(service, "One"), await Ledger.create(service, "Two")
    await first.accepted("grantCredits", amount="5")
    await second.accepted("grantCredits", amount="1")
    events = [
        _usage_event(first.org, "b-1", "2"),
        _usage_event(second.org, "b-2", "1"),
        _usage_event(second.org, "b-3", "1"),  # more than `second` has left
        _usage_event(first.org, "b-1", "2"),  # a repeat in the same batch: charged once
    ]
    body = await service.graphql(BATCH, input={"events": events, "ack": "APPLIED"})
    outcomes = body["data"]["recordUsageBatch"]
    assert [o["status"] for o in outcomes] == ["ACCEPTED", "ACCEPTED", "REJECTED", "ACCEPTED"]
    assert outcomes[2]["rejection"]["code"] == "INSUFFICIENT_CREDITS"
    assert (await first.balance())["total"] == "3" and (await second.balance())["total"] == "0"

    for bad, code in [
        ([*events, _usage_event(first.org, "b-9", "-1")], "INVALID_INPUT"),
        ([_usage_event(first.org, "b-10"), _usage_event(first.org, "b-11", product="nope")], "UNKNOWN_PRODUCT"),
        ([_usage_event(first.org, "b-12"), _usage_event(str(uuid.uuid4()), "b-13")], "NOT_FOUND"),
        ([], "INVALID_INPUT"),
        ([_usage_event(first.org, f"many-{i}") for i in range(constants.usage_batch_max + 1)], "INVALID_INPUT"),
    ]:
        body = await service.graphql(BATCH, input={"events": bad})
        assert body["errors"][0]["extensions"]["code"] == code, body
    assert (await first.balance())["total"] == "3", "a refused batch queued nothing"

    queued = await service.graphql(BATCH, input={"events": [_usage_event(first.org, "q-1")]})
    assert queued["data"]["recordUsageBatch"] == [{"status": "QUEUED", "creditsCharged": None, "rejection": None}]
    for _ in range(100):
        if (await first.balance())["total"] == "2":
            break
        await asyncio.sleep(0.02)
    assert (await first.balance())["total"] == "2"


async def test_streams_are_trimmed_only_below_what_is_pending(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis, catalog: Catalog
) -> None:
    org = uuid.uuid4()
    await pool.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Trim')", org)
    stream = keys.stream(keys.partition_of(org, settings.partition_count))
    mailbox = Mailbox(redis_client, settings.partition_count)
    worker = LedgerWorker(pool, redis_client, settings.partition_count)
    await worker._maintain_leases()

    def usage(key: str) -> Command:
        return Command(Envelope(uuid.uuid4(), org, key, datetime.now(UTC)), RecordUsage("sms.message", Decimal(1)))

    # A consumer reads five entries and never acknowledges them (a worker that is about to die).
    await mailbox.send([usage(f"stuck-{i}") for i in range(5)])
    stuck = await redis_client.xreadgroup(keys.CONSUMER_GROUP, "stuck", {stream: ">"}, count=5)
    assert len(stuck[0][1]) == 5
    await mailbox.send([usage(f"later-{i}") for i in range(5)])
    for _ in range(20):
        if await worker.turn():
            break
    await worker._settle()
    assert await redis_client.xlen(stream) == 10, "nothing at or above the oldest pending entry is trimmed"

    await redis_client.xack(stream, keys.CONSUMER_GROUP, *(entry_id for entry_id, _ in stuck[0][1]))
    await mailbox.send([usage("last")])
    for _ in range(20):
        if await worker.turn():
            break
    await worker._settle()
    assert await redis_client.xlen(stream) == 1, "with nothing pending, everything applied is trimmed"


async def test_the_mailbox_reloads_its_script_after_redis_forgets_it(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis
) -> None:
    org = uuid.uuid4()
    mailbox = Mailbox(redis_client, settings.partition_count)
    stream = keys.stream(keys.partition_of(org, settings.partition_count))
    command = Command(Envelope(uuid.uuid4(), org, "k", datetime.now(UTC)), RecordUsage("sms.message", Decimal(1)))
    await mailbox.send([command])
    await redis_client.script_flush()  # as after a restart: scripts are not persisted
    await mailbox.send([command, command])
    assert await redis_client.xlen(stream) == 3
