-- Who may do what: partners and their sub-organizations, members with roles, API keys (stored as
-- hashes beside a visible prefix), and the service's own secrets shared by every API process.

CREATE TABLE partners (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A partner's sub-organizations; null for the platform's own customers.
ALTER TABLE organizations ADD COLUMN partner_id uuid REFERENCES partners (id);
CREATE INDEX organizations_partner ON organizations (partner_id, created_at, id) WHERE partner_id IS NOT NULL;

-- Users are the integrator's own ids (the `sub` of a signed user token); a membership gives one a
-- role in an organization.
CREATE TABLE members (
    org_id      uuid        NOT NULL REFERENCES organizations (id),
    user_id     text        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
    role        text        NOT NULL CHECK (role IN ('owner', 'billing', 'creator', 'viewer')),
    email       text,
    team_id     uuid,
    kit         text        CHECK (length(kit) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id),
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id)
);
CREATE INDEX members_user ON members (user_id);

-- The secret is never stored: only SHA-256 of the whole key (a 256-bit random string, so a fast
-- hash is enough) and its first characters, to find it and to show it in lists.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY,
    prefix        text        NOT NULL UNIQUE,
    secret_hash   bytea       NOT NULL,
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    scope         text        NOT NULL CHECK (scope IN ('organization', 'partner', 'admin')),
    org_id        uuid        REFERENCES organizations (id),
    partner_id    uuid        REFERENCES partners (id),
    role          text        CHECK (role IN ('owner', 'billing', 'creator', 'viewer')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK ((scope = 'organization') = (org_id IS NOT NULL AND role IS NOT NULL)),
    CHECK ((scope = 'partner') = (partner_id IS NOT NULL))
);
CREATE INDEX api_keys_org ON api_keys (org_id) WHERE org_id IS NOT NULL;

CREATE TABLE service_secrets (
    name        text        PRIMARY KEY,
    value       bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
