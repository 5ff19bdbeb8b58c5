//! The in-process relay between queries and the agents of each cluster.
//!
//! The host attaches every authenticated agent socket with [`Relay::attach`] and
//! pumps frames through the returned [`AgentLink`]; the connector runs commands
//! with [`Relay::run`]. Commands are correlated by `command_id`, many may be in
//! flight on one socket, and a cluster may have several agents (any live one
//! serves). One relay serves one host process; with [`Relay::set_peers`] a
//! command for a cluster whose agent is connected to another replica is sent
//! there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use patchbay_kubectl_protocol::allowlist::Allowlist;
use patchbay_kubectl_protocol::{
    Capabilities, CloseReason, ErrorCode, Message, DEFAULT_TIMEOUT_SECS, MAX_TIMEOUT_SECS,
    STALE_AFTER,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// How long past a command's own timeout the relay waits for the agent's answer
/// (the agent kills kubectl at the timeout and answers 124).
pub const ANSWER_GRACE: Duration = Duration::from_secs(10);

/// What the host sends on an agent's socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A protocol message as a text frame.
    Message(Message),
    /// Close the socket with this code and reason, then stop serving it.
    Close {
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// How a command relayed to an agent ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// Whether kubectl exited with 0.
    pub success: bool,
    /// Standard output, cut at the agent's cap.
    pub output: String,
    /// Standard error when kubectl failed.
    pub error: Option<String>,
    /// kubectl's exit code (124 on timeout, 130 when cancelled, 127 without kubectl).
    pub return_code: i32,
    /// Whether the agent cut the output at its cap.
    pub truncated: bool,
    /// How long kubectl ran, as the agent measured it.
    pub duration_ms: Option<u64>,
    /// The same in microseconds, from agents that send it.
    pub duration_us: Option<u64>,
}

/// Why a command did not produce an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum RelayError {
    /// No agent of the cluster is connected.
    #[error("no kubectl agent of this cluster is connected")]
    NotConnected,
    /// The service's own allowlist refused the command before it was sent.
    #[error("refused by the service's kubectl allowlist: {0}")]
    RefusedByService(String),
    /// The agent refused the command (`verb_not_allowed`, `busy`, `bad_request`).
    #[error("the agent refused the command ({code}): {message}")]
    RefusedByAgent {
        /// The agent's error code.
        code: ErrorCode,
        /// The agent's message.
        message: String,
    },
    /// No answer came within the command's timeout plus [`ANSWER_GRACE`]; the
    /// command was cancelled.
    #[error("the agent did not answer within {0} seconds; the command was cancelled")]
    Timeout(u64),
    /// The agent's socket closed, or its token was revoked, while the command ran.
    #[error("the agent's connection ended before it answered: {0}")]
    Lost(String),
}

/// Whether a cluster's agents can take commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// At least one agent is connected and sent a heartbeat within [`STALE_AFTER`].
    Connected,
    /// Agents are connected but none sent a heartbeat within [`STALE_AFTER`].
    Stale,
    /// No agent is connected.
    Disconnected,
}

/// A cluster's agents as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    /// Connected, stale or disconnected.
    pub state: AgentState,
    /// How many agent sockets are attached.
    pub agents: usize,
    /// The newest heartbeat (or registration) of any attached agent.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Seconds since that heartbeat.
    pub heartbeat_age_seconds: Option<u64>,
    /// The version the freshest agent reported.
    pub agent_version: Option<String>,
    /// The limits and allowlist the freshest agent reported.
    pub capabilities: Option<Capabilities>,
}

/// Settings of a relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// A cluster whose newest heartbeat is older than this shows as stale.
    pub stale_after: Duration,
    /// The service-side allowlist every command is checked against before it is
    /// sent; `None` turns the service's gate off, so only the agent's own
    /// allowlist applies (for tests that prove the agent refuses on its own).
    pub service_allowlist: Option<Allowlist>,
    /// How long past a command's own timeout the relay waits for the agent's
    /// answer before failing it as timed out ([`ANSWER_GRACE`]).
    pub answer_grace: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            stale_after: STALE_AFTER,
            service_allowlist: Some(Allowlist::default()),
            answer_grace: ANSWER_GRACE,
        }
    }
}

