//! A fake Kubernetes API server on `127.0.0.1`, behind the `fake` feature, that
//! the real kubectl (1.32) talks to, so tests run exactly the commands an agent
//! would run in a cluster.
//!
//! It serves what kubectl sends for the read-only verbs: `/version`, legacy
//! discovery (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`; aggregated
//! discovery is declined by answering plain JSON, which kubectl accepts),
//! pods (list, get, `-A`, label and field selectors, tables for `kubectl get`),
//! pod logs (`container`, `tailLines`, `previous`, `sinceSeconds`), core/v1
//! events, nodes, namespaces, services, deployments and replicasets (apps/v1),
//! secrets (so tests can prove they are refused), `SelfSubjectAccessReview`
//! answered from an access table, metrics.k8s.io (switchable) and enough
//! OpenAPI v3 for `kubectl explain pods`. Every request needs the bearer token of
//! the kubeconfig [`FakeKubeApi::kubeconfig`] writes, and is recorded without it.
//!
//! It serves HTTPS with a certificate from a CA generated at start, which the
//! kubeconfig trusts: kubectl does not send bearer tokens over plain HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// The bearer token the fake accepts (a fixture, not a secret).
pub const FAKE_TOKEN: &str = "fake-kube-api-token";
/// The server version `/version` reports.
pub const GIT_VERSION: &str = "v1.32.4";
/// When every fixture object was created.
const CREATED: &str = "2026-01-01T00:00:00Z";

/// One request the fake received, without header values other than `Accept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
    /// Whether the request carried the fake's bearer token.
    pub authorized: bool,
}

/// A container's log lines; each is timestamped one minute after the previous,
/// the last one a minute before "now".
#[derive(Debug, Clone, Default)]
struct ContainerLogs {
    current: Vec<String>,
    previous: Option<Vec<String>>,
}

#[derive(Debug)]
struct Inner {
    requests: Vec<RecordedRequest>,
    access: BTreeMap<(String, String), bool>,
    logs: BTreeMap<(String, String, String), ContainerLogs>,
    delay: Duration,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    ca_pem: String,
    metrics_enabled: AtomicBool,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock leaves consistent data.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The fake API server; stops when dropped.
#[derive(Debug)]
pub struct FakeKubeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeKubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKubeApi {
    /// Binds `127.0.0.1:0` and serves the fixture cluster: namespaces `default`,
    /// `payments` and `kube-system`, nodes `node-a` and `node-b`, pods, a
    /// deployment per app, events and one Secret. Metrics are on.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the fake Kubernetes API to 127.0.0.1:0");
        let address = listener
            .local_addr()
            .expect("the fake Kubernetes API's local address");
        let tls = TestTls::generate();
        let shared = Arc::new(Shared {
            base_url: format!("https://{address}"),
            ca_pem: tls.ca_pem.clone(),
            metrics_enabled: AtomicBool::new(true),
            inner: Mutex::new(Inner {
                requests: Vec::new(),
                access: default_access(),
                logs: default_logs(),
                delay: Duration::ZERO,
            }),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config);
        let task = tokio::spawn(serve_tls(listener, acceptor, router));
        FakeKubeApi {
            address,
            shared,
            task,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The address the fake listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Writes `dir/kubeconfig`, pointing at the fake with its bearer token, and
    /// returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: agent\n    namespace: default\ncurrent-context: fake\nusers:\n- name: agent\n  user:\n    token: {FAKE_TOKEN}\n",
            self.base_url(),
            base64::engine::general_purpose::STANDARD.encode(&self.shared.ca_pem)
        );
        std::fs::write(&path, text)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        path
    }

    /// The PEM certificate of the CA that signed the fake's server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.shared.ca_pem
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Turns metrics.k8s.io (metrics-server) on or off.
    pub fn set_metrics_enabled(&self, enabled: bool) {
        self.shared.metrics_enabled.store(enabled, Ordering::SeqCst);
    }

    /// Sets what a `SelfSubjectAccessReview` answers for `verb` on `resource`.
    /// `resource` is written as kubectl names it: `pods`, `pods/log`,
    /// `deployments.apps`, `secrets`. Unlisted pairs are denied.
    pub fn set_access(&self, verb: &str, resource: &str, allowed: bool) {
        self.shared
            .lock()
            .access
            .insert((verb.to_owned(), resource.to_owned()), allowed);
    }

