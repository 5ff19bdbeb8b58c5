//! A [`RecordStore`] on PostgreSQL, for deployments that run several Patchbay replicas.
//!
//! Same tables and semantics as [`SqliteRecordStore`](crate::SqliteRecordStore): every
//! tenant-scoped query filters on `scope = Tenant::scope_key()`. JSON columns are `jsonb` and
//! times are `timestamptz`, which keeps microseconds: finer digits are truncated on write.
//! PostgreSQL cannot store U+0000 in text: alerts get U+FFFD instead, connection fields
//! holding it are refused. The pool reconnects by itself, so a store keeps working after
//! the database comes back.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_core::{
    Error, ErrorKind, NormalizedAlert, Result, SecretString, Tenant, ValidationReport,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;

use crate::agent_tokens::{AgentActivity, AgentTokenRecord, AgentTokenStatus};
use crate::connect_links::{ConnectLinkRecord, OpenedLink, CONNECT_LINK_RETENTION};
use crate::records::{
    new_in_batch, routing_key_taken, AlertPage, ApiKeyRecord, BegunState, ConnectionRecord,
    ConnectionStatus, ConsumedState, NewAlert, OutcomeUnknown, PendingAuthorization, RecordStore,
    RefreshLease, StoredAlert, API_KEY_USE_PRECISION, OAUTH_STATE_RETENTION,
};
use crate::secrets::SecretRef;
use crate::sqlite::MAX_ALERT_PAGE;

/// How long an operation waits for a pooled connection, including opening a new one.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_CONNECTIONS: u32 = 10;

/// First half of the advisory lock key that orders alert batches (`PBAY` in ASCII).
const ALERT_ORDER_LOCK_SPACE: i32 = 0x5042_4159;

/// First half of the advisory lock keys that serialise installs of one routing key (`PBRK`).
const ROUTING_KEY_LOCK_SPACE: i32 = 0x5042_524B;

const CONNECTION_COLUMNS: &str = "id, user_id, org_id, connector, label, metadata, secret_ref, \
     status, webhook_token_hash, routing_key, allow_writes, last_report, created_at, validated_at";

const ALERT_COLUMNS: &str = "cursor, connection_id, source, kind, external_id, dedup_key, title, \
     status, severity, service, started_at, ended_at, url, labels, tags, raw, received_at";

/// Connection records, API keys and alerts in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresRecordStore {
    pool: PgPool,
    /// `host:port/database`, for hints; never the password.
    target: String,
}

impl PostgresRecordStore {
    /// Connects to the `postgres://` or `postgresql://` URL and migrates the database.
    ///
    /// Several replicas may open the same database at once: migrations take a lock.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|error| {
            // sqlx's URL errors describe the fault without echoing the URL or its password.
            Error::invalid_config(
                "DATABASE_URL",
                format!("invalid PostgreSQL database URL: {error}"),
            )
            .with_hint("use `postgres://user:password@host:5432/database`")
        })?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| open_error(&target, error))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| migrate_error(&target, error))?;
        Ok(Self { pool, target })
    }

    /// The connection pool, for the replica bus.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later operations fail with [`ErrorKind::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn error(&self, action: &str, error: sqlx::Error) -> Error {
        db_error(&self.target, action, error)
    }

    /// Commits `transaction`. A failure other than the server refusing the commit
    /// leaves unknown whether it was applied, and says so with [`OutcomeUnknown`].
    async fn commit(
        &self,
        transaction: sqlx::Transaction<'_, sqlx::Postgres>,
        action: &str,
    ) -> Result<()> {
        transaction.commit().await.map_err(|error| {
            let refused = matches!(error, sqlx::Error::Database(_));
            let cause = OutcomeUnknown::new(&error);
            let error = self.error(action, error);
            if refused {
                error
            } else {
                error.with_source(cause)
            }
        })
    }

    /// Inserts a connection row through `executor` (the pool or a transaction).
    async fn insert_connection_row<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        record: &ConnectionRecord,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO connections (id, scope, user_id, org_id, connector, label, metadata, \
             secret_ref, status, webhook_token_hash, routing_key, allow_writes, last_report, \
             created_at, validated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&record.id)
        .bind(record.tenant.scope_key())
        .bind(&record.tenant.user_id)
        .bind(&record.tenant.org_id)
        .bind(&record.connector)
        .bind(&record.label)
        .bind(Json(&record.metadata))
        .bind(&record.secret_ref.0)
        .bind(record.status.as_str())
        .bind(&record.webhook_token_hash)
        .bind(&record.routing_key)
        .bind(record.allow_writes)
        .bind(record.last_report.as_ref().map(Json))
        .bind(record.created_at)
        .bind(record.validated_at)
        .execute(executor)
        .await
        .map_err(|error| {
            let taken = matches!(&error, sqlx::Error::Database(database)
                if database.constraint() == Some("connections_by_routing_key"));
            if taken {
                routing_key_taken(record)
            } else {
                self.error("inserting a connection", error)
            }
        })?;
        Ok(())
    }
}

