"""Who is calling and what they may do: principals, roles, API keys, user tokens, and the one
authorization check every field goes through."""
