//! One WebSocket connection to the service: register, heartbeats, pings, and
//! commands run concurrently outside the receive loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use patchbay_kubectl_protocol::{
    Capabilities, CloseReason, ErrorCode, Message, DEFAULT_TIMEOUT_SECS, MAX_FRAME_BYTES,
    MAX_TIMEOUT_SECS, PROTOCOL_HEADER, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::config::Config;
use crate::runner::{self, Limits};

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The service refused the token: retrying cannot help.
    Terminal(CloseReason),
    /// The connection could not be made, or was lost or closed; retry.
    Retry {
        /// Whether the WebSocket was up (so the backoff may reset).
        was_connected: bool,
        /// Why, for the log.
        reason: String,
    },
    /// The agent is shutting down.
    Shutdown,
}

type Running = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

/// Connects once and serves until the connection ends or `shutdown` turns true.
/// `on_connected` runs once the WebSocket is up (to flip `/ready`).
pub async fn run(
    config: &Config,
    mut shutdown: watch::Receiver<bool>,
    on_connected: impl FnOnce(),
) -> SessionEnd {
    let mut request = match config.ws_url.as_str().into_client_request() {
        Ok(request) => request,
        Err(error) => {
            return SessionEnd::Retry {
                was_connected: false,
                reason: format!("the WebSocket URL is unusable: {error}"),
            }
        }
    };
    let bearer = format!("Bearer {}", config.token.expose());
    let Ok(mut authorization) = HeaderValue::from_str(&bearer) else {
        return SessionEnd::Terminal(CloseReason::InvalidToken);
    };
    authorization.set_sensitive(true);
    let headers = request.headers_mut();
    headers.insert("authorization", authorization);
    headers.insert(PROTOCOL_HEADER, HeaderValue::from(PROTOCOL_VERSION));
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
    let stream = tokio::select! {
        result = connecting => match result {
            Ok((stream, _)) => stream,
            Err(error) => {
                return SessionEnd::Retry { was_connected: false, reason: format!("connecting failed: {error}") }
            }
        },
        () = stopped(&mut shutdown) => return SessionEnd::Shutdown,
    };
    on_connected();
    tracing::info!(url = %config.ws_url, "connected");
    let (mut sink, mut incoming) = stream.split();

    let capabilities = Capabilities {
        max_concurrency: u32::try_from(config.max_concurrency).unwrap_or(u32::MAX),
        max_output_bytes: config.max_output_bytes as u64,
        allowlist_version: config.allowlist.version(),
    };
    let register = Message::Register {
        cluster_id: None,
        agent_version: Some(config.agent_version.clone()),
        protocol_version: Some(PROTOCOL_VERSION),
        capabilities: Some(capabilities),
    };
    if let Err(error) = sink.send(Frame::text(register.to_json())).await {
        return lost(format!("sending register failed: {error}"));
    }

    // Unbounded so refusals are never dropped; answers are bounded by the concurrency limit.
    let (outgoing, mut to_send) = mpsc::unbounded_channel::<Message>();
    let running: Running = Arc::default();
    let slots = Arc::new(Semaphore::new(config.max_concurrency));
    let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
    heartbeat.reset();
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.reset();
    let mut awaiting_pong: Option<tokio::time::Instant> = None;

    let end = loop {
        let pong_deadline = async {
            match awaiting_pong {
                Some(sent) => tokio::time::sleep_until(sent + config.ping_timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = incoming.next() => match frame {
                None => break lost("the service closed the connection".into()),
                Some(Err(error)) => break lost(format!("the connection failed: {error}")),
                Some(Ok(Frame::Text(text))) => {
                    handle_text(config, text.as_str(), &outgoing, &running, &slots);
                }
                Some(Ok(Frame::Pong(_))) => awaiting_pong = None,
                Some(Ok(Frame::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    break match CloseReason::from_close(code, &reason) {
                        Some(terminal) => SessionEnd::Terminal(terminal),
                        None => lost(format!("the service closed the connection ({code} {reason})")),
                    };
                }
                // Pings are answered by tungstenite; binary frames are not part of the protocol.
                Some(Ok(_)) => {}
            },
            Some(message) = to_send.recv() => {
                if let Err(error) = sink.send(Frame::text(frame_within_limit(message))).await {
                    break lost(format!("sending failed: {error}"));
                }
            }
            _ = heartbeat.tick() => {
                let beat = Message::Heartbeat { cluster_id: None };
                if let Err(error) = sink.send(Frame::text(beat.to_json())).await {
                    break lost(format!("sending heartbeat failed: {error}"));
                }
            }
            _ = ping.tick() => {
                if awaiting_pong.is_none() {
                    awaiting_pong = Some(tokio::time::Instant::now());
                }
                if let Err(error) = sink.send(Frame::Ping(Vec::new().into())).await {
                    break lost(format!("sending ping failed: {error}"));
                }
            }
            () = pong_deadline => {
                break lost(format!("no pong within {:?}", config.ping_timeout));
            }
            () = stopped(&mut shutdown) => {
                let _ = sink.send(Frame::Close(None)).await;
                break SessionEnd::Shutdown;
            }
        }
    };
    // Commands whose answer can no longer be delivered are killed.
    running.lock().unwrap_or_else(|p| p.into_inner()).clear();
    end
}

/// Resolves once `shutdown` turns true (or its sender is gone). The guard that
/// `wait_for` returns is dropped here, so callers' futures stay `Send`.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

/// The message as a text frame of at most [`MAX_FRAME_BYTES`]. JSON escaping can
/// make a capped output several times longer (control characters become
/// `\u00XX`), so a response that would not fit has its output and error halved
/// until it does, and is marked truncated.
pub fn frame_within_limit(mut message: Message) -> String {
    loop {
        let json = message.to_json();
        if json.len() <= MAX_FRAME_BYTES {
            return json;
        }
        match &mut message {
            Message::CommandResponse {
                output,
                error,
                truncated,
                ..
            } => {
                halve(output);
                if let Some(error) = error {
                    halve(error);
                }
                *truncated = Some(true);
            }
            Message::Error { message: text, .. } => halve(text),
            // Other messages carry no free text and are far below the limit.
            _ => return json,
        }
    }
}

/// Keeps the first half of `text`, cut at a character boundary.
fn halve(text: &mut String) {
    let mut at = text.len() / 2;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
}

fn lost(reason: String) -> SessionEnd {
    SessionEnd::Retry {
        was_connected: true,
        reason,
    }
}

fn error_message(command_id: Option<String>, code: ErrorCode, message: String) -> Message {
    Message::Error {
        command_id,
        code,
        message,
    }
}

fn handle_text(
    config: &Config,
    text: &str,
    outgoing: &mpsc::UnboundedSender<Message>,
    running: &Running,
    slots: &Arc<Semaphore>,
) {
    let message = match Message::parse(text) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!(%error, "dropped a frame that is not a protocol message");
            let _ = outgoing.send(error_message(
                None,
                ErrorCode::BadRequest,
                format!("the frame is not a protocol message: {error}"),
            ));
            return;
        }
    };
    match message {
        Message::KubectlCommand {
            ref command_id,
            timeout,
            ..
        } => {
            let argv = message.kubectl_argv().unwrap_or_default();
            start_command(
                config,
                command_id.clone(),
                argv,
                timeout,
                outgoing,
                running,
                slots,
            );
        }
        Message::Cancel { command_id } => {
            let sender = running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&command_id);
            match sender {
                Some(sender) => {
                    let _ = sender.send(());
                }
                None => tracing::debug!(%command_id, "cancel for a command that is not running"),
            }
        }
        Message::Connected {
            cluster_id,
            cluster_name,
        } => tracing::info!(%cluster_id, %cluster_name, "registered"),
        Message::HeartbeatAck => {}
        other => tracing::debug!(?other, "dropped a message the agent does not handle"),
    }
}

