-- Which host replica holds the live socket of each cluster's kubectl agent, so
-- any replica can relay a query to it. One row per cluster; a replica that takes
-- it over raises the epoch, and a replica removes the row only with its own epoch.
CREATE TABLE kubectl_agent_leases (
    cluster_id   TEXT PRIMARY KEY NOT NULL,
    replica_id   TEXT NOT NULL,
    epoch        BIGINT NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- Commands and answers relayed between replicas. NOTIFY payloads are limited to
-- 8000 bytes, so the message is stored here and only its id is notified; the
-- receiver deletes it as it reads it.
CREATE TABLE kubectl_relay_messages (
    id         BIGSERIAL PRIMARY KEY,
    payload    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
