-- OAuth: pending authorizations (only the SHA-256 of each state, never the
-- state itself or a PKCE verifier) and the refresh lease on connections.

CREATE TABLE oauth_states (
    state_hash   TEXT PRIMARY KEY NOT NULL,
    scope        TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    org_id       TEXT,
    connector    TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    label        TEXT,
    options      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    consumed_at  TEXT
);

CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);

ALTER TABLE connections ADD COLUMN refresh_lease_holder TEXT;
ALTER TABLE connections ADD COLUMN refresh_lease_until TEXT;
