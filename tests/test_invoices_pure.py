"""Invoices as pure data: the lines one billing period makes from its facts and their totals, the
plan's Net-N terms in the catalog, and the dunning schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphql_api.shell.catalog import example_catalog
from ledger.billing.catalog import Interval
from ledger.billing.catalog_file import parse_catalog
from ledger.billing.dunning import next_attempt_at
from ledger.billing.invoice import Collection, Invoice, InvoiceLine, InvoiceStatus, LineKind
from ledger.billing.invoice_assembly import ChargeRow, ExpiredRow, OverageRow, assemble
from ledger.core.errors import CatalogInvalid, InvalidCommand
from ledger.invoicing.settlement import attempt_key, attempt_of, manual_key
from ledger.invoicing.store import invoice_number
from tests.test_catalog_file import BASE

CREDIT = 1_000_000
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def charge(kind: str, amount: str, quantity: str = "1", unit_price: str | None = None) -> ChargeRow:
    return ChargeRow(kind, f"{kind} line", Decimal(quantity), Decimal(unit_price or amount), Decimal(amount), "USD",
                     f"key:{kind}:{amount}")  # fmt: skip


def invoice(lines: tuple[InvoiceLine, ...]) -> Invoice:
    return Invoice(
        id=uuid.uuid4(), organization_id=uuid.uuid4(),
        subscription_id=uuid.uuid4(), number="INV-2026-000001", period_start=T0,
        period_end=T0 + timedelta(days=31), currency="USD", collection=Collection.CHARGE_AUTOMATICALLY,
        status=InvoiceStatus.OPEN, issued_at=T0, due_at=T0, lines=lines,
    )  # fmt: skip


def test_every_kind_of_line_and_the_totals() -> None:
    lines = assemble(
        "usd",
        [
            charge("pack", "40.00"),  # packs come after the period's charges
            charge("plan", "995.00"),
            charge("seats", "40.00", quantity="4", unit_price="10"),
            charge("kits", "40.00", quantity="2", unit_price="20"),
            charge("proration", "-16.13"),  # a seat decrease credited
        ],
        [
            OverageRow("sms.message", 100 * CREDIT, Decimal("6.000000"), Decimal(100), Decimal("0.06"), "USD"),
            # The ledger's exact money (to a millionth), rounded half up once, on the line.
            OverageRow("ai.tokens", 2_003 * CREDIT, Decimal("3.005001"), Decimal(2003), Decimal("0.0015"), "USD"),
            OverageRow("job.sponsorship", 0, Decimal(0), Decimal(0), Decimal(15), "USD"),  # none: left out
        ],
        [ExpiredRow("lot-1", 250 * CREDIT, "Expired unused (credit pack x)")],
    )
    kinds = [line.kind for line in lines]
    assert kinds == [LineKind.PLAN, LineKind.SEATS, LineKind.KITS, LineKind.PRORATION, LineKind.PACK,
                     LineKind.OVERAGE, LineKind.OVERAGE, LineKind.EXPIRED, LineKind.TAX]  # fmt: skip
    amounts = [line.amount for line in lines]
    assert amounts == [99_500, 4_000, 4_000, -1_613, 4_000, 301, 600, 0, 0]
    overage = {line.source: line for line in lines if line.kind is LineKind.OVERAGE}
    assert overage["overage:sms.message"].unit_price == Decimal("0.06")
    assert overage["overage:sms.message"].credits == 100 * CREDIT
    expired = lines[7]
    assert (expired.amount, expired.credits, expired.quantity, expired.prepaid) == (0, 250 * CREDIT, 250, False)
    assert lines[4].prepaid and not any(line.prepaid for line in lines if line.kind is not LineKind.PACK)
    tax = lines[-1]
    assert (tax.kind, tax.amount, tax.source) == (LineKind.TAX, 0, "tax:none")
    total = invoice(lines)
    assert total.subtotal == 99_500 + 4_000 + 4_000 - 1_613 + 4_000 + 301 + 600
    assert (total.tax, total.total, total.prepaid) == (0, total.subtotal, 4_000)
    assert total.amount_due == total.total - 4_000


def test_a_stored_amount_with_a_fraction_of_a_cent_is_refused_not_rounded() -> None:
    with pytest.raises(InvalidCommand, match="more decimals"):
        assemble("USD", [charge("plan", "995.001")])
    with pytest.raises(InvalidCommand, match="in EUR"):
        assemble("USD", [ChargeRow("plan", "x", Decimal(1), Decimal(1), Decimal(1), "EUR", "k")])
    with pytest.raises(InvalidCommand, match="no invoice line kind"):
        assemble("USD", [charge("refund", "1.00")])


def test_zero_decimal_and_three_decimal_currencies() -> None:
    [plan, _tax] = assemble("JPY", [ChargeRow("plan", "x", Decimal(1), Decimal(500), Decimal(500), "JPY", "k")])
    assert plan.amount == 500
    [plan, _tax] = assemble("KWD", [ChargeRow("plan", "x", Decimal(1), Decimal("1.235"), Decimal("1.235"), "KWD", "k")])
    assert plan.amount == 1235


@given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), max_size=20), st.integers(0, 10**6))
def test_totals_are_the_lines_sums(cents: list[int], prepaid: int) -> None:
    rows = [charge("plan", str(Decimal(c).scaleb(-2))) for c in cents]
    rows.append(charge("pack", str(Decimal(prepaid).scaleb(-2))))
    lines = assemble("USD", rows)
    built = invoice(lines)
    assert built.total == sum(cents) + prepaid
    assert built.prepaid == prepaid
    assert built.amount_due == max(sum(cents), 0)


def test_net_terms_in_the_catalog() -> None:
    catalog = example_catalog()
    enterprise = catalog.plan_at("meclabs-enterprise", T0)
    assert enterprise is not None and enterprise.invoice_terms_days == 30
    assert enterprise.price(Interval.ANNUAL) == 35940
    act3 = catalog.plan_at("act3-enterprise", T0)
    assert act3 is not None and act3.invoice_terms_days == 30
    sell = catalog.plan_at("meclabs-sell", T0)
    assert sell is not None and sell.invoice_terms_days is None
    parsed = parse_catalog(BASE.replace('name = "First"', 'name = "First"\ninvoice_terms_days = 45', 1))
    first = parsed.plan_at("first", T0)
    assert first is not None and first.invoice_terms_days == 45


@pytest.mark.parametrize("days", ["0", "366", '"30"', "-1"])
def test_net_terms_out_of_bounds_are_refused_with_line_and_field(days: str) -> None:
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(BASE.replace('name = "First"', f'name = "First"\ninvoice_terms_days = {days}', 1))
    assert raised.value.message == (
        'line 18: plans[0] "first" versions[0].invoice_terms_days: a whole number of days from 1 to 365, or left out'
    )


def test_the_dunning_schedule_counts_from_the_first_failure() -> None:
    first = datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert next_attempt_at(first, 1) == first + timedelta(days=1)
    assert next_attempt_at(first, 2) == first + timedelta(days=3)
    assert next_attempt_at(first, 3) == first + timedelta(days=5)
    assert next_attempt_at(first, 4) is None
    with pytest.raises(ValueError, match="first failed"):
        next_attempt_at(first, 0)


def test_numbers_and_attempt_keys() -> None:
    assert invoice_number(2026, 42) == "INV-2026-000042"
    invoice_id = uuid.uuid4()
    assert attempt_of(attempt_key(invoice_id, 3)) == 3
    assert attempt_of(manual_key(invoice_id, "3")) is None
    assert attempt_of("pack:whatever") is None
