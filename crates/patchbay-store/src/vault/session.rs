//! The authenticated Vault client and its token's lifecycle.
//!
//! A background task renews the token (`auth/token/renew-self`) once 2/3 of its
//! TTL has passed. With AppRole, a token that cannot be renewed (not renewable,
//! capped by its max TTL, or renewal refused) is replaced by a fresh login.
//! While Vault is down the task retries with capped backoff; once the token
//! has expired, calls fail at once with `Unavailable` instead of waiting on Vault.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use patchbay_core::{Error, ErrorKind, Result, SecretString};
use rustify::clients::reqwest::Client as HttpClient;
use vaultrs::api::AuthInfo;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use super::clock::Clock;
use super::config::{
    VaultAuth, VaultConfig, APPROLE_MOUNT, CACERT_ENV, ROLE_ID_ENV, SECRET_ID_ENV, TOKEN_ENV,
};
use super::failure::Failure;

/// The first retry delay after a failed renewal or login.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest delay between retries while Vault is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How many times the store has authenticated, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenStats {
    /// Successful AppRole logins, the first one at connect included.
    pub logins: u64,
    /// Successful token renewals.
    pub renewals: u64,
}

/// What the renewal task does next, and when.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    step: Step,
    at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Renew,
    Login,
}

/// How the current token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// `VAULT_TOKEN`, looked up at connect.
    Configured,
    /// A fresh AppRole login.
    Login,
    /// A renewal of the current token.
    Renewal,
}

#[derive(Default)]
struct TokenState {
    /// When the current token stops working; `None` if it never expires.
    expires_at: Option<Instant>,
    /// The longest TTL a renewal or login has granted; a shorter grant means the
    /// token is capped by its max TTL.
    full_ttl: Duration,
    /// Why the last renewal or login failed, for errors while the token is expired.
    last_failure: Option<String>,
}

impl TokenState {
    /// Records that the token is valid for `lease` from `issued_at`; returns
    /// the next step: renew at 2/3 of the TTL, or log in afresh (when
    /// `can_login`) if the token is not renewable or a renewal came back
    /// shorter than the full TTL (capped by its max TTL).
    fn record(
        &mut self,
        grant: Grant,
        issued_at: Instant,
        lease: Duration,
        renewable: bool,
        can_login: bool,
    ) -> Option<Plan> {
        self.last_failure = None;
        if lease.is_zero() && grant != Grant::Renewal {
            // Root and other tokens without a TTL never expire.
            self.expires_at = None;
            return None;
        }
        self.expires_at = Some(issued_at + lease);
        let capped = grant == Grant::Renewal && lease < self.full_ttl;
        if grant == Grant::Login || lease > self.full_ttl {
            self.full_ttl = lease;
        }
        let step = if renewable && !capped && !lease.is_zero() {
            Step::Renew
        } else if can_login {
            Step::Login
        } else {
            return None;
        };
        Some(Plan {
            step,
            at: issued_at + lease * 2 / 3,
        })
    }
}

/// AppRole credentials and the token-less client used to log in with them.
struct AppRole {
    client: VaultClient,
    role_id: SecretString,
    secret_id: SecretString,
}

/// A Vault client whose token is kept valid in the background.
pub struct Session {
    address: String,
    timeout: Duration,
    policy: String,
    client: RwLock<Arc<VaultClient>>,
    approle: Option<AppRole>,
    token: Mutex<TokenState>,
    logins: AtomicU64,
    renewals: AtomicU64,
    /// Token lifetimes and renewal times are counted on this clock.
    clock: Arc<dyn Clock>,
}

