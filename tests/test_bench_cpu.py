"""The bench's CPU accounting (tests/bench/cpu.py): a process tree's CPU includes children that
started and ended in between, once reaped, as the postmaster's backends do."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.bench.cpu import CpuMeter, between, tree_cpu_s

# A parent that starts a child burning about 0.3 s of CPU, reaps it, then waits to be stopped.
_PARENT = """
import subprocess, sys, time
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
burn = "import time\\nend = time.process_time() + 0.3\\nwhile time.process_time() < end: pass"
subprocess.run([sys.executable, "-c", burn])
sys.stdout.write("reaped\\n"); sys.stdout.flush()
time.sleep(60)
"""


def test_a_reaped_child_is_counted_in_its_parents_tree() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None and parent.stdin is not None
            assert parent.stdout.readline() == "ready\n"
            meter = CpuMeter(lambda: {"postgres": [parent.pid]})
            before = meter.sample()
            parent.stdin.write("go\n")
            parent.stdin.flush()
            assert parent.stdout.readline() == "reaped\n"
            after = meter.sample()
            figures = between(before, after, units=100, per="event")
            # The child has exited and been reaped: only the parent's children times still hold it.
            assert figures["cpu_s"]["postgres"] >= 0.25
            assert figures["us_per_unit"]["postgres"] >= 2_500
            assert figures["us_per_unit"]["total"] == figures["us_per_unit"]["postgres"]
            assert figures["us_per_unit"]["api"] == 0
        finally:
            parent.kill()
    assert tree_cpu_s(parent.pid) is None  # gone: no figure, rather than a wrong one


def test_a_process_that_starts_in_between_counts_from_zero_and_one_that_ends_is_named() -> None:
    started = time.monotonic()
    pids: list[int] = []
    meter = CpuMeter(lambda: {"worker": list(pids)})
    before = meter.sample()
    burner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass\n"
         "time.sleep(60)"]
    )  # fmt: skip
    pids.append(burner.pid)
    try:
        while (tree_cpu_s(burner.pid) or 0) < 0.2 and time.monotonic() - started < 30:
            time.sleep(0.05)
        middle = meter.sample()
        assert between(before, middle, units=1, per="event")["cpu_s"]["worker"] >= 0.2
    finally:
        burner.kill()
        burner.wait()
    figures = between(middle, meter.sample(), units=1, per="event")
    assert figures["ended"] == [f"worker {burner.pid}"]
