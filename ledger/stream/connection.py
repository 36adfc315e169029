"""The one place that makes the ledger's Redis client: a plain `redis.asyncio.Redis` for the Redis
`REDIS_URL` names, or, with `CREDIT_LEDGER_REDIS_CLUSTER=true`, a Redis Cluster client that learns
the other nodes (and which holds each slot) from that one.

What the ledger sends works on both, with these differences, all handled here or by the callers:
- Pipelines are non-transactional. A cluster pipeline groups its commands by node and sends each
  group at once; a command met by MOVED or ASK (a slot resharded meanwhile) is sent again alone,
  where it follows the redirection.
- redis-py's async cluster pipeline refuses EVALSHA and PUBLISH (a rule it keeps from its sync
  pipeline, which could not route them), though its routing sends EVALSHA to its keys' slot and
  PUBLISH by its channel. `LedgerCluster`'s pipeline queues both as the raw commands they are.
- A script's keys must share a hash slot (`ledger.stream.keys` tags them), and a node that never
  loaded a script answers NOSCRIPT: SCRIPT LOAD on a cluster client loads it on every primary.
- No command may name keys of several slots: the partitions' streams are read one command each
  (`ledger.stream.inbox`), leases read with one GET each.
- redis-py's async cluster client has no pub/sub. Classic PUBLISH is broadcast to every node of a
  cluster, so one plain connection to one node hears every channel: `LedgerCluster.pubsub` opens
  it on the node `REDIS_URL` names, or on another node when that one cannot be reached.
- Three redis-py 5.3 faults met while slots move or a master is lost are worked around here (each
  found by `tests/test_redis_cluster.py`): ASK followed on two connections (`_AskedNode`), a full
  relearn every fifth MOVED (`reinitialize_steps=0`), and commands in flight when it relearns the
  cluster (`_closed_under_us_as_lost`). What a lost master raises is in `ledger.runtime.outages`.

The type callers see is `redis.asyncio.Redis`: the cluster client answers every command the ledger
uses with the same replies, and `is_cluster` tells the few places that must act differently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, PipelineCommand, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError

from ledger import constants
from ledger.runtime.settings import Settings

# redis-py relearns the cluster (after a lost connection, CLUSTERDOWN, a failed pipeline) by closing
# every node's connections and its default node, while other commands of the same client may be in
# flight on them: those fail with AttributeError on a None (the connection's writer, the default
# node). That is a lost connection, and is raised as one: retried by the worker, UNAVAILABLE to a
# caller. Any other AttributeError is left alone.
_CLOSED_UNDER_US = "'NoneType' object has no attribute"


@contextlib.contextmanager
def _closed_under_us_as_lost() -> Iterator[None]:
    try:
        yield
    except AttributeError as error:
        if not str(error).startswith(_CLOSED_UNDER_US):
            raise
        raise RedisConnectionError(f"a connection was closed while in use, the cluster relearned ({error})") from error


class LedgerClusterPipeline(ClusterPipeline):
    """A cluster pipeline that also queues EVALSHA (routed by its keys) and PUBLISH."""

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        with _closed_under_us_as_lost():
            return await super().execute(raise_on_error, allow_redirections)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> ClusterPipeline:  # type: ignore[override]
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    def publish(self, channel: Any, message: Any, **kwargs: Any) -> ClusterPipeline:
        return self.execute_command("PUBLISH", channel, message, **kwargs)


class _AskedNode:
    """A node as redis-py's cluster client uses it after an ASK redirection: it sends ASKING, then
    the command, each on a connection of its own, and with several connections free the two go on
    different ones (the free list is first in, first out). ASKING holds for its connection's next
    command only, so the node, still importing the slot, answers MOVED back to the node that said
    ASK, and the command bounces until redis-py gives up ("TTL exhausted") while a slot migrates.
    Here ASKING is held back and sent with the command, in one pipeline on one connection."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node
        self._asking = False

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if args == ("ASKING",):
            self._asking = True
            return True
        if not self._asking:
            return await self._node.execute_command(*args, **kwargs)
        self._asking = False
        asking, command = PipelineCommand(0, "ASKING"), PipelineCommand(1, *args, **kwargs)
        await self._node.execute_pipeline([asking, command])
        if isinstance(command.result, Exception):
            raise command.result
        return command.result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)


