"""The GraphQL of payments and invoices: one module (or prefix) per domain, each with its query and
mutation mixins, merged into the root types by `graphql_api.queries` and `graphql_api.mutations`."""
