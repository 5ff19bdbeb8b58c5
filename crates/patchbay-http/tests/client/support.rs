//! Local test servers that script answers and record what they received.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::{HeaderMap, Method, StatusCode};
use patchbay_http::HttpConfig;

/// What a scripted server answers to one request.
#[derive(Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
    pub echo_headers: bool,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
            echo_headers: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answers with every request header, the way some providers echo input.
    pub fn echo_headers(mut self) -> Self {
        self.echo_headers = true;
        self
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub method: Method,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

struct ScriptState {
    replies: Vec<Reply>,
    hits: Mutex<Vec<Hit>>,
}

/// A server answering requests with `replies` in order, repeating the last one.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    state: Arc<ScriptState>,
}

impl ScriptedServer {
    pub async fn start(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty());
        let state = Arc::new(ScriptState {
            replies,
            hits: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .fallback(scripted_reply)
            .with_state(state.clone());
        let addr = serve(router).await;
        Self { addr, state }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }
}

async fn scripted_reply(State(state): State<Arc<ScriptState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let index = {
        let mut hits = state.hits.lock().unwrap();
        hits.push(Hit {
            method: parts.method.clone(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body,
        });
        hits.len() - 1
    };
    let reply = state.replies[index.min(state.replies.len() - 1)].clone();
    tokio::time::sleep(reply.delay).await;
    let body = if reply.echo_headers {
        format!("{:?}", parts.headers)
    } else {
        reply.body
    };
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(body)).unwrap()
}

/// Serves `router` on an ephemeral loopback port.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Defaults with millisecond backoffs so retry tests run fast.
pub fn fast_config() -> HttpConfig {
    HttpConfig {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        total_timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    }
}
