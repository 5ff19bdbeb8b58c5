//! The behaviour every connector must show, run against its provider fake.
//!
//! A connector's `tests/contract.rs` builds a [`ContractCase`] (the connector
//! pointed at a fake, forms, parameters for every operation, webhook samples, how
//! its webhooks are signed, and the secret values to watch for) and calls
//! [`run_contract_suite`], which panics with a message naming the broken rule.
//!
//! Webhooks: every good sample must pass `verify` and normalise to events, and the
//! suite derives tampered variants of each sample itself (a forged, missing or
//! moved signature or token, an altered body, a stale or altered timestamp) that
//! `verify` must refuse as `auth_failed`, so a connector cannot opt out.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use patchbay_core::slots::{
    with_webhook_secret as with_webhook_secret_slot, OAuthTokens, RESERVED_SECRET_KEYS,
};
use patchbay_core::{
    token_hash, token_header_value, AuthRequest, CheckOutcome, ConnectorContext,
    ConnectorDescriptor, DynConnector, DynCredentials, Error, ErrorKind, FormFields,
    InboundWebhook, OAuthClientCredentials, OAuthGrant, QueryOutput, RevokeOutcome, SecretString,
    ValidationReport, VerifiedDelivery, WebhookAuth, WebhookKey, WebhookOutcome, WebhookRoute,
    MAX_OUTPUT_BYTES,
};
use serde_json::{json, Value};

/// Everything the suite needs to exercise one connector.
pub struct ContractCase {
    /// The connector under test, configured to reach the provider fake.
    pub connector: Arc<dyn DynConnector>,
    /// A connect form the fake accepts.
    pub good_form: Value,
    /// A well-formed connect form the provider rejects (a mandatory check fails).
    pub bad_form: Value,
    /// A connect form `authenticate` rejects with `InvalidConfig` naming a field.
    pub invalid_form: Value,
    /// Parameters for every operation in the descriptor.
    pub operation_params: BTreeMap<String, Value>,
    /// Good webhook deliveries that must each verify and normalise to at least one
    /// event. Signed samples carry their signature; token samples carry no token
    /// (the suite adds the connection's).
    pub webhook_samples: Vec<InboundWebhook>,
    /// How `Signature` and `App` webhooks are signed; `None` for `Token` webhooks
    /// and connectors without webhooks.
    pub webhook_signing: Option<WebhookSigning>,
    /// The secret values inside `good_form` and `bad_form` (and the webhook secret,
    /// if any). Empty only for a connector that declares no auth kinds: it takes no
    /// credentials, and the suite checks that it stores no secret.
    pub canaries: Vec<String>,
    /// A paged operation and parameters for which the fake has a second page;
    /// required when any operation takes a `cursor`.
    pub paging: Option<OperationCall>,
    /// An operation and parameters for which the fake answers with more than
    /// [`MAX_OUTPUT_BYTES`]; the suite checks the output is capped and marked
    /// `truncated`.
    pub oversized: Option<OperationCall>,
}

/// One operation with its parameters.
#[derive(Debug, Clone)]
pub struct OperationCall {
    /// The operation's name.
    pub operation: String,
    /// Its parameters.
    pub params: Value,
}

impl OperationCall {
    /// `operation` called with `params`.
    pub fn new(operation: &str, params: Value) -> Self {
        Self {
            operation: operation.to_owned(),
            params,
        }
    }
}

/// Verbs of operations that read; an operation named `<verb>_…` with one of these
/// must be declared read-only.
pub const READ_VERBS: &[&str] = &[
    "list", "get", "search", "query", "describe", "explain", "find", "check", "show", "count",
];

/// Verbs of operations that change provider state; an operation named `<verb>_…`
/// with one of these must not be declared read-only.
pub const WRITE_VERBS: &[&str] = &[
    "post",
    "create",
    "update",
    "delete",
    "send",
    "add",
    "remove",
    "set",
    "trigger",
    "acknowledge",
    "resolve",
    "restart",
    "scale",
    "merge",
    "close",
    "reopen",
    "invite",
];

/// Whether an operation named with a write verb only looks something up: resolving
/// a URL or link (`resolve_page_url`) reads, unlike resolving an incident.
pub fn is_lookup(name: &str) -> bool {
    name.starts_with("resolve_") && (name.ends_with("_url") || name.ends_with("_link"))
}

/// What the suite needs to forge and re-sign a connector's signed webhooks.
pub struct WebhookSigning {
    /// The header carrying the signature (`X-Hub-Signature-256`).
    pub signature_header: &'static str,
    /// The header carrying the signed timestamp in Unix seconds, for schemes that
    /// sign one (`X-Slack-Request-Timestamp`).
    pub timestamp_header: Option<&'static str>,
    /// The signature header's value for a delivery (its body, and its timestamp
    /// header where the scheme has one) under the good secret.
    pub sign: Box<dyn Fn(&InboundWebhook) -> String + Send + Sync>,
}

