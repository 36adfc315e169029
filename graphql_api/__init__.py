"""The GraphQL API (Strawberry on Starlette), its command-line entry and the demo."""
