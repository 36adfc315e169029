"""The read side of the API: balances by kind and by team, expiring credits, the ledger history as a
Relay connection, usage reports, budgets and caps with what is left, the consumption policy, and
the number of SQL queries each costs (constant, whatever the number of items)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

import graphql_api.app
import ledger.store.pool
from ledger.core.commands import Period
from ledger.core.state import period_start
from tests.conftest import Service
from tests.ledger_api import Ledger

TRANSACTION = """
id commandType status idempotencyKey createdAt receivedAt balanceAfter creditsCharged
rejection { code message } postings { leg account lotId holdId amount }
"""
PAGE = f"""transactions(first: $first, after: $after, kinds: $kinds, since: $since, until: $until) {{
    edges {{ cursor node {{ {TRANSACTION} }} }} pageInfo {{ hasNextPage endCursor }} }}"""
PAGE_VARIABLES = "$first: Int!, $after: String, $kinds: [String!], $since: DateTime, $until: DateTime"


async def _page(org: Ledger, first: int = 50, after: str | None = None, **filters: Any) -> dict[str, Any]:
    found: dict[str, Any] = (await org.read(PAGE, PAGE_VARIABLES, first=first, after=after, **filters))["transactions"]
    return found


async def _walk(org: Ledger, first: int, **filters: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = await _page(org, first, after, **filters)
        assert len(page["edges"]) <= first
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]


async def _journal(pool: asyncpg.Pool, org: Ledger) -> list[str]:
    """The organization's transaction ids, newest first, straight from PostgreSQL."""
    rows = await pool.fetch(
        "SELECT id FROM ledger_transactions WHERE org_id = $1 ORDER BY committed_at DESC, received_at DESC, id DESC",
        org.org,
    )
    return [str(row["id"]) for row in rows]


# --- balances -----------------------------------------------------------------------------------


async def test_balance_by_kind_expiring_soon_and_team_balances(service: Service) -> None:
    org = await Ledger.create(service, "Kinds")
    now = datetime.now(UTC)
    base = (await org.accepted("grantCredits", amount="100", kind="BASE", expiresAt=now + timedelta(days=3)))["lotId"]
    await org.accepted("grantCredits", amount="50", kind="BONUS", expiresAt=now + timedelta(days=30))
    await org.accepted("grantCredits", amount="200", kind="PURCHASED")
    # Not usable yet, but its credits run out within the week all the same.
    promo = (
        await org.accepted(
            "grantCredits", amount="10", kind="PROMOTIONAL",
            effectiveAt=now + timedelta(days=1), expiresAt=now + timedelta(days=2),
        )
    )["lotId"]  # fmt: skip
    await org.accepted("recordUsage", product="sms.message", quantity="30")  # from the bonus lot first
    growth, empty = await org.team("Growth"), await org.team("Empty")
    await org.accepted("grantCredits", amount="40", kind="SEAT", teamId=growth)
    await org.accepted("placeHold", amount="15", expiresAt=now + timedelta(hours=1), teamId=growth)
    await org.accepted("placeHold", amount="5", expiresAt=now + timedelta(hours=1))  # the pool's

    found = await org.read(
        "balance { total held available } balanceByKind { kind total lots } "
        "teams { name balance { total held available } }"
    )
    assert found["balance"] == {"total": "360", "held": "20", "available": "340"}
    assert found["balanceByKind"] == [
        {"kind": "BASE", "total": "100", "lots": 1},
        {"kind": "BONUS", "total": "20", "lots": 1},
        {"kind": "PURCHASED", "total": "200", "lots": 1},
        {"kind": "SEAT", "total": "40", "lots": 1},
    ]
    assert sum(Decimal(kind["total"]) for kind in found["balanceByKind"]) == Decimal(found["balance"]["total"])
    assert found["teams"] == [
        {"name": "Growth", "balance": {"total": "40", "held": "15", "available": "25"}},
        {"name": "Empty", "balance": {"total": "0", "held": "0", "available": "0"}},
    ]
    assert empty

    week = await org.read("expiringSoon { id kind remaining }")
    assert week["expiringSoon"] == [
        {"id": promo, "kind": "PROMOTIONAL", "remaining": "10"},
        {"id": base, "kind": "BASE", "remaining": "100"},
    ]
    assert (await org.read("expiringSoon(withinHours: 24) { id }"))["expiringSoon"] == []
    assert len((await org.read("expiringSoon(withinHours: 8784) { id }"))["expiringSoon"]) == 3
    for hours in (0, 8785):
        assert await org.read_error(f"expiringSoon(withinHours: {hours}) {{ id }}") == "INVALID_INPUT"


