"""`GET /invoices/{invoice_id}.pdf`: an invoice's PDF, for a signed link or an authorized caller.

Two ways in, either enough:

- a **signed, expiring link** (`?expires=<unix>&signature=<hex>`, as an invoice's `pdfUrl` gives it,
  `ledger.invoicing.pdf_links`): whoever holds it may download that one invoice until it expires;
- an **Authorization** header whose caller may READ the invoice's organization (Owner, Billing and
  the other roles of that organization, its partner, the platform).

Refusals carry the API's error shape and say nothing about the invoice: a bad or expired link is 403
FORBIDDEN whether or not the invoice exists, and so is an invoice the caller may not read (an id
of another tenant cannot be confirmed by probing); no credentials at all is 401 UNAUTHENTICATED.
The PDF is compiled in a thread (typst is CPU work), at most `invoice_pdf_lines_max` lines.
`?locale=de_DE` formats the amounts for another locale (the default is en_US).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from graphql_api.access.authorize import authorize
from graphql_api.access.policy import Permission
from graphql_api.access.principal import ANONYMOUS, PrincipalKind
from graphql_api.context import Context, Resources
from graphql_api.edge.http import error_response
from graphql_api.errors import UNAVAILABLE_MESSAGE, ApiError
from ledger.billing.invoice import Invoice
from ledger.billing.money_format import DEFAULT_LOCALE, known_locale
from ledger.core.errors import ErrorCode
from ledger.invoicing import pdf_links
from ledger.invoicing.pdf import TooManyLines, render_invoice
from ledger.invoicing.store import load_invoice
from ledger.runtime.outages import OUTAGES

log = logging.getLogger(__name__)

_REFUSED = "this invoice's PDF cannot be served: the link is invalid or has expired, or the caller may not read it"
_LOCALE_LENGTH_MAX = 20
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

Endpoint = Callable[[Request], Awaitable[Response]]


def invoice_pdf(holder: dict[str, Resources]) -> Endpoint:
    """The route's endpoint, reading the process's resources from the app's holder."""

    async def endpoint(request: Request) -> Response:
        try:
            return await _answer(request, holder["resources"])
        except OUTAGES as outage:
            log.warning("invoice PDF: backing service unavailable: %r", outage)
            return error_response(503, ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE, {"retry-after": "1"})

    return endpoint


async def _answer(request: Request, resources: Resources) -> Response:
    invoice_id = _invoice_id(request.path_params.get("invoice_id", ""))
    locale = request.query_params.get("locale", DEFAULT_LOCALE)
    if len(locale) > _LOCALE_LENGTH_MAX or not known_locale(locale):
        return error_response(400, ErrorCode.INVALID_INPUT, "locale must be a locale such as en_US or de_DE")
    expires, signature = request.query_params.get("expires"), request.query_params.get("signature")
    principal = request.scope.get("principal", ANONYMOUS)
    context = _context(request, resources)
    secret, now = resources.authenticator.token_secret, datetime.now(UTC)
    if invoice_id is not None and pdf_links.verify(invoice_id, expires or "", signature or "", secret, now):
        invoice = await _load(resources, invoice_id)
        if invoice is None:  # signed by us for an invoice that is gone: nothing to hide
            return error_response(404, ErrorCode.NOT_FOUND, "invoice not found")
        return await _pdf(context, invoice, locale)
    if principal.kind is PrincipalKind.ANONYMOUS:
        if expires is not None or signature is not None:
            return _refused()
        message = "send a signed link or Authorization: Bearer <API key or user token>"
        return error_response(401, ErrorCode.UNAUTHENTICATED, message, {"www-authenticate": "Bearer"})
    # Not (validly) signed: the caller's own right to read the invoice's organization decides.
    invoice = None if invoice_id is None else await _load(resources, invoice_id)
    if invoice is None:
        return _refused()
    try:
        await authorize(context, Permission.READ, [invoice.organization_id])
        await context.charge([invoice.organization_id])
    except ApiError as error:
        if error.code is ErrorCode.RATE_LIMITED:
            return error_response(429, error.code, error.message)
        return _refused()
    return await _pdf(context, invoice, locale)


async def _pdf(context: Context, invoice: Invoice, locale: str) -> Response:
    organization = await context.loaders.organization.load(invoice.organization_id)
    name = organization.name if organization is not None else ""
    try:
        document = await asyncio.to_thread(render_invoice, invoice, name, locale)
    except TooManyLines as error:
        return error_response(422, ErrorCode.INVALID_INPUT, str(error))
    filename = _FILENAME_UNSAFE.sub("_", invoice.number) or "invoice"
    headers = {
        "content-disposition": f'attachment; filename="{filename}.pdf"',
        # An invoice is one customer's: no shared cache keeps it, and a link's holder fetches it anew.
        "cache-control": "private, no-store",
    }
    return Response(document, media_type="application/pdf", headers=headers)


async def _load(resources: Resources, invoice_id: UUID) -> Invoice | None:
    async with resources.pool.acquire() as connection:
        return await load_invoice(connection, invoice_id)


def _context(request: Request, resources: Resources) -> Context:
    principal: Any = request.scope.get("principal", ANONYMOUS)
    return Context(
        request=request,
        response=None,
        resources=resources,
        loaders=resources.loaders(),
        principal=principal,
        credentials=request.headers.get("authorization"),
    )


def _invoice_id(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _refused() -> Response:
    return error_response(403, ErrorCode.FORBIDDEN, _REFUSED)
