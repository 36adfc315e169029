"""One Redis pub/sub connection per process, fanned out to any number of local listeners.

Pub/sub is a notification path only: a message lost while the connection is down is recovered by
the caller (a timed-out wait is retried idempotently; a meter re-reads the balance on reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ledger import constants

log = logging.getLogger(__name__)

Handler = Callable[[bytes], None]


class PubSubHub:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._handlers: dict[str, set[Handler]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pubsub-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def add(self, channel: str, handler: Handler) -> None:
        first = not self._handlers[channel]
        self._handlers[channel].add(handler)
        if first:
            await self._pubsub.subscribe(channel)
            self._subscribed.set()

    async def remove(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers is None:
            return
        handlers.discard(handler)
        if not handlers:
            del self._handlers[channel]
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                await self._pubsub.unsubscribe(channel)

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        """A bounded queue of a channel's messages; when full the oldest is dropped (a meter only
        needs the newest reading)."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(constants.pubsub_listener_queue_length_max)

        def deliver(message: bytes) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

        await self.add(channel, deliver)
        try:
            yield queue
        finally:
            await self.remove(channel, deliver)

    async def _run(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                # get_message() returns at once when nothing is subscribed; wait for a channel.
                self._subscribed.clear()
                await self._subscribed.wait()
            try:
                message = await self._pubsub.get_message(timeout=constants.pubsub_poll_timeout_s)
            except (RedisConnectionError, RedisTimeoutError) as error:
                log.warning("pub/sub connection lost (%s); reconnecting", error)
                await asyncio.sleep(constants.pubsub_reconnect_delay_s)
                continue
            if message is None or message["type"] != "message":
                continue
            channel = message["channel"].decode()
            for handler in list(self._handlers.get(channel, ())):
                handler(message["data"])
