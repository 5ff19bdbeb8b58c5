//! The `patchbay-kubectl-agent` binary: exit codes, probes and signals.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Host, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

fn agent() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_patchbay-kubectl-agent"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on the probe port: the status code and body, or `None` if closed.
async fn probe(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    Some((status, body))
}

async fn probe_until(port: u16, path: &str, status: u16) -> String {
    for _ in 0..100 {
        if let Some((found, body)) = probe(port, path).await {
            if found == status {
                return body;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GET {path} never answered {status}");
}

async fn exit_of(mut child: Child) -> (Option<i32>, String) {
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the agent exits within 15 s")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    (status.code(), stderr)
}

#[tokio::test]
async fn missing_settings_exit_2_naming_the_variable() {
    let child = agent()
        .env("PATCHBAY_WS_URL", "ws://127.0.0.1:1/kubectl-agent")
        .spawn()
        .unwrap();
    let (code, stderr) = exit_of(child).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("PATCHBAY_AGENT_TOKEN (or AURORA_AGENT_TOKEN) is not set"),
        "{stderr}"
    );

    let child = agent().env("AURORA_AGENT_TOKEN", TOKEN).spawn().unwrap();
    let (code, stderr) = exit_of(child).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("PATCHBAY_WS_URL (or NEXT_PUBLIC_WEBSOCKET_URL) is not set"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "the token is never printed");
}

#[tokio::test]
async fn probes_follow_the_connection_and_a_revoked_token_exits_3() {
    let mut host = Host::start().await;
    let port = free_port();
    let child = agent()
        .env("NEXT_PUBLIC_WEBSOCKET_URL", &host.url)
        .env("AURORA_AGENT_TOKEN", TOKEN)
        .env("PATCHBAY_HEALTH_PORT", port.to_string())
        .spawn()
        .unwrap();
    let connection = host.accept_registered().await;
    assert_eq!(probe_until(port, "/health", 200).await, "ok");
    assert_eq!(probe_until(port, "/ready", 200).await, "ready");
    connection.close(4003, "Token revoked").await;
    let (code, stderr) = exit_of(child).await;
    assert_eq!(code, Some(3));
    assert_eq!(
        stderr.matches("not retrying").count(),
        1,
        "logged once: {stderr}"
    );
    assert!(stderr.contains("Token revoked"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "the token is never logged");
    assert!(
        host.try_accept(Duration::from_millis(500)).await.is_none(),
        "no reconnect"
    );
}

#[tokio::test]
async fn sigterm_exits_0_and_ready_is_503_while_disconnected() {
    let mut host = Host::start().await;
    let port = free_port();
    let child = agent()
        .env("PATCHBAY_WS_URL", &host.url)
        .env("PATCHBAY_AGENT_TOKEN", TOKEN)
        .env("PATCHBAY_HEALTH_PORT", port.to_string())
        .env("PATCHBAY_BACKOFF_INITIAL_SECONDS", "0.05")
        .env("PATCHBAY_BACKOFF_MAX_SECONDS", "0.2")
        .spawn()
        .unwrap();
    let connection = host.accept_registered().await;
    probe_until(port, "/ready", 200).await;
    connection.close(1001, "going away").await;
    let again = host.accept_registered().await;
    probe_until(port, "/ready", 200).await;
    // With the host gone the agent keeps retrying and is not ready, but alive.
    drop(again);
    drop(host);
    assert_eq!(probe_until(port, "/ready", 503).await, "not connected");
    assert_eq!(probe_until(port, "/health", 200).await, "ok");
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let (code, stderr) = exit_of(child).await;
    assert_eq!(code, Some(0), "{stderr}");
}
