-- OAuth hardening: a random PKCE verifier kept with its state (cleared when the
-- state is consumed), the hash of the cookie binding a flow to the browser that
-- opened its begin URL, a fencing token on the refresh lease, and the owner's
-- opt-in to write operations.

ALTER TABLE oauth_states ADD COLUMN pkce_verifier TEXT;
ALTER TABLE oauth_states ADD COLUMN binding_hash TEXT;
ALTER TABLE oauth_states ADD COLUMN allow_writes BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE oauth_states ADD COLUMN begun_at TIMESTAMPTZ;

ALTER TABLE connections ADD COLUMN refresh_lease_fence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN allow_writes BOOLEAN NOT NULL DEFAULT FALSE;