/// The other host replicas: where a command goes when no agent of its cluster
/// is connected to this one.
#[async_trait::async_trait]
pub trait Peers: Send + Sync + 'static {
    /// Runs the command on the replica holding the cluster's agent;
    /// [`RelayError::NotConnected`] when none does.
    async fn forward(
        &self,
        cluster_id: &str,
        argv: Vec<String>,
        timeout_secs: u64,
    ) -> Result<CommandOutcome, RelayError>;
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<CommandOutcome, RelayError>>>>>;

struct AgentInfo {
    last_heartbeat: Instant,
    last_heartbeat_at: DateTime<Utc>,
    agent_version: Option<String>,
    capabilities: Option<Capabilities>,
}

struct AgentSlot {
    id: u64,
    speaks_extensions: bool,
    outbound: mpsc::UnboundedSender<Outbound>,
    pending: Pending,
    info: Arc<Mutex<AgentInfo>>,
}

/// The relay; see the module documentation. Cheap to share behind an `Arc`.
pub struct Relay {
    settings: RelaySettings,
    peers: std::sync::OnceLock<Arc<dyn Peers>>,
    clusters: Mutex<HashMap<String, Vec<AgentSlot>>>,
    next_agent: AtomicU64,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("clusters", &lock(&self.clusters).len())
            .finish()
    }
}

