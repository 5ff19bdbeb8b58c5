//! The contract suite passes a well-behaved connector and catches each defect it
//! is meant to catch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use patchbay_core::operation::{self, Invocation, OperationSpec};
use patchbay_core::{
    AlertSeverity, AlertStatus, AuthKind, AuthRequest, Category, CheckTimer, Connector,
    ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, DynConnector, Error,
    ErrorKind, EventKind, InboundWebhook, NormalizedAlert, OperationDescriptor, QueryOutput,
    Result, SecretString, UnverifiedDelivery, ValidationReport, VerifiedDelivery, WebhookAuth,
    WebhookDescriptor, WebhookMethod, WebhookOutcome,
};
use patchbay_core::{OperationOutput, MAX_OUTPUT_BYTES};
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall, WebhookSigning};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const GOOD_TOKEN: &str = "toy-good-token-7c41a9";
const BAD_TOKEN: &str = "toy-bad-token-2e58f0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defect {
    None,
    SecretInConfig,
    SecretInError,
    AcceptsUnknownFields,
    UnknownOperationIsInternal,
    BadFormPassesValidation,
    EmptyDedupKey,
    /// `verify` vouches for every delivery without looking at it.
    VerifyAcceptsEverything,
    /// `verify` lets deliveries without a signature through.
    AcceptsUnsigned,
    /// The signature is checked over the body with trailing whitespace trimmed,
    /// not over the raw bytes.
    SignatureOverTrimmedBody,
    /// The signature is checked but the timestamp's age is not.
    IgnoresTimestampAge,
    /// A bad signature is refused with the wrong kind (a 400 instead of a 401).
    RefusesAsInvalidInput,
    /// Cursors are the provider's own, accepted from any connection.
    CursorNotChecked,
    /// A large answer is returned whole.
    OutputNotCapped,
}

/// The toy's paged operation.
const LIST_PAGES: OperationSpec = OperationSpec {
    name: "list_pages",
    description: "Lists the toy's two pages.",
    read_only: true,
    paged: true,
};

/// The toy's operation whose answer is larger than the output cap.
const GET_BLOB: OperationSpec = OperationSpec {
    name: "get_blob",
    description: "Returns a blob larger than the output cap.",
    read_only: true,
    paged: false,
};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PageParams {
    /// Items per page.
    #[serde(default)]
    #[allow(dead_code)]
    per_page: u32,
}

