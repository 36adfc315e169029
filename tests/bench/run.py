"""The bench's entry point: options, the order of the phases, and the report.

Phases, each on the same durable embedded servers: B1, B2 (pgbench), B3 (XADD), M3 and M3g (API
ingress, no ledger worker running; what they queued is deleted after), grants to every organization,
M1 and M2 (the workers draining pre-filled streams), then with the workers running M4, M5 and M6.
M1, M2, M3, M3g, M4 and M6 also measure the CPU of every service process per event or request
(`tests/bench/cpu.py`); the ledger's `verify` runs after every phase and must find nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import redis.asyncio as redis

from ledger.runtime.servers import apply_migrations
from ledger.store.pool import create_pool
from ledger.store.verify import verify
from ledger.stream import keys
from tests.bench import api_load, baselines, ledger_load, report
from tests.bench.cpu import CpuMeter, between
from tests.bench.ledger_load import backlog, measure_drain, send_all, transaction_count, wait_applied
from tests.bench.population import Population, grant_commands, load_catalog_and_organizations, make_population
from tests.bench.profile import PhaseProfile, enable_statements_sql
from tests.bench.servers import BenchWorld, bench_world
from tests.bench.stats import summary_ms

ALL = ("B1", "B2", "B3", "M1", "M2", "M3", "M3g", "M4", "M5", "M6")
ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sizes:
    organizations: int
    events: int  # M1
    hot_events: int  # M2
    pgbench_s: int
    xadd_s: float
    batch_s: float  # M3 and M3g, each
    balance_s: float  # M4
    meter_samples: int  # M5
    applied_s: float  # M6
    meter_rate: float = 20.0
    applied_rate: float = 500.0
    applied_warmup_s: float = 1.0  # M6's unmeasured warm-up at the same rate
    drain_timeout_s: float = 150.0


FULL = Sizes(
    10_000, 200_000, 100_000, pgbench_s=10, xadd_s=5, batch_s=10, balance_s=10, meter_samples=300, applied_s=10
)
QUICK = Sizes(1_000, 10_000, 5_000, pgbench_s=2, xadd_s=1, batch_s=2, balance_s=2, meter_samples=30, applied_s=2)
busy_fraction_max = 0.15  # CPU busy before the bench starts: above that, another load is running
M4_RATE_WITHOUT_M1 = 1_000.0  # events/s fed during M4 when M1 was not measured in this run
PROFILE_AFTER_START_S = 1.5  # a process's imports and connections, before it does a phase's work


@dataclass(frozen=True)
class Options:
    sizes: Sizes
    only: tuple[str, ...]
    workers: int
    apis: int
    output: Path
    keep: bool
    profile: bool


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of well under a minute")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--workers", type=int, default=2, help="ledger worker processes (default 2)")
    parser.add_argument("--apis", type=int, default=2, help="API processes for M3 and M6 (default 2)")
    parser.add_argument("--events", type=int, help="events pre-filled for M1 (M2 takes half)")
    parser.add_argument("--output", type=Path, help="results JSON (default results/latest.json, quick.json)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the workers and API processes, and pg_stat_statements, during each M phase",
    )
    arguments = parser.parse_args(argv)
    canonical = {name.upper(): name for name in ALL}  # --only m3g,M1 as well as M3g,m1
    named = [name.strip() for name in arguments.only.split(",") if name.strip()]
    only = tuple(canonical.get(name.upper(), name) for name in named) or ALL
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown metric(s) {sorted(unknown)}; choose from {','.join(ALL)}")
    sizes = QUICK if arguments.quick else FULL
    if arguments.events:
        sizes = replace(sizes, events=arguments.events, hot_events=max(1, arguments.events // 2))
    default_output = RESULTS / ("quick.json" if arguments.quick else "latest.json")
    return Options(
        sizes=sizes,
        only=only,
        workers=arguments.workers,
        apis=arguments.apis,
        output=arguments.output or default_output,
        keep=arguments.keep,
        profile=arguments.profile,
    )


class Bench:
    def __init__(self, world: BenchWorld, options: Options) -> None:
        self.world = world
        self.options = options
        self.sizes = options.sizes
        self.metrics: dict[str, Any] = {}
        self.notes: dict[str, Any] = {}
        self.started = time.monotonic()
        self.population: Population = make_population(self.sizes.organizations)
        self.cpu_meter = CpuMeter(world.service_pids)

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def wanted(self, *names: str) -> bool:
        return any(name in self.options.only for name in names)

    async def measure(self, name: str, run: Callable[[], Awaitable[dict[str, Any]]], *, ledger: bool = True) -> None:
        """Run one phase (profiled with `--profile`); then (`ledger`) the ledger's verify, which must
        find nothing."""
        self.say(f"{name}: {report.NAMES[name]} ...")
        profile = PhaseProfile(self.pool, self.world.directory, name) if self.options.profile and ledger else None
        attaching = None
        if profile is not None:
            await profile.start(self.python_pids())
            attaching = asyncio.create_task(self.attach(profile))
        try:
            self.metrics[name] = await run()
        except Exception as error:
            self.metrics[name] = {"error": f"{type(error).__name__}: {error}"}
            self.say(f"{name} failed: {error!r}")
            if profile is not None:
                profile.abandon()
            await self.reset()
        else:
            if profile is not None and attaching is not None:
                attaching.cancel()
                entry = self.metrics[name]
                units = entry.get("events") or entry.get("requests") or entry.get("count") or 0
                entry["profile"] = await profile.stop(int(units))
            entry = self.metrics[name]
            total = entry.get("cpu", {}).get("us_per_unit", {}).get("total")
            cpu = f", {total} µs CPU per {entry['cpu']['per']}" if total is not None else ""
            self.say(f"{name}: {entry.get('value', entry.get('unavailable'))} {entry.get('unit', '')}{cpu}")
        finally:
            if attaching is not None:
                attaching.cancel()
        if ledger:
            self.metrics[name]["verify"] = await self.verified(name)

    def python_pids(self) -> dict[str, list[int]]:
        """The Python processes to profile: past their start-up (imports), which is no phase's work."""
        pids = self.world.service_pids()
        now = time.time()

        def started(pid: int) -> bool:
            with contextlib.suppress(psutil.Error):
                return now - psutil.Process(pid).create_time() >= PROFILE_AFTER_START_S
            return False

        return {kind: [pid for pid in pids[kind] if started(pid)] for kind in ("api", "worker")}

    async def attach(self, profile: PhaseProfile) -> None:
        """Profile the workers a phase starts (M1, M2) as soon as they exist."""
        while True:
            await asyncio.sleep(0.02)
            profile.attach(self.python_pids())

    async def verified(self, after: str) -> dict[str, Any]:
        started = time.monotonic()
        violations = await verify(self.pool)
        if violations:
            self.say(f"verify after {after}: {len(violations)} violation(s), first {violations[0]}")
        return {
            "clean": not violations,
            "violations": len(violations),
            "first": [f"{v.rule}: {v.organization_id}: {v.detail}" for v in violations[:10]],
            "seconds": round(time.monotonic() - started, 2),
        }

    async def reset(self) -> None:
        """After a failed phase: no worker, empty streams, so the next phase starts clean."""
        self.world.stop(self.world.workers())
        await self.client.delete(*(keys.stream(p) for p in range(self.world.settings.partition_count)))

    async def run(self) -> None:
        settings = self.world.settings
        if self.options.profile:
            await self.track_statements()
        await apply_migrations(settings.database_url)
        self.pool: asyncpg.Pool = await create_pool(settings.database_url, size_max=4)
        self.client: redis.Redis = redis.Redis.from_url(settings.redis_url)
        try:
            self.notes["servers"] = await self.server_settings()
            await load_catalog_and_organizations(self.pool, self.population)
            self.say(f"servers up, {self.sizes.organizations:,} organizations loaded")
            try:
                await self.phases()
            except Exception as error:  # e.g. the grants never applied: report what was measured
                self.notes["fatal"] = f"{type(error).__name__}: {error}"
                self.say(f"stopped early: {error!r}")
        finally:
            await self.client.aclose()
            await self.pool.close()

    async def track_statements(self) -> None:
        """Preload pg_stat_statements for a profiled run: a restart of the embedded PostgreSQL."""
        url, servers = self.world.settings.database_url, self.world.embedded
        assert servers is not None
        connection = await asyncpg.connect(url)
        try:
            for statement in enable_statements_sql():
                await connection.execute(statement)
        finally:
            await connection.close()
        servers.postgres.stop()
        servers.restart_postgres()
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await connection.close()

    async def server_settings(self) -> dict[str, Any]:
        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        postgres = {name: await self.pool.fetchval(f"SHOW {name}") for name in names}
        config = await self.client.config_get("append*")
        info = await self.client.info("server")
        redis_settings = {k: v for k, v in config.items() if k in ("appendonly", "appendfsync")}
        return {"postgres": postgres, "redis": {"version": info.get("redis_version"), **redis_settings}}

    async def phases(self) -> None:
        settings, sizes = self.world.settings, self.sizes
        if self.wanted("B1", "B2"):
            await baselines.prepare_balances(self.pool)
        if self.wanted("B1"):
            await self.measure("B1", self.pgbench(one_row=False), ledger=False)
        if self.wanted("B2"):
            await self.measure("B2", self.pgbench(one_row=True), ledger=False)
        if self.wanted("B3"):
            await self.measure("B3", lambda: baselines.pipelined_xadd(settings.redis_url, sizes.xadd_s), ledger=False)
        if self.wanted("M3"):
            await self.measure("M3", self.ingress(api_load.bulk_usage))
        if self.wanted("M3g"):
            await self.measure("M3g", self.ingress(api_load.record_usage_batches))
        if not self.wanted("M1", "M2", "M4", "M5", "M6"):
            return
        await self.grant()
        if self.wanted("M1"):
            await self.measure("M1", self.drain_zipf)
        if self.wanted("M2"):
            self.world.stop(self.world.workers())
            await self.measure("M2", self.drain_one_org)
        if not self.wanted("M4", "M5", "M6"):
            return
        if not self.world.workers():
            self.world.start_workers(self.options.workers)
        if not self.world.apis():
            self.world.start_apis(self.options.apis)
        if self.wanted("M4"):
            await self.measure("M4", self.balance_under_load)
        if self.wanted("M5"):
            await self.measure("M5", self.meter)
        if self.wanted("M6"):
            await self.measure("M6", self.applied)

    def pgbench(self, *, one_row: bool) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def run() -> dict[str, Any]:
            result = await baselines.pgbench(
                self.world.settings.database_url, self.world.directory, one_row=one_row, duration_s=self.sizes.pgbench_s
            )
            return result.as_dict()

        return run

    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{child.port}" for child in self.world.apis()]

    def ingress(self, load: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def run() -> dict[str, Any]:
            assert not self.world.workers()
            if not self.world.apis():
                self.world.start_apis(self.options.apis)
            try:
                return await load(
                    self.api_urls(),
                    self.population.zipf_choices,
                    self.sizes.batch_s,
                    connections_per_api=8,
                    meter=self.cpu_meter,
                )
            finally:
                # Accepted is all M3 measures: what it queued is never applied.
                await self.client.delete(*(keys.stream(p) for p in range(self.world.settings.partition_count)))

        return run

    async def grant(self) -> None:
        everyone = self.population.everyone
        before = await transaction_count(self.pool)
        await send_all(self.client, self.world.settings.partition_count, grant_commands(everyone))
        started = time.monotonic()
        self.world.start_workers(self.options.workers)
        applied = await wait_applied(self.world, self.pool, before + len(everyone), timeout_s=120)
        if applied - before != len(everyone):
            raise RuntimeError(f"only {applied - before} of {len(everyone)} grants applied")
        seconds = round(time.monotonic() - started, 2)
        check = await self.verified("grants")
        self.notes["grants"] = {"organizations": len(everyone), "seconds": seconds, "verify": check}
        self.say(f"granted credits to {len(everyone):,} organizations in {seconds:.1f}s")
        if self.wanted("M1", "M2"):
            self.world.stop(self.world.workers())

    async def drain(self, organizations: list[Any], prefix: str) -> dict[str, Any]:
        result = await measure_drain(
            self.world,
            self.client,
            self.pool,
            organizations,
            self.options.workers,
            prefix,
            self.sizes.drain_timeout_s,
            meter=self.cpu_meter,
        )
        return {**result.as_dict(), "method": ledger_load.DRAIN_METHOD}

    async def drain_zipf(self) -> dict[str, Any]:
        organizations = self.population.zipf_choices(random.Random(1), self.sizes.events)
        return {**await self.drain(organizations, "m1"), "distribution": "Zipf s=1.1"}

    async def drain_one_org(self) -> dict[str, Any]:
        return await self.drain([self.population.hot] * self.sizes.hot_events, "m2")

    async def balance_under_load(self) -> dict[str, Any]:
        m1 = self.metrics.get("M1", {}).get("value")
        rate = m1 / 2 if m1 else M4_RATE_WITHOUT_M1
        partition_count = self.world.settings.partition_count
        before = await transaction_count(self.pool)
        feeder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.feed", self.world.settings.redis_url, str(partition_count),
            str(self.sizes.organizations), str(rate), str(self.sizes.balance_s + 2),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.sleep(0.5)  # the feeder's start, and the feed settling, before measuring
            self.cpu_meter.client_pids = [feeder.pid]
            feed_only = self.cpu_meter.sample()
            await asyncio.sleep(1.0)  # the feed alone: its CPU per second, to take out of the queries' figures
            cpu_before = self.cpu_meter.sample()
            tally = await api_load.balance_latencies(
                self.api_urls()[0], self.population.zipf_choices, self.sizes.balance_s
            )
            queries = tally.ok + sum(tally.errors.values())
            cpu = between(cpu_before, self.cpu_meter.sample(), queries, "request")
            cpu["net_of_feed_us_per_unit"] = net_of_background(between(feed_only, cpu_before, 1, "second"), cpu)
            backlog_at_end = await backlog(self.client, partition_count)
            fed = json.loads((await feeder.communicate())[0])
        finally:
            self.cpu_meter.client_pids = []
            if feeder.returncode is None:
                feeder.kill()
                await feeder.wait()
        applied = await wait_applied(self.world, self.pool, before + fed["sent"], timeout_s=120)
        summary = summary_ms(tally.latencies_s)
        return {
            **summary,
            "value": summary.get("p99_ms"),
            "unit": "ms (p99)",
            "errors": tally.errors,
            "feed_rate": round(rate),
            "fed": fed["sent"],
            "feed_late_ticks": fed["late_ticks"],
            "backlog_when_queries_ended": backlog_at_end,
            "fed_all_applied": applied - before == fed["sent"],
            "cpu": {
                **cpu,
                "note": "per balance query; worker, postgres and redis include the background "
                "feed's debits (about feed_rate x wall_s events), the client the feeder process",
            },
            "method": "open-loop feed of RecordUsage into the streams at half the M1 rate (1000/s when M1 did "
            "not run) from a separate process, with the workers running; meanwhile the balance query over "
            "HTTP, one at a time from one client, on Zipf-chosen orgs",
        }

    async def meter(self) -> dict[str, Any]:
        return await api_load.queued_to_visible(
            self.api_urls()[0], self.population.meter, self.sizes.meter_samples, self.sizes.meter_rate
        )

    async def applied(self) -> dict[str, Any]:
        return await api_load.applied_usage_open_loop(
            self.api_urls(),
            self.population.zipf_choices,
            self.sizes.applied_rate,
            self.sizes.applied_s,
            connections_per_api=64,
            meter=self.cpu_meter,
            warmup_s=self.sizes.applied_warmup_s,
        )


def net_of_background(background: dict[str, Any], measured: dict[str, Any]) -> dict[str, float | None]:
    """µs per unit of `measured` less what `background` (a window of the background load alone) spent
    per second over the same wall time, by kind."""
    wall, units = measured["wall_s"], measured["units"]
    if not units:
        return {}
    per_second = {kind: spent / background["wall_s"] for kind, spent in background["cpu_s"].items()}
    net = {
        kind: round(max(0.0, spent - per_second[kind] * wall) * 1e6 / units, 1)
        for kind, spent in measured["cpu_s"].items()
        if kind != "total"
    }
    return {**net, "total": round(sum(net.values()), 1)}


def _log_problems(world: BenchWorld) -> list[str]:
    problems = []
    for path in sorted(world.log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Traceback")):
                problems.append(f"{path.stem}: {line.strip()[:300]}")
    return problems


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    # SIGTERM (and SIGINT, even where a shell ignored it) end the bench the way Ctrl-C does:
    # children and servers are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    machine = {**report.machine_info(), "cpu_busy_before_start": report.cpu_busy_fraction()}
    if (machine["cpu_busy_before_start"] or 0) > busy_fraction_max:
        print(f"warning: {machine['cpu_busy_before_start']:.0%} of the CPU was busy before the bench started: "
              "another load is running, and the figures will be low and noisy", file=sys.stderr)  # fmt: skip
    try:
        import uvloop

        run: Callable[[Awaitable[None]], None] = uvloop.run  # type: ignore[assignment]
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        run = asyncio.run  # type: ignore[assignment]
    with bench_world(keep=options.keep) as world:
        bench = Bench(world, options)
        try:
            run(bench.run())
        except KeyboardInterrupt:
            print("interrupted: stopping everything", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            world.stop_all()
        problems = _log_problems(world)
    grants = bench.notes.get("grants", {}).get("verify")
    ratios, verdicts = report.evaluate(bench.metrics, {"grants": grants} if grants else None)
    document = {
        "started_at": started_at.isoformat(),
        "duration_s": round(time.monotonic() - started, 1),
        "quick": options.sizes is QUICK,
        "machine": machine,
        "configuration": {
            "workers": options.workers,
            "api_processes": options.apis,
            "partitions": world.settings.partition_count,
            "sizes": options.sizes.__dict__,
            **bench.notes,
        },
        "metrics": bench.metrics,
        "ratios": ratios,
        "targets": verdicts,
        "log_problems": {"count": len(problems), "first": problems[:20]},
    }
    report.write_results(options.output, document)
    table = report.markdown_table(bench.metrics, ratios, verdicts)
    print(table)
    print(f"\n{len(problems)} warning/error line(s) in the service logs; results in {options.output}", file=sys.stderr)
    for name, entry in bench.metrics.items():
        with contextlib.suppress(Exception):
            if "profile" in entry:
                print(f"{name} profile: {report.profile_digest(entry['profile'])}", file=sys.stderr)
