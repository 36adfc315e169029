"""`POST /v1/usage`: the route's one endpoint.

In order, as `recordUsageBatch` does it: the caller authenticated (by the middleware, as for
GraphQL: 401 without credentials), the body decoded (`wire`), RECORD_USAGE decided in every
organization named (403, FORBIDDEN whether or not it exists), the request charged to the caller and
each organization (429 with Retry-After), the events checked (`graphql_api.usage_events`) and
delivered (`graphql_api.submit.deliver`: 404 for an unknown organization, the same idempotency and
`ack`). All or nothing: a refusal queues nothing. Every refusal is `{"error": {"code", "message",
"index"}}` with a code of `ErrorCode`, `index` naming the event at fault when one is; an
unexpected failure is logged here and answered 500 INTERNAL without its details.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from graphql_api.access.authorize import UNAUTHENTICATED_MESSAGE, authorize
from graphql_api.access.policy import Permission
from graphql_api.access.principal import ANONYMOUS, PrincipalKind
from graphql_api.context import Context, Resources
from graphql_api.errors import UNAVAILABLE_MESSAGE, ApiError, RefusedEvent
from graphql_api.ingest.wire import JSON, decode_batch, encode_results, media_type
from graphql_api.submit import deliver
from graphql_api.usage_events import checked_usage, event_organizations
from ledger.core.errors import ErrorCode, LedgerError
from ledger.runtime.outages import OUTAGES

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.RESULT_TIMEOUT: 503,
}
_UNSUPPORTED = 'send Content-Type: application/json ({"events": [...]}) or application/x-ndjson (one event a line)'
_ERROR = msgspec.json.Encoder()


def usage_route(holder: dict[str, Resources]) -> Endpoint:
    """The endpoint, reading the process's resources from the app's holder."""

    async def endpoint(request: Request) -> Response:
        try:
            return await _answer(holder["resources"], request)
        except RefusedEvent as error:
            return _refusal(error.code, error.message, error.index)
        except ApiError as error:
            return _refusal(error.code, error.message, retry_after_ms=error.extensions.get("retryAfterMs"))
        except LedgerError as error:  # UNAVAILABLE, OVERLOADED, RESULT_TIMEOUT, IDEMPOTENCY_CONFLICT
            return _refusal(error.code, error.message)
        except OUTAGES as outage:
            log.warning("usage route: a backing service is unavailable: %r", outage)
            return _refusal(ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
        except Exception:
            log.exception("usage route: unexpected error")
            return _refusal(ErrorCode.INTERNAL, "Unexpected error.", status=500)

    return endpoint


async def _answer(resources: Resources, request: Request) -> Response:
    if request.method != "POST":
        raise ApiError(ErrorCode.METHOD_NOT_ALLOWED, f"{request.method} is not served here: send POST")
    principal = request.scope.get("principal", ANONYMOUS)
    if principal.kind is PrincipalKind.ANONYMOUS:
        raise ApiError(ErrorCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
    kind = media_type(request.headers.get("content-type"))
    if kind is None:
        return _refusal(ErrorCode.BAD_REQUEST, _UNSUPPORTED, status=415)
    events, ack = decode_batch(kind, await request.body(), request.query_params.get("ack"))
    context = Context(
        request=request,
        response=None,
        resources=resources,
        loaders=resources.loaders(),
        principal=principal,
    )
    organizations = event_organizations(events)
    await authorize(context, Permission.RECORD_USAGE, organizations)
    await context.charge(organizations)
    items = await checked_usage(context, events)
    command_ids, replies = await deliver(context, items, ack)
    body = encode_results([str(command_id) for command_id in command_ids], replies)
    return Response(body, media_type=JSON)


def _refusal(
    code: ErrorCode, message: str, index: int | None = None, *, status: int = 0, retry_after_ms: object = None
) -> Response:
    headers = {}
    if code is ErrorCode.UNAUTHENTICATED:
        headers["www-authenticate"] = "Bearer"
    if isinstance(retry_after_ms, int):
        headers["retry-after"] = str(max(1, math.ceil(retry_after_ms / 1000)))
    elif _STATUS.get(code) == 503:
        headers["retry-after"] = "1"
    if code is ErrorCode.METHOD_NOT_ALLOWED:
        headers["allow"] = "POST"
    body = _ERROR.encode({"error": {"code": code.value, "message": message, "index": index}})
    return Response(body, status_code=status or _STATUS.get(code, 400), media_type=JSON, headers=headers)
