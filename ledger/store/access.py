"""The access billing set on an organization and the storage it reported, read back for the API
from the rows the journal wrote (`ledger_settings` kind 'access', `ledger.store.settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import asyncpg

from ledger.core.state import Access
from ledger.store.settings import no_rules, read_rule

_ACCESS = "SELECT kind, key, value FROM ledger_settings WHERE org_id = $1 AND kind = 'access'"


@dataclass(frozen=True, slots=True)
class OrganizationAccess:
    access: Access  # the default (everything, no quota) for an organization billing never touched
    storage_used_gb: Decimal


async def access_of(connection: asyncpg.Connection | asyncpg.Pool, org_id: UUID) -> OrganizationAccess:
    rules = no_rules()
    for row in await connection.fetch(_ACCESS, org_id):
        read_rule(rules, row["kind"], row["key"], row["value"])
    return OrganizationAccess(rules["access"], rules["storage_used_gb"])
