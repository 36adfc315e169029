"""Mutations on an organization's subscription: subscribe, change plan, seats, cancel and resume.
Owner and Billing roles (MANAGE_BILLING), and the platform. Each checks its input, then calls the
subscription services (`ledger.subscriptions`), which write the billing facts in one transaction
and send their effects to the ledger under keys derived from them; a retry has one effect."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from graphql_api.access.authorize import Authorize
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.input_types.subscriptions import (
    ChangePlanInput,
    SetSeatsInput,
    SubscribeInput,
    SubscriptionOrganizationInput,
)
from graphql_api.inputs import aware, named_organization, printable
from graphql_api.types.subscriptions import PlanSubscription, Proration, SubscriptionChange, proration_at
from ledger.billing.subscription import Subscription
from ledger.core import bounds
from ledger.subscriptions import plan_changes, seats, service


def plan_key(value: str) -> str:
    return printable(value, "plan", bounds.PLAN_KEY_LENGTH_MAX)


def idempotency_key(value: str) -> str:
    return printable(value, "idempotencyKey", bounds.IDEMPOTENCY_KEY_LENGTH_MAX)


async def shown(info: Info, subscription: Subscription) -> PlanSubscription:
    catalog = await info.context.loaders.catalog.load()
    return PlanSubscription.from_domain(subscription, catalog, datetime.now(UTC))


@strawberry.type
class SubscriptionMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description=(
            "Subscribe an organization to a plan: its limits and access are set and its first period granted at "
            "once. One live subscription per organization (SUBSCRIPTION_EXISTS); an unknown plan is NOT_FOUND."
        ),
    )
    async def subscribe(self, info: Info, input: SubscribeInput) -> PlanSubscription:
        request = service.SubscribeRequest(
            organization_id=await named_organization(info, input.organization_id),
            plan_key=plan_key(input.plan),
            interval=input.interval,
            seats=input.seats,
            anchor=aware(input.anchor, "anchor"),
            timezone=input.timezone.strip(),
            idempotency_key=idempotency_key(input.idempotency_key),
        )
        resources = info.context.resources
        return await shown(info, await service.subscribe(resources.pool, resources.mailbox, request))

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description=(
            "Set the seat quantity now: credits and money for the rest of the period prorated to the second "
            "(an increase granted and charged, a decrease taken back and credited). previewSeatChange shows it."
        ),
    )
    async def set_seats(self, info: Info, input: SetSeatsInput) -> SubscriptionChange:
        organization_id = await named_organization(info, input.organization_id)
        resources = info.context.resources
        result = await seats.set_seats(
            resources.pool, resources.mailbox, organization_id, input.seats, idempotency_key(input.idempotency_key),
            at=proration_at(input.proration_at),
        )  # fmt: skip
        return SubscriptionChange(
            subscription=await shown(info, result.subscription),
            proration=Proration.from_domain(result.proration),
            change_id=strawberry.ID(str(result.change.id)),
        )

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description=(
            "Change plan: an upgrade applies at once, prorated; a downgrade (or Archive) at the billing period's "
            "end. previewPlanChange shows exactly what this does."
        ),
    )
    async def change_plan(self, info: Info, input: ChangePlanInput) -> SubscriptionChange:
        organization_id = await named_organization(info, input.organization_id)
        resources = info.context.resources
        result = await plan_changes.change_plan(
            resources.pool, resources.mailbox, organization_id, plan_key(input.plan),
            idempotency_key(input.idempotency_key), interval=input.interval, at=proration_at(input.proration_at),
        )  # fmt: skip
        return SubscriptionChange(
            subscription=await shown(info, result.subscription),
            proration=Proration.from_domain(result.proration),
            change_id=None if result.change_id is None else strawberry.ID(str(result.change_id)),
        )

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description="Cancel at the current billing period's end (resumeSubscription undoes it until then).",
    )
    async def cancel_subscription(self, info: Info, input: SubscriptionOrganizationInput) -> PlanSubscription:
        organization_id = await named_organization(info, input.organization_id)
        return await shown(info, await service.cancel(info.context.resources.pool, organization_id))

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description="Undo a pending cancel: the subscription renews at its period's end again.",
    )
    async def resume_subscription(self, info: Info, input: SubscriptionOrganizationInput) -> PlanSubscription:
        organization_id = await named_organization(info, input.organization_id)
        return await shown(info, await service.resume(info.context.resources.pool, organization_id))
