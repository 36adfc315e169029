"""The ledger's ranges: what any value entering it may be, and what any sum it forms may reach.

The store keeps credits in signed 64-bit integers of micro-credits (at most about 9.2 * 10**18).
Every amount that enters (a grant, a debit's price, a hold, a cap, a budget, a threshold, a credit
limit) is at most `CREDITS_MAX`, a trillion credits (10**18 micro-credits); and every sum the actor
forms (a balance, a lot, a spend counter, what a hold has captured, what holds fence) is kept within
the same bound, a command that would push one past it being rejected as `OUT_OF_RANGE`. So the sum
of any two stored values still fits the column nine times over, and nothing the ledger writes can
overflow it.

Quantities and rates are exact decimals with bounded digits, so that a price (quantity * rate) is
computed exactly in `money`'s context and then judged against `CREDITS_MAX`; money rates (overage,
cost of goods, a lot's price per credit) are bounded the same way. Times are bounded twice: every
time anywhere lies in [`TIME_MIN`, `TIME_MAX`) (so no calendar arithmetic can leave the years
datetime holds), and each client time lies in a window around the time the command was received
(usage at most `USAGE_LATE_MAX` late and never past the clock's skew ahead, holds and quotes at
most `HOLD_TTL_MAX` / `QUOTE_TTL_MAX` ahead), so that no period's counter can be reached by dating an event years away.

The decimal grammar is one for every decimal that enters as text: ASCII digits, an optional
leading minus where negatives are allowed, at most one point with digits on both sides. No
exponents, signs, spaces, underscores or non-ASCII digits.
"""

from __future__ import annotations

import decimal
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ledger.core.errors import InvalidCommand, OutOfRange

MICRO_PER_CREDIT = 1_000_000
CREDIT_DECIMALS = 6
CREDITS_MAX_WHOLE = 10**12  # a trillion credits
CREDITS_MAX = CREDITS_MAX_WHOLE * MICRO_PER_CREDIT  # in micro-credits: 10**18, below 2**63 with room

QUANTITY_MAX = Decimal(10**15)  # native units in one event (tokens, seconds, bytes, messages)
QUANTITY_DECIMALS_MAX = 12
RATE_MAX = Decimal(10**9)  # credits per native unit
MONEY_RATE_MAX = Decimal(10**9)  # currency units per native unit or per credit
# The longest decimal text worth reading: anything longer is out of range whatever its digits.
DECIMAL_TEXT_LENGTH_MAX = 64

TIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)
USAGE_LATE_MAX = timedelta(days=366)  # an event may be recorded at most this long after it happened
CLOCK_SKEW_MAX = timedelta(minutes=5)  # ...and at most this far ahead of the ledger's clock
HOLD_TTL_MAX = timedelta(days=31)
QUOTE_TTL_MAX = timedelta(days=31)
BACKDATE_MAX = timedelta(days=366)  # a grant, a rate version or an expiry sweep dated in the past
FUTURE_DATE_MAX = timedelta(days=100 * 366)  # a grant's or rate's effective or expiry date ahead

# Text and collections a command may carry.
IDEMPOTENCY_KEY_LENGTH_MAX = 255
PRODUCT_KEY_LENGTH_MAX = 100
TEXT_LENGTH_MAX = 500  # any other text: a reason, a name, a user id, a dimension
DIMENSIONS_MAX = 16  # on one usage event
PRODUCTS_PER_LOT_MAX = 100
ROLLOVER_CYCLES_MAX = 120  # months a rollover bank lot may live
# The access a plan gives (SetAccess) and the storage in use (SetStorageUsage), in GB: an alert
# event carries them in micro-GB, at most 10**15, well within the store's range.
PLAN_KEY_LENGTH_MAX = 100
PRODUCTS_PER_PLAN_MAX = 100
STORAGE_GB_MAX = Decimal(10**9)
STORAGE_GB_DECIMALS = 6