    /// Replaces the current log of a container (a pod that does not exist yet
    /// is not created: use an existing pod such as `default/web-7d4b9c-abcde`).
    pub fn set_logs(&self, namespace: &str, pod: &str, container: &str, lines: Vec<String>) {
        self.shared
            .lock()
            .logs
            .entry((namespace.to_owned(), pod.to_owned(), container.to_owned()))
            .or_default()
            .current = lines;
    }

    /// Makes every answer wait this long first (to test timeouts).
    pub fn set_response_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }
}

/// The fake's TLS material: a CA made for this run and a server certificate
/// for `127.0.0.1` and `localhost` signed by it.
struct TestTls {
    ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

impl TestTls {
    fn generate() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("generate the fake CA's key");
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("the fake CA's parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "patchbay fake kubernetes CA");
        let ca = ca_params
            .self_signed(&ca_key)
            .expect("self-sign the fake CA");
        let server_key = rcgen::KeyPair::generate().expect("generate the fake server's key");
        let server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("the fake server certificate's parameters");
        let server = server_params
            .signed_by(&server_key, &ca, &ca_key)
            .expect("sign the fake server certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("rustls's default protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![server.der().clone(), ca.der().clone()], key)
        .expect("the fake server certificate and key match");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TestTls {
            ca_pem: ca.pem(),
            server_config: Arc::new(config),
        }
    }
}

/// Accepts TLS connections and serves HTTP/1.1 on each until the task is aborted.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            // A client that fails the handshake (or hangs up) just loses its connection.
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

fn default_access() -> BTreeMap<(String, String), bool> {
    let mut access = BTreeMap::new();
    for resource in [
        "pods",
        "pods/log",
        "events",
        "nodes",
        "namespaces",
        "services",
        "deployments.apps",
        "replicasets.apps",
        "pods.metrics.k8s.io",
        "nodes.metrics.k8s.io",
    ] {
        for verb in ["get", "list", "watch"] {
            access.insert((verb.to_owned(), resource.to_owned()), true);
        }
    }
    access
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (1..=count).map(|n| format!("{prefix} line {n}")).collect()
}

fn default_logs() -> BTreeMap<(String, String, String), ContainerLogs> {
    let mut logs = BTreeMap::new();
    let mut add = |ns: &str, pod: &str, container: &str, current, previous| {
        logs.insert(
            (ns.to_owned(), pod.to_owned(), container.to_owned()),
            ContainerLogs { current, previous },
        );
    };
    add(
        "default",
        "web-7d4b9c-abcde",
        "app",
        numbered("web app", 300),
        Some(numbered("web app previous", 5)),
    );
    add(
        "default",
        "web-7d4b9c-abcde",
        "sidecar",
        numbered("web sidecar", 10),
        None,
    );
    add(
        "default",
        "web-7d4b9c-fghij",
        "app",
        numbered("web app 2", 20),
        None,
    );
    add(
        "payments",
        "api-5f6d7-xyz12",
        "api",
        numbered("payments api", 50),
        None,
    );
    add(
        "kube-system",
        "coredns-6f8d-k2m4p",
        "coredns",
        numbered("coredns", 5),
        None,
    );
    logs
}

struct PodFixture {
    namespace: &'static str,
    name: &'static str,
    app: &'static str,
    node: &'static str,
    containers: &'static [(&'static str, &'static str)],
    restarts: u32,
    ip: &'static str,
}

const PODS: [PodFixture; 4] = [
    PodFixture {
        namespace: "default",
        name: "web-7d4b9c-abcde",
        app: "web",
        node: "node-a",
        containers: &[("app", "nginx:1.27"), ("sidecar", "busybox:1.36")],
        restarts: 1,
        ip: "10.0.0.11",
    },
    PodFixture {
        namespace: "default",
        name: "web-7d4b9c-fghij",
        app: "web",
        node: "node-b",
        containers: &[("app", "nginx:1.27")],
        restarts: 0,
        ip: "10.0.0.12",
    },
    PodFixture {
        namespace: "payments",
        name: "api-5f6d7-xyz12",
        app: "api",
        node: "node-a",
        containers: &[("api", "payments-api:2.3.1")],
        restarts: 0,
        ip: "10.0.0.21",
    },
    PodFixture {
        namespace: "kube-system",
        name: "coredns-6f8d-k2m4p",
        app: "kube-dns",
        node: "node-b",
        containers: &[("coredns", "coredns:1.11.3")],
        restarts: 0,
        ip: "10.0.0.2",
    },
];

fn meta(name: &str, namespace: Option<&str>, labels: Value) -> Value {
    let mut meta = json!({
        "name": name,
        "uid": format!("uid-{}-{name}", namespace.unwrap_or("cluster")),
        "resourceVersion": "1",
        "creationTimestamp": CREATED,
        "labels": labels,
    });
    if let Some(namespace) = namespace {
        meta["namespace"] = json!(namespace);
    }
    meta
}

fn pod_object(pod: &PodFixture) -> Value {
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .map(|(name, image)| json!({"name": name, "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}]}))
        .collect();
    let statuses: Vec<Value> = pod
        .containers
        .iter()
        .enumerate()
        .map(|(index, (name, image))| {
            json!({"name": name, "image": image, "imageID": format!("docker.io/library/{image}"),
                   "ready": true, "started": true,
                   "restartCount": if index == 0 { pod.restarts } else { 0 },
                   "state": {"running": {"startedAt": CREATED}}})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(pod.name, Some(pod.namespace), json!({"app": pod.app})),
        "spec": {"nodeName": pod.node, "containers": containers, "restartPolicy": "Always",
                 "serviceAccountName": "default"},
        "status": {"phase": "Running", "podIP": pod.ip, "hostIP": "192.168.1.10",
                   "startTime": CREATED,
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": statuses, "qosClass": "BestEffort"},
    })
}

fn pods() -> Vec<Value> {
    PODS.iter().map(pod_object).collect()
}

fn nodes() -> Vec<Value> {
    ["node-a", "node-b"]
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": meta(name, None, json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"})),
                "spec": {"podCIDR": format!("10.0.{index}.0/24")},
                "status": {
                    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                    "message": "kubelet is posting ready status",
                                    "lastHeartbeatTime": CREATED, "lastTransitionTime": CREATED}],
                    "addresses": [{"type": "InternalIP", "address": format!("192.168.1.{}", 10 + index)}],
                    "nodeInfo": {"kubeletVersion": GIT_VERSION, "osImage": "Debian GNU/Linux 12",
                                 "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.22",
                                 "architecture": "amd64", "operatingSystem": "linux"}
                }
            })
        })
        .collect()
}

