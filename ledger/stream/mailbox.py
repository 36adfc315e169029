"""The caller's side of an organization's mailbox: append a command, and optionally wait for the
ledger worker's result.

Every error here (`Unavailable`, `Overloaded`, `ResultTimeout`, in `ledger.core.errors`) is
retryable under the same idempotency key: the ledger applies a key once.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ledger import constants
from ledger.core.commands import Command
from ledger.core.errors import Overloaded, ResultTimeout, Unavailable
from ledger.core.wire import encode
from ledger.stream import keys
from ledger.stream.connection import is_cluster
from ledger.stream.pubsub import PubSubHub
from ledger.stream.replies import Reply, decode_reply

# KEYS: partition streams; ARGV: the length limit, then how many commands each stream takes, then
# the commands in that order. All or none: refuse rather than grow without bound when any stream
# would pass the limit (a full partition means the workers are behind). On a single Redis one call
# takes a whole request; on a cluster a script's keys must share a slot, so each stream has its own.
_APPEND = """
local limit = tonumber(ARGV[1])
local streams = #KEYS
for s = 1, streams do
    if redis.call('XLEN', KEYS[s]) + tonumber(ARGV[1 + s]) > limit then
        return false
    end
end
local i = streams + 2
for s = 1, streams do
    for _ = 1, tonumber(ARGV[1 + s]) do
        redis.call('XADD', KEYS[s], '*', 'c', ARGV[i])
        i = i + 1
    end
end
return i - streams - 2
"""


class Mailbox:
    def __init__(self, client: redis.Redis, partition_count: int, hub: PubSubHub | None = None) -> None:
        """Without a hub the mailbox can only send (as the jobs do); `send_and_wait` needs one."""
        self._client = client
        self._hub = hub
        self._partition_count = partition_count
        self._cluster = is_cluster(client)
        self._append_sha = hashlib.sha1(_APPEND.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        self.instance_id = uuid.uuid4().hex
        self.reply_channel = keys.reply_channel(self.instance_id)
        self._waiting: dict[UUID, asyncio.Future[Reply]] = {}

    async def start(self) -> None:
        assert self._hub is not None, "waiting for results needs a pub/sub hub"
        await self._hub.add(self.reply_channel, self._on_reply)

    def _on_reply(self, raw: bytes) -> None:
        reply = decode_reply(raw)
        future = self._waiting.get(reply.command_id)
        if future is not None and not future.done():
            future.set_result(reply)

    async def send(self, commands: Sequence[Command]) -> None:
        """Append commands durably (Redis answers after its AOF fsync); all or a clear error.

        On a single Redis one script call appends them all or none. On a cluster each partition's
        commands go in a call of their own, so a partial failure is possible; each command is
        idempotent, so the caller retries the whole request."""
        by_stream: dict[str, list[bytes]] = {}
        for command in commands:
            stream = keys.stream(keys.partition_of(command.organization_id, self._partition_count))
            by_stream.setdefault(stream, []).append(encode(command))
        calls = [[item] for item in by_stream.items()] if self._cluster else [list(by_stream.items())]
        try:
            appended = await self._append_all(calls)
            forgotten = [i for i, answer in enumerate(appended) if isinstance(answer, NoScriptError)]
            if forgotten:
                # Redis restarted and forgot the script (on a cluster, only some nodes may have):
                # those calls appended nothing; load it and resend only them.
                await self._client.script_load(_APPEND)
                again = await self._append_all([calls[i] for i in forgotten])
                for i, answer in zip(forgotten, again, strict=True):
                    appended[i] = answer
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise Unavailable("the command queue is unavailable; retry with the same idempotency key") from error
        if errors := [answer for answer in appended if isinstance(answer, Exception)]:
            raise errors[0]
        if not all(appended):
            raise Overloaded("the ledger is behind; retry with the same idempotency key shortly")

    async def _append_all(self, calls: list[list[tuple[str, list[bytes]]]]) -> list[Any]:
        """One EVALSHA per call (its streams and their commands), each answer or its error. On a
        single Redis (one call a request) it is sent alone: a pipeline costs more to build than the
        command. A cluster's pipeline is kept: it is what reports a node lost as a retryable error.
        EVALSHA straight away: redis-py's Script first asks SCRIPT EXISTS, one more round trip."""
        limit = str(constants.stream_length_max)
        arguments = [self._arguments(call, limit) for call in calls]
        if len(arguments) == 1 and not self._cluster:
            try:
                return [await self._client.evalsha(self._append_sha, *arguments[0])]  # type: ignore[misc]
            except ResponseError as error:  # NOSCRIPT, or a Redis that refuses writes
                return [error]
        async with self._client.pipeline(transaction=False) as pipe:
            for call_arguments in arguments:
                pipe.evalsha(self._append_sha, *call_arguments)
            answers: list[Any] = await pipe.execute(raise_on_error=False)
        return answers

    @staticmethod
    def _arguments(call: list[tuple[str, list[bytes]]], limit: str) -> list[Any]:
        """EVALSHA's arguments after the script: the key count, the streams, the limit, each
        stream's command count, the commands."""
        streams = [stream for stream, _ in call]
        counts = [len(encoded) for _, encoded in call]
        return [len(streams), *streams, limit, *counts, *(command for _, batch in call for command in batch)]

    async def send_and_wait(self, commands: Sequence[Command], timeout_ms: int) -> list[Reply]:
        loop = asyncio.get_running_loop()
        futures = {command.envelope.command_id: loop.create_future() for command in commands}
        self._waiting.update(futures)
        try:
            await self.send(commands)
            async with asyncio.timeout(timeout_ms / 1000):
                if len(futures) == 1:  # the common case, without gather's wrapping
                    return [await next(iter(futures.values()))]
                return list(await asyncio.gather(*futures.values()))
        except TimeoutError as error:
            raise ResultTimeout(
                "queued, but the result did not arrive in time; retry with the same idempotency key"
            ) from error
        finally:
            for command_id in futures:
                self._waiting.pop(command_id, None)
