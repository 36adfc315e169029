"""Subscriptions as services: a plan over time for one organization, its seats, plan changes and the
charges they owe, written in PostgreSQL transactions that lock the subscription's row; every effect
on credits or on what a debit may use reaches the organization's actor as a ledger command whose
idempotency key derives from the billing fact.

    store.py         the SQL: subscriptions, plan segments, seat changes, charges
    service.py       subscribe, cancel, resume; the plan's limits and access
    seats.py         a seat quantity change, prorated
    plan_changes.py  upgrades at once, downgrades (and Archive) at the period's end
    kits.py          kits counted against the plan
    plan_effects.py  what a change grants or takes back, the plan's directory limits; sending them
    checks.py        the checks every change makes first, and the ids its facts derive from
    effects.py       commands sent to an org's actor and their results awaited
    periods.py       the period facts' rows and each subscription's next due time
    turnover.py      a period's turnover, exactly once per (subscription, period, reason)
"""
