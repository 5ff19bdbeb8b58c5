//! The embedded default [`RecordStore`]: SQLite through sqlx.
//!
//! The database is durable (WAL journal, `synchronous=FULL`): once a write
//! returns, it survives a crash or power cut. Every tenant-scoped query filters
//! on `scope = Tenant::scope_key()`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use patchbay_core::{
    Error, ErrorKind, NormalizedAlert, Result, SecretString, Tenant, ValidationReport,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};

use crate::agent_tokens::{AgentActivity, AgentTokenRecord, AgentTokenStatus};
use crate::connect_links::{ConnectLinkRecord, OpenedLink, CONNECT_LINK_RETENTION};
use crate::records::{
    new_in_batch, routing_key_taken, AlertPage, ApiKeyRecord, BegunState, ConnectionRecord,
    ConnectionStatus, ConsumedState, NewAlert, PendingAuthorization, RecordStore, RefreshLease,
    StoredAlert, API_KEY_USE_PRECISION, OAUTH_STATE_RETENTION,
};
use crate::secrets::SecretRef;

/// The most alerts one [`RecordStore::list_alerts`] page returns.
pub const MAX_ALERT_PAGE: u32 = 1000;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read-only connections beside the single writer; in WAL mode they read while it writes.
const READ_CONNECTIONS: u32 = 4;

const CONNECTION_COLUMNS: &str = "id, user_id, org_id, connector, label, metadata, secret_ref, \
     status, webhook_token_hash, routing_key, allow_writes, last_report, created_at, validated_at";

const ALERT_COLUMNS: &str = "cursor, connection_id, source, kind, external_id, dedup_key, title, \
     status, severity, service, started_at, ended_at, url, labels, tags, raw, received_at";

/// One row of an alert batch as `insert_alerts` binds it: every column in its stored
/// form, the JSON columns as their JSON text.
struct AlertInsert<'a> {
    scope: String,
    connection_id: &'a str,
    source: &'a str,
    kind: String,
    external_id: &'a str,
    dedup_key: &'a str,
    title: &'a str,
    status: String,
    severity: String,
    service: Option<&'a str>,
    started_at: Option<String>,
    ended_at: Option<String>,
    url: Option<&'a str>,
    labels: String,
    tags: String,
    raw: String,
}

impl<'a> AlertInsert<'a> {
    fn new(new: &'a NewAlert) -> Result<Self> {
        let alert = &new.alert;
        Ok(Self {
            scope: new.tenant.scope_key(),
            connection_id: &new.connection_id,
            source: &alert.source,
            kind: enum_text("kind", &alert.kind)?,
            external_id: &alert.external_id,
            dedup_key: &alert.dedup_key,
            title: &alert.title,
            status: enum_text("status", &alert.status)?,
            severity: enum_text("severity", &alert.severity)?,
            service: alert.service.as_deref(),
            started_at: alert.started_at.as_ref().map(timestamp),
            ended_at: alert.ended_at.as_ref().map(timestamp),
            url: alert.url.as_deref(),
            labels: to_json("labels", &alert.labels)?,
            tags: to_json("tags", &alert.tags)?,
            raw: to_json("raw", &alert.raw)?,
        })
    }

    /// Binds the row's [`ALERT_BATCH_COLUMNS`] columns, in the order of
    /// [`alert_batch_statement`].
    fn bind<'q>(
        self,
        query: sqlx::query::QueryAs<'q, Sqlite, (String, String), SqliteArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, Sqlite, (String, String), SqliteArguments<'q>>
    where
        'a: 'q,
    {
        query
            .bind(self.scope)
            .bind(self.connection_id)
            .bind(self.source)
            .bind(self.kind)
            .bind(self.external_id)
            .bind(self.dedup_key)
            .bind(self.title)
            .bind(self.status)
            .bind(self.severity)
            .bind(self.service)
            .bind(self.started_at)
            .bind(self.ended_at)
            .bind(self.url)
            .bind(self.labels)
            .bind(self.tags)
            .bind(self.raw)
    }
}

/// The row counts an alert batch statement is written for. A batch uses the smallest
/// that holds it and leaves the other rows empty, so there are only this many
/// statement texts and every one stays prepared; larger batches go in chunks of the last.
const ALERT_BATCH_ROWS: [usize; 5] = [1, 4, 16, 64, 256];

/// The most alerts one batch statement holds.
const MAX_ALERT_BATCH_ROWS: usize = ALERT_BATCH_ROWS[ALERT_BATCH_ROWS.len() - 1];

/// The columns bound per row of a batch statement (all but `received_at`).
const ALERT_BATCH_COLUMNS: usize = 16;

/// The statement for `chunk` (at most [`MAX_ALERT_BATCH_ROWS`] alerts), bound.
fn alert_batch_query<'q>(
    chunk: &'q [NewAlert],
    received_at: &'q str,
) -> Result<sqlx::query::QueryAs<'q, Sqlite, (String, String), SqliteArguments<'q>>> {
    static STATEMENTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let statements = STATEMENTS.get_or_init(|| {
        ALERT_BATCH_ROWS
            .iter()
            .map(|rows| alert_batch_statement(*rows))
            .collect()
    });
    let class = ALERT_BATCH_ROWS
        .iter()
        .position(|rows| *rows >= chunk.len())
        .expect("a chunk is at most the largest batch statement");
    let empty_rows = ALERT_BATCH_ROWS[class] - chunk.len();
    let mut query = sqlx::query_as(&statements[class]).bind(received_at);
    for new in chunk {
        query = AlertInsert::new(new)?.bind(query);
    }
    for _ in 0..empty_rows * ALERT_BATCH_COLUMNS {
        query = query.bind(None::<&str>);
    }
    Ok(query)
}