impl Default for Relay {
    fn default() -> Self {
        Self::new(RelaySettings::default())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fail_all(pending: &Pending, error: &RelayError) {
    for (_, waiter) in lock(pending).drain() {
        let _ = waiter.send(Err(error.clone()));
    }
}

impl Relay {
    /// A relay with `settings`.
    pub fn new(settings: RelaySettings) -> Self {
        Self {
            settings,
            peers: std::sync::OnceLock::new(),
            clusters: Mutex::new(HashMap::new()),
            next_agent: AtomicU64::new(1),
        }
    }

    /// Sends commands for clusters without a local agent to `peers`; set once.
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        let _ = self.peers.set(peers);
    }

    /// How many clusters have an agent attached here, and how many agent sockets.
    pub fn attached(&self) -> (usize, usize) {
        let clusters = lock(&self.clusters);
        let with_agents = clusters.values().filter(|slots| !slots.is_empty()).count();
        (with_agents, clusters.values().map(Vec::len).sum())
    }

    /// Whether an agent of `cluster_id` is attached to this relay.
    pub fn has_agents(&self, cluster_id: &str) -> bool {
        lock(&self.clusters)
            .get(cluster_id)
            .is_some_and(|slots| !slots.is_empty())
    }

    /// Attaches an authenticated agent socket of `cluster_id`. The host sends what
    /// [`AgentLink::outbound`] yields and hands every received message to
    /// [`AgentLink::receive`]; dropping the link detaches the agent and fails its
    /// commands in flight.
    pub fn attach(
        self: &Arc<Self>,
        cluster_id: &str,
        cluster_name: &str,
        speaks_extensions: bool,
    ) -> AgentLink {
        let (outbound, receiver) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let info = Arc::new(Mutex::new(AgentInfo {
            last_heartbeat: Instant::now(),
            last_heartbeat_at: Utc::now(),
            agent_version: None,
            capabilities: None,
        }));
        let id = self.next_agent.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(patchbay_core::metrics::AGENT_CONNECTIONS).increment(1.0);
        lock(&self.clusters)
            .entry(cluster_id.to_owned())
            .or_default()
            .push(AgentSlot {
                id,
                speaks_extensions,
                outbound,
                pending: Arc::clone(&pending),
                info: Arc::clone(&info),
            });
        AgentLink {
            relay: Arc::clone(self),
            cluster_id: cluster_id.to_owned(),
            cluster_name: cluster_name.to_owned(),
            agent_id: id,
            receiver,
            pending,
            info,
        }
    }

    /// Closes every socket of `cluster_id` at once with `reason` and fails its
    /// commands in flight; returns how many sockets were closed.
    pub fn revoke(&self, cluster_id: &str, reason: CloseReason) -> usize {
        let slots = lock(&self.clusters).remove(cluster_id).unwrap_or_default();
        let lost = RelayError::Lost(format!("the cluster's agent token was revoked ({reason})"));
        for slot in &slots {
            fail_all(&slot.pending, &lost);
            let _ = slot.outbound.send(Outbound::Close {
                code: reason.code_for(slot.speaks_extensions),
                reason: reason.text().to_owned(),
            });
        }
        slots.len()
    }

    /// Whether `cluster_id` has agents, and how fresh their heartbeats are.
    pub fn status(&self, cluster_id: &str) -> AgentStatus {
        let clusters = lock(&self.clusters);
        let slots = clusters.get(cluster_id).map(Vec::as_slice).unwrap_or(&[]);
        let freshest = slots
            .iter()
            .map(|slot| lock(&slot.info))
            .max_by_key(|info| info.last_heartbeat);
        let Some(info) = freshest else {
            return AgentStatus {
                state: AgentState::Disconnected,
                agents: 0,
                last_heartbeat: None,
                heartbeat_age_seconds: None,
                agent_version: None,
                capabilities: None,
            };
        };
        let age = info.last_heartbeat.elapsed();
        AgentStatus {
            state: if age > self.settings.stale_after {
                AgentState::Stale
            } else {
                AgentState::Connected
            },
            agents: slots.len(),
            last_heartbeat: Some(info.last_heartbeat_at),
            heartbeat_age_seconds: Some(age.as_secs()),
            agent_version: info.agent_version.clone(),
            capabilities: info.capabilities.clone(),
        }
    }

    /// Runs kubectl with `argv` (without `kubectl`) on a live agent of `cluster_id`
    /// and waits for its answer: an agent attached here, else (with peers) one
    /// attached to another replica. `timeout_secs` 0 means
    /// [`DEFAULT_TIMEOUT_SECS`]; more than [`MAX_TIMEOUT_SECS`] is cut to it.
    /// Dropping the future cancels the command on the agent.
    pub async fn run(
        &self,
        cluster_id: &str,
        argv: Vec<String>,
        timeout_secs: u64,
    ) -> Result<CommandOutcome, RelayError> {
        let result = match self.check(&argv) {
            Err(refused) => Err(refused),
            Ok(()) => match (self.has_agents(cluster_id), self.peers.get()) {
                (false, Some(peers)) => peers.forward(cluster_id, argv, timeout_secs).await,
                _ => self.run_here(cluster_id, argv, timeout_secs).await,
            },
        };
        metrics::counter!(
            patchbay_core::metrics::AGENT_COMMANDS,
            "outcome" => outcome_label(&result),
        )
        .increment(1);
        result
    }

    fn check(&self, argv: &[String]) -> Result<(), RelayError> {
        match &self.settings.service_allowlist {
            Some(allowlist) => allowlist
                .check(argv)
                .map_err(|refusal| RelayError::RefusedByService(refusal.message)),
            None => Ok(()),
        }
    }

    /// Like [`Relay::run`], with agents attached to this replica only (for
    /// commands another replica sent here).
    pub async fn run_here(
        &self,
        cluster_id: &str,
        argv: Vec<String>,
        timeout_secs: u64,
    ) -> Result<CommandOutcome, RelayError> {
        if let Some(allowlist) = &self.settings.service_allowlist {
            allowlist
                .check(&argv)
                .map_err(|refusal| RelayError::RefusedByService(refusal.message))?;
        }
        let timeout_secs = match timeout_secs {
            0 => DEFAULT_TIMEOUT_SECS,
            seconds => seconds.min(MAX_TIMEOUT_SECS),
        };
        let command_id = uuid::Uuid::new_v4().to_string();
        let (sender, answer) = oneshot::channel();
        let (outbound, pending) = {
            let clusters = lock(&self.clusters);
            // The least busy agent whose socket is still open serves.
            let slot = clusters
                .get(cluster_id)
                .into_iter()
                .flatten()
                .filter(|slot| !slot.outbound.is_closed())
                .min_by_key(|slot| lock(&slot.pending).len())
                .ok_or(RelayError::NotConnected)?;
            lock(&slot.pending).insert(command_id.clone(), sender);
            (slot.outbound.clone(), Arc::clone(&slot.pending))
        };
        let mut guard = InFlight {
            command_id: &command_id,
            outbound: &outbound,
            pending: &pending,
            done: false,
        };
        let message = Message::kubectl_command(command_id.clone(), argv, timeout_secs);
        if outbound.send(Outbound::Message(message)).is_err() {
            guard.done = true;
            lock(&pending).remove(&command_id);
            return Err(RelayError::Lost("the agent's socket closed".into()));
        }
        let wait = Duration::from_secs(timeout_secs) + self.settings.answer_grace;
        let result = match tokio::time::timeout(wait, answer).await {
            Ok(Ok(result)) => {
                guard.done = true;
                result
            }
            Ok(Err(_)) => {
                guard.done = true;
                Err(RelayError::Lost("the agent detached".into()))
            }
            // The guard sends `cancel` as it drops.
            Err(_) => Err(RelayError::Timeout(timeout_secs)),
        };
        drop(guard);
        result
    }
}

/// The metrics label of a command's result.
fn outcome_label(result: &Result<CommandOutcome, RelayError>) -> &'static str {
    match result {
        Ok(outcome) if outcome.success => "ok",
        Ok(_) => "kubectl_failed",
        Err(RelayError::NotConnected) => "not_connected",
        Err(RelayError::RefusedByService(_)) => "refused_by_service",
        Err(RelayError::RefusedByAgent { code, .. }) if *code == ErrorCode::Busy => "busy",
        Err(RelayError::RefusedByAgent { .. }) => "refused_by_agent",
        Err(RelayError::Timeout(_)) => "timeout",
        Err(RelayError::Lost(_)) => "lost",
    }
}

