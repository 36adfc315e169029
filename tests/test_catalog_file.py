"""The catalog as a TOML document: the example reproduces every seed with the issue's numbers, and a
document with any error is refused whole, naming the line and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from graphql_api.shell.catalog import example_catalog, example_catalog_text
from ledger.billing.catalog import Catalog, CreditPolicy, Interval, ProductKind
from ledger.billing.catalog_file import parse_catalog
from ledger.core import bounds
from ledger.core.commands import AtZero
from ledger.core.errors import CatalogInvalid
from ledger.store.catalog_versions import load_catalog, save_catalog

NOW = datetime(2026, 12, 3, tzinfo=UTC)
AI = frozenset({"ai.assistant", "ai.preview", "ai.summary"})


def credits(whole: int) -> int:
    return whole * bounds.MICRO_PER_CREDIT


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return example_catalog()


def test_meclabs(catalog: Catalog) -> None:
    plans = [catalog.plan_at(key, NOW) for key in ("meclabs-build", "meclabs-sell", "meclabs-scale")]
    assert all(plan is not None for plan in plans)
    rows = [
        (p.price(Interval.MONTHLY), p.credits, p.kits_included, p.extra_kit_price, p.members_max, p.rank)
        for p in plans
        if p is not None
    ]
    assert rows == [
        (Decimal(495), credits(6_000), 0, Decimal(20), 5, 10),
        (Decimal(995), credits(18_000), 10, Decimal(20), 12, 20),
        (Decimal(2995), credits(75_000), 45, Decimal(20), 30, 30),
    ]
    for plan in plans:
        assert plan is not None
        expiry = (plan.bonus_expiry_days, plan.purchased_expiry_days)
        assert (plan.credit_policy, *expiry) == (CreditPolicy.RESET, 90, None)


def test_act3(catalog: Catalog) -> None:
    starter, creator, studio, enterprise, archive = (
        catalog.plan_at(f"act3-{name}", NOW) for name in ("starter", "creator", "studio", "enterprise", "archive")
    )
    assert starter and creator and studio and enterprise and archive
    assert (starter.price(Interval.MONTHLY), starter.credits, starter.storage_quota_gb) == (0, credits(800), 10)
    assert (starter.trial_months, starter.rank, starter.has_trial) == (6, 10, True)
    assert (creator.price(Interval.MONTHLY), creator.credits, creator.storage_quota_gb) == (35, credits(33_000), 100)
    assert (creator.credit_policy, creator.rollover_cap, creator.rollover_cycles, creator.rank) == (
        CreditPolicy.ROLLOVER, credits(66_000), 6, 20,
    )  # fmt: skip
    assert (studio.price(Interval.MONTHLY), studio.credits, studio.storage_quota_gb) == (99, credits(120_000), 500)
    assert (studio.priority_queue, studio.rank, starter.priority_queue) == (True, 30, False)
    assert (enterprise.custom, enterprise.pooled, enterprise.price(Interval.MONTHLY), enterprise.rank) == (
        True, True, None, 40,
    )  # fmt: skip
    assert (archive.price(Interval.MONTHLY), archive.credits, archive.generation) == (0, 0, False)
    assert (archive.media_purge_days, archive.rank) == (30, 0)
    pack = catalog.pack_at("act3-out-of-credit", NOW)
    assert pack is not None
    assert (pack.credits, pack.price, pack.surcharge_percent, pack.out_of_credit) == (
        credits(10_000), 10, 15, True,
    )  # fmt: skip
    storage = catalog.product_at("storage.gb", NOW)
    assert storage is not None and (storage.kind, storage.unit) == (ProductKind.STORAGE, "GB")


def test_seatsco(catalog: Catalog) -> None:
    team = catalog.plan_at("seatsco-team", NOW)
    assert team is not None
    assert (team.per_seat, team.price(Interval.MONTHLY), team.price(Interval.ANNUAL)) == (True, 10, 100)
    assert (team.credits_per_seat, team.products, team.credit_policy, team.at_zero) == (
        credits(100), AI, CreditPolicy.RESET, AtZero.BLOCK,
    )  # fmt: skip
    topup = catalog.pack_at("seatsco-topup", NOW)
    assert topup is not None
    assert (topup.credits, topup.price, topup.expires_after_days, topup.products) == (credits(1_000), 80, 365, AI)


def test_brightmove(catalog: Catalog) -> None:
    for product, overage in (("sms.message", "0.06"), ("ai.tokens", "0.0015"), ("job.sponsorship", "15")):
        rate = catalog.rate_at(product, NOW)
        assert rate is not None
        assert (rate.credits_per_unit, rate.overage_price_per_unit) == (1, Decimal(overage))
    # $1.50 per 1,000 tokens of overage; batches of 1,000 SMS at $0.04 each.
    assert catalog.rate_at("ai.tokens", NOW).overage_price_per_unit * 1000 == Decimal("1.5")  # type: ignore[union-attr]
    packs = {key: catalog.pack_at(key, NOW) for key in catalog.packs if key.startswith("brightmove-")}
    assert {key: (p.credits, p.price, p.expires_after_days, p.products) for key, p in packs.items() if p} == {
        "brightmove-sms-1000": (credits(1_000), 40, 30, {"sms.message"}),
        "brightmove-ai-tokens-10000": (credits(10_000), 10, 90, {"ai.tokens"}),
        "brightmove-job-sponsorships-10": (credits(10), 100, 90, {"job.sponsorship"}),
    }
    sms = catalog.pack_at("brightmove-sms-1000", NOW)
    assert sms is not None and sms.price_per_credit == Decimal("0.04")


def test_cheddargetter(catalog: Catalog) -> None:
    packs = {key: catalog.pack_at(key, NOW) for key in ("cheddar-signup", "cheddar-20", "cheddar-50", "cheddar-100")}
    assert {key: (p.credits, p.price, p.signup) for key, p in packs.items() if p} == {
        "cheddar-signup": (credits(20), 0, True),
        "cheddar-20": (credits(20), 60, False),
        "cheddar-50": (credits(50), 150, False),
        "cheddar-100": (credits(100), 300, False),
    }


def test_the_most_specific_dimension_rate_wins(catalog: Catalog) -> None:
    def rate(**dimensions: str) -> Decimal | None:
        found = catalog.rate_at("ai.tokens", NOW, dimensions)
        return None if found is None else found.credits_per_unit

    assert rate() == 1
    assert rate(model="gpt-4o-mini", operation="input") == Decimal("0.25")
    assert rate(model="gpt-4o", operation="output") == 4
    assert rate(model="gpt-4o", operation="input") == 1


def test_the_example_keeps_every_earlier_product_and_rate(catalog: Catalog) -> None:
    earlier = {
        "gpt-4o.input-tokens": "0.001", "gpt-4o.output-tokens": "0.004", "transcription.minutes": "2",
        "image.generation": "10", "storage.gb-month": "5", "sms.message": "1", "ai.assistant": "1",
        "ai.preview": "2", "ai.summary": "5", "job.sponsorship": "1", "quality.q1": "80", "quality.q2": "200",
        "quality.q3": "400",
    }  # fmt: skip
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for key, rate in earlier.items():
        version = catalog.rate_at(key, start)
        assert version is not None and version.credits_per_unit == Decimal(rate), key


BASE = """\
[catalog]
currency = "USD"