/// The statement that inserts up to `rows` alerts, bound as `received_at` then
/// [`ALERT_BATCH_COLUMNS`] columns per row ([`AlertInsert::bind`]); rows bound as NULL
/// are left out. Rows go in in order, so cursors follow it and, for a key repeated in
/// the batch, the first copy wins.
fn alert_batch_statement(rows: usize) -> String {
    let placeholders = ", ?".repeat(ALERT_BATCH_COLUMNS);
    let row = |index: usize| format!("({index}{placeholders})");
    let values = (0..rows).map(row).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO alerts (scope, connection_id, source, kind, external_id, dedup_key, \
         title, status, severity, service, started_at, ended_at, url, labels, tags, raw, \
         received_at) \
         SELECT column2, column3, column4, column5, column6, column7, column8, column9, \
         column10, column11, column12, column13, column14, column15, column16, column17, \
         received.at \
         FROM (SELECT ? AS at) AS received, (VALUES {values}) \
         WHERE column2 IS NOT NULL ORDER BY column1 \
         ON CONFLICT (connection_id, dedup_key) DO NOTHING \
         RETURNING connection_id, dedup_key"
    )
}

/// Connection records, API keys and alerts in a SQLite database.
///
/// Every write goes through one connection. SQLite admits one writer at a time, so a
/// pool of writers would only wait on each other's locks; and a connection's page cache
/// is dropped whenever another connection has written, so a lone writer keeps its cache
/// warm across alert batches instead of re-reading the pages each batch touches.
/// Statements that only read use a pool of read-only connections.
#[derive(Debug, Clone)]
pub struct SqliteRecordStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteRecordStore {
    /// Opens (creating if missing) the database at `url_or_path`, either a
    /// `sqlite://path?mode=rwc` URL or a plain file path, and migrates it.
    pub async fn open(url_or_path: &str) -> Result<Self> {
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path).map_err(|error| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("invalid SQLite database URL: {error}"),
                )
                .with_hint("use `sqlite://<path>?mode=rwc` or a plain file path")
            })?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        let options = options.busy_timeout(BUSY_TIMEOUT).foreign_keys(true);
        let file = options.get_filename().to_path_buf();
        if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            create_parent_dir(dir)?;
        }
        let cannot_open = |error: sqlx::Error| {
            Error::unavailable(format!(
                "cannot open records database {}: {error}",
                file.display()
            ))
            .with_hint("check the path in DATABASE_URL exists and is writable by Patchbay")
        };
        // The writer lives as long as the store: a local file does not go stale, and
        // reopening it would throw away its warm page cache.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full),
            )
            .await
            .map_err(cannot_open)?;
        migrate(&writer).await?;
        // Opened after the writer has switched the file to WAL and migrated it. Read-only,
        // so a write sent to this pool by mistake fails instead of racing the writer.
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection to a local file does not go stale; pinging it on every
            // acquire would add a round trip to its worker thread to each query.
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(cannot_open)?;
        Ok(Self { writer, reader })
    }

    /// A private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|error| Error::internal(format!("in-memory SQLite options: {error}")))?
            .foreign_keys(true);
        // An in-memory database lives as long as its connection: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|error| db_error("opening the in-memory database", error))?;
        migrate(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// Closes every connection; the writer closes last, checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Brings the database's schema up to this version's.
async fn migrate(pool: &SqlitePool) -> Result<()> {
    sqlx::migrate!("./migrations/sqlite")
        .run(pool)
        .await
        .map_err(|error| {
            Error::internal(format!("cannot migrate the records database: {error}")).with_hint(
                "the database may have been written by a newer Patchbay; \
                     run that version or restore a backup",
            )
        })
}

fn create_parent_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|error| {
        Error::unavailable(format!(
            "cannot create the records database directory {}: {error}",
            dir.display()
        ))
        .with_hint("create it yourself, writable by the Patchbay user")
    })
}

/// SQLite primary result codes that mean the database cannot be used right now.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;

fn db_error(action: &str, error: sqlx::Error) -> Error {
    let unavailable = match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| {
                matches!(
                    code & 0xff,
                    SQLITE_BUSY
                        | SQLITE_LOCKED
                        | SQLITE_READONLY
                        | SQLITE_IOERR
                        | SQLITE_FULL
                        | SQLITE_CANTOPEN
                )
            }),
        _ => false,
    };
    if unavailable {
        Error::unavailable("records database unavailable")
            .with_hint(
                "check that the database file is on a mounted, writable disk with free space \
                 and not locked by another process; then retry",
            )
            .with_source(error)
    } else {
        // sqlx and SQLite messages name tables and columns, never bound values.
        Error::internal(format!("records database error while {action}: {error}"))
    }
}

/// Whether the insert broke the one-connection-per-routing-key index.
fn is_routing_key_taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database)
        if database.is_unique_violation() && database.message().contains("connections.routing_key"))
}

fn invalid_column(column: &str) -> Error {
    Error::internal(format!(
        "records database holds an unreadable `{column}` value"
    ))
}

/// A fixed-width RFC 3339 form, so text order is time order.
fn timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_timestamp(column: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| invalid_column(column))
}

