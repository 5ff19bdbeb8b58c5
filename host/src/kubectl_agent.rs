//! The host's side of the Kubernetes connector: agent tokens (issued at "Add
//! Cluster", stored as SHA-256 and a display prefix), the `/kubectl-agent`
//! WebSocket endpoint agents connect to, and revocation. Authenticated sockets are
//! attached to the connector's [`Relay`], which the host hands the connector
//! through [`patchbay_core::ConnectorEnv::insert_extension`].
//!
//! With SQLite the host is one replica and the relay is in process. With
//! PostgreSQL each replica takes a cluster's lease while it holds one of its agent
//! sockets, and a replica without a socket relays the command to the lease's
//! holder over [`AgentBus`] (`LISTEN/NOTIFY`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use patchbay_connector_kubernetes::client::{
    AgentState, CommandOutcome, Outbound, Peers, Relay, RelayError, ANSWER_GRACE,
};
use patchbay_connector_kubernetes::install::{self, InstallSteps};
use patchbay_connector_kubernetes::KubernetesConfig;
use patchbay_core::{Error, SecretString};
use patchbay_kubectl_protocol::{
    CloseReason, Message, AGENT_PATH, DEFAULT_TIMEOUT_SECS, MAX_FRAME_BYTES, MAX_TIMEOUT_SECS,
    PING_INTERVAL, PING_TIMEOUT, PROTOCOL_HEADER, STALE_AFTER, TOKEN_PREFIX,
};
use patchbay_store::agent_bus::{AgentBus, BusHandler};
use patchbay_store::{
    AgentActivity, AgentTokenRecord, AgentTokenStatus, ConnectionRecord, RecordStore,
};
use serde::Serialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::auth::{generate_token, hash_token};
use crate::error::ApiError;
use crate::state::AppState;

/// The connector whose connections have agents.
pub const CONNECTOR: &str = patchbay_connector_kubernetes::CONNECTOR_ID;
/// How many characters of a token are kept to recognise it: the prefix and six more.
pub const DISPLAY_PREFIX_CHARS: usize = TOKEN_PREFIX.len() + 6;

/// The `/kubectl-agent` route.
pub fn router() -> Router<AppState> {
    Router::new().route(AGENT_PATH, get(agent_socket))
}

/// The other replicas, reached over PostgreSQL.
pub struct PgPeers {
    bus: Arc<AgentBus>,
}

/// What one replica asks another over the bus.
#[derive(Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum BusRequest {
    /// Run a command on an agent attached there.
    Run {
        cluster_id: String,
        argv: Vec<String>,
        timeout_secs: u64,
    },
    /// Close the cluster's sockets there: its token was revoked.
    Revoke { cluster_id: String },
}

#[async_trait::async_trait]
impl Peers for PgPeers {
    async fn forward(
        &self,
        cluster_id: &str,
        argv: Vec<String>,
        timeout_secs: u64,
    ) -> Result<CommandOutcome, RelayError> {
        let lost = |error: Error| RelayError::Lost(format!("relaying failed: {}", error.message()));
        let holder = self
            .bus
            .holder(cluster_id, STALE_AFTER)
            .await
            .map_err(lost)?;
        let Some((replica, _)) = holder.filter(|(replica, _)| replica != self.bus.replica_id())
        else {
            return Err(RelayError::NotConnected);
        };
        let seconds = match timeout_secs {
            0 => DEFAULT_TIMEOUT_SECS,
            seconds => seconds.min(MAX_TIMEOUT_SECS),
        };
        let request = BusRequest::Run {
            cluster_id: cluster_id.to_owned(),
            argv,
            timeout_secs,
        };
        let body =
            serde_json::to_value(&request).map_err(|error| RelayError::Lost(error.to_string()))?;
        let wait = Duration::from_secs(seconds) + ANSWER_GRACE + ANSWER_GRACE;
        let answer = self.bus.request(&replica, body, wait).await.map_err(lost)?;
        serde_json::from_value::<Result<CommandOutcome, RelayError>>(answer).unwrap_or_else(
            |error| {
                Err(RelayError::Lost(format!(
                    "replica {replica} answered in an unknown shape: {error}"
                )))
            },
        )
    }
}

