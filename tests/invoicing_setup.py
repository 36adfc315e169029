"""What the invoice and dunning tests share: an organization subscribed through the API with its
first billing period already running, the real jobs (`jobs.invoices`, `jobs.turnover`) called
with a simulated clock in their context as the jobs worker would call them, a card saved as the
organization's default in localstripe, and the GraphQL reads of invoices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from jobs.turnover import advance_turnover
from ledger.payments.context import PaymentContext
from ledger.payments.customers import ensure_customer
from ledger.payments.gateway import Gateway, gateway_from
from ledger.subscriptions.effects import LedgerEffects
from tests.conftest import Service
from tests.ledger_api import Ledger
from tests.subscription_calls import call, mailbox_of

INVOICE = """
id organizationId subscriptionId number periodStart periodEnd status collection currency issuedAt dueAt paidAt pdfUrl
subtotal { value minorUnits currency formatted } tax { value minorUnits } grandTotal { value minorUnits }
prepaid { value minorUnits } amountDue { value minorUnits formatted }
lines { kind description quantity unitPrice money { value minorUnits } credits prepaid source }
"""
# Just past the issue delay after a period's end.
AFTER_END = timedelta(minutes=6)


@dataclass
class Jobs:
    """The jobs' context: the service's database and ledger, Stripe when configured, and a clock."""

    service: Service
    effects: LedgerEffects
    gateway: Gateway | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def ctx(self) -> dict[str, Any]:
        clock: Callable[[], datetime] = lambda: self.now  # noqa: E731 - read when the job asks
        return {"pool": self.service.worker.pool, "effects": self.effects, "gateway": self.gateway, "clock": clock}

    def payments(self) -> PaymentContext:
        assert self.gateway is not None
        return PaymentContext(self.service.worker.pool, self.gateway, self.effects, self.now)

    async def turnover(self) -> int:
        return await advance_turnover(self.ctx())


@asynccontextmanager
async def jobs_of(service: Service) -> AsyncIterator[Jobs]:
    gateway = gateway_from(service.settings)
    async with mailbox_of(service) as mailbox:
        try:
            yield Jobs(service, LedgerEffects(mailbox), gateway)
        finally:
            if gateway is not None:
                await gateway.close()


async def subscribed(service: Service, plan: str, *, days_ago: int = 20, interval: str = "MONTHLY") -> Ledger:
    """A new organization on `plan`, anchored `days_ago` days ago (its first period runs now)."""
    org = await Ledger.create(service, f"invoiced {plan}")
    anchor = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0)
    subscription = await call(
        service, "subscribe", "id currentPeriod { start end }", organizationId=org.org, plan=plan,
        interval=interval, seats=0, anchor=anchor.isoformat(), timezone="UTC", idempotencyKey=f"sub-{org.org}",
    )  # fmt: skip
    assert "codes" not in subscription, subscription
    return org


async def current_period_end(service: Service, org: Ledger) -> datetime:
    body = await service.graphql(
        "query($id: ID!) { organization(id: $id) { subscription { currentPeriod { end } } } }", id=org.org
    )
    return datetime.fromisoformat(body["data"]["organization"]["subscription"]["currentPeriod"]["end"])


async def default_card(jobs: Jobs, organization_id: str, payment_method: str) -> None:
    """Attach a card (a payment method made as Stripe.js would) and make it the default."""
    assert jobs.gateway is not None
    customer = await ensure_customer(jobs.payments(), UUID(organization_id))
    await jobs.gateway.attach_payment_method(customer, payment_method)
    await jobs.gateway.set_default_payment_method(customer, payment_method)


async def invoices(service: Service, org: Ledger, credentials: str | None = None) -> list[dict[str, Any]]:
    body = await service.graphql(
        f"query($o: ID!) {{ invoices(organizationId: $o, first: 10) {{ {INVOICE} }} }}", credentials=credentials,
        o=org.org,
    )  # fmt: skip
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"]["invoices"]
    return found
