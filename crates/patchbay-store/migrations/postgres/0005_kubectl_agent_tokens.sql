-- Tokens of in-cluster kubectl agents: the SHA-256 of each token and a display
-- prefix, never the token. A token is bound to the connection (the cluster) it was
-- issued for; revoked tokens stay, so an agent still presenting one is told
-- "Token revoked" rather than "Invalid token".
CREATE TABLE kubectl_agent_tokens (
    token_hash        TEXT PRIMARY KEY NOT NULL,
    connection_id     TEXT NOT NULL,
    cluster_name      TEXT NOT NULL,
    token_prefix      TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'expired')),
    created_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ,
    last_connected_at TIMESTAMPTZ,
    last_heartbeat    TIMESTAMPTZ,
    agent_version     TEXT,
    capabilities      JSONB
);

CREATE INDEX kubectl_agent_tokens_by_connection ON kubectl_agent_tokens (connection_id);
