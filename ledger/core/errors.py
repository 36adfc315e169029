"""Expected failures of the ledger, each with a stable code that clients may rely on.

    LedgerError
    ├── InvalidCommand          INVALID_INPUT: the command cannot be applied as written
    ├── UnknownProduct          UNKNOWN_PRODUCT: no rate for the product on the org's rate card
    ├── InsufficientCredits     INSUFFICIENT_CREDITS: the org blocks at zero and cannot cover it
    ├── CapExceeded             CAP_EXCEEDED: a team budget, user cap or hold cap would be broken
    ├── NotFound                NOT_FOUND: the lot, hold, quote or transaction named does not exist
    ├── HoldClosed              HOLD_CLOSED: the hold was finished, released or has expired
    ├── QuoteUnusable           QUOTE_UNUSABLE: the quote expired, was used, or is for another product
    ├── NotReversible           NOT_REVERSIBLE: not refundable, or already refunded / credited back
    ├── LimitReached            LIMIT_REACHED: the organization has as many of these as it may
    ├── OutOfRange              OUT_OF_RANGE: the result would pass the ledger's range (a balance,
    │                           a lot, a spend counter, a price past a trillion credits)
    └── IdempotencyConflict     IDEMPOTENCY_CONFLICT: the key was used before with another payload

A rejection is a result, not a crash: the worker stores it under the command's idempotency key so a
retry returns the same answer.
"""

from __future__ import annotations


class LedgerError(Exception):
    code = "LEDGER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCommand(LedgerError):
    code = "INVALID_INPUT"


class UnknownProduct(LedgerError):
    code = "UNKNOWN_PRODUCT"


class InsufficientCredits(LedgerError):
    code = "INSUFFICIENT_CREDITS"


class IdempotencyConflict(LedgerError):
    code = "IDEMPOTENCY_CONFLICT"


class CapExceeded(LedgerError):
    code = "CAP_EXCEEDED"


class NotFound(LedgerError):
    code = "NOT_FOUND"


class HoldClosed(LedgerError):
    code = "HOLD_CLOSED"


class QuoteUnusable(LedgerError):
    code = "QUOTE_UNUSABLE"


class NotReversible(LedgerError):
    code = "NOT_REVERSIBLE"


class LimitReached(LedgerError):
    code = "LIMIT_REACHED"


class OutOfRange(LedgerError):
    """A command valid in itself whose result would leave the range every stored sum must keep
    (`ledger.core.bounds`): rejected and recorded like any rejection."""

    code = "OUT_OF_RANGE"
