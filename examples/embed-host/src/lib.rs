//! A team's own service that embeds Patchbay.
//!
//! The team already has routes and a way of knowing who is calling (here, session
//! tokens in `X-Team-Session`). It mounts Patchbay's API under `/patchbay`, lets
//! Patchbay know the caller through [`SessionPrincipals`], and links a third-party
//! connector (`hello`) next to the built-in ones.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use patchbay_core::{ConnectorEnv, Tenant};
use patchbay_host::auth::PrincipalExtractor;
use patchbay_host::error::ApiError;
use patchbay_host::{Host, HostBuilder, HostConfig};
use serde_json::{json, Value};

// The third-party connector registers itself through `inventory` once it is linked.
patchbay_core::link!(patchbay_connector_hello);

/// Where Patchbay's API is mounted in the team's service.
pub const PATCHBAY_PREFIX: &str = "/patchbay";

/// The header the team's service reads its session token from.
pub const SESSION_HEADER: &str = "x-team-session";

/// The team's own sign-in: session tokens and the people they belong to.
#[derive(Debug, Clone, Default)]
pub struct TeamSessions {
    sessions: Arc<HashMap<String, Tenant>>,
}

impl TeamSessions {
    /// Sessions from `(token, user, team)` triples.
    pub fn new<'a>(sessions: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        let sessions = sessions
            .into_iter()
            .map(|(token, user, team)| {
                let tenant = Tenant {
                    user_id: user.to_owned(),
                    org_id: Some(team.to_owned()),
                };
                (token.to_owned(), tenant)
            })
            .collect();
        Self {
            sessions: Arc::new(sessions),
        }
    }

    /// The person behind the request's session, if it carries a known one.
    pub fn caller(&self, headers: &HeaderMap) -> Option<&Tenant> {
        let token = headers.get(SESSION_HEADER)?.to_str().ok()?.trim();
        self.sessions.get(token)
    }
}

/// Tells Patchbay who is calling, from the team's own sessions, so Patchbay needs
/// no API keys of its own in this service.
pub struct SessionPrincipals(pub TeamSessions);

#[async_trait]
impl PrincipalExtractor for SessionPrincipals {
    async fn principal(&self, headers: &HeaderMap) -> Result<Tenant, ApiError> {
        self.0.caller(headers).cloned().ok_or_else(|| {
            ApiError::unauthenticated(
                "sign in to the team service first",
                "send your session token in the X-Team-Session header",
            )
        })
    }
}

/// Builds Patchbay with the team's sign-in; everything else comes from `env` as it
/// would for the `patchbay` binary (stores, secrets, connector settings).
pub async fn build_patchbay(
    env: ConnectorEnv,
    sessions: TeamSessions,
) -> patchbay_core::Result<Host> {
    let config = HostConfig::from_env(&env).map_err(|problems| {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        patchbay_core::Error::invalid_config("environment", listed.join("; "))
    })?;
    HostBuilder::new(config, env)
        .principal_extractor(Arc::new(SessionPrincipals(sessions)))
        .build()
        .await
}

/// The team's service: its own routes, and Patchbay under [`PATCHBAY_PREFIX`].
pub fn app(patchbay: &Host, sessions: TeamSessions) -> Router {
    let own = Router::new()
        .route("/", get(home))
        .route("/whoami", get(whoami))
        .with_state(sessions);
    own.nest(PATCHBAY_PREFIX, patchbay.router())
}

async fn home() -> &'static str {
    "Team service. Patchbay's API is under /patchbay/api.\n"
}

async fn whoami(
    State(sessions): State<TeamSessions>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    match sessions.caller(&headers) {
        Some(tenant) => (
            StatusCode::OK,
            Json(json!({"user": tenant.user_id, "team": tenant.org_id})),
        ),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "no session"})),
        ),
    }
}