/// The header the toy's signed webhooks carry their signature in.
const SIGNATURE_HEADER: &str = "X-Toy-Signature";
/// The header the toy's signed webhooks carry their timestamp in.
const TIMESTAMP_HEADER: &str = "X-Toy-Timestamp";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoParams {
    /// How many echoes.
    #[serde(default)]
    #[allow(dead_code)]
    limit: u32,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct ToyForm {
    /// The token.
    token: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ToyConfig {
    label: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ToySecrets {
    token: SecretString,
}

/// The toy with per-connection token webhooks (the host checks the token).
static TOY_TOKEN: ConnectorDescriptor = toy_descriptor(WebhookAuth::Token {
    header: "X-Patchbay-Token",
});

/// The toy with signed webhooks: HMAC-SHA256 of `timestamp:body` under the connection's token.
static TOY_SIGNED: ConnectorDescriptor = toy_descriptor(WebhookAuth::Signature);

const fn toy_descriptor(auth: WebhookAuth) -> ConnectorDescriptor {
    ConnectorDescriptor {
        id: "toy",
        display_name: "Toy",
        category: Category::Observability,
        auth_kinds: &[AuthKind::ApiKey],
        env_vars: &[],
        feature_flag: None,
        disabled_message: None,
        webhook: Some(WebhookDescriptor {
            path: "/toy/webhook/{user_id}",
            methods: &[WebhookMethod::Post],
            auth,
        }),
        oauth: None,
        connect_schema: || schemars::schema_for!(ToyForm),
        operations: || {
            vec![
                OperationDescriptor::new::<EchoParams>("echo", "Echoes its parameters.", true),
                operation::describe::<PageParams>(&LIST_PAGES),
                operation::describe::<PageParams>(&GET_BLOB),
            ]
        },
        build: |_env: &ConnectorEnv| -> Result<Box<dyn DynConnector>> {
            Err(Error::internal("the toy is built directly by each test"))
        },
    }
}

fn toy_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Toy {
    defect: Defect,
    descriptor: &'static ConnectorDescriptor,
}

impl Toy {
    fn signed(defect: Defect) -> Self {
        Self {
            defect,
            descriptor: &TOY_SIGNED,
        }
    }

    fn token(defect: Defect) -> Self {
        Self {
            defect,
            descriptor: &TOY_TOKEN,
        }
    }

    /// The toy's signature check; each webhook defect weakens one part of it.
    fn check_signature(&self, secret: &str, request: &InboundWebhook) -> Result<()> {
        let refused = |message: &str| {
            let kind = if self.defect == Defect::RefusesAsInvalidInput {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::AuthFailed
            };
            Err(Error::new(kind, message).with_connector("toy"))
        };
        let Some(signature) = request.header(SIGNATURE_HEADER) else {
            return if self.defect == Defect::AcceptsUnsigned {
                Ok(())
            } else {
                refused("no signature")
            };
        };
        let Some(timestamp) = request.header(TIMESTAMP_HEADER) else {
            return refused("no timestamp");
        };
        let Ok(seconds) = timestamp.parse::<i64>() else {
            return refused("the timestamp is not Unix seconds");
        };
        if self.defect != Defect::IgnoresTimestampAge && (now_seconds() - seconds).abs() > 300 {
            return refused("the timestamp is more than 300 seconds away");
        }
        let signed_body: &[u8] = if self.defect == Defect::SignatureOverTrimmedBody {
            request.body.trim_ascii_end()
        } else {
            &request.body
        };
        if toy_signature(secret, timestamp, signed_body) == signature {
            Ok(())
        } else {
            refused("the signature does not match")
        }
    }
}

#[async_trait]
impl Connector for Toy {
    type Config = ToyConfig;
    type Secrets = ToySecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        self.descriptor
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<ToyConfig, ToySecrets>> {
        let AuthRequest::Form(fields) = request else {
            return Err(Error::unsupported("form only"));
        };
        let token = fields
            .0
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            let message = if self.defect == Defect::SecretInError {
                format!("token required (got form with {})", GOOD_TOKEN)
            } else {
                "token is required".to_owned()
            };
            return Err(Error::invalid_config("token", message));
        }
        let label = if self.defect == Defect::SecretInConfig {
            format!("token {token}")
        } else {
            "toy".to_owned()
        };
        Ok(Credentials::new(
            ToyConfig { label },
            ToySecrets {
                token: token.into(),
            },
        ))
    }

    async fn validate(
        &self,
        _ctx: &ConnectorContext,
        credentials: &mut Credentials<ToyConfig, ToySecrets>,
    ) -> Result<ValidationReport> {
        let accepted = credentials.secrets.token.expose() == GOOD_TOKEN
            || self.defect == Defect::BadFormPassesValidation;
        let result = if accepted {
            Ok("accepted".to_owned())
        } else {
            Err(Error::new(
                patchbay_core::ErrorKind::AuthFailed,
                "token rejected",
            ))
        };
        Ok(ValidationReport::new(
            "toy",
            vec![CheckTimer::start().finish("token", "The token is accepted", true, result)],
        ))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        _credentials: &Credentials<ToyConfig, ToySecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        if operation == LIST_PAGES.name {
            return self.list_pages(ctx, params);
        }
        if operation == GET_BLOB.name {
            let blob = json!({"blob": "b".repeat(MAX_OUTPUT_BYTES + 1024)});
            if self.defect == Defect::OutputNotCapped {
                return Ok(QueryOutput {
                    data: blob,
                    truncated: false,
                    next_cursor: None,
                });
            }
            let invocation = Invocation::new("toy", ctx, operation, params);
            invocation.parse::<PageParams>(&GET_BLOB)?;
            return invocation.finish(&GET_BLOB, OperationOutput::new(blob));
        }
        if operation != "echo" {
            return Err(if self.defect == Defect::UnknownOperationIsInternal {
                Error::internal("no such operation")
            } else {
                Error::not_found(format!("unknown operation `{operation}` for toy"))
            });
        }
        if self.defect != Defect::AcceptsUnknownFields {
            patchbay_core::parse_params::<EchoParams>("toy", operation, params.clone())?;
        }
        Ok(QueryOutput {
            data: params,
            truncated: false,
            next_cursor: None,
        })
    }

    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<ToyConfig, ToySecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        if self.defect != Defect::VerifyAcceptsEverything {
            let secret = credentials.map_or("", |credentials| {
                credentials.secrets.token.expose().as_str()
            });
            self.check_signature(secret, delivery.request())?;
        }
        Ok(delivery.mark_verified())
    }

    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &ToyConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        let raw: Value = serde_json::from_slice(delivery.body())?;
        let id = raw["id"].as_str().unwrap_or_default().to_owned();
        Ok(WebhookOutcome {
            events: vec![NormalizedAlert {
                source: "toy".to_owned(),
                kind: EventKind::Alert,
                external_id: id.clone(),
                dedup_key: if self.defect == Defect::EmptyDedupKey {
                    String::new()
                } else {
                    id
                },
                title: "toy alert".to_owned(),
                status: AlertStatus::Firing,
                severity: AlertSeverity::Low,
                service: None,
                started_at: None,
                ended_at: None,
                url: None,
                labels: BTreeMap::new(),
                tags: Vec::new(),
                raw,
            }],
            reply: None,
        })
    }
}