# --- history ------------------------------------------------------------------------------------


async def test_history_pages_walk_every_transaction_once_in_order(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "History")
    outcomes = [await org.accepted("grantCredits", amount="20", idempotencyKey="grant")]
    for i in range(11):
        outcomes.append(await org.accepted("recordUsage", product="sms.message", quantity="1", idempotencyKey=f"u{i}"))
    outcomes.append(await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="10"))
    hold = await org.accepted("placeHold", amount="2", expiresAt=datetime.now(UTC) + timedelta(hours=1))
    outcomes.append(hold)
    outcomes.append(await org.accepted("captureHold", holdId=hold["holdId"], amount="2", final=True))

    journal = await _journal(pool, org)
    assert len(journal) == len(outcomes) == 15
    for first in (1, 4, 15, 200):
        nodes = await _walk(org, first)
        assert [node["id"] for node in nodes] == journal, first
    nodes = {node["id"]: node for node in await _walk(org, 50)}

    # Every field, exactly: as the mutation answered, with its double-entry legs.
    by_id = {outcome["transactionId"]: outcome for outcome in outcomes}
    for id_, node in nodes.items():
        outcome = by_id[id_]
        assert (node["status"], node["balanceAfter"], node["creditsCharged"], node["rejection"]) == (
            outcome["status"], outcome["balanceAfter"], outcome["creditsCharged"], outcome["rejection"],
        )  # fmt: skip
        assert datetime.fromisoformat(node["receivedAt"]) <= datetime.fromisoformat(node["createdAt"])
        assert sum(Decimal(posting["amount"]) for posting in node["postings"]) == 0
        assert [posting["leg"] for posting in node["postings"]] == list(range(len(node["postings"])))
    grant = nodes[outcomes[0]["transactionId"]]
    assert (grant["commandType"], grant["idempotencyKey"], grant["balanceAfter"]) == ("grant_credits", "grant", "20")
    assert grant["postings"] == [
        {"leg": 0, "account": "issuance:base", "lotId": None, "holdId": None, "amount": "-20"},
        {"leg": 1, "account": "lot", "lotId": outcomes[0]["lotId"], "holdId": None, "amount": "20"},
    ]
    usage = nodes[outcomes[1]["transactionId"]]
    assert (usage["commandType"], usage["creditsCharged"], usage["balanceAfter"]) == ("record_usage", "1", "19")
    assert usage["postings"] == [
        {"leg": 0, "account": "lot", "lotId": outcomes[0]["lotId"], "holdId": None, "amount": "-1"},
        {"leg": 1, "account": "usage:sms.message", "lotId": None, "holdId": None, "amount": "1"},
    ]
    rejected = nodes[outcomes[12]["transactionId"]]
    assert rejected["status"] == "REJECTED" and rejected["postings"] == []
    assert rejected["rejection"]["code"] == "INSUFFICIENT_CREDITS"
    placed = nodes[hold["transactionId"]]
    assert [(p["account"], p["holdId"], p["amount"]) for p in placed["postings"]] == [
        ("hold", hold["holdId"], "2"),
        ("hold:offset", None, "-2"),
    ]

    # Filters: command types, and a committed-at window (since inclusive, until exclusive).
    only_usage = await _walk(org, 5, kinds=["record_usage"])
    assert [node["id"] for node in only_usage] == [
        id_ for id_ in journal if nodes[id_]["commandType"] == "record_usage"
    ]
    assert len(only_usage) == 12
    holds = await _walk(org, 5, kinds=["place_hold", "capture_hold"])
    assert {node["commandType"] for node in holds} == {"place_hold", "capture_hold"} and len(holds) == 2
    middle = datetime.fromisoformat(nodes[journal[7]]["createdAt"])
    newer = await _walk(org, 3, since=middle)
    older = await _walk(org, 3, until=middle)
    assert [node["id"] for node in newer + older] == journal
    assert all(datetime.fromisoformat(node["createdAt"]) >= middle for node in newer)
    assert all(datetime.fromisoformat(node["createdAt"]) < middle for node in older)
    assert await _walk(org, 3, since=middle, until=middle) == []


