"""Load through the real API over HTTP and WebSocket (M3 to M6): the bulk route `POST /v1/usage`
(M3) and GraphQL (M3g to M6).

The HTTP client is aiohttp, not httpx: on this 2-core machine httpx alone adds ~100 ms of p99 at
500 requests/s against a trivial ASGI app (aiohttp: ~5 ms), which would swamp what M6 measures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.bench.cpu import CpuMeter, between
from tests.bench.population import USAGE_PRODUCT, USAGE_TOKENS_MAX
from tests.bench.servers import BENCH_ADMIN_KEY
from tests.bench.stats import summary_ms

Choose = Callable[[random.Random, int], list[UUID]]

BATCH_EVENTS = 100  # M3g: events per recordUsageBatch
BULK_EVENTS = 100  # M3: events per POST /v1/usage
BULK_PATH = "/v1/usage"
request_timeout_s = 30
_BATCH = "mutation($input: RecordUsageBatchInput!) { recordUsageBatch(input: $input) { status } }"
_BALANCE = "query($id: ID!) { organization(id: $id) { balance { total held available } } }"
_USAGE = """mutation($input: RecordUsageInput!) {
  recordUsage(input: $input) { status creditsCharged balanceAfter rejection { code } }
}"""
_METER = "subscription($id: ID!) { creditMeter(organizationId: $id) { total available at } }"
# M5 spends one credit per sample: sms.message is priced at 1 credit per message.
_METER_PRODUCT = "sms.message"
_HEADERS = {"content-type": "application/json", "authorization": f"Bearer {BENCH_ADMIN_KEY}"}


def _body(query: str, **variables: Any) -> bytes:
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":")).encode()


@contextlib.asynccontextmanager
async def http_clients(base_urls: Sequence[str], connections: int) -> AsyncIterator[list[aiohttp.ClientSession]]:
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    clients = [
        aiohttp.ClientSession(base_url=url, connector=aiohttp.TCPConnector(limit=connections), timeout=timeout)
        for url in base_urls
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()


async def post(client: aiohttp.ClientSession, body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """POST a GraphQL request: (data, None), or (None, what went wrong)."""
    try:
        async with client.post("/graphql", data=body, headers=_HEADERS) as response:
            if response.status != 200:
                return None, f"HTTP {response.status}"
            answer: dict[str, Any] = await response.json()
    except (aiohttp.ClientError, TimeoutError) as error:
        return None, type(error).__name__
    errors = answer.get("errors")
    if errors:
        return None, str(errors[0].get("extensions", {}).get("code") or errors[0].get("message"))
    return answer["data"], None


@dataclass
class Tally:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class RouteMissing(Exception):
    """The API answers the bulk route as an unknown path: it is not built (yet)."""


async def post_bulk(client: aiohttp.ClientSession, body: bytes) -> tuple[list[dict[str, Any]] | None, str | None]:
    """POST a bulk ingest request: (per-event results, None), or (None, what went wrong)."""
    try:
        async with client.post(BULK_PATH, data=body, headers=_HEADERS) as response:
            text = await response.read()
            if response.status == 200:
                results: list[dict[str, Any]] = json.loads(text)["results"]
                return results, None
            try:
                code = json.loads(text)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                if response.status in (404, 405):
                    raise RouteMissing(f"POST {BULK_PATH} answered {response.status} {text[:80]!r}") from None
                code = "not JSON"
            return None, f"HTTP {response.status} {code}"
    except (aiohttp.ClientError, TimeoutError) as error:
        return None, type(error).__name__


def bulk_body(name: str, n: int, organizations: Sequence[UUID], quantities: Sequence[int]) -> bytes:
    """The contract's JSON body, formatted directly (the client's CPU is not what M3 measures)."""
    events = ",".join(
        f'{{"organizationId":"{org}","product":"{USAGE_PRODUCT}","quantity":"{quantity}",'
        f'"idempotencyKey":"m3-{name}-{n}-{i}"}}'
        for i, (org, quantity) in enumerate(zip(organizations, quantities, strict=True))
    )
    return f'{{"events":[{events}],"ack":"QUEUED"}}'.encode()


async def bulk_usage(
    base_urls: Sequence[str],
    choose: Choose,
    duration_s: float,
    connections_per_api: int,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """M3: `POST /v1/usage` with 100 events and ack QUEUED, closed loop on every connection."""
    tally = Tally()
    method = (
        f"{len(base_urls)} API process(es) x {connections_per_api} connections, closed loop, POST {BULK_PATH} "
        f"with {BULK_EVENTS} events per request (JSON body), ack QUEUED, no ledger worker running"
    )
    async with http_clients(base_urls, connections_per_api) as clients:
        try:
            # An empty list is refused by the route (400, nothing queued), and answered 404 without it.
            await post_bulk(clients[0], b'{"events":[],"ack":"QUEUED"}')
        except RouteMissing as missing:
            return {"value": None, "unit": "events/s", "unavailable": f"route not available: {missing}",
                    "method": method}  # fmt: skip
        deadline = time.monotonic() + duration_s

        async def connection(client: aiohttp.ClientSession, name: str) -> None:
            rng = random.Random(name)
            for n in itertools.count():
                if time.monotonic() >= deadline:
                    return
                organizations = choose(rng, BULK_EVENTS)
                quantities = [rng.randint(1, USAGE_TOKENS_MAX) for _ in organizations]
                sent = time.perf_counter()
                results, problem = await post_bulk(client, bulk_body(name, n, organizations, quantities))
                tally.latencies_s.append(time.perf_counter() - sent)
                if results is None:
                    tally.error(problem or "?")
                    continue
                tally.ok += sum(1 for outcome in results if outcome["status"] == "QUEUED")

        return await closed_loop(clients, connections_per_api, connection, tally, meter, BULK_EVENTS, method)


async def record_usage_batches(
    base_urls: Sequence[str],
    choose: Choose,
    duration_s: float,
    connections_per_api: int,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """M3g: `recordUsageBatch` with 100 events and `ack: QUEUED`, closed loop on every connection."""
    tally = Tally()
    deadline = time.monotonic() + duration_s

    async def connection(client: aiohttp.ClientSession, name: str) -> None:
        rng = random.Random(name)
        for n in itertools.count():
            if time.monotonic() >= deadline:
                return
            events = [
                {
                    "organizationId": str(org),
                    "product": USAGE_PRODUCT,
                    "quantity": str(rng.randint(1, USAGE_TOKENS_MAX)),
                    "idempotencyKey": f"m3g-{name}-{n}-{i}",
                }
                for i, org in enumerate(choose(rng, BATCH_EVENTS))
            ]
            sent = time.perf_counter()
            data, problem = await post(client, _body(_BATCH, input={"events": events, "ack": "QUEUED"}))
            tally.latencies_s.append(time.perf_counter() - sent)
            if data is None:
                tally.error(problem or "?")
                continue
            tally.ok += sum(1 for outcome in data["recordUsageBatch"] if outcome["status"] == "QUEUED")

    method = (
        f"{len(base_urls)} API process(es) x {connections_per_api} connections, closed loop, "
        f"recordUsageBatch with {BATCH_EVENTS} events per request, ack QUEUED, no ledger worker running"
    )
    async with http_clients(base_urls, connections_per_api) as clients:
        return await closed_loop(clients, connections_per_api, connection, tally, meter, BATCH_EVENTS, method)


async def closed_loop(
    clients: Sequence[aiohttp.ClientSession],
    connections_per_api: int,
    connection: Callable[[aiohttp.ClientSession, str], Awaitable[None]],
    tally: Tally,
    meter: CpuMeter | None,
    events_per_request: int,
    method: str,
) -> dict[str, Any]:
    """Run `connection` on every connection of every API at once, and report the events it counted:
    the rate, the requests' latency and (with a meter) the CPU per event."""
    before = meter.sample() if meter is not None else None
    started = time.monotonic()
    await asyncio.gather(
        *(connection(client, f"{a}.{c}") for a, client in enumerate(clients) for c in range(connections_per_api))
    )
    elapsed = time.monotonic() - started
    cpu = between(before, meter.sample(), tally.ok, "event") if meter is not None and before else None
    return {
        "value": round(tally.ok / elapsed),
        "unit": "events/s",
        "events": tally.ok,
        "requests": len(tally.latencies_s),
        "events_per_request": events_per_request,
        "errors": tally.errors,
        "request_latency": summary_ms(tally.latencies_s),
        **({"cpu": cpu} if cpu else {}),
        "method": method,
    }


