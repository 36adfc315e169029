"""The process shell: `credit-ledger`'s command line (`cli`), the supervisor that runs and restarts
`serve`'s child processes (`supervisor`) and the demo client (`demo`).

It is not GraphQL. It sits above `graphql_api`, `ledger` and `jobs` because it starts all three:
it reads the settings, resolves or starts the servers, applies migrations and then runs one role
(the API, a ledger worker, the jobs worker) or supervises them all. Nothing below imports it; it
lives inside `graphql_api/` only because the top level is fixed (`graphql_api`, `ledger`, `jobs`).
"""
