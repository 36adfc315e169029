-- A usage-shaped batch (no new lots, no hold changed) journaled by one statement: the fence check
-- and the writes every such batch makes (its transactions, its lots' remaining, its postings).
-- A batch of one or two commands paid a round trip for each of them (a binary COPY, two), and
-- PostgreSQL a statement for each; now one call. The checks stay where they were: the statement-
-- level triggers on ledger_postings and ledger_transactions fire for these inserts as for any.
--
-- Returns the fenced-out partitions: none, and the batch is written (commit follows, by the
-- caller); some, and nothing was written. The share locks on the fences last until the commit,
-- so no takeover can slip in between (as ledger.store.fences.check).
CREATE FUNCTION ledger_journal_batch(
    fence_partitions integer[], fence_epochs bigint[],
    t_org uuid[], t_id uuid[], t_key text[], t_fingerprint text[], t_type text[], t_payload text[],
    t_status text[], t_result text[], t_balance bigint[], t_received timestamptz[],
    l_org uuid[], l_id uuid[], l_remaining bigint[],
    p_org uuid[], p_transaction uuid[], p_leg smallint[], p_account text[], p_lot uuid[], p_hold uuid[],
    p_amount bigint[]
) RETURNS integer[] LANGUAGE plpgsql AS $$
DECLARE
    held integer[];
BEGIN
    -- Row locks in partition order, so a commit and a takeover never deadlock.
    SELECT coalesce(array_agg(h.partition), '{}') INTO held FROM (
        SELECT p.partition FROM ledger_partitions p
        JOIN unnest(fence_partitions, fence_epochs) AS f (partition, epoch)
          ON p.partition = f.partition AND p.epoch = f.epoch
        ORDER BY p.partition
        FOR SHARE OF p
    ) AS h;
    IF cardinality(held) <> cardinality(fence_partitions) THEN
        RETURN ARRAY(SELECT unnest(fence_partitions) EXCEPT SELECT unnest(held));
    END IF;
    INSERT INTO ledger_transactions
        (org_id, id, idempotency_key, fingerprint, command_type, payload, status, result, balance_after, received_at)
    SELECT t.org_id, t.id, t.idempotency_key, t.fingerprint, t.command_type, t.payload::jsonb, t.status,
           t.result::jsonb, t.balance_after, t.received_at
    FROM unnest(t_org, t_id, t_key, t_fingerprint, t_type, t_payload, t_status, t_result, t_balance, t_received)
        AS t (org_id, id, idempotency_key, fingerprint, command_type, payload, status, result, balance_after,
              received_at);
    IF cardinality(l_org) > 0 THEN
        UPDATE credit_lots AS l SET remaining = u.remaining
        FROM unnest(l_org, l_id, l_remaining) AS u (org_id, id, remaining)
        WHERE l.org_id = u.org_id AND l.id = u.id;
    END IF;
    IF cardinality(p_org) > 0 THEN
        INSERT INTO ledger_postings (org_id, transaction_id, leg, account, lot_id, hold_id, amount)
        SELECT * FROM unnest(p_org, p_transaction, p_leg, p_account, p_lot, p_hold, p_amount);
    END IF;
    RETURN '{}';
END;
$$;
