-- Stores one batch of alerts in a single statement, so a batch costs one round trip
-- and one implicit transaction instead of five (begin, lock, insert, notify, commit),
-- and the lock that orders batches across replicas is held for no network round trip.
--
-- Readers page with `cursor > after`, so cursors must become visible in order: were
-- cursor 12 visible before 11 commits, a reader would move past 11 and never see it.
-- The transaction-level advisory lock serialises alert batches across every replica:
-- a batch draws its cursors and commits before the next draws any, and PostgreSQL
-- releases the lock only once the commit is visible. Readers never take it, and the
-- key includes the table's oid so Patchbay instances in other schemas do not contend.
--
-- Rows are inserted in input order (`ORDER BY position`), so cursors follow it and,
-- for a `(connection_id, dedup_key)` repeated inside the batch, the first copy wins.
-- Returns the keys of the rows inserted; if there are any, every replica's listener
-- on `channel` is notified once the commit is visible.
CREATE FUNCTION insert_alert_batch(
    lock_space   INTEGER,
    channel      TEXT,
    scopes       TEXT[],
    connections  TEXT[],
    sources      TEXT[],
    kinds        TEXT[],
    external_ids TEXT[],
    dedup_keys   TEXT[],
    titles       TEXT[],
    statuses     TEXT[],
    severities   TEXT[],
    services     TEXT[],
    starts       TIMESTAMPTZ[],
    ends         TIMESTAMPTZ[],
    urls         TEXT[],
    label_sets   JSONB[],
    tag_sets     JSONB[],
    raws         JSONB[]
) RETURNS TABLE (stored_connection_id TEXT, stored_dedup_key TEXT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(lock_space, 'alerts'::regclass::oid::int);
    RETURN QUERY
        INSERT INTO alerts (scope, connection_id, source, kind, external_id, dedup_key,
            title, status, severity, service, started_at, ended_at, url, labels, tags, raw,
            received_at)
        SELECT batch.scope, batch.connection_id, batch.source, batch.kind,
            batch.external_id, batch.dedup_key, batch.title, batch.status, batch.severity,
            batch.service, batch.started_at, batch.ended_at, batch.url, batch.labels,
            batch.tags, batch.raw, statement_timestamp()
        FROM UNNEST(scopes, connections, sources, kinds, external_ids, dedup_keys, titles,
            statuses, severities, services, starts, ends, urls, label_sets, tag_sets, raws)
            WITH ORDINALITY AS batch (scope, connection_id, source, kind, external_id,
            dedup_key, title, status, severity, service, started_at, ended_at, url, labels,
            tags, raw, position)
        ORDER BY batch.position
        ON CONFLICT (connection_id, dedup_key) DO NOTHING
        RETURNING alerts.connection_id, alerts.dedup_key;
    IF FOUND THEN
        PERFORM pg_notify(channel, '');
    END IF;
END
$$;
