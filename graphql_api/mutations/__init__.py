"""The root mutation: one mixin class per domain, merged in the schema's order."""

from __future__ import annotations

from strawberry.tools import merge_types

from graphql_api.billing.invoices import InvoiceMutations
from graphql_api.billing.payments import PaymentMutations
from graphql_api.billing.recharge import RechargeMutations
from graphql_api.mutations.access import AccessMutations
from graphql_api.mutations.alerts import AlertMutations
from graphql_api.mutations.catalog import CatalogMutations
from graphql_api.mutations.credits import CreditMutations
from graphql_api.mutations.members import MemberMutations
from graphql_api.mutations.organizations import OrganizationMutations
from graphql_api.mutations.rules import RuleMutations
from graphql_api.mutations.storage import StorageMutations
from graphql_api.mutations.subscriptions import SubscriptionMutations

Mutation = merge_types(
    "Mutation",
    (
        OrganizationMutations,
        CreditMutations,
        RuleMutations,
        AlertMutations,
        StorageMutations,
        AccessMutations,
        MemberMutations,
        CatalogMutations,
        SubscriptionMutations,
        PaymentMutations,
        InvoiceMutations,
        RechargeMutations,
    ),
)