/// Credentials for a connector that connects through OAuth rather than a form.
///
/// With these, `good_form` and `bad_form` are not used: the grants take their place,
/// and `invalid_form` must be refused (`invalid_config` naming a field, or
/// `unsupported` with a hint when the connector has no form at all).
pub struct OAuthGrants {
    /// A grant as the OAuth engine hands it over, for tokens the fake accepts.
    pub good: OAuthGrant,
    /// A well-formed grant whose token the provider rejects.
    pub bad: OAuthGrant,
}

/// Runs every contract check, printing each one passed; panics on the first failure.
pub async fn run_contract_suite(case: ContractCase) {
    run_suite(Suite::new(case, None)).await;
}

/// Runs every contract check for a connector that connects through OAuth: the
/// grants stand in for the good and bad forms.
pub async fn run_oauth_contract_suite(case: ContractCase, grants: OAuthGrants) {
    run_suite(Suite::new(case, Some(grants))).await;
}

async fn run_suite(suite: Suite) {
    suite.descriptor_is_sane();
    suite.invalid_form_names_a_field().await;
    let mut credentials = suite.good_form_authenticates().await;
    suite.good_credentials_validate(&mut credentials).await;
    suite.bad_credentials_fail_validation().await;
    suite.every_operation_runs(&credentials).await;
    suite.cursors_round_trip_and_are_checked(&credentials).await;
    suite.oversized_output_is_capped(&credentials).await;
    suite.unknown_operation_is_not_found(&credentials).await;
    suite.malformed_params_are_invalid_input(&credentials).await;
    suite.webhooks_verify_then_normalise(&credentials).await;
    suite.pass("all contract checks passed");
}

struct Suite {
    case: ContractCase,
    grants: Option<OAuthGrants>,
    id: &'static str,
    ctx: ConnectorContext,
}

impl Suite {
    fn new(case: ContractCase, grants: Option<OAuthGrants>) -> Self {
        let descriptor = case.connector.descriptor();
        let id = descriptor.id;
        assert!(
            case.canaries.iter().all(|canary| canary.len() >= 8)
                && (!case.canaries.is_empty() || takes_no_credentials(descriptor)),
            "contract[{id}]: give at least one canary of 8+ characters so leaks are detectable"
        );
        Self {
            case,
            grants,
            id,
            ctx: context("contract-connection"),
        }
    }

    fn pass(&self, check: &str) {
        println!("contract[{}]: ok - {check}", self.id);
    }

    /// Panics if any canary appears in `text`.
    fn assert_no_canary(&self, what: &str, text: &str) {
        for canary in &self.case.canaries {
            assert!(
                !text.contains(canary.as_str()),
                "contract[{}]: {what} contains a secret value",
                self.id
            );
        }
    }

    /// Panics if an error leaks a canary through any of its printing paths.
    fn assert_error_clean(&self, what: &str, error: &Error) {
        self.assert_no_canary(what, &error.to_string());
        self.assert_no_canary(what, &format!("{error:?}"));
        self.assert_no_canary(what, error.hint().unwrap_or_default());
    }

    /// The good or bad connect request: the OAuth grant when there is one, else the form.
    fn connect_request(&self, good: bool) -> AuthRequest {
        match (&self.grants, good) {
            (Some(grants), true) => AuthRequest::OAuth(grants.good.clone()),
            (Some(grants), false) => AuthRequest::OAuth(grants.bad.clone()),
            (None, true) => self.form(&self.case.good_form, "good_form"),
            (None, false) => self.form(&self.case.bad_form, "bad_form"),
        }
    }

    fn form(&self, value: &Value, name: &str) -> AuthRequest {
        match value {
            Value::Object(map) => AuthRequest::Form(FormFields(map.clone())),
            other => panic!(
                "contract[{}]: {name} must be a JSON object, got {other}",
                self.id
            ),
        }
    }

