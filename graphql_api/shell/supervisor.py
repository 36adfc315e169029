"""`credit-ledger serve`: the API, the ledger workers and the jobs worker as child processes, and
the embedded servers it started.

A child that dies is restarted after a short back-off: doubling from 0.5 s to at most 2 s while it
keeps dying young, from 0.5 s again once it ran 10 s, so the ledger is never long without a worker.
An embedded Redis or PostgreSQL that dies is restarted on its port and data (Redis from its AOF,
PostgreSQL by crash recovery), in a thread so the children are still watched meanwhile; the
children ride out the outage themselves (the workers and the API retry and reconnect, the jobs
worker exits and is restarted like any child).

Ctrl-C or SIGTERM stops the API first (no new commands), then the ledger workers (they finish their
batch), then the jobs; the caller of `Supervisor.run` then stops the embedded servers. Children die
with the supervisor even if it is killed outright (Linux parent-death signal), so nothing is left
running.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger import constants
from ledger.runtime.embedded import EmbeddedServers
from ledger.runtime.settings import Settings

log = logging.getLogger(__name__)

# The limits (ledger.constants) in the seconds that time.monotonic() counts.
restart_delay_min_s = constants.worker_restart_delay_min_ms / 1000
restart_delay_max_s = constants.worker_restart_delay_max_ms / 1000
healthy_run_s = constants.child_healthy_run_ms / 1000
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(code: int) -> str:
    """'was killed by SIGKILL' or 'exited with 1': what an operator reads first in the log."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with {code}"


@dataclass
class Child:
    name: str
    role: str
    process: subprocess.Popen[bytes] | None = None
    restart_delay_s: float = restart_delay_min_s
    restart_at: float = 0.0
    started_at: float = 0.0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def next_delay(self, now: float) -> float:
        """The back-off before this restart: from the minimum again after a healthy run."""
        if now - self.started_at >= healthy_run_s:
            self.restart_delay_s = restart_delay_min_s
        delay = self.restart_delay_s
        self.restart_delay_s = min(delay * 2, restart_delay_max_s)
        return delay


@dataclass
class WatchedServer:
    """An embedded server this process started: how to see its process and how to restart it."""

    name: str
    process: Callable[[], subprocess.Popen[bytes] | None]
    port: Callable[[], int | None]
    restart: Callable[[], None]
    thread: threading.Thread | None = None
    retry_at: float = 0.0


def watched_servers(embedded: EmbeddedServers | None) -> list[WatchedServer]:
    if embedded is None or not embedded.owner:
        return []  # attached to another process's servers: theirs to restart
    return [
        WatchedServer(
            "embedded Redis",
            lambda: embedded.redis.process,
            lambda: embedded.redis.port,
            embedded.restart_redis,
        ),
        WatchedServer(
            "embedded PostgreSQL",
            lambda: embedded.postgres.process,
            lambda: embedded.postgres.port,
            embedded.restart_postgres,
        ),
    ]


class Supervisor:
    def __init__(self, settings: Settings, embedded: EmbeddedServers | None = None) -> None:
        self.settings = settings
        self.children = [
            Child("api", "api"),
            *(Child(f"ledger-worker-{i}", "ledger-worker") for i in range(settings.ledger_workers)),
            Child("jobs", "jobs"),
        ]
        self.servers = watched_servers(embedded)
        self.environment = {**os.environ, **settings.environment()}
        # When the last ledger worker died (monotonic), while none is alive: reported once.
        self._workerless_since: float | None = None

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "graphql_api.shell.cli", child.role],
            env=self.environment,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.name, child.process.pid)

    def run(self) -> None:
        log.info(
            "serving GraphQL on http://%s:%d/graphql with %d ledger worker(s)",
            self.settings.host, self.settings.port, self.settings.ledger_workers,
        )  # fmt: skip
        try:
            for child in self.children:
                self._start(child)
            while True:
                self._watch()
                time.sleep(constants.supervisor_poll_interval_s)
        finally:
            self.stop()

    def _watch(self) -> None:
        now = time.monotonic()
        for server in self.servers:
            self._watch_server(server, now)
        for child in self.children:
            self._watch_child(child, now)
        self._watch_workers(now)

    def _watch_child(self, child: Child, now: float) -> None:
        if child.process is None:
            if now >= child.restart_at:
                self._start(child)
            return
        code = child.process.poll()
        if code is None:
            return
        delay = child.next_delay(now)
        log.error("%s (pid %d) %s; restarting in %.1f s", child.name, child.process.pid, describe_exit(code), delay)
        child.process = None
        child.restart_at = now + delay

    def _watch_workers(self, now: float) -> None:
        """One ERROR when no ledger worker is left (nothing applies commands), one INFO when one is."""
        workers = [child for child in self.children if child.role == "ledger-worker"]
        alive = sum(child.alive for child in workers)
        if alive == 0 and workers and self._workerless_since is None:
            self._workerless_since = now
            log.error("no ledger worker is alive: commands wait in their partitions until one is restarted")
        elif alive and self._workerless_since is not None:
            log.info("a ledger worker is alive again after %.1f s without any", now - self._workerless_since)
            self._workerless_since = None

    def _watch_server(self, server: WatchedServer, now: float) -> None:
        if server.thread is not None:
            if server.thread.is_alive():
                return
            server.thread = None
        process = server.process()
        if process is None or now < server.retry_at:
            return
        code = process.poll()
        if code is None:
            return
        log.error(
            "%s (pid %d) %s; restarting it on port %s with its data",
            server.name, process.pid, describe_exit(code), server.port(),
        )  # fmt: skip
        server.thread = threading.Thread(
            target=self._restart_server, args=(server,), name=f"restart {server.name}", daemon=True
        )
        server.thread.start()

    def _restart_server(self, server: WatchedServer) -> None:
        started = time.monotonic()
        try:
            server.restart()
        except Exception:
            server.retry_at = time.monotonic() + constants.server_restart_failure_retry_s
            log.exception(
                "could not restart %s; trying again in %.0f s", server.name, constants.server_restart_failure_retry_s
            )
            return
        process = server.process()
        pid = process.pid if process is not None else -1
        log.info("%s is back (pid %d) after %.1f s", server.name, pid, time.monotonic() - started)

    def stop(self) -> None:
        for child in self.children:
            process = child.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(constants.child_stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in %ss; killing it", child.name, constants.child_stop_timeout_s)
                process.kill()
                process.wait()
            log.info("stopped %s", child.name)
        for server in self.servers:
            # A restart in progress finishes first, so the servers' stop finds what it started.
            if server.thread is not None:
                server.thread.join(constants.server_start_timeout_s)