/// A command waiting for its answer; cancelled on the agent when the wait ends
/// without one (timeout, or the caller gave up).
struct InFlight<'a> {
    command_id: &'a str,
    outbound: &'a mpsc::UnboundedSender<Outbound>,
    pending: &'a Pending,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if lock(self.pending).remove(self.command_id).is_some() {
            let _ = self.outbound.send(Outbound::Message(Message::Cancel {
                command_id: self.command_id.to_owned(),
            }));
        }
    }
}

/// One attached agent socket; see [`Relay::attach`].
pub struct AgentLink {
    relay: Arc<Relay>,
    cluster_id: String,
    cluster_name: String,
    agent_id: u64,
    receiver: mpsc::UnboundedReceiver<Outbound>,
    pending: Pending,
    info: Arc<Mutex<AgentInfo>>,
}

impl std::fmt::Debug for AgentLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLink")
            .field("cluster_id", &self.cluster_id)
            .field("agent_id", &self.agent_id)
            .finish()
    }
}

impl AgentLink {
    /// The cluster this agent serves (the server's id, bound to the token).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The next frame to send; `None` once the relay dropped this agent.
    pub async fn outbound(&mut self) -> Option<Outbound> {
        self.receiver.recv().await
    }

    /// Handles one message from the agent and returns the reply to send, if any:
    /// `register` is answered with `connected` (the server's cluster id, whatever
    /// the agent claims), `heartbeat` with `heartbeat_ack`; answers and refusals
    /// go to the command waiting for them.
    pub fn receive(&self, message: Message) -> Option<Message> {
        match message {
            Message::Register {
                agent_version,
                capabilities,
                ..
            } => {
                let mut info = lock(&self.info);
                info.agent_version = agent_version;
                info.capabilities = capabilities;
                info.last_heartbeat = Instant::now();
                info.last_heartbeat_at = Utc::now();
                Some(Message::Connected {
                    cluster_id: self.cluster_id.clone(),
                    cluster_name: self.cluster_name.clone(),
                })
            }
            Message::Heartbeat { .. } => {
                let mut info = lock(&self.info);
                info.last_heartbeat = Instant::now();
                info.last_heartbeat_at = Utc::now();
                Some(Message::HeartbeatAck)
            }
            Message::CommandResponse {
                command_id,
                success,
                output,
                error,
                return_code,
                truncated,
                duration_ms,
                duration_us,
                ..
            } => {
                self.resolve(
                    &command_id,
                    Ok(CommandOutcome {
                        success,
                        output,
                        error,
                        return_code,
                        truncated: truncated.unwrap_or(false),
                        duration_ms,
                        duration_us,
                    }),
                );
                None
            }
            Message::Error {
                command_id: Some(command_id),
                code,
                message,
            } => {
                self.resolve(
                    &command_id,
                    Err(RelayError::RefusedByAgent { code, message }),
                );
                None
            }
            Message::Error {
                command_id: None,
                code,
                message,
            } => {
                tracing::warn!(cluster = %self.cluster_id, %code, %message, "the agent reported an error");
                None
            }
            // Host-bound types an agent must not send, and unknown types, are dropped.
            _ => None,
        }
    }

