//! Relaying kubectl agent commands between host replicas over PostgreSQL.
//!
//! A replica that holds a cluster's agent socket takes the cluster's lease row
//! (`kubectl_agent_leases`: replica id, epoch, heartbeat). A replica asked for a
//! cluster it has no socket for finds the lease's replica and sends it the
//! command: the message goes into `kubectl_relay_messages` and its id out with
//! `NOTIFY` on the holder's channel; the answer comes back the same way. Payloads
//! are opaque JSON here; the host decides what they mean.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use patchbay_core::{Error, ErrorKind, Result};
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::postgres::PostgresRecordStore;

/// What a replica does with a relayed request: its body in, the answer out.
pub type BusHandler =
    Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Value> + Send>> + Send + Sync>;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One replica's end of the bus; stops listening when dropped.
pub struct AgentBus {
    pool: PgPool,
    replica_id: String,
    pending: Pending,
    listener: JoinHandle<()>,
}

impl std::fmt::Debug for AgentBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBus")
            .field("replica_id", &self.replica_id)
            .finish()
    }
}

impl Drop for AgentBus {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

fn channel(replica_id: &str) -> String {
    format!("patchbay_kubectl_{replica_id}")
}

fn bus_error(action: &str, error: sqlx::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("the replica bus failed {action}: {error}"),
    )
    .with_hint("check that PostgreSQL is reachable")
}

impl AgentBus {
    /// Opens the database at `url` (running migrations), listens on this replica's
    /// channel, and answers relayed requests with `handler`.
    pub async fn start(url: &str, handler: BusHandler) -> Result<Arc<AgentBus>> {
        let pool = PostgresRecordStore::open(url).await?.pool().clone();
        let replica_id = uuid::Uuid::new_v4().simple().to_string();
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(|error| bus_error("connecting its listener", error))?;
        listener
            .listen(&channel(&replica_id))
            .await
            .map_err(|error| bus_error("listening", error))?;
        let pending: Pending = Arc::default();
        let task = tokio::spawn(listen(
            listener,
            pool.clone(),
            Arc::clone(&pending),
            handler,
        ));
        Ok(Arc::new(AgentBus {
            pool,
            replica_id,
            pending,
            listener: task,
        }))
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// Takes the lease of `cluster_id` for this replica; returns its new epoch.
    pub async fn acquire(&self, cluster_id: &str) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO kubectl_agent_leases (cluster_id, replica_id, epoch, heartbeat_at) \
             VALUES ($1, $2, 1, now()) \
             ON CONFLICT (cluster_id) DO UPDATE SET replica_id = EXCLUDED.replica_id, \
             epoch = kubectl_agent_leases.epoch + 1, heartbeat_at = now() \
             RETURNING epoch",
        )
        .bind(cluster_id)
        .bind(&self.replica_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| bus_error("taking a lease", error))
    }

    /// Refreshes the lease's heartbeat if it still has `epoch`; false when another
    /// replica took it over.
    pub async fn heartbeat(&self, cluster_id: &str, epoch: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE kubectl_agent_leases SET heartbeat_at = now() \
             WHERE cluster_id = $1 AND epoch = $2",
        )
        .bind(cluster_id)
        .bind(epoch)
        .execute(&self.pool)
        .await
        .map_err(|error| bus_error("refreshing a lease", error))?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes the lease only if it still has `epoch`; false when another replica
    /// took it over (its entry stays).
    pub async fn release(&self, cluster_id: &str, epoch: i64) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM kubectl_agent_leases WHERE cluster_id = $1 AND epoch = $2")
                .bind(cluster_id)
                .bind(epoch)
                .execute(&self.pool)
                .await
                .map_err(|error| bus_error("releasing a lease", error))?;
        Ok(done.rows_affected() == 1)
    }

    /// The replica holding `cluster_id`'s lease, with its epoch, if its heartbeat
    /// is younger than `fresh_within`.
    pub async fn holder(
        &self,
        cluster_id: &str,
        fresh_within: Duration,
    ) -> Result<Option<(String, i64)>> {
        let seconds = fresh_within.as_secs_f64();
        sqlx::query_as(
            "SELECT replica_id, epoch FROM kubectl_agent_leases WHERE cluster_id = $1 \
             AND heartbeat_at > now() - make_interval(secs => $2)",
        )
        .bind(cluster_id)
        .bind(seconds)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| bus_error("reading a lease", error))
    }

    /// Sends `body` to `replica_id` and waits up to `wait` for its answer.
    pub async fn request(&self, replica_id: &str, body: Value, wait: Duration) -> Result<Value> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (sender, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request_id.clone(), sender);
        let payload = json!({
            "kind": "request",
            "request_id": request_id,
            "reply_to": self.replica_id,
            "body": body,
        });
        let sent = send(&self.pool, replica_id, &payload).await;
        let outcome = match sent {
            Ok(()) => match tokio::time::timeout(wait, answer).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(_)) => Err(Error::unavailable("the replica bus stopped")),
                Err(_) => Err(Error::unavailable(format!(
                    "replica {replica_id} did not answer within {} s",
                    wait.as_secs()
                ))),
            },
            Err(error) => Err(error),
        };
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request_id);
        outcome
    }
}

async fn send(pool: &PgPool, replica_id: &str, payload: &Value) -> Result<()> {
    let mut transaction = pool
        .begin()
        .await
        .map_err(|error| bus_error("starting a message", error))?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO kubectl_relay_messages (payload) VALUES ($1) RETURNING id")
            .bind(sqlx::types::Json(payload))
            .fetch_one(&mut *transaction)
            .await
            .map_err(|error| bus_error("storing a message", error))?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel(replica_id))
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await
        .map_err(|error| bus_error("notifying a replica", error))?;
    transaction
        .commit()
        .await
        .map_err(|error| bus_error("sending a message", error))
}

async fn take(pool: &PgPool, id: i64) -> Option<Value> {
    sqlx::query_scalar::<_, sqlx::types::Json<Value>>(
        "DELETE FROM kubectl_relay_messages WHERE id = $1 RETURNING payload",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .ok()
    .flatten()
    .map(|json| json.0)
}

async fn listen(mut listener: PgListener, pool: PgPool, pending: Pending, handler: BusHandler) {
    loop {
        let notification = match listener.recv().await {
            Ok(notification) => notification,
            Err(error) => {
                tracing::warn!(%error, "the replica bus lost its listener; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(id) = notification.payload().parse::<i64>() else {
            continue;
        };
        let Some(payload) = take(&pool, id).await else {
            continue;
        };
        let request_id = payload["request_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match payload["kind"].as_str() {
            Some("request") => {
                let reply_to = payload["reply_to"].as_str().unwrap_or_default().to_owned();
                let handler = Arc::clone(&handler);
                let pool = pool.clone();
                tokio::spawn(async move {
                    let body = handler(payload["body"].clone()).await;
                    let reply = json!({"kind": "reply", "request_id": request_id, "body": body});
                    if let Err(error) = send(&pool, &reply_to, &reply).await {
                        tracing::warn!(%error, "could not answer a relayed request");
                    }
                });
            }
            Some("reply") => {
                let waiter = pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&request_id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(payload["body"].clone());
                }
            }
            _ => {}
        }
    }
}