/// Why the database cannot be used right now; picks the hint.
enum Outage {
    Unreachable,
    Credentials,
    MissingDatabase,
    Tls,
}

fn outage(error: &sqlx::Error) -> Option<Outage> {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => Some(Outage::Unreachable),
        // A connection dropped mid-handshake (say, by a proxy whose backend is down)
        // surfaces as a protocol error rather than an I/O error.
        sqlx::Error::Protocol(_) => Some(Outage::Unreachable),
        sqlx::Error::Tls(_) => Some(Outage::Tls),
        sqlx::Error::Database(database) => {
            let code = database.code()?;
            match code.as_ref() {
                // invalid_authorization_specification, invalid_password
                "28000" | "28P01" => Some(Outage::Credentials),
                // invalid_catalog_name: the database does not exist
                "3D000" => Some(Outage::MissingDatabase),
                // read_only_sql_transaction: connected to a standby after a failover
                "25006" => Some(Outage::Unreachable),
                // connection exceptions, insufficient resources (too many connections, disk
                // full), admin/crash shutdown or still starting, system (I/O) errors
                code if code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code.starts_with("58") =>
                {
                    Some(Outage::Unreachable)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn unavailable(target: &str, outage: Outage, error: sqlx::Error) -> Error {
    let hint = match outage {
        Outage::Unreachable => format!(
            "check that PostgreSQL at {target} is running and reachable from Patchbay; \
             the store reconnects by itself once it is back"
        ),
        Outage::Credentials => format!(
            "PostgreSQL at {target} rejected the user or password in DATABASE_URL; \
             fix them or the server's pg_hba.conf"
        ),
        Outage::MissingDatabase => format!(
            "the database named in DATABASE_URL does not exist on {target}; create it first"
        ),
        Outage::Tls => format!(
            "the TLS handshake with PostgreSQL at {target} failed; \
             check `sslmode` and `sslrootcert` in DATABASE_URL"
        ),
    };
    Error::unavailable("records database unavailable")
        .with_hint(hint)
        .with_source(error)
}

fn db_error(target: &str, action: &str, error: sqlx::Error) -> Error {
    if let Some(outage) = outage(&error) {
        return unavailable(target, outage, error);
    }
    if let sqlx::Error::Database(database) = &error {
        // character_not_in_repertoire, untranslatable_character: a NUL in text or jsonb.
        if matches!(database.code().as_deref(), Some("22021" | "22P05")) {
            return Error::new(
                ErrorKind::InvalidInput,
                "PostgreSQL cannot store text containing a NUL (U+0000) character",
            )
            .with_hint("remove NUL characters from the label, metadata and other fields");
        }
    }
    // PostgreSQL messages name tables, columns and constraints; bound values appear only in
    // the `detail` field, which sqlx does not print.
    Error::internal(format!("records database error while {action}: {error}"))
}

/// At startup a wrong user, password or database name is a configuration mistake.
fn open_error(target: &str, error: sqlx::Error) -> Error {
    match outage(&error) {
        Some(Outage::Credentials) => Error::invalid_config(
            "DATABASE_URL",
            "PostgreSQL rejected the user or password in DATABASE_URL",
        )
        .with_hint(format!(
            "check the credentials for {target} and the server's pg_hba.conf"
        )),
        Some(Outage::MissingDatabase) => Error::invalid_config(
            "DATABASE_URL",
            "the database named in DATABASE_URL does not exist",
        )
        .with_hint(format!("create it on {target} first")),
        _ => db_error(target, "connecting", error),
    }
}

fn migrate_error(target: &str, error: sqlx::migrate::MigrateError) -> Error {
    use sqlx::migrate::MigrateError;
    match error {
        MigrateError::Execute(error) | MigrateError::ExecuteMigration(error, _) => {
            let insufficient_privilege = matches!(
                &error,
                sqlx::Error::Database(database) if database.code().as_deref() == Some("42501")
            );
            if insufficient_privilege {
                // PostgreSQL 15 and later no longer let every user create tables in `public`.
                return Error::invalid_config(
                    "DATABASE_URL",
                    "the user in DATABASE_URL may not create Patchbay's tables",
                )
                .with_hint(format!(
                    "on {target}, make that user the database owner or run \
                     `GRANT CREATE ON SCHEMA public TO <user>`"
                ))
                .with_source(error);
            }
            db_error(target, "migrating the records database", error)
        }
        other => Error::internal(format!("cannot migrate the records database: {other}"))
            .with_hint(
                "the database may have been written by a newer Patchbay; \
                 run that version or restore a backup",
            ),
    }
}

fn invalid_column(column: &str) -> Error {
    Error::internal(format!(
        "records database holds an unreadable `{column}` value"
    ))
}

fn from_json<T: DeserializeOwned>(column: &str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|_| invalid_column(column))
}

fn to_json<T: Serialize + ?Sized>(column: &str, value: &T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|error| Error::internal(format!("cannot encode `{column}`: {error}")))
}

/// The serde name of a unit enum variant (`firing`, `critical`).
fn enum_text<T: Serialize>(column: &str, value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => Ok(text),
        _ => Err(Error::internal(format!("cannot encode `{column}`"))),
    }
}

fn enum_from_text<T: DeserializeOwned>(column: &str, text: String) -> Result<T> {
    serde_json::from_value(Value::String(text)).map_err(|_| invalid_column(column))
}

/// PostgreSQL `text` and `jsonb` cannot hold U+0000, which provider payloads occasionally
/// carry; alerts get U+FFFD instead, so one such alert cannot fail a whole batch.
fn text_without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

fn json_without_nul(value: Value) -> Value {
    match value {
        Value::String(text) if text.contains('\0') => Value::String(text_without_nul(&text)),
        Value::Array(items) => Value::Array(items.into_iter().map(json_without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let key = if key.contains('\0') {
                        text_without_nul(&key)
                    } else {
                        key
                    };
                    (key, json_without_nul(value))
                })
                .collect(),
        ),
        other => other,
    }
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: String,
    user_id: String,
    org_id: Option<String>,
    connector: String,
    label: String,
    metadata: Value,
    secret_ref: String,
    status: String,
    webhook_token_hash: Option<String>,
    routing_key: Option<String>,
    allow_writes: bool,
    last_report: Option<Value>,
    created_at: DateTime<Utc>,
    validated_at: Option<DateTime<Utc>>,
}

