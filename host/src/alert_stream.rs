//! `GET /api/alerts/stream`: the caller's normalised alerts as Server-Sent Events,
//! as they are committed.
//!
//! Each event is `event: alert`, `id: <cursor>`, `data: <the alert as /api/alerts
//! lists it>`. A client that reconnects with `Last-Event-ID` (every EventSource does)
//! gets exactly the alerts it missed, in order: the stream reads committed alerts
//! from the records store after its cursor, and cursors become visible in order. It
//! waits between reads for the signal raised after each batch (on this replica, or
//! through PostgreSQL `NOTIFY` on any other), and reads again at least every
//! [`POLL_INTERVAL`] whatever it hears. Heartbeat comments keep proxies from closing
//! an idle stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use patchbay_core::{Error, Tenant};
use patchbay_store::{RecordStore, StoredAlert};
use serde::Deserialize;
use tokio::sync::watch;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The stream's path.
pub const STREAM_PATH: &str = "/api/alerts/stream";
/// How often a heartbeat comment is sent while no alert arrives.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// The longest a follower waits before reading again without a wake-up, in case
/// a notification was lost.
pub const POLL_INTERVAL: Duration = Duration::from_secs(15);
/// How many alerts one read takes from the store.
const READ_BATCH: u32 = 500;
/// What an EventSource should wait before reconnecting.
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// The alert stream's route (state is supplied by the caller).
pub fn router() -> Router<AppState> {
    Router::new().route(STREAM_PATH, get(stream))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamQuery {
    /// Start after this cursor (0: from the first alert); without it and without
    /// `Last-Event-ID`, only alerts committed from now on.
    #[param(minimum = 0)]
    after: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/alerts/stream",
    tag = "alerts",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "Resume after this cursor (the id of the last event received)"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `open`, then `alert` events (id: the cursor, data: a StoredAlert), heartbeat comments every 15 s", content_type = "text/event-stream", body = StoredAlert),
    ),
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::from(
            Error::invalid_input("query", rejection.body_text())
                .with_hint("use ?after=<cursor>, or no query to follow new alerts only"),
        )
    })?;
    // Subscribe before the first read, so a batch committed in between still wakes us.
    let wakeups = state.ingestor.committed().subscribe();
    let requested = last_event_id(&headers)?
        .map(|cursor| (cursor, "Last-Event-ID"))
        .or(query.after.map(|cursor| (cursor, "after")));
    let cursor = match requested {
        Some((cursor, _)) if cursor >= 0 => cursor,
        Some((_, field)) => {
            return Err(Error::invalid_input(field, "a cursor is never negative")
                .with_hint("pass the id of an earlier event, or 0 for every stored alert")
                .into())
        }
        None => state.records.last_alert_cursor(&tenant).await?.unwrap_or(0),
    };
    let follower = Follower {
        records: Arc::clone(&state.records),
        tenant,
        cursor,
        ready: VecDeque::new(),
        wakeups,
        stopping: state.stopping.subscribe(),
        first: true,
        done: false,
    };
    Ok(
        Sse::new(futures::stream::unfold(follower, Follower::next)).keep_alive(
            KeepAlive::new()
                .interval(HEARTBEAT_INTERVAL)
                .text("heartbeat"),
        ),
    )
}

/// What each event of the stream is, as OpenAPI describes a `text/event-stream`
/// item: `open` with where the stream starts, `alert` with the cursor as its id and
/// a [`StoredAlert`] as its data, or `error` before the stream ends.
pub(crate) fn event_schema() -> serde_json::Value {
    let json_data = |schema: serde_json::Value| {
        serde_json::json!({
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": schema,
        })
    };
    serde_json::json!({
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": { "const": "open" },
                    "retry": { "type": "integer", "minimum": 0 },
                    "data": json_data(serde_json::json!({
                        "type": "object",
                        "required": ["after"],
                        "properties": { "after": { "type": "integer", "minimum": 0 } },
                    })),
                },
            },
            {
                "type": "object",
                "required": ["event", "id", "data"],
                "properties": {
                    "event": { "const": "alert" },
                    "id": { "type": "string", "pattern": "^[0-9]+$" },
                    "data": json_data(serde_json::json!({ "$ref": "#/components/schemas/StoredAlert" })),
                },
            },
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": { "const": "error" },
                    "data": { "type": "string" },
                },
            },
        ],
    })
}