impl Toy {
    /// Two pages; the second is reached with the first's cursor.
    fn list_pages(&self, ctx: &ConnectorContext, params: Value) -> Result<QueryOutput> {
        if self.defect == Defect::CursorNotChecked {
            let page = params.get("cursor").and_then(Value::as_str).unwrap_or("1");
            return Ok(QueryOutput {
                data: json!({ "page": page }),
                truncated: false,
                next_cursor: (page == "1").then(|| "2".to_owned()),
            });
        }
        let invocation = Invocation::new("toy", ctx, LIST_PAGES.name, params);
        let (_, cursor) = invocation.parse::<PageParams>(&LIST_PAGES)?;
        let page = cursor.unwrap_or_else(|| "1".to_owned());
        let next = (page == "1").then(|| "2".to_owned());
        invocation.finish(
            &LIST_PAGES,
            OperationOutput::new(json!({ "page": page })).with_next_page(next),
        )
    }
}

const SAMPLE_BODY: &[u8] = br#"{"id": "evt-1"}"#;

fn case_for(
    toy: Toy,
    webhook_samples: Vec<InboundWebhook>,
    signing: Option<WebhookSigning>,
) -> ContractCase {
    ContractCase {
        connector: Arc::new(toy),
        good_form: json!({"token": GOOD_TOKEN}),
        bad_form: json!({"token": BAD_TOKEN}),
        invalid_form: json!({"token": ""}),
        operation_params: BTreeMap::from([
            ("echo".to_owned(), json!({"limit": 2})),
            ("list_pages".to_owned(), json!({"per_page": 1})),
            ("get_blob".to_owned(), json!({})),
        ]),
        webhook_samples,
        webhook_signing: signing,
        canaries: vec![GOOD_TOKEN.to_owned(), BAD_TOKEN.to_owned()],
        paging: Some(OperationCall::new("list_pages", json!({"per_page": 1}))),
        oversized: Some(OperationCall::new("get_blob", json!({}))),
    }
}