fn start_command(
    config: &Config,
    command_id: String,
    argv: Vec<String>,
    timeout: u64,
    outgoing: &mpsc::UnboundedSender<Message>,
    running: &Running,
    slots: &Arc<Semaphore>,
) {
    let refuse = |code, message: String| {
        tracing::warn!(%command_id, %code, %message, "refused a command");
        let _ = outgoing.send(error_message(Some(command_id.clone()), code, message));
    };
    if let Err(refusal) = config.allowlist.check(&argv) {
        return refuse(refusal.code, refusal.message);
    }
    let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
        return refuse(
            ErrorCode::Busy,
            format!("the agent already runs {} commands", config.max_concurrency),
        );
    };
    let (cancel_sender, cancel) = oneshot::channel();
    {
        let mut map = running.lock().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(&command_id) {
            drop(map);
            return refuse(
                ErrorCode::BadRequest,
                format!("command {command_id} is already running"),
            );
        }
        map.insert(command_id.clone(), cancel_sender);
    }
    let timeout = match timeout {
        0 => DEFAULT_TIMEOUT_SECS,
        seconds => seconds.min(MAX_TIMEOUT_SECS),
    };
    let limits = Limits {
        timeout: Duration::from_secs(timeout),
        max_output_bytes: config.max_output_bytes,
        env: config.kubectl_env.clone(),
    };
    let kubectl = config.kubectl.clone();
    let outgoing = outgoing.clone();
    let running = Arc::clone(running);
    tracing::info!(%command_id, command = %patchbay_kubectl_protocol::shell_join(&argv), "running");
    tokio::spawn(async move {
        let outcome = runner::run(&kubectl, &argv, &limits, cancel).await;
        running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&command_id);
        drop(permit);
        tracing::info!(%command_id, rc = outcome.return_code, truncated = outcome.truncated, ms = outcome.duration.as_millis(), "finished");
        let response = Message::CommandResponse {
            command_id,
            success: outcome.success,
            output: outcome.output,
            error: outcome.error,
            return_code: outcome.return_code,
            truncated: Some(outcome.truncated),
            duration_ms: Some(whole(outcome.duration.as_millis())),
            duration_us: Some(whole(outcome.duration.as_micros())),
            stdout_bytes: Some(outcome.stdout_bytes),
        };
        let _ = outgoing.send(response);
    });
}

/// A duration count as the protocol's whole number (a run of 584,000 years saturates).
fn whole(count: u128) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_that_escape_past_the_frame_limit_are_cut_to_fit() {
        let control = "\u{1}".repeat(MAX_FRAME_BYTES / 4);
        let response = Message::CommandResponse {
            command_id: "big".into(),
            success: true,
            output: control.clone(),
            error: Some(control),
            return_code: 0,
            truncated: Some(false),
            duration_ms: Some(1),
            duration_us: Some(1_000),
            stdout_bytes: Some(1),
        };
        assert!(response.to_json().len() > MAX_FRAME_BYTES);
        let frame = frame_within_limit(response);
        assert!(frame.len() <= MAX_FRAME_BYTES);
        match Message::parse(&frame).unwrap() {
            Message::CommandResponse {
                output, truncated, ..
            } => {
                assert_eq!(truncated, Some(true));
                assert!(
                    output.len() > MAX_FRAME_BYTES / 64,
                    "cut only as far as needed"
                );
            }
            other => panic!("{other:?}"),
        }
        let small = Message::Heartbeat { cluster_id: None };
        assert_eq!(frame_within_limit(small.clone()), small.to_json());
    }
}