/// The `Last-Event-ID` header as a cursor; 400 naming the header when it is not one.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let not_a_cursor = |text: &str| -> ApiError {
        Error::invalid_input("Last-Event-ID", format!("`{text}` is not an alert cursor"))
            .with_hint("send the id of the last event received, a whole number")
            .into()
    };
    // Bytes outside visible ASCII are no cursor either: refused, not taken for no header.
    let text = value
        .to_str()
        .map_err(|_| not_a_cursor(&String::from_utf8_lossy(value.as_bytes())))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| not_a_cursor(text))
}

/// One client's position in its tenant's alerts.
struct Follower {
    records: Arc<dyn RecordStore>,
    tenant: Tenant,
    cursor: i64,
    ready: VecDeque<StoredAlert>,
    wakeups: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    first: bool,
    done: bool,
}

impl Follower {
    /// The next event; `None` ends the stream (shutdown, or a store failure after
    /// which the client reconnects from its last id).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if std::mem::take(&mut self.first) {
            // Tells the client where it starts and how soon to reconnect.
            let opened = Event::default()
                .event("open")
                .retry(RECONNECT_AFTER)
                .data(format!("{{\"after\":{}}}", self.cursor));
            return Some((Ok(opened), self));
        }
        loop {
            if self.done || *self.stopping.borrow() {
                return None;
            }
            if let Some(alert) = self.ready.pop_front() {
                self.cursor = alert.cursor;
                let event = Event::default()
                    .event("alert")
                    .id(alert.cursor.to_string())
                    .json_data(&alert)
                    .unwrap_or_else(|error| {
                        Event::default().event("error").data(format!(
                            "alert {} could not be encoded: {error}",
                            alert.cursor
                        ))
                    });
                return Some((Ok(event), self));
            }
            // Whatever raised the signal so far is covered by the read below.
            self.wakeups.mark_unchanged();
            match self
                .records
                .list_alerts(&self.tenant, Some(self.cursor), READ_BATCH)
                .await
            {
                Ok(page) if !page.alerts.is_empty() => {
                    self.ready.extend(page.alerts);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the alert stream could not read alerts; closing it");
                    let event = Event::default().event("error").data(error.message());
                    // End after this event; the client resumes from its last id.
                    self.done = true;
                    return Some((Ok(event), self));
                }
            }
            tokio::select! {
                changed = self.wakeups.changed() => {
                    if changed.is_err() {
                        // The writer stopped: the service is shutting down.
                        return None;
                    }
                }
                changed = self.stopping.changed() => {
                    if changed.is_err() {
                        // The host was dropped.
                        return None;
                    }
                }
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, StatusCode};
    use proptest::prelude::*;

    use super::*;

    fn read(value: HeaderValue) -> Result<Option<i64>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", value);
        last_event_id(&headers)
    }

    fn assert_refused(result: Result<Option<i64>, ApiError>, given: &[u8]) {
        match result {
            Ok(read) => panic!("{given:?} was read as {read:?}"),
            Err(error) => {
                assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{given:?}");
                assert_eq!(error.error().field(), Some("Last-Event-ID"), "{given:?}");
            }
        }
    }

    #[test]
    fn a_header_with_bytes_outside_ascii_is_refused_not_ignored() {
        let value = HeaderValue::from_bytes(b"12\xff").unwrap();
        assert_refused(read(value), b"12\xff");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn an_event_id_reads_back_as_its_cursor(
            cursor in any::<i64>(),
            before in "[ \t]{0,2}",
            after in "[ \t]{0,2}",
        ) {
            // What the stream writes as `id:` is what a reconnecting client sends back.
            let value = HeaderValue::from_str(&format!("{before}{cursor}{after}")).unwrap();
            prop_assert_eq!(read(value).unwrap(), Some(cursor));
        }

        #[test]
        fn any_other_header_is_refused_naming_it(bytes in prop::collection::vec(
            prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff],
            0..24,
        )) {
            let value = HeaderValue::from_bytes(&bytes).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            let trimmed = text.trim_matches([' ', '\t']);
            let result = read(value);
            if trimmed.is_empty() {
                prop_assert!(matches!(result, Ok(None)), "{:?}", bytes);
            } else if let Ok(cursor) = trimmed.parse::<i64>() {
                prop_assert_eq!(result.unwrap(), Some(cursor));
            } else {
                assert_refused(result, &bytes);
            }
        }
    }
}
