"""PostgreSQL persistence of the ledger: migrations, and the queries of the code that owns them."""
