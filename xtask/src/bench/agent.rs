//! `cargo xtask bench agent`: what the Kubernetes relay adds to a kubectl command.
//!
//! The same read (`kubectl get pods -n default`) runs against the connector's fake
//! Kubernetes API twice in one run: by spawning the real kubectl directly (the
//! baseline), and through Patchbay's API, the `/kubectl-agent` socket and the
//! release agent binary, which spawns the same kubectl. The difference is the cost
//! of the relay; concurrency is measured the same way with all commands on one
//! agent socket.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use patchbay_kubectl_protocol::fake::FakeKubeApi;
use serde_json::{json, Value};

use super::{free_port, millis, patchbay_command, wait_for_patchbay, ChildGuard};
use crate::target_dir;

/// The argv both paths run; the operation's parameters below produce the same.
const DIRECT_ARGS: [&str; 4] = ["get", "pods", "--namespace", "default"];

struct Figures {
    p50: Duration,
    p99: Duration,
    wall: Duration,
}

fn figures(mut latencies: Vec<Duration>, wall: Duration) -> Figures {
    latencies.sort_unstable();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Figures {
        p50: at(0.50),
        p99: at(0.99),
        wall,
    }
}

/// Runs the benchmark: `sequential` commands one after another, then `concurrent`
/// commands at once on one socket.
pub async fn agent(sequential: usize, concurrent: usize) -> Result<()> {
    let patchbay = target_dir().join("release/patchbay");
    let agent_binary = target_dir().join("release/patchbay-kubectl-agent");
    for binary in [&patchbay, &agent_binary] {
        ensure!(
            binary.exists(),
            "{} is missing; run without --skip-build",
            binary.display()
        );
    }
    let kubectl = which_kubectl()?;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir()?;
    let kubeconfig = api.kubeconfig(home.path());
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrent.max(16))
        .timeout(Duration::from_secs(120))
        .build()?;

    // The service, an API key and a cluster.
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let _service = ChildGuard(
        patchbay_command(&patchbay, dir.path(), port, "")
            .arg("serve")
            .spawn()?,
    );
    wait_for_patchbay(&client, &format!("{base}/healthz"), dir.path()).await?;
    let output = patchbay_command(&patchbay, dir.path(), port, "")
        .args(["api-keys", "create", "--user", "bench"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()?;
    ensure!(output.status.success(), "api-keys create failed");
    let key = String::from_utf8(output.stdout)?.trim().to_owned();
    let added: Value = client
        .post(format!("{base}/api/connections"))
        .bearer_auth(&key)
        .json(&json!({
            "connector": "kubernetes",
            "label": "bench",
            "fields": { "cluster_name": "bench" }
        }))
        .send()
        .await?
        .json()
        .await?;
    let id = added["connection"]["id"]
        .as_str()
        .with_context(|| format!("Add Cluster failed: {added}"))?
        .to_owned();
    let token = added["agent"]["token"]
        .as_str()
        .context("Add Cluster answered without a token")?
        .to_owned();

    // The agent, allowed to run every concurrent command at once.
    let agent_log = std::fs::File::create(dir.path().join("agent.log"))?;
    let _agent = ChildGuard(
        Command::new(&agent_binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("KUBECONFIG", &kubeconfig)
            .env(
                "PATCHBAY_WS_URL",
                format!("ws://127.0.0.1:{port}/kubectl-agent"),
            )
            .env("PATCHBAY_AGENT_TOKEN", &token)
            .env("PATCHBAY_KUBECTL", &kubectl)
            .env("PATCHBAY_MAX_CONCURRENCY", concurrent.max(1).to_string())
            .env("PATCHBAY_HEALTH_PORT", free_port()?.to_string())
            .env("PATCHBAY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(agent_log)
            .spawn()?,
    );
    wait_connected(&client, &base, &key, &id, dir.path()).await?;

    let query_url = format!("{base}/api/connections/{id}/query/get");
    let params = json!({ "resource": "pods", "namespace": "default" });
    let through_patchbay = |client: reqwest::Client, url: String, key: String, params: Value| async move {
        let sent = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(&key)
            .json(&params)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        let elapsed = sent.elapsed();
        ensure!(status.is_success(), "the query answered {status}: {body}");
        // The agent's own measure of its kubectl process, from spawn to exit.
        let in_agent = body["data"]["duration_us"]
            .as_u64()
            .map(Duration::from_micros)
            .with_context(|| format!("the answer has no data.duration_us: {body}"))?;
        anyhow::Ok((elapsed, in_agent))
    };
    let direct = |kubectl: String, kubeconfig: std::path::PathBuf, home: std::path::PathBuf| async move {
        let sent = Instant::now();
        let output = tokio::process::Command::new(&kubectl)
            .args(DIRECT_ARGS)
            // The environment the agent gives its kubectl (see the agent below), so
            // both paths run the same kubectl the same way.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("KUBECONFIG", &kubeconfig)
            .stdin(Stdio::null())
            .output()
            .await?;
        ensure!(
            output.status.success(),
            "kubectl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        anyhow::Ok(sent.elapsed())
    };

    // Warm-up: kubectl's discovery cache, the connections, the agent's first spawn.
    for _ in 0..5 {
        direct(kubectl.clone(), kubeconfig.clone(), home.path().to_owned()).await?;
        through_patchbay(
            client.clone(),
            query_url.clone(),
            key.clone(),
            params.clone(),
        )
        .await?;
    }

    // One at a time, alternating so both see the same machine load.
    let mut direct_latencies = Vec::with_capacity(sequential);
    let mut relay_latencies = Vec::with_capacity(sequential);
    let mut in_agent_latencies = Vec::with_capacity(sequential);
    let mut relay_own_latencies = Vec::with_capacity(sequential);
    let mut api_latencies = Vec::with_capacity(sequential);
    let connection_url = format!("{base}/api/connections/{id}");
    let started = Instant::now();
    for _ in 0..sequential {
        direct_latencies
            .push(direct(kubectl.clone(), kubeconfig.clone(), home.path().to_owned()).await?);
        let (relayed, in_agent) = through_patchbay(
            client.clone(),
            query_url.clone(),
            key.clone(),
            params.clone(),
        )
        .await?;
        relay_latencies.push(relayed);
        in_agent_latencies.push(in_agent);
        // Paired: this command's round trip less its own kubectl run.
        relay_own_latencies.push(relayed.saturating_sub(in_agent));
        // The API's own floor: an authenticated read of the connection, no agent.
        let sent = Instant::now();
        let response = client.get(&connection_url).bearer_auth(&key).send().await?;
        ensure!(response.status().is_success(), "GET the connection failed");
        response.bytes().await?;
        api_latencies.push(sent.elapsed());
    }
    let sequential_wall = started.elapsed();
    let direct_one = figures(direct_latencies, sequential_wall);
    let relay_one = figures(relay_latencies, sequential_wall);
    let in_agent_one = figures(in_agent_latencies, sequential_wall);
    let relay_own_one = figures(relay_own_latencies, sequential_wall);
    let api_one = figures(api_latencies, sequential_wall);

    // All at once: `concurrent` kubectl processes, then `concurrent` queries on one socket.
    let started = Instant::now();
    let runs: Vec<_> = (0..concurrent)
        .map(|_| {
            tokio::spawn(direct(
                kubectl.clone(),
                kubeconfig.clone(),
                home.path().to_owned(),
            ))
        })
        .collect();
    let mut latencies = Vec::with_capacity(concurrent);
    for run in runs {
        latencies.push(run.await??);
    }
    let direct_many = figures(latencies, started.elapsed());
    let started = Instant::now();
    let runs: Vec<_> = (0..concurrent)
        .map(|_| {
            tokio::spawn(through_patchbay(
                client.clone(),
                query_url.clone(),
                key.clone(),
                params.clone(),
            ))
        })
        .collect();
    let mut latencies = Vec::with_capacity(concurrent);
    for run in runs {
        latencies.push(run.await??.0);
    }
    let relay_many = figures(latencies, started.elapsed());

    let added = relay_one.p50.saturating_sub(direct_one.p50);
    println!("\n## kubectl through the agent relay (release build, loopback)\n");
    println!("`kubectl get pods --namespace default` against the fake Kubernetes API.\n");
    println!("| path | commands | at once | p50 ms | p99 ms | wall ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (path, commands, at_once, f) in [
        ("kubectl directly", sequential, 1, &direct_one),
        ("Patchbay API → agent → kubectl", sequential, 1, &relay_one),
        ("kubectl directly", concurrent, concurrent, &direct_many),
        (
            "Patchbay API → agent → kubectl",
            concurrent,
            concurrent,
            &relay_many,
        ),
    ] {
        println!(
            "| {path} | {commands} | {at_once} | {:.2} | {:.2} | {:.0} |",
            millis(f.p50),
            millis(f.p99),
            millis(f.wall)
        );
    }
    println!(
        "\nAdded by the relay at p50, one at a time: {:.2} ms ({:.3}× the direct p50).",
        millis(added),
        relay_one.p50.as_secs_f64() / direct_one.p50.as_secs_f64()
    );
    println!(
        "kubectl as the agent ran it (the agent's measure, spawn to exit): p50 {:.2} ms, p99 {:.2} ms, \
         against {:.2} ms and {:.2} ms run directly.",
        millis(in_agent_one.p50),
        millis(in_agent_one.p99),
        millis(direct_one.p50),
        millis(direct_one.p99)
    );
    println!(
        "Per command, the round trip less that command's own kubectl run (Patchbay's API, \
         the socket and the agent): p50 {:.2} ms, p99 {:.2} ms.",
        millis(relay_own_one.p50),
        millis(relay_own_one.p99)
    );
    println!(
        "An authenticated GET of the connection (the API alone, no agent): p50 {:.2} ms, p99 {:.2} ms.",
        millis(api_one.p50),
        millis(api_one.p99)
    );
    println!(
        "{concurrent} commands at once on one socket: wall time {:.3}× the direct run's.",
        relay_many.wall.as_secs_f64() / direct_many.wall.as_secs_f64()
    );
    Ok(())
}

/// The kubectl on `PATH`, which the agent runs too.
fn which_kubectl() -> Result<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .map(|found| found.display().to_string())
        .context(
            "kubectl is not on PATH; install kubectl 1.32 (the kubectl package from pkgs.k8s.io)",
        )
}

/// Waits until the cluster's agent has registered, showing both logs when it never does.
async fn wait_connected(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    dir: &std::path::Path,
) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let connection: Value = client
            .get(format!("{base}/api/connections/{id}"))
            .bearer_auth(key)
            .send()
            .await?
            .json()
            .await?;
        let agent = &connection["connection"]["agent"];
        if agent["state"] == "connected" && agent["agent_version"].is_string() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    bail!(
        "the agent did not register within 30 s\npatchbay's log:\n{}\nthe agent's log:\n{}",
        log("patchbay.log"),
        log("agent.log")
    )
}
