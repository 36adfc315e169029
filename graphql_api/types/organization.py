"""The organization, the root most reads start from: each of its fields resolves through the type
module of its domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import strawberry

from graphql_api.access.authorize import Authorize, from_source
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.enums import BucketSize, GroupKey
from graphql_api.errors import invalid
from graphql_api.types.access import ApiKey
from graphql_api.types.alerts import Alert, AlertEventPage, alert_events_of, alerts_of
from graphql_api.types.credits import Balance, CreditHold, CreditLot, KindBalance
from graphql_api.types.history import TransactionConnection, transactions_of
from graphql_api.types.members import Invitation, Member, OrganizationLimits
from graphql_api.types.plan_access import PlanAccess, plan_access_of
from graphql_api.types.subscriptions import PlanSubscription, subscription_of
from graphql_api.types.teams import Team
from graphql_api.types.usage import (
    ConsumptionPolicy,
    MemberCap,
    TeamBudget,
    UsageBucket,
    consumption_policy_of,
    member_caps_of,
    team_budgets_of,
    usage_buckets,
)
from ledger.core import bounds
from ledger.directory.api_keys import api_keys_of
from ledger.directory.organizations import Organization as DomainOrganization
from ledger.directory.teams import teams_by_orgs
from ledger.store.lots import holds_of, lots_of

# Never mutated: the default of Organization.usage's groupBy.
DEFAULT_USAGE_GROUPS = [GroupKey.PRODUCT]

# The expiringSoon window in whole hours.
EXPIRY_WINDOW_HOURS_MAX = int(bounds.EXPIRY_WINDOW_MAX.total_seconds()) // 3600


@strawberry.type(description="A customer account: the owner of credits and the unit of the ledger.")
class Organization:
    id: strawberry.ID = strawberry.field(description="The organization's id (a UUID).")
    name: str = strawberry.field(description="Display name.")
    created_at: datetime = strawberry.field(description="When it was created.")

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="The committed balance, computed from its credit lots and open holds.",
    )
    async def balance(self, info: Info) -> Balance:
        return Balance.from_domain(await info.context.loaders.balance.load(UUID(self.id)))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its credit lots, usable ones in consumption order; spent and ended ones on request.",
    )
    async def lots(self, info: Info, include_spent: bool = False) -> list[CreditLot]:
        found = await lots_of(info.context.resources.pool, UUID(self.id), include_spent)
        return [CreditLot.from_domain(lot) for lot in found]

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its holds: open ones, or all with includeClosed.",
    )
    async def holds(self, info: Info, include_closed: bool = False) -> list[CreditHold]:
        found = await holds_of(info.context.resources.pool, UUID(self.id), include_closed)
        return [CreditHold.from_domain(hold) for hold in found]

    @strawberry.field(extensions=[Authorize(Permission.READ, from_source)], description="Its teams.")
    async def teams(self, info: Info) -> list[Team]:
        found = await teams_by_orgs(info.context.resources.pool, [UUID(self.id)])
        return [Team.from_domain(team) for team in found[UUID(self.id)]]

    @strawberry.field(
        extensions=[Authorize(Permission.MANAGE_KEYS, from_source)], description="Its API keys (never their secrets)."
    )
    async def api_keys(self, info: Info) -> list[ApiKey]:
        found = await api_keys_of(info.context.resources.pool, UUID(self.id))
        return [ApiKey.from_domain(key) for key in found]

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)], description="Its members, in the order they joined."
    )
    async def members(self, info: Info) -> list[Member]:
        found = await info.context.loaders.members.load(UUID(self.id))
        return [Member.from_domain(member) for member in found]

    @strawberry.field(
        extensions=[Authorize(Permission.MANAGE_MEMBERS, from_source)],
        description="Its pending invitations, or all with includeClosed (never their tokens).",
    )
    async def invitations(self, info: Info, include_closed: bool = False) -> list[Invitation]:
        found = await info.context.loaders.invitations.load((UUID(self.id), include_closed))
        now = datetime.now(UTC)
        return [Invitation.from_domain(invitation, now) for invitation in found]

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)], description="Its member and kit limits and their use."
    )
    async def limits(self, info: Info) -> OrganizationLimits:
        return OrganizationLimits.from_domain(await info.context.loaders.limits.load(UUID(self.id)))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its balance's credits per lot kind, for the kinds with credits usable now.",
    )
    async def balance_by_kind(self, info: Info) -> list[KindBalance]:
        found = await lots_of(info.context.resources.pool, UUID(self.id), include_spent=False)
        return KindBalance.from_lots(found, datetime.now(UTC))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its lots with credits left that expire within the window, soonest first.",
    )
    async def expiring_soon(
        self,
        info: Info,
        within_hours: Annotated[
            int, strawberry.argument(description=f"The window from now, 1 to {EXPIRY_WINDOW_HOURS_MAX} hours.")
        ] = 168,
    ) -> list[CreditLot]:
        if not 1 <= within_hours <= EXPIRY_WINDOW_HOURS_MAX:
            raise invalid(f"withinHours must be 1 to {EXPIRY_WINDOW_HOURS_MAX}")
        horizon = datetime.now(UTC) + timedelta(hours=within_hours)
        found = await lots_of(info.context.resources.pool, UUID(self.id), include_spent=False)
        expiring = [lot for lot in found if lot.expires_at is not None and lot.expires_at <= horizon]
        return [CreditLot.from_domain(lot) for lot in sorted(expiring, key=lambda lot: (lot.expires_at, str(lot.id)))]

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description=(
            "Its ledger history, newest first, a page at a time: every command the ledger decided, with its "
            "postings. Cursors are bound to this organization."
        ),
    )
    async def transactions(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 200.")] = 50,
        after: Annotated[str | None, strawberry.argument(description="The endCursor of the page before.")] = None,
        kinds: Annotated[
            list[str] | None, strawberry.argument(description='Only these command types, e.g. ["record_usage"].')
        ] = None,
        since: Annotated[
            datetime | None, strawberry.argument(description="Only those committed at or after this time.")
        ] = None,
        until: Annotated[
            datetime | None, strawberry.argument(description="Only those committed before this time.")
        ] = None,
    ) -> TransactionConnection:
        return await transactions_of(info, UUID(self.id), first, after, kinds, since, until)

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description=(
            "Its usage summed per time bucket (UTC, by when the ledger journaled it) and group: accepted usage "
            "events and hold captures; a debit credited back is left out whole. At most 366 days and 1,000 buckets."
        ),
    )
    async def usage(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from", description="The range's start (inclusive).")],
        to: Annotated[datetime, strawberry.argument(description="The range's end (exclusive).")],
        bucket: Annotated[BucketSize, strawberry.argument(description="How long each bucket is.")] = BucketSize.DAY,
        group_by: Annotated[
            list[GroupKey], strawberry.argument(description="What splits a bucket besides time; [] for none.")
        ] = DEFAULT_USAGE_GROUPS,
    ) -> list[UsageBucket]:
        return await usage_buckets(info, UUID(self.id), from_, to, bucket, group_by)

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its team budgets, with what each team spent and has left in the current period.",
    )
    async def team_budgets(self, info: Info) -> list[TeamBudget]:
        return await team_budgets_of(info, UUID(self.id))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its members' spending limits, with what each spent and has left of their cap this period.",
    )
    async def member_caps(self, info: Info) -> list[MemberCap]:
        return await member_caps_of(info, UUID(self.id))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="How its credits are consumed: kind priorities, what debits do at zero, and its credit line.",
    )
    async def consumption_policy(self, info: Info) -> ConsumptionPolicy:
        return await consumption_policy_of(info, UUID(self.id))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its alerts (low balance, high spend) and whether each is triggered now.",
    )
    async def alerts(self, info: Info) -> list[Alert]:
        return await alerts_of(info, UUID(self.id))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its alerts' crossings, newest first, a page at a time (cursors are bound to this organization).",
    )
    async def alert_events(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 200.")] = 50,
        after: Annotated[str | None, strawberry.argument(description="The endCursor of the page before.")] = None,
        alert_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only this alert's.")] = None,
    ) -> AlertEventPage:
        return await alert_events_of(info, UUID(self.id), first, after, alert_id)

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its subscription: the live one, else its latest ended one; null when it never subscribed.",
    )
    async def subscription(self, info: Info) -> PlanSubscription | None:
        return await subscription_of(info, UUID(self.id), datetime.now(UTC))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="What its plan allows (status, products, storage quota and use, priority queue): the ledger "
        "judges its usage by it.",
    )
    async def access(self, info: Info) -> PlanAccess:
        return await plan_access_of(info, UUID(self.id))

    @classmethod
    def from_domain(cls, organization: DomainOrganization) -> Organization:
        return cls(id=strawberry.ID(str(organization.id)), name=organization.name, created_at=organization.created_at)
