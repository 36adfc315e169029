-- Alerts: their definitions (and whether each is triggered) are ledger settings of the org's actor;
-- each crossing of a threshold is an event, journaled in the batch of the command that caused it.
ALTER TABLE ledger_settings DROP CONSTRAINT ledger_settings_kind_check;
ALTER TABLE ledger_settings ADD CONSTRAINT ledger_settings_kind_check
    CHECK (kind IN ('policy', 'budget', 'member', 'rate', 'priority', 'alert'));

-- An event carries the alert as it was when it fired, so the history survives the alert's removal.
CREATE TABLE alert_events (
    org_id          uuid        NOT NULL,
    id              uuid        NOT NULL,
    alert_id        uuid        NOT NULL,
    transaction_id  uuid        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('triggered', 'resolved')),
    kind            text        NOT NULL CHECK (kind IN ('low_balance', 'high_spend')),
    name            text        NOT NULL,
    threshold       bigint      NOT NULL CHECK (threshold >= 0),
    value           bigint      NOT NULL,
    team_id         uuid,
    user_id         text,
    at              timestamptz NOT NULL,
    -- The batch's transaction time, as ledger_transactions.committed_at: it only grows per
    -- organization (its batches are written one after another), so readers page on it.
    committed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);
CREATE INDEX alert_events_history ON alert_events (org_id, committed_at, id);

CREATE TRIGGER alert_events_append_only
    BEFORE UPDATE OR DELETE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
