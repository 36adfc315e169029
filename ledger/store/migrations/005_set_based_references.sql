-- The journal's references, checked once per statement instead of once per row.
--
-- A foreign key checks each new row with its own lookup and row lock. For the journal, written a
-- thousand transactions and two thousand postings per batch, those checks cost twenty times the
-- inserts themselves (and far more when every row points at one hot organization or lot). The same
-- guarantee comes from one anti-join per statement over the new rows. What the foreign keys also
-- gave, refusing to delete a referenced row, the journal does not need: organizations, lots and
-- holds are never deleted, and the journal itself is append-only.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname, conrelid::regclass AS tbl FROM pg_constraint
        WHERE contype = 'f'
          AND (conrelid = 'ledger_postings'::regclass
               OR (conrelid = 'ledger_transactions'::regclass AND confrelid = 'organizations'::regclass))
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad uuid;
BEGIN
    SELECT transaction_id INTO bad
    FROM new_postings
    GROUP BY org_id, transaction_id
    HAVING sum(amount) <> 0
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'postings of transaction % do not sum to zero', bad
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_postings_balanced';
    END IF;
    SELECT p.transaction_id INTO bad FROM new_postings p
    WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.org_id = p.org_id AND t.id = p.transaction_id)
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'postings of unknown transaction %', bad
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_postings_transaction';
    END IF;
    SELECT p.lot_id INTO bad FROM new_postings p
    WHERE p.lot_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM credit_lots l WHERE l.org_id = p.org_id AND l.id = p.lot_id)
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'posting to unknown lot %', bad
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_postings_lot';
    END IF;
    SELECT p.hold_id INTO bad FROM new_postings p
    WHERE p.hold_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM credit_holds h WHERE h.org_id = p.org_id AND h.id = p.hold_id)
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'posting to unknown hold %', bad
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_postings_hold';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION ledger_transactions_organizations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad uuid;
BEGIN
    SELECT t.org_id INTO bad FROM new_transactions t
    WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = t.org_id)
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'transaction of unknown organization %', bad
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_transactions_organization';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_transactions_organizations
    AFTER INSERT ON ledger_transactions
    REFERENCING NEW TABLE AS new_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_transactions_organizations();