[[products]]
key = "sms"
name = "SMS"
kind = "usage"
unit = "message"
[[products.rates]]
effective_at = 2026-01-01T00:00:00Z
credits_per_unit = "1"

[[plans]]
key = "first"
[[plans.versions]]
effective_at = 2026-01-01T00:00:00Z
name = "First"
credits = "10"

[[plans]]
key = "second"
[[plans.versions]]
effective_at = 2026-01-01T00:00:00Z
name = "Second"
price_monthly = "5"
products = ["sms"]
"""


def refusal(text: str) -> str:
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(text)
    return raised.value.message


def test_a_small_document_parses() -> None:
    catalog = parse_catalog(BASE)
    second = catalog.plan_at("second", NOW)
    assert second is not None and second.products == {"sms"} and second.price(Interval.MONTHLY) == 5
    assert catalog.plan_at("first", datetime(2025, 12, 31, tzinfo=UTC)) is None


RATE_DIMENSION = """unit = "message"
dimensions = ["model"]
[[products.rates]]
effective_at = 2026-02-01T00:00:00Z
credits_per_unit = "2"
dimensions = { size = "xl" }"""
CASES = [
    ('credits = "10"', "credits = 10.5", 'line 18: plans[0] "first" versions[0].credits: a float is binary'),
    ('name = "First"', 'name = "First"\ncolour = "red"', 'line 18: plans[0] "first" versions[0].colour: unknown'),
    ('price_monthly = "5"', 'price_monthly = "-5"', 'line 25: plans[1] "second" versions[0].price_monthly: must not'),
    ('credits = "10"', 'credits = "1000000000001"', 'line 18: plans[0] "first" versions[0].credits: credits must'),
    ('products = ["sms"]', 'products = ["sms", "fax"]', 'line 26: plans[1] "second" versions[0].products: no product'),
    ('credits_per_unit = "1"', 'credits_per_unit = "1e9"', 'line 11: products[0] "sms" rates[0].credits_per_unit: not'),
    (
        'credits_per_unit = "1"',
        'credits_per_unit = "1000000001"',
        'line 11: products[0] "sms" rates[0].credits_per_unit',
    ),
    (
        "2026-01-01T00:00:00Z\nname",
        "2026-01-01T00:00:00\nname",
        'line 16: plans[0] "first" versions[0].effective_at: a',
    ),
    ('unit = "message"', RATE_DIMENSION, 'line 13: products[0] "sms" rates[0].dimensions.size: not a dimension'),
    # Seats that cost nothing bring no credits; a month at the most seats stays within the range.
    (
        'credits = "10"',
        'credits = "10"\ncredits_per_seat = "1"',
        'line 19: plans[0] "first" versions[0].credits_per_seat: only',
    ),
    (
        'credits = "10"',
        'credits = "10"\nper_seat = true\nprice_monthly = "1"\ncredits_per_seat = "100000000"',
        'line 21: plans[0] "first" versions[0].credits_per_seat: credits + credits_per_seat x 100,000',
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_an_error_names_its_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert refusal(BASE.replace(old, new, 1)).startswith(expected)


def test_a_syntax_error_gives_tomllib_line_and_column() -> None:
    assert refusal(BASE.replace('name = "Second"', 'name = "Second')).startswith("line 24, column 15: not TOML")


def test_every_error_is_listed_and_a_missing_field_is_named_at_its_table() -> None:
    broken = BASE.replace('name = "First"\n', "").replace('credits_per_unit = "1"', "credits_per_unit = 1.5")
    assert refusal(broken).splitlines() == [
        'line 11: products[0] "sms" rates[0].credits_per_unit: a float is binary and inexact: write it as text '
        '("1.5") or an integer',
        'line 15: plans[0] "first" versions[0].name: required',
    ]


def test_bounds_of_a_whole_document() -> None:
    assert "at most 262,144 bytes" in refusal("#" * (bounds.CATALOG_DOCUMENT_BYTES_MAX + 1))
    many = "".join(f'[[plans]]\nkey = "p{i}"\n[[plans.versions]]\neffective_at = 2026-01-01T00:00:00Z\nname = "P"\n'
                   for i in range(bounds.CATALOG_PLANS_MAX + 1))  # fmt: skip
    assert refusal(many).startswith("line 1: plans: at most 200, not 201")
    twice = BASE + '\n[[plans]]\nkey = "first"\n[[plans.versions]]\neffective_at = 2026-01-01T00:00:00Z\nname = "F"\n'
    assert refusal(twice).startswith("line 29: plans[2] \"first\".key: 'first' is named by an earlier entry too")


async def test_a_refused_document_changes_nothing_in_the_store(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        first = await save_catalog(connection, parse_catalog(BASE))
        assert first.added == 5  # two plans, a product, its rate, the catalog's settings
        with pytest.raises(CatalogInvalid):
            later = BASE.replace('2026-01-01T00:00:00Z\nname = "Second"', '2026-06-01T00:00:00Z\nname = "Second"')
            await save_catalog(connection, parse_catalog(later.replace('products = ["sms"]', 'products = ["x"]')))
        assert await load_catalog(connection) == parse_catalog(BASE)
        assert (await save_catalog(connection, parse_catalog(BASE))).added == 0


def test_the_example_text_is_what_the_package_ships() -> None:
    assert "meclabs-sell" in example_catalog_text()
