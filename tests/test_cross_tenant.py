"""Tenant isolation: with org A's credentials (its owner's key, its owner's user token, and its
partner's key), every field that takes an id (queries, mutations and subscriptions) is called with
org B's ids and with made-up ids.
Nothing of B is ever returned, and B's rows are the same afterwards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.conftest import Service
from tests.graphql_calls import call, nested_call, organization_fields, root_fields
from tests.ledger_api import Ledger
from tests.live import Live
from tests.principals import Cast, cast

ATTACKERS = ("owner_key", "owner_user", "partner")
# A refusal comes at once; an event stream allowed to run sends nothing until an event.
SILENT_S = 1.0
# Platform-wide fields: no organization in them, so "another tenant's org" does not apply.
PLATFORM_FIELDS = {
    "products", "catalog", "viewer", "createOrganization", "createPartner", "createUserToken", "createApiKey",
}  # fmt: skip


async def test_org_a_cannot_reach_org_b(service: Service, pool: asyncpg.Pool) -> None:
    people = await cast(pool, service.admin_key)
    b = await _furnish(service, pool, people)
    await Ledger(service, str(people.org_a)).accepted("grantCredits", amount="100")
    before = await _snapshot(pool, people.org_b)

    b_ids = b["ids"]
    made_up: dict[str, str] = {}

    def b_things(org: str) -> Any:
        def ids(name: str) -> str:
            return org if name == "organizationId" else b_ids.get(name, b_ids["id"])

        return ids

    def invented(org: str) -> Any:
        def ids(name: str) -> str:
            return org if name == "organizationId" else made_up.setdefault(name, str(uuid.uuid4()))

        return ids

    sweeps = {
        "B's organization and things": b_things(str(people.org_b)),
        "A's organization with B's things": b_things(str(people.org_a)),
        "a made-up organization": invented(str(uuid.uuid4())),
        "A's organization with made-up things": invented(str(people.org_a)),
    }
    problems: list[str] = []
    gate = asyncio.Semaphore(8)

    def judge(label: str, document: str, text: str, errors: list[dict[str, Any]], must_be_denied: bool) -> None:
        """No unexpected error, none of B's values (unless the caller sent them), and refused for B."""
        codes = {(error.get("extensions") or {}).get("code") for error in errors}
        if "INTERNAL" in codes or None in codes:
            problems.append(f"{label}: {text[:400]}")
        for secret in b["secrets"]:
            if secret in text and secret not in document:
                problems.append(f"{label}: B's {secret!r} in {text[:400]}")
        if must_be_denied and not codes & {"FORBIDDEN", "NOT_FOUND"}:
            problems.append(f"{label}: not refused: {text[:400]}")

    async def attempt(label: str, principal: str, document: str, must_be_denied: bool) -> None:
        async with gate:
            body = await service.graphql(document, credentials=people.credentials[principal])
        errors = body.get("errors") or []
        judge(f"{label} as {principal}", document, str(body), errors, must_be_denied)

    async def attempt_live(label: str, principal: str, document: str, must_be_denied: bool) -> None:
        """A subscription's first answer: refused for B, and never any of B's values."""
        async with gate, Live.open(service, people.credentials[principal]) as live:
            await live.subscribe(document)
            try:
                message = await live.message(timeout_s=SILENT_S)
            except TimeoutError:
                message = {"type": "silent"}  # an allowed event stream with nothing to send yet
        payload = message.get("payload")
        errors = payload if message["type"] == "error" else (payload or {}).get("errors") or []
        judge(f"{label} as {principal}", document, str(message), errors, must_be_denied)

    attempts = []
    for sweep, ids in sweeps.items():
        # The organization named in this sweep is not A: every org-scoped field must refuse.
        foreign = not sweep.startswith("A's")
        for principal in ATTACKERS:
            for operation in ("query", "mutation"):
                for name in root_fields(operation):
                    overrides = {"id": ids("organizationId")} if name == "organization" else {}
                    if name == "createTeam":
                        # The id a client chooses for its new team: ids are scoped by org, so A
                        # may pick the same as one of B's without touching B (checked below).
                        overrides = {"id": str(uuid.uuid4())}
                    document = call(operation, name, ids, overrides, every_id=True, depth=2)
                    denied = foreign and name not in PLATFORM_FIELDS
                    attempts.append(attempt(f"{sweep}: {name}", principal, document, denied))
            for name in organization_fields():
                document = nested_call(name, ids("organizationId"), ids, every_id=True, depth=2)
                attempts.append(attempt(f"{sweep}: Organization.{name}", principal, document, foreign))
    for sweep, ids in sweeps.items():
        foreign = not sweep.startswith("A's")
        for principal in ATTACKERS:
            for name in root_fields("subscription"):
                document = call("subscription", name, ids, {}, every_id=True, depth=2)
                attempts.append(attempt_live(f"{sweep}: {name}", principal, document, foreign))
    await asyncio.gather(*attempts)
    assert problems == [], "\n".join(problems)
    assert await _snapshot(pool, people.org_b) == before


