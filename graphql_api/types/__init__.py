"""The GraphQL object types, one module per domain; each converts its domain object in one place
(`from_domain`). `organization` sits on top and reaches the others."""
