"""CPU the API process spends per request at the edge: the duplicate-fields attack (1,000 copies of
`viewer { kind }`) with and without credentials, and a normal query for comparison.

    .venv/bin/python -m tests.bench.edge_cost [--requests 40]

A script, not a test (a timed unit test would fail on a busy machine for no fault of the code). It
starts durable embedded servers and one API process like the main bench, sends each request
sequentially, and reads the API process's own CPU time (user + system, /proc) around them, so the
client's work is not counted. Refusing the attack must cost under `refusal_cpu_max_ms` either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from ledger.runtime.servers import apply_migrations
from tests.bench.servers import BENCH_ADMIN_KEY, BenchWorld, Child, bench_world, free_port

refusal_cpu_max_ms = 50.0
api_start_timeout_s = 30.0
warmup_requests = 3
requests_default = 40
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_SENT = itertools.count()

DUPLICATE_FIELDS = " ".join(["viewer { kind }"] * 1000)
NORMAL = "{ viewer { kind } products { key } }"


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    credentials: bool
    must_refuse: bool


CASES = (
    Case("attack, no credentials", DUPLICATE_FIELDS, credentials=False, must_refuse=True),
    Case("attack, admin key", DUPLICATE_FIELDS, credentials=True, must_refuse=True),
    Case("normal query, admin key", NORMAL, credentials=True, must_refuse=False),
)


def process_cpu_s(pid: int) -> float:
    """User + system CPU of one process so far (its children are not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_S  # utime, stime


def start_api(world: BenchWorld) -> Child:
    settings = replace(world.settings, port=free_port(), graphiql=False)
    # Not `start_apis`: it waits for /readyz, which may want ledger workers this bench does not run.
    child = world._spawn("api-edge", "api", settings)
    deadline = time.monotonic() + api_start_timeout_s
    while True:
        if child.process.poll() is not None:
            raise RuntimeError(f"the API exited with {child.process.returncode}; see {child.log_path}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{child.port}/healthz", timeout=1).status_code == 200:
                return child
        if time.monotonic() > deadline:
            raise TimeoutError(f"the API did not start within {api_start_timeout_s}s; see {child.log_path}")
        time.sleep(0.1)


def answer_code(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return f"HTTP {response.status_code}, not JSON"
    return str(errors[0].get("extensions", {}).get("code")) if errors else "answered"


def document(case: Case) -> str:
    """The attack made new for each request (one alias differs), as an attacker would: a document
    sent again is met by the validation cache and costs only its parse."""
    return f"{{ attack{next(_SENT)}: {case.query} }}" if case.must_refuse else case.query


def measure(client: httpx.Client, pid: int, case: Case, requests: int) -> tuple[float, str]:
    """CPU ms of the API per request, and the code the last answer carried."""
    headers = {"authorization": f"Bearer {BENCH_ADMIN_KEY}"} if case.credentials else {}
    for _ in range(warmup_requests):
        client.post("/graphql", json={"query": document(case)}, headers=headers)
    before = process_cpu_s(pid)
    for _ in range(requests):
        response = client.post("/graphql", json={"query": document(case)}, headers=headers)
    spent_s = process_cpu_s(pid) - before
    return spent_s * 1000 / requests, answer_code(response)


def run(requests: int) -> bool:
    with bench_world(keep=False) as world:
        asyncio.run(apply_migrations(world.settings.database_url))
        api = start_api(world)
        assert api.port is not None
        ok = True
        print(f"| case | API CPU ms per request ({requests} requests) | answer |")
        print("| --- | --- | --- |")
        with httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=60) as client:
            for case in CASES:
                cpu_ms, code = measure(client, api.process.pid, case, requests)
                verdict = ""
                if case.must_refuse:
                    passed = cpu_ms < refusal_cpu_max_ms and code != "answered"
                    ok &= passed
                    verdict = f" ({'ok' if passed else 'FAIL'}: under {refusal_cpu_max_ms:g} ms to refuse)"
                print(f"| {case.name} | {cpu_ms:.2f}{verdict} | {code} |")
        return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=requests_default, help="measured requests per case")
    arguments = parser.parse_args(argv)
    sys.exit(0 if run(arguments.requests) else 1)


if __name__ == "__main__":
    main()
