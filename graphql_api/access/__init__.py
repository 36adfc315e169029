"""Who is calling and what they may do: authentication (API keys and signed user tokens, turned
into a principal) and authorization (the policy and the one check every field goes through).

What keys, members and partners exist is the directory's (`ledger.directory`): this package calls
it and keeps none of its rules."""
