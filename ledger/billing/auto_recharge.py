"""Auto-recharge's rules, pure: the monthly cap as the client writes it, the month a recharge
counts in, and what a crossing of the threshold does (the pack's price and whether it is for sale
are `ledger.payments.packs`', as for a pack bought by hand).

One crossing (an AUTO_RECHARGE alert event) is one decision, made under the settings' row lock:

- auto-recharge off (or never set): nothing is charged (`disabled`);
- the crossing is no longer open (a later event of the rule, a RESOLVED, or older than
  `recharge_crossing_max_age_s`), or it was fired by a settings write while the balance has not
  risen since a recharge of the same fall: nothing is charged (`disabled`, detail "resolved",
  "stale" or UNCHANGED);
- what recharges charged this calendar month (UTC; those started or succeeded, and those whose
  payment is live or succeeded whatever the row says) plus the pack's price would pass the monthly
  cap: nothing is charged (`over_cap`), and billing raises an alert;
- otherwise one charge of the pack is started (`started`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

from ledger import constants
from ledger.billing.money_format import from_minor, to_minor
from ledger.billing.proration import minor_unit_decimals
from ledger.core import bounds
from ledger.core.errors import InvalidCommand


class RechargeStatus(StrEnum):
    """A recharge's state, as `recharges.status`."""

    STARTED = "started"  # the charge is (being) made; counts against the cap
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # declined or needing the cardholder: not retried
    OVER_CAP = "over_cap"  # the pack would have taken the month past the cap: not charged
    DISABLED = "disabled"  # auto-recharge was off (or never set) when the crossing was handled


# What a month's cap counts: charges made or being made, by the recharge's status or by its
# payment's (a recharge marked failed while its intent waits for authentication still counts: the
# gateway cannot cancel the intent, which may yet succeed).
COUNTED = (RechargeStatus.STARTED, RechargeStatus.SUCCEEDED)
COUNTED_PAYMENTS = ("creating", "processing", "requires_action", "succeeded")
# Why an open crossing is no longer charged (the recharge's detail).
RESOLVED = "resolved"
STALE = "stale"
# A crossing fired by a settings write (a new threshold, a re-enable) while the balance has stayed
# below since a crossing of the rule that was charged (or tried, or over the cap): not a new fall.
UNCHANGED = "no new crossing: only the settings changed while below the threshold"
# The recharge statuses that make a later settings-fired crossing of the same fall UNCHANGED.
HANDLED = ("started", "succeeded", "failed", "over_cap")


def monthly_cap(text: Decimal, currency: str, pack_amount: int) -> int:
    """The cap as written (money in the pack's currency) in minor units: more than 0, at most
    `auto_recharge_monthly_cap_max`, and at least one pack (`pack_amount`: a cap below it could
    never charge)."""
    cap_max = Decimal(constants.auto_recharge_monthly_cap_max)
    bounds.check_decimal(text, "monthlyCap", cap_max, decimals_max=minor_unit_decimals(currency))
    cap = to_minor(text, currency)
    if cap <= 0:
        raise InvalidCommand("monthlyCap must be more than 0")
    if cap < pack_amount:
        raise InvalidCommand(
            f"monthlyCap must be at least the pack's price ({from_minor(pack_amount, currency)} {currency})"
        )
    return cap


def month_of(at: datetime) -> date:
    """The calendar month (UTC) a recharge counts in: its first day."""
    utc = at.astimezone(UTC)
    return date(utc.year, utc.month, 1)


@dataclass(frozen=True, slots=True)
class Decision:
    status: RechargeStatus  # STARTED, OVER_CAP or DISABLED
    amount: int  # minor units to charge; 0 unless started
    detail: str


def decide(enabled: bool, amount: int | None, currency: str, cap: int, charged: int, closed: str = "") -> Decision:
    """What one crossing does: `amount` is the pack's price in minor units (None: the pack is no
    longer sold), `charged` what this month's recharges charged already, `closed` why the crossing
    is no longer open (RESOLVED, STALE; "" while it is)."""
    if not enabled:
        return Decision(RechargeStatus.DISABLED, 0, "auto-recharge is off")
    if closed:
        return Decision(RechargeStatus.DISABLED, 0, closed)
    if amount is None:
        return Decision(RechargeStatus.DISABLED, 0, "the pack is no longer sold")
    if charged + amount > cap:
        spent, limit = from_minor(charged, currency), from_minor(cap, currency)
        return Decision(RechargeStatus.OVER_CAP, 0, f"monthly cap reached: {spent} of {limit} {currency} charged")
    return Decision(RechargeStatus.STARTED, amount, "")