    fn descriptor_is_sane(&self) {
        let descriptor = self.case.connector.descriptor();
        let id = descriptor.id;
        assert!(
            !id.is_empty()
                && id.bytes().all(|byte| byte.is_ascii_lowercase()
                    || byte.is_ascii_digit()
                    || byte == b'_'
                    || byte == b'-'),
            "contract[{id}]: the id must be lowercase ASCII letters, digits, `_` or `-`"
        );
        assert!(
            !descriptor.display_name.trim().is_empty(),
            "contract[{id}]: empty display name"
        );
        let connect_schema = (descriptor.connect_schema)();
        assert_eq!(
            connect_schema.as_value().get("type"),
            Some(&json!("object")),
            "contract[{id}]: the connect schema must be an object schema"
        );
        let operations = (descriptor.operations)();
        let mut names = std::collections::BTreeSet::new();
        for operation in &operations {
            assert!(
                names.insert(operation.name),
                "contract[{id}]: operation `{}` is declared twice",
                operation.name
            );
            assert!(
                !operation.description.trim().is_empty(),
                "contract[{id}]: operation `{}` has no description",
                operation.name
            );
            assert_eq!(
                operation.params_schema.as_value().get("type"),
                Some(&json!("object")),
                "contract[{id}]: operation `{}` params schema must be an object schema",
                operation.name
            );
            let name = operation.name;
            assert!(
                name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !name.ends_with('_')
                    && !name.contains("__"),
                "contract[{id}]: operation `{name}` must be snake_case (`verb_noun`)"
            );
            let verb = name.split('_').next().unwrap_or_default();
            if READ_VERBS.contains(&verb) {
                assert!(
                    operation.read_only,
                    "contract[{id}]: `{name}` reads (`{verb}_…`) but is not declared read-only"
                );
            }
            if WRITE_VERBS.contains(&verb) && !is_lookup(name) {
                assert!(
                    !operation.read_only,
                    "contract[{id}]: `{name}` changes provider state (`{verb}_…`) but is declared read-only"
                );
            }
            let paged = operation
                .params_schema
                .as_value()
                .pointer("/properties/cursor")
                .is_some();
            if paged {
                assert!(
                    self.case.paging.is_some(),
                    "contract[{id}]: `{name}` takes a `cursor`; give `paging` with an operation and parameters that return a second page"
                );
            }
        }
        if let Some(webhook) = descriptor.webhook {
            assert!(
                webhook.path.starts_with('/'),
                "contract[{id}]: webhook path must start with /"
            );
            if matches!(webhook.auth, WebhookAuth::Token { .. }) {
                assert!(
                    webhook.path.contains("{user_id}"),
                    "contract[{id}]: a token webhook path must contain {{user_id}}"
                );
            }
        }
        let document =
            serde_json::to_string(&descriptor.document()).expect("descriptor serialises");
        self.assert_no_canary("the descriptor document", &document);
        self.pass("descriptor is well formed");
    }

