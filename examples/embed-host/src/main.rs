//! Runs the example team service on `EMBED_LISTEN` (default 127.0.0.1:6080) with
//! one demo session, `demo-session` for `alice` of team `sre`.

use std::process::ExitCode;

use patchbay_core::ConnectorEnv;
use patchbay_example_embed_host::{app, build_patchbay, TeamSessions};

#[tokio::main]
async fn main() -> ExitCode {
    let env = ConnectorEnv::from_process();
    let listen = env
        .get("EMBED_LISTEN")
        .unwrap_or("127.0.0.1:6080")
        .to_owned();
    let sessions = TeamSessions::new([("demo-session", "alice", "sre")]);
    let patchbay = match build_patchbay(env, sessions.clone()).await {
        Ok(patchbay) => patchbay,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("team service on http://{listen} (Patchbay under /patchbay)");
    match axum::serve(listener, app(&patchbay, sessions)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
