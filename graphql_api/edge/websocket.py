"""graphql-transport-ws as the API speaks it: errors the protocol handler sends itself (too many
subscriptions on one connection, incremental delivery) carry a code like every other error.

Browsers cannot set headers on a WebSocket: the credentials come in connection_init's payload
(`authorization`). Credentials that are refused close the socket with 4401 and the reason
`UNAUTHENTICATED` (as the middleware does for a refused Authorization header on the upgrade), not
Strawberry's bare 4403 Forbidden: the client learns why, and graphql-ws does not retry a 4401. A
backing service that is away while the key is checked closes it with 1013 `UNAVAILABLE` (retry).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from graphql_api.access.authenticate import Unauthenticated
from graphql_api.context import Context
from graphql_api.edge.query_cost import document_refusal
from ledger.core.errors import ErrorCode
from ledger.runtime.outages import OUTAGES

log = logging.getLogger(__name__)

_LIMIT_MESSAGE = "Subscription limit reached"
_UNAUTHENTICATED_CLOSE = (4401, ErrorCode.UNAUTHENTICATED)
_UNAVAILABLE_CLOSE = (1013, ErrorCode.UNAVAILABLE)


class LedgerTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    async def send_message(self, message: Message) -> None:
        if message["type"] == "error":
            for error in message["payload"]:
                extensions = error.setdefault("extensions", {})
                if "code" not in extensions:
                    limited = error.get("message") == _LIMIT_MESSAGE
                    extensions["code"] = ErrorCode.LIMIT_REACHED if limited else ErrorCode.BAD_REQUEST
        await super().send_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        # A second connection_init is Strawberry's to refuse (4429), without authenticating again.
        if not self.connection_init_received:
            refusal = await self._authenticate(message.get("payload"))
            if refusal is not None:
                code, reason = refusal
                await self.websocket.close(code=code, reason=reason)
                return
        await super().handle_connection_init(message)

    async def _authenticate(self, payload: object) -> tuple[int, str] | None:
        """Take the principal from the payload's credentials; the close code and reason if refused."""
        if not isinstance(payload, dict):
            return None  # Strawberry closes with 4400 for a payload that is not an object
        authorization = payload.get("authorization")
        if not isinstance(authorization, str) or not authorization:
            return None  # none given: whoever the upgrade's headers said, or anonymous
        context = cast("Context", self.context)
        try:
            context.principal = await context.resources.authenticator.authenticate(authorization)
        except Unauthenticated:
            return _UNAUTHENTICATED_CLOSE
        except OUTAGES as outage:
            log.warning("cannot authenticate a WebSocket: %r", outage)
            return _UNAVAILABLE_CLOSE
        context.credentials = authorization
        return None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        # The document's cost is checked before Strawberry parses and validates it, as over HTTP;
        # an unacknowledged connection or a reused id is still Strawberry's to close.
        if self.connection_acknowledged and message.get("id") not in self.operations:
            payload = message.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("query"), str):
                refusal = document_refusal(payload["query"], payload.get("operationName"))
                if refusal is not None:
                    await self.send_message({"id": message["id"], "type": "error", "payload": [refusal.formatted]})
                    return
        await super().handle_subscribe(message)
