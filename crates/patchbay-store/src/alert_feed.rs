//! Wake-ups for readers that follow the alert stream.
//!
//! A follower keeps its own cursor and reads committed alerts from the records
//! store, so nothing here carries an alert: an [`AlertSignal`] only says "alerts
//! may have been committed, read again". The group-commit writer raises it on the
//! replica that stored them; with PostgreSQL every batch also sends `NOTIFY` on
//! [`ALERTS_CHANNEL`] inside its transaction, and [`listen_postgres`] raises the
//! signal on every other replica once the batch is visible.

use std::sync::Arc;
use std::time::Duration;

use patchbay_core::{Error, Result};
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::postgres::PostgresRecordStore;

/// The PostgreSQL channel alert batches are announced on (the payload is empty).
pub const ALERTS_CHANNEL: &str = "patchbay_alerts";

/// How long the listener waits before listening again after PostgreSQL failed it.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// A counter raised whenever alerts may have been committed; clones share it.
#[derive(Debug, Clone)]
pub struct AlertSignal {
    sender: Arc<watch::Sender<u64>>,
}

impl Default for AlertSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl AlertSignal {
    /// A signal no one has raised yet.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Wakes every follower.
    pub fn raise(&self) {
        self.sender
            .send_modify(|raised| *raised = raised.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves after the next [`AlertSignal::raise`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}

/// The task relaying `NOTIFY` on [`ALERTS_CHANNEL`] to an [`AlertSignal`]; stops
/// when dropped.
#[derive(Debug)]
pub struct AlertNotifications {
    task: JoinHandle<()>,
}

impl Drop for AlertNotifications {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on [`ALERTS_CHANNEL`] of the database at `url` and raises `signal` for
/// every batch any replica commits.
pub async fn listen_postgres(url: &str, signal: AlertSignal) -> Result<AlertNotifications> {
    let pool = PostgresRecordStore::open(url).await?.pool().clone();
    let mut listener = PgListener::connect_with(&pool)
        .await
        .map_err(|error| listen_error("connecting", error))?;
    listener
        .listen(ALERTS_CHANNEL)
        .await
        .map_err(|error| listen_error("listening", error))?;
    let task = tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => signal.raise(),
                // The connection dropped and the listener will listen again on the
                // next call; notifications sent meanwhile are lost, so followers
                // read again.
                Ok(None) => signal.raise(),
                Err(error) => {
                    tracing::warn!(%error, "the alert notification listener failed; listening again");
                    tokio::time::sleep(RELISTEN_DELAY).await;
                    signal.raise();
                }
            }
        }
    });
    Ok(AlertNotifications { task })
}

fn listen_error(action: &str, error: sqlx::Error) -> Error {
    Error::unavailable(format!(
        "the alert notification listener failed {action}: {error}"
    ))
    .with_hint("check that PostgreSQL is reachable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_raise_wakes_every_subscriber_once() {
        let signal = AlertSignal::new();
        let mut first = signal.subscribe();
        let mut second = signal.clone().subscribe();
        signal.raise();
        first.changed().await.unwrap();
        second.changed().await.unwrap();
        assert!(!first.has_changed().unwrap(), "one raise, one wake-up");
    }
}
