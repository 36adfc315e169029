"""What an alert watches, or what billing raised: the kinds an alert event can carry."""

from __future__ import annotations

from enum import StrEnum


class AlertKind(StrEnum):
    """What an alert watches (seed 003: "almost out", "depleted", "a user spent over 1,000")."""

    LOW_BALANCE = "low_balance"  # available credits (the org's, or a team's own) at or below the threshold
    HIGH_SPEND = "high_spend"  # spend in the current period (org, team or user) at or above the threshold
    # Built in, never set by SetAlert: the storage in use over the plan's quota (`ledger.core.access`).
    STORAGE_OVER_QUOTA = "storage_over_quota"
    # Set by billing's setAutoRecharge only (its id is `auto_recharge_alert_id`): judged as LOW_BALANCE,
    # its TRIGGERED event starts one recharge (`ledger.payments.auto_recharge`), once per crossing.
    AUTO_RECHARGE = "auto_recharge"
    # Raised by billing through RaiseBillingAlert (`ledger.core.billing_alerts`), never set as a rule.
    PAYMENT_FAILED = "payment_failed"
    AUTO_RECHARGE_FAILED = "auto_recharge_failed"
    RENEWAL_NOTICE = "renewal_notice"
    SUSPENDED = "suspended"


# The kinds billing raises by command; no rule watches them.
BILLING_ALERT_KINDS = frozenset(
    {AlertKind.PAYMENT_FAILED, AlertKind.AUTO_RECHARGE_FAILED, AlertKind.RENEWAL_NOTICE, AlertKind.SUSPENDED}
)