async def balance_latencies(base_url: str, choose: Choose, duration_s: float) -> Tally:
    """M4: the balance query, one at a time from one client, for `duration_s`."""
    tally = Tally()
    rng = random.Random(4)
    async with http_clients([base_url], 1) as (client,):
        for org in choose(rng, 20):  # warm the connection and the server's code paths
            await post(client, _body(_BALANCE, id=str(org)))
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            (org,) = choose(rng, 1)
            sent = time.perf_counter()
            data, problem = await post(client, _body(_BALANCE, id=str(org)))
            elapsed = time.perf_counter() - sent
            if data is None:
                tally.error(problem or "?")
            else:
                tally.ok += 1
                tally.latencies_s.append(elapsed)
    return tally


class Meter:
    """A creditMeter subscription over graphql-transport-ws; readings are stamped on arrival."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self.readings: asyncio.Queue[tuple[float, Decimal]] = asyncio.Queue()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, base_url: str, organization: UUID) -> AsyncIterator[Meter]:
        url = base_url.replace("http://", "ws://") + "/graphql"
        async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as socket:
            credentials = {"authorization": f"Bearer {BENCH_ADMIN_KEY}"}
            await socket.send(json.dumps({"type": "connection_init", "payload": credentials}))
            ack = json.loads(await socket.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            subscribe = {"query": _METER, "variables": {"id": str(organization)}}
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
            meter = cls(socket)
            reader = asyncio.create_task(meter._read())
            try:
                yield meter
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def _read(self) -> None:
        async for raw in self._socket:
            arrived = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "ping":
                await self._socket.send(json.dumps({"type": "pong"}))
            elif message.get("type") == "next":
                total = Decimal(message["payload"]["data"]["creditMeter"]["total"])
                self.readings.put_nowait((arrived, total))
            elif message.get("type") in {"error", "complete"}:
                raise RuntimeError(f"subscription ended: {message}")

    async def until(self, total: Decimal, timeout_s: float) -> float:
        """The arrival time of the first reading at or below `total`."""
        async with asyncio.timeout(timeout_s):
            while True:
                arrived, reading = await self.readings.get()
                if reading <= total:
                    return arrived


async def queued_to_visible(base_url: str, organization: UUID, samples: int, rate: float) -> dict[str, Any]:
    """M5: `recordUsage` with `ack: QUEUED`, then the wait for the debit on the meter subscription."""
    from_response: list[float] = []
    from_send: list[float] = []
    tally = Tally()
    stale_balance = 0
    async with http_clients([base_url], 2) as (client,), Meter.open(base_url, organization) as meter:
        _, total = await asyncio.wait_for(meter.readings.get(), 10)  # the balance as the subscription starts
        started = time.monotonic()
        for n in range(samples):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            event = {
                "organizationId": str(organization),
                "product": _METER_PRODUCT,
                "quantity": "1",
                "idempotencyKey": f"m5-{n}",
                "ack": "QUEUED",
            }
            sent = time.perf_counter()
            data, problem = await post(client, _body(_USAGE, input=event))
            answered = time.perf_counter()
            if data is None:
                tally.error(problem or "?")
                continue
            total -= 1
            try:
                visible = await meter.until(total, timeout_s=5)
            except TimeoutError:
                tally.error("no meter reading within 5 s")
                continue
            tally.ok += 1
            from_response.append(max(0.0, visible - answered))
            from_send.append(visible - sent)
            # Off the clock: once pushed, the committed balance must show the debit as well.
            balance, _ = await post(client, _body(_BALANCE, id=str(organization)))
            if balance is None or Decimal(balance["organization"]["balance"]["total"]) > total:
                stale_balance += 1
    summary = summary_ms(from_response)
    return {
        **summary,
        "value": summary.get("p99_ms"),
        "unit": "ms (p99)",
        "from_send": summary_ms(from_send),
        "errors": tally.errors,
        "balance_query_behind_meter": stale_balance,
        "method": f"{samples} sequential samples at {rate:g}/s on one org; from the QUEUED response's arrival "
        "(clamped at 0 when the meter reading came first) to the meter reading with the new total; "
        "the balance query is checked after each reading",
    }


async def applied_usage_open_loop(
    base_urls: Sequence[str],
    choose: Choose,
    rate: float,
    duration_s: float,
    connections_per_api: int,
    meter: CpuMeter | None = None,
    warmup_s: float = 0.0,
) -> dict[str, Any]:
    """M6: single `recordUsage` with `ack: APPLIED`, sent open loop at fixed intervals, after a
    warm-up at the same rate (unmeasured, and finished before the measured loop starts) that grows
    the API's and the workers' connection pools to what the rate needs."""
    rng = random.Random(6)

    async def open_loop(clients: list[aiohttp.ClientSession], seconds: float, prefix: str) -> tuple[Tally, list[float]]:
        tally = Tally()
        from_send: list[float] = []
        count = int(rate * seconds)
        organizations = choose(rng, count)

        async def one(client: aiohttp.ClientSession, n: int, scheduled: float) -> None:
            event = {
                "organizationId": str(organizations[n]),
                "product": USAGE_PRODUCT,
                "quantity": str(rng.randint(1, USAGE_TOKENS_MAX)),
                "idempotencyKey": f"{prefix}-{n}",
                "ack": "APPLIED",
            }
            sent = time.perf_counter()
            data, problem = await post(client, _body(_USAGE, input=event))
            done = time.perf_counter()
            if data is not None and data["recordUsage"]["status"] != "ACCEPTED":
                problem = f"status {data['recordUsage']['status']}"
            if problem is not None:
                tally.error(problem)
                return
            tally.ok += 1
            tally.latencies_s.append(done - scheduled)
            from_send.append(done - sent)

        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for n in range(count):
            scheduled = started + n / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            tasks.append(asyncio.create_task(one(clients[n % len(clients)], n, scheduled)))
        await asyncio.gather(*tasks)
        return tally, from_send

    async with http_clients(base_urls, connections_per_api) as clients:
        warm, _ = await open_loop(clients, warmup_s, "m6w") if warmup_s > 0 else (Tally(), [])
        before = meter.sample() if meter is not None else None
        started, client_cpu = time.perf_counter(), time.process_time()
        tally, from_send = await open_loop(clients, duration_s, "m6")
        elapsed, client_cpu = time.perf_counter() - started, time.process_time() - client_cpu
        count = tally.ok + sum(tally.errors.values())
        cpu = between(before, meter.sample(), count, "request") if meter is not None and before else None
    summary = summary_ms(tally.latencies_s)
    return {
        **summary,
        "value": summary.get("p99_ms"),
        "unit": "ms (p99)",
        "requests": count,
        "completed_per_s": round(tally.ok / elapsed),  # below the rate: the service cannot keep up
        "client_cpu_percent": round(100 * client_cpu / elapsed),
        "errors": tally.errors,
        "from_send": summary_ms(from_send),
        "warmup": {"seconds": warmup_s, **summary_ms(warm.latencies_s), "errors": warm.errors},
        **({"cpu": cpu} if cpu else {}),
        "method": f"open loop, {rate:g} requests/s for {duration_s:g} s over {len(base_urls)} API process(es), "
        f"after an unmeasured warm-up of {warmup_s:g} s at the same rate (finished before the measured loop "
        "starts: the connection pools grown, each connection's statements and types prepared); latency from "
        "each request's scheduled send time to its response (from_send: from the actual send)",
    }