fn namespaces() -> Vec<Value> {
    ["default", "kube-system", "payments"]
        .into_iter()
        .map(|name| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": meta(name, None, json!({"kubernetes.io/metadata.name": name})),
                   "status": {"phase": "Active"}})
        })
        .collect()
}

fn deployments() -> Vec<Value> {
    [
        ("default", "web", 2, "nginx:1.27"),
        ("payments", "api", 1, "payments-api:2.3.1"),
    ]
    .into_iter()
    .map(|(namespace, app, replicas, image)| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(app, Some(namespace), json!({"app": app})),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": app, "image": image}]}},
                     "strategy": {"type": "RollingUpdate"}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
                       "availableReplicas": replicas}
        })
    })
    .collect()
}

fn events() -> Vec<Value> {
    let event = |namespace: &str,
                 name: &str,
                 kind: &str,
                 object: &str,
                 kind_type: &str,
                 reason: &str,
                 message: &str,
                 time: &str| {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": meta(name, Some(namespace), json!({})),
            "involvedObject": {"kind": kind, "namespace": namespace, "name": object,
                               "uid": format!("uid-{namespace}-{object}"), "apiVersion": "v1"},
            "reason": reason, "message": message, "type": kind_type, "count": 1,
            "source": {"component": "kubelet"},
            "firstTimestamp": time, "lastTimestamp": time, "eventTime": null,
            "reportingComponent": "kubelet", "reportingInstance": "node-a"
        })
    };
    vec![
        event(
            "default",
            "web-7d4b9c-abcde.1",
            "Pod",
            "web-7d4b9c-abcde",
            "Normal",
            "Pulled",
            "Container image \"nginx:1.27\" already present on machine",
            "2026-01-01T00:01:00Z",
        ),
        event(
            "default",
            "web-7d4b9c-abcde.2",
            "Pod",
            "web-7d4b9c-abcde",
            "Warning",
            "BackOff",
            "Back-off restarting failed container app in pod web-7d4b9c-abcde",
            "2026-01-01T00:03:00Z",
        ),
        event(
            "default",
            "web-7d4b9c-fghij.1",
            "Pod",
            "web-7d4b9c-fghij",
            "Normal",
            "Started",
            "Started container app",
            "2026-01-01T00:02:00Z",
        ),
        event(
            "payments",
            "api-5f6d7-xyz12.1",
            "Pod",
            "api-5f6d7-xyz12",
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "2026-01-01T00:04:00Z",
        ),
    ]
}

