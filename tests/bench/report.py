"""Targets, ratios, the results JSON and the markdown table."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAMES = {
    "B1": "B1 pgbench UPDATE, 10k rows, 8 clients",
    "B2": "B2 pgbench UPDATE, one row, 8 clients",
    "B3": "B3 pipelined XADD, one process",
    "M1": "M1 usage debits applied (Zipf over 10k orgs)",
    "M2": "M2 usage debits applied (one org)",
    "M3": "M3 POST /v1/usage accepted (QUEUED)",
    "M3g": "M3g recordUsageBatch accepted (QUEUED)",
    "M4": "M4 balance query p99 at half M1 load",
    "M5": "M5 QUEUED ack to meter push, p99",
    "M6": "M6 recordUsage APPLIED p99 at 500/s",
}
BASELINES = ("B1", "B2", "B3")
# Where the CPU per event (or request) is measured, in the order of the CPU table.
CPU_METRICS = ("M1", "M2", "M3", "M3g", "M4", "M6")
CPU_TOTAL = ("cpu", "us_per_unit", "total")


@dataclass(frozen=True)
class Target:
    metric: str
    at_least: bool  # a floor (throughput) or a ceiling (latency, CPU)
    bound: float
    of: str | None = None  # the bound is `bound` times this metric's value; else absolute
    figure: tuple[str, ...] = ("value",)  # where in the metric's entry the figure is

    @property
    def cpu(self) -> bool:
        return self.figure == CPU_TOTAL

    @property
    def key(self) -> str:
        sign = ">=" if self.at_least else "<="
        name = f"{self.metric} CPU us per {'event' if self.metric != 'M6' else 'request'}" if self.cpu else self.metric
        return f"{name} {sign} {f'{self.bound:g} x {self.of}' if self.of else f'{self.bound:g}'}"


TARGETS = (
    Target("M1", True, 1.0, "B1"),
    Target("M1", True, 15_000),
    Target("M1", False, 100.0, figure=CPU_TOTAL),  # the worker's debit, all processes counted
    Target("M2", True, 3.0, "B2"),
    Target("M2", True, 0.8, "M1"),
    Target("M3", True, 25_000),
    Target("M3", True, 0.3, "B3"),
    Target("M4", False, 5.0),
    Target("M5", False, 10.0),
    Target("M6", False, 15.0),
    Target("M6", False, 1_000.0, figure=CPU_TOTAL),  # a single APPLIED usage, all processes counted
)


def _figure(metrics: dict[str, Any], name: str, path: tuple[str, ...] = ("value",)) -> float | None:
    value: Any = metrics.get(name, {})
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _value(metrics: dict[str, Any], name: str) -> float | None:
    return _figure(metrics, name)


def evaluate(
    metrics: dict[str, Any], checks: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Ratios and verdicts; `checks` are verify results of steps that are not metrics (the grants)."""
    ratios: dict[str, float] = {}
    for target in TARGETS:
        value, other = _value(metrics, target.metric), _value(metrics, target.of) if target.of else None
        if target.of and value is not None and other:
            ratios[f"{target.metric}/{target.of}"] = round(value / other, 3)
    verdicts = []
    for target in TARGETS:
        value = _figure(metrics, target.metric, target.figure)
        bound: float | None = target.bound
        if target.of:
            other = _value(metrics, target.of)
            bound = None if other is None else target.bound * other
        met = None if value is None or bound is None else (value >= bound if target.at_least else value <= bound)
        verdicts.append({"target": target.key, "metric": target.metric, "value": value, "bound": bound, "met": met})
    steps = {**(checks or {}), **{name: entry["verify"] for name, entry in metrics.items() if "verify" in entry}}
    for name, check in steps.items():
        if check is not None:
            clean = bool(check["clean"])
            verdicts.append(
                {"target": f"verify clean after {name}", "metric": name, "value": check["violations"],
                 "bound": 0, "met": clean}
            )  # fmt: skip
    return ratios, verdicts