    async fn invalid_form_names_a_field(&self) {
        let request = self.form(&self.case.invalid_form, "invalid_form");
        let error = self
            .case
            .connector
            .authenticate(request)
            .await
            .expect_err(&format!(
                "contract[{}]: invalid_form must not authenticate",
                self.id
            ));
        self.assert_error_clean("the invalid_form error", &error);
        if self.grants.is_some() && error.kind() == ErrorKind::Unsupported {
            assert!(
                error.hint().is_some(),
                "contract[{}]: refusing forms must hint at the OAuth flow: {error}",
                self.id
            );
            self.pass("a form is refused as unsupported with a hint (OAuth only)");
            return;
        }
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidConfig,
            "contract[{}]: invalid_form must fail with invalid_config, got {error}",
            self.id
        );
        assert!(
            error.field().is_some(),
            "contract[{}]: invalid_form error must name the field at fault: {error}",
            self.id
        );
        self.pass("invalid_form is rejected with invalid_config naming a field");
    }

    async fn good_form_authenticates(&self) -> DynCredentials {
        let request = self.connect_request(true);
        let credentials = match self.case.connector.authenticate(request).await {
            Ok(credentials) => credentials,
            Err(error) => panic!(
                "contract[{}]: good_form must authenticate: {error}",
                self.id
            ),
        };
        self.assert_no_canary("the credentials' config", &credentials.config.to_string());
        self.assert_no_canary("the credentials' Debug output", &format!("{credentials:?}"));
        if takes_no_credentials(self.case.connector.descriptor()) {
            let own_secrets = credentials
                .secrets
                .expose()
                .as_object()
                .is_some_and(|fields| {
                    fields
                        .keys()
                        .any(|key| !RESERVED_SECRET_KEYS.contains(&key.as_str()))
                });
            assert!(
                !own_secrets && OAuthTokens::read(&credentials.secrets).is_none(),
                "contract[{}]: a connector whose form takes no credentials must store no secret and no token from it",
                self.id
            );
        } else {
            let secrets = credentials.secrets.expose().to_string();
            assert!(
                self.case
                    .canaries
                    .iter()
                    .any(|canary| secrets.contains(canary.as_str())),
                "contract[{}]: the credentials' secrets must hold the submitted keys",
                self.id
            );
        }
        self.pass("good_form authenticates; config and Debug output hold no secret");
        credentials
    }

    async fn good_credentials_validate(&self, credentials: &mut DynCredentials) {
        let report = match self.case.connector.validate(&self.ctx, credentials).await {
            Ok(report) => report,
            Err(error) => panic!(
                "contract[{}]: validate(good_form) must return a report: {error}",
                self.id
            ),
        };
        let text = serde_json::to_string(&report).expect("report serialises");
        self.assert_no_canary("the validation report", &text);
        self.assert_no_canary("the validated config", &credentials.config.to_string());
        assert!(
            !report.checks.is_empty(),
            "contract[{}]: the report has no checks",
            self.id
        );
        for check in &report.checks {
            assert!(
                !check.id.trim().is_empty() && !check.description.trim().is_empty(),
                "contract[{}]: every check needs an id and a description: {check:?}",
                self.id
            );
        }
        assert!(
            report.passed(),
            "contract[{}]: validate(good_form) must pass, got {text}",
            self.id
        );
        self.pass(&format!(
            "validate(good_form) passes with {} checks",
            report.checks.len()
        ));
    }

    async fn bad_credentials_fail_validation(&self) {
        let request = self.connect_request(false);
        let mut credentials = match self.case.connector.authenticate(request).await {
            Ok(credentials) => credentials,
            Err(error) => panic!(
                "contract[{}]: bad_form must be well formed and authenticate (it fails at the provider): {error}",
                self.id
            ),
        };
        let report = match self.case.connector.validate(&self.ctx, &mut credentials).await {
            Ok(report) => report,
            Err(error) => panic!(
                "contract[{}]: validate(bad_form) must return a failed report, not an error: {error}",
                self.id
            ),
        };
        let text = serde_json::to_string(&report).expect("report serialises");
        self.assert_no_canary("the failed validation report", &text);
        assert!(
            !report.passed(),
            "contract[{}]: validate(bad_form) must fail, got {text}",
            self.id
        );
        assert!(
            report
                .checks
                .iter()
                .any(|check| check.mandatory && check.outcome != CheckOutcome::Ok),
            "contract[{}]: a failed report must have a mandatory check that is not ok: {text}",
            self.id
        );
        self.pass("validate(bad_form) fails on a mandatory check");
    }

    async fn every_operation_runs(&self, credentials: &DynCredentials) {
        let operations = (self.case.connector.descriptor().operations)();
        for operation in &operations {
            let params = self
                .case
                .operation_params
                .get(operation.name)
                .unwrap_or_else(|| {
                    panic!(
                        "contract[{}]: operation_params has no entry for `{}`",
                        self.id, operation.name
                    )
                });
            let output = match self
                .case
                .connector
                .query(&self.ctx, credentials, operation.name, params.clone())
                .await
            {
                Ok(output) => output,
                Err(error) => panic!(
                    "contract[{}]: operation `{}` failed with {params}: {error} ({:?})",
                    self.id,
                    operation.name,
                    error.hint()
                ),
            };
            let text = serde_json::to_string(&output).expect("query output serialises");
            self.assert_no_canary(&format!("the output of `{}`", operation.name), &text);
            let size = serde_json::to_vec(&output.data).map_or(0, |bytes| bytes.len());
            assert!(
                size <= MAX_OUTPUT_BYTES,
                "contract[{}]: `{}` returned {size} bytes, over the {MAX_OUTPUT_BYTES}-byte cap",
                self.id,
                operation.name
            );
            assert!(
                !output.data.is_null(),
                "contract[{}]: operation `{}` returned null data",
                self.id,
                operation.name
            );
            self.pass(&format!("operation `{}` runs", operation.name));
        }
        for name in self.case.operation_params.keys() {
            assert!(
                operations.iter().any(|operation| operation.name == name),
                "contract[{}]: operation_params names `{name}`, which the descriptor does not declare",
                self.id
            );
        }
    }

    async fn run(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        call: &OperationCall,
    ) -> patchbay_core::Result<QueryOutput> {
        self.case
            .connector
            .query(ctx, credentials, &call.operation, call.params.clone())
            .await
    }

    async fn cursors_round_trip_and_are_checked(&self, credentials: &DynCredentials) {
        let Some(call) = &self.case.paging else {
            return;
        };
        let id = self.id;
        let first = self
            .run(&self.ctx, credentials, call)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "contract[{id}]: paging `{}` failed: {error}",
                    call.operation
                )
            });
        let cursor = first.next_cursor.clone().unwrap_or_else(|| {
            panic!(
                "contract[{id}]: paging `{}` with {} returned no next_cursor; give parameters for which the fake has a second page",
                call.operation, call.params
            )
        });
        let mut next = call.clone();
        if let Value::Object(params) = &mut next.params {
            params.insert("cursor".into(), json!(cursor));
        }
        let second = self
            .run(&self.ctx, credentials, &next)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "contract[{id}]: passing `next_cursor` back to `{}` failed: {error}",
                    call.operation
                )
            });
        assert_ne!(
            first.data, second.data,
            "contract[{id}]: the second page of `{}` is the first page again",
            call.operation
        );
        let elsewhere = self
            .run(&context("contract-other-connection"), credentials, &next)
            .await
            .expect_err(&format!(
                "contract[{id}]: a cursor of one connection must be refused on another"
            ));
        assert_eq!(
            (elsewhere.kind(), elsewhere.field()),
            (ErrorKind::InvalidInput, Some("cursor")),
            "contract[{id}]: a cursor of another connection must be invalid_input naming `cursor`, got {elsewhere}"
        );
        let mut forged = next.clone();
        if let Value::Object(params) = &mut forged.params {
            params.insert("cursor".into(), json!(format!("{cursor}x")));
        }
        let error = self
            .run(&self.ctx, credentials, &forged)
            .await
            .expect_err(&format!(
                "contract[{id}]: an altered cursor must be refused"
            ));
        assert_eq!(
            (error.kind(), error.field()),
            (ErrorKind::InvalidInput, Some("cursor")),
            "contract[{id}]: an altered cursor must be invalid_input naming `cursor`, got {error}"
        );
        self.assert_error_clean("a cursor error", &error);
        self.pass(&format!(
            "`{}` pages with an opaque cursor that is refused on another connection or altered",
            call.operation
        ));
    }

    async fn oversized_output_is_capped(&self, credentials: &DynCredentials) {
        let Some(call) = &self.case.oversized else {
            return;
        };
        let id = self.id;
        let output = self
            .run(&self.ctx, credentials, call)
            .await
            .unwrap_or_else(|error| panic!("contract[{id}]: `{}` failed: {error}", call.operation));
        let size = serde_json::to_vec(&output.data).map_or(0, |bytes| bytes.len());
        assert!(
            size <= MAX_OUTPUT_BYTES && output.truncated,
            "contract[{id}]: `{}` must cap its output at {MAX_OUTPUT_BYTES} bytes and set `truncated`; got {size} bytes, truncated = {}",
            call.operation,
            output.truncated
        );
        self.pass(&format!(
            "an oversized answer of `{}` is capped and marked truncated",
            call.operation
        ));
    }

    async fn unknown_operation_is_not_found(&self, credentials: &DynCredentials) {
        let error = self
            .case
            .connector
            .query(
                &self.ctx,
                credentials,
                "contract_no_such_operation",
                json!({}),
            )
            .await
            .expect_err(&format!(
                "contract[{}]: an unknown operation must fail",
                self.id
            ));
        assert_eq!(
            error.kind(),
            ErrorKind::NotFound,
            "contract[{}]: an unknown operation must be not_found, got {error}",
            self.id
        );
        self.assert_error_clean("the unknown-operation error", &error);
        self.pass("an unknown operation is not_found");
    }

    async fn malformed_params_are_invalid_input(&self, credentials: &DynCredentials) {
        let operations = (self.case.connector.descriptor().operations)();
        let mut typed_fields_checked = 0;
        for operation in &operations {
            let good = self
                .case
                .operation_params
                .get(operation.name)
                .cloned()
                .unwrap_or_else(|| json!({}));
            let mut unknown = match good {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            let typed = typed_field(operation.params_schema.as_value());
            unknown.insert("contract_unknown_field".to_owned(), json!(true));
            self.expect_invalid_input(credentials, operation.name, Value::Object(unknown.clone()))
                .await;
            if let Some(field) = typed {
                unknown.remove("contract_unknown_field");
                unknown.insert(field, json!("lots"));
                self.expect_invalid_input(credentials, operation.name, Value::Object(unknown))
                    .await;
                typed_fields_checked += 1;
            }
        }
        self.pass(&format!(
            "unknown fields and wrongly typed fields ({typed_fields_checked} operations) are invalid_input naming a field"
        ));
    }

    async fn expect_invalid_input(
        &self,
        credentials: &DynCredentials,
        operation: &str,
        params: Value,
    ) {
        let result = self
            .case
            .connector
            .query(&self.ctx, credentials, operation, params.clone())
            .await;
        let error = match result {
            Ok(_) => panic!(
                "contract[{}]: operation `{operation}` accepted malformed params {params}",
                self.id
            ),
            Err(error) => error,
        };
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "contract[{}]: malformed params {params} for `{operation}` must be invalid_input, got {error}",
            self.id
        );
        assert!(
            error.field().is_some(),
            "contract[{}]: the error for {params} on `{operation}` must name a field: {error}",
            self.id
        );
        self.assert_error_clean("a malformed-params error", &error);
    }

    async fn webhooks_verify_then_normalise(&self, credentials: &DynCredentials) {
        let Some(webhook) = self.case.connector.descriptor().webhook else {
            assert!(
                self.case.webhook_samples.is_empty() && self.case.webhook_signing.is_none(),
                "contract[{}]: webhook samples or signing given but the descriptor declares no webhook",
                self.id
            );
            return;
        };
        assert!(
            !self.case.webhook_samples.is_empty(),
            "contract[{}]: the descriptor declares a webhook; give at least one sample",
            self.id
        );
        let ctx = ConnectorContext {
            connection_id: Some(CONTRACT_CONNECTION.to_owned()),
            ..self.ctx.clone()
        };
        match webhook.auth {
            WebhookAuth::Token { header } => {
                assert!(
                    self.case.webhook_signing.is_none(),
                    "contract[{}]: token webhooks are checked by the host; give no webhook_signing",
                    self.id
                );
                self.token_webhooks(&ctx, header, credentials).await;
            }
            WebhookAuth::Signature | WebhookAuth::App | WebhookAuth::ProviderSignature => {
                let signing = self.case.webhook_signing.as_ref().unwrap_or_else(|| {
                    panic!(
                        "contract[{}]: signed webhooks need webhook_signing so forged deliveries can be made",
                        self.id
                    )
                });
                let key = match webhook.auth {
                    WebhookAuth::App => WebhookKey::App,
                    _ => WebhookKey::Connection {
                        config: &credentials.config,
                        secrets: &credentials.secrets,
                    },
                };
                self.signed_webhooks(&ctx, signing, key, credentials).await;
            }
        }
        self.pass(&format!(
            "{} webhook samples verify and normalise; forged, unsigned, altered and stale variants are refused",
            self.case.webhook_samples.len()
        ));
    }

    /// The host's token check: the sample with the connection's token verifies,
    /// without it or with another token it does not.
    async fn token_webhooks(
        &self,
        ctx: &ConnectorContext,
        header: &'static str,
        credentials: &DynCredentials,
    ) {
        let stored = token_hash(CONTRACT_WEBHOOK_TOKEN);
        let key = WebhookKey::TokenHash(&stored);
        for (index, sample) in self.case.webhook_samples.iter().enumerate() {
            let mut unsigned = sample.clone();
            unsigned.headers.remove(header);
            unsigned.headers.remove(http::header::AUTHORIZATION);
            let good = with_header(
                &unsigned,
                header,
                &token_header_value(header, CONTRACT_WEBHOOK_TOKEN),
            );
            let delivery = self
                .verified(
                    ctx,
                    key,
                    &good,
                    &format!("webhook sample {index} with the token"),
                )
                .await;
            self.normalises(ctx, credentials, &delivery, index).await;
            let wrong = with_header(
                &unsigned,
                header,
                &token_header_value(header, &format!("{CONTRACT_WEBHOOK_TOKEN}x")),
            );
            self.refused(ctx, key, &unsigned, index, "a missing token")
                .await;
            self.refused(ctx, key, &wrong, index, "a wrong token").await;
        }
    }

    /// Every good sample verifies; every tampered variant of it is refused.
    async fn signed_webhooks(
        &self,
        ctx: &ConnectorContext,
        signing: &WebhookSigning,
        key: WebhookKey<'_>,
        credentials: &DynCredentials,
    ) {
        for (index, sample) in self.case.webhook_samples.iter().enumerate() {
            let signature = sample.header(signing.signature_header).unwrap_or_else(|| {
                panic!(
                    "contract[{}]: webhook sample {index} has no {} header",
                    self.id, signing.signature_header
                )
            });
            let delivery = self
                .verified(ctx, key, sample, &format!("webhook sample {index}"))
                .await;
            let resigned = with_header(sample, signing.signature_header, &(signing.sign)(sample));
            self.verified(
                ctx,
                key,
                &resigned,
                &format!("webhook sample {index} signed again with webhook_signing.sign"),
            )
            .await;

            let forged = with_header(sample, signing.signature_header, &forge(signature));
            self.refused(ctx, key, &forged, index, "a forged signature")
                .await;
            let mut unsigned = sample.clone();
            unsigned.headers.remove(signing.signature_header);
            self.refused(ctx, key, &unsigned, index, "a missing signature")
                .await;
            let mut altered = sample.clone();
            let mut body = altered.body.to_vec();
            // Trailing whitespace keeps JSON and form bodies parseable: only the signature can tell.
            body.push(b' ');
            altered.body = body.into();
            self.refused(ctx, key, &altered, index, "an altered body")
                .await;
            if let Some(timestamp_header) = signing.timestamp_header {
                self.timestamp_variants(ctx, signing, timestamp_header, key, sample, index)
                    .await;
            }
            if matches!(key, WebhookKey::App) {
                self.routes_to_the_connection(&delivery, credentials, index)
                    .await;
            }
            self.normalises(ctx, credentials, &delivery, index).await;
        }
    }

    /// A validly signed delivery an hour old or an hour ahead, a timestamp changed
    /// after signing, and no timestamp at all are refused.
    async fn timestamp_variants(
        &self,
        ctx: &ConnectorContext,
        signing: &WebhookSigning,
        timestamp_header: &'static str,
        key: WebhookKey<'_>,
        sample: &InboundWebhook,
        index: usize,
    ) {
        let seconds: i64 = sample
            .header(timestamp_header)
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "contract[{}]: webhook sample {index} needs {timestamp_header} in Unix seconds",
                    self.id
                )
            });
        let signed_at = |at: i64| {
            let request = with_header(sample, timestamp_header, &at.to_string());
            with_header(
                &request,
                signing.signature_header,
                &(signing.sign)(&request),
            )
        };
        self.refused(
            ctx,
            key,
            &signed_at(seconds - STALE_BY_SECONDS),
            index,
            "a stale timestamp",
        )
        .await;
        self.refused(
            ctx,
            key,
            &signed_at(seconds + STALE_BY_SECONDS),
            index,
            "a future timestamp",
        )
        .await;
        let moved = with_header(sample, timestamp_header, &(seconds - 1).to_string());
        self.refused(ctx, key, &moved, index, "an altered timestamp")
            .await;
        let mut undated = sample.clone();
        undated.headers.remove(timestamp_header);
        self.refused(ctx, key, &undated, index, "a missing timestamp")
            .await;
    }

    async fn verified(
        &self,
        ctx: &ConnectorContext,
        key: WebhookKey<'_>,
        request: &InboundWebhook,
        what: &str,
    ) -> VerifiedDelivery {
        match self.case.connector.verify(ctx, key, request).await {
            Ok(delivery) => delivery,
            Err(error) => panic!("contract[{}]: {what} must verify: {error}", self.id),
        }
    }

    /// `verify` must refuse `request` as `auth_failed` (the host answers 401), so
    /// nothing can be normalised or stored from it.
    async fn refused(
        &self,
        ctx: &ConnectorContext,
        key: WebhookKey<'_>,
        request: &InboundWebhook,
        index: usize,
        variant: &str,
    ) {
        let error = match self.case.connector.verify(ctx, key, request).await {
            Ok(_) => panic!(
                "contract[{}]: verify accepted webhook sample {index} with {variant}; it must refuse it as auth_failed",
                self.id
            ),
            Err(error) => error,
        };
        assert_eq!(
            error.kind(),
            ErrorKind::AuthFailed,
            "contract[{}]: verify must refuse webhook sample {index} with {variant} as auth_failed (the host answers 401), got {}: {error}",
            self.id,
            error.kind().as_str()
        );
        self.assert_error_clean("a webhook refusal", &error);
        self.assert_no_canary_or_token("a webhook refusal", &format!("{error:?}"));
    }

    async fn routes_to_the_connection(
        &self,
        delivery: &VerifiedDelivery,
        credentials: &DynCredentials,
        index: usize,
    ) {
        let expected = self
            .case
            .connector
            .routing_key(&credentials.config)
            .unwrap_or_else(|| {
                panic!(
                    "contract[{}]: an app webhook connector must give a routing key for its connections",
                    self.id
                )
            });
        match self.case.connector.route_webhook(delivery).await {
            Ok(WebhookRoute::Connection(key)) => assert_eq!(
                key, expected,
                "contract[{}]: webhook sample {index} must route to the good connection's routing key",
                self.id
            ),
            Ok(WebhookRoute::Reply(reply)) => panic!(
                "contract[{}]: webhook sample {index} must route to a connection, got the reply {reply:?}",
                self.id
            ),
            Err(error) => panic!(
                "contract[{}]: webhook sample {index} could not be routed: {error}",
                self.id
            ),
        }
    }

    async fn normalises(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        delivery: &VerifiedDelivery,
        index: usize,
    ) {
        let outcome = match self
            .case
            .connector
            .normalize(ctx, &credentials.config, delivery)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => panic!(
                "contract[{}]: webhook sample {index} failed to normalise: {error}",
                self.id
            ),
        };
        assert!(
            !outcome.events.is_empty(),
            "contract[{}]: webhook sample {index} produced no event",
            self.id
        );
        for event in &outcome.events {
            assert_eq!(
                event.source, self.id,
                "contract[{}]: event source must be the connector id",
                self.id
            );
            assert!(
                !event.external_id.trim().is_empty(),
                "contract[{}]: webhook sample {index} has an empty external_id",
                self.id
            );
            assert!(
                !event.dedup_key.trim().is_empty(),
                "contract[{}]: webhook sample {index} has an empty dedup_key",
                self.id
            );
            assert!(
                !event.raw.is_null(),
                "contract[{}]: webhook sample {index} lost its raw payload",
                self.id
            );
            let text = serde_json::to_string(event).expect("event serialises");
            self.assert_no_canary_or_token("a normalised webhook event", &text);
        }
    }

    fn assert_no_canary_or_token(&self, what: &str, text: &str) {
        self.assert_no_canary(what, text);
        assert!(
            !text.contains(CONTRACT_WEBHOOK_TOKEN),
            "contract[{}]: {what} contains the webhook token",
            self.id
        );
    }
}