impl Session {
    /// Authenticates to Vault: looks up a static token or logs in with AppRole.
    ///
    /// Returns the session and, for expiring tokens, the renewal task's first step.
    /// `policy` describes the capabilities the token needs, for permission errors;
    /// `clock` times the token's lifetime and renewals.
    pub async fn open(
        config: &VaultConfig,
        policy: String,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Option<Plan>)> {
        match &config.auth {
            VaultAuth::Token(token) => {
                let client = build_client(config, token.expose())?;
                let session = Self::new(config, policy, client, None, clock);
                let started = session.clock.now();
                let lookup = session
                    .bounded(vaultrs::token::lookup_self(&*session.client_unchecked()))
                    .await
                    .map_err(|failure| {
                        if failure.is_status(403) {
                            Error::new(ErrorKind::AuthFailed, "Vault rejected VAULT_TOKEN")
                                .with_field(TOKEN_ENV)
                                .with_hint(
                                    "the token is mistyped, expired or revoked; issue a new one",
                                )
                        } else {
                            session.error(failure, "auth/token/lookup-self")
                        }
                    })?;
                let renewable = lookup.renewable.unwrap_or(false);
                let plan = session.plan_after(
                    Grant::Configured,
                    started,
                    Duration::from_secs(lookup.ttl),
                    renewable,
                );
                if lookup.ttl > 0 && plan.is_none() {
                    tracing::warn!(
                        ttl_secs = lookup.ttl,
                        "VAULT_TOKEN is not renewable and expires in {} s; Patchbay cannot \
                         refresh it, use AppRole ({ROLE_ID_ENV}, {SECRET_ID_ENV}) instead",
                        lookup.ttl
                    );
                }
                Ok((session, plan))
            }
            VaultAuth::AppRole { role_id, secret_id } => {
                let login_client = build_client(config, "")?;
                let approle = AppRole {
                    client: login_client,
                    role_id: role_id.clone(),
                    secret_id: secret_id.clone(),
                };
                let placeholder = with_token(&approle.client, "");
                let session = Self::new(config, policy, placeholder, Some(approle), clock);
                let plan = session.login().await.map_err(|failure| {
                    if failure.vault_answered()
                        && (failure.is_status(400) || failure.is_status(403))
                    {
                        Error::new(ErrorKind::AuthFailed, "Vault rejected the AppRole login")
                            .with_field(SECRET_ID_ENV)
                            .with_hint(format!(
                            "check {ROLE_ID_ENV} and {SECRET_ID_ENV} (secret ids can expire or be \
                             used up) and that AppRole is enabled at auth/{APPROLE_MOUNT}"
                        ))
                    } else {
                        session.error(failure, &format!("auth/{APPROLE_MOUNT}/login"))
                    }
                })?;
                Ok((session, plan))
            }
        }
    }

