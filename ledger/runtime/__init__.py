"""Process-level concerns shared by the API, the ledger worker and the jobs: settings, embedded
servers and connection setup."""
