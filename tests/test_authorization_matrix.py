"""Every role against every mutation, query and subscription, and every field of an organization: the
expected allow/deny below is the specification (seed 001's roles, plus the platform admin and
partners), written out here independently of graphql_api/access/policy.py and asserted against the
running service. A field missing from the table fails the test, so new fields must be classified."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import websockets

from tests.conftest import Service
from tests.graphql_calls import call, nested_call, organization_fields, root_fields
from tests.principals import Cast, cast

ROLES = ("owner", "billing", "creator", "viewer")
PRINCIPALS = (
    "admin", "partner", "other_partner",
    *(f"{role}_key" for role in ROLES), *(f"{role}_user" for role in ROLES),
    "other_owner_key", "other_owner_user", "anonymous",
)  # fmt: skip
DENIED = {"FORBIDDEN", "UNAUTHENTICATED"}
SILENT_S = 1.0


def members(*roles: str) -> frozenset[str]:
    return frozenset(name for role in roles for name in (f"{role}_key", f"{role}_user"))


PLATFORM = frozenset({"admin", "partner"})  # the admin, and org A's own partner
READ = PLATFORM | members(*ROLES)
USAGE = PLATFORM | members("owner", "creator")
OWNER = PLATFORM | members("owner")
BILLING = PLATFORM | members("owner", "billing")
ANYONE = frozenset(PRINCIPALS) - {"anonymous"}
ADMIN = frozenset({"admin"})
PLATFORMS = frozenset({"admin", "partner", "other_partner"})

QUERIES = {"organization": READ, "products": ANYONE, "catalog": ANYONE, "estimateUsage": READ, "viewer": ANYONE}
QUERIES |= {"previewPlanChange": BILLING, "previewSeatChange": BILLING}
# Invoices: an invoice by id answers NOT_FOUND (not FORBIDDEN) to a caller who may not read it.
QUERIES |= {"invoices": READ, "invoice": ANYONE}
QUERIES |= {"autoRecharge": READ}  # auto-recharge settings: anyone in the org reads them
QUERIES |= {"paymentMethods": READ, "payments": READ}  # an organization's cards and payments
QUERIES |= {"revenueReport": ADMIN}  # without an organization: the whole platform's revenue
MUTATIONS = {
    "createOrganization": PLATFORMS,
    "createTeam": OWNER,
    "grantCredits": PLATFORM,
    "recordUsage": USAGE,
    "recordUsageBatch": USAGE,
    "placeHold": USAGE,
    "captureHold": USAGE,
    "releaseHold": USAGE,
    "issueQuote": USAGE,
    "transferCredits": OWNER,
    "refundLot": PLATFORM,
    "creditBack": PLATFORM,
    "adjustCredits": PLATFORM,
    "resetLots": PLATFORM,
    "expireCredits": PLATFORM,
    "setSpendingPolicy": PLATFORM,
    "setRate": PLATFORM,
    "setKindPriorities": PLATFORM,
    "setTeamBudget": OWNER,
    "setMemberLimits": OWNER,
    "setAlert": OWNER,
    "removeAlert": OWNER,
    "reportStorage": USAGE,
    # The catalog is the platform's to edit (and anyone's to read).
    "loadCatalog": ADMIN,
    "addRateVersion": ADMIN,
    "createPartner": ADMIN,
    "createApiKey": ADMIN,  # with no organization: an admin key
    "revokeApiKey": ADMIN,  # with no organization: a platform key
    "createUserToken": PLATFORMS,
    "inviteMember": OWNER,
    "revokeInvitation": OWNER,
    "updateMember": OWNER,
    "removeMember": OWNER,
    "addMember": PLATFORM,
    "setOrganizationLimits": PLATFORM,
    # Only a user can join; any signed-in user may try a token (it names the org).
    "acceptInvitation": frozenset({*(f"{role}_user" for role in ROLES), "other_owner_user"}),
    # An organization's subscription: Owner and Billing, and the platform.
    "subscribe": BILLING,
    "setSeats": BILLING,
    "changePlan": BILLING,
    "cancelSubscription": BILLING,
    "resumeSubscription": BILLING,
    "payInvoice": BILLING,
    # Auto-recharge and refunds spend or return the organization's money: Owner and Billing.
    "setAutoRecharge": BILLING,
    # Cards and packs: Owner and Billing (no card data passes through us: Stripe.js makes the id).
    "attachPaymentMethod": BILLING,
    "setDefaultPaymentMethod": BILLING,
    "detachPaymentMethod": BILLING,
    "buyCreditPack": BILLING,
    "refund": BILLING,
}
# Calls of a field with optional arguments that change who may make them.
VARIANTS: dict[str, tuple[str, dict[str, Any], frozenset[str]]] = {
    "createApiKey for an org": ("createApiKey", {"organizationId": "A", "role": "VIEWER"}, OWNER),
    "revokeApiKey of an org": ("revokeApiKey", {"organizationId": "A"}, OWNER),
}
QUERY_VARIANTS: dict[str, tuple[str, dict[str, Any], frozenset[str]]] = {
    "revenueReport of an org": ("revenueReport", {"organizationId": "A"}, BILLING),
}
SUBSCRIPTIONS = {
    "creditMeter": READ,
    "teamCreditMeter": READ,
    "userCreditMeter": READ,
    "usageEvents": READ,
    "alertEvents": READ,
}
ORGANIZATION_FIELDS = {"apiKeys": OWNER, "invitations": OWNER}  # every other field of an organization: READ


async def test_every_root_field_is_classified() -> None:
    assert set(root_fields("query")) == set(QUERIES)
    assert set(root_fields("mutation")) == set(MUTATIONS)
    assert set(root_fields("subscription")) == set(SUBSCRIPTIONS)


async def test_every_role_on_every_query_and_mutation(service: Service, pool: asyncpg.Pool) -> None:
    people = await cast(pool, service.admin_key)
    cases: list[tuple[str, str, frozenset[str]]] = []
    for name, allowed in QUERIES.items():
        cases.append((name, _document(people, "query", name, {}), allowed))
    for name, allowed in MUTATIONS.items():
        cases.append((name, _document(people, "mutation", name, {}), allowed))
    for label, (name, overrides, allowed) in VARIANTS.items():
        cases.append((label, _document(people, "mutation", name, overrides), allowed))
    for label, (name, overrides, allowed) in QUERY_VARIANTS.items():
        cases.append((label, _document(people, "query", name, overrides), allowed))
    for name in organization_fields():
        document = nested_call(name, str(people.org_a), _ids(people))
        cases.append((f"Organization.{name}", document, ORGANIZATION_FIELDS.get(name, READ)))
    mismatches = await _run_matrix(service, people, cases)
    assert mismatches == [], "\n".join(mismatches)


async def test_every_role_on_every_subscription(service: Service, pool: asyncpg.Pool) -> None:
    people = await cast(pool, service.admin_key)
    gate = asyncio.Semaphore(8)

    async def one(name: str, principal: str, allowed: frozenset[str]) -> str | None:
        async with gate:
            outcome = await _subscribe(
                service, people.credentials[principal], _document(people, "subscription", name, {})
            )
        return None if (outcome == "allowed") == (principal in allowed) else f"{name} as {principal}: {outcome}"

    results = await asyncio.gather(
        *(one(name, principal, allowed) for name, allowed in SUBSCRIPTIONS.items() for principal in PRINCIPALS)
    )
    mismatches = [result for result in results if result is not None]
    assert mismatches == [], "\n".join(mismatches)


def _ids(people: Cast) -> Any:
    def ids(name: str) -> str:
        return str(people.org_a) if name == "organizationId" else str(uuid.uuid4())

    return ids


def _document(people: Cast, operation: str, name: str, overrides: dict[str, Any]) -> str:
    resolved = {k: str(people.org_a) if v == "A" else v for k, v in overrides.items()}
    if name == "organization":
        resolved["id"] = str(people.org_a)
    document = call(operation, name, _ids(people), resolved)
    # Enum values come out quoted from the generic builder when overridden: unquote them.
    return document.replace('"VIEWER"', "VIEWER")


async def _run_matrix(service: Service, people: Cast, cases: list[tuple[str, str, frozenset[str]]]) -> list[str]:
    gate = asyncio.Semaphore(8)

    async def one(label: str, document: str, allowed: frozenset[str], principal: str) -> str | None:
        async with gate:
            body = await service.graphql(document, credentials=people.credentials[principal])
        codes = {(error.get("extensions") or {}).get("code") for error in body.get("errors") or []}
        assert "INTERNAL" not in codes and None not in codes, (label, principal, body)
        denied = bool(codes & DENIED)
        if denied != (principal not in allowed):
            return f"{label} as {principal}: {'denied' if denied else 'allowed'} ({body})"
        if denied:
            assert body["data"] is None or all(value is None for value in body["data"].values()), body
        return None

    results = await asyncio.gather(
        *(one(label, document, allowed, principal) for label, document, allowed in cases for principal in PRINCIPALS)
    )
    return [result for result in results if result is not None]


async def _subscribe(service: Service, credentials: str, document: str) -> str:
    url = service.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        payload = {"authorization": f"Bearer {credentials}"} if credentials else {}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
        try:
            message = json.loads(await asyncio.wait_for(socket.recv(), SILENT_S))
        except TimeoutError:
            return "allowed"  # an event stream with nothing to send yet: a refusal comes at once
    if message["type"] == "next" and not message["payload"].get("errors"):
        return "allowed"
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    codes = {(error.get("extensions") or {}).get("code") for error in errors}
    assert codes <= DENIED | {"NOT_FOUND", "INVALID_INPUT"}, message
    return "denied" if codes & DENIED else "allowed"
