//! A scripted loopback WebSocket host for the agent's tests, and helpers to
//! start the agent against it and the fake Kubernetes API.

// Each test binary uses part of these helpers.
#![allow(dead_code)]
// The handshake callback's error type is tungstenite's, not ours.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use patchbay_kubectl_agent::backoff::SystemClock;
use patchbay_kubectl_agent::config::Config;
use patchbay_kubectl_agent::health::Health;
use patchbay_kubectl_agent::Exit;
use patchbay_kubectl_protocol::fake::FakeKubeApi;
use patchbay_kubectl_protocol::Message;
use rand::SeedableRng;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

/// The token the tests give the agent.
pub const TOKEN: &str = "pbk8s_test-token-0123456789";

/// One agent connection the host accepted.
pub struct Connection {
    /// The upgrade request's headers, lower-case names.
    pub headers: HashMap<String, String>,
    /// The request path.
    pub path: String,
    ws: WebSocketStream<TcpStream>,
}

impl Connection {
    /// The next protocol message (pings and pongs skipped); panics after 20 s.
    pub async fn recv(&mut self) -> Message {
        self.try_recv(Duration::from_secs(20))
            .await
            .expect("a message from the agent within 20 s")
    }

    /// The next protocol message within `wait`, or `None` (also when closed).
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match frame.ok()? {
                Frame::Text(text) => {
                    return Some(
                        Message::parse(text.as_str()).expect("the agent sends protocol messages"),
                    )
                }
                Frame::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &Message) {
        self.ws
            .send(Frame::text(message.to_json()))
            .await
            .expect("send to the agent");
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Frame::text(text))
            .await
            .expect("send to the agent");
    }

    /// Closes with `code` and `reason`.
    pub async fn close(mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        // Let the close handshake finish.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Reads messages until the response for `command_id` (or an error about it).
    pub async fn answer_to(&mut self, command_id: &str) -> Message {
        loop {
            let message = self.recv().await;
            match &message {
                Message::CommandResponse { command_id: id, .. } if id == command_id => {
                    return message
                }
                Message::Error {
                    command_id: Some(id),
                    ..
                } if id == command_id => return message,
                _ => continue,
            }
        }
    }
}

/// The loopback host: accepts WebSocket connections and hands them to the test.
pub struct Host {
    /// `ws://127.0.0.1:PORT/kubectl-agent`.
    pub url: String,
    connections: mpsc::UnboundedReceiver<Connection>,
    task: JoinHandle<()>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Host {
    /// Binds `127.0.0.1:0` and starts accepting.
    pub async fn start() -> Host {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("ws://{}/kubectl-agent", listener.local_addr().unwrap());
        let (sender, connections) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    let mut headers = HashMap::new();
                    let mut path = String::new();
                    let callback = |request: &Request, response: Response| {
                        path = request.uri().path().to_owned();
                        for (name, value) in request.headers() {
                            headers.insert(
                                name.as_str().to_owned(),
                                value.to_str().unwrap_or("").to_owned(),
                            );
                        }
                        Ok(response)
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                        let _ = sender.send(Connection { headers, path, ws });
                    }
                });
            }
        });
        Host {
            url,
            connections,
            task,
        }
    }

    /// The next connection; panics after 20 s.
    pub async fn accept(&mut self) -> Connection {
        self.try_accept(Duration::from_secs(20))
            .await
            .expect("the agent connects within 20 s")
    }

    /// The next connection within `wait`.
    pub async fn try_accept(&mut self, wait: Duration) -> Option<Connection> {
        tokio::time::timeout(wait, self.connections.recv())
            .await
            .ok()?
    }

    /// The next connection, with its `register` already read.
    pub async fn accept_registered(&mut self) -> Connection {
        let mut connection = self.accept().await;
        let register = connection.recv().await;
        assert!(
            matches!(register, Message::Register { .. }),
            "register first: {register:?}"
        );
        connection
    }
}

/// The variables an agent needs to reach `host` and run kubectl against `api`.
pub fn env(host: &Host, api: Option<(&FakeKubeApi, &std::path::Path)>) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("PATCHBAY_WS_URL".to_owned(), host.url.clone()),
        ("PATCHBAY_AGENT_TOKEN".to_owned(), TOKEN.to_owned()),
        ("AGENT_VERSION".to_owned(), "9.9.9-test".to_owned()),
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        (
            "PATCHBAY_BACKOFF_INITIAL_SECONDS".to_owned(),
            "0.05".to_owned(),
        ),
        ("PATCHBAY_BACKOFF_MAX_SECONDS".to_owned(), "0.2".to_owned()),
    ];
    if let Some((api, home)) = api {
        pairs.push(("HOME".to_owned(), home.display().to_string()));
        pairs.push((
            "KUBECONFIG".to_owned(),
            api.kubeconfig(home).display().to_string(),
        ));
    }
    pairs
}

/// A config from `pairs`, later pairs winning.
pub fn config(pairs: &[(String, String)]) -> Config {
    let map: HashMap<String, String> = pairs.iter().cloned().collect();
    Config::from_lookup(|name| map.get(name).cloned()).expect("a valid test config")
}

/// An agent running in this process.
pub struct Agent {
    /// Its readiness.
    pub health: Arc<Health>,
    stop: watch::Sender<bool>,
    /// How it ended.
    pub task: JoinHandle<Exit>,
}

impl Agent {
    /// Starts the agent with `config`.
    pub fn start(config: Config) -> Agent {
        let health = Arc::new(Health::default());
        let (stop, shutdown) = watch::channel(false);
        let task = {
            let health = Arc::clone(&health);
            tokio::spawn(async move {
                patchbay_kubectl_agent::run(
                    &config,
                    health,
                    Arc::new(SystemClock),
                    rand::rngs::StdRng::seed_from_u64(1),
                    shutdown,
                )
                .await
            })
        };
        Agent { health, stop, task }
    }

    /// Asks it to stop and waits for its exit.
    pub async fn stop(self) -> Exit {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the agent stops within 10 s")
            .expect("the agent task does not panic")
    }
}

/// A `kubectl_command` for a line split on whitespace.
pub fn command(id: &str, line: &str, timeout: u64) -> Message {
    Message::kubectl_command(
        id,
        line.split_whitespace().map(str::to_owned).collect(),
        timeout,
    )
}
