"""The bench's data: the example catalog, organizations inserted directly, grants sent through the
ledger's own streams, and usage commands with Zipf-skewed organizations."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from graphql_api.shell.catalog import example_catalog
from ledger.core.commands import Command, Envelope, GrantCredits, RecordUsage
from ledger.core.money import MICRO_PER_CREDIT, MicroCredits
from ledger.store.catalog_versions import save_catalog

# Every usage event is priced through the catalog rate (0.001 credits per token, rounded up per event).
USAGE_PRODUCT = "gpt-4o.input-tokens"
USAGE_TOKENS_MAX = 2_000
GRANT_CREDITS = 100_000_000  # per organization: no debit in any run is ever refused for lack of credits
ZIPF_EXPONENT = 1.1


@dataclass(frozen=True)
class Population:
    organizations: list[UUID]  # the Zipf-skewed population, most popular first
    hot: UUID  # the single organization of M2
    meter: UUID  # the organization M5 watches
    cumulative_weights: list[float]

    @property
    def everyone(self) -> list[UUID]:
        return [*self.organizations, self.hot, self.meter]

    def zipf_choices(self, rng: random.Random, count: int) -> list[UUID]:
        return rng.choices(self.organizations, cum_weights=self.cumulative_weights, k=count)


def make_population(count: int, seed: int = 7) -> Population:
    rng = random.Random(seed)
    ids = [UUID(int=rng.getrandbits(128), version=4) for _ in range(count + 2)]
    weights = [1 / (rank**ZIPF_EXPONENT) for rank in range(1, count + 1)]
    return Population(ids[:count], ids[count], ids[count + 1], list(itertools.accumulate(weights)))


async def load_catalog_and_organizations(pool: asyncpg.Pool, population: Population) -> None:
    async with pool.acquire() as connection:
        await save_catalog(connection, example_catalog())
        await connection.copy_records_to_table(
            "organizations",
            records=[(org, f"bench org {i}") for i, org in enumerate(population.everyone)],
            columns=["id", "name"],
        )


def grant_commands(organizations: Sequence[UUID]) -> list[Command]:
    now = datetime.now(UTC)
    amount = MicroCredits(GRANT_CREDITS * MICRO_PER_CREDIT)
    return [
        Command(Envelope(uuid.uuid4(), org, f"bench-grant-{org}", now, None), GrantCredits(amount=amount))
        for org in organizations
    ]


def usage_commands(organizations: Sequence[UUID], rng: random.Random, prefix: str) -> Iterator[Command]:
    """One RecordUsage per listed organization (repeats allowed), each with a unique idempotency key."""
    now = datetime.now(UTC)
    for i, org in enumerate(organizations):
        payload = RecordUsage(product=USAGE_PRODUCT, quantity=Decimal(rng.randint(1, USAGE_TOKENS_MAX)))
        yield Command(Envelope(uuid.uuid4(), org, f"{prefix}-{i}", now, None), payload)