    fn new(
        config: &VaultConfig,
        policy: String,
        client: VaultClient,
        approle: Option<AppRole>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            clock,
            address: config.address.clone(),
            timeout: config.timeout,
            policy,
            client: RwLock::new(Arc::new(client)),
            approle,
            token: Mutex::new(TokenState::default()),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
        }
    }

    /// How many logins and renewals have succeeded.
    pub fn stats(&self) -> TokenStats {
        TokenStats {
            logins: self.logins.load(Ordering::Relaxed),
            renewals: self.renewals.load(Ordering::Relaxed),
        }
    }

    fn token_state(&self) -> std::sync::MutexGuard<'_, TokenState> {
        self.token
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn client_unchecked(&self) -> Arc<VaultClient> {
        Arc::clone(
            &self
                .client
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    /// The client to call Vault with; fails at once if the token has expired.
    pub fn client(&self) -> Result<Arc<VaultClient>, Failure> {
        let now = self.clock.now();
        let state = self.token_state();
        if state.expires_at.is_some_and(|expires_at| now >= expires_at) {
            let cause = state
                .last_failure
                .clone()
                .unwrap_or_else(|| "no attempt has finished yet".to_owned());
            return Err(Failure::TokenExpired(cause));
        }
        drop(state);
        Ok(self.client_unchecked())
    }

    /// Runs one Vault call, bounded by the configured timeout.
    pub async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, Failure> {
        let started = Instant::now();
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::from_client(
                error,
                started.elapsed() >= self.timeout,
            )),
            Err(_) => Err(Failure::TimedOut),
        }
    }

    /// The error for a failed call on `path`.
    pub fn error(&self, failure: Failure, path: &str) -> Error {
        failure.into_error(path, &self.address, self.timeout, &self.policy)
    }

    /// Records a token grant and decides the next renewal step.
    fn plan_after(
        &self,
        grant: Grant,
        issued_at: Instant,
        lease: Duration,
        renewable: bool,
    ) -> Option<Plan> {
        let can_login = self.approle.is_some();
        self.token_state()
            .record(grant, issued_at, lease, renewable, can_login)
    }

    /// Logs in with AppRole and switches every later call to the new token.
    async fn login(&self) -> Result<Option<Plan>, Failure> {
        let Some(approle) = &self.approle else {
            return Ok(None);
        };
        let started = self.clock.now();
        let auth = self
            .bounded(vaultrs::auth::approle::login(
                &approle.client,
                APPROLE_MOUNT,
                approle.role_id.expose(),
                approle.secret_id.expose(),
            ))
            .await?;
        let AuthInfo {
            client_token,
            lease_duration,
            renewable,
            ..
        } = auth;
        let token = SecretString::new(client_token);
        let client = with_token(&approle.client, token.expose());
        *self
            .client
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(client);
        self.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(ttl_secs = lease_duration, "logged in to Vault with AppRole");
        Ok(self.plan_after(
            Grant::Login,
            started,
            Duration::from_secs(lease_duration),
            renewable,
        ))
    }

    /// Renews the current token.
    async fn renew(&self) -> Result<Option<Plan>, Failure> {
        let client = self.client_unchecked();
        let started = self.clock.now();
        let auth = self
            .bounded(vaultrs::token::renew_self(&*client, None))
            .await?;
        self.renewals.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(ttl_secs = auth.lease_duration, "renewed the Vault token");
        Ok(self.plan_after(
            Grant::Renewal,
            started,
            Duration::from_secs(auth.lease_duration),
            auth.renewable,
        ))
    }

    /// Carries out one renewal step; returns the next one, or `None` when there is nothing left to do.
    async fn run_step(&self, step: Step, backoff: &mut Duration) -> Option<Plan> {
        let outcome = match step {
            Step::Renew => self.renew().await,
            Step::Login => self.login().await,
        };
        let failure = match outcome {
            Ok(plan) => {
                *backoff = INITIAL_BACKOFF;
                return plan;
            }
            Err(failure) => failure,
        };
        let cause = failure.cause(&self.address, self.timeout);
        let action = match step {
            Step::Renew => "renew the Vault token",
            Step::Login => "log in to Vault with AppRole",
        };
        tracing::warn!(cause = %cause, "could not {action}; retrying");
        let now = self.clock.now();
        let expired = {
            let mut state = self.token_state();
            state.last_failure = Some(cause);
            state.expires_at.is_some_and(|expires_at| now >= expires_at)
        };
        let delay = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        if self.approle.is_some() {
            // A renewal Vault refused will not succeed later: log in now instead.
            let at = if step == Step::Renew && failure.vault_answered() {
                now
            } else {
                now + delay
            };
            Some(Plan {
                step: Step::Login,
                at,
            })
        } else if expired {
            tracing::error!(
                "VAULT_TOKEN has expired and Patchbay cannot get another; issue a new token and \
                 restart, or use AppRole ({ROLE_ID_ENV}, {SECRET_ID_ENV})"
            );
            None
        } else {
            Some(Plan {
                step: Step::Renew,
                at: now + delay,
            })
        }
    }

    /// Starts the renewal task; it stops when the session is dropped or the handle aborted.
    pub fn spawn_renewal(self: &Arc<Self>, first: Plan) -> tokio::task::AbortHandle {
        let session: Weak<Self> = Arc::downgrade(self);
        let clock = Arc::clone(&self.clock);
        tokio::spawn(async move {
            let mut plan = first;
            let mut backoff = INITIAL_BACKOFF;
            loop {
                clock.sleep_until(plan.at).await;
                let Some(session) = session.upgrade() else {
                    return;
                };
                match session.run_step(plan.step, &mut backoff).await {
                    Some(next) => plan = next,
                    None => return,
                }
            }
        })
        .abort_handle()
    }
}