async def _furnish(service: Service, pool: asyncpg.Pool, people: Cast) -> dict[str, Any]:
    """Give org B one of everything an id can name; return those ids and B's recognizable values."""
    org_b = Ledger(service, str(people.org_b))
    now = datetime.now(UTC)
    lot = (await org_b.accepted("grantCredits", amount="100", refundable=True))["lotId"]
    team = await org_b.team("B's secret team")
    await org_b.accepted("transferCredits", amount="10", toTeamId=team)
    hold = (await org_b.accepted("placeHold", amount="5", expiresAt=now + timedelta(hours=1)))["holdId"]
    usage = (await org_b.accepted("recordUsage", product="sms.message", quantity="1"))["transactionId"]
    quote = (
        await org_b.accepted("issueQuote", product="sms.message", quantity="2", expiresAt=now + timedelta(hours=1))
    )["quoteId"]
    user = await pool.fetchval("SELECT user_id FROM members WHERE org_id = $1", people.org_b)
    await org_b.accepted("setMemberLimits", userId=user, cap="50")
    alert = (await org_b.accepted("setAlert", kind="LOW_BALANCE", threshold="1000", name="B's secret alert"))[
        "details"
    ]["alert_id"]
    key = await pool.fetchval("SELECT id FROM api_keys WHERE org_id = $1", people.org_b)
    ids = {
        "id": str(people.org_b),
        "teamId": team, "fromTeamId": team, "toTeamId": team,
        "lotId": lot, "holdId": hold, "transactionId": usage, "quoteId": quote,
        "userId": user, "partnerId": str(people.partner_q), "apiKeyId": str(key), "alertId": alert,
    }  # fmt: skip
    # A user id is the integrator's, not B's: the same person may be in both orgs, and A may set a
    # cap for any user id it names.
    secrets = {
        str(people.org_b), team, lot, hold, usage, quote, str(key), alert,
        "Org B", "B's secret team", "B's secret alert",
    }  # fmt: skip
    return {"ids": ids, "secrets": secrets}


async def _snapshot(pool: asyncpg.Pool, org: uuid.UUID) -> dict[str, list[Any]]:
    queries = {
        "organization": "SELECT name, partner_id, credit_drawn FROM organizations WHERE id = $1",
        "transactions": "SELECT id, status FROM ledger_transactions WHERE org_id = $1 ORDER BY id",
        "lots": "SELECT id, remaining, team_id FROM credit_lots WHERE org_id = $1 ORDER BY id",
        "holds": "SELECT id, status, captured FROM credit_holds WHERE org_id = $1 ORDER BY id",
        "teams": "SELECT id, name FROM teams WHERE org_id = $1 ORDER BY id",
        "members": "SELECT user_id, role FROM members WHERE org_id = $1 ORDER BY user_id",
        "keys": "SELECT id, revoked_at FROM api_keys WHERE org_id = $1 ORDER BY id",
        "settings": "SELECT * FROM ledger_settings WHERE org_id = $1 ORDER BY 2",
        "alert events": "SELECT id FROM alert_events WHERE org_id = $1 ORDER BY id",
    }
    return {name: [tuple(row) for row in await pool.fetch(sql, org)] for name, sql in queries.items()}
