-- The full credit model: teams, lot terms, holds, quotes, spending rules, the org's own rates,
-- spend counted against budgets and caps, and the credit line.

CREATE TABLE teams (
    org_id      uuid        NOT NULL REFERENCES organizations (id),
    id          uuid        NOT NULL,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);

-- What the org has drawn on its credit limit; the ledger worker is its only writer.
ALTER TABLE organizations ADD COLUMN credit_drawn bigint NOT NULL DEFAULT 0 CHECK (credit_drawn >= 0);

-- The catalog's rate also knows the overage price and the provider's cost per unit.
ALTER TABLE products
    ADD COLUMN overage_price_per_unit numeric CHECK (overage_price_per_unit >= 0),
    ADD COLUMN cost_per_unit          numeric CHECK (cost_per_unit >= 0),
    ADD COLUMN currency               text    NOT NULL DEFAULT 'USD';

ALTER TABLE credit_lots
    ADD COLUMN team_id            uuid,
    ADD COLUMN products           text[],
    ADD COLUMN rollover           jsonb,
    ADD COLUMN source             text    NOT NULL DEFAULT 'manual'
        CHECK (source IN ('subscription', 'payment', 'promotion', 'referral', 'manual', 'rollover', 'transfer')),
    ADD COLUMN refundable         boolean NOT NULL DEFAULT false,
    ADD COLUMN revenue_treatment  text    NOT NULL DEFAULT 'deferred'
        CHECK (revenue_treatment IN ('deferred', 'immediate', 'marketing')),
    ADD COLUMN price_per_credit   numeric CHECK (price_per_credit >= 0),
    ADD COLUMN currency           text,
    ADD COLUMN parent_id          uuid,
    ADD FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id);
CREATE INDEX credit_lots_open ON credit_lots (org_id) WHERE remaining > 0;

ALTER TABLE ledger_postings
    ADD COLUMN hold_id uuid,
    ADD CONSTRAINT ledger_postings_hold_account CHECK ((account = 'hold') = (hold_id IS NOT NULL));

CREATE TABLE credit_holds (
    org_id          uuid        NOT NULL REFERENCES organizations (id),
    id              uuid        NOT NULL,
    transaction_id  uuid        NOT NULL,
    amount          bigint      NOT NULL CHECK (amount > 0),
    reserved        bigint      NOT NULL CHECK (reserved BETWEEN 0 AND amount),
    captured        bigint      NOT NULL CHECK (captured >= 0),
    cap             bigint      CHECK (cap >= amount),
    status          text        NOT NULL CHECK (status IN ('open', 'finished', 'released', 'expired')),
    product         text,
    team_id         uuid,
    user_id         text,
    run_id          text,
    expires_at      timestamptz NOT NULL,
    placed_at       timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, transaction_id) REFERENCES ledger_transactions (org_id, id),
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id),
    CONSTRAINT credit_holds_closed_reserve_nothing CHECK (status = 'open' OR reserved = 0)
);
CREATE INDEX credit_holds_open ON credit_holds (org_id) WHERE status = 'open';
CREATE INDEX credit_holds_expiring ON credit_holds (expires_at) WHERE status = 'open';
ALTER TABLE ledger_postings ADD FOREIGN KEY (org_id, hold_id) REFERENCES credit_holds (org_id, id);

CREATE TABLE credit_quotes (
    org_id            uuid        NOT NULL REFERENCES organizations (id),
    id                uuid        NOT NULL,
    transaction_id    uuid        NOT NULL,
    product           text        NOT NULL,
    quantity          numeric     NOT NULL CHECK (quantity > 0),
    credits_per_unit  numeric     NOT NULL,
    amount            bigint      NOT NULL,
    expires_at        timestamptz NOT NULL,
    team_id           uuid,
    user_id           text,
    used_by           uuid,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, transaction_id) REFERENCES ledger_transactions (org_id, id)
);

-- Spending rules and the org's rate versions, each the latest value its command set.
-- kind: 'policy' (key: product or '*'), 'budget' (key: team id), 'member' (key: user id),
-- 'rate' (key: product '@' effective time), 'priority' (key: lot kind; value: the priority). The journal holds the commands that set them.
CREATE TABLE ledger_settings (
    org_id      uuid        NOT NULL REFERENCES organizations (id),
    kind        text        NOT NULL CHECK (kind IN ('policy', 'budget', 'member', 'rate', 'priority')),
    key         text        NOT NULL,
    value       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, kind, key)
);

-- Spend counted against team budgets and user caps, per calendar period.
CREATE TABLE spend_counters (
    org_id        uuid        NOT NULL REFERENCES organizations (id),
    scope         text        NOT NULL,
    period_start  timestamptz NOT NULL,
    spent         bigint      NOT NULL CHECK (spent >= 0),
    PRIMARY KEY (org_id, scope, period_start)
);

-- Finding a usage debit's postings when it is credited back.
CREATE INDEX ledger_transactions_credit_backs ON ledger_transactions (org_id, ((payload->>'transaction_id')))
    WHERE command_type = 'credit_back' AND status = 'accepted';
