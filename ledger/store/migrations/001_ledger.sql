-- The ledger's first tables. Every tenant table carries org_id first in its keys so the schema can
-- be distributed by org_id (Citus) without change.

CREATE TABLE organizations (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The catalog-wide rate card: credits per native unit of each product. Versioned per-org rate
-- cards replace it as the pricing source in a later migration.
CREATE TABLE products (
    key               text    PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 100),
    name              text    NOT NULL,
    unit              text    NOT NULL,
    credits_per_unit  numeric NOT NULL CHECK (credits_per_unit >= 0)
);

-- One row per command the ledger decided, accepted or rejected: the idempotency record and the
-- journal header at once.
CREATE TABLE ledger_transactions (
    org_id           uuid        NOT NULL REFERENCES organizations (id),
    id               uuid        NOT NULL,
    idempotency_key  text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    fingerprint      text        NOT NULL,
    command_type     text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL CHECK (status IN ('accepted', 'rejected')),
    result           jsonb       NOT NULL,
    balance_after    bigint      NOT NULL,
    received_at      timestamptz NOT NULL,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT ledger_transactions_idempotency_key UNIQUE (org_id, idempotency_key)
);

CREATE TABLE credit_lots (
    org_id          uuid        NOT NULL REFERENCES organizations (id),
    id              uuid        NOT NULL,
    transaction_id  uuid        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('base', 'bonus', 'purchased', 'rollover', 'seat', 'promotional', 'adjustment')),
    amount          bigint      NOT NULL CHECK (amount > 0),
    remaining       bigint      NOT NULL,
    priority        integer     NOT NULL,
    effective_at    timestamptz NOT NULL,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, transaction_id) REFERENCES ledger_transactions (org_id, id),
    CONSTRAINT credit_lots_remaining_in_range CHECK (remaining BETWEEN 0 AND amount),
    CONSTRAINT credit_lots_expiry_after_start CHECK (expires_at IS NULL OR expires_at > effective_at)
);

-- Double entry: signed amounts in micro-credits; the legs of one transaction sum to zero.
CREATE TABLE ledger_postings (
    org_id          uuid     NOT NULL,
    transaction_id  uuid     NOT NULL,
    leg             smallint NOT NULL,
    account         text     NOT NULL,
    lot_id          uuid,
    amount          bigint   NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (org_id, transaction_id, leg),
    FOREIGN KEY (org_id, transaction_id) REFERENCES ledger_transactions (org_id, id),
    FOREIGN KEY (org_id, lot_id) REFERENCES credit_lots (org_id, id),
    CONSTRAINT ledger_postings_lot_account CHECK ((account = 'lot') = (lot_id IS NOT NULL))
);
CREATE INDEX ledger_postings_lot ON ledger_postings (org_id, lot_id) WHERE lot_id IS NOT NULL;

-- The database's own check of the zero-sum rule. All legs of a transaction are written by one
-- statement, so a statement-level check over the new rows is complete and costs one pass.
CREATE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced uuid;
BEGIN
    SELECT transaction_id INTO unbalanced
    FROM new_postings
    GROUP BY org_id, transaction_id
    HAVING sum(amount) <> 0
    LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'postings of transaction % do not sum to zero', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_postings_balanced';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_postings_balanced
    AFTER INSERT ON ledger_postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_balanced();

-- The journal is append-only: corrections are new transactions, never edits.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'ledger_append_only';
END;
$$;
CREATE TRIGGER ledger_transactions_append_only
    BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_postings_append_only
    BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
