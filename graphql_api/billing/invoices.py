"""Invoices: their lines, status and PDF link."""

from __future__ import annotations

import strawberry


@strawberry.type
class InvoiceQueries:
    pass


@strawberry.type
class InvoiceMutations:
    pass
