"""Auto-recharge settings and refunds: Owner and Billing roles (MANAGE_BILLING) change them, any
role (READ) reads them. Each checks its input, then calls `ledger.payments` (no SQL here)."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from graphql_api.access.authorize import Authorize, from_argument
from graphql_api.access.policy import Permission
from graphql_api.billing.recharge_refunds import Refund, RefundInput, refund_of
from graphql_api.billing.recharge_types import AutoRecharge, SetAutoRechargeInput
from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.inputs import named_organization, parse_id, printable
from ledger import constants
from ledger.billing.auto_recharge import month_of
from ledger.core import bounds
from ledger.core.errors import InvalidCommand
from ledger.core.money import MicroCredits
from ledger.payments.gateway import require_gateway
from ledger.payments.recharge_settings import AutoRechargeRequest, set_auto_recharge
from ledger.payments.recharge_store import charged_in, recharges_of, settings_of


async def _shown(info: Info, organization_id: strawberry.ID | str) -> AutoRecharge | None:
    org = parse_id(str(organization_id), "organizationId")
    pool = info.context.resources.pool
    settings = await settings_of(pool, org)
    if settings is None:
        return None
    charged = await charged_in(pool, org, month_of(datetime.now(UTC)))
    return AutoRecharge.from_domain(settings, charged, await recharges_of(pool, org, constants.recharges_listed_max))


@strawberry.type
class RechargeQueries:
    @strawberry.field(
        extensions=[Authorize(Permission.READ, from_argument("organization_id", "organizationId"))],
        description="The organization's auto-recharge settings, this month's recharges against the cap and the newest "
        "recharges; null when never set.",
    )
    async def auto_recharge(self, info: Info, organization_id: strawberry.ID) -> AutoRecharge | None:
        await named_organization(info, organization_id)
        return await _shown(info, organization_id)


@strawberry.type
class RechargeMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description=(
            "Set auto-recharge: when the available credits fall to the threshold, the default card is charged "
            "off-session for the pack, once per crossing and never past the monthly cap. The pack must be priced "
            "and offered to the plan (NOT_FOUND, INVALID_INPUT); PAYMENTS_NOT_CONFIGURED without a Stripe key."
        ),
    )
    async def set_auto_recharge(self, info: Info, input: SetAutoRechargeInput) -> AutoRecharge:
        organization_id = await named_organization(info, input.organization_id)
        resources = info.context.resources
        require_gateway(resources.gateway)
        try:
            cap = bounds.parse_decimal(input.monthly_cap.strip(), decimals_max=bounds.QUANTITY_DECIMALS_MAX)
        except InvalidCommand as error:
            raise invalid(f"monthlyCap: {error.message}") from None
        request = AutoRechargeRequest(
            organization_id=organization_id,
            enabled=input.enabled,
            threshold=MicroCredits(input.threshold),
            pack_key=printable(input.pack, "pack", bounds.PLAN_KEY_LENGTH_MAX),
            monthly_cap=cap,
        )
        catalog = await info.context.loaders.catalog.load()
        await set_auto_recharge(resources.pool, resources.mailbox, catalog, request, datetime.now(UTC))
        shown = await _shown(info, input.organization_id)
        assert shown is not None
        return shown

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_BILLING)],
        description=(
            "Refund a payment's purchased credits: what is left of its lot is taken back in the ledger and its money "
            "refunded through Stripe, once per idempotencyKey however often retried. Bonus and base credits are "
            "NOT_REFUNDABLE; an annual plan's fee within 30 days of its period's start, pro rata."
        ),
    )
    async def refund(self, info: Info, input: RefundInput) -> Refund:
        return await refund_of(info, input)
