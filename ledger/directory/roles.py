"""The roles a member can have in an organization (seed 001, ACT3).

They are directory data (a member's row, an organization key's row, an invitation's); what each
role may do is the API's policy (`graphql_api.access.policy`), built on these values.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    OWNER = "owner"
    BILLING = "billing"
    CREATOR = "creator"
    VIEWER = "viewer"