impl ConnectionRow {
    fn into_record(self) -> Result<ConnectionRecord> {
        Ok(ConnectionRecord {
            tenant: Tenant {
                user_id: self.user_id,
                org_id: self.org_id,
            },
            connector: self.connector,
            label: self.label,
            metadata: self.metadata,
            secret_ref: SecretRef(self.secret_ref),
            status: ConnectionStatus::parse(&self.status)
                .ok_or_else(|| invalid_column("status"))?,
            webhook_token_hash: self.webhook_token_hash,
            routing_key: self.routing_key,
            allow_writes: self.allow_writes,
            last_report: self
                .last_report
                .map(|value| from_json::<ValidationReport>("last_report", value))
                .transpose()?,
            created_at: self.created_at,
            validated_at: self.validated_at,
            id: self.id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OAuthStateRow {
    state_hash: String,
    user_id: String,
    org_id: Option<String>,
    connector: String,
    redirect_uri: String,
    label: Option<String>,
    options: Value,
    allow_writes: bool,
    pkce_verifier: Option<String>,
    binding_hash: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl OAuthStateRow {
    fn into_pending(self) -> Result<PendingAuthorization> {
        Ok(PendingAuthorization {
            state_hash: self.state_hash,
            tenant: Tenant {
                user_id: self.user_id,
                org_id: self.org_id,
            },
            connector: self.connector,
            redirect_uri: self.redirect_uri,
            label: self.label,
            allow_writes: self.allow_writes,
            pkce_verifier: self.pkce_verifier.map(SecretString::from),
            binding_hash: self.binding_hash,
            options: from_json("options", self.options)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

const OAUTH_STATE_COLUMNS: &str = "state_hash, user_id, org_id, connector, redirect_uri, label, \
     options, allow_writes, pkce_verifier, binding_hash, created_at, expires_at";

const API_KEY_COLUMNS: &str = "id, key_hash, prefix, user_id, org_id, created_at, last_used_at";

const AGENT_TOKEN_COLUMNS: &str =
    "token_hash, connection_id, cluster_name, token_prefix, status, created_at, \
     expires_at, last_connected_at, last_heartbeat, agent_version, capabilities";

#[derive(sqlx::FromRow)]
struct AgentTokenRow {
    token_hash: String,
    connection_id: String,
    cluster_name: String,
    token_prefix: String,
    status: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_connected_at: Option<DateTime<Utc>>,
    last_heartbeat: Option<DateTime<Utc>>,
    agent_version: Option<String>,
    capabilities: Option<serde_json::Value>,
}

impl AgentTokenRow {
    fn into_record(self) -> Result<AgentTokenRecord> {
        Ok(AgentTokenRecord {
            status: AgentTokenStatus::parse(&self.status).ok_or_else(|| {
                Error::internal(format!(
                    "the records database holds an unknown agent token status `{}`",
                    self.status
                ))
            })?,
            token_hash: self.token_hash,
            connection_id: self.connection_id,
            cluster_name: self.cluster_name,
            token_prefix: self.token_prefix,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_connected_at: self.last_connected_at,
            last_heartbeat: self.last_heartbeat,
            agent_version: self.agent_version,
            capabilities: self.capabilities,
        })
    }
}

const CONNECT_LINK_COLUMNS: &str = "id, token_hash, user_id, org_id, connector, created_at, \
     expires_at, opened_at, session_expires_at";

#[derive(sqlx::FromRow)]
struct ConnectLinkRow {
    id: String,
    token_hash: String,
    user_id: String,
    org_id: Option<String>,
    connector: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    opened_at: Option<DateTime<Utc>>,
    session_expires_at: Option<DateTime<Utc>>,
}

impl ConnectLinkRow {
    fn into_record(self) -> ConnectLinkRecord {
        ConnectLinkRecord {
            id: self.id,
            token_hash: self.token_hash,
            tenant: Tenant {
                user_id: self.user_id,
                org_id: self.org_id,
            },
            connector: self.connector,
            created_at: self.created_at,
            expires_at: self.expires_at,
            opened_at: self.opened_at,
            session_expires_at: self.session_expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    key_hash: String,
    prefix: Option<String>,
    user_id: String,
    org_id: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    fn into_record(self) -> ApiKeyRecord {
        ApiKeyRecord {
            id: self.id,
            key_hash: self.key_hash,
            prefix: self.prefix,
            tenant: Tenant {
                user_id: self.user_id,
                org_id: self.org_id,
            },
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

fn connection_records(rows: Vec<ConnectionRow>) -> Result<Vec<ConnectionRecord>> {
    rows.into_iter().map(ConnectionRow::into_record).collect()
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    cursor: i64,
    connection_id: String,
    source: String,
    kind: String,
    external_id: String,
    dedup_key: String,
    title: String,
    status: String,
    severity: String,
    service: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    url: Option<String>,
    labels: Value,
    tags: Value,
    raw: Value,
    received_at: DateTime<Utc>,
}

impl AlertRow {
    fn into_stored(self) -> Result<StoredAlert> {
        Ok(StoredAlert {
            cursor: self.cursor,
            connection_id: self.connection_id,
            received_at: self.received_at,
            alert: NormalizedAlert {
                source: self.source,
                kind: enum_from_text("kind", self.kind)?,
                external_id: self.external_id,
                dedup_key: self.dedup_key,
                title: self.title,
                status: enum_from_text("status", self.status)?,
                severity: enum_from_text("severity", self.severity)?,
                service: self.service,
                started_at: self.started_at,
                ended_at: self.ended_at,
                url: self.url,
                labels: from_json("labels", self.labels)?,
                tags: from_json("tags", self.tags)?,
                raw: self.raw,
            },
        })
    }
}

/// A batch of alerts as one array per column, inserted with a single `UNNEST` statement.
#[derive(Default)]
struct AlertColumns {
    scope: Vec<String>,
    connection_id: Vec<String>,
    source: Vec<String>,
    kind: Vec<String>,
    external_id: Vec<String>,
    dedup_key: Vec<String>,
    title: Vec<String>,
    status: Vec<String>,
    severity: Vec<String>,
    service: Vec<Option<String>>,
    started_at: Vec<Option<DateTime<Utc>>>,
    ended_at: Vec<Option<DateTime<Utc>>>,
    url: Vec<Option<String>>,
    labels: Vec<Json<Value>>,
    tags: Vec<Json<Value>>,
    raw: Vec<Json<Value>>,
}

impl AlertColumns {
    fn new(alerts: &[NewAlert]) -> Result<Self> {
        let mut columns = Self::default();
        for new in alerts {
            let alert = &new.alert;
            let optional = |text: &Option<String>| text.as_deref().map(text_without_nul);
            // Scope and connection id are Patchbay's own identifiers and must match exactly.
            columns.scope.push(new.tenant.scope_key());
            columns.connection_id.push(new.connection_id.clone());
            columns.source.push(text_without_nul(&alert.source));
            columns.kind.push(enum_text("kind", &alert.kind)?);
            columns
                .external_id
                .push(text_without_nul(&alert.external_id));
            columns.dedup_key.push(text_without_nul(&alert.dedup_key));
            columns.title.push(text_without_nul(&alert.title));
            columns.status.push(enum_text("status", &alert.status)?);
            columns
                .severity
                .push(enum_text("severity", &alert.severity)?);
            columns.service.push(optional(&alert.service));
            columns.started_at.push(alert.started_at);
            columns.ended_at.push(alert.ended_at);
            columns.url.push(optional(&alert.url));
            columns
                .labels
                .push(Json(json_without_nul(to_json("labels", &alert.labels)?)));
            columns
                .tags
                .push(Json(json_without_nul(to_json("tags", &alert.tags)?)));
            columns.raw.push(Json(json_without_nul(alert.raw.clone())));
        }
        Ok(columns)
    }
}

#[async_trait]
impl RecordStore for PostgresRecordStore {
    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<()> {
        // In a transaction of its own, so that only a failed commit leaves unknown
        // whether the row landed.
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|error| self.error("starting a connection insert", error))?;
        self.insert_connection_row(&mut *transaction, record)
            .await?;
        self.commit(transaction, "committing a connection insert")
            .await
    }

    async fn insert_routed_connection(
        &self,
        record: &ConnectionRecord,
    ) -> Result<Option<ConnectionRecord>> {
        let Some(routing_key) = &record.routing_key else {
            self.insert_connection(record).await?;
            return Ok(None);
        };
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|error| self.error("starting a connection replacement", error))?;
        // Installs of one routing key take turns, so a reinstall racing another one in the
        // same tenant deletes whichever committed first instead of failing on the index.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))")
            .bind(ROUTING_KEY_LOCK_SPACE)
            .bind(&record.connector)
            .bind(routing_key)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error("locking a routing key", error))?;
        let replaced = sqlx::query_as::<_, ConnectionRow>(&format!(
            "DELETE FROM connections WHERE scope = $1 AND connector = $2 AND routing_key = $3 \
             RETURNING {CONNECTION_COLUMNS}"
        ))
        .bind(record.tenant.scope_key())
        .bind(&record.connector)
        .bind(routing_key)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error("replacing a connection", error))?;
        // Another tenant holds the routing key: dropping the transaction undoes the delete.
        self.insert_connection_row(&mut *transaction, record)
            .await?;
        self.commit(transaction, "committing a connection replacement")
            .await?;
        replaced.map(ConnectionRow::into_record).transpose()
    }

    async fn get_connection(&self, tenant: &Tenant, id: &str) -> Result<Option<ConnectionRecord>> {
        sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE scope = $1 AND id = $2"
        ))
        .bind(tenant.scope_key())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("reading a connection", error))?
        .map(ConnectionRow::into_record)
        .transpose()
    }

    async fn list_connections(&self, tenant: &Tenant) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE scope = $1 \
             ORDER BY created_at, insertion_order"
        ))
        .bind(tenant.scope_key())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error("listing connections", error))?;
        connection_records(rows)
    }

    async fn update_validation(
        &self,
        tenant: &Tenant,
        id: &str,
        status: ConnectionStatus,
        metadata: &Value,
        report: &ValidationReport,
    ) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE connections SET status = $1, metadata = $2, last_report = $3, \
             validated_at = $4 WHERE scope = $5 AND id = $6",
        )
        .bind(status.as_str())
        .bind(Json(metadata))
        .bind(Json(report))
        .bind(report.validated_at)
        .bind(tenant.scope_key())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("recording a validation", error))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(format!("connection {id} not found")));
        }
        Ok(())
    }

    async fn update_webhook_token_hash(&self, tenant: &Tenant, id: &str, hash: &str) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE connections SET webhook_token_hash = $1 WHERE scope = $2 AND id = $3",
        )
        .bind(hash)
        .bind(tenant.scope_key())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("rotating a webhook token", error))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(format!("connection {id} not found")));
        }
        Ok(())
    }

    async fn delete_connection(&self, tenant: &Tenant, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM connections WHERE scope = $1 AND id = $2")
            .bind(tenant.scope_key())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error("deleting a connection", error))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn webhook_connections(
        &self,
        connector: &str,
        user_id: &str,
    ) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE connector = $1 AND user_id = $2 \
             ORDER BY created_at, insertion_order"
        ))
        .bind(connector)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error("listing webhook connections", error))?;
        connection_records(rows)
    }

    async fn routed_connection(
        &self,
        connector: &str,
        routing_key: &str,
    ) -> Result<Option<ConnectionRecord>> {
        sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE connector = $1 AND routing_key = $2"
        ))
        .bind(connector)
        .bind(routing_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("finding a routed connection", error))?
        .map(ConnectionRow::into_record)
        .transpose()
    }

    async fn connections_with_secret_prefix(&self, prefix: &str) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE starts_with(secret_ref, $1) \
             ORDER BY created_at, insertion_order"
        ))
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error("listing connections by secret reference", error))?;
        connection_records(rows)
    }

    async fn move_secret_ref(&self, id: &str, from: &SecretRef, to: &SecretRef) -> Result<bool> {
        let moved = sqlx::query(
            "UPDATE connections SET secret_ref = $1, retired_secret_ref = $2 \
             WHERE id = $3 AND secret_ref = $2",
        )
        .bind(&to.0)
        .bind(&from.0)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("moving a secret reference", error))?;
        Ok(moved.rows_affected() == 1)
    }

    async fn retired_secret_refs(&self) -> Result<Vec<(String, SecretRef)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, retired_secret_ref FROM connections WHERE retired_secret_ref IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error("listing retired secret references", error))?;
        Ok(rows
            .into_iter()
            .map(|(id, reference)| (id, SecretRef(reference)))
            .collect())
    }

    async fn forget_retired_secret_ref(&self, id: &str, reference: &SecretRef) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET retired_secret_ref = NULL \
             WHERE id = $1 AND retired_secret_ref = $2",
        )
        .bind(id)
        .bind(&reference.0)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("forgetting a retired secret reference", error))?;
        Ok(())
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, key_hash, prefix, user_id, org_id, created_at, \
             last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.id)
        .bind(&key.key_hash)
        .bind(&key.prefix)
        .bind(&key.tenant.user_id)
        .bind(&key.tenant.org_id)
        .bind(key.created_at)
        .bind(key.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("inserting an API key", error))?;
        Ok(())
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("looking up an API key", error))
        .map(|row| row.map(ApiKeyRow::into_record))
    }

    async fn list_api_keys(
        &self,
        user_id: Option<&str>,
        org_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys \
             WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR org_id = $2) \
             ORDER BY created_at, id"
        ))
        .bind(user_id)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error("listing API keys", error))?;
        Ok(rows.into_iter().map(ApiKeyRow::into_record).collect())
    }

    async fn revoke_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "DELETE FROM api_keys WHERE prefix = $1 OR (prefix IS NULL AND id = $1) \
             RETURNING {API_KEY_COLUMNS}"
        ))
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("revoking an API key", error))
        .map(|row| row.map(ApiKeyRow::into_record))
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(at)
        .bind(id)
        .bind(at - API_KEY_USE_PRECISION)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("recording an API key's use", error))?;
        Ok(())
    }

    async fn insert_connect_link(&self, link: &ConnectLinkRecord) -> Result<()> {
        let purge_before = Utc::now() - CONNECT_LINK_RETENTION;
        sqlx::query(
            "DELETE FROM connect_links WHERE expires_at < $1 \
             AND (session_expires_at IS NULL OR session_expires_at < $1)",
        )
        .bind(purge_before)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("purging old connect links", error))?;
        sqlx::query(
            "INSERT INTO connect_links (id, token_hash, user_id, org_id, connector, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&link.id)
        .bind(&link.token_hash)
        .bind(&link.tenant.user_id)
        .bind(&link.tenant.org_id)
        .bind(&link.connector)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("inserting a connect link", error))?;
        Ok(())
    }

    async fn open_connect_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> Result<OpenedLink> {
        let opened = sqlx::query_as::<_, ConnectLinkRow>(&format!(
            "UPDATE connect_links SET opened_at = $1, session_hash = $2, session_expires_at = $3 \
             WHERE token_hash = $4 AND opened_at IS NULL AND expires_at > $1 \
             RETURNING {CONNECT_LINK_COLUMNS}"
        ))
        .bind(now)
        .bind(session_hash)
        .bind(session_expires_at)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("opening a connect link", error))?;
        if let Some(row) = opened {
            return Ok(OpenedLink::Opened(row.into_record()));
        }
        let known: Option<(bool,)> =
            sqlx::query_as("SELECT opened_at IS NOT NULL FROM connect_links WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error("looking up a connect link", error))?;
        Ok(match known {
            Some((true,)) => OpenedLink::AlreadyUsed,
            Some((false,)) => OpenedLink::Expired,
            None => OpenedLink::Unknown,
        })
    }

    async fn find_connect_link_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConnectLinkRecord>> {
        sqlx::query_as::<_, ConnectLinkRow>(&format!(
            "SELECT {CONNECT_LINK_COLUMNS} FROM connect_links \
             WHERE session_hash = $1 AND session_expires_at > $2"
        ))
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("looking up a connect link session", error))
        .map(|row| row.map(ConnectLinkRow::into_record))
    }

    async fn insert_alerts(&self, alerts: &[NewAlert]) -> Result<Vec<bool>> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let columns = AlertColumns::new(alerts)?;
        // One statement in its own implicit transaction: the function (migration 0008)
        // takes the lock that orders batches across replicas, inserts in input order,
        // and notifies every replica's alert feed once the commit is visible.
        let stored: Vec<(String, String)> = sqlx::query_as(
            "SELECT stored_connection_id, stored_dedup_key FROM insert_alert_batch(\
             $1, $2, $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
             $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], \
             $14::timestamptz[], $15::text[], $16::jsonb[], $17::jsonb[], $18::jsonb[])",
        )
        .bind(ALERT_ORDER_LOCK_SPACE)
        .bind(crate::alert_feed::ALERTS_CHANNEL)
        .bind(&columns.scope)
        .bind(&columns.connection_id)
        .bind(&columns.source)
        .bind(&columns.kind)
        .bind(&columns.external_id)
        .bind(&columns.dedup_key)
        .bind(&columns.title)
        .bind(&columns.status)
        .bind(&columns.severity)
        .bind(&columns.service)
        .bind(&columns.started_at)
        .bind(&columns.ended_at)
        .bind(&columns.url)
        .bind(&columns.labels)
        .bind(&columns.tags)
        .bind(&columns.raw)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error("storing an alert batch", error))?;
        Ok(new_in_batch(
            columns
                .connection_id
                .iter()
                .map(String::as_str)
                .zip(columns.dedup_key.iter().map(String::as_str)),
            &stored,
        ))
    }

    async fn list_alerts(
        &self,
        tenant: &Tenant,
        after: Option<i64>,
        limit: u32,
    ) -> Result<AlertPage> {
        let rows = sqlx::query_as::<_, AlertRow>(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE scope = $1 AND cursor > $2 \
             ORDER BY cursor LIMIT $3"
        ))
        .bind(tenant.scope_key())
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit.clamp(1, MAX_ALERT_PAGE)))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error("listing alerts", error))?;
        let alerts = rows
            .into_iter()
            .map(AlertRow::into_stored)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = alerts.last().map(|alert| alert.cursor);
        Ok(AlertPage {
            alerts,
            next_cursor,
        })
    }

    async fn last_alert_cursor(&self, tenant: &Tenant) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT MAX(cursor) FROM alerts WHERE scope = $1")
            .bind(tenant.scope_key())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| self.error("reading the newest alert", error))
    }

    async fn set_connection_status(&self, id: &str, status: ConnectionStatus) -> Result<()> {
        let updated = sqlx::query("UPDATE connections SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error("setting a connection's status", error))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(format!("connection {id} not found")));
        }
        Ok(())
    }

    async fn insert_oauth_state(&self, pending: &PendingAuthorization) -> Result<()> {
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(Utc::now() - OAUTH_STATE_RETENTION)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error("purging old OAuth states", error))?;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, scope, user_id, org_id, connector, \
             redirect_uri, label, options, allow_writes, pkce_verifier, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&pending.state_hash)
        .bind(pending.tenant.scope_key())
        .bind(&pending.tenant.user_id)
        .bind(&pending.tenant.org_id)
        .bind(&pending.connector)
        .bind(&pending.redirect_uri)
        .bind(&pending.label)
        .bind(Json(to_json("options", &pending.options)?))
        .bind(pending.allow_writes)
        .bind(
            pending
                .pkce_verifier
                .as_ref()
                .map(|verifier| verifier.expose().as_str()),
        )
        .bind(pending.created_at)
        .bind(pending.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("storing an OAuth state", error))?;
        Ok(())
    }

    async fn begin_oauth_state(
        &self,
        state_hash: &str,
        binding_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<BegunState> {
        let begun = sqlx::query_as::<_, OAuthStateRow>(&format!(
            "UPDATE oauth_states SET binding_hash = $1, begun_at = $2 \
             WHERE state_hash = $3 AND begun_at IS NULL AND consumed_at IS NULL \
             AND expires_at > $4 RETURNING {OAUTH_STATE_COLUMNS}"
        ))
        .bind(binding_hash)
        .bind(now)
        .bind(state_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("binding an OAuth state to a browser", error))?;
        if let Some(row) = begun {
            return Ok(BegunState::Begun(Box::new(row.into_pending()?)));
        }
        let known: Option<(bool,)> = sqlx::query_as(
            "SELECT begun_at IS NOT NULL OR consumed_at IS NOT NULL FROM oauth_states \
             WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("looking up an OAuth state", error))?;
        Ok(match known {
            Some((true,)) => BegunState::AlreadyBegun,
            Some((false,)) => BegunState::Expired,
            None => BegunState::Unknown,
        })
    }

    async fn consume_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumedState> {
        let consumed = sqlx::query_as::<_, OAuthStateRow>(&format!(
            "UPDATE oauth_states SET consumed_at = $1 \
             WHERE state_hash = $2 AND consumed_at IS NULL RETURNING {OAUTH_STATE_COLUMNS}"
        ))
        .bind(now)
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("consuming an OAuth state", error))?;
        if let Some(row) = consumed {
            let pending = row.into_pending()?;
            // The verifier is handed over once; the consumed row keeps none.
            sqlx::query("UPDATE oauth_states SET pkce_verifier = NULL WHERE state_hash = $1")
                .bind(state_hash)
                .execute(&self.pool)
                .await
                .map_err(|error| self.error("clearing a PKCE verifier", error))?;
            return Ok(if pending.expires_at > now {
                ConsumedState::Fresh(pending)
            } else {
                ConsumedState::Expired(pending)
            });
        }
        let known: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM oauth_states WHERE state_hash = $1")
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error("looking up an OAuth state", error))?;
        Ok(match known {
            Some(_) => ConsumedState::AlreadyUsed,
            None => ConsumedState::Unknown,
        })
    }

    async fn try_acquire_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<RefreshLease>> {
        let taken: Option<(i64,)> = sqlx::query_as(
            "UPDATE connections SET refresh_lease_holder = $1, refresh_lease_until = $2, \
             refresh_lease_fence = refresh_lease_fence + 1 \
             WHERE id = $3 AND (refresh_lease_holder IS NULL OR refresh_lease_until < $4) \
             RETURNING refresh_lease_fence",
        )
        .bind(holder)
        .bind(until)
        .bind(connection_id)
        .bind(Utc::now())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("taking a refresh lease", error))?;
        Ok(taken.map(|(fence,)| RefreshLease { fence, until }))
    }

    async fn refresh_lease_held(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let held: Option<(i64,)> = sqlx::query_as(
            "SELECT refresh_lease_fence FROM connections WHERE id = $1 \
             AND refresh_lease_holder = $2 AND refresh_lease_fence = $3 \
             AND refresh_lease_until > $4",
        )
        .bind(connection_id)
        .bind(holder)
        .bind(fence)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("checking a refresh lease", error))?;
        Ok(held.is_some())
    }

    async fn release_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET refresh_lease_holder = NULL, refresh_lease_until = NULL \
             WHERE id = $1 AND refresh_lease_holder = $2 AND refresh_lease_fence = $3",
        )
        .bind(connection_id)
        .bind(holder)
        .bind(fence)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("releasing a refresh lease", error))?;
        Ok(())
    }

    async fn insert_agent_token(&self, token: &AgentTokenRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO kubectl_agent_tokens ({AGENT_TOKEN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&token.token_hash)
        .bind(&token.connection_id)
        .bind(&token.cluster_name)
        .bind(&token.token_prefix)
        .bind(token.status.as_str())
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.last_connected_at)
        .bind(token.last_heartbeat)
        .bind(&token.agent_version)
        .bind(&token.capabilities)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("inserting an agent token", error))?;
        Ok(())
    }

    async fn find_agent_token(&self, token_hash: &str) -> Result<Option<AgentTokenRecord>> {
        sqlx::query_as::<_, AgentTokenRow>(&format!(
            "SELECT {AGENT_TOKEN_COLUMNS} FROM kubectl_agent_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("looking up an agent token", error))?
        .map(AgentTokenRow::into_record)
        .transpose()
    }

    async fn agent_token_of(&self, connection_id: &str) -> Result<Option<AgentTokenRecord>> {
        sqlx::query_as::<_, AgentTokenRow>(&format!(
            "SELECT {AGENT_TOKEN_COLUMNS} FROM kubectl_agent_tokens WHERE connection_id = $1 \
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(connection_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error("reading a connection's agent token", error))?
        .map(AgentTokenRow::into_record)
        .transpose()
    }

    async fn set_agent_token_status(
        &self,
        connection_id: &str,
        status: AgentTokenStatus,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE kubectl_agent_tokens SET status = $1 \
             WHERE connection_id = $2 AND status = 'active'",
        )
        .bind(status.as_str())
        .bind(connection_id)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("changing an agent token's status", error))?;
        Ok(done.rows_affected())
    }

    async fn record_agent_activity(
        &self,
        token_hash: &str,
        activity: &AgentActivity,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE kubectl_agent_tokens SET \
             last_connected_at = COALESCE($1, last_connected_at), \
             last_heartbeat = COALESCE($2, last_heartbeat), \
             agent_version = COALESCE($3, agent_version), \
             capabilities = COALESCE($4, capabilities) \
             WHERE token_hash = $5",
        )
        .bind(activity.connected_at)
        .bind(activity.heartbeat_at)
        .bind(&activity.agent_version)
        .bind(&activity.capabilities)
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error("recording an agent's activity", error))?;
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|error| self.error("checking health", error))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