async def test_history_cursors_are_bound_to_their_organization(service: Service, pool: asyncpg.Pool) -> None:
    a, b = await Ledger.create(service, "A"), await Ledger.create(service, "B")
    for org in (a, b):
        await org.accepted("grantCredits", amount="10")
    for _ in range(3):  # interleaved, so A's cursor falls in the middle of B's history
        for org in (a, b):
            await org.accepted("recordUsage", product="sms.message", quantity="1")
    a_page = await _page(a, 2)
    cursor = a_page["pageInfo"]["endCursor"]
    assert a_page["pageInfo"]["hasNextPage"]

    # A's cursor on B is refused outright...
    assert await b.read_error(PAGE, PAGE_VARIABLES, first=2, after=cursor) == "INVALID_INPUT"
    # ...and one forged to name B still reads only B: it can position in B's history, never reach A's.
    org, *key = json.loads(base64.urlsafe_b64decode(cursor))
    assert org == a.org
    forged = base64.urlsafe_b64encode(json.dumps([b.org, *key]).encode()).decode()
    found = [edge["node"]["id"] for edge in (await _page(b, 50, forged))["edges"]]
    b_journal = await _journal(pool, b)
    assert found and found == b_journal[len(b_journal) - len(found) :]  # B's older ones, in order
    assert not set(found) & set(await _journal(pool, a))
    for garbage in ("not a cursor", base64.urlsafe_b64encode(b"[1, 2]").decode(), ""):
        assert await b.read_error(PAGE, PAGE_VARIABLES, first=2, after=garbage) == "INVALID_INPUT"


async def test_history_bounds(service: Service) -> None:
    org = await Ledger.create(service, "Bounds")
    for first in (0, -1, 201):
        assert await org.read_error(PAGE, PAGE_VARIABLES, first=first) == "INVALID_INPUT"
    assert len((await _page(org, 200))["edges"]) == 0
    for kinds in (["no_such_command"], []):
        assert await org.read_error(PAGE, PAGE_VARIABLES, first=5, kinds=kinds) == "INVALID_INPUT"
    naive = datetime.now(UTC).replace(tzinfo=None)
    assert await org.read_error(PAGE, PAGE_VARIABLES, first=5, since=naive) == "INVALID_INPUT"


# --- usage --------------------------------------------------------------------------------------

USAGE = """usage(from: $from, to: $to, bucket: $bucket, groupBy: $groupBy) {
    start product model teamId userId quantity credits events }"""
USAGE_VARIABLES = (
    "$from: DateTime!, $to: DateTime!, $bucket: UsageBucketSize! = DAY, $groupBy: [UsageGroup!]! = [PRODUCT]"
)


async def _usage(org: Ledger, **arguments: Any) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    arguments.setdefault("from", now - timedelta(hours=1))
    arguments.setdefault("to", now + timedelta(hours=1))
    found: list[dict[str, Any]] = (await org.read(USAGE, USAGE_VARIABLES, **arguments))["usage"]
    return found


def _totals(buckets: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], tuple[str, str, int]]:
    """Buckets summed over time by their group keys (the test may straddle a bucket boundary)."""
    sums: dict[tuple[Any, ...], tuple[Decimal, Decimal, int]] = {}
    for bucket in buckets:
        group = tuple(bucket[key] for key in keys)
        quantity, credits, events = sums.get(group, (Decimal(0), Decimal(0), 0))
        sums[group] = (quantity + Decimal(bucket["quantity"]), credits + Decimal(bucket["credits"]),
                       events + bucket["events"])  # fmt: skip
    return {group: (f"{q.normalize():f}", f"{c.normalize():f}", e) for group, (q, c, e) in sums.items()}