/// Starts this replica's end of the bus over the PostgreSQL database at `url`
/// and lets `relay` send commands to the other replicas through it.
pub async fn start_bus(url: &str, relay: &Arc<Relay>) -> Result<Arc<AgentBus>, Error> {
    let weak = Arc::downgrade(relay);
    let handler: BusHandler = Arc::new(move |body| {
        let relay = weak.upgrade();
        Box::pin(async move {
            match (relay, serde_json::from_value::<BusRequest>(body)) {
                (
                    Some(relay),
                    Ok(BusRequest::Run {
                        cluster_id,
                        argv,
                        timeout_secs,
                    }),
                ) => {
                    let result = relay.run_here(&cluster_id, argv, timeout_secs).await;
                    serde_json::to_value(result).unwrap_or_default()
                }
                (Some(relay), Ok(BusRequest::Revoke { cluster_id })) => {
                    json!(relay.revoke(&cluster_id, CloseReason::TokenRevoked))
                }
                (None, _) => {
                    serde_json::to_value(Err::<CommandOutcome, _>(RelayError::NotConnected))
                        .unwrap_or_default()
                }
                (_, Err(error)) => serde_json::to_value(Err::<CommandOutcome, _>(
                    RelayError::Lost(format!("a relayed request was unreadable: {error}")),
                ))
                .unwrap_or_default(),
            }
        })
    });
    let bus = AgentBus::start(url, handler).await?;
    relay.set_peers(Arc::new(PgPeers {
        bus: Arc::clone(&bus),
    }));
    Ok(bus)
}

/// A token just issued: shown once, never stored.
pub struct IssuedToken {
    /// The token.
    pub token: SecretString,
    /// The stored record (hash and prefix).
    pub record: AgentTokenRecord,
}

/// Issues the agent token of a cluster connection and stores its hash, bound to
/// the connection; the expiry comes from the cluster's `expires_days`.
pub async fn issue_token(
    records: &dyn RecordStore,
    connection: &ConnectionRecord,
) -> Result<IssuedToken, Error> {
    let config: KubernetesConfig =
        serde_json::from_value(connection.metadata.clone()).map_err(|error| {
            Error::internal(format!(
                "the cluster's stored settings are unreadable: {error}"
            ))
            .with_connector(CONNECTOR)
        })?;
    let token = generate_token(TOKEN_PREFIX);
    let now = Utc::now();
    let record = AgentTokenRecord {
        connection_id: connection.id.clone(),
        cluster_name: config.cluster_name,
        token_hash: hash_token(token.expose()),
        token_prefix: token.expose().chars().take(DISPLAY_PREFIX_CHARS).collect(),
        status: AgentTokenStatus::Active,
        created_at: now,
        expires_at: config
            .token_expires_days
            .map(|days| now + chrono::TimeDelta::days(i64::from(days))),
        last_connected_at: None,
        last_heartbeat: None,
        agent_version: None,
        capabilities: None,
    };
    records.insert_agent_token(&record).await?;
    Ok(IssuedToken { token, record })
}

/// The `agent` part of the "Add Cluster" answer: the token, the `values.yaml`
/// and the commands, shown this once.
pub fn install_answer(public_url: &str, issued: &IssuedToken) -> serde_json::Value {
    let values = install::values_yaml(public_url, &issued.token);
    json!({
        "token": issued.token.expose(),
        "token_prefix": issued.record.token_prefix,
        "expires_at": issued.record.expires_at,
        "values_yaml": values.expose(),
        "install": InstallSteps::new(public_url),
        "note": "the token and values.yaml are shown once; save values.yaml and run the helm install command in the cluster",
    })
}