/// The toy with signed webhooks and one good sample, signed now with the good token.
fn case(defect: Defect) -> ContractCase {
    let timestamp = now_seconds().to_string();
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&timestamp).unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&toy_signature(GOOD_TOKEN, &timestamp, SAMPLE_BODY)).unwrap(),
    );
    let sample = InboundWebhook {
        headers,
        body: Bytes::from_static(SAMPLE_BODY),
    };
    let signing = WebhookSigning {
        signature_header: SIGNATURE_HEADER,
        timestamp_header: Some(TIMESTAMP_HEADER),
        sign: Box::new(|request: &InboundWebhook| {
            toy_signature(
                GOOD_TOKEN,
                request.header(TIMESTAMP_HEADER).unwrap_or_default(),
                &request.body,
            )
        }),
    };
    case_for(Toy::signed(defect), vec![sample], Some(signing))
}

/// The toy with token webhooks: its sample carries no token (the suite adds it).
fn token_case(defect: Defect) -> ContractCase {
    let sample = InboundWebhook {
        headers: HeaderMap::new(),
        body: Bytes::from_static(SAMPLE_BODY),
    };
    case_for(Toy::token(defect), vec![sample], None)
}

/// Runs the suite on its own task and returns its panic message, if any.
async fn failure_of(case: ContractCase) -> Option<String> {
    let outcome = tokio::spawn(run_contract_suite(case)).await;
    match outcome {
        Ok(()) => None,
        Err(error) => {
            let payload = error.into_panic();
            Some(
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| {
                        payload
                            .downcast_ref::<&str>()
                            .map(|text| (*text).to_owned())
                    })
                    .unwrap_or_default(),
            )
        }
    }
}

#[tokio::test]
async fn a_well_behaved_connector_passes() {
    assert_eq!(failure_of(case(Defect::None)).await, None);
    assert_eq!(failure_of(token_case(Defect::None)).await, None);
}

#[tokio::test]
#[should_panic(
    expected = "contract[toy]: verify accepted webhook sample 0 with a forged signature"
)]
async fn a_connector_whose_verify_accepts_everything_fails_the_suite() {
    run_contract_suite(case(Defect::VerifyAcceptsEverything)).await;
}

#[tokio::test]
async fn a_token_connector_cannot_skip_the_token_check() {
    // Its own verify is never consulted: the host's token check runs instead.
    assert_eq!(
        failure_of(token_case(Defect::VerifyAcceptsEverything)).await,
        None
    );
}

#[tokio::test]
async fn each_defect_is_caught_with_a_clear_message() {
    let cases = [
        (Defect::SecretInConfig, "config contains a secret value"),
        (
            Defect::SecretInError,
            "invalid_form error contains a secret value",
        ),
        (Defect::AcceptsUnknownFields, "accepted malformed params"),
        (Defect::UnknownOperationIsInternal, "must be not_found"),
        (
            Defect::BadFormPassesValidation,
            "validate(bad_form) must fail",
        ),
        (Defect::EmptyDedupKey, "empty dedup_key"),
        (
            Defect::VerifyAcceptsEverything,
            "verify accepted webhook sample 0 with a forged signature",
        ),
        (
            Defect::AcceptsUnsigned,
            "verify accepted webhook sample 0 with a missing signature",
        ),
        (
            Defect::SignatureOverTrimmedBody,
            "verify accepted webhook sample 0 with an altered body",
        ),
        (
            Defect::IgnoresTimestampAge,
            "verify accepted webhook sample 0 with a stale timestamp",
        ),
        (
            Defect::CursorNotChecked,
            "a cursor of one connection must be refused on another",
        ),
        (Defect::OutputNotCapped, "over the 262144-byte cap"),
        (
            Defect::RefusesAsInvalidInput,
            "with a forged signature as auth_failed (the host answers 401), got invalid_input",
        ),
    ];
    for (defect, expected) in cases {
        let message = failure_of(case(defect))
            .await
            .unwrap_or_else(|| panic!("{defect:?} was not caught"));
        assert!(message.contains("contract[toy]"), "{defect:?}: {message}");
        assert!(message.contains(expected), "{defect:?}: {message}");
        assert!(
            !message.contains(GOOD_TOKEN),
            "{defect:?}: the report must not echo the secret"
        );
    }
}
