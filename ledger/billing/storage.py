"""Which plan would hold an organization's storage (seed 001: "the answer says which plan would
fit"). Pure: the catalog is read by the caller."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ledger.billing.catalog import Catalog, Plan


def fitting_plan(catalog: Catalog, at: datetime, gigabytes: Decimal) -> Plan | None:
    """The lowest-ranked plan in force at `at` whose storage quota holds `gigabytes`. Only plans
    that state a quota and allow usage count: a plan without a quota says nothing about storage
    (another product line's plan, or a custom contract), and one without generation (Archive) is
    no answer to running out of room."""
    holding = [
        plan
        for plan in catalog.plans_at(at)
        if plan.generation and plan.storage_quota_gb is not None and plan.storage_quota_gb >= gigabytes
    ]
    return holding[0] if holding else None  # plans_at is by rank, then key