# A subscription: its seat quantity, and how far from now its anchor (its first period's start) may lie.
SEATS_MAX = 100_000
ANCHOR_WINDOW = timedelta(days=366)
# How old a proration time a client passes may be: a preview's `at` passed to the change it
# previewed, so both prorate to the same second (never a way to backdate a change).
PRORATION_AT_AGE_MAX = timedelta(minutes=15)

# Text the directory keeps (checked by the API before it writes).
NAME_LENGTH_MAX = 200  # an organization's, team's, partner's or API key's name; a user id
EMAIL_LENGTH_MAX = 254  # RFC 5321's limit
KIT_LENGTH_MAX = 100  # a kit (seat) name
INVITATION_KEY_LENGTH_MAX = 200  # an invitation's idempotency key
# A configured request rate limit (its per-second rate and burst): the limiter's emission interval
# (microseconds per request) and its burst tolerance stay small integers.
RATE_LIMIT_PER_SECOND_MIN = 0.001
RATE_LIMIT_PER_SECOND_MAX = 1_000_000.0
RATE_LIMIT_BURST_MAX = 1_000_000
# Arguments of reads.
DATETIME_TEXT_LENGTH_MAX = 64  # an ISO 8601 time as written
OFFSET_MAX = timedelta(hours=15, minutes=59)  # PostgreSQL's timestamptz reads no wider offset
EXPIRY_WINDOW_MAX = timedelta(days=366)  # how far ahead expiringSoon looks
PRIORITY_MIN, PRIORITY_MAX = 0, 1_000_000
# A catalog document (a file, or loadCatalog's input) and what it may hold, so that no load can
# stall anything: its size, its entries and their versions, and the counts a plan names.
CATALOG_DOCUMENT_BYTES_MAX = 256 * 1024
CATALOG_PRODUCTS_MAX = 500
CATALOG_PLANS_MAX = 200
CATALOG_PACKS_MAX = 200
CATALOG_VERSIONS_MAX = 100  # versions of one plan or pack, rate versions of one product
CATALOG_PROBLEMS_MAX = 20  # refusals one message lists
PLAN_COUNT_MAX = 1_000_000  # seats, kits or members a plan includes
PLAN_DAYS_MAX = 36_600  # a trial, an expiry or a purge delay in days: a hundred years
PLAN_MONTHS_MAX = 1_200
PLAN_RANK_MAX = 1_000_000
INVOICE_TERMS_DAYS_MAX = 365  # a plan's Net-N invoice terms
SURCHARGE_PERCENT_MAX = Decimal(1000)

_WIDE = decimal.Context(prec=100)  # wider than any decimal the grammar admits: nothing rounds
_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def split_decimal(text: str, *, negative: bool = False) -> tuple[bool, str, str]:
    """(is negative, integer digits without leading zeros, fraction digits) of decimal text in the
    one grammar, or InvalidCommand naming what is wrong."""
    if len(text) > DECIMAL_TEXT_LENGTH_MAX:
        raise InvalidCommand(f"a decimal of at most {DECIMAL_TEXT_LENGTH_MAX} characters, not {len(text)}")
    match = _DECIMAL.fullmatch(text)
    if match is None or (match[1] and not negative):
        sign = "an optional leading minus, " if negative else ""
        raise InvalidCommand(f"not a decimal number: {text!r} (ASCII digits, {sign}at most one point between digits)")
    return bool(match[1]), match[2].lstrip("0"), match[3] or ""


def parse_credits(text: str, *, negative: bool = False) -> int:
    """Micro-credits from decimal text: at most six decimals and at most `CREDITS_MAX` in size."""
    minus, whole, fraction = split_decimal(text, negative=negative)
    if len(fraction.rstrip("0")) > CREDIT_DECIMALS:
        raise InvalidCommand(f"credits have at most {CREDIT_DECIMALS} decimal places: {text!r}")
    if len(whole) > len(str(CREDITS_MAX_WHOLE)):
        raise InvalidCommand(f"credits must be at most {CREDITS_MAX_WHOLE:,}: {text!r}")
    micro = int(whole or "0") * MICRO_PER_CREDIT + int(fraction[:CREDIT_DECIMALS].ljust(CREDIT_DECIMALS, "0"))
    check_credits(micro, "credits")
    return -micro if minus else micro