fn secrets() -> Vec<Value> {
    vec![json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": meta("db-password", Some("default"), json!({})),
        "data": {"password": "aHVudGVyMg=="}
    })]
}

fn services() -> Vec<Value> {
    vec![json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta("kubernetes", Some("default"), json!({"component": "apiserver"})),
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        "status": {"loadBalancer": {}}
    })]
}

/// A resource the fake serves: its discovery entry and its objects.
struct Resource {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    verbs: &'static [&'static str],
}

const READ_VERBS: &[&str] = &["get", "list", "watch"];

const RESOURCES: [Resource; 13] = [
    Resource {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        verbs: READ_VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "pods/log",
        singular: "",
        kind: "Pod",
        namespaced: true,
        short_names: &[],
        verbs: &["get"],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        verbs: READ_VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        verbs: READ_VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        verbs: READ_VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        verbs: READ_VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        verbs: READ_VERBS,
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        verbs: READ_VERBS,
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        verbs: READ_VERBS,
    },
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        verbs: &["create"],
    },
    Resource {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "nodes",
        singular: "",
        kind: "NodeMetrics",
        namespaced: false,
        short_names: &[],
        verbs: &["get", "list"],
    },
    Resource {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "pods",
        singular: "",
        kind: "PodMetrics",
        namespaced: true,
        short_names: &[],
        verbs: &["get", "list"],
    },
    Resource {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        verbs: READ_VERBS,
    },
];

/// The API groups (besides core) the fake serves, with their one version.
fn groups(metrics: bool) -> Vec<(&'static str, &'static str)> {
    let mut groups = vec![
        ("apps", "v1"),
        ("authorization.k8s.io", "v1"),
        ("events.k8s.io", "v1"),
    ];
    if metrics {
        groups.push(("metrics.k8s.io", "v1beta1"));
    }
    groups
}

fn objects(group: &str, plural: &str) -> Option<Vec<Value>> {
    Some(match (group, plural) {
        ("", "pods") => pods(),
        ("", "nodes") => nodes(),
        ("", "namespaces") => namespaces(),
        ("", "events") => events(),
        ("", "secrets") => secrets(),
        ("", "services") => services(),
        ("apps", "deployments") => deployments(),
        ("apps", "replicasets") => Vec::new(),
        ("events.k8s.io", "events") => Vec::new(),
        ("metrics.k8s.io", "nodes") => node_metrics(),
        ("metrics.k8s.io", "pods") => pod_metrics(),
        _ => return None,
    })
}

fn node_metrics() -> Vec<Value> {
    [("node-a", "850m", "3072Mi"), ("node-b", "420m", "2048Mi")]
        .into_iter()
        .map(|(name, cpu, memory)| {
            json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
                   "metadata": {"name": name, "creationTimestamp": CREATED},
                   "timestamp": CREATED, "window": "20s",
                   "usage": {"cpu": cpu, "memory": memory}})
        })
        .collect()
}

