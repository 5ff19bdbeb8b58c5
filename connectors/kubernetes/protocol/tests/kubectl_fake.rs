//! The real kubectl (1.32) against [`FakeKubeApi`]: every read the agent runs
//! works as it would against a cluster, and what the allowlist refuses is what
//! kubectl would otherwise have read.

use std::path::Path;

use patchbay_kubectl_protocol::allowlist::Allowlist;
use patchbay_kubectl_protocol::fake::FakeKubeApi;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn kubectl(api: &FakeKubeApi, home: &Path, line: &str) -> Run {
    let kubeconfig = api.kubeconfig(home);
    let output = tokio::process::Command::new("kubectl")
        .args(line.split_whitespace())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .expect("run kubectl: install kubectl 1.32 (Debian's kubernetes-client)");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn ok(api: &FakeKubeApi, home: &Path, line: &str) -> String {
    let run = kubectl(api, home, line).await;
    assert_eq!(
        run.code,
        Some(0),
        "kubectl {line} failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

async fn start() -> (FakeKubeApi, tempfile::TempDir) {
    (FakeKubeApi::start().await, tempfile::tempdir().unwrap())
}

#[tokio::test]
async fn version_discovery_and_cluster_info() {
    let (api, home) = start().await;
    let home = home.path();
    assert!(ok(&api, home, "version")
        .await
        .contains("Server Version: v1.32.4"));
    let versions = ok(&api, home, "api-versions").await;
    for version in [
        "v1",
        "apps/v1",
        "authorization.k8s.io/v1",
        "metrics.k8s.io/v1beta1",
    ] {
        assert!(
            versions.lines().any(|l| l == version),
            "{version} in {versions}"
        );
    }
    let resources = ok(&api, home, "api-resources").await;
    assert!(resources.contains("deployments") && resources.contains("deploy"));
    assert!(ok(&api, home, "cluster-info").await.contains(&format!(
        "Kubernetes control plane is running at {}",
        api.base_url()
    )));
    let requests = api.requests();
    assert!(requests.iter().all(|r| r.authorized), "{requests:?}");
    assert!(requests.iter().any(|r| r.path == "/api/v1"));
}

#[tokio::test]
async fn pods_list_by_namespace_label_and_name() {
    let (api, home) = start().await;
    let home = home.path();
    let all = ok(&api, home, "get pods -A -o wide").await;
    assert!(all.starts_with("NAMESPACE"), "{all}");
    for pod in [
        "web-7d4b9c-abcde",
        "web-7d4b9c-fghij",
        "api-5f6d7-xyz12",
        "coredns-6f8d-k2m4p",
    ] {
        assert!(all.contains(pod), "{pod} in {all}");
    }
    assert!(all.contains("node-a"), "wide shows nodes: {all}");
    let default = ok(&api, home, "get pods").await;
    assert!(default.contains("web-7d4b9c-abcde") && !default.contains("api-5f6d7"));
    let labelled = ok(&api, home, "get pods -A -l app=api").await;
    assert!(labelled.contains("api-5f6d7-xyz12") && !labelled.contains("web-"));
    let one = ok(&api, home, "get pod api-5f6d7-xyz12 -n payments -o json").await;
    let pod: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(pod["spec"]["containers"][0]["image"], "payments-api:2.3.1");
    let missing = kubectl(&api, home, "get pod nope").await;
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("pods \"nope\" not found"),
        "{}",
        missing.stderr
    );
    let described = ok(&api, home, "describe pod web-7d4b9c-abcde -n default").await;
    assert!(described.contains("Restart Count:  1"), "{described}");
    assert!(
        described.contains("BackOff"),
        "describe shows the pod's events: {described}"
    );
}

#[tokio::test]
async fn logs_honour_container_tail_previous_and_since() {
    let (api, home) = start().await;
    let home = home.path();
    let tail = ok(&api, home, "logs web-7d4b9c-abcde -c app --tail=3").await;
    assert_eq!(
        tail,
        "web app line 298\nweb app line 299\nweb app line 300\n"
    );
    let sidecar = ok(&api, home, "logs web-7d4b9c-abcde -c sidecar").await;
    assert_eq!(sidecar.lines().count(), 10);
    let previous = ok(&api, home, "logs web-7d4b9c-abcde -c app --previous").await;
    assert!(previous.starts_with("web app previous line 1\n"));
    let since = ok(&api, home, "logs api-5f6d7-xyz12 -n payments --since=5m").await;
    assert_eq!(since.lines().count(), 5, "{since}");
    let no_previous = kubectl(&api, home, "logs api-5f6d7-xyz12 -n payments --previous").await;
    assert_eq!(no_previous.code, Some(1));
    assert!(no_previous.stderr.contains("previous terminated container"));
    let log_request = api
        .requests()
        .into_iter()
        .find(|r| {
            r.path.ends_with("/log") && r.query.as_deref().unwrap_or("").contains("sinceSeconds")
        })
        .expect("a log request with sinceSeconds");
    assert!(log_request.query.unwrap().contains("sinceSeconds=300"));
    api.set_logs(
        "default",
        "web-7d4b9c-fghij",
        "app",
        vec!["replaced".into()],
    );
    assert_eq!(ok(&api, home, "logs web-7d4b9c-fghij").await, "replaced\n");
}

#[tokio::test]
async fn events_nodes_namespaces_and_deployments() {
    let (api, home) = start().await;
    let home = home.path();
    let events = ok(&api, home, "get events -n default --sort-by=.lastTimestamp").await;
    let pulled = events.find("Pulled").expect("Pulled");
    let backoff = events.find("BackOff").expect("BackOff");
    assert!(pulled < backoff, "sorted by lastTimestamp: {events}");
    assert!(
        !events.contains("Unhealthy"),
        "only the namespace: {events}"
    );
    let all_events = ok(&api, home, "events -A").await;
    assert!(all_events.contains("Unhealthy") && all_events.contains("BackOff"));
    let nodes = ok(&api, home, "get nodes").await;
    assert!(nodes.contains("node-a") && nodes.contains("node-b") && nodes.contains("Ready"));
    let namespaces = ok(&api, home, "get namespaces").await;
    assert!(namespaces.contains("payments") && namespaces.contains("kube-system"));
    let deployments = ok(&api, home, "get deployments.apps -A").await;
    assert!(deployments.contains("web") && deployments.contains("2/2"));
    let described = ok(&api, home, "describe deployment web -n default").await;
    assert!(described.contains("2 desired"), "{described}");
}

#[tokio::test]
async fn access_reviews_answer_from_the_access_table() {
    let (api, home) = start().await;
    let home = home.path();
    assert_eq!(
        ok(&api, home, "auth can-i list pods -A").await.trim(),
        "yes"
    );
    assert_eq!(
        ok(&api, home, "auth can-i get pods --subresource=log -A")
            .await
            .trim(),
        "yes"
    );
    assert_eq!(
        ok(&api, home, "auth can-i list deployments.apps -A")
            .await
            .trim(),
        "yes"
    );
    let secrets = kubectl(&api, home, "auth can-i get secrets -A").await;
    assert_eq!(secrets.code, Some(1));
    assert!(secrets.stdout.starts_with("no"));
    api.set_access("get", "secrets", true);
    assert_eq!(
        ok(&api, home, "auth can-i get secrets -A").await.trim(),
        "yes"
    );
    api.set_access("list", "nodes", false);
    assert_eq!(
        kubectl(&api, home, "auth can-i list nodes").await.code,
        Some(1)
    );
}

#[tokio::test]
async fn metrics_can_be_switched_off() {
    let (api, home) = start().await;
    let home = home.path();
    let nodes = ok(&api, home, "top nodes").await;
    assert!(
        nodes.contains("node-a") && nodes.contains("850m"),
        "{nodes}"
    );
    let pods = ok(&api, home, "top pods -A").await;
    assert!(pods.contains("coredns-6f8d-k2m4p"), "{pods}");
    let raw = ok(&api, home, "get --raw /apis/metrics.k8s.io/v1beta1/nodes").await;
    assert!(raw.contains("NodeMetricsList") || raw.contains("NodeMetrics"));
    api.set_metrics_enabled(false);
    let off = tempfile::tempdir().unwrap();
    let top = kubectl(&api, off.path(), "top nodes").await;
    assert_ne!(top.code, Some(0));
    assert!(
        top.stderr.contains("Metrics API not available"),
        "{}",
        top.stderr
    );
    let raw = kubectl(
        &api,
        off.path(),
        "get --raw /apis/metrics.k8s.io/v1beta1/nodes",
    )
    .await;
    assert_ne!(raw.code, Some(0));
}

#[tokio::test]
async fn explain_reads_the_openapi_v3_schema() {
    let (api, home) = start().await;
    let home = home.path();
    let pods = ok(&api, home, "explain pods").await;
    assert!(pods.contains("KIND:       Pod"), "{pods}");
    assert!(pods.contains("spec\t<PodSpec>"), "{pods}");
    let containers = ok(&api, home, "explain pods.spec.containers").await;
    assert!(
        containers.contains("name\t<string> -required-"),
        "{containers}"
    );
}

#[tokio::test]
async fn every_secret_spelling_kubectl_reads_is_refused_by_the_allowlist() {
    let (api, home) = start().await;
    let home = home.path();
    let allowlist = Allowlist::default();
    for line in [
        "get secrets",
        "get secret",
        "get Secret",
        "get secrets.v1.",
        "get secret/db-password -o yaml",
        "get pods,secrets",
        "describe secret db-password",
        "get --raw /api/v1/namespaces/default/secrets",
    ] {
        let output = ok(&api, home, line).await;
        assert!(
            output.contains("db-password"),
            "kubectl {line} reads the Secret: {output}"
        );
        let argv: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        assert!(
            allowlist.check(&argv).is_err(),
            "the allowlist refuses kubectl {line}"
        );
        assert!(allowlist.clone().with_secrets(true).check(&argv).is_ok());
    }
}

#[tokio::test]
async fn requests_without_the_token_are_unauthorized() {
    let (api, home) = start().await;
    let kubeconfig = api.kubeconfig(home.path());
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    std::fs::write(&kubeconfig, text.replace("fake-kube-api-token", "wrong")).unwrap();
    let output = tokio::process::Command::new("kubectl")
        .args(["get", "pods"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("provide credentials"));
    assert!(api.requests().iter().all(|r| !r.authorized));
}

#[tokio::test]
async fn template_files_would_print_local_files_so_the_allowlist_refuses_them() {
    let (api, home) = start().await;
    let file = home.path().join("token");
    std::fs::write(&file, "LOCAL-FILE-CANARY").unwrap();
    let allowlist = Allowlist::default();
    for format in ["go-template-file", "templatefile"] {
        let line = format!("get pods -o {format}={}", file.display());
        let output = ok(&api, home.path(), &line).await;
        assert!(
            output.contains("LOCAL-FILE-CANARY"),
            "kubectl {line} prints the file: {output}"
        );
        let argv: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        assert!(
            allowlist.check(&argv).is_err(),
            "the allowlist refuses kubectl {line}"
        );
    }
}
