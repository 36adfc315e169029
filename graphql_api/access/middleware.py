"""Authenticates every HTTP request and WebSocket upgrade before GraphQL sees it.

Bad credentials are refused here, with HTTP 401 and the API's error shape, so no resolver ever
runs for them; an outage of PostgreSQL while checking a key answers 503 UNAVAILABLE. No
credentials at all is the anonymous principal, which /graphql answers UNAUTHENTICATED before it
reads the body (`graphql_api.edge.http`); health checks and GraphiQL's page need none.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from graphql_api.access.authenticate import Unauthenticated
from graphql_api.errors import UNAVAILABLE_MESSAGE, error_body
from ledger.core.errors import ErrorCode
from ledger.runtime.outages import OUTAGES

log = logging.getLogger(__name__)


class Authentication:
    def __init__(self, app: ASGIApp, holder: dict[str, Any]) -> None:
        self.app = app
        self.holder = holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            try:
                scope["principal"] = await self.holder["resources"].authenticator.authenticate(authorization)
            except Unauthenticated as error:
                await _refuse(scope, send, 401, ErrorCode.UNAUTHENTICATED, str(error))
                return
            except OUTAGES as outage:
                log.warning("cannot authenticate: %r", outage)
                await _refuse(scope, send, 503, ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _refuse(scope: Scope, send: Send, status: int, code: ErrorCode, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4401 if status == 401 else 1013, "reason": code})
        return
    body = json.dumps(error_body(code, message, scope["path"]))
    extra = [(b"www-authenticate", b"Bearer")] if status == 401 else [(b"retry-after", b"1")]
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), *extra]}
    )
    await send({"type": "http.response.body", "body": body.encode()})
