"""`POST /stripe/webhook`: Stripe's events in.

The signature is verified on the raw body (HMAC-SHA256 under the endpoint's secret, timestamp
within 300 s either way: `ledger.payments.gateway.verify_event`); a forged, stale, future-dated or
malformed event (not an object, no id/type/created, odd values) is 400, logged, and nothing is
stored (NULs and lone surrogates, which PostgreSQL cannot store, are taken out first).
A verified event is stored once (the inbox, by event id: a replay
is answered 200 and changes nothing) and answered 200 at once; it is applied after the answer has
gone (what is not applied then, the reconciliation poll applies). Without a webhook secret or a
Stripe key configured, every event is refused with 503 PAYMENTS_NOT_CONFIGURED, and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from graphql_api.context import Resources
from graphql_api.edge.http import error_response
from graphql_api.errors import UNAVAILABLE_MESSAGE
from ledger.core.errors import ErrorCode
from ledger.payments.context import PaymentContext
from ledger.payments.gateway import Gateway, SignatureInvalid, verify_event
from ledger.payments.inbox import apply_stored, receive
from ledger.runtime.outages import OUTAGES
from ledger.subscriptions.effects import LedgerEffects

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


def stripe_webhook(holder: dict[str, Resources]) -> Endpoint:
    """The route's endpoint, reading the process's resources from the app's holder."""

    async def endpoint(request: Request) -> Response:
        resources = holder["resources"]
        secret, gateway = resources.settings.stripe_webhook_secret, resources.gateway
        if not secret or gateway is None:
            log.warning("stripe webhook refused: payments or the webhook secret are not configured")
            return error_response(503, ErrorCode.PAYMENTS_NOT_CONFIGURED, "webhooks are not configured")
        body = await request.body()
        try:
            event = verify_event(body, request.headers.get("stripe-signature", ""), secret)
        except SignatureInvalid as error:
            log.warning("stripe webhook refused (%s bytes from %s): %s", len(body), _client(request), error)
            return error_response(400, ErrorCode.BAD_REQUEST, "the event's signature does not verify")
        now = datetime.now(UTC)
        try:
            stored = await receive(resources.pool, event, "webhook", now)
        except OUTAGES as outage:
            log.warning("stripe webhook: cannot store event %s: %r", event.id, outage)
            return error_response(503, ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE, {"retry-after": "1"})
        except asyncpg.DataError as error:  # verified, but nothing the inbox can store
            log.error("stripe webhook: event %.80r refused, cannot be stored: %r", event.id, error)
            return error_response(400, ErrorCode.BAD_REQUEST, "the event cannot be stored")
        if not stored:
            log.info("stripe event %s (%s) received again: nothing to do", event.id, event.type)
            return JSONResponse({"received": True, "duplicate": True})
        task = BackgroundTask(_apply, resources, gateway, event.id)
        return JSONResponse({"received": True}, background=task)

    return endpoint


async def _apply(resources: Resources, gateway: Gateway, event_id: str) -> None:
    ctx = PaymentContext(resources.pool, gateway, LedgerEffects(resources.mailbox), datetime.now(UTC))
    try:
        await apply_stored(ctx, event_id)
    except Exception:  # the poll applies it later; the answer has gone already
        log.exception("stripe event %s: applying failed", event_id)


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "?"
