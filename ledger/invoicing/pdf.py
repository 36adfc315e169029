"""An invoice as a PDF: typst compiles the template shipped in the package
(`ledger/invoicing/templates/invoice.typ`) with the invoice as JSON.

Why typst: it is a real typesetter in one wheel (no system fonts, no external binary), it embeds
its own fonts, which have the glyphs an invoice needs ("€", "£", "¥"), and the layout lives in a
template a designer can edit. fpdf2's core fonts are Latin-1 only: "€" would need a TTF shipped
with us and registered by hand. Every figure is formatted here, with babel, for the invoice's
currency and locale (`ledger.billing.money_format`), so the PDF shows what the invoice stores; the
template inserts each string as text, never as markup.

Compiling takes tens of milliseconds of CPU: the API runs it off the event loop
(`asyncio.to_thread`), and it renders at most `constants.invoice_pdf_lines_max` lines.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources

import typst
from babel.dates import format_date
from babel.numbers import format_decimal

from ledger import constants
from ledger.billing.invoice import Collection, Invoice, InvoiceLine, InvoiceStatus, LineKind
from ledger.billing.money_format import DEFAULT_LOCALE, format_minor, format_money
from ledger.core.money import format_credits

_TEMPLATE = "templates/invoice.typ"
_TEXT_MAX = 300  # characters of one description or name shown
_LABELS = {
    "invoice": "Invoice",
    "billed_to": "Billed to",
    "period": "Service period",
    "issued": "Issued",
    "due": "Due",
    "collection": "Payment",
    "currency": "Currency",
    "description": "Description",
    "quantity": "Quantity",
    "unit_price": "Unit price",
    "amount": "Amount",
    "subtotal": "Subtotal",
    "tax": "Tax",
    "total": "Total",
    "prepaid": "Already paid",
    "amount_due": "Amount due",
}
_STATUS = {
    InvoiceStatus.OPEN: "OPEN",
    InvoiceStatus.PAID: "PAID",
    InvoiceStatus.UNCOLLECTIBLE: "UNCOLLECTIBLE",
    InvoiceStatus.VOID: "VOID",
}


class TooManyLines(ValueError):
    """An invoice with more lines than one PDF renders."""


def render_invoice(invoice: Invoice, organization_name: str, locale: str = DEFAULT_LOCALE) -> bytes:
    """The invoice's PDF. Blocking (CPU): call it in a thread from async code."""
    if len(invoice.lines) > constants.invoice_pdf_lines_max:
        raise TooManyLines(f"an invoice PDF shows at most {constants.invoice_pdf_lines_max} lines")
    document = json.dumps(invoice_document(invoice, organization_name, locale), ensure_ascii=False)
    with resources.as_file(resources.files("ledger.invoicing") / _TEMPLATE) as template:
        pdf: bytes = typst.compile(
            str(template),
            sys_inputs={"invoice": document},
            ignore_system_fonts=True,
            # The PDF's own date is the invoice's: the same invoice renders the same document.
            timestamp=int(invoice.issued_at.timestamp()),
        )
    return pdf


def invoice_document(invoice: Invoice, organization_name: str, locale: str = DEFAULT_LOCALE) -> dict[str, object]:
    """What the template shows, every figure formatted: pure, so the tests can read it too."""
    currency = invoice.currency

    def money(amount: int) -> str:
        return format_minor(amount, currency, locale)

    return {
        "labels": _LABELS,
        "language": locale.split("_")[0].lower(),
        "number": invoice.number,
        "organization": _text(organization_name),
        "status": _STATUS[invoice.status],
        "currency": currency,
        "period": f"{_date(invoice.period_start, locale)} \u2013 {_date(_last_instant(invoice.period_end), locale)}",
        "issued": _date(invoice.issued_at, locale),
        "due": _date(invoice.due_at, locale),
        "collection": _collection(invoice, locale),
        "lines": [_line(line, currency, locale) for line in invoice.lines],
        "subtotal": money(invoice.subtotal),
        "tax": money(invoice.tax),
        "total": money(invoice.total),
        "prepaid": money(-invoice.prepaid) if invoice.prepaid else money(0),
        "amount_due": money(invoice.amount_due),
        "notes": _notes(invoice, locale),
    }


def _line(line: InvoiceLine, currency: str, locale: str) -> dict[str, str]:
    return {
        "description": _text(line.description),
        "quantity": str(format_decimal(line.quantity, locale=locale, decimal_quantization=False)),
        "unit_price": format_money(line.unit_price, currency, locale),
        "amount": format_minor(line.amount, currency, locale),
        "note": _note(line),
    }


def _note(line: InvoiceLine) -> str:
    if line.kind is LineKind.TAX and line.amount == 0:
        return "Zero tax: no tax engine is configured; the amounts above carry no tax."
    if line.kind is LineKind.EXPIRED:
        shown = f"{format_credits(line.credits)} credits " if line.credits is not None else ""
        return f"{shown}expired unused: shown, not charged, not refunded."
    if line.kind is LineKind.OVERAGE and line.credits is not None:
        return f"{format_credits(line.credits)} credits beyond those included, at the overage rate."
    if line.prepaid:
        return "Paid when bought."
    return ""


def _collection(invoice: Invoice, locale: str) -> str:
    if invoice.collection is Collection.SEND_INVOICE:
        days = max((invoice.due_at - invoice.issued_at).days, 0)
        return f"Net {days}: pay by {_date(invoice.due_at, locale)}; no card is charged."
    if invoice.status is InvoiceStatus.PAID and invoice.paid_at is not None:
        return f"Charged to the card on file on {_date(invoice.paid_at, locale)}."
    return "Charged to the card on file."


def _notes(invoice: Invoice, locale: str) -> list[str]:
    notes = [f"Amounts in {invoice.currency}. Every total is the sum of the lines above."]
    if invoice.prepaid:
        notes.append(f"{format_minor(invoice.prepaid, invoice.currency, locale)} was paid when the packs were bought.")
    if invoice.status is InvoiceStatus.PAID and invoice.paid_at is not None:
        notes.append(f"Paid on {_date(invoice.paid_at, locale)}.")
    return notes


def _date(at: datetime, locale: str) -> str:
    return str(format_date(at.date(), format="medium", locale=locale))


def _last_instant(end: datetime) -> datetime:
    """A period is half-open, [start, end): its last day is the day before `end` at midnight."""
    return end - timedelta(microseconds=1)


def _text(value: str) -> str:
    return value if len(value) <= _TEXT_MAX else value[: _TEXT_MAX - 1] + "…"
