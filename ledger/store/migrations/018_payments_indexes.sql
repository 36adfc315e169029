-- Payments' own scans and the inbox's claims (issue 15 review).
--
-- The inbox: an applier claims an event for a while and commits (`ledger.payments.inbox`), instead of
-- holding the row's transaction across Stripe and the ledger; failed attempts are counted so that an
-- event that keeps failing is tried after the others.
ALTER TABLE stripe_events ADD COLUMN claimed_until timestamptz;
ALTER TABLE stripe_events ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- A paid grant the ledger refused: counted, so it is re-sent a bounded number of times (then alerted).
ALTER TABLE payments ADD COLUMN grant_attempts integer NOT NULL DEFAULT 0 CHECK (grant_attempts >= 0);

-- The reconciliation's scan of succeeded packs and recharges whose grant is not recorded (`store._UNGRANTED`).
CREATE INDEX payments_ungranted ON payments (created_at)
    WHERE status = 'succeeded' AND lot_id IS NULL AND purpose IN ('pack', 'recharge');
-- (`store._UNSETTLED` reads 016's payments_unsettled, on the same statuses.)

-- The events poll drains a backlog larger than one run's cap page by page: the row 'events:backlog'
-- keeps the listing's upper bound (`created`) and the last event id read (`after_id`).
ALTER TABLE stripe_cursors ADD COLUMN after_id text CHECK (length(after_id) BETWEEN 1 AND 255);
