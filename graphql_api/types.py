"""Thin GraphQL types over domain objects; each converts in one place (`from_domain`)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry

from graphql_api.access.api_keys import api_keys_of
from graphql_api.access.authorize import Authorize, from_source
from graphql_api.access.invitations import Invitation as DomainInvitation
from graphql_api.access.invitations import InvitationStatus
from graphql_api.access.members import Limits as DomainLimits
from graphql_api.access.members import Member as DomainMember
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.errors import invalid, not_found
from graphql_api.scalars import Credits, Quantity
from ledger.core.commands import AtZero, LotKind, Period
from ledger.core.entries import Status
from ledger.core.state import Balance as DomainBalance
from ledger.store.catalog import Product as DomainProduct
from ledger.store.lots import HoldView, LotView, holds_of, lots_of
from ledger.store.organizations import Organization as DomainOrganization
from ledger.store.teams import Team as DomainTeam
from ledger.store.teams import teams_by_orgs
from ledger.store.usage import BucketSize, GroupKey
from ledger.stream.mailbox import Reply

if TYPE_CHECKING:
    from graphql_api.access.policy import Role
    from graphql_api.access_api import ApiKey
    from graphql_api.alerts import Alert, AlertEventPage
    from graphql_api.history import TransactionConnection
    from graphql_api.usage import ConsumptionPolicy, MemberCap, TeamBudget, UsageBucket

# How far ahead expiringSoon looks at most: a year.
EXPIRY_WINDOW_HOURS_MAX = 366 * 24
# Never mutated: the default of Organization.usage's groupBy.
DEFAULT_USAGE_GROUPS = [GroupKey.PRODUCT]

# The domain enum is the GraphQL enum: registering it here keeps one name for both.
strawberry.enum(LotKind, name="LotKind", description="What a credit lot is for; sets its default priority.")
strawberry.enum(BucketSize, name="UsageBucketSize", description="How long each bucket of a usage report is, in UTC.")
strawberry.enum(
    GroupKey,
    name="UsageGroup",
    description='What splits a usage bucket besides time: PRODUCT, MODEL (the "model" dimension), TEAM or USER.',
)
strawberry.enum(InvitationStatus, name="InvitationStatus", description="Where an invitation stands.")
strawberry.enum(AtZero, name="AtZero", description="What a debit does when the credits cannot cover it.")
strawberry.enum(Period, name="Period", description="A calendar period in UTC (weeks start on Monday).")


@strawberry.enum(description="When a ledger mutation returns.")
class Ack(enum.Enum):
    APPLIED = strawberry.enum_value("applied", description="After the ledger committed it, with the result.")
    QUEUED = strawberry.enum_value("queued", description="As soon as the command is durably queued.")


@strawberry.enum(description="What became of a ledger command.")
class CommandStatus(enum.Enum):
    QUEUED = strawberry.enum_value("queued", description="Durably queued; the ledger applies it shortly.")
    ACCEPTED = strawberry.enum_value("accepted", description="Applied and committed.")
    REJECTED = strawberry.enum_value("rejected", description="Decided and recorded, with no effect on credits.")


@strawberry.type(description="An organization's credits now.")
class Balance:
    total: Credits = strawberry.field(description="Credits in every lot usable now.")
    held: Credits = strawberry.field(description="Credits reserved by open holds.")
    available: Credits = strawberry.field(description="What can be spent now: total less held.")

    @classmethod
    def from_domain(cls, balance: DomainBalance) -> Balance:
        return cls(total=Credits(balance.total), held=Credits(balance.held), available=Credits(balance.available))


@strawberry.type(
    description=(
        "Credits usable now in the lots of one kind. Holds are not attributed to kinds (a hold fences lots "
        "only as its debits would reach them, decided anew at each debit), so there is no held here; and "
        "what a credit line has drawn belongs to no kind: the balance's total is the sum of these less it."
    )
)
class KindBalance:
    kind: LotKind = strawberry.field(description="The lot kind.")
    total: Credits = strawberry.field(description="Credits left in its lots usable now.")
    lots: int = strawberry.field(description="How many of its lots are usable now.")

    @classmethod
    def from_lots(cls, lots: list[LotView], at: datetime) -> list[KindBalance]:
        """Per kind, in the order of LotKind, only kinds with usable credits."""
        totals: dict[LotKind, tuple[int, int]] = {}
        for lot in lots:
            if lot.remaining > 0 and lot.effective_at <= at and (lot.expires_at is None or at < lot.expires_at):
                total, count = totals.get(lot.kind, (0, 0))
                totals[lot.kind] = (total + lot.remaining, count + 1)
        return [
            cls(kind=kind, total=Credits(totals[kind][0]), lots=totals[kind][1]) for kind in LotKind if kind in totals
        ]


@strawberry.type(description="A team (workspace) of an organization; it can own credit lots and have a budget.")
class Team:
    id: strawberry.ID
    name: str
    created_at: datetime
    organization_id: strawberry.Private[UUID]

    @strawberry.field(
        description=(
            "What the team holds now: usable credits in its own lots (not the shared pool it may also spend) "
            "and what holds placed for it reserve."
        )
    )
    async def balance(self, info: Info) -> Balance:
        return Balance.from_domain(await info.context.loaders.team_balance.load((self.organization_id, UUID(self.id))))

    @classmethod
    def from_domain(cls, team: DomainTeam) -> Team:
        return cls(
            id=strawberry.ID(str(team.id)),
            name=team.name,
            created_at=team.created_at,
            organization_id=team.organization_id,
        )


@strawberry.type(description="A credit lot: one grant of credits, spent in consumption order.")
class CreditLot:
    id: strawberry.ID
    kind: LotKind
    amount: Credits = strawberry.field(description="Credits granted into the lot.")
    remaining: Credits = strawberry.field(description="Credits left.")
    priority: int = strawberry.field(description="Lower is consumed first.")
    effective_at: datetime
    expires_at: datetime | None
    team_id: strawberry.ID | None = strawberry.field(description="The owning team; null for the org's shared pool.")
    products: list[str] | None = strawberry.field(description="The products it pays for; null for all.")
    refundable: bool
    source: str = strawberry.field(
        description="subscription, payment, promotion, referral, manual, rollover, transfer."
    )
    parent_id: strawberry.ID | None = strawberry.field(description="The lot it was moved or rolled over from.")

    @classmethod
    def from_domain(cls, lot: LotView) -> CreditLot:
        return cls(
            id=strawberry.ID(str(lot.id)),
            kind=lot.kind,
            amount=Credits(lot.amount),
            remaining=Credits(lot.remaining),
            priority=lot.priority,
            effective_at=lot.effective_at,
            expires_at=lot.expires_at,
            team_id=_id(lot.team_id),
            products=lot.products,
            refundable=lot.refundable,
            source=lot.source,
            parent_id=_id(lot.parent_id),
        )


@strawberry.type(description="Credits reserved for a running job; captured as it goes, the rest released.")
class CreditHold:
    id: strawberry.ID
    amount: Credits = strawberry.field(description="Credits reserved when placed.")
    reserved: Credits = strawberry.field(description="Credits it still keeps others from spending.")
    captured: Credits = strawberry.field(description="Credits charged against it so far.")
    status: str = strawberry.field(description="open, finished, released or expired.")
    expires_at: datetime
    product: str | None
    team_id: strawberry.ID | None
    user_id: str | None
    run_id: str | None

    @classmethod
    def from_domain(cls, hold: HoldView) -> CreditHold:
        # A hold stops fencing credits at its TTL, before the expiry sweep journals its release:
        # show it as it counts.
        lapsed = hold.status == "open" and hold.expires_at <= datetime.now(UTC)
        return cls(
            id=strawberry.ID(str(hold.id)),
            amount=Credits(hold.amount),
            reserved=Credits(0 if lapsed else hold.reserved),
            captured=Credits(hold.captured),
            status="expired" if lapsed else hold.status,
            expires_at=hold.expires_at,
            product=hold.product,
            team_id=_id(hold.team_id),
            user_id=hold.user_id,
            run_id=hold.run_id,
        )


def _id(value: UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type(description="A user's membership of an organization: their role, team and kit.")
class Member:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    user_id: str = strawberry.field(description="Your id of the user (the `sub` of their user token).")
    # Lazily: the enum is registered in access_api, which imports this module.
    role: Annotated[Role, strawberry.lazy("graphql_api.access_api")] = strawberry.field(
        description="What they may do in the organization."
    )
    email: str | None = strawberry.field(description="Their email, when known (from the invitation).")
    team_id: strawberry.ID | None = strawberry.field(description="Their team; null for none.")
    kit: str | None = strawberry.field(description="The kit (seat) assigned to them; null for none.")
    created_at: datetime = strawberry.field(description="When they joined.")

    @classmethod
    def from_domain(cls, member: DomainMember) -> Member:
        return cls(
            organization_id=strawberry.ID(str(member.organization_id)),
            user_id=member.user_id,
            role=member.role,
            email=member.email,
            team_id=_id(member.team_id),
            kit=member.kit,
            created_at=member.created_at,
        )


@strawberry.type(description="An invitation into an organization, accepted once by a user with its token.")
class Invitation:
    id: strawberry.ID = strawberry.field(description="The invitation's id.")
    organization_id: strawberry.ID = strawberry.field(description="The organization it joins.")
    email: str = strawberry.field(description="Whom it is for (lower-cased).")
    role: Annotated[Role, strawberry.lazy("graphql_api.access_api")] = strawberry.field(
        description="The role the member gets."
    )
    team_id: strawberry.ID | None = strawberry.field(description="The team the member joins; null for none.")
    kit: str | None = strawberry.field(description="The kit (seat) the member gets; null for none.")
    status: InvitationStatus = strawberry.field(description="Pending, accepted, revoked or expired.")
    created_by: str = strawberry.field(description="Who invited: user:<user id> or api_key:<key id>.")
    created_at: datetime = strawberry.field(description="When it was made.")
    expires_at: datetime = strawberry.field(description="When its token stops working.")
    accepted_at: datetime | None = strawberry.field(description="When it was accepted.")
    accepted_by: str | None = strawberry.field(description="The user who accepted it.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked.")
    token: str | None = strawberry.field(
        default=None,
        description=(
            "The secret the invitee accepts it with: only in inviteMember's answer (a retry with the same "
            "idempotency key shows it again), null everywhere else."
        ),
    )

    @classmethod
    def from_domain(cls, invitation: DomainInvitation, now: datetime, token: str | None = None) -> Invitation:
        return cls(
            id=strawberry.ID(str(invitation.id)),
            organization_id=strawberry.ID(str(invitation.organization_id)),
            email=invitation.email,
            role=invitation.role,
            team_id=_id(invitation.team_id),
            kit=invitation.kit,
            status=invitation.status(now),
            created_by=invitation.created_by,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            accepted_at=invitation.accepted_at,
            accepted_by=invitation.accepted_by,
            revoked_at=invitation.revoked_at,
            token=token,
        )


@strawberry.type(description="An organization's member and kit limits, and how much of them is used.")
class OrganizationLimits:
    member_limit: int | None = strawberry.field(description="Most members it may have; null for unlimited.")
    kit_limit: int | None = strawberry.field(description="Most members holding a kit; null for unlimited.")
    members: int = strawberry.field(description="Members now.")
    kits: int = strawberry.field(description="Members holding a kit now.")

    @classmethod
    def from_domain(cls, limits: DomainLimits) -> OrganizationLimits:
        return cls(
            member_limit=limits.member_limit, kit_limit=limits.kit_limit, members=limits.members, kits=limits.kits
        )


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
    async def api_keys(self, info: Info) -> list[Annotated[ApiKey, strawberry.lazy("graphql_api.access_api")]]:
        from graphql_api.access_api import ApiKey

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
    ) -> Annotated[TransactionConnection, strawberry.lazy("graphql_api.history")]:
        from graphql_api.history import transactions

        return await transactions(info, UUID(self.id), first, after, kinds, since, until)

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
    ) -> list[Annotated[UsageBucket, strawberry.lazy("graphql_api.usage")]]:
        from graphql_api.usage import usage

        return await usage(info, UUID(self.id), from_, to, bucket, group_by)

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its team budgets, with what each team spent and has left in the current period.",
    )
    async def team_budgets(self, info: Info) -> list[Annotated[TeamBudget, strawberry.lazy("graphql_api.usage")]]:
        from graphql_api.usage import team_budgets

        return await team_budgets(info, UUID(self.id))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its members' spending limits, with what each spent and has left of their cap this period.",
    )
    async def member_caps(self, info: Info) -> list[Annotated[MemberCap, strawberry.lazy("graphql_api.usage")]]:
        from graphql_api.usage import member_caps

        return await member_caps(info, UUID(self.id))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="How its credits are consumed: kind priorities, what debits do at zero, and its credit line.",
    )
    async def consumption_policy(
        self, info: Info
    ) -> Annotated[ConsumptionPolicy, strawberry.lazy("graphql_api.usage")]:
        from graphql_api.usage import consumption_policy

        return await consumption_policy(info, UUID(self.id))

    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_source)],
        description="Its alerts (low balance, high spend) and whether each is triggered now.",
    )
    async def alerts(self, info: Info) -> list[Annotated[Alert, strawberry.lazy("graphql_api.alerts")]]:
        from graphql_api.alerts import alerts_of

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
    ) -> Annotated[AlertEventPage, strawberry.lazy("graphql_api.alerts")]:
        from graphql_api.alerts import alert_events_of

        return await alert_events_of(info, UUID(self.id), first, after, alert_id)

    @classmethod
    def from_domain(cls, organization: DomainOrganization) -> Organization:
        return cls(id=strawberry.ID(str(organization.id)), name=organization.name, created_at=organization.created_at)


@strawberry.type(description="A product usage is priced for, and its rate.")
class Product:
    key: str = strawberry.field(description='The key usage events name, e.g. "gpt-4o.input-tokens".')
    name: str = strawberry.field(description="Display name.")
    unit: str = strawberry.field(description='The native unit a quantity counts, e.g. "token".')
    credits_per_unit: Quantity = strawberry.field(description="Credits charged per unit.")

    @classmethod
    def from_domain(cls, product: DomainProduct) -> Product:
        return cls(
            key=product.key, name=product.name, unit=product.unit, credits_per_unit=Quantity(product.credits_per_unit)
        )


@strawberry.type(description="Why the ledger rejected a command.")
class Rejection:
    code: str = strawberry.field(description="Stable reason code, e.g. INSUFFICIENT_CREDITS.")
    message: str = strawberry.field(description="Human-readable explanation.")


@strawberry.type(description="A fact about a command's result, e.g. overageAmount or cost.")
class ResultDetail:
    name: str
    value: str


@strawberry.type(description="The outcome of a ledger mutation.")
class CommandOutcome:
    command_id: strawberry.ID = strawberry.field(description="The id given to this request's command.")
    transaction_id: strawberry.ID | None = strawberry.field(
        description="The journal transaction holding the decision (on a retry: the first request's)."
    )
    status: CommandStatus
    rejection: Rejection | None = strawberry.field(description="Set when status is REJECTED.")
    credits_charged: Credits | None = strawberry.field(description="Credits this usage cost; null while queued.")
    balance_after: Credits | None = strawberry.field(
        description="The balance right after this command; null while queued."
    )
    details: list[ResultDetail] = strawberry.field(
        description=(
            "Command-specific facts: lot_id, hold_id, quote_id, credits, affordable, overage_credits, "
            "overage_amount, cost, currency, credits_per_unit, credits_refunded, amount_refunded."
        )
    )

    def detail(self, name: str) -> str | None:
        return next((d.value for d in self.details if d.name == name), None)

    @strawberry.field(description="The lot this command created (grants, positive adjustments).")
    def lot_id(self) -> strawberry.ID | None:
        value = self.detail("lot_id")
        return None if value is None else strawberry.ID(value)

    @strawberry.field(description="The hold this command placed or acted on.")
    def hold_id(self) -> strawberry.ID | None:
        value = self.detail("hold_id")
        return None if value is None else strawberry.ID(value)

    @strawberry.field(description="The binding quote this command issued.")
    def quote_id(self) -> strawberry.ID | None:
        value = self.detail("quote_id")
        return None if value is None else strawberry.ID(value)

    @classmethod
    def queued(cls, command_id: UUID) -> CommandOutcome:
        return cls(
            command_id=strawberry.ID(str(command_id)),
            transaction_id=None,
            status=CommandStatus.QUEUED,
            rejection=None,
            credits_charged=None,
            balance_after=None,
            details=[],
        )

    @classmethod
    def from_reply(cls, reply: Reply) -> CommandOutcome:
        result = reply.result
        accepted = result.status is Status.ACCEPTED
        return cls(
            command_id=strawberry.ID(str(reply.command_id)),
            transaction_id=strawberry.ID(str(reply.transaction_id)),
            status=CommandStatus.ACCEPTED if accepted else CommandStatus.REJECTED,
            rejection=None if accepted else Rejection(code=result.code or "", message=result.message or ""),
            credits_charged=Credits(result.credits_charged),
            balance_after=Credits(result.balance_after),
            details=[ResultDetail(name=name, value=value) for name, value in sorted(result.details.items())],
        )


@strawberry.type(description="A live reading of an organization's credits.")
class MeterReading:
    organization_id: strawberry.ID
    total: Credits
    held: Credits
    available: Credits
    at: datetime = strawberry.field(description="When the reading was taken.")

    @classmethod
    def from_balance(cls, organization_id: UUID, balance: DomainBalance, at: datetime) -> MeterReading:
        return cls(
            organization_id=strawberry.ID(str(organization_id)),
            total=Credits(balance.total),
            held=Credits(balance.held),
            available=Credits(balance.available),
            at=at,
        )


async def load_organization(info: Info, organization_id: UUID) -> DomainOrganization:
    organization = await info.context.loaders.organization.load(organization_id)
    if organization is None:
        raise not_found("organization")
    return organization