/// What revoking a cluster's agent access did.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRevocation {
    /// How many active tokens were revoked.
    pub tokens_revoked: u64,
    /// How many live agent sockets were closed.
    pub sockets_closed: usize,
    /// The command that removes the agent from the cluster.
    pub helm_uninstall: &'static str,
}

/// Revokes the cluster's tokens, then closes its live sockets ("Token revoked")
/// and fails its commands in flight.
pub async fn revoke(state: &AppState, connection_id: &str) -> Result<AgentRevocation, Error> {
    let tokens_revoked = state
        .records
        .set_agent_token_status(connection_id, AgentTokenStatus::Revoked)
        .await?;
    let mut sockets_closed = state
        .kubectl_relay
        .revoke(connection_id, CloseReason::TokenRevoked);
    // The replica holding the cluster's lease closes its sockets too; sockets on
    // other replicas close at their next heartbeat, which re-reads the token.
    if let Some(bus) = &state.kubectl_bus {
        if let Some((replica, _)) = bus.holder(connection_id, STALE_AFTER).await? {
            if replica != bus.replica_id() {
                let request = serde_json::to_value(BusRequest::Revoke {
                    cluster_id: connection_id.to_owned(),
                })
                .map_err(|error| Error::internal(error.to_string()))?;
                // The token is revoked already: a holder that does not answer
                // closes its sockets at their next heartbeat.
                match bus.request(&replica, request, ANSWER_GRACE).await {
                    Ok(closed) => sockets_closed += closed.as_u64().unwrap_or(0) as usize,
                    Err(error) => {
                        tracing::warn!(connection = %connection_id, %replica, %error, "the replica holding the agent did not confirm closing its socket")
                    }
                }
            }
        }
    }
    tracing::info!(connection = %connection_id, tokens_revoked, sockets_closed, "revoked the cluster's agent access");
    Ok(AgentRevocation {
        tokens_revoked,
        sockets_closed,
        helm_uninstall: install::HELM_UNINSTALL,
    })
}

/// The agent status of a connection, for the API.
///
/// A replica without the cluster's socket reports the agent as connected when
/// another replica holds a fresh lease for it (so this replica serves the cluster
/// through that one), with `"via_replica": true`.
pub async fn status(state: &AppState, connection_id: &str) -> serde_json::Value {
    let local = state.kubectl_relay.status(connection_id);
    let here = local.state != AgentState::Disconnected;
    let mut shown = serde_json::to_value(local).unwrap_or_default();
    if let (false, Some(bus)) = (here, &state.kubectl_bus) {
        match bus.holder(connection_id, STALE_AFTER).await {
            Ok(Some((replica, _))) if replica != bus.replica_id() => {
                shown["state"] = json!("connected");
                shown["via_replica"] = json!(true);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not read the cluster's lease for its status")
            }
        }
    }
    shown
}

/// Why an upgrade request authenticates, or the reason its socket is closed.
async fn authenticate(
    records: &dyn RecordStore,
    headers: &HeaderMap,
) -> Result<Result<AgentTokenRecord, CloseReason>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Err(CloseReason::MissingAuthorization));
    };
    let Ok(value) = value.to_str() else {
        return Ok(Err(CloseReason::InvalidToken));
    };
    let mut parts = value.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let token = parts.next().map(str::trim).unwrap_or("");
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Ok(Err(CloseReason::MissingAuthorization));
    }
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(Err(CloseReason::InvalidToken));
    }
    let hash = hash_token(token);
    let Some(record) = records.find_agent_token(&hash).await? else {
        return Ok(Err(CloseReason::InvalidToken));
    };
    if !bool::from(record.token_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(Err(CloseReason::InvalidToken));
    }
    match record.status {
        AgentTokenStatus::Revoked => Ok(Err(CloseReason::TokenRevoked)),
        AgentTokenStatus::Expired => Ok(Err(CloseReason::TokenExpired)),
        AgentTokenStatus::Active if record.is_expired_at(Utc::now()) => {
            records
                .set_agent_token_status(&record.connection_id, AgentTokenStatus::Expired)
                .await?;
            Ok(Err(CloseReason::TokenExpired))
        }
        AgentTokenStatus::Active => Ok(Ok(record)),
    }
}

