//! Fresh access tokens for stored connections: refresh before expiry and after a
//! rejection, exactly one refresh per connection at a time — in this process
//! (a per-connection async mutex) and across replicas (a fenced lease in the records
//! store). A refresh must finish well inside its lease, and writes its tokens only
//! while the lease is still its own, so a stalled replica can never overwrite the
//! tokens of the replica that took over. Once the provider has issued new tokens
//! they are saved even if the caller has gone away, and saving is retried through a
//! short outage of the records database or the secret store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use patchbay_core::{
    ConnectorDescriptor, ConnectorEnv, Error, ErrorKind, OAuthTokens, Result, RevealedJson,
};
use patchbay_store::{ConnectionRecord, ConnectionStatus, RecordStore, RefreshLease, SecretStore};

use crate::{errors, OAuthEngine, TokenSet};

/// The variable setting how long before expiry a token is refreshed, in seconds.
pub const REFRESH_SKEW_VAR: &str = "PATCHBAY_OAUTH_REFRESH_SKEW_SECS";
/// The default refresh skew: five minutes.
pub const DEFAULT_REFRESH_SKEW: Duration = Duration::from_secs(300);

/// How long a replica may hold a connection's refresh lease.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(30);
/// How often a replica waiting on another's lease re-reads the secret.
const LEASE_POLL: Duration = Duration::from_millis(50);
/// Token requests per refresh when the provider fails transiently.
const ATTEMPTS: u32 = 3;
/// The first backoff between attempts; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between attempts at saving refreshed tokens.
const MAX_SAVE_BACKOFF: Duration = Duration::from_secs(2);

/// Why a refresh may be needed; re-checked against the latest stored secrets.
enum Need {
    /// The access token is within the skew of its expiry.
    Expiring,
    /// The provider rejected this access token.
    Rejected(Option<String>),
}

/// Keeps OAuth connections' access tokens fresh.
pub struct TokenRefresher {
    core: Arc<RefresherCore>,
    lease: Duration,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a refresh needs once it holds a lease; shared with the task that runs it, so
/// the refresh outlives a caller that goes away.
struct RefresherCore {
    engine: Arc<OAuthEngine>,
    records: Arc<dyn RecordStore>,
    secrets: Arc<dyn SecretStore>,
    skew: chrono::TimeDelta,
    holder: String,
    token_requests: AtomicU64,
}

/// The time limits of one leased refresh, both well inside the lease.
#[derive(Clone, Copy)]
struct RefreshDeadlines {
    /// Until when the provider's answer is waited for.
    token: tokio::time::Instant,
    /// Until when saving the new tokens is retried; the rest of the lease is a margin
    /// for a write in flight and for clocks that disagree a little.
    save: tokio::time::Instant,
}

impl RefreshDeadlines {
    /// Half the lease for the token request, three quarters for the save.
    fn starting_now(lease: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            token: now + lease / 2,
            save: now + lease * 3 / 4,
        }
    }
}

impl std::fmt::Debug for TokenRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRefresher")
            .field("holder", &self.core.holder)
            .field("skew", &self.core.skew)
            .finish_non_exhaustive()
    }
}

/// The refresh skew from `PATCHBAY_OAUTH_REFRESH_SKEW_SECS`, or the default.
pub fn skew_from_env(env: &ConnectorEnv) -> Result<Duration> {
    match env.get(REFRESH_SKEW_VAR) {
        None => Ok(DEFAULT_REFRESH_SKEW),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                Error::invalid_config(
                    REFRESH_SKEW_VAR,
                    format!("`{text}` is not a whole number of seconds"),
                )
                .with_hint("use e.g. 300 to refresh tokens five minutes before they expire")
            }),
    }
}

/// The tokens stored in a connection's secrets (the shared slot every connector uses).
fn stored_tokens(secrets: &RevealedJson) -> Option<OAuthTokens> {
    OAuthTokens::read(secrets)
}

