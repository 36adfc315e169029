"""An organization's payment methods: attached by the id Stripe.js made (so no card data ever
passes through us), listed, made the default, detached. Each acts on the organization's own
customer only: an id attached to another customer is NOT_FOUND, as a made-up one is."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ledger.core.errors import NotFound
from ledger.payments.context import PaymentContext
from ledger.payments.customers import customer_of, ensure_customer
from ledger.payments.gateway import PaymentMethodView


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    method: PaymentMethodView
    is_default: bool


async def payment_methods(ctx: PaymentContext, organization_id: UUID) -> list[PaymentMethod]:
    """The organization's cards, the default first (none before its first card)."""
    customer = await customer_of(ctx.pool, organization_id)
    if customer is None:
        return []
    default = await ctx.gateway.default_payment_method(customer)
    methods = [PaymentMethod(m, m.id == default) for m in await ctx.gateway.list_payment_methods(customer)]
    return sorted(methods, key=lambda m: not m.is_default)


async def attach_payment_method(
    ctx: PaymentContext, organization_id: UUID, payment_method_id: str, make_default: bool
) -> PaymentMethod:
    """Attach the card to the organization's customer; the first card becomes the default, as
    does any with `make_default`. A card refused on attach is PAYMENT_DECLINED. A card attached to
    another customer is NOT_FOUND (never moved: it is another organization's); one attached to ours
    already is answered as it is."""
    customer = await ensure_customer(ctx, organization_id)
    found = await ctx.gateway.retrieve_payment_method(payment_method_id)
    if found.customer is not None and found.customer != customer:
        raise NotFound("no such payment method")
    method = found if found.customer == customer else await ctx.gateway.attach_payment_method(customer, found.id)
    default = await ctx.gateway.default_payment_method(customer)
    if make_default or default is None:
        if default != method.id:
            await ctx.gateway.set_default_payment_method(customer, method.id)
        return PaymentMethod(method, True)
    return PaymentMethod(method, default == method.id)


async def _owned(ctx: PaymentContext, organization_id: UUID, payment_method_id: str) -> tuple[str, PaymentMethodView]:
    customer = await customer_of(ctx.pool, organization_id)
    if customer is not None:
        for method in await ctx.gateway.list_payment_methods(customer):
            if method.id == payment_method_id:
                return customer, method
    raise NotFound("no such payment method in this organization")


async def set_default_payment_method(
    ctx: PaymentContext, organization_id: UUID, payment_method_id: str
) -> PaymentMethod:
    customer, method = await _owned(ctx, organization_id, payment_method_id)
    await ctx.gateway.set_default_payment_method(customer, method.id)
    return PaymentMethod(method, True)


async def detach_payment_method(ctx: PaymentContext, organization_id: UUID, payment_method_id: str) -> PaymentMethod:
    """Detach the card; if it was the default, the organization has none until it sets one
    (auto-recharge and invoices then answer PAYMENT_METHOD_REQUIRED)."""
    customer, method = await _owned(ctx, organization_id, payment_method_id)
    was_default = await ctx.gateway.default_payment_method(customer) == method.id
    if was_default:
        await ctx.gateway.set_default_payment_method(customer, None)
    await ctx.gateway.detach_payment_method(method.id)
    return PaymentMethod(method, False)
