"""The credit ledger: a pure core (`ledger.core`), its PostgreSQL store (`ledger.store`), the
per-organization actors on Redis Streams (`ledger.stream`), and the runtime that starts servers
(`ledger.runtime`)."""
