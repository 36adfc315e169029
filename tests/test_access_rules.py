"""The facts billing sets on the actor, through the running service: usage refused by the plan's
access with each code while reads and history still work, the storage quota's alert once per
crossing, the plan that would fit, prices by the catalog's version at the event's time and its
dimensions, and a revocation that keeps double entry (the teardown's verify)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as redis

from ledger.billing.catalog import Catalog, RateVersion
from ledger.core.commands import AccessStatus, Command, Envelope, Payload, RevokeCredits, SetAccess
from ledger.core.entries import Status
from ledger.core.money import MicroCredits
from ledger.runtime.settings import Settings
from ledger.store.catalog_versions import save_catalog
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub
from tests.conftest import Service
from tests.ledger_api import Ledger

ARCHIVE = "the plan act3-archive allows no usage; reads and history still work"


@pytest.fixture
async def mailbox(settings: Settings, redis_client: redis.Redis) -> AsyncIterator[Mailbox]:
    """Billing's road to the actor: a command and its committed result."""
    hub = PubSubHub(redis_client)
    await hub.start()
    box = Mailbox(redis_client, settings.partition_count, hub)
    await box.start()
    try:
        yield box
    finally:
        await hub.stop()


async def billing_sends(mailbox: Mailbox, org: Ledger, payload: Payload) -> dict[str, str]:
    envelope = Envelope(
        uuid.uuid4(), UUID(org.org), f"billing-{uuid.uuid4()}", datetime.now(UTC), mailbox.reply_channel
    )
    (reply,) = await mailbox.send_and_wait([Command(envelope, payload)], timeout_ms=30_000)
    assert reply.result.status is Status.ACCEPTED, reply.result
    return dict(reply.result.details)


async def access(org: Ledger) -> dict[str, Any]:
    found = await org.read("access { status plan products storageQuotaGb storageUsedGb priorityQueue }")
    result: dict[str, Any] = found["access"]
    return result


async def test_usage_is_refused_with_each_code_while_reads_and_history_still_work(
    service: Service, mailbox: Mailbox
) -> None:
    org = await Ledger.create(service, "Archived")
    assert await access(org) == {
        "status": "ACTIVE", "plan": None, "products": None, "storageQuotaGb": None, "storageUsedGb": "0",
        "priorityQueue": False,
    }  # fmt: skip
    await org.accepted("grantCredits", amount="100")
    await org.accepted("recordUsage", product="sms.message", quantity="2")
    hold = await org.accepted("placeHold", amount="10", expiresAt=datetime.now(UTC) + timedelta(hours=1),
                              product="sms.message")  # fmt: skip

    await billing_sends(mailbox, org, SetAccess(AccessStatus.INACTIVE, "act3-archive"))
    refused = await org.rejected("recordUsage", "PLAN_INACTIVE", product="sms.message", quantity="1")
    assert refused["rejection"]["message"] == ARCHIVE
    later = datetime.now(UTC) + timedelta(hours=1)
    await org.rejected("placeHold", "PLAN_INACTIVE", amount="1", expiresAt=later, product="sms.message")
    await org.rejected("issueQuote", "PLAN_INACTIVE", product="sms.message", quantity="1", expiresAt=later)
    # The hold placed before is captured: its work was authorized.
    captured = await org.accepted("captureHold", holdId=hold["holdId"], quantity="3", final=True)
    assert captured["creditsCharged"] == "3"
    # Reads, history and estimates still answer.
    assert (await org.balance())["total"] == "95"
    history = await org.read("transactions(first: 10) { edges { node { commandType status } } }")
    kinds = [edge["node"]["commandType"] for edge in history["transactions"]["edges"]]
    assert kinds.count("record_usage") == 2 and "set_access" in kinds
    estimate = await service.graphql(
        'query($o: ID!) { estimateUsage(organizationId: $o, product: "sms.message", quantity: "1") {'
        " affordable code } }",
        o=org.org,
    )
    assert estimate["data"]["estimateUsage"] == {"affordable": False, "code": "PLAN_INACTIVE"}
    assert (await access(org))["status"] == "INACTIVE"

    await billing_sends(mailbox, org, SetAccess(AccessStatus.TRIAL_ENDED, "act3-starter"))
    await org.rejected("recordUsage", "TRIAL_ENDED", product="sms.message", quantity="1")

    seats = SetAccess(AccessStatus.ACTIVE, "seatsco-team", frozenset({"ai.assistant", "ai.preview", "ai.summary"}))
    await billing_sends(mailbox, org, seats)
    await org.rejected("recordUsage", "PRODUCT_NOT_IN_PLAN", product="sms.message", quantity="1")
    assert (await org.accepted("recordUsage", product="ai.assistant", quantity="1"))["creditsCharged"] == "1"
    assert (await access(org))["products"] == ["ai.assistant", "ai.preview", "ai.summary"]