fn pod_metrics() -> Vec<Value> {
    PODS.iter()
        .map(|pod| {
            let containers: Vec<Value> = pod
                .containers
                .iter()
                .map(|(name, _)| json!({"name": name, "usage": {"cpu": "5m", "memory": "32Mi"}}))
                .collect();
            json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                   "metadata": {"name": pod.name, "namespace": pod.namespace, "creationTimestamp": CREATED,
                                "labels": {"app": pod.app}},
                   "timestamp": CREATED, "window": "20s", "containers": containers})
        })
        .collect()
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|query| {
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(key), percent_decode(value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes `%XX` and `+` in a query component. Written here because the fake
/// only ever decodes the selectors kubectl sends and needs no other crate for it.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(found, _)| found == key)
        .map(|(_, value)| value.as_str())
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn status_error(code: StatusCode, reason: &str, message: String) -> Response {
    json_response(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn not_found(what: &str, name: &str) -> Response {
    status_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{what} \"{name}\" not found"),
    )
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        == Some(&format!("Bearer {FAKE_TOKEN}"));
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let delay = {
        let mut inner = shared.lock();
        inner.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            accept: accept.clone(),
            authorized,
        });
        inner.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if !authorized {
        return status_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".to_owned(),
        );
    }
    let wants_table = accept.as_deref().is_some_and(|a| a.contains("as=Table"));
    let full_objects = uri
        .query()
        .is_some_and(|q| q.contains("includeObject=Object"));
    let query = query_pairs(&uri);
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let metrics = shared.metrics_enabled.load(Ordering::SeqCst);
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["version"]) => json_response(
            StatusCode::OK,
            json!({"major": "1", "minor": "32", "gitVersion": GIT_VERSION,
                   "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                   "buildDate": CREATED, "goVersion": "go1.23.8", "compiler": "gc", "platform": "linux/amd64"}),
        ),
        (Method::GET, ["api"]) => json_response(
            StatusCode::OK,
            json!({"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.base_url.trim_start_matches("https://")}]}),
        ),
        (Method::GET, ["apis"]) => {
            let groups: Vec<Value> = groups(metrics)
                .into_iter()
                .map(|(group, version)| {
                    let gv =
                        json!({"groupVersion": format!("{group}/{version}"), "version": version});
                    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            json_response(
                StatusCode::OK,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            )
        }
        (Method::GET, ["api", "v1"]) => resource_list("", "v1"),
        (Method::GET, ["apis", group, version]) => {
            if groups(metrics).contains(&(*group, *version)) {
                resource_list(group, version)
            } else {
                not_found("the server could not find the requested resource", group)
            }
        }
        (Method::GET, ["openapi", "v3"]) => json_response(
            StatusCode::OK,
            json!({"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=FAKE1"}}}),
        ),
        (Method::GET, ["openapi", "v3", "api", "v1"]) => {
            json_response(StatusCode::OK, core_openapi())
        }
        (Method::POST, ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"]) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            let review = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
                review_from_protobuf(&body)
            } else {
                serde_json::from_slice::<Value>(&body).ok()
            };
            match review {
                Some(review) => access_review(&shared, review),
                None => status_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("the fake could not read the {content_type} SelfSubjectAccessReview"),
                ),
            }
        }
        (Method::GET, ["api", "v1", "namespaces", namespace, "pods", name, "log"]) => {
            pod_log(&shared, namespace, name, &query)
        }
        (Method::GET, ["api", "v1", rest @ ..]) => {
            read(&query, (wants_table, full_objects), "", rest)
        }
        (Method::GET, ["apis", group, _version, rest @ ..]) => {
            if *group == "metrics.k8s.io" && !metrics {
                return not_found("the server could not find the requested resource", group);
            }
            read(&query, (wants_table, full_objects), group, rest)
        }
        _ => status_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the fake serves only reads, not {method} {}", uri.path()),
        ),
    }
}

fn resource_list(group: &str, version: &str) -> Response {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            let mut entry = json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                   "kind": r.kind, "verbs": r.verbs});
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            if r.plural == "pods" || r.plural == "deployments" || r.plural == "services" {
                entry["categories"] = json!(["all"]);
            }
            entry
        })
        .collect();
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        StatusCode::OK,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// `GET` on a collection or one object: `[namespaces/<ns>/]<plural>[/<name>]`.
/// `table` is (whether kubectl asked for a table, whether its rows carry full objects).
fn read(
    query: &[(String, String)],
    table_form: (bool, bool),
    group: &str,
    rest: &[&str],
) -> Response {
    let (wants_table, full_objects) = table_form;
    let (namespace, plural, name) = match rest {
        ["namespaces", namespace, plural] => (Some(*namespace), *plural, None),
        ["namespaces", namespace, plural, name] => (Some(*namespace), *plural, Some(*name)),
        ["namespaces", name] => (None, "namespaces", Some(*name)),
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        _ => {
            return not_found(
                "the server could not find the requested resource",
                &rest.join("/"),
            )
        }
    };
    let Some(resource) = RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
    else {
        return not_found("the server could not find the requested resource", plural);
    };
    let Some(all) = objects(group, plural) else {
        return not_found("the server could not find the requested resource", plural);
    };
    let in_namespace: Vec<Value> = all
        .into_iter()
        .filter(|object| match namespace {
            Some(namespace) => object["metadata"]["namespace"] == namespace,
            None => true,
        })
        .collect();
    if let Some(name) = name {
        let what = if group.is_empty() {
            plural.to_owned()
        } else {
            format!("{plural}.{group}")
        };
        return match in_namespace
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
        {
            Some(object) if wants_table => {
                json_response(StatusCode::OK, table(resource, vec![object], full_objects))
            }
            Some(object) => json_response(StatusCode::OK, object),
            None => not_found(&what, name),
        };
    }
    let label_selector = first(query, "labelSelector").unwrap_or_default();
    let field_selector = first(query, "fieldSelector").unwrap_or_default();
    let selected: Vec<Value> = in_namespace
        .into_iter()
        .filter(|object| {
            matches_labels(object, label_selector) && matches_fields(object, field_selector)
        })
        .collect();
    if wants_table {
        return json_response(StatusCode::OK, table(resource, selected, full_objects));
    }
    let api_version = if group.is_empty() {
        resource.version.to_owned()
    } else {
        format!("{group}/{}", resource.version)
    };
    json_response(
        StatusCode::OK,
        json!({"kind": format!("{}List", resource.kind), "apiVersion": api_version,
               "metadata": {"resourceVersion": "1"}, "items": selected}),
    )
}

