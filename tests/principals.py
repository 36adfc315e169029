"""A cast of callers for access tests: two partners, an org of each, and every kind of principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from graphql_api.access.tokens import issue_token, token_secret
from ledger.directory.api_keys import create_api_key
from ledger.directory.members import put_member
from ledger.directory.organizations import create_organization
from ledger.directory.partners import create_partner
from ledger.directory.roles import Role

ROLES = tuple(Role)


@dataclass
class Cast:
    org_a: uuid.UUID
    org_b: uuid.UUID
    partner_p: uuid.UUID
    partner_q: uuid.UUID
    # principal name -> bearer credentials ("" is anonymous)
    credentials: dict[str, str] = field(default_factory=dict)


async def cast(pool: asyncpg.Pool, admin_key: str) -> Cast:
    """Org A belongs to partner P, org B to partner Q. Principals are named:

    admin, partner (P), other_partner (Q), <role>_key (A's keys), <role>_user (A's members),
    other_owner_key (B's owner key), other_owner_user (B's owner), anonymous.
    """
    partner_p = (await create_partner(pool, uuid.uuid4(), "Partner P")).id  # type: ignore[union-attr]
    partner_q = (await create_partner(pool, uuid.uuid4(), "Partner Q")).id  # type: ignore[union-attr]
    org_a = (await create_organization(pool, uuid.uuid4(), "Org A", partner_p)).id
    org_b = (await create_organization(pool, uuid.uuid4(), "Org B", partner_q)).id
    secret = await token_secret(pool, "")
    now = datetime.now(UTC)
    found = Cast(org_a, org_b, partner_p, partner_q)
    credentials = found.credentials
    credentials["admin"] = admin_key
    credentials["anonymous"] = ""
    credentials["partner"] = (await create_api_key(pool, name="p", scope="partner", partner_id=partner_p))[1]
    credentials["other_partner"] = (await create_api_key(pool, name="q", scope="partner", partner_id=partner_q))[1]
    for role in ROLES:
        _, key = await create_api_key(pool, name=role.value, scope="organization", organization_id=org_a, role=role)
        credentials[f"{role.value}_key"] = key
        user = f"user-{role.value}-{uuid.uuid4().hex[:6]}"
        await put_member(pool, org_a, user, role)
        credentials[f"{role.value}_user"] = issue_token(secret, user, now, timedelta(hours=1))
    _, key = await create_api_key(pool, name="b", scope="organization", organization_id=org_b, role=Role.OWNER)
    credentials["other_owner_key"] = key
    stranger = f"user-b-{uuid.uuid4().hex[:6]}"
    await put_member(pool, org_b, stranger, Role.OWNER)
    credentials["other_owner_user"] = issue_token(secret, stranger, now, timedelta(hours=1))
    return found
