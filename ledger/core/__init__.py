"""The pure ledger core: no I/O, no clocks, no randomness. Everything here is deterministic so the
same command applied to the same state always yields the same postings and result."""
