//! The Patchbay OAuth 2.0 engine.
//!
//! [`OAuthEngine`] runs the authorization-code flow from a connector's
//! [`OAuthSpec`]: it issues a state (kept server-side only as its SHA-256, so any
//! replica can finish the flow) with a random PKCE verifier, hands out a one-time
//! begin URL that binds the flow to the browser opening it (a cookie) before
//! sending it to the provider, and on the callback consumes the state exactly once,
//! checks the browser binding and exchanges the code. [`TokenRefresher`] keeps
//! stored access tokens fresh, one refresh per connection at a time across every
//! replica.
#![deny(missing_docs)]

pub mod errors;
pub mod exchange;
pub mod refresh;
pub mod state;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchbay_core::{
    ConnectorDescriptor, ConnectorEnv, Error, OAuthClientCredentials, OAuthGrant, OAuthRegion,
    OAuthSpec, RegionalOAuth, Result, SecretString, Tenant,
};
use patchbay_http::HttpClient;
use patchbay_store::{BegunState, ConsumedState, PendingAuthorization, RecordStore};
use serde::Serialize;
use serde_json::{Map, Value};

pub use exchange::{TokenRequestFailure, TokenSet};
pub use refresh::{TokenRefresher, DEFAULT_REFRESH_SKEW, REFRESH_SKEW_VAR};
pub use state::STATE_LIFETIME;

/// The route a started flow's begin URL points at, under the public URL.
pub const BEGIN_PATH: &str = "/oauth/begin";

/// Where a started flow sends the person's browser.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizationStart {
    /// A one-time URL on Patchbay's own origin: opening it binds the flow to that
    /// browser and redirects to the provider.
    pub begin_url: String,
    /// When the state stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// The cookie that binds a flow to the browser that opened its begin URL.
#[derive(Debug, Clone)]
pub struct BindingCookie {
    /// The cookie's name (one per flow).
    pub name: String,
    /// The random value; only its hash is stored.
    pub value: SecretString,
    /// The path it is sent back on: the connector's callback route.
    pub path: &'static str,
    /// When the flow, and so the cookie, expires.
    pub expires_at: DateTime<Utc>,
}

/// A begun flow: where to send the browser, and the cookie to set on the way.
#[derive(Debug, Clone)]
pub struct BegunAuthorization {
    /// The provider's authorize URL with state, PKCE challenge and redirect URI.
    pub authorize_url: String,
    /// The cookie to set before redirecting.
    pub cookie: BindingCookie,
    /// The connector being connected.
    pub connector: &'static ConnectorDescriptor,
}

/// What the person asked for when starting a flow.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// The label for the new connection.
    pub label: Option<String>,
    /// Connector options, as the connector's OAuth spec declares them.
    pub options: Map<String, Value>,
    /// Whether the connection may run write operations (off by default).
    pub allow_writes: bool,
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
    /// Whether the connection may run write operations, as asked at the start.
    pub allow_writes: bool,
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

