"""`credit-ledger serve`: the API, the ledger workers and the jobs worker as child processes.

A child that dies is restarted with backoff. Ctrl-C or SIGTERM stops the API first (no new
commands), then the ledger workers (they finish their batch), then the jobs; the caller of
`Supervisor.run` then stops the embedded servers. Children die with the supervisor even if it is
killed outright (Linux parent-death signal), so nothing is left running.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ledger.runtime.settings import Settings

log = logging.getLogger(__name__)

poll_interval_s = 0.2
restart_delay_min_s = 0.5
restart_delay_max_s = 30.0
child_stop_timeout_s = 20.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    role: str
    process: subprocess.Popen[bytes] | None = None
    restart_delay_s: float = restart_delay_min_s
    restart_at: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children = [
            Child("api", "api"),
            *(Child(f"ledger-worker-{i}", "ledger-worker") for i in range(settings.ledger_workers)),
            Child("jobs", "jobs"),
        ]
        self.environment = {**os.environ, **settings.environment()}

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "graphql_api.cli", child.role],
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
                time.sleep(poll_interval_s)
        finally:
            self.stop()

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.process.poll()
            if code is None:
                if now - child.started_at > restart_delay_max_s:
                    child.restart_delay_s = restart_delay_min_s
                continue
            log.error("%s exited with %s; restarting in %.1fs", child.name, code, child.restart_delay_s)
            child.process = None
            child.restart_at = now + child.restart_delay_s
            child.restart_delay_s = min(child.restart_delay_s * 2, restart_delay_max_s)

    def stop(self) -> None:
        for child in self.children:
            process = child.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(child_stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in %ss; killing it", child.name, child_stop_timeout_s)
                process.kill()
                process.wait()
            log.info("stopped %s", child.name)
