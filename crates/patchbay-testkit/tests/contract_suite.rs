//! The contract suite passes a well-behaved connector and catches each defect it
//! is meant to catch.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use patchbay_core::{
    AlertSeverity, AlertStatus, AuthKind, AuthRequest, Category, CheckTimer, Connector,
    ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, DynConnector, Error,
    EventKind, InboundWebhook, NormalizedAlert, OperationDescriptor, QueryOutput, Result,
    SecretString, ValidationReport, WebhookAuth, WebhookDescriptor, WebhookOutcome,
};
use patchbay_testkit::contract::{run_contract_suite, ContractCase};
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
}

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

static TOY: ConnectorDescriptor = ConnectorDescriptor {
    id: "toy",
    display_name: "Toy",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/toy/webhook/{user_id}",
        auth: WebhookAuth::Token {
            header: "X-Patchbay-Token",
        },
    }),
    oauth: None,
    connect_schema: || schemars::schema_for!(ToyForm),
    operations: || {
        vec![OperationDescriptor::new::<EchoParams>(
            "echo",
            "Echoes its parameters.",
            true,
        )]
    },
    build: |_env: &ConnectorEnv| Ok(Box::new(Toy(Defect::None)) as Box<dyn DynConnector>),
};

struct Toy(Defect);

#[async_trait]
impl Connector for Toy {
    type Config = ToyConfig;
    type Secrets = ToySecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &TOY
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
            let message = if self.0 == Defect::SecretInError {
                format!("token required (got form with {})", GOOD_TOKEN)
            } else {
                "token is required".to_owned()
            };
            return Err(Error::invalid_config("token", message));
        }
        let label = if self.0 == Defect::SecretInConfig {
            format!("token {token}")
        } else {
            "toy".to_owned()
        };
        Ok(Credentials {
            config: ToyConfig { label },
            secrets: ToySecrets {
                token: token.into(),
            },
        })
    }

    async fn validate(
        &self,
        _ctx: &ConnectorContext,
        credentials: &mut Credentials<ToyConfig, ToySecrets>,
    ) -> Result<ValidationReport> {
        let accepted = credentials.secrets.token.expose() == GOOD_TOKEN
            || self.0 == Defect::BadFormPassesValidation;
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
        _ctx: &ConnectorContext,
        _credentials: &Credentials<ToyConfig, ToySecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        if operation != "echo" {
            return Err(if self.0 == Defect::UnknownOperationIsInternal {
                Error::internal("no such operation")
            } else {
                Error::not_found(format!("unknown operation `{operation}` for toy"))
            });
        }
        if self.0 != Defect::AcceptsUnknownFields {
            patchbay_core::parse_params::<EchoParams>("toy", operation, params.clone())?;
        }
        Ok(QueryOutput {
            data: params,
            truncated: false,
            next_cursor: None,
        })
    }

    async fn webhook(
        &self,
        _ctx: &ConnectorContext,
        _config: &ToyConfig,
        _secrets: Option<&ToySecrets>,
        request: &InboundWebhook,
    ) -> Result<WebhookOutcome> {
        let raw: Value = serde_json::from_slice(&request.body)?;
        let id = raw["id"].as_str().unwrap_or_default().to_owned();
        Ok(WebhookOutcome {
            events: vec![NormalizedAlert {
                source: "toy".to_owned(),
                kind: EventKind::Alert,
                external_id: id.clone(),
                dedup_key: if self.0 == Defect::EmptyDedupKey {
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

fn case(defect: Defect) -> ContractCase {
    ContractCase {
        connector: Arc::new(Toy(defect)),
        good_form: json!({"token": GOOD_TOKEN}),
        bad_form: json!({"token": BAD_TOKEN}),
        invalid_form: json!({"token": ""}),
        operation_params: BTreeMap::from([("echo".to_owned(), json!({"limit": 2}))]),
        webhook_samples: vec![InboundWebhook {
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"id": "evt-1"}"#),
        }],
        canaries: vec![GOOD_TOKEN.to_owned(), BAD_TOKEN.to_owned()],
    }
}

/// Runs the suite on its own task and returns its panic message, if any.
async fn failure_of(defect: Defect) -> Option<String> {
    let outcome = tokio::spawn(run_contract_suite(case(defect))).await;
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
    assert_eq!(failure_of(Defect::None).await, None);
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
    ];
    for (defect, expected) in cases {
        let message = failure_of(defect)
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
