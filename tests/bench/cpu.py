"""CPU seconds of the service's processes between two moments, per kind, per event (or request).

Unlike a rate, CPU per event hardly moves with the machine's other load, so it is the figure to
optimize and quote. Every process of a kind is counted with all its descendants: a process's own
user + system time, its reaped children's (`cutime` + `cstime` in /proc/<pid>/stat, which is how the
PostgreSQL backends that started and ended within a phase stay counted once the postmaster has
reaped them), and each live descendant's the same way. The load generator (this process and any
helper process it starts) is the client, reported apart and never in the total.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

KINDS = ("api", "worker", "postgres", "redis")
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")

# The service's processes by kind, read again at each sample (workers and APIs come and go).
Roots = Callable[[], Mapping[str, Iterable[int]]]


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds of `pid` and all its descendants, reaped or alive; None if `pid` is gone."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    total = times.user + times.system + times.children_user + times.children_system
    for child in children:
        try:
            own = child.cpu_times()
        except psutil.NoSuchProcess:  # ended since the listing: its parent's children times have it (or soon will)
            continue
        total += own.user + own.system + own.children_user + own.children_system
    return total


def own_cpu_s() -> float:
    """This process's CPU (all threads), without its children: the client's own work."""
    times = os.times()
    return times.user + times.system


def machine_cpu_s() -> tuple[float, float] | None:
    """Busy and stolen CPU seconds of all cores since boot (/proc/stat): the machine's other load, and
    on a virtual machine the time its host took (both make the service's CPU per event rise)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]  # guest is already in user
    return (user + nice + system + irq + softirq) / _CLOCK_TICKS_PER_S, steal / _CLOCK_TICKS_PER_S


@dataclass(frozen=True)
class CpuSample:
    at: float  # time.monotonic()
    service: dict[tuple[str, int], float]  # (kind, pid) -> CPU seconds of that process's tree
    client_s: float
    machine_s: tuple[float, float] | None  # busy, stolen


@dataclass
class CpuMeter:
    """Samples the service's and the client's CPU; `between` turns two samples into the figures."""

    roots: Roots
    client_pids: list[int] = field(default_factory=list)  # helper processes of the load generator

    def sample(self) -> CpuSample:
        service: dict[tuple[str, int], float] = {}
        for kind, pids in self.roots().items():
            for pid in pids:
                seconds = tree_cpu_s(pid)
                if seconds is not None:
                    service[(kind, pid)] = seconds
        client = own_cpu_s() + sum(tree_cpu_s(pid) or 0.0 for pid in self.client_pids)
        return CpuSample(time.monotonic(), service, client, machine_cpu_s())


def between(before: CpuSample, after: CpuSample, units: int, per: str) -> dict[str, Any]:
    """CPU from `before` to `after` in µs per unit (event or request), by kind and in total.

    A process that started in between counts from zero (its start-up is in the figure: measure over
    a window that begins after the start); one that ended in between is listed under `ended`, its
    last moments uncounted."""
    wall = after.at - before.at
    seconds = dict.fromkeys(KINDS, 0.0)
    processes = dict.fromkeys(KINDS, 0)
    for (kind, pid), spent in after.service.items():
        seconds[kind] += max(0.0, spent - before.service.get((kind, pid), 0.0))
        processes[kind] += 1
    ended = sorted(f"{kind} {pid}" for kind, pid in set(before.service) - set(after.service))
    total = sum(seconds.values())
    client = after.client_s - before.client_s
    machine = None
    if after.machine_s is not None and before.machine_s is not None:
        machine = (after.machine_s[0] - before.machine_s[0], after.machine_s[1] - before.machine_s[1])

    def per_unit(spent: float) -> float | None:
        return round(spent * 1e6 / units, 1) if units > 0 else None

    figures: dict[str, Any] = {
        "per": per,
        "units": units,
        "wall_s": round(wall, 3),
        "us_per_unit": {**{kind: per_unit(seconds[kind]) for kind in KINDS}, "total": per_unit(total)},
        "client_us_per_unit": per_unit(client),
        "cpu_s": {**{kind: round(seconds[kind], 3) for kind in KINDS}, "total": round(total, 3)},
        "cores_busy": {"service": round(total / wall, 2), "client": round(client / wall, 2)} if wall > 0 else {},
        "processes": processes,
    }
    if machine is not None and wall > 0:
        # Busy cores outside the service and the client: other loads on the machine (noise).
        busy, stolen = machine
        figures["cores_busy"]["machine"] = round(busy / wall, 2)
        figures["cores_busy"]["other"] = round(max(0.0, busy - total - client) / wall, 2)
        figures["cores_busy"]["stolen"] = round(stolen / wall, 2)
    if ended:
        figures["ended"] = ended
    return figures
