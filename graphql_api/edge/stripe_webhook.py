"""`POST /stripe/webhook`: Stripe's events in (being built: issue 15, payments helper)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response


async def stripe_webhook(request: Request) -> Response:
    return Response(status_code=503)
