"""The one registry of error codes, and the ledger's expected failures that carry them.

Every code a client can see is an `ErrorCode`: the ledger's rejections (stored in a command's
result), the API's own refusals (`graphql_api.errors.ApiError`) and the HTTP edge's. The README's
error table lists exactly these (a test checks both directions).

    LedgerError
    ├── InvalidCommand          INVALID_INPUT: the command cannot be applied as written
    ├── UnknownProduct          UNKNOWN_PRODUCT: no rate for the product on the org's rate card
    ├── InsufficientCredits     INSUFFICIENT_CREDITS: the org blocks at zero and cannot cover it
    ├── CapExceeded             CAP_EXCEEDED: a team budget, user cap or hold cap would be broken
    ├── NotFound                NOT_FOUND: the lot, hold, quote or transaction named does not exist
    │                           (or, in the directory, the team, member, invitation or key)
    ├── HoldClosed              HOLD_CLOSED: the hold was finished, released or has expired
    ├── QuoteUnusable           QUOTE_UNUSABLE: the quote expired, was used, or is for another product
    ├── NotReversible           NOT_REVERSIBLE: not refundable, or already refunded / credited back
    ├── LimitReached            LIMIT_REACHED: the organization has as many of these as it may
    ├── OutOfRange              OUT_OF_RANGE: the result would pass the ledger's range (a balance,
    │                           a lot, a spend counter, a price past a trillion credits)
    ├── PlanInactive            PLAN_INACTIVE: the organization's plan allows no usage (Archive)
    ├── TrialEnded              TRIAL_ENDED: the plan's trial is over and usage stopped with it
    ├── ProductNotInPlan        PRODUCT_NOT_IN_PLAN: the plan's credits are for other products only
    ├── CatalogInvalid          CATALOG_INVALID: a catalog file or edit is refused whole (says where)
    ├── SubscriptionExists      SUBSCRIPTION_EXISTS: the organization already has a live subscription
    ├── SubscriptionInactive    SUBSCRIPTION_INACTIVE: the subscription is canceled or archived
    ├── Suspended               SUSPENDED: an invoice is unpaid past dunning; reads still work
    ├── PaymentsNotConfigured   PAYMENTS_NOT_CONFIGURED: no Stripe key is configured
    ├── PaymentDeclined         PAYMENT_DECLINED: the card was declined (extension declineCode)
    ├── PaymentMethodRequired   PAYMENT_METHOD_REQUIRED: no payment method given and none default
    ├── NotRefundable           NOT_REFUNDABLE: bonus or base credits, or past the refund window
    ├── IdempotencyConflict     IDEMPOTENCY_CONFLICT: the key was used before with another payload
    │                           (or a directory id with another name, an invitation's key for another)
    ├── CommandFailed           COMMAND_FAILED: the worker could not apply it and dead-lettered it
    ├── Unavailable             UNAVAILABLE: the command queue could not be reached
    ├── Overloaded              OVERLOADED: the partition's backlog is full
    ├── ResultTimeout           RESULT_TIMEOUT: queued, but no result in time
    ├── LastOwner               LAST_OWNER: the directory keeps at least one Owner in an organization
    └── Forbidden               FORBIDDEN: the directory refuses this caller the change (a partner's
                                user joining another partner's organization)

A rejection is a result, not a crash: the worker stores it under the command's idempotency key so a
retry returns the same answer. `error_for` turns a stored rejection back into its error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    """Every `extensions.code` the API answers with."""

    # The request itself.
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_REQUEST = "BAD_REQUEST"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    # Who is asking.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    # The ledger's decisions.
    UNKNOWN_PRODUCT = "UNKNOWN_PRODUCT"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    CAP_EXCEEDED = "CAP_EXCEEDED"
    HOLD_CLOSED = "HOLD_CLOSED"
    QUOTE_UNUSABLE = "QUOTE_UNUSABLE"
    NOT_REVERSIBLE = "NOT_REVERSIBLE"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    LIMIT_REACHED = "LIMIT_REACHED"
    PLAN_INACTIVE = "PLAN_INACTIVE"
    TRIAL_ENDED = "TRIAL_ENDED"
    PRODUCT_NOT_IN_PLAN = "PRODUCT_NOT_IN_PLAN"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    COMMAND_FAILED = "COMMAND_FAILED"
    # The directory's rules.
    LAST_OWNER = "LAST_OWNER"
    # Billing's rules.
    CATALOG_INVALID = "CATALOG_INVALID"
    SUBSCRIPTION_EXISTS = "SUBSCRIPTION_EXISTS"
    SUBSCRIPTION_INACTIVE = "SUBSCRIPTION_INACTIVE"
    SUSPENDED = "SUSPENDED"
    PAYMENTS_NOT_CONFIGURED = "PAYMENTS_NOT_CONFIGURED"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_METHOD_REQUIRED = "PAYMENT_METHOD_REQUIRED"
    NOT_REFUNDABLE = "NOT_REFUNDABLE"
    # The service.
    UNAVAILABLE = "UNAVAILABLE"
    OVERLOADED = "OVERLOADED"
    RESULT_TIMEOUT = "RESULT_TIMEOUT"
    INTERNAL = "INTERNAL"


class LedgerError(Exception):
    code: ClassVar[ErrorCode]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCommand(LedgerError):
    code = ErrorCode.INVALID_INPUT


class UnknownProduct(LedgerError):
    code = ErrorCode.UNKNOWN_PRODUCT


class InsufficientCredits(LedgerError):
    code = ErrorCode.INSUFFICIENT_CREDITS


class IdempotencyConflict(LedgerError):
    code = ErrorCode.IDEMPOTENCY_CONFLICT


class CapExceeded(LedgerError):
    code = ErrorCode.CAP_EXCEEDED


class NotFound(LedgerError):
    code = ErrorCode.NOT_FOUND


class HoldClosed(LedgerError):
    code = ErrorCode.HOLD_CLOSED


class QuoteUnusable(LedgerError):
    code = ErrorCode.QUOTE_UNUSABLE


class NotReversible(LedgerError):
    code = ErrorCode.NOT_REVERSIBLE


class LimitReached(LedgerError):
    code = ErrorCode.LIMIT_REACHED


class PlanInactive(LedgerError):
    """The organization's access (set by billing, `SetAccess`) allows no usage: an archived plan."""

    code = ErrorCode.PLAN_INACTIVE


