"""Mutations on an organization's subscription: subscribe, change plan (and its preview), seats,
cancel and resume. Owner and Billing roles."""

from __future__ import annotations

import strawberry


@strawberry.type
class SubscriptionMutations:
    pass