/// `GET /kubectl-agent`: the token is checked before the upgrade completes. A
/// refused agent gets the upgrade only to read its close frame (1008 with the v1
/// text, or the terminal 4xxx code when it sent [`PROTOCOL_HEADER`]), and nothing
/// else; an accepted one is attached to the relay.
async fn agent_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let speaks_extensions = headers.contains_key(PROTOCOL_HEADER);
    let upgrade = upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    match authenticate(state.records.as_ref(), &headers).await {
        Err(error) => {
            tracing::warn!(error = %error, "could not check a kubectl agent's token");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error).into_response()
        }
        Ok(Err(reason)) => {
            tracing::warn!(reason = reason.text(), "refused a kubectl agent");
            let code = reason.code_for(speaks_extensions);
            upgrade.on_upgrade(move |mut socket| async move {
                let _ = socket
                    .send(Frame::Close(Some(CloseFrame {
                        code,
                        reason: reason.text().into(),
                    })))
                    .await;
                // Let the agent read the close before the connection drops.
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(Ok(_)) = socket.recv().await {}
                })
                .await;
            })
        }
        Ok(Ok(token)) => {
            upgrade.on_upgrade(move |socket| serve(state, token, socket, speaks_extensions))
        }
    }
}

async fn serve(
    state: AppState,
    token: AgentTokenRecord,
    socket: WebSocket,
    speaks_extensions: bool,
) {
    let relay: Arc<Relay> = Arc::clone(&state.kubectl_relay);
    let mut link = relay.attach(&token.connection_id, &token.cluster_name, speaks_extensions);
    let cluster = token.connection_id.clone();
    tracing::info!(%cluster, "kubectl agent connected");
    record(
        &state,
        &token,
        AgentActivity {
            connected_at: Some(Utc::now()),
            heartbeat_at: Some(Utc::now()),
            ..AgentActivity::default()
        },
    )
    .await;
    let bus = state.kubectl_bus.clone();
    let mut epoch = match &bus {
        Some(bus) => take_lease(bus, &cluster).await,
        None => None,
    };
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.reset();
    let mut awaiting_pong: Option<tokio::time::Instant> = None;
    let reason = loop {
        let pong_deadline = async {
            match awaiting_pong {
                Some(sent) => tokio::time::sleep_until(sent + PING_TIMEOUT).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = stream.next() => match frame {
                None => break "the agent closed the connection".to_owned(),
                Some(Err(error)) => break format!("the connection failed: {error}"),
                Some(Ok(Frame::Text(text))) => {
                    let message = match Message::parse(text.as_str()) {
                        Ok(message) => message,
                        Err(error) => {
                            tracing::warn!(%cluster, %error, "dropped a frame that is not a protocol message");
                            continue;
                        }
                    };
                    let activity = match &message {
                        Message::Register { agent_version, capabilities, .. } => Some(AgentActivity {
                            heartbeat_at: Some(Utc::now()),
                            agent_version: agent_version.clone(),
                            capabilities: capabilities.as_ref().and_then(|c| serde_json::to_value(c).ok()),
                            ..AgentActivity::default()
                        }),
                        Message::Heartbeat { .. } => Some(AgentActivity {
                            heartbeat_at: Some(Utc::now()),
                            ..AgentActivity::default()
                        }),
                        _ => None,
                    };
                    if activity.is_some() {
                        if let Some(reason) = still_refused(&state, &token).await {
                            let _ = sink.send(close(reason.code_for(speaks_extensions), reason.text())).await;
                            break reason.text().to_owned();
                        }
                    }
                    if let Some(activity) = activity {
                        record(&state, &token, activity).await;
                        if let Some(bus) = &bus {
                            epoch = refresh_lease(bus, &cluster, epoch).await;
                        }
                    }
                    if let Some(reply) = link.receive(message) {
                        if let Err(error) = sink.send(Frame::Text(reply.to_json().into())).await {
                            break format!("sending failed: {error}");
                        }
                    }
                }
                Some(Ok(Frame::Pong(_))) => awaiting_pong = None,
                Some(Ok(Frame::Close(_))) => break "the agent closed the connection".to_owned(),
                // Pings are answered by the WebSocket layer; binary frames are not part of the protocol.
                Some(Ok(_)) => {}
            },
            outbound = link.outbound() => match outbound {
                Some(Outbound::Message(message)) => {
                    if let Err(error) = sink.send(Frame::Text(message.to_json().into())).await {
                        break format!("sending failed: {error}");
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    let _ = sink.send(close(code, &reason)).await;
                    break reason;
                }
                None => break "the relay dropped the agent".to_owned(),
            },
            _ = ping.tick() => {
                if awaiting_pong.is_none() {
                    awaiting_pong = Some(tokio::time::Instant::now());
                }
                if let Err(error) = sink.send(Frame::Ping(Vec::new().into())).await {
                    break format!("sending a ping failed: {error}");
                }
            }
            () = pong_deadline => break format!("no pong within {} s", PING_TIMEOUT.as_secs()),
        }
    };
    drop(link);
    if let (Some(bus), Some(held)) = (&bus, epoch) {
        // Removed only with this socket's epoch; kept for this replica's other sockets.
        match bus.release(&cluster, held).await {
            Ok(true) if relay.has_agents(&cluster) => {
                take_lease(bus, &cluster).await;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%cluster, %error, "could not release the cluster's lease"),
        }
    }
    tracing::info!(%cluster, %reason, "kubectl agent disconnected");
}

/// Why a connected agent's token no longer authenticates, read again at each
/// heartbeat: expired meanwhile, or revoked on another replica.
async fn still_refused(state: &AppState, token: &AgentTokenRecord) -> Option<CloseReason> {
    if token.is_expired_at(Utc::now()) {
        return Some(CloseReason::TokenExpired);
    }
    match state.records.find_agent_token(&token.token_hash).await {
        Ok(Some(current)) => match current.status {
            AgentTokenStatus::Active => None,
            AgentTokenStatus::Revoked => Some(CloseReason::TokenRevoked),
            AgentTokenStatus::Expired => Some(CloseReason::TokenExpired),
        },
        Ok(None) => Some(CloseReason::InvalidToken),
        // The database is unreachable: keep serving rather than drop every agent.
        Err(_) => None,
    }
}

async fn take_lease(bus: &AgentBus, cluster: &str) -> Option<i64> {
    match bus.acquire(cluster).await {
        Ok(epoch) => Some(epoch),
        Err(error) => {
            tracing::warn!(%cluster, %error, "could not take the cluster's lease");
            None
        }
    }
}

/// Refreshes the lease on a heartbeat; takes it again when nobody holds a fresh one.
async fn refresh_lease(bus: &AgentBus, cluster: &str, epoch: Option<i64>) -> Option<i64> {
    if let Some(held) = epoch {
        if bus.heartbeat(cluster, held).await.unwrap_or(false) {
            return epoch;
        }
    }
    match bus.holder(cluster, STALE_AFTER).await {
        Ok(Some(_)) => epoch,
        _ => take_lease(bus, cluster).await,
    }
}

fn close(code: u16, reason: &str) -> Frame {
    Frame::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

async fn record(state: &AppState, token: &AgentTokenRecord, activity: AgentActivity) {
    if let Err(error) = state
        .records
        .record_agent_activity(&token.token_hash, &activity)
        .await
    {
        tracing::warn!(cluster = %token.connection_id, %error, "could not record the agent's activity");
    }
}