async def test_usage_buckets_sum_to_the_journal(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "Usage")
    team = await org.team("Research")
    await org.accepted("grantCredits", amount="1000")
    await org.accepted("recordUsage", product="sms.message", quantity="30", teamId=team, userId="ana")
    gpt = {"product": "gpt-4o.input-tokens"}
    model = "model"
    await org.accepted(
        "recordUsage", **gpt, quantity="1500", userId="bob", dimensions=[{"name": model, "value": "gpt-4o"}]
    )
    await org.accepted("recordUsage", **gpt, quantity="333", dimensions=[{"name": model, "value": "gpt-4o-mini"}])
    reversed_ = await org.accepted("recordUsage", product="sms.message", quantity="7", teamId=team, userId="ana")
    await org.accepted("creditBack", transactionId=reversed_["transactionId"])  # left out whole
    hold = await org.accepted(
        "placeHold", amount="20", product="sms.message", teamId=team, userId="ana",
        expiresAt=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    await org.accepted("captureHold", holdId=hold["holdId"], quantity="5")
    await org.accepted("captureHold", holdId=hold["holdId"], amount="2")  # by amount: no quantity
    await org.accepted("captureHold", holdId=hold["holdId"], amount="0", final=True)  # releases only: no event
    await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="5000")

    by_product = await _usage(org)
    for bucket in by_product:
        start = datetime.fromisoformat(bucket["start"])
        assert start == start.replace(hour=0, minute=0, second=0, microsecond=0) and start.utcoffset() == timedelta(0)
        assert (bucket["model"], bucket["teamId"], bucket["userId"]) == (None, None, None)
    assert _totals(by_product, "product") == {
        ("gpt-4o.input-tokens",): ("1833", "1.833", 2),
        ("sms.message",): ("35", "37", 3),
    }
    assert _totals(await _usage(org, groupBy=["MODEL"]), "product", "model") == {
        (None, None): ("35", "37", 3),
        (None, "gpt-4o"): ("1500", "1.5", 1),
        (None, "gpt-4o-mini"): ("333", "0.333", 1),
    }
    assert _totals(await _usage(org, groupBy=["TEAM", "USER"]), "teamId", "userId") == {
        (team, "ana"): ("35", "37", 3),
        (None, "bob"): ("1500", "1.5", 1),
        (None, None): ("333", "0.333", 1),
    }
    everything = await _usage(org, groupBy=[], bucket="HOUR")
    assert _totals(everything, "product") == {(None,): ("1868", "38.833", 5)}
    # The journal's own total: what the usage accounts received, credit-backs taken off.
    posted = await pool.fetchval(
        "SELECT sum(amount) FROM ledger_postings WHERE org_id = $1 AND account LIKE 'usage:%'", org.org
    )
    assert Decimal(posted) / 1_000_000 == Decimal("38.833")
    month = await _usage(org, groupBy=["PRODUCT", "MODEL", "TEAM", "USER"], bucket="MONTH")
    assert sum(Decimal(bucket["credits"]) for bucket in month) == Decimal("38.833")
    # A range that holds none of it.
    days_ago = datetime.now(UTC) - timedelta(days=2)
    assert await _usage(org, **{"from": days_ago, "to": days_ago + timedelta(days=1)}) == []


async def test_usage_bounds(service: Service) -> None:
    org = await Ledger.create(service, "Usage bounds")
    now = datetime.now(UTC)
    for arguments in (
        {"from": now, "to": now},
        {"from": now, "to": now - timedelta(hours=1)},
        {"from": now - timedelta(days=367), "to": now},
        {"from": now - timedelta(days=42), "to": now, "bucket": "HOUR"},  # over 1,000 buckets
        {"from": now.replace(tzinfo=None), "to": now + timedelta(hours=1)},
    ):
        assert await org.read_error(USAGE, USAGE_VARIABLES, **arguments) == "INVALID_INPUT", arguments
    assert await _usage(org, **{"from": now - timedelta(days=366), "to": now}) == []
    assert await _usage(org, **{"from": now - timedelta(days=41), "to": now, "bucket": "HOUR"}) == []


async def test_history_and_usage_read_the_history_index(pool: asyncpg.Pool) -> None:
    """Whatever the table's size, a page and a report's range are index scans on (org_id, committed_at,
    received_at, id): never the organization's whole journal, nor the table."""
    from ledger.store.history import _PAGE
    from ledger.store.usage import _USAGE

    org, now = uuid.uuid4(), datetime.now(UTC)
    cursor = (now, now, uuid.uuid4())
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL enable_seqscan = off")
        page = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {_PAGE}", org, None, None, *cursor, None, 51)
        usage = await connection.fetchval(
            f"EXPLAIN (FORMAT JSON) {_USAGE}", org, now, now, "day", True, False, False, False, "hold", 10
        )
    for plan in (page, usage):
        assert "ledger_transactions_history" in json.dumps(plan), plan
    # The cursor bounds the scan itself (an index condition), not a filter over what it read.
    assert "committed_at, received_at, id) <" in json.dumps(page).replace("ledger_transactions.", ""), page


# --- budgets, caps and the consumption policy ---------------------------------------------------