def _git(*arguments: str) -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        return subprocess.run(["git", *arguments], capture_output=True, text=True, check=True, cwd=root).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_busy_fraction(seconds: float = 1.0) -> float | None:
    """How busy all cores were over `seconds` (from /proc/stat): another load skews every figure."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(1 - (idle1 - idle0) / max(1, total1 - total0), 3)


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": _git("status", "--porcelain") not in ("", "unknown"),
    }


def _format(metric: str, metrics: dict[str, Any]) -> str:
    entry = metrics.get(metric)
    if entry is None:
        return "not run"
    if "error" in entry:
        return "failed"
    if "unavailable" in entry:
        return "route not available"
    value = _value(metrics, metric)
    if value is None:
        return "n/a"
    unit = str(entry.get("unit", ""))
    if unit.startswith("ms"):
        return f"{value:.2f} ms"
    return f"{value:,.0f} {unit}"


def _target_text(target: Target) -> str:
    sign = "≥" if target.at_least else "≤"
    if target.of:
        return f"{sign} {target.bound:g} x {target.of}"
    if target.cpu:
        return f"{sign} {target.bound:,.0f} µs CPU"
    return f"{sign} {target.bound:,.0f}/s" if target.at_least else f"{sign} {target.bound:g} ms"


_MET = {True: "yes", False: "**no**", None: "-"}


def markdown_table(metrics: dict[str, Any], ratios: dict[str, float], verdicts: list[dict[str, Any]]) -> str:
    lines = ["| metric | value | target | ratio | met? |", "| --- | --- | --- | --- | --- |"]
    for name in BASELINES:
        if name in metrics:
            lines.append(f"| {NAMES[name]} | {_format(name, metrics)} | baseline | | |")
    targeted = {target.metric for target in TARGETS}
    for target, verdict in zip(TARGETS, verdicts, strict=False):
        if target.metric not in metrics:
            continue
        ratio = ratios.get(f"{target.metric}/{target.of}") if target.of else None
        ratio_text = f"{ratio:.2f} x {target.of}" if ratio is not None else ""
        value = _format(target.metric, metrics)
        if target.cpu:
            total = _figure(metrics, target.metric, CPU_TOTAL)
            value = "n/a" if total is None else f"{total:,.0f} µs CPU"
        met = _MET[verdict["met"]]
        lines.append(f"| {NAMES[target.metric]} | {value} | {_target_text(target)} | {ratio_text} | {met} |")
    for name in NAMES:
        if name in metrics and name not in targeted and name not in BASELINES:
            lines.append(f"| {NAMES[name]} | {_format(name, metrics)} | (reported) | | |")
    unclean = [v for v in verdicts if v["target"].startswith("verify") and not v["met"]]
    checked = sum(1 for v in verdicts if v["target"].startswith("verify"))
    lines.append(f"| verify after each ledger phase | {checked - len(unclean)} of {checked} clean | all clean | "
                 f"| {_MET[not unclean] if checked else '-'} |")  # fmt: skip
    return "\n".join(lines) + "\n\n" + cpu_table(metrics)


def cpu_table(metrics: dict[str, Any]) -> str:
    """µs of CPU per event (per request for M4, M6) by process kind; the client's apart."""
    kinds = ("api", "worker", "postgres", "redis", "total")
    header = "| CPU µs per unit | per | " + " | ".join(kinds) + " | client | cores busy (service/other) |"
    lines = [header, "| --- " * (len(kinds) + 4) + "|"]
    for name in CPU_METRICS:
        cpu = metrics.get(name, {}).get("cpu")
        if not cpu:
            continue
        figures = " | ".join("-" if cpu["us_per_unit"][k] is None else f"{cpu['us_per_unit'][k]:,.0f}" for k in kinds)
        busy = cpu.get("cores_busy", {})
        client = cpu.get("client_us_per_unit")
        lines.append(
            f"| {name} | {cpu['per']} | {figures} | {'-' if client is None else f'{client:,.0f}'} "
            f"| {busy.get('service', '-')}/{busy.get('other', '-')} |"
        )
    return "\n".join(lines)


def write_results(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def profile_digest(profile: dict[str, Any], functions: int = 4, statements: int = 3) -> str:
    """One line per phase's profile: each kind's top functions by own time, PostgreSQL's top statements."""
    parts = []
    for kind, summary in profile.items():
        if kind.startswith("postgres"):  # statements below; session counts stay in the JSON
            continue
        if "own_percent" in summary:
            top = ", ".join(f"{frame} {share}%" for frame, share in summary["own_percent"][:functions])
            parts.append(f"{kind}: {top}")
        else:
            parts.append(f"{kind}: {summary.get('error')}")
    pg = profile.get("postgres_statements", {})
    if "top" in pg:
        top = "; ".join(f"{s['query'][:60]!r} {s['share_percent']}%" for s in pg["top"][:statements])
        parts.append(f"postgres {pg['us_per_unit']} us/unit: {top}")
    return " | ".join(parts)