/// `a=b,c!=d,e,!f` against the object's labels.
fn matches_labels(object: &Value, selector: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    selector
        .split(',')
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .all(|term| {
            if let Some((key, value)) = term.split_once("!=") {
                labels[key.trim()] != value.trim()
            } else if let Some((key, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                labels[key.trim()] == value.trim()
            } else if let Some(key) = term.strip_prefix('!') {
                labels.get(key).is_none()
            } else {
                labels.get(term).is_some()
            }
        })
}

/// `a.b=c,d!=e` against the object's fields (dotted paths).
fn matches_fields(object: &Value, selector: &str) -> bool {
    let field = |path: &str| {
        let pointer = format!("/{}", path.trim().replace('.', "/"));
        match object.pointer(&pointer) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    selector
        .split(',')
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .all(|term| {
            if let Some((path, value)) = term.split_once("!=") {
                field(path) != value.trim()
            } else if let Some((path, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                field(path) == value.trim()
            } else {
                true
            }
        })
}

fn column(name: &str, kind: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
}

/// Turns an object into its table row.
type RowCells = fn(&Value) -> Vec<Value>;

/// The server-side table `kubectl get` asks for.
fn table(resource: &Resource, objects: Vec<Value>, full_objects: bool) -> Value {
    let (columns, cells): (Vec<Value>, RowCells) = match resource.kind {
        "Pod" => (
            vec![
                column("Name", "string", 0),
                column("Ready", "string", 0),
                column("Status", "string", 0),
                column("Restarts", "string", 0),
                column("Age", "string", 0),
                column("IP", "string", 1),
                column("Node", "string", 1),
            ],
            |pod| {
                let statuses = pod["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let restarts: u64 = statuses
                    .iter()
                    .filter_map(|s| s["restartCount"].as_u64())
                    .sum();
                vec![
                    pod["metadata"]["name"].clone(),
                    json!(format!("{}/{}", statuses.len(), statuses.len())),
                    pod["status"]["phase"].clone(),
                    json!(restarts.to_string()),
                    json!("5d"),
                    pod["status"]["podIP"].clone(),
                    pod["spec"]["nodeName"].clone(),
                ]
            },
        ),
        "Node" => (
            vec![
                column("Name", "string", 0),
                column("Status", "string", 0),
                column("Roles", "string", 0),
                column("Age", "string", 0),
                column("Version", "string", 0),
                column("Internal-IP", "string", 1),
            ],
            |node| {
                vec![
                    node["metadata"]["name"].clone(),
                    json!("Ready"),
                    json!("<none>"),
                    json!("5d"),
                    node["status"]["nodeInfo"]["kubeletVersion"].clone(),
                    node["status"]["addresses"][0]["address"].clone(),
                ]
            },
        ),
        "Namespace" => (
            vec![
                column("Name", "string", 0),
                column("Status", "string", 0),
                column("Age", "string", 0),
            ],
            |ns| {
                vec![
                    ns["metadata"]["name"].clone(),
                    ns["status"]["phase"].clone(),
                    json!("5d"),
                ]
            },
        ),
        "Deployment" => (
            vec![
                column("Name", "string", 0),
                column("Ready", "string", 0),
                column("Up-to-date", "integer", 0),
                column("Available", "integer", 0),
                column("Age", "string", 0),
                column("Images", "string", 1),
            ],
            |d| {
                vec![
                    d["metadata"]["name"].clone(),
                    json!(format!(
                        "{}/{}",
                        d["status"]["readyReplicas"], d["spec"]["replicas"]
                    )),
                    d["status"]["updatedReplicas"].clone(),
                    d["status"]["availableReplicas"].clone(),
                    json!("5d"),
                    d["spec"]["template"]["spec"]["containers"][0]["image"].clone(),
                ]
            },
        ),
        "Event" => (
            vec![
                column("Last Seen", "string", 0),
                column("Type", "string", 0),
                column("Reason", "string", 0),
                column("Object", "string", 0),
                column("Message", "string", 0),
            ],
            |e| {
                vec![
                    json!("5d"),
                    e["type"].clone(),
                    e["reason"].clone(),
                    json!(format!(
                        "pod/{}",
                        e["involvedObject"]["name"].as_str().unwrap_or_default()
                    )),
                    e["message"].clone(),
                ]
            },
        ),
        "Secret" => (
            vec![
                column("Name", "string", 0),
                column("Type", "string", 0),
                column("Data", "string", 0),
                column("Age", "string", 0),
            ],
            |s| {
                vec![
                    s["metadata"]["name"].clone(),
                    s["type"].clone(),
                    json!(s["data"].as_object().map_or(0, |d| d.len())),
                    json!("5d"),
                ]
            },
        ),
        "Service" => (
            vec![
                column("Name", "string", 0),
                column("Type", "string", 0),
                column("Cluster-IP", "string", 0),
                column("Age", "string", 0),
            ],
            |s| {
                vec![
                    s["metadata"]["name"].clone(),
                    s["spec"]["type"].clone(),
                    s["spec"]["clusterIP"].clone(),
                    json!("5d"),
                ]
            },
        ),
        _ => (
            vec![column("Name", "string", 0), column("Age", "string", 0)],
            |o| vec![o["metadata"]["name"].clone(), json!("5d")],
        ),
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let row_object = if full_objects {
                object.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": object["metadata"].clone()})
            };
            json!({"cells": cells(object), "object": row_object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"},
           "columnDefinitions": columns, "rows": rows})
}

fn pod_log(shared: &Shared, namespace: &str, name: &str, query: &[(String, String)]) -> Response {
    let Some(pod) = PODS
        .iter()
        .find(|p| p.namespace == namespace && p.name == name)
    else {
        return not_found("pods", name);
    };
    let container = match first(query, "container") {
        Some(container) => container.to_owned(),
        None if pod.containers.len() == 1 => pod.containers[0].0.to_owned(),
        None => {
            let names: Vec<&str> = pod.containers.iter().map(|(n, _)| *n).collect();
            return status_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                ),
            );
        }
    };
    let logs = shared
        .lock()
        .logs
        .get(&(namespace.to_owned(), name.to_owned(), container.clone()))
        .cloned();
    let Some(logs) = logs else {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("container {container} is not valid for pod {name}"),
        );
    };
    let lines = if first(query, "previous") == Some("true") {
        match logs.previous {
            Some(previous) => previous,
            None => {
                return status_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "previous terminated container \"{container}\" in pod \"{name}\" not found"
                    ),
                )
            }
        }
    } else {
        logs.current
    };
    // Line i of n was written (n - i) minutes ago.
    let count = lines.len();
    let mut selected: Vec<String> =
        match first(query, "sinceSeconds").and_then(|s| s.parse::<usize>().ok()) {
            Some(seconds) => lines
                .into_iter()
                .enumerate()
                .filter(|(index, _)| (count - index) * 60 <= seconds)
                .map(|(_, line)| line)
                .collect(),
            None => lines,
        };
    if let Some(tail) = first(query, "tailLines").and_then(|t| t.parse::<usize>().ok()) {
        let skip = selected.len().saturating_sub(tail);
        selected.drain(..skip);
    }
    let mut text = selected.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

/// The length-delimited fields (wire type 2) of one protobuf message, by field
/// number; other wire types are skipped. Written by hand because the fake reads
/// only the few string fields of a `SelfSubjectAccessReview`, which does not
/// justify protobuf code generation for the Kubernetes types.
fn protobuf_fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        match key & 7 {
            0 => {
                varint(&mut bytes)?;
            }
            1 => bytes = bytes.get(8..)?,
            2 => {
                let length = usize::try_from(varint(&mut bytes)?).ok()?;
                let value = bytes.get(..length)?;
                bytes = &bytes[length..];
                fields.push((key >> 3, value));
            }
            5 => bytes = bytes.get(4..)?,
            _ => return None,
        }
    }
    Some(fields)
}

