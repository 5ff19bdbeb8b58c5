//! The loopback server a connector's provider fake runs on: bound to
//! `127.0.0.1:0`, served by the test's tokio runtime, stopped when dropped.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A bound loopback port that has not started serving yet, so a fake can put its
/// own base URL into its state (for links and redirects) before it serves.
#[derive(Debug)]
pub struct BoundPort {
    listener: TcpListener,
    address: SocketAddr,
}

impl BoundPort {
    /// Binds `127.0.0.1:0`; `provider` names the fake in the panic if that fails.
    pub async fn loopback(provider: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|error| panic!("bind the fake {provider} to 127.0.0.1:0: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("the fake {provider}'s local address: {error}"));
        Self { listener, address }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Starts serving `router` on the port.
    pub fn serve(self, router: axum::Router) -> FakeServer {
        let task = tokio::spawn(async move {
            // The server ends only when the task is aborted on drop.
            let _ = axum::serve(self.listener, router).await;
        });
        FakeServer {
            address: self.address,
            task,
        }
    }
}

/// A provider fake being served on loopback; aborted when dropped.
#[derive(Debug)]
pub struct FakeServer {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Writes `name { address: … }` for a fake's `Debug`.
    pub fn debug_as(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }

    /// Binds a loopback port and serves `router` on it.
    pub async fn start(provider: &str, router: axum::Router) -> Self {
        BoundPort::loopback(provider).await.serve(router)
    }

    /// The address served on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `host=http://127.0.0.1:PORT`, the `PATCHBAY_UPSTREAM_OVERRIDES` entry that
    /// sends requests for the provider's `host` here.
    pub fn override_for(&self, host: &str) -> String {
        format!("{host}={}", self.base_url())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What every provider fake offers the tests that drive a connector against it.
pub trait ProviderFake {
    /// The provider hosts the fake stands in for (`api.datadoghq.com`).
    const UPSTREAM_HOSTS: &'static [&'static str];

    /// What the fake records of each request.
    type Request: Clone;

    /// A one-shot failure a test can queue (a 429, a 500, a provider error).
    type Fault;

    /// What requests are told apart by in [`ProviderFake::requests_to`] and
    /// [`ProviderFake::inject`]: the path, or the provider's method name.
    fn request_key(request: &Self::Request) -> &str;

    /// The faults tests queued.
    fn fault_queue(&self) -> &FaultQueue<Self::Fault>;

    /// The requests received for one key (path or method).
    fn requests_to(&self, key: &str) -> Vec<Self::Request> {
        self.requests()
            .into_iter()
            .filter(|request| Self::request_key(request) == key)
            .collect()
    }

    /// Makes the next request for `key` fail with `fault`; faults queue up per key.
    fn inject(&self, key: &str, fault: Self::Fault) {
        self.fault_queue().inject(key, fault);
    }

    /// The server the fake runs on.
    fn server(&self) -> &FakeServer;

    /// The requests the fake received.
    fn request_log(&self) -> &RequestLog<Self::Request>;

    /// Every request received so far, in order.
    fn requests(&self) -> Vec<Self::Request> {
        self.request_log().all()
    }

    /// Forgets the recorded requests.
    fn clear_requests(&self) {
        self.request_log().clear();
    }

    /// `http://127.0.0.1:PORT`.
    fn base_url(&self) -> String {
        self.server().base_url()
    }

    /// The `PATCHBAY_UPSTREAM_OVERRIDES` value that sends every upstream host of
    /// the provider to this fake (`api.github.com=http://127.0.0.1:PORT,github.com=…`).
    fn override_spec(&self) -> String {
        Self::UPSTREAM_HOSTS
            .iter()
            .map(|host| self.server().override_for(host))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// State a fake shares between its request handlers and its test-facing methods.
/// Locking it succeeds even after a test thread panicked while holding it, so one
/// failing test cannot hide recorded requests from the next assertion.
#[derive(Debug, Default)]
pub struct FakeState<T>(std::sync::Mutex<T>);

impl<T> FakeState<T> {
    /// Wraps the fake's initial state.
    pub fn new(state: T) -> Self {
        Self(std::sync::Mutex::new(state))
    }

    /// Locks the state.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The requests a fake received, in order, as the fake chose to record them
/// (secret values redacted).
#[derive(Debug)]
pub struct RequestLog<R>(FakeState<Vec<R>>);

impl<R> Default for RequestLog<R> {
    fn default() -> Self {
        Self(FakeState::new(Vec::new()))
    }
}

impl<R: Clone> RequestLog<R> {
    /// Appends a request.
    pub fn record(&self, request: R) {
        self.0.lock().push(request);
    }

    /// Every request so far, in order.
    pub fn all(&self) -> Vec<R> {
        self.0.lock().clone()
    }

    /// Forgets every request.
    pub fn clear(&self) {
        self.0.lock().clear();
    }
}

/// One-shot faults a test queues for a fake, per path or method: each request to
/// that key takes the next one.
#[derive(Debug)]
pub struct FaultQueue<F>(
    FakeState<std::collections::HashMap<String, std::collections::VecDeque<F>>>,
);

impl<F> Default for FaultQueue<F> {
    fn default() -> Self {
        Self(FakeState::new(std::collections::HashMap::new()))
    }
}

impl<F> FaultQueue<F> {
    /// Queues `fault` for the next request to `key`.
    pub fn inject(&self, key: &str, fault: F) {
        self.0
            .lock()
            .entry(key.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// The fault queued for this request to `key`, if any.
    pub fn take(&self, key: &str) -> Option<F> {
        self.0.lock().get_mut(key)?.pop_front()
    }
}

/// Implements [`ProviderFake`] and `Debug` for a fake struct that keeps its
/// [`FakeServer`] in a field named `server`:
/// ```ignore
/// provider_fake!(FakeAcme,
///     hosts: ["api.acme.example"],
///     request: RecordedRequest, keyed by: path, log: shared.requests,
///     fault: Fault, queued in: shared.faults);
/// ```
#[macro_export]
macro_rules! provider_fake {
    (
        $fake:ident,
        hosts: [$($host:literal),+ $(,)?],
        request: $request:ty, keyed by: $key:ident, log: $($log:ident).+,
        fault: $fault:ty, queued in: $($faults:ident).+ $(,)?
    ) => {
        impl $crate::fake_server::ProviderFake for $fake {
            const UPSTREAM_HOSTS: &'static [&'static str] = &[$($host),+];
            type Request = $request;
            type Fault = $fault;

            fn request_key(request: &$request) -> &str {
                &request.$key
            }

            fn fault_queue(&self) -> &$crate::fake_server::FaultQueue<$fault> {
                &self.$($faults).+
            }

            fn server(&self) -> &$crate::fake_server::FakeServer {
                &self.server
            }

            fn request_log(&self) -> &$crate::fake_server::RequestLog<$request> {
                &self.$($log).+
            }
        }

        impl ::std::fmt::Debug for $fake {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.server.debug_as(::core::stringify!($fake), f)
            }
        }
    };
}

/// What a fake records instead of a secret value.
pub const REDACTED: &str = "[redacted]";

/// Name/value pairs (query, form or header) with the values of secret names
/// replaced by [`REDACTED`], so a fake's request log can be printed safely.
pub fn redacted_pairs(
    pairs: &[(String, String)],
    is_secret: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| {
            let value = if is_secret(name) {
                REDACTED.to_owned()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect()
}

/// The first value of `name` among recorded pairs.
pub fn first_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The faults every HTTP provider can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFault {
    /// 429 with `Retry-After: <retry_after_secs>`.
    RateLimited {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// 500 Internal Server Error.
    ServerError,
    /// 503 Service Unavailable.
    Unavailable,
}
