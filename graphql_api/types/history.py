"""An organization's ledger history as a Relay-style connection: newest first, keyset-paged on
(committed at, received at, id) with cursors bound to the organization (`graphql_api.pagination`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from graphql_api.context import Info
from graphql_api.errors import invalid
from graphql_api.inputs import aware
from graphql_api.outcomes import CommandStatus, Rejection, ResultDetail
from graphql_api.pagination import Keyset, page
from graphql_api.scalars import Credits, id_of
from ledger.core.commands import PAYLOAD_TYPES
from ledger.core.entries import Status
from ledger.store.history import HistoryKey, PostingView, TransactionView, transactions_page

COMMAND_TYPES = frozenset(PAYLOAD_TYPES)


# How a transaction's key travels as a cursor (also the usage events' and usageEvents' cursor).
HISTORY = Keyset(
    "transactions", (datetime, datetime, UUID), lambda key: (key.committed_at, key.received_at, key.id), HistoryKey
)


@strawberry.type(description="One leg of a transaction; a transaction's legs sum to zero.")
class Posting:
    leg: int = strawberry.field(description="Its position in the transaction, from 0.")
    account: str = strawberry.field(
        description="issuance:<kind>, lot, usage:<product>, breakage:<kind>, refund:<kind>, adjustment, "
        "overage:<product>, credit_line, hold or hold:offset."
    )
    lot_id: strawberry.ID | None = strawberry.field(description="The lot, on the lot account.")
    hold_id: strawberry.ID | None = strawberry.field(description="The hold, on the hold account.")
    amount: Credits = strawberry.field(description="Signed credits: positive debits the account.")

    @classmethod
    def from_domain(cls, posting: PostingView) -> Posting:
        return cls(
            leg=posting.leg,
            account=posting.account,
            lot_id=id_of(posting.lot_id),
            hold_id=id_of(posting.hold_id),
            amount=Credits(posting.amount),
        )


@strawberry.type(description="A ledger command as the journal holds it: its decision and its postings.")
class LedgerTransaction:
    id: strawberry.ID = strawberry.field(description="The transaction's id (the command's id).")
    organization_id: strawberry.Private[UUID]
    command_type: str = strawberry.field(description="e.g. grant_credits, record_usage, capture_hold, credit_back.")
    status: CommandStatus = strawberry.field(description="ACCEPTED or REJECTED.")
    idempotency_key: str = strawberry.field(description="The caller's key for the command.")
    created_at: datetime = strawberry.field(description="When the ledger committed it.")
    received_at: datetime = strawberry.field(description="When the API received the command.")
    balance_after: Credits = strawberry.field(description="The organization's balance right after it.")
    credits_charged: Credits = strawberry.field(description="Credits it charged; negative for a credit-back.")
    rejection: Rejection | None = strawberry.field(description="Set when status is REJECTED.")
    details: list[ResultDetail] = strawberry.field(description="Command-specific facts, as the mutation answered.")

    @strawberry.field(description="Its legs in order; none for a rejected command.")
    async def postings(self, info: Info) -> list[Posting]:
        found = await info.context.loaders.postings.load((self.organization_id, UUID(self.id)))
        return [Posting.from_domain(posting) for posting in found]

    @classmethod
    def from_domain(cls, organization_id: UUID, transaction: TransactionView) -> LedgerTransaction:
        result = transaction.result
        accepted = transaction.status is Status.ACCEPTED
        return cls(
            id=strawberry.ID(str(transaction.id)),
            organization_id=organization_id,
            command_type=transaction.command_type,
            status=CommandStatus.ACCEPTED if accepted else CommandStatus.REJECTED,
            idempotency_key=transaction.idempotency_key,
            created_at=transaction.committed_at,
            received_at=transaction.received_at,
            balance_after=Credits(transaction.balance_after),
            credits_charged=Credits(result.credits_charged),
            rejection=None if accepted else Rejection(code=result.code or "", message=result.message or ""),
            details=[ResultDetail(name=name, value=value) for name, value in sorted(result.details.items())],
        )


@strawberry.type(description="A transaction and the cursor to page on from it.")
class TransactionEdge:
    cursor: str = strawberry.field(description="Opaque; pass as `after` for the transactions older than this one.")
    node: LedgerTransaction = strawberry.field(description="The transaction.")


@strawberry.type(description="Where a page stands in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether there are more after this page.")
    end_cursor: str | None = strawberry.field(description="The last edge's cursor; null for an empty page.")


@strawberry.type(description="A page of an organization's transactions, newest first.")
class TransactionConnection:
    edges: list[TransactionEdge] = strawberry.field(description="The page's transactions, newest first.")
    page_info: PageInfo = strawberry.field(description="How to ask for the next page.")


async def transactions_of(
    info: Info,
    organization_id: UUID,
    first: int,
    after: str | None,
    kinds: list[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> TransactionConnection:
    if kinds is not None:
        unknown = set(kinds) - COMMAND_TYPES
        if unknown or not kinds:
            raise invalid(f"kinds must name command types among {', '.join(sorted(COMMAND_TYPES))}")
    since, until = aware(since, "since"), aware(until, "until")

    async def fetch(before: HistoryKey | None, limit: int) -> list[TransactionView]:
        pool = info.context.resources.pool
        return await transactions_page(
            pool, organization_id, before=before, limit=limit, command_types=kinds, since=since, until=until
        )

    found = await page(organization_id, first, after, HISTORY, fetch)
    edges = [
        TransactionEdge(
            cursor=HISTORY.encode(organization_id, transaction.key),
            node=LedgerTransaction.from_domain(organization_id, transaction),
        )
        for transaction in found.rows
    ]
    return TransactionConnection(
        edges=edges, page_info=PageInfo(has_next_page=found.has_next, end_cursor=edges[-1].cursor if edges else None)
    )
