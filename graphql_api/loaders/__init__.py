"""Dataloaders, one per file: dedupe keys, one `= ANY($1)` query, results in key order."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import redis.asyncio as redis
from strawberry.dataloader import DataLoader

from graphql_api.known import KnownMap
from graphql_api.loaders.balances import balance_loader
from graphql_api.loaders.catalog import CatalogLoader
from graphql_api.loaders.invitations import invitations_loader
from graphql_api.loaders.limits import limits_loader
from graphql_api.loaders.members import member_role_loader
from graphql_api.loaders.organization_members import organization_members_loader
from graphql_api.loaders.organizations import organization_loader
from graphql_api.loaders.postings import postings_loader
from graphql_api.loaders.spend import spend_loader
from graphql_api.loaders.spending_rules import spending_rules_loader
from graphql_api.loaders.team_balances import team_balance_loader
from graphql_api.loaders.teams import teams_loader
from ledger.core.money import MicroCredits
from ledger.core.state import Balance, OrgState, SpendKey
from ledger.directory.invitations import Invitation
from ledger.directory.members import Limits, Member
from ledger.directory.organizations import Organization
from ledger.directory.roles import Role
from ledger.directory.teams import Team
from ledger.store.history import PostingView


@dataclass(frozen=True, slots=True)
class Loaders:
    organization: DataLoader[UUID, Organization | None]
    balance: DataLoader[UUID, Balance]
    member_role: DataLoader[tuple[UUID, str], Role | None]
    members: DataLoader[UUID, list[Member]]
    invitations: DataLoader[tuple[UUID, bool], list[Invitation]]
    limits: DataLoader[UUID, Limits]
    postings: DataLoader[tuple[UUID, UUID], list[PostingView]]
    teams: DataLoader[UUID, list[Team]]
    team_balance: DataLoader[tuple[UUID, UUID], Balance]
    spending_rules: DataLoader[UUID, OrgState]
    spend: DataLoader[tuple[UUID, SpendKey], MicroCredits]
    catalog: CatalogLoader

    @classmethod
    def create(cls, pool: asyncpg.Pool, client: redis.Redis, organizations: KnownMap[UUID, Organization]) -> Loaders:
        """This request's loaders; `organizations` is the process's cache of organization rows."""
        return cls(
            organization=organization_loader(pool, organizations),
            balance=balance_loader(pool, client),
            member_role=member_role_loader(pool),
            members=organization_members_loader(pool),
            invitations=invitations_loader(pool),
            limits=limits_loader(pool),
            postings=postings_loader(pool),
            teams=teams_loader(pool),
            team_balance=team_balance_loader(pool),
            spending_rules=spending_rules_loader(pool),
            spend=spend_loader(pool),
            catalog=CatalogLoader(pool),
        )
