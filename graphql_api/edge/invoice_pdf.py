"""`GET /invoices/{invoice_id}.pdf`: an invoice's PDF (being built: issue 15, PDF helper)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response


async def invoice_pdf(request: Request) -> Response:
    return Response(status_code=404)
