"""Usage events as both ways in take them, GraphQL's `recordUsageBatch` (and `recordUsage`) and the
bulk route `POST /v1/usage`: one set of checks, so that an event one accepts the other accepts too.

Each way decodes its own wire into values of the same shape (`UsageEventFields`): the quantity
already parsed by the one quantity grammar (`graphql_api.scalars.parse_quantity`), everything
else as sent. Here they are checked (ids, time zone, unique dimensions, known and priceable
products; the batch's size) and made into `RecordUsage` payloads; `ledger.core.validation` checks
the commands again (key, product, quantity, times, text, dimension count) as they are sent.
A refusal names the event (`RefusedEvent.index`) and carries the code and message GraphQL answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from graphql_api.context import Context
from graphql_api.errors import ApiError, RefusedEvent, invalid
from graphql_api.inputs import aware, optional_id, parse_id, require_priceable, unknown_products
from ledger import constants
from ledger.core.commands import RecordUsage
from ledger.core.errors import InvalidCommand, LedgerError, UnknownProduct
from ledger.core.validation import check_product

UsageItem = tuple[UUID, str, RecordUsage]


class DimensionFields(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> str: ...


class UsageEventFields(Protocol):
    """One usage event as decoded from either wire."""

    @property
    def organization_id(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def idempotency_key(self) -> str: ...
    @property
    def occurred_at(self) -> datetime | None: ...
    @property
    def team_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def quote_id(self) -> str | None: ...
    @property
    def dimensions(self) -> Sequence[DimensionFields]: ...


def event_organizations(events: Sequence[UsageEventFields]) -> list[UUID]:
    """The organizations a batch names (each once), for its authorization: INVALID_INPUT, naming
    the event, for an id that does not parse."""
    found: dict[str, UUID] = {}
    for index, event in enumerate(events):
        if event.organization_id not in found:
            found[event.organization_id] = _organization_of(index, event)
    return list(set(found.values()))


async def checked_usage(context: Context, events: Sequence[UsageEventFields]) -> list[UsageItem]:
    """A batch's events checked, as (organization, idempotency key, payload) to send: 1 to
    `usage_batch_max` of them, every product priced by the catalog, every event well formed."""
    if not 1 <= len(events) <= constants.usage_batch_max:
        raise invalid(f"events must hold 1 to {constants.usage_batch_max} usage events")
    for index, event in enumerate(events):  # storable text before it is looked up in PostgreSQL
        try:
            check_product(event.product)
        except InvalidCommand as error:
            raise RefusedEvent(index, error) from None
    missing = await unknown_products(context, {event.product for event in events})
    if missing:
        product = min(missing)
        index = next(i for i, event in enumerate(events) if event.product == product)
        raise RefusedEvent(index, UnknownProduct(f"no rate for product {product!r}"))
    items: list[UsageItem] = []
    for index, event in enumerate(events):
        try:
            items.append((parse_id(event.organization_id, "organizationId"), event.idempotency_key,
                          usage_payload(context, event)))  # fmt: skip
        except (ApiError, LedgerError) as error:
            raise RefusedEvent(index, error) from None
    return items


def usage_payload(context: Context, event: UsageEventFields) -> RecordUsage:
    """One event's payload; its product is known (checked by the caller)."""
    dimensions = {d.name: d.value for d in event.dimensions}
    if len(dimensions) != len(event.dimensions):
        raise invalid("dimension names must be unique")
    quantity = Decimal(event.quantity)  # a plain Decimal, whichever wire's subclass it came as
    require_priceable(context, event.product, quantity)
    occurred_at = event.occurred_at
    if occurred_at is not None and type(occurred_at) is not datetime:  # likewise a plain datetime
        occurred_at = datetime.combine(occurred_at.date(), occurred_at.timetz())
    return RecordUsage(
        product=event.product,
        quantity=quantity,
        occurred_at=aware(occurred_at, "occurredAt"),
        team_id=optional_id(event.team_id, "teamId"),
        user_id=event.user_id,
        quote_id=optional_id(event.quote_id, "quoteId"),
        dimensions=dimensions,
    )


def _organization_of(index: int, event: UsageEventFields) -> UUID:
    try:
        return parse_id(event.organization_id, "organizationId")
    except ApiError as error:
        raise RefusedEvent(index, error) from None