/// Reads a protobuf `SelfSubjectAccessReview` (the `k8s\0` envelope around a
/// `runtime.Unknown` whose field 2 holds the object) into its JSON form.
fn review_from_protobuf(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let raw = protobuf_fields(unknown)?
        .into_iter()
        .find(|(number, _)| *number == 2)?
        .1;
    let spec = protobuf_fields(raw)?.into_iter().find(|(n, _)| *n == 2)?.1;
    let spec_fields = protobuf_fields(spec)?;
    let mut spec_json = json!({});
    if let Some((_, attributes)) = spec_fields.iter().find(|(n, _)| *n == 1) {
        let names = [
            "namespace",
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "name",
        ];
        let mut object = serde_json::Map::new();
        for (number, value) in protobuf_fields(attributes)? {
            let index = usize::try_from(number).ok()?.checked_sub(1)?;
            if let Some(name) = names.get(index) {
                object.insert((*name).to_owned(), json!(String::from_utf8_lossy(value)));
            }
        }
        spec_json["resourceAttributes"] = Value::Object(object);
    }
    if let Some((_, attributes)) = spec_fields.iter().find(|(n, _)| *n == 2) {
        let mut object = serde_json::Map::new();
        for (number, value) in protobuf_fields(attributes)? {
            let name = match number {
                1 => "path",
                2 => "verb",
                _ => continue,
            };
            object.insert(name.to_owned(), json!(String::from_utf8_lossy(value)));
        }
        spec_json["nonResourceAttributes"] = Value::Object(object);
    }
    Some(
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec_json}),
    )
}