fn parse_optional_timestamp(column: &str, text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.map(|text| parse_timestamp(column, &text)).transpose()
}

fn to_json<T: Serialize + ?Sized>(column: &str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|error| Error::internal(format!("cannot encode `{column}`: {error}")))
}

fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|_| invalid_column(column))
}

/// The serde name of a unit enum variant (`firing`, `critical`).
fn enum_text<T: Serialize>(column: &str, value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => Ok(text),
        _ => Err(Error::internal(format!("cannot encode `{column}`"))),
    }
}

fn enum_from_text<T: DeserializeOwned>(column: &str, text: String) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|_| invalid_column(column))
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: String,
    user_id: String,
    org_id: Option<String>,
    connector: String,
    label: String,
    metadata: String,
    secret_ref: String,
    status: String,
    webhook_token_hash: Option<String>,
    routing_key: Option<String>,
    allow_writes: bool,
    last_report: Option<String>,
    created_at: String,
    validated_at: Option<String>,
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
            metadata: from_json("metadata", &self.metadata)?,
            secret_ref: SecretRef(self.secret_ref),
            status: ConnectionStatus::parse(&self.status)
                .ok_or_else(|| invalid_column("status"))?,
            webhook_token_hash: self.webhook_token_hash,
            routing_key: self.routing_key,
            allow_writes: self.allow_writes,
            last_report: self
                .last_report
                .map(|text| from_json::<ValidationReport>("last_report", &text))
                .transpose()?,
            created_at: parse_timestamp("created_at", &self.created_at)?,
            validated_at: parse_optional_timestamp("validated_at", self.validated_at)?,
            id: self.id,
        })
    }
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
    started_at: Option<String>,
    ended_at: Option<String>,
    url: Option<String>,
    labels: String,
    tags: String,
    raw: String,
    received_at: String,
}

impl AlertRow {
    fn into_stored(self) -> Result<StoredAlert> {
        Ok(StoredAlert {
            cursor: self.cursor,
            connection_id: self.connection_id,
            received_at: parse_timestamp("received_at", &self.received_at)?,
            alert: NormalizedAlert {
                source: self.source,
                kind: enum_from_text("kind", self.kind)?,
                external_id: self.external_id,
                dedup_key: self.dedup_key,
                title: self.title,
                status: enum_from_text("status", self.status)?,
                severity: enum_from_text("severity", self.severity)?,
                service: self.service,
                started_at: parse_optional_timestamp("started_at", self.started_at)?,
                ended_at: parse_optional_timestamp("ended_at", self.ended_at)?,
                url: self.url,
                labels: from_json("labels", &self.labels)?,
                tags: from_json("tags", &self.tags)?,
                raw: from_json("raw", &self.raw)?,
            },
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
    options: String,
    allow_writes: bool,
    pkce_verifier: Option<String>,
    binding_hash: Option<String>,
    created_at: String,
    expires_at: String,
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
            options: from_json("options", &self.options)?,
            created_at: parse_timestamp("created_at", &self.created_at)?,
            expires_at: parse_timestamp("expires_at", &self.expires_at)?,
        })
    }
}

const OAUTH_STATE_COLUMNS: &str = "state_hash, user_id, org_id, connector, redirect_uri, label, \
     options, allow_writes, pkce_verifier, binding_hash, created_at, expires_at";

const API_KEY_COLUMNS: &str = "id, key_hash, prefix, user_id, org_id, created_at, last_used_at";

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    key_hash: String,
    prefix: Option<String>,
    user_id: String,
    org_id: Option<String>,
    created_at: String,
    last_used_at: Option<String>,
}