async def test_team_budgets_and_member_caps_show_what_is_left(service: Service) -> None:
    org = await Ledger.create(service, "Budgets")
    research, ops = await org.team("Research"), await org.team("Ops")
    await org.accepted("grantCredits", amount="500")
    await org.accepted("setTeamBudget", teamId=research, amount="100")
    await org.accepted("setTeamBudget", teamId=ops, amount="10", period="WEEK")
    await org.accepted("setMemberLimits", userId="ana", cap="50", period="DAY")
    await org.accepted("setMemberLimits", userId="bob", sharedCredits=False)
    await org.accepted("recordUsage", product="sms.message", quantity="30", teamId=research, userId="ana")
    back = await org.accepted("recordUsage", product="sms.message", quantity="7", teamId=research, userId="ana")
    await org.accepted("creditBack", transactionId=back["transactionId"])
    await org.accepted("recordUsage", product="sms.message", quantity="4", teamId=ops)
    await org.rejected("recordUsage", "CAP_EXCEEDED", product="sms.message", quantity="21", userId="ana")
    now = datetime.now(UTC)

    found = await org.read(
        "teamBudgets { teamId team { name } period periodStart amount spent remaining } "
        "memberCaps { userId period periodStart cap spent remaining sharedCredits }"
    )
    budgets = {budget.pop("teamId"): budget for budget in found["teamBudgets"]}
    assert budgets == {
        research: {
            "team": {"name": "Research"}, "period": "MONTH",
            "periodStart": period_start(now, Period.MONTH).isoformat(),
            "amount": "100", "spent": "30", "remaining": "70",
        },
        ops: {
            "team": {"name": "Ops"}, "period": "WEEK", "periodStart": period_start(now, Period.WEEK).isoformat(),
            "amount": "10", "spent": "4", "remaining": "6",
        },
    }  # fmt: skip
    assert found["memberCaps"] == [
        {"userId": "ana", "period": "DAY", "periodStart": period_start(now, Period.DAY).isoformat(),
         "cap": "50", "spent": "30", "remaining": "20", "sharedCredits": True},
        {"userId": "bob", "period": "MONTH", "periodStart": period_start(now, Period.MONTH).isoformat(),
         "cap": None, "spent": None, "remaining": None, "sharedCredits": False},
    ]  # fmt: skip

    # What is left is what the ledger lets through: ana may spend 20 more today, not 21.
    await org.accepted("recordUsage", product="sms.message", quantity="20", userId="ana")
    caps = (await org.read("memberCaps { userId spent remaining }"))["memberCaps"]
    assert caps[0] == {"userId": "ana", "spent": "50", "remaining": "0"}
    await org.rejected("recordUsage", "CAP_EXCEEDED", product="sms.message", quantity="0.000001", userId="ana")


async def test_consumption_policy(service: Service) -> None:
    org = await Ledger.create(service, "Policy")
    fresh = await org.read(
        "consumptionPolicy { default { product atZero creditLimit } products { product } creditDrawn }"
    )
    assert fresh["consumptionPolicy"] == {
        "default": {"product": None, "atZero": "BLOCK", "creditLimit": "0"}, "products": [], "creditDrawn": "0",
    }  # fmt: skip
    await org.accepted("setKindPriorities", priorities=[{"kind": "BONUS", "priority": 150}])
    await org.accepted("setSpendingPolicy", atZero="CREDIT_LIMIT", creditLimit="50")
    await org.accepted("setSpendingPolicy", atZero="OVERAGE", product="gpt-4o.input-tokens")
    await org.accepted("recordUsage", product="sms.message", quantity="20")  # drawn on the credit line

    found = await org.read(
        "balance { total } consumptionPolicy { kindPriorities { kind priority defaultPriority overridden } "
        "default { product atZero creditLimit } products { product atZero creditLimit } creditDrawn }"
    )
    assert found["balance"] == {"total": "-20"}
    policy = found["consumptionPolicy"]
    assert [(k["kind"], k["priority"], k["defaultPriority"], k["overridden"]) for k in policy["kindPriorities"]] == [
        ("PROMOTIONAL", 100, 100, False),
        ("BONUS", 150, 100, True),
        ("BASE", 200, 200, False),
        ("SEAT", 200, 200, False),
        ("ROLLOVER", 300, 300, False),
        ("PURCHASED", 400, 400, False),
        ("ADJUSTMENT", 500, 500, False),
    ]
    assert policy["default"] == {"product": None, "atZero": "CREDIT_LIMIT", "creditLimit": "50"}
    assert policy["products"] == [{"product": "gpt-4o.input-tokens", "atZero": "OVERAGE", "creditLimit": "0"}]
    assert policy["creditDrawn"] == "20"


