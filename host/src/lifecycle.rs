//! The connection lifecycle, with no HTTP in it: connect (validate, then store the
//! secret and the record, cleaning up orphans), read credentials with OAuth tokens
//! kept fresh, query, re-validate, rotate webhook credentials, and disconnect
//! (revoke at the provider, then delete). The HTTP handlers in [`crate::api`] and
//! [`crate::oauth`] translate requests into these calls; an embedding service can
//! call them directly through [`AppState::connections`].

use chrono::Utc;
use patchbay_core::connector::ConnectorContext;
use patchbay_core::slots::{self, ProviderWebhookSecret};
use patchbay_core::{
    AuthRequest, ConnectorDescriptor, DynConnector, DynCredentials, Error, ErrorKind, QueryOutput,
    RevokeOutcome, SecretString, Tenant, ValidationReport, ValidationStatus, WebhookAuth,
};
use patchbay_store::{
    modify, ConnectionRecord, ConnectionStatus, OutcomeUnknown, SecretLocation, SecretRef,
};
use serde::Serialize;

use crate::auth::{generate_token, hash_token};
use crate::state::AppState;

/// The prefix of webhook tokens.
pub const WEBHOOK_TOKEN_PREFIX: &str = "pbw_";
/// The prefix of webhook signing secrets.
pub const WEBHOOK_SECRET_PREFIX: &str = "pbs_";

/// How long a background clean-up keeps trying to remove an orphaned secret.
const CLEANUP_PERSISTENCE: std::time::Duration = std::time::Duration::from_secs(600);

impl AppState {
    /// The connection lifecycle over this state's registry and stores.
    pub fn connections(&self) -> Connections<'_> {
        Connections { state: self }
    }
}

/// The connection lifecycle; see the module documentation.
#[derive(Clone, Copy)]
pub struct Connections<'a> {
    state: &'a AppState,
}

/// What a person asked for when connecting.
#[derive(Debug)]
pub struct ConnectRequest {
    /// The connect form, or the tokens of a finished OAuth flow.
    pub auth: AuthRequest,
    /// The connection's label; the connector's name when empty.
    pub label: Option<String>,
    /// Whether operations that change provider state may run.
    pub allow_writes: bool,
}

/// Why a connect stored nothing.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The provider refused the credentials: a mandatory check failed.
    Rejected(ValidationReport),
    /// The request or a store failed.
    Failed(Error),
}

impl From<Error> for ConnectFailure {
    fn from(error: Error) -> Self {
        Self::Failed(error)
    }
}

/// A connection just stored, with the webhook credentials shown once.
pub struct StoredConnection {
    /// The saved record.
    pub record: ConnectionRecord,
    /// The validation report it was saved with.
    pub report: ValidationReport,
    /// The webhook token, for token-authenticated webhooks.
    pub webhook_token: Option<SecretString>,
    /// The webhook signing secret, for signature-verified webhooks.
    pub webhook_secret: Option<SecretString>,
}

/// A webhook credential just issued; shown once.
pub enum RotatedCredential {
    /// A token the provider sends in `header`.
    Token {
        /// The header the provider sends it in.
        header: &'static str,
        /// The new token.
        token: SecretString,
    },
    /// A secret the provider signs deliveries with.
    Secret(SecretString),
}

/// A provider-issued webhook signing secret as the API shows it: its id and when it
/// was added, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookSecretView {
    /// The id to remove it by (`whs_…`).
    pub id: String,
    /// When it was added.
    pub added_at: chrono::DateTime<Utc>,
}

impl From<&ProviderWebhookSecret> for WebhookSecretView {
    fn from(secret: &ProviderWebhookSecret) -> Self {
        Self {
            id: secret.id.clone(),
            added_at: secret.added_at,
        }
    }
}

/// What disconnecting did at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReport {
    /// The provider revoked the grant.
    Revoked,
    /// The provider offers no revocation for these credentials.
    NotOffered,
    /// Revoking failed; the message says why.
    Failed(String),
}

/// The connection status a validation report means.
pub fn status_of(report: &ValidationReport) -> ConnectionStatus {
    match report.overall {
        ValidationStatus::Ok => ConnectionStatus::Active,
        ValidationStatus::Degraded => ConnectionStatus::Degraded,
        ValidationStatus::Failed => ConnectionStatus::Failed,
    }
}

