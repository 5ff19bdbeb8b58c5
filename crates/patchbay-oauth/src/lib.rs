//! The Patchbay OAuth 2.0 engine.
//!
//! [`OAuthEngine`] runs the authorization-code flow from a connector's
//! [`OAuthSpec`]: it issues a state (kept server-side only as its SHA-256, so any
//! replica can finish the flow), derives the PKCE verifier from that state, builds
//! the authorize URL, and on the callback consumes the state exactly once and
//! exchanges the code. [`TokenRefresher`] keeps stored access tokens fresh, one
//! refresh per connection at a time across every replica.
#![deny(missing_docs)]

pub mod errors;
pub mod exchange;
pub mod refresh;
pub mod state;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchbay_core::{
    ConnectorDescriptor, ConnectorEnv, Error, OAuthClientCredentials, OAuthGrant, OAuthSpec,
    Result, SecretString, Tenant,
};
use patchbay_http::HttpClient;
use patchbay_store::{ConsumedState, PendingAuthorization, RecordStore};
use serde::Serialize;
use serde_json::{Map, Value};

pub use exchange::{TokenRequestFailure, TokenSet};
pub use refresh::{TokenRefresher, DEFAULT_REFRESH_SKEW, REFRESH_SKEW_VAR};
pub use state::STATE_LIFETIME;

/// Where a started flow sends the person's browser.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizationStart {
    /// The provider's authorize URL with state, PKCE challenge and redirect URI.
    pub authorize_url: String,
    /// When the state stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// The query parameters a provider sends back to the callback.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The state issued at the start.
    pub state: Option<String>,
    /// The provider's error code (`access_denied`).
    pub error: Option<String>,
    /// The provider's explanation of the error.
    pub error_description: Option<String>,
}

/// A finished flow: whose connection it is and the tokens for the connector.
#[derive(Debug, Clone)]
pub struct CompletedAuthorization {
    /// The tenant that started the flow (taken only from the stored state).
    pub tenant: Tenant,
    /// The label asked for at the start.
    pub label: Option<String>,
    /// The connector options given at the start.
    pub options: Map<String, Value>,
    /// The tokens, for the connector's `authenticate` hook.
    pub grant: OAuthGrant,
}

/// Runs OAuth flows for every connector that declares an [`OAuthSpec`].
pub struct OAuthEngine {
    http: HttpClient,
    records: Arc<dyn RecordStore>,
    env: ConnectorEnv,
    public_url: String,
}

impl std::fmt::Debug for OAuthEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthEngine")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

fn not_oauth(descriptor: &ConnectorDescriptor) -> Error {
    Error::unsupported(format!(
        "{} does not connect through OAuth",
        descriptor.display_name
    ))
    .with_connector(descriptor.id)
}

/// The spec of an OAuth connector; `Unsupported` for the others.
pub fn spec_of(descriptor: &ConnectorDescriptor) -> Result<&OAuthSpec> {
    descriptor
        .oauth
        .as_ref()
        .ok_or_else(|| not_oauth(descriptor))
}