/// Whether the callback's browser holds the cookie set when the flow was begun.
fn browser_is_bound(pending: &PendingAuthorization, binding_cookie: Option<&str>) -> bool {
    match (&pending.binding_hash, binding_cookie) {
        (Some(expected), Some(cookie)) => {
            let presented = state::hash_state(cookie);
            subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into()
        }
        _ => false,
    }
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

    /// The regions of a regional connector whose client id and secret are both set.
    pub fn configured_regions(&self, regional: &RegionalOAuth) -> Vec<&'static str> {
        regional
            .regions
            .iter()
            .filter(|region| self.region_is_configured(region))
            .map(|region| region.name)
            .collect()
    }

    fn region_is_configured(&self, region: &OAuthRegion) -> bool {
        let set = |vars: &[&str]| vars.iter().any(|var| self.env.get(var).is_some());
        set(region.spec.client_id_env) && set(region.spec.client_secret_env)
    }

    /// For a connector with one OAuth client per region, the region `options` choose
    /// (refused when missing, unknown or not configured); `None` for other connectors.
    pub fn region_for(
        &self,
        descriptor: &ConnectorDescriptor,
        options: &Map<String, Value>,
    ) -> Result<Option<&'static OAuthRegion>> {
        let Some(regional) = RegionalOAuth::of(descriptor.id) else {
            return Ok(None);
        };
        let configured = self.configured_regions(regional);
        let region = match options.get(regional.option) {
            None | Some(Value::Null) => {
                return Err(errors::region_required(descriptor, regional, &configured))
            }
            Some(Value::String(name)) => regional
                .region(name.trim())
                .ok_or_else(|| errors::unknown_region(descriptor, regional, &configured))?,
            Some(_) => return Err(errors::unknown_region(descriptor, regional, &configured)),
        };
        if !self.region_is_configured(region) {
            return Err(errors::region_not_configured(descriptor, regional, region));
        }
        Ok(Some(region))
    }

    /// The spec and client credentials of the region (or of the connector when it has
    /// no regions): a region's secret is pinned to that region's own endpoints.
    fn spec_and_credentials<'d>(
        &self,
        descriptor: &'d ConnectorDescriptor,
        region: Option<&'static OAuthRegion>,
    ) -> Result<(&'d OAuthSpec, OAuthClientCredentials)> {
        let Some(region) = region else {
            return Ok((spec_of(descriptor)?, self.client_credentials(descriptor)?));
        };
        let first_set = |vars: &[&str]| vars.iter().find_map(|var| self.env.get(var));
        match (
            first_set(region.spec.client_id_env),
            first_set(region.spec.client_secret_env),
        ) {
            (Some(id), Some(secret)) => Ok((
                &region.spec,
                OAuthClientCredentials::for_spec(
                    id.trim(),
                    SecretString::from(secret.trim()),
                    &region.spec,
                ),
            )),
            _ => {
                let regional =
                    RegionalOAuth::of(descriptor.id).ok_or_else(|| not_oauth(descriptor))?;
                Err(errors::region_not_configured(descriptor, regional, region))
            }
        }
    }

    /// The redirect URI of a flow: the region's configured URI exactly as the operator
    /// wrote it, else the public URL plus the callback path.
    fn redirect_uri_in(&self, spec: &OAuthSpec, region: Option<&OAuthRegion>) -> String {
        region
            .and_then(|region| region.redirect_uri_env)
            .and_then(|var| self.env.get(var))
            .map(|uri| uri.trim().to_owned())
            .unwrap_or_else(|| self.redirect_uri(spec))
    }

    /// Starts a flow for `tenant`: stores the state's hash with a random PKCE
    /// verifier and returns the one-time begin URL.
    pub async fn start(
        &self,
        tenant: &Tenant,
        descriptor: &'static ConnectorDescriptor,
        request: StartRequest,
    ) -> Result<AuthorizationStart> {
        let spec = spec_of(descriptor)?;
        if let Some(unknown) = request
            .options
            .keys()
            .find(|name| !spec.start_options.contains(&name.as_str()))
        {
            return Err(errors::unknown_start_option(descriptor, spec, unknown));
        }
        // Fail early, before a person is sent anywhere, when the client is unset.
        let region = self.region_for(descriptor, &request.options)?;
        let (spec, _) = self.spec_and_credentials(descriptor, region)?;
        let state = state::generate_state();
        let created_at = Utc::now();
        let expires_at = created_at + STATE_LIFETIME;
        self.records
            .insert_oauth_state(&PendingAuthorization {
                state_hash: state::hash_state(&state),
                tenant: tenant.clone(),
                connector: descriptor.id.to_owned(),
                redirect_uri: self.redirect_uri_in(spec, region),
                label: request.label.filter(|label| !label.trim().is_empty()),
                options: request.options,
                allow_writes: request.allow_writes,
                pkce_verifier: spec
                    .pkce
                    .then(|| SecretString::new(state::generate_pkce_verifier())),
                binding_hash: None,
                created_at,
                expires_at,
            })
            .await?;
        Ok(AuthorizationStart {
            begin_url: format!("{}{BEGIN_PATH}/{state}", self.public_url),
            expires_at,
        })
    }

    /// Opens a flow's begin URL, once: binds the flow to this browser (the cookie
    /// returned) and builds the provider's authorize URL. `descriptor_of` finds the
    /// connector the flow was started for by its id (the host's registry).
    pub async fn begin(
        &self,
        state: &str,
        descriptor_of: impl Fn(&str) -> Option<&'static ConnectorDescriptor>,
    ) -> Result<BegunAuthorization> {
        let binding = state::generate_binding();
        let pending = match self
            .records
            .begin_oauth_state(
                &state::hash_state(state),
                &state::hash_state(&binding),
                Utc::now(),
            )
            .await?
        {
            BegunState::Begun(pending) => pending,
            BegunState::AlreadyBegun => return Err(errors::begun_twice()),
            BegunState::Expired => return Err(errors::expired_state()),
            BegunState::Unknown => return Err(errors::unknown_state()),
        };
        let descriptor = descriptor_of(&pending.connector).ok_or_else(errors::unknown_state)?;
        let callback_path = spec_of(descriptor)?.callback_path;
        let region = self.region_for(descriptor, &pending.options)?;
        let (spec, credentials) = self.spec_and_credentials(descriptor, region)?;
        let authorize_url = exchange::authorize_url(
            descriptor,
            spec,
            &credentials.client_id,
            &pending.redirect_uri,
            state,
            pending
                .pkce_verifier
                .as_ref()
                .map(|verifier| verifier.expose().as_str()),
        )?;
        Ok(BegunAuthorization {
            authorize_url,
            cookie: BindingCookie {
                name: state::binding_cookie_name(state),
                value: SecretString::new(binding),
                path: callback_path,
                expires_at: pending.expires_at,
            },
            connector: descriptor,
        })
    }

    /// Finishes a flow on `descriptor`'s callback: consumes the state, checks that
    /// `binding_cookie` (the value of the cookie named by [`state::binding_cookie_name`])
    /// is the one set when this flow was begun, then exchanges the code with the
    /// redirect URI and PKCE verifier that started the flow.
    pub async fn complete(
        &self,
        descriptor: &'static ConnectorDescriptor,
        params: CallbackParams,
        binding_cookie: Option<&str>,
    ) -> Result<CompletedAuthorization> {
        spec_of(descriptor)?;
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
        if !browser_is_bound(&pending, binding_cookie) {
            return Err(errors::unbound_browser(descriptor));
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
        let region = self.region_for(descriptor, &pending.options)?;
        let (spec, credentials) = self.spec_and_credentials(descriptor, region)?;
        let tokens = exchange::exchange_code(
            &self.http,
            descriptor,
            spec,
            &credentials,
            code,
            &pending.redirect_uri,
            pending
                .pkce_verifier
                .as_ref()
                .map(|verifier| verifier.expose().as_str()),
            Utc::now(),
        )
        .await?;
        Ok(CompletedAuthorization {
            tenant: pending.tenant,
            label: pending.label,
            allow_writes: pending.allow_writes,
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

    /// Trades a refresh token for new tokens for a stored connection whose settings
    /// are `settings`: a connector with one OAuth client per region refreshes with the
    /// client of the region named in them, at that region's token endpoint.
    pub async fn refresh_connection(
        &self,
        descriptor: &'static ConnectorDescriptor,
        settings: &Value,
        refresh_token: &SecretString,
    ) -> std::result::Result<TokenSet, TokenRequestFailure> {
        let Some(regional) = RegionalOAuth::of(descriptor.id) else {
            return self.refresh(descriptor, refresh_token).await;
        };
        let failure = |error| TokenRequestFailure {
            provider_code: None,
            error,
        };
        let region = settings
            .get(regional.option)
            .and_then(Value::as_str)
            .and_then(|name| regional.region(name))
            .ok_or_else(|| {
                failure(errors::connection_without_region(
                    descriptor,
                    regional.option,
                ))
            })?;
        let (spec, credentials) = self
            .spec_and_credentials(descriptor, Some(region))
            .map_err(failure)?;
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
