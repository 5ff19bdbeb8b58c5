-- Connection records, API keys and alerts. No column holds a secret:
-- connections carry only `secret_ref`, API keys only their SHA-256 hash.

CREATE TABLE connections (
    id                 TEXT PRIMARY KEY NOT NULL,
    scope              TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    org_id             TEXT,
    connector          TEXT NOT NULL,
    label              TEXT NOT NULL,
    metadata           TEXT NOT NULL,
    secret_ref         TEXT NOT NULL,
    status             TEXT NOT NULL
        CHECK (status IN ('active', 'degraded', 'failed', 'needs_reauth')),
    webhook_token_hash TEXT,
    routing_key        TEXT,
    last_report        TEXT,
    created_at         TEXT NOT NULL,
    validated_at       TEXT
);

CREATE INDEX connections_by_scope ON connections (scope);
CREATE INDEX connections_by_connector_user ON connections (connector, user_id);
CREATE INDEX connections_by_routing_key ON connections (connector, routing_key);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    org_id     TEXT,
    created_at TEXT NOT NULL
);

-- Alerts outlive their connection (history), so there is deliberately no
-- foreign key to connections.
CREATE TABLE alerts (
    cursor        INTEGER PRIMARY KEY AUTOINCREMENT,
    scope         TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    title         TEXT NOT NULL,
    status        TEXT NOT NULL,
    severity      TEXT NOT NULL,
    service       TEXT,
    started_at    TEXT,
    ended_at      TEXT,
    url           TEXT,
    labels        TEXT NOT NULL,
    tags          TEXT NOT NULL,
    raw           TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    UNIQUE (connection_id, dedup_key)
);

CREATE INDEX alerts_by_scope_cursor ON alerts (scope, cursor);