/// The error for a token the provider rejected and whose refresh was refused: the
/// connector's own words for the rejection (where a setup guide names the message,
/// such as "Confluence credentials expired"), as `needs_reauth`, with the OAuth
/// engine's explanation as the hint. Other refresh failures pass through unchanged.
fn refresh_refused(rejection: &Error, refused: Error) -> Error {
    if refused.kind() != ErrorKind::NeedsReauth {
        return refused;
    }
    let mut error = Error::new(ErrorKind::NeedsReauth, rejection.message())
        .with_hint(refused.message().to_owned());
    if let Some(connector) = refused.connector().or(rejection.connector()) {
        error = error.with_connector(connector.to_owned());
    }
    if let Some(status) = rejection.provider_status() {
        error = error.with_provider_status(status);
    }
    error
}

fn context(tenant: &Tenant, connection_id: Option<&str>) -> ConnectorContext {
    ConnectorContext {
        connection_id: connection_id.map(str::to_owned),
        tenant: Some(tenant.clone()),
    }
}

impl Connections<'_> {
    /// Turns a connect request into credentials, validates them, and stores the
    /// connection; nothing is stored when a mandatory check fails.
    pub async fn connect(
        &self,
        tenant: Tenant,
        connector: &dyn DynConnector,
        request: ConnectRequest,
    ) -> Result<StoredConnection, ConnectFailure> {
        let descriptor = connector.descriptor();
        let mut credentials = connector
            .authenticate(request.auth)
            .await
            .map_err(|error| error.with_connector(descriptor.id))?;
        let report = connector
            .validate(&context(&tenant, None), &mut credentials)
            .await?;
        if !report.passed() {
            return Err(ConnectFailure::Rejected(report));
        }
        let stored = self
            .store(
                connector,
                tenant,
                request.label,
                request.allow_writes,
                credentials,
                report,
            )
            .await?;
        tracing::info!(connection = %stored.record.id, connector = descriptor.id, "connected");
        Ok(stored)
    }

    /// Stores validated credentials as a new connection: webhook token or secret
    /// generation, the secret write, the record write (replacing the tenant's
    /// connection with the same routing key), and clean-up when the record fails.
    pub async fn store(
        &self,
        connector: &dyn DynConnector,
        tenant: Tenant,
        label: Option<String>,
        allow_writes: bool,
        mut credentials: DynCredentials,
        report: ValidationReport,
    ) -> Result<StoredConnection, Error> {
        let state = self.state;
        let descriptor = connector.descriptor();
        let id = uuid::Uuid::new_v4().to_string();
        let webhook_auth = descriptor.webhook.map(|webhook| webhook.auth);
        let webhook_token = match webhook_auth {
            Some(WebhookAuth::Token { .. }) => Some(generate_token(WEBHOOK_TOKEN_PREFIX)),
            _ => None,
        };
        // Signature webhooks are verified by the connector with a secret kept beside
        // the connection's other secrets.
        let webhook_secret = match webhook_auth {
            Some(WebhookAuth::Signature) => {
                let secret = generate_token(WEBHOOK_SECRET_PREFIX);
                credentials.secrets = slots::with_webhook_secret(&credentials.secrets, &secret);
                Some(secret)
            }
            _ => None,
        };
        let location = SecretLocation::new(&tenant, descriptor.id, id.clone());
        let secret_ref = match state.secrets.put(&location, &credentials.secrets).await {
            Ok(secret_ref) => secret_ref,
            Err(error) => {
                // A write that timed out may still land once the store recovers.
                if let Some(reference) = state.secrets.reference_for(&location) {
                    remove_in_background(state.secrets.clone(), reference);
                }
                return Err(error);
            }
        };
        let now = Utc::now();
        let routing_key = connector.routing_key(&credentials.config);
        let record = ConnectionRecord {
            id,
            tenant,
            connector: descriptor.id.to_owned(),
            label: label
                .filter(|label| !label.trim().is_empty())
                .unwrap_or_else(|| descriptor.display_name.to_owned()),
            metadata: credentials.config,
            secret_ref: secret_ref.clone(),
            status: status_of(&report),
            webhook_token_hash: webhook_token
                .as_ref()
                .map(|token| hash_token(token.expose())),
            routing_key,
            allow_writes,
            last_report: Some(report.clone()),
            created_at: now,
            validated_at: Some(now),
        };
        // A reinstall replaces the tenant's connection with the same routing key (a
        // Slack workspace) in the same transaction; another tenant's is a conflict.
        let replaced = match state.records.insert_routed_connection(&record).await {
            Ok(replaced) => replaced,
            Err(error) => {
                if OutcomeUnknown::is_cause_of(&error) {
                    // The record may have been saved after all: its secret goes only
                    // once the records say it was not.
                    remove_unless_recorded_in_background(state.clone(), &record, secret_ref);
                } else if let Err(cleanup) = state.secrets.delete(&secret_ref).await {
                    tracing::warn!(connection = %record.id, error = %cleanup, "could not remove the secret of a connection whose record failed to save; retrying in the background");
                    remove_in_background(state.secrets.clone(), secret_ref);
                }
                if error.kind() == ErrorKind::Conflict {
                    return Err(routing_key_conflict(descriptor, &record));
                }
                return Err(error);
            }
        };
        if let Some(old) = replaced {
            tracing::info!(connection = %record.id, replaced = %old.id, connector = descriptor.id, "reinstall replaced a connection");
            if let Err(cleanup) = state.secrets.delete(&old.secret_ref).await {
                tracing::warn!(connection = %old.id, error = %cleanup, "could not remove the secret of a replaced connection; retrying in the background");
                remove_in_background(state.secrets.clone(), old.secret_ref);
            }
        }
        state
            .connections_changed
            .send_modify(|changes| *changes = changes.wrapping_add(1));
        Ok(StoredConnection {
            record,
            report,
            webhook_token,
            webhook_secret,
        })
    }

    /// The connection's stored credentials; `NeedsReauth` when the secret is gone.
    pub async fn credentials(&self, record: &ConnectionRecord) -> Result<DynCredentials, Error> {
        let secrets = self
            .state
            .secrets
            .get(&record.secret_ref)
            .await
            .map_err(|error| {
                if error.kind() == ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::NeedsReauth,
                        "the stored credentials for this connection are gone",
                    )
                    .with_connector(record.connector.clone())
                    .with_hint("disconnect and connect again")
                } else {
                    error
                }
            })?;
        Ok(DynCredentials {
            config: record.metadata.clone(),
            secrets,
        })
    }

    /// The connection's credentials, with an OAuth access token refreshed first when
    /// it is about to expire.
    pub async fn fresh_credentials(
        &self,
        descriptor: &'static ConnectorDescriptor,
        record: &ConnectionRecord,
    ) -> Result<DynCredentials, Error> {
        let mut credentials = self.credentials(record).await?;
        if descriptor.oauth.is_some() {
            credentials.secrets = self
                .state
                .refresher
                .fresh_secrets(descriptor, record, credentials.secrets)
                .await?;
        }
        Ok(credentials)
    }

    /// Runs an operation on a connection. A write runs only where the owner allowed
    /// writes; an OAuth token the provider rejects is refreshed once and the call
    /// retried.
    pub async fn query(
        &self,
        record: &ConnectionRecord,
        connector: &dyn DynConnector,
        operation: &str,
        params: serde_json::Value,
    ) -> Result<QueryOutput, Error> {
        let descriptor = connector.descriptor();
        refuse_unallowed_write(self.state, descriptor, record, operation)?;
        let mut credentials = self.fresh_credentials(descriptor, record).await?;
        let ctx = context(&record.tenant, Some(&record.id));
        match connector
            .query(&ctx, &credentials, operation, params.clone())
            .await
        {
            // The token may have been revoked or expired early: refresh once and retry.
            Err(error) if error.kind() == ErrorKind::AuthFailed && descriptor.oauth.is_some() => {
                credentials.secrets = self
                    .state
                    .refresher
                    .refresh_after_rejection(descriptor, record, &credentials.secrets)
                    .await
                    .map_err(|refused| refresh_refused(&error, refused))?;
                connector.query(&ctx, &credentials, operation, params).await
            }
            outcome => outcome,
        }
        .map_err(|error| error.with_connector(record.connector.clone()))
    }

    /// Validates a connection again and saves the report and its status.
    pub async fn revalidate(
        &self,
        tenant: &Tenant,
        record: &ConnectionRecord,
        connector: &dyn DynConnector,
    ) -> Result<ValidationReport, Error> {
        let descriptor = connector.descriptor();
        let mut credentials = self.fresh_credentials(descriptor, record).await?;
        let ctx = context(tenant, Some(&record.id));
        let report = match connector.validate(&ctx, &mut credentials).await {
            Err(error) if error.kind() == ErrorKind::AuthFailed && descriptor.oauth.is_some() => {
                credentials.secrets = self
                    .state
                    .refresher
                    .refresh_after_rejection(descriptor, record, &credentials.secrets)
                    .await
                    .map_err(|refused| refresh_refused(&error, refused))?;
                connector.validate(&ctx, &mut credentials).await?
            }
            outcome => outcome?,
        };
        self.state
            .records
            .update_validation(
                tenant,
                &record.id,
                status_of(&report),
                &credentials.config,
                &report,
            )
            .await?;
        Ok(report)
    }

    /// Issues a new webhook token or signing secret for a connection; the old one
    /// stops working at once.
    pub async fn rotate_webhook_credential(
        &self,
        tenant: &Tenant,
        record: &ConnectionRecord,
        descriptor: &'static ConnectorDescriptor,
    ) -> Result<RotatedCredential, Error> {
        let unsupported =
            |message: &str| Error::unsupported(message.to_owned()).with_connector(descriptor.id);
        let auth = descriptor
            .webhook
            .map(|webhook| webhook.auth)
            .ok_or_else(|| unsupported("this connector receives no webhooks"))?;
        let rotated = match auth {
            WebhookAuth::Token { header } => {
                let token = generate_token(WEBHOOK_TOKEN_PREFIX);
                self.state
                    .records
                    .update_webhook_token_hash(tenant, &record.id, &hash_token(token.expose()))
                    .await?;
                RotatedCredential::Token { header, token }
            }
            WebhookAuth::Signature => {
                let secret = generate_token(WEBHOOK_SECRET_PREFIX);
                // Only `webhook_secret` changes, merged into the latest secrets under
                // check-and-set: a token refreshed meanwhile is kept.
                modify(self.state.secrets.as_ref(), &record.secret_ref, |latest| {
                    Ok(slots::with_webhook_secret(latest, &secret))
                })
                .await?;
                RotatedCredential::Secret(secret)
            }
            WebhookAuth::App => {
                return Err(unsupported(
                    "app-level webhooks are signed with the app's signing secret; there is nothing to rotate per connection",
                ))
            }
            WebhookAuth::ProviderSignature => {
                return Err(unsupported(&format!(
                    "{} issues the webhook signing secrets itself; Patchbay cannot generate one",
                    descriptor.display_name
                ))
                .with_hint(format!(
                    "add the new secret with POST /api/connections/{}/webhook/secrets, then remove the old one with DELETE /api/connections/{}/webhook/secrets/{{secret_id}}",
                    record.id, record.id
                )))
            }
        };
        tracing::info!(connection = %record.id, connector = descriptor.id, "rotated webhook credential");
        Ok(rotated)
    }

    /// The provider-issued webhook signing secrets of a connection, oldest first.
    pub async fn webhook_secrets(
        &self,
        record: &ConnectionRecord,
        descriptor: &'static ConnectorDescriptor,
    ) -> Result<Vec<WebhookSecretView>, Error> {
        provider_signed(descriptor)?;
        let secrets = self.credentials(record).await?.secrets;
        Ok(slots::webhook_secrets(&secrets)
            .iter()
            .map(WebhookSecretView::from)
            .collect())
    }

    /// Adds a provider-issued webhook signing secret to a connection, beside the ones
    /// it has: deliveries signed with any of them are accepted, so a provider's new
    /// secret can be added before the old one is removed. Only the list changes,
    /// merged into the latest secrets under check-and-set.
    pub async fn add_webhook_secret(
        &self,
        record: &ConnectionRecord,
        descriptor: &'static ConnectorDescriptor,
        secret: SecretString,
    ) -> Result<WebhookSecretView, Error> {
        provider_signed(descriptor)?;
        if secret.expose().trim().is_empty() {
            return Err(
                Error::invalid_input("secret", "the signing secret is empty")
                    .with_connector(descriptor.id)
                    .with_hint(format!(
                        "paste the signing secret {} showed for the webhook subscription",
                        descriptor.display_name
                    )),
            );
        }
        let entry = ProviderWebhookSecret::new(secret, Utc::now());
        modify(self.state.secrets.as_ref(), &record.secret_ref, |latest| {
            slots::with_added_webhook_secret(latest, &entry)
                .map_err(|error| error.with_connector(descriptor.id))
        })
        .await?;
        tracing::info!(connection = %record.id, connector = descriptor.id, secret_id = %entry.id, "added a webhook signing secret");
        Ok(WebhookSecretView::from(&entry))
    }

    /// Removes a provider-issued webhook signing secret by id; deliveries signed with
    /// it are refused from then on. Only the list changes, under check-and-set.
    pub async fn remove_webhook_secret(
        &self,
        record: &ConnectionRecord,
        descriptor: &'static ConnectorDescriptor,
        secret_id: &str,
    ) -> Result<(), Error> {
        provider_signed(descriptor)?;
        modify(self.state.secrets.as_ref(), &record.secret_ref, |latest| {
            slots::without_webhook_secret(latest, secret_id).ok_or_else(|| {
                Error::not_found(format!(
                    "this connection has no webhook signing secret `{secret_id}`"
                ))
                .with_connector(descriptor.id)
                .with_field("secret_id")
                .with_hint(
                    "list the connection's secrets with GET /api/connections/{id}/webhook/secrets",
                )
            })
        })
        .await?;
        tracing::info!(connection = %record.id, connector = descriptor.id, %secret_id, "removed a webhook signing secret");
        Ok(())
    }

    /// Removes the secrets no connection points to: a connect stopped between storing
    /// its secret and its record (a killed process, an outage it could not clean up
    /// after) leaves one behind. A secret is removed only if it was listed `grace`
    /// before no record pointed to it, so a connect still in progress keeps its secret:
    /// `grace` must exceed the longest a connect takes.
    pub async fn sweep_orphaned_secrets(
        &self,
        grace: std::time::Duration,
    ) -> Result<OrphanSweep, Error> {
        let listed = self.state.secrets.list().await?;
        tokio::time::sleep(grace).await;
        let mut referenced: std::collections::HashSet<SecretRef> = self
            .state
            .records
            .connections_with_secret_prefix("")
            .await?
            .into_iter()
            .map(|record| record.secret_ref)
            .collect();
        // A secret moved to a new layout keeps its old copy until that is deleted.
        referenced.extend(
            self.state
                .records
                .retired_secret_refs()
                .await?
                .into_iter()
                .map(|(_, reference)| reference),
        );
        let mut sweep = OrphanSweep {
            listed: listed.len(),
            removed: Vec::new(),
        };
        for reference in listed {
            if !referenced.contains(&reference) {
                self.state.secrets.delete(&reference).await?;
                tracing::info!(%reference, "removed a secret no connection points to");
                sweep.removed.push(reference);
            }
        }
        Ok(sweep)
    }

    /// Revokes the grant at the provider, then deletes the secret and the record.
    /// When a local deletion fails the error says what already happened.
    pub async fn disconnect(
        &self,
        tenant: &Tenant,
        record: &ConnectionRecord,
    ) -> Result<RevokeReport, Error> {
        let state = self.state;
        let revoke = self.revoke_at_provider(tenant, record).await;
        let provider = state
            .registry
            .descriptor(&record.connector)
            .map_or(record.connector.as_str(), |descriptor| {
                descriptor.display_name
            });
        if let Err(error) = state.secrets.delete(&record.secret_ref).await {
            return Err(Error::new(
                error.kind(),
                partial_disconnect(provider, &revoke, DisconnectStage::Secret, &error),
            )
            .with_hint("retry the disconnect once the credential store is reachable"));
        }
        if let Err(error) = state.records.delete_connection(tenant, &record.id).await {
            return Err(Error::new(
                error.kind(),
                partial_disconnect(provider, &revoke, DisconnectStage::Record, &error),
            )
            .with_hint("retry the disconnect"));
        }
        tracing::info!(connection = %record.id, connector = %record.connector, "disconnected");
        state
            .connections_changed
            .send_modify(|changes| *changes = changes.wrapping_add(1));
        Ok(revoke)
    }

    /// Revokes an OAuth connection's grant at the provider; reports failures instead
    /// of hiding them.
    async fn revoke_at_provider(&self, tenant: &Tenant, record: &ConnectionRecord) -> RevokeReport {
        let Some(connector) = self.state.registry.get(&record.connector) else {
            return RevokeReport::NotOffered;
        };
        let descriptor = connector.descriptor();
        if descriptor.oauth.is_none() {
            return RevokeReport::NotOffered;
        }
        let credentials = match self.credentials(record).await {
            Ok(credentials) => credentials,
            Err(error) => return RevokeReport::Failed(error.message().to_owned()),
        };
        let client = self.state.oauth.client_credentials(descriptor).ok();
        let ctx = context(tenant, Some(&record.id));
        match connector.revoke(&ctx, &credentials, client.as_ref()).await {
            Ok(RevokeOutcome::Revoked) => RevokeReport::Revoked,
            Ok(RevokeOutcome::NotOffered) => RevokeReport::NotOffered,
            Err(error) => {
                tracing::warn!(connection = %record.id, kind = %error.kind(), message = %error.message(), "revoking at the provider failed; deleting locally anyway");
                RevokeReport::Failed(error.message().to_owned())
            }
        }
    }
}