async def test_storage_over_the_quota_fires_once_per_crossing_and_names_the_plan_that_fits(
    service: Service, mailbox: Mailbox, catalog: Catalog
) -> None:
    # The shipped catalog (the service's fixture saved it): ACT3's plans have storage quotas.
    assert catalog.plans["act3-creator"][-1].storage_quota_gb == 100
    org = await Ledger.create(service, "Studio")
    quota = SetAccess(AccessStatus.ACTIVE, "act3-starter", storage_quota_gb=Decimal(10))
    await billing_sends(mailbox, org, quota)

    async def report(gigabytes: str, key: str | None = None) -> dict[str, Any]:
        body = await service.graphql(
            """mutation($input: ReportStorageInput!) { reportStorage(input: $input) {
                 outcome { status transactionId } usedGb quotaGb overQuota fittingPlan } }""",
            input={"organizationId": org.org, "gigabytes": gigabytes, "idempotencyKey": key or f"storage-{gigabytes}"},
        )
        assert "errors" not in body, body
        answer: dict[str, Any] = body["data"]["reportStorage"]
        return answer

    under = await report("7")
    assert [under[name] for name in ("usedGb", "quotaGb", "overQuota", "fittingPlan")] == [
        "7",
        "10",
        False,
        "act3-starter",
    ]
    over = await report("12.5")
    assert (over["overQuota"], over["fittingPlan"]) == (True, "act3-creator")
    assert (await report("40"))["overQuota"] is True  # still over: no second event
    assert await report("12.5") == over  # a retry answers the same and fires nothing
    assert (await report("600"))["fittingPlan"] is None  # no plan in force holds 600 GB
    back = await report("9")
    assert back["overQuota"] is False

    events = await org.read("alertEvents(first: 10) { events { state kind name threshold value alertId } }")
    found = list(reversed(events["alertEvents"]["events"]))
    assert [(e["state"], e["kind"], e["threshold"], e["value"]) for e in found] == [
        ("TRIGGERED", "STORAGE_OVER_QUOTA", "10", "12.5"),
        ("RESOLVED", "STORAGE_OVER_QUOTA", "10", "9"),
    ]
    assert found[0]["alertId"] == found[1]["alertId"]
    assert (await access(org))["storageUsedGb"] == "9"
    # A lower quota is a crossing too.
    await billing_sends(mailbox, org, SetAccess(AccessStatus.ACTIVE, "act3-starter", storage_quota_gb=Decimal(5)))
    events = await org.read("alertEvents(first: 10) { events { state value } }")
    assert events["alertEvents"]["events"][0] == {"state": "TRIGGERED", "value": "9"}


async def test_storage_readings_are_bounded(service: Service) -> None:
    org = await Ledger.create(service, "Bounded")
    for gigabytes in ("1.0000001", "1000000001", "-1"):
        body = await service.graphql(
            "mutation($input: ReportStorageInput!) { reportStorage(input: $input) { outcome { status } } }",
            input={"organizationId": org.org, "gigabytes": gigabytes, "idempotencyKey": f"k{gigabytes}"},
        )
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body


async def test_usage_is_priced_by_the_version_in_force_at_its_time_and_the_most_specific_dimensions(
    service: Service, pool: asyncpg.Pool, catalog: Catalog
) -> None:
    now = datetime.now(UTC)
    versions = (
        RateVersion("test.tokens", now - timedelta(days=2), Decimal(1)),
        RateVersion("test.tokens", now - timedelta(days=2), Decimal(5), {"model": "big"}),
        RateVersion("test.tokens", now - timedelta(hours=1), Decimal(3)),
    )
    async with pool.acquire() as connection:
        await save_catalog(connection, Catalog(rates={"test.tokens": versions}, settings=catalog.settings))
    org = await Ledger.create(service, "Priced")
    await org.accepted("grantCredits", amount="1000", effectiveAt=now - timedelta(days=3))  # late events use it too

    async def charged(occurred_at: datetime | None = None, **dimensions: str) -> str:
        fields: dict[str, Any] = {"product": "test.tokens", "quantity": "1"}
        if occurred_at is not None:
            fields["occurredAt"] = occurred_at
        fields["dimensions"] = [{"name": name, "value": value} for name, value in dimensions.items()]
        return str((await org.accepted("recordUsage", **fields))["creditsCharged"])

    assert await charged() == "3"  # the later version prices what comes after it
    assert await charged(now - timedelta(hours=2)) == "1"  # ...and only that: an earlier event keeps its price
    assert await charged(model="big") == "5"  # the version for the event's dimensions wins
    assert await charged(model="small") == "3"
    await org.rejected("recordUsage", "UNKNOWN_PRODUCT", product="test.tokens", quantity="1",
                       occurredAt=now - timedelta(days=3))  # fmt: skip


async def test_a_revocation_takes_the_periods_subscription_credits_and_keeps_the_books(
    service: Service, mailbox: Mailbox
) -> None:
    org = await Ledger.create(service, "Seats")
    period_end = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    base = await org.accepted("grantCredits", amount="400", source="SUBSCRIPTION", expiresAt=period_end)
    bought = await org.accepted("grantCredits", amount="50", kind="PURCHASED", expiresAt=period_end)
    details = await billing_sends(mailbox, org, RevokeCredits(MicroCredits(100_000_000), period_end, "seats 5 -> 4"))
    assert details == {"revoked": "100", "requested": "100"}
    lots = await org.lots()
    assert (lots[base["lotId"]]["remaining"], lots[bought["lotId"]]["remaining"]) == ("300", "50")
    details = await billing_sends(mailbox, org, RevokeCredits(MicroCredits(1_000_000_000), period_end))
    assert details == {"revoked": "300", "requested": "1000"}  # never more than there is, never refused
    assert (await org.balance())["total"] == "50"
