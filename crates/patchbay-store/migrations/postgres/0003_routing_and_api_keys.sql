-- One connection per routing key (a Slack workspace) and connector, enforced here,
-- so concurrent installs cannot both succeed; API key prefixes and last use; secret
-- references moved to a new layout whose old secret still needs deleting.

-- Before this index, events went to the oldest connection of a routing key; newer
-- ones never received any. They lose their routing key and stay otherwise intact,
-- so events keep reaching the connection they reached before.
UPDATE connections SET routing_key = NULL
WHERE routing_key IS NOT NULL AND EXISTS (
    SELECT 1 FROM connections AS older
    WHERE older.connector = connections.connector
      AND older.routing_key = connections.routing_key
      AND (older.created_at, older.insertion_order)
          < (connections.created_at, connections.insertion_order)
);

DROP INDEX connections_by_routing_key;
CREATE UNIQUE INDEX connections_by_routing_key ON connections (connector, routing_key);

ALTER TABLE connections ADD COLUMN retired_secret_ref TEXT;

-- The first characters of the key, shown in listings and used to revoke it; too
-- short to authenticate. NULL for keys created before this migration.
ALTER TABLE api_keys ADD COLUMN prefix TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ;
CREATE UNIQUE INDEX api_keys_by_prefix ON api_keys (prefix);
