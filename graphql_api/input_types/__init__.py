"""The GraphQL input types, one module per domain of mutations."""
