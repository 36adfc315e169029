-- Reading the journal back: an organization's transactions by time, for the history connection
-- (keyset on committed_at, received_at, id, newest first) and the usage report (a committed_at
-- range). A batch's transactions share committed_at (its one PostgreSQL transaction); received_at
-- then id order them within it.
CREATE INDEX ledger_transactions_history ON ledger_transactions (org_id, committed_at, received_at, id);
