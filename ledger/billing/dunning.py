"""The dunning schedule, as a pure function of the first failure (seed 000: "3-attempt retry
cycle with account suspension after 7 days").

A failed renewal charge (attempt 1) is retried on the days `constants.dunning_retry_days` after
the first failure (1, 3 and 5: attempts 2, 3 and 4); `constants.dunning_suspend_days` (7) after
the first failure an invoice still unpaid suspends its organization. Times count from the first
failure, never from the previous retry, so a late run does not push the schedule back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ledger import constants

RETRY_DAYS: tuple[int, ...] = constants.dunning_retry_days
SUSPEND_DAYS: int = constants.dunning_suspend_days


def next_attempt_at(first_failed_at: datetime, attempts: int) -> datetime | None:
    """When attempt `attempts + 1` is due after `attempts` charges failed (None: no more retries)."""
    if attempts < 1:
        raise ValueError("dunning starts at the first failed attempt")
    retry = attempts - 1
    if retry >= len(RETRY_DAYS):
        return None
    return first_failed_at + timedelta(days=RETRY_DAYS[retry])
