"""The catalog through GraphQL: the `catalog` query (plans, packs, products with their rate versions,
the version in force at a time), `loadCatalog` (a second load changes nothing; a refused document
changes nothing and says where) and `addRateVersion` (usage after its effective time is priced by
it, usage before keeps the old price)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.conftest import Service
from tests.ledger_api import Ledger

CATALOG = """query($at: DateTime) { catalog(at: $at) {
  currency creditPrice
  products { key kind unit dimensions
             rates { effectiveAt creditsPerUnit overagePricePerUnit dimensions { name value } } }
  plans { key current { name priceMonthly priceAnnual perSeat credits creditsPerSeat kitsIncluded extraKitPrice
                        membersMax storageQuotaGb creditPolicy rolloverCap rolloverCycles trialMonths products
                        atZero generation mediaPurgeDays priorityQueue custom rank features }
          versions { effectiveAt name } }
  packs { key current { credits price priceWithSurcharge surchargePercent expiresAfterDays products plans outOfCredit
                        signup } }
} }"""
LOAD = "mutation($d: String!) { loadCatalog(input: {document: $d}) { added unchanged } }"
ADD_RATE = """mutation($input: AddRateVersionInput!) { addRateVersion(input: $input) {
  added version { product effectiveAt creditsPerUnit dimensions { name value } currency } } }"""

DOCUMENT = """\
[[products]]
key = "render.minutes"
name = "Rendering"
kind = "usage"
unit = "minute"
[[products.rates]]
effective_at = 2026-01-01T00:00:00Z
credits_per_unit = "3"