/// What [`Connections::sweep_orphaned_secrets`] found.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanSweep {
    /// How many secrets the store held when the sweep began.
    pub listed: usize,
    /// The secrets removed because no connection pointed to them.
    pub removed: Vec<SecretRef>,
}

/// Refuses connectors whose webhooks are not signed with provider-issued secrets.
fn provider_signed(descriptor: &ConnectorDescriptor) -> Result<(), Error> {
    match descriptor.webhook.map(|webhook| webhook.auth) {
        Some(WebhookAuth::ProviderSignature) => Ok(()),
        _ => Err(Error::unsupported(format!(
            "{} webhooks are not signed with secrets the provider issues",
            descriptor.display_name
        ))
        .with_connector(descriptor.id)
        .with_hint(
            "use POST /api/connections/{id}/webhook/rotate to get a new webhook credential",
        )),
    }
}

/// The answer when another account's connection already has this routing key: one
/// workspace sends its events to one connection.
fn routing_key_conflict(descriptor: &ConnectorDescriptor, record: &ConnectionRecord) -> Error {
    let workspace = record
        .metadata
        .get("team_name")
        .and_then(serde_json::Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .or(record.routing_key.as_deref())
        .unwrap_or_default();
    Error::new(
        ErrorKind::Conflict,
        format!(
            "{} workspace {workspace} is already connected to another Patchbay account; \
             disconnect it there first",
            descriptor.display_name
        ),
    )
    .with_connector(descriptor.id)
    .with_hint("ask the account that connected it to disconnect it, then connect again")
}

/// After a connect's record insert failed without knowing whether it committed:
/// waits until the records answer, then keeps the secret if the record is there
/// (the connect succeeded although its answer was lost) and removes it otherwise.
fn remove_unless_recorded_in_background(
    state: AppState,
    record: &ConnectionRecord,
    reference: SecretRef,
) {
    let (tenant, id) = (record.tenant.clone(), record.id.clone());
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        while started.elapsed() < CLEANUP_PERSISTENCE {
            match state.records.get_connection(&tenant, &id).await {
                Ok(Some(_)) => {
                    tracing::warn!(connection = %id, "a connect answered with an error but its record was saved; the connection is kept");
                    return;
                }
                Ok(None) => {
                    remove_in_background(state.secrets.clone(), reference);
                    return;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
        }
        tracing::error!(connection = %id, %reference, "gave up checking whether a connection was saved; its secret may be orphaned until the next sweep");
    });
}

/// Removes a secret that no record points to, retrying until the store answers,
/// and confirming it stays gone (a delayed write may land after a first delete).
fn remove_in_background(
    secrets: std::sync::Arc<dyn patchbay_store::SecretStore>,
    reference: SecretRef,
) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut confirmations = 0;
        while started.elapsed() < CLEANUP_PERSISTENCE {
            let gone = secrets.delete(&reference).await.is_ok()
                && matches!(secrets.get(&reference).await, Err(error) if error.kind() == ErrorKind::NotFound);
            confirmations = if gone { confirmations + 1 } else { 0 };
            if confirmations >= 2 {
                tracing::info!(%reference, "removed an orphaned secret");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        tracing::error!(%reference, "gave up removing an orphaned secret; delete it by hand");
    });
}