class TrialEnded(LedgerError):
    code = ErrorCode.TRIAL_ENDED


class ProductNotInPlan(LedgerError):
    code = ErrorCode.PRODUCT_NOT_IN_PLAN


class CatalogInvalid(LedgerError):
    """A catalog refused whole; the message names the line and field (`ledger.billing.catalog_file`)."""

    code = ErrorCode.CATALOG_INVALID


class SubscriptionExists(LedgerError):
    code = ErrorCode.SUBSCRIPTION_EXISTS


class SubscriptionInactive(LedgerError):
    code = ErrorCode.SUBSCRIPTION_INACTIVE


class Suspended(LedgerError):
    """The organization is suspended for an unpaid invoice: new spending is refused, reads work."""

    code = ErrorCode.SUSPENDED


class PaymentsNotConfigured(LedgerError):
    """No Stripe key is configured: the service runs, payment mutations answer this."""

    code = ErrorCode.PAYMENTS_NOT_CONFIGURED


class PaymentDeclined(LedgerError):
    """The card was declined; `decline_code` is Stripe's (e.g. card_declined, insufficient_funds)."""

    code = ErrorCode.PAYMENT_DECLINED

    def __init__(self, message: str, decline_code: str = "card_declined") -> None:
        super().__init__(message)
        self.decline_code = decline_code


class PaymentMethodRequired(LedgerError):
    """No payment method was given and the organization has no default one."""

    code = ErrorCode.PAYMENT_METHOD_REQUIRED


class NotRefundable(LedgerError):
    """Only purchased credits are refundable (bonus and base are not), annual plans within 30 days."""

    code = ErrorCode.NOT_REFUNDABLE


class OutOfRange(LedgerError):
    """A command valid in itself whose result would leave the range every stored sum must keep
    (`ledger.core.bounds`): rejected and recorded like any rejection."""

    code = ErrorCode.OUT_OF_RANGE


class CommandFailed(LedgerError):
    """The worker could not apply the command (it failed on its own, or kept killing the workers
    that held it) and dead-lettered it; retrying as is will not help."""

    code = ErrorCode.COMMAND_FAILED


class Unavailable(LedgerError):
    """The command queue (Redis) could not be reached: nothing was queued, retry with the key."""

    code = ErrorCode.UNAVAILABLE


class Overloaded(LedgerError):
    """The partition's backlog is full: nothing was queued, retry shortly."""

    code = ErrorCode.OVERLOADED


class ResultTimeout(LedgerError):
    """Queued, but no result in time: retry with the same key to learn it."""

    code = ErrorCode.RESULT_TIMEOUT


class LastOwner(LedgerError):
    """The change would demote or remove an organization's last Owner (`ledger.directory.members`)."""

    code = ErrorCode.LAST_OWNER


class Forbidden(LedgerError):
    """A rule of the directory refuses this caller (authorization proper is the API's)."""

    code = ErrorCode.FORBIDDEN


def _by_code(classes: list[type[LedgerError]]) -> dict[ErrorCode, type[LedgerError]]:
    """Each code's one class: two classes with one code would make a stored rejection ambiguous."""
    by_code: dict[ErrorCode, type[LedgerError]] = {}
    for cls in classes:
        if cls.code in by_code:
            raise TypeError(f"{cls.__name__} and {by_code[cls.code].__name__} share the code {cls.code}")
        by_code[cls.code] = cls
    return by_code


_BY_CODE = _by_code(LedgerError.__subclasses__())


def error_for(code: str, message: str) -> LedgerError:
    """The error a stored rejection's code stands for (the one place a code maps to its class)."""
    return _BY_CODE[ErrorCode(code)](message)
