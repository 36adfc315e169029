"""The README's run command as a user runs it: start, query with a plain HTTP client, stop, and
find nothing left running; start again and find the same data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ledger.directory.api_keys import new_key
from tests.conftest import _free_port

start_timeout_s = 60


def _processes_using(state_dir: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if str(state_dir) in command_line and "State:\tZ" not in status:
            found.append(f"{entry.name}: {command_line}")
    return found


# The operator's chosen admin key, stored on start-up.
ADMIN_KEY = new_key()


def _start(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    environment |= {
        "CREDIT_LEDGER_STATE_DIR": str(state_dir),
        "CREDIT_LEDGER_PORT": str(port),
        "CREDIT_LEDGER_ADMIN_KEY": ADMIN_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "graphql_api.shell.cli", "serve", "--log-level", "WARNING"], env=environment
    )
    deadline = time.monotonic() + start_timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None, "serve exited during start-up"
        time.sleep(0.2)
    process.kill()
    raise AssertionError("serve did not become ready")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0


def _graphql(port: int, query: str) -> dict[str, object]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    body: dict[str, object] = response.json()
    assert "errors" not in body, body
    return body


@pytest.mark.slow
def test_serve_answers_stops_clean_and_keeps_data(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    org = "00000000-0000-4000-8000-0000000000aa"
    port = _free_port()
    process = _start(state_dir, port)
    try:
        _graphql(port, f'mutation {{ createOrganization(input: {{id: "{org}", name: "Kept"}}) {{ id }} }}')
        granted = _graphql(
            port,
            f'mutation {{ grantCredits(input: {{organizationId: "{org}", amount: "42.5", idempotencyKey: "g"}})'
            " { status balanceAfter } }",
        )
        assert granted == {"data": {"grantCredits": {"status": "ACCEPTED", "balanceAfter": "42.5"}}}
    finally:
        _stop(process)
    assert _processes_using(state_dir) == []

    port = _free_port()
    process = _start(state_dir, port)
    try:
        body = _graphql(port, f'{{ organization(id: "{org}") {{ name balance {{ total }} }} }}')
        assert body == {"data": {"organization": {"name": "Kept", "balance": {"total": "42.5"}}}}
    finally:
        _stop(process)
    assert _processes_using(state_dir) == []
