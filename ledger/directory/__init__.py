"""The directory: who and what the ledger serves, written synchronously beside it.

Organizations, their teams and members (with roles, teams, kits and the org's member and kit
limits), invitations, API keys and partners are facts about the ledger's customers, not movements of
credits. They are written straight to PostgreSQL by the request that asks, in its own short
transaction, and read back at once: no double entry, no journal, no partition actor. They do not go
through the actors because nothing in them is a balance that concurrent commands must see in one
order; the few rules that need a serial order (an organization keeps an Owner, its member and kit
limits) take the organization's members lock (`members.lock_members`) instead, which the ledger
worker never contends for. The worker only reads this data (which organizations and teams exist).

Each module keeps its queries as constants next to the one function that runs them (`$n`
parameters only) and returns frozen dataclasses; the rules are plain functions raising the errors of
`ledger.core.errors`. The API converts its inputs and calls these; it decides who may call them.

    roles.py          the member roles (the API's policy is built on them)
    organizations.py  organizations: created once, idempotent by id
    teams.py          an organization's teams, idempotent by id
    partners.py       resellers owning sub-organizations, idempotent by id
    members.py        memberships, limits, and the transactions that lock an org's members
    invitations.py    invitation tokens, idempotent by key, accepted once
    api_keys.py       API keys: shown once, stored as a hash beside a visible prefix
"""