/// Refuses an operation that changes provider state on a connection whose owner
/// did not allow writes when connecting (`permission_denied`, naming the setting).
fn refuse_unallowed_write(
    state: &AppState,
    descriptor: &ConnectorDescriptor,
    record: &ConnectionRecord,
    operation: &str,
) -> Result<(), Error> {
    let writes = state
        .write_operations
        .get(descriptor.id)
        .is_some_and(|writes| writes.contains(&operation));
    if !writes || record.allow_writes {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "`{operation}` changes {} state, and this connection was made without allow_writes",
            descriptor.display_name
        ),
    )
    .with_field("allow_writes")
    .with_connector(descriptor.id)
    .with_hint(
        "reconnect with \"allow_writes\": true (POST /api/connections or the OAuth start body) to let agents run write operations",
    ))
}

/// Which local deletion failed during a disconnect.
#[derive(Debug, Clone, Copy)]
enum DisconnectStage {
    /// Deleting the secret failed: nothing local was deleted.
    Secret,
    /// The secret is gone but the record remains.
    Record,
}

/// Says exactly what a disconnect did before a local deletion failed: whether the
/// grant was revoked at the provider, and what is left here.
fn partial_disconnect(
    provider: &str,
    revoke: &RevokeReport,
    stage: DisconnectStage,
    error: &Error,
) -> String {
    let at_provider = match revoke {
        RevokeReport::Revoked => {
            format!("{provider} revoked the grant, so the stored credentials no longer work; ")
        }
        RevokeReport::Failed(reason) => format!("revoking at {provider} failed ({reason}); "),
        RevokeReport::NotOffered => String::new(),
    };
    let here = match stage {
        DisconnectStage::Secret => format!(
            "the connection's secret could not be deleted ({}), so the connection is still listed",
            error.message()
        ),
        DisconnectStage::Record => format!(
            "the secret was deleted but the connection record was not ({}); the connection is unusable until the disconnect is retried",
            error.message()
        ),
    };
    format!("{at_provider}{here}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refused_refresh_keeps_the_connectors_words_for_the_rejection() {
        let rejection = Error::new(ErrorKind::AuthFailed, "Confluence credentials expired")
            .with_connector("confluence")
            .with_provider_status(401);
        let refused = Error::new(
            ErrorKind::NeedsReauth,
            "the Confluence authorization expired or was revoked; reconnect Confluence",
        )
        .with_connector("confluence");
        let error = refresh_refused(&rejection, refused);
        assert_eq!(error.kind(), ErrorKind::NeedsReauth);
        assert_eq!(error.message(), "Confluence credentials expired");
        assert_eq!(
            error.hint(),
            Some("the Confluence authorization expired or was revoked; reconnect Confluence")
        );
        assert_eq!(error.connector(), Some("confluence"));
        assert_eq!(error.provider_status(), Some(401));
        let unavailable = Error::unavailable("the token endpoint did not answer in time");
        assert_eq!(
            refresh_refused(&rejection, unavailable).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn a_partial_disconnect_says_what_happened_at_the_provider_and_here() {
        let down = Error::unavailable("credential store unavailable");
        assert_eq!(
            partial_disconnect(
                "GitHub",
                &RevokeReport::Revoked,
                DisconnectStage::Secret,
                &down
            ),
            "GitHub revoked the grant, so the stored credentials no longer work; the \
             connection's secret could not be deleted (credential store unavailable), so the \
             connection is still listed"
        );
        assert_eq!(
            partial_disconnect(
                "Slack",
                &RevokeReport::Failed("Slack answered 500".into()),
                DisconnectStage::Record,
                &Error::unavailable("records database unavailable"),
            ),
            "revoking at Slack failed (Slack answered 500); the secret was deleted but the \
             connection record was not (records database unavailable); the connection is \
             unusable until the disconnect is retried"
        );
        assert_eq!(
            partial_disconnect(
                "Datadog",
                &RevokeReport::NotOffered,
                DisconnectStage::Secret,
                &down
            ),
            "the connection's secret could not be deleted (credential store unavailable), so \
             the connection is still listed"
        );
    }

    #[test]
    fn the_revoke_report_keeps_its_json_shape() {
        assert_eq!(json!(RevokeReport::Revoked), json!("revoked"));
        assert_eq!(json!(RevokeReport::NotOffered), json!("not_offered"));
        assert_eq!(
            json!(RevokeReport::Failed("down".into())),
            json!({ "failed": "down" })
        );
    }
}
