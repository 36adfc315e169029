"""The checks every input passes on its way in: ids, times, names and text, products, and the
organization named. Each refuses with a clear error naming the field (INVALID_INPUT, or
UNKNOWN_PRODUCT / NOT_FOUND) before anything is written or sent to the ledger."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from graphql_api.context import Context, Info
from graphql_api.errors import invalid, not_found
from ledger.core import bounds
from ledger.core.errors import UnknownProduct
from ledger.core.money import price
from ledger.directory.organizations import Organization
from ledger.store.catalog_rates import rate_versions_for

# A shape check, not a proof of delivery: the integrator sends the invitation.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def parse_id(value: str, what: str) -> UUID:
    """Ids are UUIDs; anything else is the client's mistake, never a server error."""
    try:
        return UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise invalid(f"{what} is not a valid id: {value!r}") from None


def optional_id(value: str | None, what: str) -> UUID | None:
    return None if value is None else parse_id(value, what)


def optional_decimal(value: Decimal | None) -> Decimal | None:
    """A Quantity scalar's value (already a bounded Decimal) or null."""
    return None if value is None else Decimal(value)


def aware(value: datetime | None, field: str) -> datetime | None:
    """Times must say their offset: a naive time would be read in whatever zone the server runs."""
    if value is not None and value.tzinfo is None:
        raise invalid(f"{field} needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
    return value


def required_time(value: datetime, field: str) -> datetime:
    checked = aware(value, field)
    assert checked is not None
    return checked


def checked_name(value: str, what: str = "name") -> str:
    """A display name or id, trimmed: 1 to NAME_LENGTH_MAX characters."""
    trimmed = value.strip()
    if not 1 <= len(trimmed) <= bounds.NAME_LENGTH_MAX:
        raise invalid(f"{what} must be 1 to {bounds.NAME_LENGTH_MAX} characters")
    return trimmed


def printable(value: str, what: str, length_max: int) -> str:
    """Text shown to people (a kit, a user id in the directory), trimmed: printable characters only."""
    text = value.strip()
    if not 1 <= len(text) <= length_max or not text.isprintable():
        raise invalid(f"{what} must be 1 to {length_max} printable characters")
    return text


def email(value: str) -> str:
    """An email address, trimmed and lower-cased."""
    address = value.strip().lower()
    if len(address) > bounds.EMAIL_LENGTH_MAX or not address.isprintable() or not _EMAIL.fullmatch(address):
        raise invalid("email is not an email address")
    return address


def kit(value: str | None) -> str | None:
    return None if value is None else printable(value, "kit", bounds.KIT_LENGTH_MAX)


def user_id(value: str) -> str:
    """A user id as the directory keeps it (printable, unlike a name)."""
    return printable(value, "userId", bounds.NAME_LENGTH_MAX)


async def load_organization(info: Info, organization_id: UUID) -> Organization:
    organization = await info.context.loaders.organization.load(organization_id)
    if organization is None:
        raise not_found("organization")
    return organization


async def named_organization(info: Info, value: str) -> UUID:
    """The organization an input names by id: INVALID_INPUT for a bad id, NOT_FOUND for none."""
    organization_id = parse_id(value, "organizationId")
    await load_organization(info, organization_id)
    return organization_id


async def require_product(info: Info, product: str) -> None:
    await require_products(info.context, {product})


async def require_products(context: Context, products: set[str]) -> None:
    missing = await unknown_products(context, products)
    if missing:
        raise UnknownProduct(f"no rate for product {min(missing)!r}")


async def unknown_products(context: Context, products: set[str]) -> set[str]:
    """The products no catalog version prices; those that are remembered (`known_products`) cost
    no query."""
    known = context.resources.known_products
    unknown = known.unknown(products)
    if not unknown:
        return unknown
    found = await rate_versions_for(context.resources.pool, unknown)
    # The cheapest version: the check refuses only what no version could price in range.
    known.add({product: min(rate.credits_per_unit for rate in versions) for product, versions in found.items()})
    return unknown - found.keys()


def require_priceable(context: Context, product: str, quantity: Decimal) -> None:
    """Refuse, before it is queued, a quantity whose price at the catalog's cheapest version would
    pass the ledger's range (the actor judges the version in force, perhaps the org's own, again)."""
    rate = context.resources.known_products.get(product)
    if rate is not None and price(quantity, rate) > bounds.CREDITS_MAX:
        raise invalid(f"{quantity} units of {product!r} would cost more than {bounds.CREDITS_MAX_WHOLE:,} credits")
