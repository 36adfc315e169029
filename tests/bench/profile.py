"""`--profile`: where the time of a phase goes. py-spy samples the service's Python processes (the
ledger workers, the API processes) by kind, and pg_stat_statements (preloaded into the embedded
PostgreSQL for a profiled run) says which statements PostgreSQL spent its time on; both summarized
per phase into the results JSON. Sampling and statement tracking cost CPU themselves: a profiled
run's figures are for finding the time, not for quoting."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import psutil

sample_rate_hz = 100
top_count = 15
everywhere = 0.75
_ROOT = str(Path(__file__).resolve().parents[2]) + "/"
_FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    """py-spy next to this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """`py-spy record --format raw` on each pid until `stop`; then top functions by own and total time."""

    def __init__(self, pids: Sequence[int], directory: Path, label: str = "") -> None:
        self.binary = py_spy()
        self.outputs = [directory / f"py-spy-{label}{pid}.txt" for pid in pids]
        self.processes: list[subprocess.Popen[bytes]] = []
        if self.binary is None:
            return
        for pid, output in zip(pids, self.outputs, strict=True):
            command = [self.binary, "record", "--pid", str(pid), "--format", "raw", "--rate", str(sample_rate_hz),
                       "--nonblocking", "--output", str(output)]  # fmt: skip
            self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> dict[str, Any]:
        if self.binary is None:
            return {"error": "py-spy is not installed"}
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        samples = 0
        for output in self.outputs:
            if not output.exists():
                continue
            for line in output.read_text().splitlines():
                stack, _, count_text = line.rpartition(" ")
                if not stack or not count_text.isdigit():
                    continue
                count = int(count_text)
                frames = [_short(frame) for frame in stack.split(";")[1:]]  # the first is the thread
                if not frames:
                    continue
                samples += count
                own[frames[-1]] += count
                for frame in set(frames):
                    total[frame] += count
        if not samples:
            return {"error": "no samples"}

        def top(counter: Counter[str]) -> list[tuple[str, float]]:
            return [(frame, round(100 * n / samples, 1)) for frame, n in counter.most_common(top_count)]

        # Frames on (nearly) every stack, the process's and the event loop's, say nothing.
        inner = Counter({frame: n for frame, n in total.items() if n < everywhere * samples})
        return {"samples": samples, "rate_hz": sample_rate_hz, "own_percent": top(own), "total_percent": top(inner)}


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", _ROOT, "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['function']} ({path})"


# pg_stat_statements in the embedded server: preloaded by `enable_statements` (a restart).
_STATEMENTS_TOP = """
SELECT query, calls, rows, total_exec_time, total_plan_time,
       shared_blks_hit + shared_blks_read AS blocks, wal_bytes
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time + total_plan_time DESC
"""
statements_top = 12
query_chars = 240


def enable_statements_sql() -> list[str]:
    """What a profiled run sets before PostgreSQL restarts (then CREATE EXTENSION)."""
    return [
        "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
        "ALTER SYSTEM SET pg_stat_statements.track = 'all'",
        "ALTER SYSTEM SET pg_stat_statements.track_utility = on",  # COMMIT, COPY
        "ALTER SYSTEM SET pg_stat_statements.track_planning = on",
    ]


async def reset_statements(pool: asyncpg.Pool) -> bool:
    try:
        await pool.execute("SELECT pg_stat_statements_reset()")
    except asyncpg.PostgresError:
        return False
    return True


async def statements(pool: asyncpg.Pool, units: int) -> dict[str, Any]:
    """PostgreSQL's time by statement since the last reset: the top ones, with µs per unit."""
    try:
        rows = await pool.fetch(_STATEMENTS_TOP)
    except asyncpg.PostgresError as error:
        return {"error": f"pg_stat_statements: {error}"}
    rows = [row for row in rows if "pg_stat_statements" not in row["query"]]
    total_ms = sum(row["total_exec_time"] + row["total_plan_time"] for row in rows)

    def per_unit(ms: float) -> float | None:
        return round(ms * 1000 / units, 1) if units else None

    return {
        "total_ms": round(total_ms, 1),
        "us_per_unit": per_unit(total_ms),
        "note": "execution and planning time as PostgreSQL measures it (wall time inside the backend: CPU, "
        "lock waits and I/O; a COMMIT's WAL flush included), by normalized statement",
        "top": [
            {
                "query": " ".join(row["query"].split())[:query_chars],
                "calls": row["calls"],
                "rows": row["rows"],
                "total_ms": round(row["total_exec_time"] + row["total_plan_time"], 1),
                "share_percent": round(100 * (row["total_exec_time"] + row["total_plan_time"]) / total_ms, 1)
                if total_ms
                else None,
                "us_per_unit": per_unit(row["total_exec_time"] + row["total_plan_time"]),
                "wal_bytes_per_unit": round(int(row["wal_bytes"]) / units, 1) if units else None,
            }
            for row in rows[:statements_top]
        ],
    }


_SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"


async def sessions(pool: asyncpg.Pool) -> int | None:
    """PostgreSQL sessions established so far (each new one pays connection set-up and asyncpg's type
    introspection for the types its statements use)."""
    try:
        count: int = await pool.fetchval(_SESSIONS)
    except asyncpg.PostgresError:
        return None
    return count


_BACKENDS = """
SELECT client_port, backend_start >= $1 AS started_since
FROM pg_stat_activity WHERE datname = current_database() AND client_port IS NOT NULL
"""


async def backends_by_kind(pool: asyncpg.Pool, pids: Mapping[str, Sequence[int]], since: Any) -> dict[str, Any]:
    """PostgreSQL sessions open now by the kind of process holding them (matched by the client's TCP
    port), and how many of them started since `since`: a pool still growing in the phase shows here."""
    ports: dict[int, str] = {}
    for kind, kind_pids in pids.items():
        for pid in kind_pids:
            with contextlib.suppress(psutil.Error):
                for connection in psutil.Process(pid).net_connections(kind="tcp"):
                    if connection.laddr:
                        ports[connection.laddr.port] = kind
    try:
        rows = await pool.fetch(_BACKENDS, since)
    except asyncpg.PostgresError as error:
        return {"error": str(error)}
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        kind = ports.get(row["client_port"], "other (bench, jobs)")
        entry = counts.setdefault(kind, {"open": 0, "started_in_phase": 0})
        entry["open"] += 1
        entry["started_in_phase"] += int(row["started_since"])
    return counts


class PhaseProfile:
    """py-spy on each kind of the service's Python processes for one phase, and PostgreSQL's
    statements over the same phase."""

    def __init__(self, pool: asyncpg.Pool, directory: Path, phase: str) -> None:
        self.pool = pool
        self.directory = directory
        self.phase = phase
        self.profilers: dict[str, Profiler] = {}
        self.statements_tracked = False
        self.sessions_before: int | None = None
        self.started_at: Any = None
        self.pids: dict[str, list[int]] = {}

    async def start(self, pids: Mapping[str, Sequence[int]]) -> None:
        self.statements_tracked = await reset_statements(self.pool)
        self.sessions_before = await sessions(self.pool)
        self.started_at = await self.pool.fetchval("SELECT now()")
        self.attach(pids)

    def attach(self, pids: Mapping[str, Sequence[int]]) -> None:
        """Sample these processes too (workers that start inside the phase attach when they exist)."""
        for kind, kind_pids in pids.items():
            self.pids[kind] = list(kind_pids)
            if kind_pids and kind not in self.profilers:
                self.profilers[kind] = Profiler(list(kind_pids), self.directory, f"{self.phase}-{kind}-")

    async def stop(self, units: int) -> dict[str, Any]:
        summary: dict[str, Any] = {kind: profiler.stop() for kind, profiler in self.profilers.items()}
        after = await sessions(self.pool)
        if after is not None and self.sessions_before is not None:
            summary["postgres_sessions_started"] = after - self.sessions_before
        summary["postgres_sessions_by_kind"] = await backends_by_kind(self.pool, self.pids, self.started_at)
        if self.statements_tracked:
            summary["postgres_statements"] = await statements(self.pool, units)
        else:
            summary["postgres_statements"] = {"error": "pg_stat_statements is not loaded"}
        return summary

    def abandon(self) -> None:
        for profiler in self.profilers.values():
            with contextlib.suppress(Exception):
                profiler.stop()