class LedgerCluster(RedisCluster):
    """redis-py's async cluster client, with the ledger's pipeline, a pub/sub on one node, and
    ASK redirections that work while a slot migrates (`_AskedNode`)."""

    def __init__(self, seed_url: str, **kwargs: Any) -> None:
        # What redis-py's from_url() does, in a subclass; the seed is kept for `pubsub`. A MOVED
        # updates the one slot it names (after a reshard, that is what changed); without
        # `reinitialize_steps=0` every fifth MOVED makes redis-py drop its view of the whole cluster,
        # and a pipeline that met it then fails on the default node it just forgot.
        super().__init__(**{"reinitialize_steps": 0, **kwargs}, **parse_url(seed_url))
        self._seed_url = seed_url

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _closed_under_us_as_lost():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if transaction or shard_hint:
            return super().pipeline(transaction, shard_hint)  # which refuses them
        # redis-py's typing marks `connection_pool` abstract on every cluster class; none has one.
        return LedgerClusterPipeline(self)  # type: ignore[abstract]

    def get_node(
        self, host: str | None = None, port: int | None = None, node_name: str | None = None
    ) -> ClusterNode | None:
        # redis-py itself calls this only to follow an ASK, and to check a default node exists.
        node = super().get_node(host, port, node_name)
        return None if node is None else cast(ClusterNode, _AskedNode(node))

    def pubsub(self, **kwargs: Any) -> PubSub:
        """A pub/sub that hears every channel published anywhere in the cluster: on the seed node,
        or, when that cannot be reached, on the first other node that answers (`_AnyNodeConnection`);
        it subscribes again to its channels on whichever it reaches."""
        options: dict[str, Any] = {
            "socket_timeout": constants.redis_socket_timeout_s,
            "socket_connect_timeout": constants.redis_connect_timeout_s,
            **parse_url(self._seed_url),
        }
        if options.get("connection_class", Connection) is Connection:
            options |= {"connection_class": _AnyNodeConnection, "candidates": self._known_nodes}
        # (Over TLS, the seed node alone: the fallback is written for plain TCP connections.)
        pool = ConnectionPool(**options)
        return _NodePubSub(pool, **kwargs)

    def _known_nodes(self) -> list[tuple[str, int]]:
        return [(node.host, int(node.port)) for node in self.nodes_manager.nodes_cache.values()]


class _AnyNodeConnection(Connection):
    """A connection to its own host and port, or, when that refuses, to the first of the cluster's
    other known nodes that accepts: any node relays every PUBLISH of the cluster."""

    def __init__(self, *, candidates: Callable[[], list[tuple[str, int]]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._first = (self.host, self.port)
        self._candidates = candidates

    async def _connect(self) -> None:
        failure: Exception | None = None
        for host, port in dict.fromkeys([self._first, *self._candidates()]):
            self.host, self.port = host, port
            try:
                await super()._connect()  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as error:
                failure = error
                continue
            return
        assert failure is not None
        raise failure


class _NodePubSub(PubSub):
    """A pub/sub with a connection pool of its own, emptied when it is closed (not by the cluster
    client's aclose(), which redis-py also calls, internally, to learn the cluster again)."""

    async def aclose(self) -> None:
        await super().aclose()  # type: ignore[no-untyped-call]
        await self.connection_pool.disconnect()


def redis_client(settings: Settings) -> redis.Redis:
    """The ledger's client for `settings`: a cluster client when `redis_cluster` is set."""
    options: dict[str, Any] = {
        "socket_timeout": constants.redis_socket_timeout_s,
        "socket_connect_timeout": constants.redis_connect_timeout_s,
    }
    if settings.redis_cluster:
        # Callers type it as the plain client: it answers every command the ledger sends alike.
        return cast(redis.Redis, LedgerCluster(settings.redis_url, **options))  # type: ignore[abstract]
    client: redis.Redis = redis.Redis.from_url(settings.redis_url, **options)
    return client


def is_cluster(client: redis.Redis) -> bool:
    return isinstance(client, RedisCluster)


def node_of(client: redis.Redis, key: str | bytes) -> ClusterNode:
    """The node that holds `key`'s slot, as the client last learned it (MOVED updates it)."""
    cluster = cast(RedisCluster, client)
    return cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))
