"""The root subscription: live meters, then the streams read from the journal."""

from __future__ import annotations

from strawberry.tools import merge_types

from graphql_api.subscriptions.journal import JournalSubscriptions
from graphql_api.subscriptions.meters import MeterSubscriptions

Subscription = merge_types("Subscription", (MeterSubscriptions, JournalSubscriptions))