impl OAuthEngine {
    /// An engine sending token requests through `http`, keeping states in `records`,
    /// reading client credentials from `env`, with redirect URIs under `public_url`.
    pub fn new(
        http: HttpClient,
        records: Arc<dyn RecordStore>,
        env: ConnectorEnv,
        public_url: String,
    ) -> Self {
        Self {
            http,
            records,
            env,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The client id and secret from the spec's variables (first set wins).
    pub fn client_credentials(
        &self,
        descriptor: &ConnectorDescriptor,
    ) -> Result<OAuthClientCredentials> {
        let spec = spec_of(descriptor)?;
        let first_set = |vars: &[&str]| vars.iter().find_map(|var| self.env.get(var));
        match (
            first_set(spec.client_id_env),
            first_set(spec.client_secret_env),
        ) {
            (Some(id), Some(secret)) => Ok(OAuthClientCredentials::for_spec(
                id.trim(),
                SecretString::from(secret.trim()),
                spec,
            )),
            _ => Err(errors::credentials_not_configured(
                descriptor,
                spec.client_id_env,
                spec.client_secret_env,
            )),
        }
    }

    /// The redirect URI: the public URL plus the callback path, identical in the
    /// authorize and token requests.
    pub fn redirect_uri(&self, spec: &OAuthSpec) -> String {
        format!("{}{}", self.public_url, spec.callback_path)
    }

    /// Starts a flow for `tenant`: stores the state's hash and returns the authorize URL.
    pub async fn start(
        &self,
        tenant: &Tenant,
        descriptor: &'static ConnectorDescriptor,
        label: Option<String>,
        options: Map<String, Value>,
    ) -> Result<AuthorizationStart> {
        let spec = spec_of(descriptor)?;
        let credentials = self.client_credentials(descriptor)?;
        let state = state::generate_state();
        let redirect_uri = self.redirect_uri(spec);
        let verifier = spec.pkce.then(|| state::pkce_verifier(&state));
        let authorize_url = exchange::authorize_url(
            descriptor,
            spec,
            &credentials.client_id,
            &redirect_uri,
            &state,
            verifier.as_deref(),
        )?;
        let created_at = Utc::now();
        let expires_at = created_at + STATE_LIFETIME;
        self.records
            .insert_oauth_state(&PendingAuthorization {
                state_hash: state::hash_state(&state),
                tenant: tenant.clone(),
                connector: descriptor.id.to_owned(),
                redirect_uri,
                label: label.filter(|label| !label.trim().is_empty()),
                options,
                created_at,
                expires_at,
            })
            .await?;
        Ok(AuthorizationStart {
            authorize_url,
            expires_at,
        })
    }

    /// Finishes a flow on `descriptor`'s callback: consumes the state, then
    /// exchanges the code with the redirect URI that started the flow.
    pub async fn complete(
        &self,
        descriptor: &'static ConnectorDescriptor,
        params: CallbackParams,
    ) -> Result<CompletedAuthorization> {
        let spec = spec_of(descriptor)?;
        let state = params
            .state
            .as_deref()
            .filter(|state| !state.is_empty())
            .ok_or_else(|| errors::missing_state().with_connector(descriptor.id))?;
        let now = Utc::now();
        let pending = match self
            .records
            .consume_oauth_state(&state::hash_state(state), now)
            .await?
        {
            ConsumedState::Fresh(pending) => pending,
            ConsumedState::Expired(_) => {
                return Err(errors::expired_state().with_connector(descriptor.id))
            }
            ConsumedState::AlreadyUsed => {
                return Err(errors::reused_state().with_connector(descriptor.id))
            }
            ConsumedState::Unknown => {
                return Err(errors::unknown_state().with_connector(descriptor.id))
            }
        };
        if pending.connector != descriptor.id {
            return Err(errors::wrong_connector(descriptor, &pending.connector));
        }
        if let Some(code) = params.error.as_deref().filter(|code| !code.is_empty()) {
            return Err(errors::provider_refused(
                descriptor,
                code,
                params.error_description.as_deref(),
            ));
        }
        let code = params
            .code
            .as_deref()
            .filter(|code| !code.is_empty())
            .ok_or_else(|| errors::missing_code(descriptor, &pending.redirect_uri))?;
        let credentials = self.client_credentials(descriptor)?;
        let verifier = spec.pkce.then(|| state::pkce_verifier(state));
        let tokens = exchange::exchange_code(
            &self.http,
            descriptor,
            spec,
            &credentials,
            code,
            &pending.redirect_uri,
            verifier.as_deref(),
            Utc::now(),
        )
        .await?;
        Ok(CompletedAuthorization {
            tenant: pending.tenant,
            label: pending.label,
            grant: OAuthGrant {
                access_token: tokens.access_token,
                refresh_token: tokens.refresh_token,
                expires_at: tokens.expires_at,
                scopes: tokens.scopes,
                token_type: tokens.token_type,
                extra: tokens.extra,
                options: pending.options.clone(),
            },
            options: pending.options,
        })
    }

    /// Trades a refresh token for new tokens (one request, no retry).
    pub async fn refresh(
        &self,
        descriptor: &'static ConnectorDescriptor,
        refresh_token: &SecretString,
    ) -> std::result::Result<TokenSet, TokenRequestFailure> {
        let spec = spec_of(descriptor).map_err(|error| TokenRequestFailure {
            provider_code: None,
            error,
        })?;
        let credentials =
            self.client_credentials(descriptor)
                .map_err(|error| TokenRequestFailure {
                    provider_code: None,
                    error,
                })?;
        exchange::refresh_token(
            &self.http,
            descriptor,
            spec,
            &credentials,
            refresh_token,
            Utc::now(),
        )
        .await
    }

    /// The records store states are kept in.
    pub fn records(&self) -> &Arc<dyn RecordStore> {
        &self.records
    }

    /// The environment client credentials are read from.
    pub fn env(&self) -> &ConnectorEnv {
        &self.env
    }
}
