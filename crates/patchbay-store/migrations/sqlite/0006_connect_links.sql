-- One-time connect links: the SHA-256 of each link token, and once opened the
-- SHA-256 of the browser session it started, never either token.
CREATE TABLE connect_links (
    id                 TEXT PRIMARY KEY NOT NULL,
    token_hash         TEXT NOT NULL UNIQUE,
    user_id            TEXT NOT NULL,
    org_id             TEXT,
    connector          TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    opened_at          TEXT,
    session_hash       TEXT UNIQUE,
    session_expires_at TEXT
);
