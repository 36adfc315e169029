"""Dataloaders, one per file: dedupe keys, one `= ANY($1)` query, results in key order."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
from strawberry.dataloader import DataLoader

from graphql_api.access.invitations import Invitation
from graphql_api.access.members import Limits, Member
from graphql_api.access.policy import Role
from graphql_api.loaders.balances import balance_loader
from graphql_api.loaders.invitations import invitations_loader
from graphql_api.loaders.limits import limits_loader
from graphql_api.loaders.members import member_role_loader
from graphql_api.loaders.organization_members import organization_members_loader
from graphql_api.loaders.organizations import organization_loader
from ledger.core.state import Balance
from ledger.store.organizations import Organization


@dataclass(frozen=True, slots=True)
class Loaders:
    organization: DataLoader[UUID, Organization | None]
    balance: DataLoader[UUID, Balance]
    member_role: DataLoader[tuple[UUID, str], Role | None]
    members: DataLoader[UUID, list[Member]]
    invitations: DataLoader[tuple[UUID, bool], list[Invitation]]
    limits: DataLoader[UUID, Limits]

    @classmethod
    def create(cls, pool: asyncpg.Pool) -> Loaders:
        return cls(
            organization=organization_loader(pool),
            balance=balance_loader(pool),
            member_role=member_role_loader(pool),
            members=organization_members_loader(pool),
            invitations=invitations_loader(pool),
            limits=limits_loader(pool),
        )