/// Whether a connector takes no credentials from its connect form: it declares no
/// auth kinds, or only cross-account role assumption (AWS STS), where the customer
/// names a role and holds no secret to type.
fn takes_no_credentials(descriptor: &ConnectorDescriptor) -> bool {
    descriptor
        .auth_kinds
        .iter()
        .all(|kind| *kind == patchbay_core::AuthKind::AssumeRole)
}

/// `connector` with the host's part of connecting added: `authenticate` stores
/// `webhook_secret` as the connection's webhook key, as the host does for
/// `Signature` webhooks before it stores the credentials. Give the result to
/// [`ContractCase::connector`] so the suite can verify signed samples.
pub fn with_webhook_secret(
    connector: Arc<dyn DynConnector>,
    webhook_secret: &str,
) -> Arc<dyn DynConnector> {
    Arc::new(WithWebhookSecret {
        connector,
        webhook_secret: SecretString::from(webhook_secret),
    })
}

/// See [`with_webhook_secret`].
struct WithWebhookSecret {
    connector: Arc<dyn DynConnector>,
    webhook_secret: SecretString,
}

#[async_trait::async_trait]
impl DynConnector for WithWebhookSecret {
    fn descriptor(&self) -> &'static ConnectorDescriptor {
        self.connector.descriptor()
    }

    async fn authenticate(&self, request: AuthRequest) -> patchbay_core::Result<DynCredentials> {
        let mut credentials = self.connector.authenticate(request).await?;
        credentials.secrets = with_webhook_secret_slot(&credentials.secrets, &self.webhook_secret);
        Ok(credentials)
    }

    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut DynCredentials,
    ) -> patchbay_core::Result<ValidationReport> {
        self.connector.validate(ctx, credentials).await
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        operation: &str,
        params: Value,
    ) -> patchbay_core::Result<QueryOutput> {
        self.connector
            .query(ctx, credentials, operation, params)
            .await
    }

    async fn verify(
        &self,
        ctx: &ConnectorContext,
        key: WebhookKey<'_>,
        request: &InboundWebhook,
    ) -> patchbay_core::Result<VerifiedDelivery> {
        self.connector.verify(ctx, key, request).await
    }

    async fn route_webhook(
        &self,
        delivery: &VerifiedDelivery,
    ) -> patchbay_core::Result<WebhookRoute> {
        self.connector.route_webhook(delivery).await
    }

    async fn normalize(
        &self,
        ctx: &ConnectorContext,
        config: &Value,
        delivery: &VerifiedDelivery,
    ) -> patchbay_core::Result<WebhookOutcome> {
        self.connector.normalize(ctx, config, delivery).await
    }

    fn routing_key(&self, config: &Value) -> Option<String> {
        self.connector.routing_key(config)
    }

    async fn revoke(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        client: Option<&OAuthClientCredentials>,
    ) -> patchbay_core::Result<RevokeOutcome> {
        self.connector.revoke(ctx, credentials, client).await
    }

    fn webhook_setup(&self, config: &Value) -> Option<patchbay_core::WebhookSetup> {
        self.connector.webhook_setup(config)
    }
}