/// Builds a client from the configuration alone: nothing is read from the process environment.
fn build_client(config: &VaultConfig, token: &str) -> Result<VaultClient> {
    let mut builder = VaultClientSettingsBuilder::default();
    // `address` panics on a malformed URL; `VaultConfig::validate` has parsed it already.
    builder
        .address(&config.address)
        .token(token)
        .ca_certs(
            config
                .ca_cert
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>(),
        )
        .identity(None)
        .verify(true)
        .timeout(Some(config.timeout))
        .namespace(config.namespace.clone());
    let settings = builder
        .build()
        .map_err(|error| Error::internal(format!("cannot configure the Vault client: {error}")))?;
    VaultClient::new(settings).map_err(|error| match error {
        ClientError::FileReadError { path, .. } | ClientError::FileNotFoundError { path } => {
            Error::invalid_config(CACERT_ENV, format!("cannot read {CACERT_ENV} file {path}"))
                .with_hint("point it at a readable PEM file with Vault's CA certificates")
        }
        ClientError::ParseCertificateError { path, .. } => Error::invalid_config(
            CACERT_ENV,
            format!("{CACERT_ENV} file {path} holds no PEM certificate"),
        )
        .with_hint("point it at a PEM file with Vault's CA certificates"),
        other => Error::internal(format!("cannot build the Vault client: {other}")),
    })
}

/// A client sharing `base`'s connection pool and settings, authenticating with `token`.
fn with_token(base: &VaultClient, token: &str) -> VaultClient {
    let mut settings = base.settings.clone();
    settings.token = token.to_owned();
    let mut middle = base.middle.clone();
    middle.token = token.to_owned();
    VaultClient {
        http: HttpClient::new(&base.http.base, base.http.http.clone()),
        middle,
        settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn tokens_without_a_ttl_need_no_renewal() {
        let mut state = TokenState::default();
        let now = Instant::now();
        assert!(state
            .record(Grant::Configured, now, secs(0), false, false)
            .is_none());
        assert!(state.expires_at.is_none());
    }

    #[test]
    fn approle_tokens_renew_at_two_thirds_then_log_in_when_capped() {
        let mut state = TokenState::default();
        let now = Instant::now();
        let plan = state
            .record(Grant::Login, now, secs(3), true, true)
            .unwrap();
        assert_eq!((plan.step, plan.at), (Step::Renew, now + secs(2)));
        assert_eq!(state.expires_at, Some(now + secs(3)));

        let plan = state
            .record(Grant::Renewal, now, secs(3), true, true)
            .unwrap();
        assert_eq!(plan.step, Step::Renew);

        // The max TTL cut the renewal short: log in before the token dies.
        let plan = state
            .record(Grant::Renewal, now, secs(2), true, true)
            .unwrap();
        assert_eq!(plan.step, Step::Login);
        assert_eq!(plan.at, now + secs(2) * 2 / 3);

        let plan = state
            .record(Grant::Renewal, now, secs(0), true, true)
            .unwrap();
        assert_eq!((plan.step, plan.at), (Step::Login, now));
        assert_eq!(state.expires_at, Some(now));

        let plan = state
            .record(Grant::Login, now, secs(3), false, true)
            .unwrap();
        assert_eq!((plan.step, plan.at), (Step::Login, now + secs(2)));
    }

    #[test]
    fn static_tokens_renew_until_capped_then_stop() {
        let mut state = TokenState::default();
        let now = Instant::now();
        let plan = state
            .record(Grant::Configured, now, secs(90), true, false)
            .unwrap();
        assert_eq!((plan.step, plan.at), (Step::Renew, now + secs(60)));
        let plan = state
            .record(Grant::Renewal, now, secs(3600), true, false)
            .unwrap();
        assert_eq!(plan.step, Step::Renew);
        assert!(state
            .record(Grant::Renewal, now, secs(600), true, false)
            .is_none());
        assert_eq!(state.expires_at, Some(now + secs(600)));
        assert!(state
            .record(Grant::Configured, now, secs(90), false, false)
            .is_none());
    }
}
