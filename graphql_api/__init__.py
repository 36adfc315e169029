"""The GraphQL API (Strawberry on Starlette), grouped by domain; the process shell is in `shell/`."""
