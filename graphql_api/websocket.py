"""graphql-transport-ws as the API speaks it: errors the protocol handler sends itself (too many
subscriptions on one connection, incremental delivery) carry a code like every other error."""

from __future__ import annotations

from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message

# Operations one connection may run at once (each subscription holds a listener and a task).
subscriptions_per_connection_max = 100
_LIMIT_MESSAGE = "Subscription limit reached"


class LedgerTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    async def send_message(self, message: Message) -> None:
        if message["type"] == "error":
            for error in message["payload"]:
                extensions = error.setdefault("extensions", {})
                if "code" not in extensions:
                    limited = error.get("message") == _LIMIT_MESSAGE
                    extensions["code"] = "LIMIT_REACHED" if limited else "BAD_REQUEST"
        await super().send_message(message)
