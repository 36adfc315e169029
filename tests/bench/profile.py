"""Optional sampling profile of the ledger workers during M1 with py-spy (`pip install py-spy`)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

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

    def __init__(self, pids: list[int], directory: Path) -> None:
        self.binary = py_spy()
        self.outputs = [directory / f"py-spy-{pid}.txt" for pid in pids]
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
