"""Invoice PDFs: rendered by typst from the shipped template, read back with a PDF reader, and
served by `GET /invoices/<id>.pdf` to a signed link or an authorized caller only."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import asyncpg
import pypdf
import pytest

from graphql_api.access.tokens import token_secret
from ledger import constants
from ledger.billing.invoice import Collection, Invoice, InvoiceLine, InvoiceStatus, LineKind, ZeroTax
from ledger.directory.api_keys import create_api_key
from ledger.directory.organizations import create_organization
from ledger.directory.roles import Role
from ledger.invoicing import pdf_links
from ledger.invoicing.pdf import TooManyLines, invoice_document, render_invoice
from ledger.invoicing.store import insert_invoice
from tests.conftest import Service
from tests.subscription_calls import call

NBSP = "\xa0"


def pdf_text(document: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(document))
    return "\n".join(page.extract_text() for page in reader.pages).replace(NBSP, " ")


def an_invoice(currency: str = "EUR", **changes: object) -> Invoice:
    lines = (
        InvoiceLine(LineKind.PLAN, "SELL, one month", Decimal(1), Decimal("995"), 99500, source="charge:plan"),
        InvoiceLine(LineKind.KITS, "SELL: 2 extra kit(s), one month", Decimal(2), Decimal("20"), 4000),
        InvoiceLine(LineKind.PRORATION, "Upgrade to SCALE", Decimal("0.5"), Decimal("1000"), 50000),
        InvoiceLine(LineKind.PACK, "Top-up: 1000 credits", Decimal(1), Decimal("80"), 8000, prepaid=True),
        InvoiceLine(
            LineKind.OVERAGE, "Overage: AI tokens", Decimal(12000), Decimal("0.0015"), 1800, credits=12_000_000_000
        ),
        InvoiceLine(LineKind.EXPIRED, "Expired purchased credits", Decimal(250), Decimal(0), 0, credits=250_000_000),
        *ZeroTax().tax_lines((), currency),
    )
    invoice = Invoice(
        id=uuid4(),
        organization_id=uuid4(),
        subscription_id=uuid4(),
        number="INV-2026-000042",
        period_start=datetime(2026, 3, 1, tzinfo=UTC),
        period_end=datetime(2026, 4, 1, tzinfo=UTC),
        currency=currency,
        collection=Collection.SEND_INVOICE,
        status=InvoiceStatus.OPEN,
        issued_at=datetime(2026, 4, 1, tzinfo=UTC),
        due_at=datetime(2026, 5, 1, tzinfo=UTC),
        lines=lines,
    )
    return replace(invoice, **changes)  # type: ignore[arg-type]


def test_the_pdf_shows_every_line_and_the_totals_in_euro() -> None:
    invoice = an_invoice()
    assert (invoice.subtotal, invoice.tax, invoice.prepaid, invoice.amount_due) == (163300, 0, 8000, 155300)
    document = render_invoice(invoice, "Müller & Söhne GmbH", "de_DE")
    assert document.startswith(b"%PDF-")
    text = pdf_text(document)
    lines = text.splitlines()
    assert "Invoice INV-2026-000042 OPEN" in lines
    assert "Billed to Müller & Söhne GmbH" in lines
    assert "Service period 01.03.2026 \u2013 31.03.2026" in lines
    assert "Payment Net 30: pay by 01.05.2026; no card is charged." in lines
    # Each line: description, quantity, unit price, amount.
    for row in (
        "SELL, one month 1 995,00 € 995,00 €",
        "SELL: 2 extra kit(s), one month 2 20,00 € 40,00 €",
        "Upgrade to SCALE 0,5 1.000,00 € 500,00 €",
        "1 80,00 € 80,00 €",
        "12.000 0,0015 € 18,00 €",
        "250 0,00 € 0,00 €",
    ):
        assert row in lines, (row, lines)
    assert "Zero tax: no tax engine is configured; the amounts above carry no tax." in lines
    assert "250 credits expired unused: shown, not charged, not refunded." in lines
    assert "Subtotal 1.633,00 €" in lines
    assert "Tax 0,00 €" in lines
    assert "Total 1.633,00 €" in lines
    assert "Already paid -80,00 €" in lines
    assert "Amount due 1.553,00 €" in lines


def test_a_charged_invoice_in_dollars() -> None:
    paid_at = datetime(2026, 4, 1, 0, 5, tzinfo=UTC)
    invoice = an_invoice("USD", collection=Collection.CHARGE_AUTOMATICALLY, status=InvoiceStatus.PAID, paid_at=paid_at)
    text = pdf_text(render_invoice(invoice, "ACME Inc."))
    assert "Invoice INV-2026-000042 PAID" in text
    assert "Payment Charged to the card on file on Apr 1, 2026." in text
    assert "Total $1,633.00" in text
    assert "Amount due $1,553.00" in text
    assert "12,000 $0.0015 $18.00" in text


def test_the_same_invoice_renders_the_same_document() -> None:
    invoice = an_invoice()
    assert render_invoice(invoice, "ACME") == render_invoice(invoice, "ACME")


def test_text_is_shown_never_evaluated() -> None:
    hostile = '#panic("x") ] [ *bold* $x$ <label> @ref \\ #import "/etc/passwd"'
    line = InvoiceLine(LineKind.PLAN, hostile, Decimal(1), Decimal(1), 100)
    invoice = an_invoice("USD", lines=(line,))
    text = pdf_text(render_invoice(invoice, hostile))
    assert '#panic("x")' in text and '#import "/etc/passwd"' in text


def test_the_number_of_lines_is_bounded() -> None:
    line = InvoiceLine(LineKind.PLAN, "x", Decimal(1), Decimal(1), 100)
    with pytest.raises(TooManyLines):
        render_invoice(an_invoice(lines=(line,) * (constants.invoice_pdf_lines_max + 1)), "ACME")


def test_the_document_is_what_the_invoice_stores() -> None:
    document = invoice_document(an_invoice("USD"), "ACME")
    assert document["total"] == "$1,633.00"
    assert document["prepaid"] == "-$80.00"
    assert [line["amount"] for line in document["lines"]] == [  # type: ignore[attr-defined]
        "$995.00", "$40.00", "$500.00", "$80.00", "$18.00", "$0.00", "$0.00",
    ]  # fmt: skip


# --- signed links ---------------------------------------------------------------------------


def _query(path: str) -> dict[str, str]:
    query = path.split("?", 1)[1]
    pairs = (part.split("=", 1) for part in query.split("&"))
    return {name: value for name, value in pairs}


def test_a_link_verifies_for_its_invoice_until_it_expires() -> None:
    secret, invoice_id, now = b"secret", uuid4(), datetime(2026, 4, 1, tzinfo=UTC)
    path = pdf_links.pdf_path(invoice_id, secret, now, timedelta(hours=1))
    assert path.startswith(f"/invoices/{invoice_id}.pdf?expires=")
    query = _query(path)
    assert pdf_links.verify(invoice_id, query["expires"], query["signature"], secret, now)
    assert pdf_links.verify(invoice_id, query["expires"], query["signature"].upper(), secret, now)
    later = now + timedelta(hours=1, minutes=1)
    assert not pdf_links.verify(invoice_id, query["expires"], query["signature"], secret, later)
    assert not pdf_links.verify(uuid4(), query["expires"], query["signature"], secret, now)
    assert not pdf_links.verify(invoice_id, query["expires"], query["signature"], b"other", now)
    longer = str(int(query["expires"]) + 3600)
    assert not pdf_links.verify(invoice_id, longer, query["signature"], secret, now)
    for expires, signature in (("x", query["signature"]), (query["expires"], "ab"), ("", ""), ("1e9", "0" * 64)):
        assert not pdf_links.verify(invoice_id, expires, signature, secret, now)


def test_a_link_cannot_outlive_a_month() -> None:
    with pytest.raises(ValueError, match="between"):
        pdf_links.pdf_path(UUID(int=1), b"s", datetime.now(UTC), timedelta(days=90))


# --- the route ------------------------------------------------------------------------------


async def _stored_invoice(service: Service, pool: asyncpg.Pool, organization_id: UUID) -> Invoice:
    subscription = await call(
        service, "subscribe", "id", organizationId=str(organization_id), plan="meclabs-sell", idempotencyKey="pdf"
    )
    invoice = an_invoice(organization_id=organization_id, subscription_id=UUID(subscription["id"]))
    async with pool.acquire() as connection, connection.transaction():
        assert await insert_invoice(connection, invoice)
    return invoice


async def test_the_route_serves_a_signed_link_or_an_authorized_caller(service: Service, pool: asyncpg.Pool) -> None:
    mine, other = uuid4(), uuid4()
    await create_organization(pool, mine, "Müller & Söhne GmbH")
    await create_organization(pool, other, "Other")
    invoice = await _stored_invoice(service, pool, mine)
    _, billing_key = await create_api_key(pool, name="b", scope="organization", organization_id=mine, role=Role.BILLING)
    _, other_key = await create_api_key(pool, name="o", scope="organization", organization_id=other, role=Role.OWNER)
    secret = await token_secret(pool, service.settings.token_secret)
    now = datetime.now(UTC)
    link = pdf_links.pdf_path(invoice.id, secret, now)
    client = service.client

    signed = await client.get(link)
    assert signed.status_code == 200, signed.text
    assert signed.headers["content-type"] == "application/pdf"
    assert signed.headers["content-disposition"] == 'attachment; filename="INV-2026-000042.pdf"'
    assert signed.headers["cache-control"] == "private, no-store"
    text = pdf_text(signed.content)
    assert "Billed to Müller & Söhne GmbH" in text and "Amount due €1,553.00" in text
    german = await client.get(f"{link}&locale=de_DE")
    assert "Amount due 1.553,00 €" in pdf_text(german.content)

    authorized = await client.get(f"/invoices/{invoice.id}.pdf", headers={"authorization": f"Bearer {billing_key}"})
    assert authorized.status_code == 200 and pdf_text(authorized.content) == text
    admin = await client.get(f"/invoices/{invoice.id}.pdf", headers={"authorization": f"Bearer {service.admin_key}"})
    assert admin.status_code == 200

    expired = pdf_links.pdf_path(invoice.id, secret, now - timedelta(days=2), timedelta(days=1))
    query = _query(link)
    tampered = f"/invoices/{invoice.id}.pdf?expires={int(query['expires']) + 60}&signature={query['signature']}"
    someone_elses = pdf_links.pdf_path(invoice.id, b"not our secret", now)
    other_invoice = link.replace(str(invoice.id), str(uuid4()))
    flipped = link[:-1] + ("1" if link.endswith("0") else "0")  # one hex digit of the signature changed
    refusals = [(await client.get(path), 403) for path in (expired, tampered, someone_elses, other_invoice, flipped)]
    refusals.append((await client.get(f"/invoices/{invoice.id}.pdf"), 401))
    for headers in ({"authorization": f"Bearer {other_key}"}, {"authorization": f"Bearer {billing_key}"}):
        # Another org's key for this invoice; and this org's key for an id that does not exist:
        # the same refusal, so no invoice id can be confirmed by probing.
        path = f"/invoices/{invoice.id if headers['authorization'].endswith(other_key) else uuid4()}.pdf"
        refusals.append((await client.get(path, headers=headers), 403))
    for response, status in refusals:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["data"] is None
        code = body["errors"][0]["extensions"]["code"]
        assert code == ("FORBIDDEN" if status == 403 else "UNAUTHENTICATED")
        assert str(invoice.id) not in response.text and "INV-" not in response.text
    # Either way in is enough: an expired link with a key that may read the invoice is served,
    # with another organization's key it is not.
    billing_header = {"authorization": f"Bearer {billing_key}"}
    assert (await client.get(expired, headers=billing_header)).status_code == 200
    assert (await client.get(expired, headers={"authorization": f"Bearer {other_key}"})).status_code == 403
    bad_locale = await client.get(f"{link}&locale=xx_YY")
    assert bad_locale.status_code == 400 and bad_locale.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
