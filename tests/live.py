"""A small graphql-transport-ws client for tests: subscribe, then read what the server sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import websockets

from tests.conftest import Service


class Live:
    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self._ids = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, service: Service, credentials: str | None = None, url: str | None = None
    ) -> AsyncIterator[Live]:
        ws_url = (url or service.url).replace("http", "ws") + "/graphql"
        credentials = service.admin_key if credentials is None else credentials
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            payload = {"authorization": f"Bearer {credentials}"} if credentials else {}
            await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            yield cls(socket)

    async def subscribe(self, query: str, **variables: Any) -> str:
        self._ids += 1
        operation = str(self._ids)
        message = {"id": operation, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        await self.socket.send(json.dumps(message))
        return operation

    async def message(self, timeout_s: float = 5) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), timeout_s))
        return found

    async def next(self, field: str, timeout_s: float = 5) -> dict[str, Any]:
        """The next `next` message's data for `field` (an error fails the test)."""
        message = await self.message(timeout_s)
        assert message["type"] == "next" and not message["payload"].get("errors"), message
        value: dict[str, Any] = message["payload"]["data"][field]
        return value

    async def quiet(self, timeout_s: float = 0.5) -> None:
        """Nothing arrives within the time."""
        with contextlib.suppress(TimeoutError):
            message = await self.message(timeout_s)
            raise AssertionError(f"unexpected message: {message}")

    async def ended_with(self, timeout_s: float = 5) -> str:
        """The error code the subscription ended with (a `complete` left by one before is skipped)."""
        message = await self.message(timeout_s)
        while message["type"] == "complete":
            message = await self.message(timeout_s)
        errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
        assert errors, message
        code: str = errors[0]["extensions"]["code"]
        return code