def parse_decimal(text: str, *, decimals_max: int = QUANTITY_DECIMALS_MAX, negative: bool = False) -> Decimal:
    """An exact `Decimal` from decimal text in the one grammar, with at most `decimals_max` decimals
    (trailing zeros aside). Its size is judged by the caller, who knows what it measures."""
    minus, whole, fraction = split_decimal(text, negative=negative)
    fraction = fraction.rstrip("0")
    if len(fraction) > decimals_max:
        raise InvalidCommand(f"at most {decimals_max} decimal places: {text!r}")
    # The constructor is exact whatever the context's precision; only arithmetic rounds.
    digits = f"{whole or '0'}.{fraction}" if fraction else whole or "0"
    return Decimal(f"-{digits}" if minus else digits)


def check_credits(value: int, name: str, *, negative: bool = False) -> None:
    """An amount that enters: at most `CREDITS_MAX` (and not negative unless allowed)."""
    if not (-CREDITS_MAX if negative else 0) <= value <= CREDITS_MAX:
        low = f"-{CREDITS_MAX_WHOLE:,}" if negative else "0"
        raise InvalidCommand(f"{name} must be {low} to {CREDITS_MAX_WHOLE:,} credits")


def check_decimal(value: Decimal, name: str, maximum: Decimal, decimals_max: int = QUANTITY_DECIMALS_MAX) -> None:
    """A quantity or rate that enters: finite, 0 to `maximum`, with at most `decimals_max` decimals."""
    if not value.is_finite() or not 0 <= value <= maximum:
        raise InvalidCommand(f"{name} must be 0 to {maximum:,}")
    exponent = value.normalize(_WIDE).as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if -exponent > decimals_max:
        raise InvalidCommand(f"{name} has at most {decimals_max} decimal places")


def check_time(value: datetime | None, name: str) -> None:
    """Any time: with a time zone offset PostgreSQL can read (whole minutes, at most 15:59 either
    way: a journaled time with another could not be cast back, and would fail every reader), within
    [TIME_MIN, TIME_MAX)."""
    if value is None:
        return
    offset = value.utcoffset() if value.tzinfo is not None else None
    if offset is None:
        raise InvalidCommand(f"{name} needs a time zone (e.g. 2026-01-31T12:00:00Z)")
    if offset % timedelta(minutes=1) or abs(offset) > OFFSET_MAX:
        raise InvalidCommand(f"{name}'s offset must be whole minutes from -15:59 to +15:59")
    if not TIME_MIN <= value < TIME_MAX:
        raise InvalidCommand(f"{name} must be from {TIME_MIN:%Y-%m-%d} to before {TIME_MAX:%Y-%m-%d}")


def check_window(value: datetime | None, name: str, at: datetime, before: timedelta, after: timedelta) -> None:
    """A client time within [at - before, at + after] (and within the absolute range)."""
    if value is None:
        return
    check_time(value, name)
    if not at - before <= value <= at + after:
        raise InvalidCommand(f"{name} must lie between {_span(before)} before and {_span(after)} after now")


def within_sum(value: int, name: str) -> None:
    """A sum the actor formed: a command that would push it past the range is OUT_OF_RANGE."""
    if not -CREDITS_MAX <= value <= CREDITS_MAX:
        raise OutOfRange(f"{name} would pass the ledger's range of {CREDITS_MAX_WHOLE:,} credits")


def _span(delta: timedelta) -> str:
    if delta >= timedelta(days=2):
        return f"{delta.days} days"
    return f"{int(delta.total_seconds() // 60)} minutes"