/// The secrets with the new tokens written in; every other field is kept, and so
/// is the old refresh token when none was returned.
fn merged(latest: &RevealedJson, tokens: &TokenSet) -> RevealedJson {
    OAuthTokens {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        expires_at: tokens.expires_at,
        token_type: tokens.token_type.clone(),
    }
    .written_into(latest)
}

impl TokenRefresher {
    /// A refresher refreshing through `engine`, reading and writing `secrets`,
    /// coordinating replicas through `records`, refreshing `skew` before expiry.
    pub fn new(
        engine: Arc<OAuthEngine>,
        records: Arc<dyn RecordStore>,
        secrets: Arc<dyn SecretStore>,
        skew: Duration,
    ) -> Self {
        let mut holder = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut holder);
        Self {
            core: Arc::new(RefresherCore {
                engine,
                records,
                secrets,
                skew: chrono::TimeDelta::from_std(skew).unwrap_or(chrono::TimeDelta::MAX),
                holder: holder.iter().map(|byte| format!("{byte:02x}")).collect(),
                token_requests: AtomicU64::new(0),
            }),
            lease: DEFAULT_LEASE_DURATION,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Uses leases of `lease` instead of [`DEFAULT_LEASE_DURATION`]; the provider's
    /// answer is waited for during half of it, and saving the new tokens is retried
    /// until three quarters of it.
    pub fn with_lease_duration(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many token requests this refresher has sent (for tests and metrics).
    pub fn token_requests(&self) -> u64 {
        self.core.token_requests.load(Ordering::SeqCst)
    }

    /// The connection's secrets with an access token that is not about to expire,
    /// refreshing first when needed. `current` is what the caller already read.
    pub async fn fresh_secrets(
        &self,
        descriptor: &'static ConnectorDescriptor,
        record: &ConnectionRecord,
        current: RevealedJson,
    ) -> Result<RevealedJson> {
        if !self.core.expiring(&current) {
            return Ok(current);
        }
        self.refresh_when(descriptor, record, Need::Expiring).await
    }

    /// After the provider rejected `rejected`'s access token: refreshes once, unless
    /// the stored access token changed meanwhile (someone else refreshed).
    pub async fn refresh_after_rejection(
        &self,
        descriptor: &'static ConnectorDescriptor,
        record: &ConnectionRecord,
        rejected: &RevealedJson,
    ) -> Result<RevealedJson> {
        let rejected_token =
            stored_tokens(rejected).map(|tokens| tokens.access_token.expose().clone());
        self.refresh_when(descriptor, record, Need::Rejected(rejected_token))
            .await
    }

    fn lock_for(&self, connection_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget locks nobody waits on, so the map does not grow with every connection.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(locks.entry(connection_id.to_owned()).or_default())
    }

    async fn refresh_when(
        &self,
        descriptor: &'static ConnectorDescriptor,
        record: &ConnectionRecord,
        need: Need,
    ) -> Result<RevealedJson> {
        let in_process = self.lock_for(&record.id).lock_owned().await;
        // From here the refresh runs as a task of its own, holding the in-process lock:
        // a caller that goes away (an HTTP client that gave up) must not cut it off
        // after the provider rotated the refresh token and before the new one is
        // saved, nor leave a lease taken with nobody to release it.
        let core = Arc::clone(&self.core);
        let record = record.clone();
        let lease = self.lease;
        let refresh = tokio::spawn(async move {
            let outcome = core
                .refresh_across_replicas(descriptor, &record, need, lease)
                .await;
            drop(in_process);
            outcome
        });
        refresh.await.unwrap_or_else(|failure| {
            Err(Error::internal(format!(
                "the {} token refresh stopped unexpectedly: {failure}",
                descriptor.display_name
            ))
            .with_connector(descriptor.id))
        })
    }
}

impl RefresherCore {
    /// Refreshes under the connection's lease, waiting (bounded) while another replica
    /// holds it; returns what that replica saved if it made the refresh unnecessary.
    async fn refresh_across_replicas(
        &self,
        descriptor: &'static ConnectorDescriptor,
        record: &ConnectionRecord,
        need: Need,
        lease_duration: Duration,
    ) -> Result<RevealedJson> {
        let deadline = tokio::time::Instant::now() + lease_duration + Duration::from_secs(5);
        loop {
            let latest = self.secrets.get_uncached(&record.secret_ref).await?;
            if !self.still_needed(&need, &latest) {
                return Ok(latest);
            }
            let until = Utc::now()
                + chrono::TimeDelta::from_std(lease_duration).unwrap_or(chrono::TimeDelta::MAX);
            if let Some(lease) = self
                .records
                .try_acquire_refresh_lease(&record.id, &self.holder, until)
                .await?
            {
                let deadlines = RefreshDeadlines::starting_now(lease_duration);
                let outcome = self
                    .refresh_holding_lease(descriptor, record, &need, lease, deadlines)
                    .await;
                self.release(record, lease).await;
                return outcome;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::unavailable(format!(
                    "another Patchbay replica has been refreshing the {} token for too long",
                    descriptor.display_name
                ))
                .with_connector(descriptor.id)
                .with_hint("try again shortly"));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    fn expiring(&self, secrets: &RevealedJson) -> bool {
        stored_tokens(secrets).is_some_and(|tokens| {
            tokens.refresh_token.is_some()
                && tokens
                    .expires_at
                    .is_some_and(|expiry| expiry - self.skew <= Utc::now())
        })
    }

    fn still_needed(&self, need: &Need, latest: &RevealedJson) -> bool {
        match need {
            Need::Expiring => self.expiring(latest),
            Need::Rejected(token) => {
                stored_tokens(latest).map(|tokens| tokens.access_token.expose().clone()) == *token
            }
        }
    }

    async fn release(&self, record: &ConnectionRecord, lease: RefreshLease) {
        if let Err(error) = self
            .records
            .release_refresh_lease(&record.id, &self.holder, lease.fence)
            .await
        {
            tracing::warn!(connection = %record.id, error = %error, "could not release a refresh lease; it expires by itself");
        }
    }

    async fn refresh_holding_lease(
        &self,
        descriptor: &'static ConnectorDescriptor,
        record: &ConnectionRecord,
        need: &Need,
        lease: RefreshLease,
        deadlines: RefreshDeadlines,
    ) -> Result<RevealedJson> {
        // Another replica may have finished between our read and taking the lease.
        let latest = self.secrets.get_uncached(&record.secret_ref).await?;
        if !self.still_needed(need, &latest) {
            return Ok(latest);
        }
        let Some(refresh_token) = stored_tokens(&latest).and_then(|tokens| tokens.refresh_token)
        else {
            record_refresh(descriptor, "revoked");
            self.mark_needs_reauth(record).await;
            return Err(errors::needs_reauth(descriptor));
        };
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let tokens = loop {
            self.token_requests.fetch_add(1, Ordering::SeqCst);
            // Bounded below the lease: an answer that comes later is not waited for,
            // so no token is ever written by a replica whose lease lapsed.
            let answer = tokio::time::timeout_at(
                deadlines.token,
                self.engine
                    .refresh_connection(descriptor, &record.metadata, &refresh_token),
            )
            .await
            .map_err(|_| {
                record_refresh(descriptor, "failed");
                too_slow(descriptor)
            })?;
            match answer {
                Ok(tokens) => break tokens,
                Err(failure) if failure.provider_code.as_deref() == Some("invalid_grant") => {
                    record_refresh(descriptor, "revoked");
                    self.mark_needs_reauth(record).await;
                    return Err(errors::needs_reauth(descriptor));
                }
                Err(failure)
                    if attempt < ATTEMPTS
                        && matches!(
                            failure.error.kind(),
                            ErrorKind::Unavailable | ErrorKind::RateLimited
                        ) =>
                {
                    let wait = failure
                        .error
                        .retry_after()
                        .unwrap_or(backoff)
                        .min(Duration::from_secs(10));
                    if tokio::time::Instant::now() + wait >= deadlines.token {
                        record_refresh(descriptor, "failed");
                        return Err(failure.error);
                    }
                    tracing::info!(connection = %record.id, attempt, "token refresh failed transiently; retrying");
                    tokio::time::sleep(wait).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(failure) => {
                    record_refresh(descriptor, "failed");
                    return Err(failure.error);
                }
            }
        };
        let saved = self
            .save(descriptor, record, &tokens, lease, deadlines.save)
            .await;
        match &saved {
            Ok(_) => {
                record_refresh(descriptor, "refreshed");
                tracing::info!(connection = %record.id, connector = descriptor.id, "refreshed an access token");
            }
            Err(_) => record_refresh(descriptor, "failed"),
        }
        saved
    }

    /// Saves freshly issued tokens before anyone uses them: the provider may have
    /// revoked the old refresh token already, so a failure to reach the records
    /// database or the secret store is retried, with backoff, until `deadline`.
    async fn save(
        &self,
        descriptor: &'static ConnectorDescriptor,
        record: &ConnectionRecord,
        tokens: &TokenSet,
        lease: RefreshLease,
        deadline: tokio::time::Instant,
    ) -> Result<RevealedJson> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.save_once(record, tokens, lease))
                .await
                .unwrap_or_else(|_| {
                    Err(Error::unavailable(format!(
                        "the refreshed {} tokens could not be saved in time",
                        descriptor.display_name
                    ))
                    .with_connector(descriptor.id))
                });
            match attempt {
                Ok(Some(saved)) => return Ok(saved),
                Ok(None) => {
                    tracing::warn!(connection = %record.id, fence = lease.fence, "the refresh lease was taken over before the new tokens were saved; not overwriting the newer holder's tokens");
                    return Err(too_slow(descriptor));
                }
                Err(error)
                    if error.kind() == ErrorKind::Unavailable
                        && tokio::time::Instant::now() + backoff < deadline =>
                {
                    tracing::warn!(connection = %record.id, error = %error, "could not save refreshed tokens yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_SAVE_BACKOFF);
                }
                Err(error) => {
                    tracing::error!(connection = %record.id, connector = descriptor.id, error = %error, "refreshed tokens could not be saved; if the provider rotated the refresh token, the connection must be reauthorized");
                    return Err(error);
                }
            }
        }
    }

    /// One attempt at saving: `None` when the lease is no longer ours. Merged into the
    /// latest stored secrets with check-and-set, so other fields written meanwhile stay.
    async fn save_once(
        &self,
        record: &ConnectionRecord,
        tokens: &TokenSet,
        lease: RefreshLease,
    ) -> Result<Option<RevealedJson>> {
        if !self
            .records
            .refresh_lease_held(&record.id, &self.holder, lease.fence, Utc::now())
            .await?
        {
            return Ok(None);
        }
        patchbay_store::modify(&*self.secrets, &record.secret_ref, |stored| {
            Ok(merged(stored, tokens))
        })
        .await
        .map(Some)
    }

    async fn mark_needs_reauth(&self, record: &ConnectionRecord) {
        if let Err(error) = self
            .records
            .set_connection_status(&record.id, ConnectionStatus::NeedsReauth)
            .await
        {
            tracing::warn!(connection = %record.id, error = %error, "could not mark a connection as needing reauthorization");
        }
    }
}

/// The error of a refresh that ran out of its lease's time.
fn too_slow(descriptor: &ConnectorDescriptor) -> Error {
    Error::unavailable(format!(
        "the {} token endpoint did not answer in time; the refresh was abandoned",
        descriptor.display_name
    ))
    .with_connector(descriptor.id)
    .with_hint("try again shortly")
}

/// Counts one token refresh by its outcome (`refreshed`, `revoked`, `failed`).
fn record_refresh(descriptor: &ConnectorDescriptor, outcome: &'static str) {
    metrics::counter!(
        patchbay_core::metrics::TOKEN_REFRESHES,
        "connector" => descriptor.id,
        "outcome" => outcome,
    )
    .increment(1);
}