# --- no N+1: queries counted ----------------------------------------------------------------------


@dataclass
class QueryLog:
    """Every statement the API's pool sends, except the API-key checks authentication makes (cached
    for a few seconds, so their count depends on timing, not on the query) and asyncpg's resets."""

    statements: list[str] = field(default_factory=list)

    def count(self) -> int:
        return sum(1 for statement in self.statements if "api_keys" not in statement and not _reset(statement))


def _reset(statement: str) -> bool:
    """asyncpg's own reset of a connection going back to the pool: not a query of ours."""
    return statement.startswith("SELECT pg_advisory_unlock_all()")


@pytest.fixture
def query_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[QueryLog]:
    """Logs every query of the pool the app opens (not the test's or the worker's)."""
    log = QueryLog()
    create_pool = graphql_api.app.create_pool
    init = ledger.store.pool._init_connection

    async def logging_init(connection: asyncpg.Connection) -> None:
        await init(connection)
        connection.add_query_logger(lambda query: log.statements.append(query.query))

    async def logging_pool(database_url: str, **kwargs: Any) -> asyncpg.Pool:
        # The pool keeps the init it was made with: patched only while this one is made.
        with monkeypatch.context() as patch:
            patch.setattr(ledger.store.pool, "_init_connection", logging_init)
            return await create_pool(database_url, **kwargs)

    monkeypatch.setattr(graphql_api.app, "create_pool", logging_pool)
    yield log


async def _counted(service: Service, log: QueryLog, document: str, **variables: Any) -> int:
    log.statements.clear()
    body = await service.graphql(document, **variables)
    assert "errors" not in body, body["errors"]
    return log.count()


@pytest.fixture
async def counted_service(query_log: QueryLog, service: Service) -> AsyncIterator[tuple[Service, QueryLog]]:
    yield service, query_log


async def test_reads_cost_a_constant_number_of_queries(counted_service: tuple[Service, QueryLog]) -> None:
    service, log = counted_service
    small, large = await Ledger.create(service, "Small"), await Ledger.create(service, "Large")
    for org, teams, events in ((small, 2, 3), (large, 20, 60)):
        await org.accepted("grantCredits", amount="1000")
        for i in range(teams):
            team = await org.team(f"Team {i}")
            await org.accepted("setTeamBudget", teamId=team, amount="100")
            await org.accepted("setMemberLimits", userId=f"user-{i}", cap="10")
        batch = [
            {"organizationId": org.org, "product": "sms.message", "quantity": "1", "idempotencyKey": f"e{i}"}
            for i in range(events)
        ]
        body = await service.graphql(
            "mutation($e: [UsageEventInput!]!) { recordUsageBatch(input: {events: $e, ack: APPLIED}) { status } }",
            e=batch,
        )
        assert {outcome["status"] for outcome in body["data"]["recordUsageBatch"]} == {"ACCEPTED"}

    history = f"""query($id: ID!) {{ organization(id: $id) {{
        transactions(first: 50) {{ edges {{ node {{ {TRANSACTION} }} }} }} }} }}"""
    teams = "query($id: ID!) { organization(id: $id) { teams { id name balance { total held available } } } }"
    budgets = """query($id: ID!) { organization(id: $id) {
        teamBudgets { team { name } amount spent remaining } memberCaps { userId cap spent remaining }
        consumptionPolicy { creditDrawn } } }"""
    documents = {"history": history, "teams": teams, "budgets": budgets}
    for document in documents.values():
        # Warm: authentication, and asyncpg's first-use type introspection on the connection.
        await _counted(service, log, document, id=small.org)
    counts = {
        name: [await _counted(service, log, document, id=org.org) for org in (small, large)]
        for name, document in documents.items()
    }
    body = await service.graphql(history, id=large.org)
    assert len(body["data"]["organization"]["transactions"]["edges"]) == 50
    # One query per level (the organization's row was read once for the process, by the mutations):
    # the page and its postings; the teams and their balances; the rules, the spend counters and
    # the budgets' teams.
    assert counts == {"history": [2, 2], "teams": [2, 2], "budgets": [3, 3]}, log.statements