impl ApiKeyRow {
    fn into_record(self) -> Result<ApiKeyRecord> {
        Ok(ApiKeyRecord {
            id: self.id,
            key_hash: self.key_hash,
            prefix: self.prefix,
            tenant: Tenant {
                user_id: self.user_id,
                org_id: self.org_id,
            },
            created_at: parse_timestamp("created_at", &self.created_at)?,
            last_used_at: parse_optional_timestamp("last_used_at", self.last_used_at)?,
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
    created_at: String,
    expires_at: String,
    opened_at: Option<String>,
    session_expires_at: Option<String>,
}

impl ConnectLinkRow {
    fn into_record(self) -> Result<ConnectLinkRecord> {
        Ok(ConnectLinkRecord {
            id: self.id,
            token_hash: self.token_hash,
            tenant: Tenant {
                user_id: self.user_id,
                org_id: self.org_id,
            },
            connector: self.connector,
            created_at: parse_timestamp("created_at", &self.created_at)?,
            expires_at: parse_timestamp("expires_at", &self.expires_at)?,
            opened_at: parse_optional_timestamp("opened_at", self.opened_at)?,
            session_expires_at: parse_optional_timestamp(
                "session_expires_at",
                self.session_expires_at,
            )?,
        })
    }
}

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
    created_at: String,
    expires_at: Option<String>,
    last_connected_at: Option<String>,
    last_heartbeat: Option<String>,
    agent_version: Option<String>,
    capabilities: Option<String>,
}

impl AgentTokenRow {
    fn into_record(self) -> Result<AgentTokenRecord> {
        Ok(AgentTokenRecord {
            status: AgentTokenStatus::parse(&self.status)
                .ok_or_else(|| invalid_column("status"))?,
            created_at: parse_timestamp("created_at", &self.created_at)?,
            expires_at: parse_optional_timestamp("expires_at", self.expires_at)?,
            last_connected_at: parse_optional_timestamp(
                "last_connected_at",
                self.last_connected_at,
            )?,
            last_heartbeat: parse_optional_timestamp("last_heartbeat", self.last_heartbeat)?,
            capabilities: self
                .capabilities
                .map(|text| serde_json::from_str(&text).map_err(|_| invalid_column("capabilities")))
                .transpose()?,
            token_hash: self.token_hash,
            connection_id: self.connection_id,
            cluster_name: self.cluster_name,
            token_prefix: self.token_prefix,
            agent_version: self.agent_version,
        })
    }
}

/// Inserts a connection row through `executor` (the pool or a transaction).
async fn insert_connection_row<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    record: &ConnectionRecord,
) -> Result<()> {
    let last_report = record
        .last_report
        .as_ref()
        .map(|report| to_json("last_report", report))
        .transpose()?;
    let metadata = to_json("metadata", &record.metadata)?;
    sqlx::query(
        "INSERT INTO connections (id, scope, user_id, org_id, connector, label, metadata, \
         secret_ref, status, webhook_token_hash, routing_key, allow_writes, last_report, \
         created_at, validated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&record.id)
    .bind(record.tenant.scope_key())
    .bind(&record.tenant.user_id)
    .bind(&record.tenant.org_id)
    .bind(&record.connector)
    .bind(&record.label)
    .bind(metadata)
    .bind(&record.secret_ref.0)
    .bind(record.status.as_str())
    .bind(&record.webhook_token_hash)
    .bind(&record.routing_key)
    .bind(record.allow_writes)
    .bind(last_report)
    .bind(timestamp(&record.created_at))
    .bind(record.validated_at.as_ref().map(timestamp))
    .execute(executor)
    .await
    .map_err(|error| {
        if is_routing_key_taken(&error) {
            routing_key_taken(record)
        } else {
            db_error("inserting a connection", error)
        }
    })?;
    Ok(())
}

fn connection_records(rows: Vec<ConnectionRow>) -> Result<Vec<ConnectionRecord>> {
    rows.into_iter().map(ConnectionRow::into_record).collect()
}

#[async_trait]
impl RecordStore for SqliteRecordStore {
    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<()> {
        insert_connection_row(&self.writer, record).await
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
            .writer
            .begin()
            .await
            .map_err(|error| db_error("starting a connection replacement", error))?;
        // The transaction holds the store's only write connection, so concurrent installs
        // of one routing key run one after the other.
        let replaced = sqlx::query_as::<_, ConnectionRow>(&format!(
            "DELETE FROM connections WHERE scope = ? AND connector = ? AND routing_key = ? \
             RETURNING {CONNECTION_COLUMNS}"
        ))
        .bind(record.tenant.scope_key())
        .bind(&record.connector)
        .bind(routing_key)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| db_error("replacing a connection", error))?;
        // Another tenant holds the routing key: dropping the transaction undoes the delete.
        insert_connection_row(&mut *transaction, record).await?;
        transaction
            .commit()
            .await
            .map_err(|error| db_error("committing a connection replacement", error))?;
        replaced.map(ConnectionRow::into_record).transpose()
    }

    async fn get_connection(&self, tenant: &Tenant, id: &str) -> Result<Option<ConnectionRecord>> {
        sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE scope = ? AND id = ?"
        ))
        .bind(tenant.scope_key())
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(|error| db_error("reading a connection", error))?
        .map(ConnectionRow::into_record)
        .transpose()
    }

    async fn list_connections(&self, tenant: &Tenant) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE scope = ? \
             ORDER BY created_at, rowid"
        ))
        .bind(tenant.scope_key())
        .fetch_all(&self.reader)
        .await
        .map_err(|error| db_error("listing connections", error))?;
        connection_records(rows)
    }

    async fn update_validation(
        &self,
        tenant: &Tenant,
        id: &str,
        status: ConnectionStatus,
        metadata: &serde_json::Value,
        report: &ValidationReport,
    ) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE connections SET status = ?, metadata = ?, last_report = ?, validated_at = ? \
             WHERE scope = ? AND id = ?",
        )
        .bind(status.as_str())
        .bind(to_json("metadata", metadata)?)
        .bind(to_json("last_report", report)?)
        .bind(timestamp(&report.validated_at))
        .bind(tenant.scope_key())
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("recording a validation", error))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(format!("connection {id} not found")));
        }
        Ok(())
    }

    async fn update_webhook_token_hash(&self, tenant: &Tenant, id: &str, hash: &str) -> Result<()> {
        let updated =
            sqlx::query("UPDATE connections SET webhook_token_hash = ? WHERE scope = ? AND id = ?")
                .bind(hash)
                .bind(tenant.scope_key())
                .bind(id)
                .execute(&self.writer)
                .await
                .map_err(|error| db_error("rotating a webhook token", error))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(format!("connection {id} not found")));
        }
        Ok(())
    }

    async fn delete_connection(&self, tenant: &Tenant, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM connections WHERE scope = ? AND id = ?")
            .bind(tenant.scope_key())
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(|error| db_error("deleting a connection", error))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn webhook_connections(
        &self,
        connector: &str,
        user_id: &str,
    ) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE connector = ? AND user_id = ? \
             ORDER BY created_at, rowid"
        ))
        .bind(connector)
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(|error| db_error("listing webhook connections", error))?;
        connection_records(rows)
    }

    async fn routed_connection(
        &self,
        connector: &str,
        routing_key: &str,
    ) -> Result<Option<ConnectionRecord>> {
        sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE connector = ? AND routing_key = ?"
        ))
        .bind(connector)
        .bind(routing_key)
        .fetch_optional(&self.reader)
        .await
        .map_err(|error| db_error("finding a routed connection", error))?
        .map(ConnectionRow::into_record)
        .transpose()
    }

    async fn connections_with_secret_prefix(&self, prefix: &str) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections \
             WHERE substr(secret_ref, 1, length(?1)) = ?1 ORDER BY created_at, rowid"
        ))
        .bind(prefix)
        .fetch_all(&self.reader)
        .await
        .map_err(|error| db_error("listing connections by secret reference", error))?;
        connection_records(rows)
    }

    async fn move_secret_ref(&self, id: &str, from: &SecretRef, to: &SecretRef) -> Result<bool> {
        let moved = sqlx::query(
            "UPDATE connections SET secret_ref = ?, retired_secret_ref = ? \
             WHERE id = ? AND secret_ref = ?",
        )
        .bind(&to.0)
        .bind(&from.0)
        .bind(id)
        .bind(&from.0)
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("moving a secret reference", error))?;
        Ok(moved.rows_affected() == 1)
    }

    async fn retired_secret_refs(&self) -> Result<Vec<(String, SecretRef)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, retired_secret_ref FROM connections WHERE retired_secret_ref IS NOT NULL",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(|error| db_error("listing retired secret references", error))?;
        Ok(rows
            .into_iter()
            .map(|(id, reference)| (id, SecretRef(reference)))
            .collect())
    }

    async fn forget_retired_secret_ref(&self, id: &str, reference: &SecretRef) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET retired_secret_ref = NULL \
             WHERE id = ? AND retired_secret_ref = ?",
        )
        .bind(id)
        .bind(&reference.0)
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("forgetting a retired secret reference", error))?;
        Ok(())
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, key_hash, prefix, user_id, org_id, created_at, \
             last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.key_hash)
        .bind(&key.prefix)
        .bind(&key.tenant.user_id)
        .bind(&key.tenant.org_id)
        .bind(timestamp(&key.created_at))
        .bind(key.last_used_at.as_ref().map(timestamp))
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("inserting an API key", error))?;
        Ok(())
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?"
        ))
        .bind(key_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(|error| db_error("looking up an API key", error))?
        .map(ApiKeyRow::into_record)
        .transpose()
    }

    async fn list_api_keys(
        &self,
        user_id: Option<&str>,
        org_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys \
             WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR org_id = ?2) \
             ORDER BY created_at, rowid"
        ))
        .bind(user_id)
        .bind(org_id)
        .fetch_all(&self.reader)
        .await
        .map_err(|error| db_error("listing API keys", error))?
        .into_iter()
        .map(ApiKeyRow::into_record)
        .collect()
    }

    async fn revoke_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "DELETE FROM api_keys WHERE prefix = ?1 OR (prefix IS NULL AND id = ?1) \
             RETURNING {API_KEY_COLUMNS}"
        ))
        .bind(prefix)
        .fetch_optional(&self.writer)
        .await
        .map_err(|error| db_error("revoking an API key", error))?
        .map(ApiKeyRow::into_record)
        .transpose()
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = ? \
             WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
        )
        .bind(timestamp(&at))
        .bind(id)
        .bind(timestamp(&(at - API_KEY_USE_PRECISION)))
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("recording an API key's use", error))?;
        Ok(())
    }

    async fn insert_connect_link(&self, link: &ConnectLinkRecord) -> Result<()> {
        let purge_before = timestamp(&(Utc::now() - CONNECT_LINK_RETENTION));
        sqlx::query(
            "DELETE FROM connect_links WHERE expires_at < ?1 \
             AND (session_expires_at IS NULL OR session_expires_at < ?1)",
        )
        .bind(&purge_before)
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("purging old connect links", error))?;
        sqlx::query(
            "INSERT INTO connect_links (id, token_hash, user_id, org_id, connector, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&link.id)
        .bind(&link.token_hash)
        .bind(&link.tenant.user_id)
        .bind(&link.tenant.org_id)
        .bind(&link.connector)
        .bind(timestamp(&link.created_at))
        .bind(timestamp(&link.expires_at))
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("inserting a connect link", error))?;
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
            "UPDATE connect_links SET opened_at = ?1, session_hash = ?2, session_expires_at = ?3 \
             WHERE token_hash = ?4 AND opened_at IS NULL AND expires_at > ?1 \
             RETURNING {CONNECT_LINK_COLUMNS}"
        ))
        .bind(timestamp(&now))
        .bind(session_hash)
        .bind(timestamp(&session_expires_at))
        .bind(token_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(|error| db_error("opening a connect link", error))?;
        if let Some(row) = opened {
            return Ok(OpenedLink::Opened(row.into_record()?));
        }
        let known: Option<(bool,)> =
            sqlx::query_as("SELECT opened_at IS NOT NULL FROM connect_links WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.writer)
                .await
                .map_err(|error| db_error("looking up a connect link", error))?;
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
             WHERE session_hash = ? AND session_expires_at > ?"
        ))
        .bind(session_hash)
        .bind(timestamp(&now))
        .fetch_optional(&self.reader)
        .await
        .map_err(|error| db_error("looking up a connect link session", error))?
        .map(ConnectLinkRow::into_record)
        .transpose()
    }

    async fn insert_alerts(&self, alerts: &[NewAlert]) -> Result<Vec<bool>> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        // A batch of up to 256 alerts is one statement, so one trip to sqlx's SQLite
        // worker thread and one implicit transaction (one fsync) store it. A larger one
        // goes in chunks inside one transaction.
        let received_at = timestamp(&Utc::now());
        let failed = |error| db_error("storing an alert batch", error);
        let stored: Vec<(String, String)> = if alerts.len() <= MAX_ALERT_BATCH_ROWS {
            alert_batch_query(alerts, &received_at)?
                .fetch_all(&self.writer)
                .await
                .map_err(failed)?
        } else {
            let mut transaction = self.writer.begin().await.map_err(failed)?;
            let mut stored = Vec::new();
            for chunk in alerts.chunks(MAX_ALERT_BATCH_ROWS) {
                stored.extend(
                    alert_batch_query(chunk, &received_at)?
                        .fetch_all(&mut *transaction)
                        .await
                        .map_err(failed)?,
                );
            }
            transaction.commit().await.map_err(failed)?;
            stored
        };
        Ok(new_in_batch(
            alerts
                .iter()
                .map(|new| (new.connection_id.as_str(), new.alert.dedup_key.as_str())),
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
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE scope = ? AND cursor > ? \
             ORDER BY cursor LIMIT ?"
        ))
        .bind(tenant.scope_key())
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit.clamp(1, MAX_ALERT_PAGE)))
        .fetch_all(&self.reader)
        .await
        .map_err(|error| db_error("listing alerts", error))?;
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
        sqlx::query_scalar("SELECT MAX(cursor) FROM alerts WHERE scope = ?")
            .bind(tenant.scope_key())
            .fetch_one(&self.reader)
            .await
            .map_err(|error| db_error("reading the newest alert", error))
    }

    async fn set_connection_status(&self, id: &str, status: ConnectionStatus) -> Result<()> {
        let updated = sqlx::query("UPDATE connections SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(|error| db_error("setting a connection's status", error))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(format!("connection {id} not found")));
        }
        Ok(())
    }

    async fn insert_oauth_state(&self, pending: &PendingAuthorization) -> Result<()> {
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < ?")
            .bind(timestamp(&(Utc::now() - OAUTH_STATE_RETENTION)))
            .execute(&self.writer)
            .await
            .map_err(|error| db_error("purging old OAuth states", error))?;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, scope, user_id, org_id, connector, \
             redirect_uri, label, options, allow_writes, pkce_verifier, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&pending.state_hash)
        .bind(pending.tenant.scope_key())
        .bind(&pending.tenant.user_id)
        .bind(&pending.tenant.org_id)
        .bind(&pending.connector)
        .bind(&pending.redirect_uri)
        .bind(&pending.label)
        .bind(to_json("options", &pending.options)?)
        .bind(pending.allow_writes)
        .bind(
            pending
                .pkce_verifier
                .as_ref()
                .map(|verifier| verifier.expose().as_str()),
        )
        .bind(timestamp(&pending.created_at))
        .bind(timestamp(&pending.expires_at))
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("storing an OAuth state", error))?;
        Ok(())
    }

    async fn begin_oauth_state(
        &self,
        state_hash: &str,
        binding_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<BegunState> {
        let begun = sqlx::query_as::<_, OAuthStateRow>(&format!(
            "UPDATE oauth_states SET binding_hash = ?, begun_at = ? \
             WHERE state_hash = ? AND begun_at IS NULL AND consumed_at IS NULL \
             AND expires_at > ? RETURNING {OAUTH_STATE_COLUMNS}"
        ))
        .bind(binding_hash)
        .bind(timestamp(&now))
        .bind(state_hash)
        .bind(timestamp(&now))
        .fetch_optional(&self.writer)
        .await
        .map_err(|error| db_error("binding an OAuth state to a browser", error))?;
        if let Some(row) = begun {
            return Ok(BegunState::Begun(Box::new(row.into_pending()?)));
        }
        let known: Option<(bool,)> = sqlx::query_as(
            "SELECT begun_at IS NOT NULL OR consumed_at IS NOT NULL FROM oauth_states \
             WHERE state_hash = ?",
        )
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(|error| db_error("looking up an OAuth state", error))?;
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
            "UPDATE oauth_states SET consumed_at = ? \
             WHERE state_hash = ? AND consumed_at IS NULL RETURNING {OAUTH_STATE_COLUMNS}"
        ))
        .bind(timestamp(&now))
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(|error| db_error("consuming an OAuth state", error))?;
        if let Some(row) = consumed {
            let pending = row.into_pending()?;
            // The verifier is handed over once; the consumed row keeps none.
            sqlx::query("UPDATE oauth_states SET pkce_verifier = NULL WHERE state_hash = ?")
                .bind(state_hash)
                .execute(&self.writer)
                .await
                .map_err(|error| db_error("clearing a PKCE verifier", error))?;
            return Ok(if pending.expires_at > now {
                ConsumedState::Fresh(pending)
            } else {
                ConsumedState::Expired(pending)
            });
        }
        let known: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM oauth_states WHERE state_hash = ?")
                .bind(state_hash)
                .fetch_optional(&self.writer)
                .await
                .map_err(|error| db_error("looking up an OAuth state", error))?;
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
            "UPDATE connections SET refresh_lease_holder = ?, refresh_lease_until = ?, \
             refresh_lease_fence = refresh_lease_fence + 1 \
             WHERE id = ? AND (refresh_lease_holder IS NULL OR refresh_lease_until < ?) \
             RETURNING refresh_lease_fence",
        )
        .bind(holder)
        .bind(timestamp(&until))
        .bind(connection_id)
        .bind(timestamp(&Utc::now()))
        .fetch_optional(&self.writer)
        .await
        .map_err(|error| db_error("taking a refresh lease", error))?;
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
            "SELECT refresh_lease_fence FROM connections WHERE id = ? \
             AND refresh_lease_holder = ? AND refresh_lease_fence = ? \
             AND refresh_lease_until > ?",
        )
        .bind(connection_id)
        .bind(holder)
        .bind(fence)
        .bind(timestamp(&now))
        .fetch_optional(&self.writer)
        .await
        .map_err(|error| db_error("checking a refresh lease", error))?;
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
             WHERE id = ? AND refresh_lease_holder = ? AND refresh_lease_fence = ?",
        )
        .bind(connection_id)
        .bind(holder)
        .bind(fence)
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("releasing a refresh lease", error))?;
        Ok(())
    }

    async fn insert_agent_token(&self, token: &AgentTokenRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO kubectl_agent_tokens ({AGENT_TOKEN_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&token.token_hash)
        .bind(&token.connection_id)
        .bind(&token.cluster_name)
        .bind(&token.token_prefix)
        .bind(token.status.as_str())
        .bind(timestamp(&token.created_at))
        .bind(token.expires_at.as_ref().map(timestamp))
        .bind(token.last_connected_at.as_ref().map(timestamp))
        .bind(token.last_heartbeat.as_ref().map(timestamp))
        .bind(&token.agent_version)
        .bind(
            token
                .capabilities
                .as_ref()
                .map(serde_json::Value::to_string),
        )
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("inserting an agent token", error))?;
        Ok(())
    }

    async fn find_agent_token(&self, token_hash: &str) -> Result<Option<AgentTokenRecord>> {
        sqlx::query_as::<_, AgentTokenRow>(&format!(
            "SELECT {AGENT_TOKEN_COLUMNS} FROM kubectl_agent_tokens WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(|error| db_error("looking up an agent token", error))?
        .map(AgentTokenRow::into_record)
        .transpose()
    }

    async fn agent_token_of(&self, connection_id: &str) -> Result<Option<AgentTokenRecord>> {
        sqlx::query_as::<_, AgentTokenRow>(&format!(
            "SELECT {AGENT_TOKEN_COLUMNS} FROM kubectl_agent_tokens WHERE connection_id = ? \
             ORDER BY created_at DESC, rowid DESC LIMIT 1"
        ))
        .bind(connection_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(|error| db_error("reading a connection's agent token", error))?
        .map(AgentTokenRow::into_record)
        .transpose()
    }

    async fn set_agent_token_status(
        &self,
        connection_id: &str,
        status: AgentTokenStatus,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE kubectl_agent_tokens SET status = ? \
             WHERE connection_id = ? AND status = 'active'",
        )
        .bind(status.as_str())
        .bind(connection_id)
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("changing an agent token's status", error))?;
        Ok(done.rows_affected())
    }

    async fn record_agent_activity(
        &self,
        token_hash: &str,
        activity: &AgentActivity,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE kubectl_agent_tokens SET \
             last_connected_at = COALESCE(?, last_connected_at), \
             last_heartbeat = COALESCE(?, last_heartbeat), \
             agent_version = COALESCE(?, agent_version), \
             capabilities = COALESCE(?, capabilities) \
             WHERE token_hash = ?",
        )
        .bind(activity.connected_at.as_ref().map(timestamp))
        .bind(activity.heartbeat_at.as_ref().map(timestamp))
        .bind(&activity.agent_version)
        .bind(
            activity
                .capabilities
                .as_ref()
                .map(serde_json::Value::to_string),
        )
        .bind(token_hash)
        .execute(&self.writer)
        .await
        .map_err(|error| db_error("recording an agent's activity", error))?;
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        for pool in [&self.writer, &self.reader] {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map_err(|error| db_error("checking health", error))?;
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use patchbay_core::{AlertSeverity, AlertStatus, EventKind};
    use serde_json::json;

    use super::*;
    use crate::SecretStore;

    const SECRET_CANARY: &str = "canary-db-4b1d-never-stored";

    fn alice() -> Tenant {
        Tenant {
            user_id: "alice".into(),
            org_id: Some("acme".into()),
        }
    }

    fn connection(id: &str, tenant: Tenant) -> ConnectionRecord {
        ConnectionRecord {
            id: id.into(),
            tenant,
            connector: "datadog".into(),
            label: "prod EU".into(),
            metadata: json!({ "site": "datadoghq.eu" }),
            secret_ref: SecretRef(format!("local:{id}-secret")),
            status: ConnectionStatus::Active,
            webhook_token_hash: Some("ab".repeat(32)),
            routing_key: None,
            allow_writes: false,
            last_report: None,
            created_at: Utc::now(),
            validated_at: None,
        }
    }

    fn alert(connection_id: &str, tenant: Tenant, dedup_key: &str) -> NewAlert {
        NewAlert {
            connection_id: connection_id.into(),
            tenant,
            alert: NormalizedAlert {
                source: "datadog".into(),
                kind: EventKind::Alert,
                external_id: "monitor-42".into(),
                dedup_key: dedup_key.into(),
                title: format!("CPU high ({dedup_key})"),
                status: AlertStatus::Firing,
                severity: AlertSeverity::High,
                service: Some("checkout".into()),
                started_at: Some(Utc::now()),
                ended_at: None,
                url: Some("https://app.datadoghq.eu/monitors/42".into()),
                labels: BTreeMap::from([("priority".into(), "P2".into())]),
                tags: vec!["env:prod".into()],
                raw: json!({ "id": 42, "nested": { "value": [1, 2] } }),
            },
        }
    }

    async fn file_store(dir: &Path) -> SqliteRecordStore {
        let url = format!("sqlite://{}?mode=rwc", dir.join("patchbay.db").display());
        SqliteRecordStore::open(&url).await.unwrap()
    }

    #[tokio::test]
    async fn records_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let record = connection("conn-1", alice());
        {
            let store = file_store(dir.path()).await;
            store.insert_connection(&record).await.unwrap();
            store
                .insert_alerts(&[alert("conn-1", alice(), "k1")])
                .await
                .unwrap();
            store.close().await;
        }
        let store = SqliteRecordStore::open(dir.path().join("patchbay.db").to_str().unwrap())
            .await
            .unwrap();
        store.health().await.unwrap();
        assert_eq!(
            store.get_connection(&alice(), "conn-1").await.unwrap(),
            Some(record)
        );
        assert_eq!(
            store
                .list_alerts(&alice(), None, 10)
                .await
                .unwrap()
                .alerts
                .len(),
            1
        );
        assert_eq!(
            store
                .insert_alerts(&[alert("conn-1", alice(), "k1")])
                .await
                .unwrap(),
            [false]
        );
    }

    #[tokio::test]
    async fn database_is_durable_and_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path()).await;
        let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "synchronous=FULL");
        let (busy_timeout,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(busy_timeout, 5000);
    }

    #[tokio::test]
    async fn reads_go_on_while_a_write_transaction_holds_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path()).await;
        store
            .insert_connection(&connection("conn-1", alice()))
            .await
            .unwrap();
        store
            .insert_alerts(&[alert("conn-1", alice(), "k1")])
            .await
            .unwrap();

        let mut held = store.writer.begin().await.unwrap();
        sqlx::query("UPDATE connections SET label = 'uncommitted' WHERE id = 'conn-1'")
            .execute(&mut *held)
            .await
            .unwrap();
        // The only write connection is taken: a read that queued for it would fail
        // after the acquire timeout instead of answering.
        let read = store.get_connection(&alice(), "conn-1").await.unwrap();
        assert_eq!(
            read.unwrap().label,
            "prod EU",
            "only committed data is read"
        );
        let page = store.list_alerts(&alice(), None, 10).await.unwrap();
        assert_eq!(page.alerts.len(), 1);
        held.commit().await.unwrap();

        let read = store.get_connection(&alice(), "conn-1").await.unwrap();
        assert_eq!(
            read.unwrap().label,
            "uncommitted",
            "a commit is read at once"
        );
    }

    #[tokio::test]
    async fn the_read_connections_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path()).await;
        let error = sqlx::query("DELETE FROM connections")
            .execute(&store.reader)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("readonly"), "{error}");
    }

    #[tokio::test]
    async fn database_file_holds_only_the_secret_reference() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path()).await;
        let secrets = crate::LocalSecretStore::open(
            &dir.path().join("secrets"),
            crate::local::MasterKey::generate(),
        )
        .unwrap();
        let location = crate::SecretLocation::new(&alice(), "datadog", "conn-1");
        let secret_ref = secrets
            .put(
                &location,
                &patchbay_core::RevealedJson::new(json!({ "api_key": SECRET_CANARY })),
            )
            .await
            .unwrap();
        let mut record = connection("conn-1", alice());
        record.secret_ref = secret_ref.clone();
        store.insert_connection(&record).await.unwrap();
        store.close().await;

        let mut bytes = std::fs::read(dir.path().join("patchbay.db")).unwrap();
        if let Ok(wal) = std::fs::read(dir.path().join("patchbay.db-wal")) {
            bytes.extend_from_slice(&wal);
        }
        let contains = |needle: &str| {
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        };
        assert!(contains(&secret_ref.0), "the reference is stored");
        assert!(!contains(SECRET_CANARY));

        let columns: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM pragma_table_info('connections') \
             UNION ALL SELECT name FROM pragma_table_info('api_keys') \
             UNION ALL SELECT name FROM pragma_table_info('alerts')",
        )
        .fetch_all(&file_store(dir.path()).await.reader)
        .await
        .unwrap();
        for (column,) in columns {
            assert!(
                !["secret", "api_key", "token", "password", "app_key"].contains(&column.as_str()),
                "column `{column}` looks like it holds a secret"
            );
        }
    }

    #[tokio::test]
    async fn closed_database_is_unavailable() {
        let store = SqliteRecordStore::open_in_memory().await.unwrap();
        store.close().await;
        let error = store.health().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(error.message(), "records database unavailable");
        assert!(error.hint().is_some());
    }

    #[tokio::test]
    async fn bad_url_is_a_configuration_error() {
        let error = SqliteRecordStore::open("sqlite://x.db?mode=sideways")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    }
}