    fn resolve(&self, command_id: &str, result: Result<CommandOutcome, RelayError>) {
        match lock(&self.pending).remove(command_id) {
            Some(waiter) => {
                let _ = waiter.send(result);
            }
            None => {
                tracing::debug!(cluster = %self.cluster_id, %command_id, "dropped an answer nobody waits for")
            }
        }
    }
}

impl Drop for AgentLink {
    fn drop(&mut self) {
        metrics::gauge!(patchbay_core::metrics::AGENT_CONNECTIONS).decrement(1.0);
        let mut clusters = lock(&self.relay.clusters);
        if let Some(slots) = clusters.get_mut(&self.cluster_id) {
            slots.retain(|slot| slot.id != self.agent_id);
            if slots.is_empty() {
                clusters.remove(&self.cluster_id);
            }
        }
        drop(clusters);
        fail_all(
            &self.pending,
            &RelayError::Lost("the agent disconnected".into()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn commands_are_correlated_and_many_run_on_one_socket() {
        let relay = Arc::new(Relay::default());
        let mut link = relay.attach("c1", "prod", true);
        let first = tokio::spawn({
            let relay = Arc::clone(&relay);
            async move { relay.run("c1", argv("get pods"), 5).await }
        });
        let second = tokio::spawn({
            let relay = Arc::clone(&relay);
            async move { relay.run("c1", argv("version"), 5).await }
        });
        let mut ids = Vec::new();
        for _ in 0..2 {
            match link.outbound().await.unwrap() {
                Outbound::Message(Message::KubectlCommand {
                    command_id, args, ..
                }) => ids.push((command_id, args.unwrap())),
                other => panic!("{other:?}"),
            }
        }
        // Answer in the opposite order.
        for (id, args) in ids.iter().rev() {
            link.receive(Message::CommandResponse {
                command_id: id.clone(),
                success: true,
                output: args.join(" "),
                error: None,
                return_code: 0,
                truncated: None,
                duration_ms: Some(3),
                duration_us: Some(3_000),
                stdout_bytes: None,
            });
        }
        assert_eq!(first.await.unwrap().unwrap().output, "get pods");
        assert_eq!(second.await.unwrap().unwrap().output, "version");
    }

    #[tokio::test]
    async fn the_service_gate_refuses_before_sending() {
        let relay = Arc::new(Relay::default());
        let mut link = relay.attach("c1", "prod", true);
        let refused = relay.run("c1", argv("delete pod x"), 5).await.unwrap_err();
        assert!(
            matches!(refused, RelayError::RefusedByService(_)),
            "{refused:?}"
        );
        let refused = relay
            .run("c1", argv("get pods --kubeconfig /etc/x"), 5)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, RelayError::RefusedByService(_)),
            "{refused:?}"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), link.outbound())
                .await
                .is_err(),
            "nothing reached the agent"
        );
    }

    #[tokio::test]
    async fn revoke_closes_every_socket_and_fails_commands_in_flight() {
        let relay = Arc::new(Relay::default());
        let mut v1 = relay.attach("c1", "prod", false);
        let mut extended = relay.attach("c1", "prod", true);
        let running = tokio::spawn({
            let relay = Arc::clone(&relay);
            async move { relay.run("c1", argv("get pods"), 60).await }
        });
        // Wait until the command is out.
        let sent = tokio::select! {
            frame = v1.outbound() => frame,
            frame = extended.outbound() => frame,
        };
        assert!(matches!(
            sent,
            Some(Outbound::Message(Message::KubectlCommand { .. }))
        ));
        assert_eq!(relay.revoke("c1", CloseReason::TokenRevoked), 2);
        let error = running.await.unwrap().unwrap_err();
        assert!(matches!(error, RelayError::Lost(_)), "{error:?}");
        let close = |frame| match frame {
            Some(Outbound::Close { code, reason }) => (code, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            close(v1.outbound().await),
            (1008, "Token revoked".to_owned())
        );
        assert_eq!(
            close(extended.outbound().await),
            (4003, "Token revoked".to_owned())
        );
        assert_eq!(relay.status("c1").state, AgentState::Disconnected);
        assert_eq!(
            relay.run("c1", argv("version"), 5).await,
            Err(RelayError::NotConnected)
        );
    }

    #[tokio::test]
    async fn a_detached_agent_fails_its_commands_and_another_serves() {
        let relay = Arc::new(Relay::default());
        let mut first = relay.attach("c1", "prod", true);
        let running = tokio::spawn({
            let relay = Arc::clone(&relay);
            async move { relay.run("c1", argv("get pods"), 60).await }
        });
        assert!(matches!(first.outbound().await, Some(Outbound::Message(_))));
        let mut second = relay.attach("c1", "prod", true);
        drop(first);
        assert_eq!(
            running.await.unwrap(),
            Err(RelayError::Lost("the agent disconnected".into()))
        );
        assert_eq!(relay.status("c1").agents, 1);
        let again = tokio::spawn({
            let relay = Arc::clone(&relay);
            async move { relay.run("c1", argv("version"), 5).await }
        });
        let Some(Outbound::Message(Message::KubectlCommand { command_id, .. })) =
            second.outbound().await
        else {
            panic!("the second agent serves");
        };
        second.receive(Message::Error {
            command_id: Some(command_id),
            code: ErrorCode::Busy,
            message: "the agent already runs 8 commands".into(),
        });
        assert!(matches!(
            again.await.unwrap(),
            Err(RelayError::RefusedByAgent {
                code: ErrorCode::Busy,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn register_binds_the_server_cluster_id_and_heartbeats_keep_it_fresh() {
        let relay = Arc::new(Relay::new(RelaySettings {
            stale_after: Duration::from_millis(100),
            ..RelaySettings::default()
        }));
        let link = relay.attach("server-id", "prod", true);
        let reply = link.receive(Message::Register {
            cluster_id: Some("claimed-by-agent".into()),
            agent_version: Some("1.2.3".into()),
            protocol_version: Some(1),
            capabilities: None,
        });
        assert_eq!(
            reply,
            Some(Message::Connected {
                cluster_id: "server-id".into(),
                cluster_name: "prod".into()
            })
        );
        assert!(relay.status("claimed-by-agent").state == AgentState::Disconnected);
        let status = relay.status("server-id");
        assert_eq!(status.state, AgentState::Connected);
        assert_eq!(status.agent_version.as_deref(), Some("1.2.3"));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(relay.status("server-id").state, AgentState::Stale);
        assert_eq!(
            link.receive(Message::Heartbeat { cluster_id: None }),
            Some(Message::HeartbeatAck)
        );
        assert_eq!(relay.status("server-id").state, AgentState::Connected);
    }

    // Real time (the shortest timeout is a second): tokio's paused clock would need
    // its `test-util` feature, which changes tokio's features for the whole
    // workspace's test build and so makes every crate above tokio build twice.
    #[tokio::test]
    async fn an_unanswered_command_times_out_and_is_cancelled() {
        let relay = Arc::new(Relay::new(RelaySettings {
            answer_grace: Duration::from_millis(100),
            ..RelaySettings::default()
        }));
        let mut link = relay.attach("c1", "prod", true);
        let running = tokio::spawn({
            let relay = Arc::clone(&relay);
            async move { relay.run("c1", argv("get pods"), 1).await }
        });
        let Some(Outbound::Message(Message::KubectlCommand {
            command_id,
            timeout,
            ..
        })) = link.outbound().await
        else {
            panic!("the command is sent");
        };
        assert_eq!(timeout, 1);
        assert_eq!(running.await.unwrap(), Err(RelayError::Timeout(1)));
        assert_eq!(
            link.outbound().await,
            Some(Outbound::Message(Message::Cancel { command_id }))
        );
    }

    #[tokio::test]
    async fn timeouts_default_to_60_and_stop_at_300() {
        let relay = Arc::new(Relay::default());
        let mut link = relay.attach("c1", "prod", true);
        for (asked, sent) in [(0, 60), (301, 300), (7, 7)] {
            let running = tokio::spawn({
                let relay = Arc::clone(&relay);
                async move { relay.run("c1", argv("version"), asked).await }
            });
            match link.outbound().await {
                Some(Outbound::Message(Message::KubectlCommand { timeout, .. })) => {
                    assert_eq!(timeout, sent)
                }
                other => panic!("{other:?}"),
            }
            running.abort();
            // The abandoned wait cancels the command.
            assert!(matches!(
                link.outbound().await,
                Some(Outbound::Message(Message::Cancel { .. }))
            ));
        }
    }
}