fn access_review(shared: &Shared, review: Value) -> Response {
    let spec = review["spec"].clone();
    let allowed = if let Some(attributes) = spec["resourceAttributes"].as_object() {
        let text = |key: &str| {
            attributes
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let mut resource = text("resource").to_owned();
        if !text("subresource").is_empty() {
            resource = format!("{resource}/{}", text("subresource"));
        }
        if !text("group").is_empty() {
            resource = format!("{resource}.{}", text("group"));
        }
        shared
            .lock()
            .access
            .get(&(text("verb").to_owned(), resource))
            .copied()
            .unwrap_or(false)
    } else {
        false
    };
    let mut status = json!({"allowed": allowed});
    if !allowed {
        status["reason"] = json!("the fake's access table does not allow it");
    }
    json_response(
        StatusCode::CREATED,
        json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
               "metadata": {"creationTimestamp": null}, "spec": spec, "status": status}),
    )
}

/// The OpenAPI v3 document of `api/v1`, trimmed to what `kubectl explain pods`
/// walks: the Pod and its metadata, spec and status.
fn core_openapi() -> Value {
    let reference = |name: &str| json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}], "default": {}});
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": {
            "/api/v1/namespaces/{namespace}/pods/{name}": {"get": {
                "description": "read the specified Pod",
                "operationId": "readCoreV1NamespacedPod",
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"}}}}},
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": {"group": "", "kind": "Pod", "version": "v1"}
            }}
        },
        "components": {"schemas": {
            "io.k8s.api.core.v1.Pod": {
                "description": "Pod is a collection of containers that can run on a host. This resource is created by clients and scheduled onto hosts.",
                "type": "object",
                "properties": {
                    "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object.", "type": "string"},
                    "kind": {"description": "Kind is a string value representing the REST resource this object represents.", "type": "string"},
                    "metadata": reference("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                    "spec": reference("io.k8s.api.core.v1.PodSpec"),
                    "status": reference("io.k8s.api.core.v1.PodStatus")
                },
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]
            },
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
                "description": "ObjectMeta is metadata that all persisted resources must have.",
                "type": "object",
                "properties": {
                    "name": {"description": "Name must be unique within a namespace.", "type": "string"},
                    "namespace": {"description": "Namespace defines the space within which each name must be unique.", "type": "string"},
                    "labels": {"description": "Map of string keys and values that can be used to organize and categorize objects.", "type": "object", "additionalProperties": {"type": "string", "default": ""}}
                }
            },
            "io.k8s.api.core.v1.PodSpec": {
                "description": "PodSpec is a description of a pod.",
                "type": "object",
                "required": ["containers"],
                "properties": {
                    "containers": {"description": "List of containers belonging to the pod.", "type": "array",
                                   "items": reference("io.k8s.api.core.v1.Container")},
                    "nodeName": {"description": "NodeName indicates in which node this pod is scheduled.", "type": "string"}
                }
            },
            "io.k8s.api.core.v1.Container": {
                "description": "A single application container that you want to run within a pod.",
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"description": "Name of the container specified as a DNS_LABEL.", "type": "string", "default": ""},
                    "image": {"description": "Container image name.", "type": "string"}
                }
            },
            "io.k8s.api.core.v1.PodStatus": {
                "description": "PodStatus represents information about the status of a pod.",
                "type": "object",
                "properties": {
                    "phase": {"description": "The phase of a Pod is a simple, high-level summary of where the Pod is in its lifecycle.", "type": "string"}
                }
            }
        }}
    })
}
