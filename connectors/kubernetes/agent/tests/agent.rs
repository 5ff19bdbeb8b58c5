//! The agent against a scripted loopback host, running the real kubectl
//! against the fake Kubernetes API.

mod common;

use std::time::{Duration, Instant};

use common::{command, config, env, Agent, Host, TOKEN};
use patchbay_kubectl_agent::Exit;
use patchbay_kubectl_protocol::fake::FakeKubeApi;
use patchbay_kubectl_protocol::{CloseReason, ErrorCode, Message, PROTOCOL_HEADER};

fn with(mut pairs: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    pairs
}

fn response(message: Message) -> (bool, String, Option<String>, i32, Option<bool>, Option<u64>) {
    match message {
        Message::CommandResponse {
            success,
            output,
            error,
            return_code,
            truncated,
            stdout_bytes,
            ..
        } => (success, output, error, return_code, truncated, stdout_bytes),
        other => panic!("expected a command_response, got {other:?}"),
    }
}

#[tokio::test]
async fn connects_with_bearer_and_protocol_headers_registers_and_sends_heartbeats() {
    let mut host = Host::start().await;
    let pairs = with(
        env(&host, None),
        &[
            ("PATCHBAY_HEARTBEAT_SECONDS", "0.2"),
            ("PATCHBAY_MAX_CONCURRENCY", "5"),
        ],
    );
    let agent = Agent::start(config(&pairs));
    let mut connection = host.accept().await;
    assert_eq!(connection.path, "/kubectl-agent");
    assert_eq!(
        connection.headers["authorization"],
        format!("Bearer {TOKEN}")
    );
    assert_eq!(connection.headers[PROTOCOL_HEADER], "1");
    match connection.recv().await {
        Message::Register {
            agent_version,
            protocol_version,
            capabilities: Some(capabilities),
            ..
        } => {
            assert_eq!(agent_version.as_deref(), Some("9.9.9-test"));
            assert_eq!(protocol_version, Some(1));
            assert_eq!(capabilities.max_concurrency, 5);
            assert_eq!(capabilities.max_output_bytes, 1024 * 1024);
            assert_eq!(
                capabilities.allowlist_version,
                patchbay_kubectl_protocol::allowlist::Allowlist::default().version()
            );
        }
        other => panic!("register first, got {other:?}"),
    }
    assert!(agent.health.is_ready(), "/ready is 200 while connected");
    connection
        .send(&Message::Connected {
            cluster_id: "c-1".into(),
            cluster_name: "prod".into(),
        })
        .await;
    let started = Instant::now();
    assert_eq!(
        connection.recv().await,
        Message::Heartbeat { cluster_id: None }
    );
    assert_eq!(
        connection.recv().await,
        Message::Heartbeat { cluster_id: None }
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "heartbeats follow the interval"
    );
    connection.send(&Message::HeartbeatAck).await;
    connection
        .send_text(r#"{"type":"from_the_future","x":1}"#)
        .await;
    connection.send_text("not json").await;
    match connection.recv().await {
        Message::Error {
            code, command_id, ..
        } => {
            assert_eq!(code, ErrorCode::BadRequest);
            assert_eq!(command_id, None);
        }
        other => panic!("a bad_request error for the broken frame, got {other:?}"),
    }
    assert_eq!(agent.stop().await, Exit::Shutdown);
}

#[tokio::test]
async fn every_read_command_runs_the_real_kubectl() {
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut host = Host::start().await;
    // Every command at once: more than the default limit of 8.
    let pairs = with(
        env(&host, Some((&api, home.path()))),
        &[("PATCHBAY_MAX_CONCURRENCY", "16")],
    );
    let agent = Agent::start(config(&pairs));
    let mut connection = host.accept_registered().await;
    let commands = [
        ("get", "get pods -A -o wide", "coredns-6f8d-k2m4p"),
        (
            "describe",
            "describe pod web-7d4b9c-abcde -n default",
            "Restart Count:  1",
        ),
        (
            "logs",
            "logs web-7d4b9c-abcde -n default -c app --tail=2",
            "web app line 299\nweb app line 300\n",
        ),
        (
            "events",
            "get events -n default --sort-by=.lastTimestamp",
            "BackOff",
        ),
        ("events-verb", "events -A", "Unhealthy"),
        ("top", "top nodes", "850m"),
        ("api-resources", "api-resources", "deployments"),
        ("api-versions", "api-versions", "apps/v1"),
        ("explain", "explain pods", "KIND:       Pod"),
        ("version", "version", "Server Version: v1.32.4"),
        (
            "cluster-info",
            "cluster-info",
            "Kubernetes control plane is running",
        ),
        ("auth", "auth can-i list pods -A", "yes"),
        ("deployments", "get deployments.apps -A", "web"),
    ];
    for (id, line, _) in &commands {
        connection.send(&command(id, line, 60)).await;
    }
    let mut answers = std::collections::HashMap::new();
    while answers.len() < commands.len() {
        let message = connection.recv().await;
        if let Message::CommandResponse { command_id, .. } = &message {
            answers.insert(command_id.clone(), message.clone());
        }
    }
    for (id, line, expected) in commands {
        let (success, output, error, return_code, truncated, _) = response(answers[id].clone());
        assert!(success, "kubectl {line}: rc {return_code}, {error:?}");
        assert_eq!(return_code, 0);
        assert_eq!(truncated, Some(false));
        assert!(output.contains(expected), "kubectl {line} printed {output}");
        // The run's length in both units, agreeing to the millisecond.
        let Message::CommandResponse {
            duration_ms: Some(ms),
            duration_us: Some(us),
            ..
        } = answers[id]
        else {
            panic!("kubectl {line}: no duration in {:?}", answers[id]);
        };
        assert!(
            us > 0 && us / 1000 == ms,
            "kubectl {line}: {ms} ms, {us} µs"
        );
    }
    assert!(api.requests().iter().all(|r| r.authorized));

    // A v1 host sends only the command string.
    connection
        .send_text(
            r#"{"type":"kubectl_command","command_id":"v1","command":"get nodes","timeout":30}"#,
        )
        .await;
    let (success, output, ..) = response(connection.answer_to("v1").await);
    assert!(success && output.contains("node-b"), "{output}");
    assert_eq!(agent.stop().await, Exit::Shutdown);
}

#[tokio::test]
async fn the_agent_refuses_what_its_allowlist_refuses_without_running_kubectl() {
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut host = Host::start().await;
    let pairs = with(
        env(&host, Some((&api, home.path()))),
        &[("PATCHBAY_ALLOWLIST", "get,logs,describe")],
    );
    let agent = Agent::start(config(&pairs));
    let mut connection = host.accept_registered().await;
    api.clear_requests();
    for (id, line, named) in [
        ("delete", "delete pod web-7d4b9c-abcde", "delete"),
        ("secrets", "get secrets -A", "Secrets"),
        ("secret-slash", "get secret/db-password -o yaml", "Secrets"),
        ("server", "get pods --server=https://elsewhere", "--server"),
        ("short-server", "get pods -shttps://elsewhere", "-s"),
        ("as", "get pods --as system:admin", "--as"),
        ("kubeconfig", "--kubeconfig=/tmp/x get pods", "--kubeconfig"),
        ("raw-describe", "describe --raw /api/v1/secrets", "--raw"),
        ("top-not-listed", "top nodes", "kubectl top"),
        ("exec", "exec web-7d4b9c-abcde -- sh", "exec"),
    ] {
        connection.send(&command(id, line, 30)).await;
        match connection.answer_to(id).await {
            Message::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::VerbNotAllowed, "{line}");
                assert!(message.contains(named), "{line}: {message}");
            }
            other => panic!("kubectl {line} should be refused, got {other:?}"),
        }
    }
    assert_eq!(api.requests(), Vec::new(), "kubectl never ran");
    connection.send(&command("allowed", "get pods", 30)).await;
    let (success, ..) = response(connection.answer_to("allowed").await);
    assert!(success);
    agent.stop().await;
}