[[plans]]
key = "render-pro"
[[plans.versions]]
effective_at = 2026-01-01T00:00:00Z
name = "Render Pro"
price_monthly = "49"
credits = "5000"
products = ["render.minutes"]
[[plans.versions]]
effective_at = 2026-07-01T00:00:00Z
name = "Render Pro"
price_monthly = "59"
credits = "6000"
products = ["render.minutes"]
"""


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]


async def _versions(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT (SELECT count(*) FROM catalog_entries) + (SELECT count(*) FROM catalog_rates)"
    )
    return count


async def test_the_catalog_query_shows_the_seeds(service: Service) -> None:
    body = await service.graphql(CATALOG)
    assert "errors" not in body, body
    catalog = body["data"]["catalog"]
    assert (catalog["currency"], catalog["creditPrice"]) == ("USD", "0.001")
    plans = {plan["key"]: plan["current"] for plan in catalog["plans"]}
    assert plans["meclabs-sell"] == {
        "name": "SELL", "priceMonthly": "995", "priceAnnual": None, "perSeat": False, "credits": "18000",
        "creditsPerSeat": "0", "kitsIncluded": 10, "extraKitPrice": "20", "membersMax": 12, "storageQuotaGb": None,
        "creditPolicy": "RESET", "rolloverCap": None, "rolloverCycles": None, "trialMonths": 0, "products": None,
        "atZero": "BLOCK", "generation": True, "mediaPurgeDays": None, "priorityQueue": False, "custom": False,
        "rank": 20, "features": [],
    }  # fmt: skip
    creator, studio = plans["act3-creator"], plans["act3-studio"]
    assert (creator["creditPolicy"], creator["rolloverCap"], creator["rolloverCycles"]) == ("ROLLOVER", "66000", 6)
    assert (studio["priorityQueue"], studio["features"], plans["act3-archive"]["features"]) == (
        True, ["priority_queue"], ["no_generation"],
    )  # fmt: skip
    team = plans["seatsco-team"]
    assert (team["priceMonthly"], team["priceAnnual"], team["creditsPerSeat"], team["products"]) == (
        "10", "100", "100", ["ai.assistant", "ai.preview", "ai.summary"],
    )  # fmt: skip
    # Plans by rank: ACT3 Archive (0) first.
    assert catalog["plans"][0]["key"] == "act3-archive"
    packs = {pack["key"]: pack["current"] for pack in catalog["packs"]}
    assert (packs["act3-out-of-credit"]["price"], packs["act3-out-of-credit"]["priceWithSurcharge"]) == ("10", "11.5")
    assert (packs["seatsco-topup"]["credits"], packs["seatsco-topup"]["expiresAfterDays"]) == ("1000", 365)
    assert packs["cheddar-signup"]["signup"] is True
    products = {product["key"]: product for product in catalog["products"]}
    tokens = products["ai.tokens"]
    assert (tokens["kind"], tokens["dimensions"]) == ("USAGE", ["model", "operation"])
    assert [rate["creditsPerUnit"] for rate in tokens["rates"]] == ["1", "4", "0.25"]
    assert tokens["rates"][1]["dimensions"] == [
        {"name": "model", "value": "gpt-4o"},
        {"name": "operation", "value": "output"},
    ]
    assert (products["storage.gb"]["kind"], products["storage.gb"]["rates"]) == ("STORAGE", [])


async def test_load_twice_and_the_version_in_force_at_a_time(service: Service, pool: asyncpg.Pool) -> None:
    first = await service.graphql(LOAD, d=DOCUMENT)
    assert first["data"]["loadCatalog"] == {"added": 4, "unchanged": 0}  # no [catalog]: the settings stay
    second = await service.graphql(LOAD, d=DOCUMENT)
    assert second["data"]["loadCatalog"] == {"added": 0, "unchanged": 4}
    june = await service.graphql(CATALOG, at="2026-06-30T23:59:59Z")
    plan = {plan["key"]: plan for plan in june["data"]["catalog"]["plans"]}["render-pro"]
    assert (plan["current"]["priceMonthly"], plan["current"]["credits"]) == ("49", "5000")
    assert [version["effectiveAt"] for version in plan["versions"]] == [
        "2026-01-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00",
    ]  # fmt: skip
    july = await service.graphql(CATALOG, at="2026-07-01T00:00:00Z")
    plan = {plan["key"]: plan for plan in july["data"]["catalog"]["plans"]}["render-pro"]
    assert (plan["current"]["priceMonthly"], plan["current"]["credits"]) == ("59", "6000")
    before = await service.graphql(CATALOG, at="2025-12-31T00:00:00Z")
    assert {p["key"]: p["current"] for p in before["data"]["catalog"]["plans"]}["render-pro"] is None
    products = await service.graphql("{ products { key creditsPerUnit } }")
    assert {"key": "render.minutes", "creditsPerUnit": "3"} in products["data"]["products"]


async def test_a_refused_document_changes_nothing_and_says_where(service: Service, pool: asyncpg.Pool) -> None:
    stored = await _versions(pool)
    broken = DOCUMENT.replace('credits = "6000"', 'credits = "-6000"')
    body = await service.graphql(LOAD, d=broken)
    assert _codes(body) == ["CATALOG_INVALID"]
    assert body["errors"][0]["message"] == (
        'line 22: plans[0] "render-pro" versions[1].credits: must not be negative: -6000'
    )
    # A stored version with other content: refused whole, the new parts too.
    changed = (
        DOCUMENT
        + '\n[[plans]]\nkey = "meclabs-sell"\n[[plans.versions]]\neffective_at = 2000-01-01T00:00:00Z\nname = "SELL!"\n'
    )
    body = await service.graphql(LOAD, d=changed)
    assert _codes(body) == ["CATALOG_INVALID"]
    assert "plan 'meclabs-sell' already has a version effective 2000-01-01" in body["errors"][0]["message"]
    assert _codes(await service.graphql(LOAD, d="x" * 262_145)) == ["CATALOG_INVALID"]
    assert await _versions(pool) == stored


async def test_a_new_rate_version_prices_usage_after_its_effective_time(service: Service) -> None:
    org = await Ledger.create(service, "Repriced")
    await org.accepted("grantCredits", amount="1000")
    effective = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    rate = {"product": "sms.message", "effectiveAt": effective.isoformat(), "creditsPerUnit": "3"}
    added = await service.graphql(ADD_RATE, input=rate)
    assert added["data"]["addRateVersion"] == {
        "added": True,
        "version": {"product": "sms.message", "effectiveAt": effective.isoformat(), "creditsPerUnit": "3",
                    "dimensions": [], "currency": "USD"},
    }  # fmt: skip
    assert (await service.graphql(ADD_RATE, input=rate))["data"]["addRateVersion"]["added"] is False
    before = await org.accepted(
        "recordUsage", product="sms.message", quantity="1", occurredAt=effective - timedelta(seconds=1)
    )
    after = await org.accepted("recordUsage", product="sms.message", quantity="1", occurredAt=effective)
    assert (before["creditsCharged"], after["creditsCharged"]) == ("1", "3")

    # A dimension version: only events carrying it.
    o1 = {"product": "ai.tokens", "effectiveAt": effective.isoformat(), "creditsPerUnit": "8",
          "dimensions": [{"name": "model", "value": "o1"}]}  # fmt: skip
    assert (await service.graphql(ADD_RATE, input=o1))["data"]["addRateVersion"]["added"] is True
    await asyncio.sleep(0.2)
    priced = await org.accepted(
        "recordUsage", product="ai.tokens", quantity="10", occurredAt=effective,
        dimensions=[{"name": "model", "value": "o1"}],
    )  # fmt: skip
    plain = await org.accepted("recordUsage", product="ai.tokens", quantity="10", occurredAt=effective)
    assert (priced["creditsCharged"], plain["creditsCharged"]) == ("80", "10")


async def test_a_rate_version_that_cannot_be_added(service: Service, pool: asyncpg.Pool) -> None:
    stored = await _versions(pool)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        await service.graphql(ADD_RATE, input={"product": "sms.message", "effectiveAt": soon, "creditsPerUnit": "2"})
    )["data"]["addRateVersion"]["added"]
    cases = [
        ({"effectiveAt": soon, "creditsPerUnit": "5"}, "CATALOG_INVALID"),  # same version, other content
        ({"product": "fax.page"}, "UNKNOWN_PRODUCT"),
        ({"product": "ai.tokens", "dimensions": [{"name": "region", "value": "eu"}]}, "CATALOG_INVALID"),
        ({"product": "storage.gb-month", "effectiveAt": "2026-01-01T00:00:00Z"}, "INVALID_INPUT"),  # the past
        ({"product": "storage.gb-month", "creditsPerUnit": "1000000001"}, "INVALID_INPUT"),
        ({"product": "storage.gb-month", "currency": "dollars"}, "INVALID_INPUT"),
    ]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for change, code in cases:
        body = await service.graphql(
            ADD_RATE, input={"product": "sms.message", "effectiveAt": later, "creditsPerUnit": "2", **change}
        )
        assert _codes(body) == [code], (change, body)
    assert await _versions(pool) == stored + 1
