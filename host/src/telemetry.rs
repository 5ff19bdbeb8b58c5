//! Logging set-up and the request trace layer; nothing here records headers or bodies.

use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Directives added after any filter a user sets: `vaultrs` and `rustify` log
/// request and response bodies (Vault tokens and secrets) at debug level, `sqlx`
/// logs every statement, and the AWS SDK's runtime logs the resolved identity
/// (an assumed session's access key id) and signing details at debug and trace.
pub const SAFETY_DIRECTIVES: &str = "sqlx=warn,vaultrs=off,rustify=off,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,aws_runtime=warn,aws_sigv4=warn,aws_config=warn,aws_credential_types=warn";

/// The log filter: the user's (`PATCHBAY_LOG`, else `RUST_LOG`, else `info`) followed
/// by [`SAFETY_DIRECTIVES`], which win over the user's for their targets.
pub fn log_filter(user: Option<&str>) -> EnvFilter {
    let user = user.map(str::trim).filter(|filter| !filter.is_empty());
    EnvFilter::new(format!("{},{SAFETY_DIRECTIVES}", user.unwrap_or("info")))
}

/// Installs the global subscriber; `PATCHBAY_LOG` (or `RUST_LOG`) sets the filter.
pub fn init(format: LogFormat) {
    let user = std::env::var("PATCHBAY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(user.as_deref()))
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file or collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A subscriber may already be installed by an embedding application.
    drop(result);
}

/// How request spans are made: [`request_span`].
pub type MakeRequestSpan = fn(&axum::http::Request<axum::body::Body>) -> tracing::Span;

/// One span per request with method, path and status; headers and the query string
/// are never recorded (an OAuth callback's query carries the authorization code).
pub fn trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeRequestSpan> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeRequestSpan)
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
}

/// Paths whose last segment is a one-time credential: a connect link's token and
/// an OAuth flow's begin state.
const CREDENTIAL_PATHS: [&str; 2] = ["/connect/", "/oauth/begin/"];

/// The path as logged: without the credential of a [`CREDENTIAL_PATHS`] path.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    match CREDENTIAL_PATHS
        .iter()
        .find(|prefix| path.starts_with(*prefix) && path.len() > prefix.len())
    {
        Some(prefix) => format!("{prefix}[redacted]").into(),
        None => path.into(),
    }
}

/// The request span: method, path without the query (or a credential), and HTTP
/// version.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %logged_path(request.uri().path()),
        version = ?request.version(),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn one_time_credentials_in_paths_are_not_logged() {
        assert_eq!(
            logged_path("/connect/pbl_secret-token"),
            "/connect/[redacted]"
        );
        assert_eq!(
            logged_path("/oauth/begin/state-value"),
            "/oauth/begin/[redacted]"
        );
        assert_eq!(logged_path("/api/connections"), "/api/connections");
        assert_eq!(
            super::CREDENTIAL_PATHS[1],
            format!("{}/", patchbay_oauth::BEGIN_PATH)
        );
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged_with(user: Option<&str>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(log_filter(user))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "vaultrs::api", "vault-body-canary");
            tracing::debug!(target: "rustify::endpoint", "rustify-body-canary");
            tracing::info!(target: "sqlx::query", "sqlx-statement-canary");
            tracing::debug!(target: "patchbay_host::api", "patchbay-debug-line");
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_user_filter_keeps_vault_and_sql_internals_quiet() {
        for user in [
            Some("debug"),
            Some("trace"),
            Some("debug,vaultrs=trace,rustify=debug,sqlx=debug"),
        ] {
            let logged = logged_with(user);
            assert!(logged.contains("patchbay-debug-line"), "{user:?}: {logged}");
            for canary in [
                "vault-body-canary",
                "rustify-body-canary",
                "sqlx-statement-canary",
            ] {
                assert!(!logged.contains(canary), "{user:?} let {canary} through");
            }
        }
        let default = logged_with(None);
        assert!(!default.contains("patchbay-debug-line"), "info by default");
    }
}
