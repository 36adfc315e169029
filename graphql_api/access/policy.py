"""The access policy, in one table: which principal may do what. Pure: no I/O.

Roles are an organization's members' (seed 001, ACT3; the values are the directory's,
`ledger.directory.roles`): Owner does everything in the org, including
members, keys and transfers; Billing looks after payment methods and invoices; Creator runs usage
against the credits; Viewer reads. The platform's own principals stand above: the admin (any org,
the catalog, partners) and a partner (everything an admin does, but only in its own
sub-organizations). Credits enter an org only from the platform side: a member cannot grant
their org credits, correct its ledger or change its rates.
"""

from __future__ import annotations

import enum

from ledger.directory.roles import Role


class Permission(enum.StrEnum):
    # Within one organization.
    READ = "read"
    """Balances, lots, holds, history, usage, teams, members, meters, estimates."""
    RECORD_USAGE = "record_usage"
    """Usage, holds and their captures, quotes."""
    MANAGE_CREDITS = "manage_credits"
    """Teams, transfers between pool and teams, team budgets, member caps."""
    MANAGE_MEMBERS = "manage_members"
    """Invitations, roles, removing members."""
    MANAGE_KEYS = "manage_keys"
    """The organization's API keys."""
    MANAGE_BILLING = "manage_billing"
    """Payment methods and invoices."""
    GRANT = "grant"
    """Grants, corrections, refunds, resets, expiry, spending policy, rates, limits: the platform's."""
    # Platform-wide, no organization.
    IDENTIFY = "identify"
    """Who am I: any authenticated caller."""
    READ_CATALOG = "read_catalog"
    CREATE_ORGANIZATION = "create_organization"
    ISSUE_USER_TOKENS = "issue_user_tokens"
    MANAGE_PLATFORM = "manage_platform"
    """Partners, partner and admin keys."""
    ACCEPT_INVITATION = "accept_invitation"
    """Join an organization with an invitation's token: users only, since joining needs a user."""


ORGANIZATION_PERMISSIONS = frozenset(
    {
        Permission.READ,
        Permission.RECORD_USAGE,
        Permission.MANAGE_CREDITS,
        Permission.MANAGE_MEMBERS,
        Permission.MANAGE_KEYS,
        Permission.MANAGE_BILLING,
        Permission.GRANT,
    }
)

# What any signed-in caller may do outside an organization.
USER_PLATFORM_PERMISSIONS = frozenset({Permission.IDENTIFY, Permission.READ_CATALOG})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Everything in the org but what only the platform does.
    Role.OWNER: (ORGANIZATION_PERMISSIONS - {Permission.GRANT}) | USER_PLATFORM_PERMISSIONS,
    Role.BILLING: frozenset({Permission.READ, Permission.MANAGE_BILLING}) | USER_PLATFORM_PERMISSIONS,
    Role.CREATOR: frozenset({Permission.READ, Permission.RECORD_USAGE}) | USER_PLATFORM_PERMISSIONS,
    Role.VIEWER: frozenset({Permission.READ}) | USER_PLATFORM_PERMISSIONS,
}

PARTNER_PERMISSIONS = (
    ORGANIZATION_PERMISSIONS
    | USER_PLATFORM_PERMISSIONS
    | {
        Permission.CREATE_ORGANIZATION,
        Permission.ISSUE_USER_TOKENS,
    }
)

# What only a user (a signed user token) may do: no API key is anyone who could join an org.
USER_ONLY_PERMISSIONS = frozenset({Permission.ACCEPT_INVITATION})

ADMIN_PERMISSIONS = frozenset(Permission) - USER_ONLY_PERMISSIONS