/// The connection id webhooks are verified and normalised for.
const CONTRACT_CONNECTION: &str = "contract-connection";
/// The token the suite gives token-webhook connections.
const CONTRACT_WEBHOOK_TOKEN: &str = "pbw_contract-webhook-token-3f9c1e";
/// How far outside any replay window the stale and future timestamps are.
const STALE_BY_SECONDS: i64 = 3600;

/// A copy of `request` with `name` set to `value`.
fn context(connection_id: &str) -> ConnectorContext {
    ConnectorContext {
        connection_id: Some(connection_id.to_owned()),
        tenant: None,
    }
}

fn with_header(request: &InboundWebhook, name: &str, value: &str) -> InboundWebhook {
    let mut request = request.clone();
    request.headers.insert(
        HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
        HeaderValue::from_str(value).expect("a valid header value"),
    );
    request
}

/// The signature with its last letter or digit changed: same shape, wrong value.
fn forge(signature: &str) -> String {
    let mut forged = signature.to_owned();
    if let Some((at, character)) = signature
        .char_indices()
        .rev()
        .find(|(_, character)| character.is_ascii_alphanumeric())
    {
        let replacement = if character == '0' { "1" } else { "0" };
        forged.replace_range(at..at + 1, replacement);
    } else {
        forged.push('0');
    }
    forged
}

/// A property of an integer, number or boolean type, to send a string in.
fn typed_field(schema: &Value) -> Option<String> {
    let properties = schema.get("properties")?.as_object()?;
    properties.iter().find_map(|(name, property)| {
        let types: Vec<&str> = match property.get("type") {
            Some(Value::String(kind)) => vec![kind.as_str()],
            Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let scalar = types
            .iter()
            .any(|kind| matches!(*kind, "integer" | "number" | "boolean"));
        (scalar && !types.contains(&"string")).then(|| name.clone())
    })
}
