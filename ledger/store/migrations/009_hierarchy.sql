-- The org -> team -> user hierarchy: invitations into an organization, and its member and kit limits.

-- Null is unlimited. Set by the platform now (setOrganizationLimits), by plans later. A limit below
-- the current count refuses new joins and keeps who is there.
ALTER TABLE organizations
    ADD COLUMN member_limit int CHECK (member_limit >= 0),
    ADD COLUMN kit_limit    int CHECK (kit_limit >= 0);

-- The token is shown once and never stored: only its SHA-256 (it is 256 bits of HMAC output, so a
-- fast hash is enough), to find the invitation when it is accepted.
CREATE TABLE invitations (
    id               uuid        PRIMARY KEY,
    org_id           uuid        NOT NULL REFERENCES organizations (id),
    email            text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    role             text        NOT NULL CHECK (role IN ('owner', 'billing', 'creator', 'viewer')),
    team_id          uuid,
    kit              text        CHECK (length(kit) BETWEEN 1 AND 100),
    token_hash       bytea       NOT NULL UNIQUE,
    idempotency_key  text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    -- Who invited: "user:<user id>" or "api_key:<key id>".
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    accepted_at      timestamptz,
    accepted_by      text,
    revoked_at       timestamptz,
    UNIQUE (org_id, idempotency_key),
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id),
    CHECK ((accepted_at IS NULL) = (accepted_by IS NULL)),
    CHECK (expires_at > created_at)
);
CREATE INDEX invitations_org ON invitations (org_id, created_at, id);
