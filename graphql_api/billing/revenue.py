"""The revenue recognition report (`revenueReport`): per currency, what a window of time recognized
and what stays deferred, each figure with its sources. Read-only: there are no revenue mutations."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from graphql_api.access.authorize import Authorize, from_argument
from graphql_api.access.policy import Permission
from graphql_api.billing.invoices_types import Money
from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.inputs import load_organization, optional_id, required_time
from graphql_api.scalars import Credits, id_of
from ledger import constants
from ledger.billing import revenue
from ledger.invoicing.revenue import revenue_report

SOURCES = (
    "Where the figure comes from: billing charge keys (the invoice lines' `source`) and invoice lines "
    "(`<number>#<line>`), ledger transaction ids, payment intents, refund ids; at most "
    f"{constants.revenue_report_sources_max}."
)


@strawberry.type(description="One figure of the report, in one currency.")
class RevenueFigure:
    money: Money = strawberry.field(description="What the figure amounts to, exact to the minor unit.")
    credits: Credits | None = strawberry.field(description="The credits it is about, when it is about credits.")
    sources: list[str] = strawberry.field(description=SOURCES)
    sources_truncated: bool = strawberry.field(description="More sources than listed made the figure.")

    @classmethod
    def of(cls, figure: revenue.Figure, currency: str) -> RevenueFigure:
        return cls(
            money=Money.of(figure.amount, currency),
            credits=None if figure.credits is None else Credits(figure.credits),
            sources=list(figure.sources),
            sources_truncated=figure.sources_truncated,
        )


@strawberry.type(description="A currency's revenue for the window; every amount in that currency.")
class CurrencyRevenue:
    currency: str
    subscription_recognized: RevenueFigure = strawberry.field(
        description="Plan, seat, kit and proration charges recognized straight-line over their service period."
    )
    subscription_deferred: RevenueFigure = strawberry.field(
        description="Those charges' part after the window's end (deferred revenue at the end)."
    )
    purchased_recognized: RevenueFigure = strawberry.field(
        description="Purchased credits recognized: DEFERRED lots as consumed, IMMEDIATE lots at purchase."
    )
    breakage: RevenueFigure = strawberry.field(description="Paid credits that expired unused in the window.")
    purchased_deferred: RevenueFigure = strawberry.field(
        description="Paid credits still unused at the window's end (deferred revenue), at their lots' basis."
    )
    refunds: RevenueFigure = strawberry.field(description="Money refunded in the window (negative).")
    overage_billed: RevenueFigure = strawberry.field(
        description="Overage invoice lines, recognized over their invoice's period."
    )
    marketing_expense: RevenueFigure = strawberry.field(
        description="Bonus and promotional credits consumed, at the catalog's credit price (the catalog's currency)."
    )
    recognized: Money = strawberry.field(description="The window's revenue: the recognized figures, less refunds.")
    deferred_opening: Money = strawberry.field(description="Deferred revenue at the window's start.")
    deferred_billed: Money = strawberry.field(description="Billed in the window and deferred at first.")
    deferred_recognized: Money = strawberry.field(description="Recognized out of the deferred balance (not breakage).")
    deferred_refunded: Money = strawberry.field(description="Refunded or corrected credits' share of their basis.")
    deferred_closing: Money = strawberry.field(
        description="Deferred revenue at the window's end = opening + billed - recognized - breakage - refunded."
    )

    @classmethod
    def of(cls, item: revenue.CurrencyRevenue) -> CurrencyRevenue:
        c = item.currency
        return cls(
            currency=c,
            subscription_recognized=RevenueFigure.of(item.subscription_recognized, c),
            subscription_deferred=RevenueFigure.of(item.subscription_deferred, c),
            purchased_recognized=RevenueFigure.of(item.purchased_recognized, c),
            breakage=RevenueFigure.of(item.breakage, c),
            purchased_deferred=RevenueFigure.of(item.purchased_deferred, c),
            refunds=RevenueFigure.of(item.refunds, c),
            overage_billed=RevenueFigure.of(item.overage_billed, c),
            marketing_expense=RevenueFigure.of(item.marketing_expense, c),
            recognized=Money.of(item.recognized, c),
            deferred_opening=Money.of(item.deferred_opening, c),
            deferred_billed=Money.of(item.deferred_billed, c),
            deferred_recognized=Money.of(item.deferred_recognized, c),
            deferred_refunded=Money.of(item.deferred_refunded, c),
            deferred_closing=Money.of(item.deferred_closing, c),
        )


@strawberry.type(description="Revenue recognition for [periodStart, periodEnd).")
class RevenueReport:
    organization_id: strawberry.ID | None = strawberry.field(description="Null: the whole platform.")
    period_start: datetime
    period_end: datetime
    currencies: list[CurrencyRevenue]
    marketing_credits: Credits = strawberry.field(description="Bonus and promotional credits consumed.")
    marketing_sources: list[str] = strawberry.field(description="The transactions that consumed them.")


@strawberry.type
class RevenueQueries:
    @strawberry.field(
        extensions=[
            Authorize(
                Permission.MANAGE_BILLING,
                from_argument("organization_id", "organizationId"),
                without_organization=Permission.MANAGE_PLATFORM,
            )
        ],
        description=(
            "Revenue recognized in [periodStart, periodEnd) and deferred at its end, per currency, each figure "
            "with its sources. With organizationId: that organization's (MANAGE_BILLING); without: the "
            f"platform's (the admin). At most {constants.revenue_report_range_max_days} days."
        ),
    )
    async def revenue_report(
        self, info: Info, period_start: datetime, period_end: datetime, organization_id: strawberry.ID | None = None
    ) -> RevenueReport:
        organization = optional_id(organization_id, "organizationId")
        start, end = required_time(period_start, "periodStart"), required_time(period_end, "periodEnd")
        if end <= start:
            raise invalid("periodEnd must be after periodStart")
        if end - start > timedelta(days=constants.revenue_report_range_max_days):
            raise invalid(f"a revenue report covers at most {constants.revenue_report_range_max_days} days")
        if organization is not None:
            await load_organization(info, organization)
        catalog = await info.context.loaders.catalog.load()
        found = await revenue_report(
            info.context.resources.pool, organization, start, end, catalog.settings.credit_price,
            catalog.settings.currency,
        )  # fmt: skip
        return RevenueReport(
            organization_id=id_of(organization),
            period_start=start,
            period_end=end,
            currencies=[CurrencyRevenue.of(item) for item in found.currencies],
            marketing_credits=Credits(found.marketing_credits),
            marketing_sources=list(found.marketing_sources),
        )