#[tokio::test]
async fn commands_beyond_the_limit_are_busy_and_cancel_kills_a_command() {
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut host = Host::start().await;
    let pairs = with(
        env(&host, Some((&api, home.path()))),
        &[("PATCHBAY_MAX_CONCURRENCY", "1")],
    );
    let agent = Agent::start(config(&pairs));
    let mut connection = host.accept_registered().await;
    // Warm kubectl's discovery cache, then make every answer slow.
    connection.send(&command("warm", "get pods", 30)).await;
    assert!(response(connection.answer_to("warm").await).0);
    api.set_response_delay(Duration::from_secs(30));
    connection.send(&command("slow", "get nodes", 60)).await;
    connection.send(&command("second", "get pods", 60)).await;
    match connection.answer_to("second").await {
        Message::Error { code, .. } => assert_eq!(code, ErrorCode::Busy),
        other => panic!("the second command is busy, got {other:?}"),
    }
    let started = Instant::now();
    connection
        .send(&Message::Cancel {
            command_id: "slow".into(),
        })
        .await;
    let (success, _, error, return_code, ..) = response(connection.answer_to("slow").await);
    assert!(!success);
    assert_eq!(return_code, 130);
    assert_eq!(error.as_deref(), Some("Command cancelled"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel kills at once"
    );
    api.set_response_delay(Duration::ZERO);
    connection.send(&command("after", "get pods", 30)).await;
    assert!(
        response(connection.answer_to("after").await).0,
        "the slot is free again"
    );
    agent.stop().await;
}

#[tokio::test]
async fn output_is_cut_at_the_cap_and_slow_commands_time_out() {
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut host = Host::start().await;
    let pairs = with(
        env(&host, Some((&api, home.path()))),
        &[("PATCHBAY_MAX_OUTPUT_BYTES", "4096")],
    );
    let agent = Agent::start(config(&pairs));
    let mut connection = host.accept_registered().await;
    let lines: Vec<String> = (0..200_000)
        .map(|n| format!("chatty log line {n:08}"))
        .collect();
    api.set_logs("default", "web-7d4b9c-fghij", "app", lines);
    connection
        .send(&command("big", "logs web-7d4b9c-fghij -n default", 60))
        .await;
    let (success, output, _, _, truncated, stdout_bytes) =
        response(connection.answer_to("big").await);
    assert!(success);
    assert_eq!(truncated, Some(true));
    assert_eq!(output.len(), 4096);
    assert!(output.starts_with(
        "chatty log line 00000000
"
    ));
    assert!(stdout_bytes.unwrap() > 4096);

    api.set_response_delay(Duration::from_secs(30));
    let started = Instant::now();
    connection.send(&command("slow", "get pods", 1)).await;
    let (success, _, error, return_code, ..) = response(connection.answer_to("slow").await);
    assert!(!success);
    assert_eq!(return_code, 124);
    assert_eq!(error.as_deref(), Some("Command timed out after 1 seconds"));
    assert!(started.elapsed() < Duration::from_secs(10));
    agent.stop().await;
}

#[tokio::test]
async fn a_missing_kubectl_answers_127() {
    let mut host = Host::start().await;
    let pairs = with(
        env(&host, None),
        &[("PATCHBAY_KUBECTL", "/nonexistent/kubectl")],
    );
    let agent = Agent::start(config(&pairs));
    let mut connection = host.accept_registered().await;
    connection.send(&command("x", "version", 10)).await;
    let (success, _, error, return_code, ..) = response(connection.answer_to("x").await);
    assert!(!success);
    assert_eq!(return_code, 127);
    assert!(error
        .unwrap()
        .contains("kubectl not found at /nonexistent/kubectl"));
    agent.stop().await;
}

#[tokio::test]
async fn terminal_closes_stop_the_agent_without_retrying() {
    for (code, reason, expected) in [
        (1008, "Token revoked", CloseReason::TokenRevoked),
        (1008, "Invalid token", CloseReason::InvalidToken),
        (4004, "token expired", CloseReason::TokenExpired),
        (4001, "", CloseReason::MissingAuthorization),
    ] {
        let mut host = Host::start().await;
        let agent = Agent::start(config(&env(&host, None)));
        let connection = host.accept_registered().await;
        connection.close(code, reason).await;
        let exit = tokio::time::timeout(Duration::from_secs(10), agent.task)
            .await
            .expect("the agent exits")
            .unwrap();
        assert_eq!(exit, Exit::Terminal(expected));
        assert_eq!(exit.code(), 3);
        assert!(!agent.health.is_ready());
        assert!(
            host.try_accept(Duration::from_millis(800)).await.is_none(),
            "no reconnect after {code} {reason}"
        );
    }
}

#[tokio::test]
async fn other_closes_and_lost_connections_reconnect() {
    let mut host = Host::start().await;
    let agent = Agent::start(config(&env(&host, None)));
    let first = host.accept_registered().await;
    first.close(1011, "restarting").await;
    let second = host.accept_registered().await;
    second.close(1008, "Message too big").await;
    let third = host.accept_registered().await;
    drop(third);
    let mut fourth = host.accept_registered().await;
    assert!(agent.health.is_ready());
    fourth.send(&command("still", "version", 5)).await;
    let _ = fourth.answer_to("still").await;
    assert_eq!(agent.stop().await, Exit::Shutdown);
}

#[tokio::test]
async fn a_silent_host_is_dropped_after_the_pong_timeout() {
    // A TCP listener that completes the WebSocket handshake and then never reads,
    // so pings go unanswered.
    let mut host = Host::start().await;
    let pairs = with(
        env(&host, None),
        &[
            ("PATCHBAY_PING_SECONDS", "0.1"),
            ("PATCHBAY_PING_TIMEOUT_SECONDS", "0.3"),
        ],
    );
    let agent = Agent::start(config(&pairs));
    let _silent = host.accept().await;
    let started = Instant::now();
    let _again = host.accept().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reconnected after the pong timeout"
    );
    agent.stop().await;
}
