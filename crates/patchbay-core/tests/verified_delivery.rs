//! `DynConnector::verify` is the only source of a `VerifiedDelivery`: token
//! webhooks are checked by core whatever the connector does, each style needs its
//! own key, and a delivery is normalised only for the connection it was verified for.

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use patchbay_core::{
    token_hash, AlertSeverity, AlertStatus, AuthKind, AuthRequest, Category, Connector,
    ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, DynConnector, Error,
    ErrorKind, EventKind, InboundWebhook, NormalizedAlert, QueryOutput, Result, RevealedJson,
    SecretString, UnverifiedDelivery, ValidationReport, VerifiedDelivery, WebhookAuth,
    WebhookDescriptor, WebhookKey, WebhookMethod, WebhookOutcome,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TOKEN: &str = "pbw_core-test-token";
const SIGNING_SECRET: &str = "core-test-signing-secret";

#[derive(Debug, Serialize, Deserialize)]
struct ToySecrets {
    secret: SecretString,
}

const fn descriptor(id: &'static str, auth: Option<WebhookAuth>) -> ConnectorDescriptor {
    ConnectorDescriptor {
        id,
        display_name: "Toy",
        category: Category::Observability,
        auth_kinds: &[AuthKind::ApiKey],
        env_vars: &[],
        feature_flag: None,
        disabled_message: None,
        webhook: match auth {
            Some(auth) => Some(WebhookDescriptor {
                path: "/toy/webhook/{user_id}",
                methods: &[WebhookMethod::Post],
                auth,
            }),
            None => None,
        },
        oauth: None,
        connect_schema: schemars::Schema::default,
        operations: Vec::new,
        build: |_: &ConnectorEnv| Err(Error::internal("built directly in tests")),
    }
}

static TOKEN_TOY: ConnectorDescriptor = descriptor(
    "toy",
    Some(WebhookAuth::Token {
        header: "X-Patchbay-Token",
    }),
);
static SIGNED_TOY: ConnectorDescriptor = descriptor("toy", Some(WebhookAuth::Signature));
static APP_TOY: ConnectorDescriptor = descriptor("toy", Some(WebhookAuth::App));
static OTHER_TOY: ConnectorDescriptor = descriptor("other", Some(WebhookAuth::App));
static SILENT_TOY: ConnectorDescriptor = descriptor("toy", None);

/// Verifies signed deliveries by an `x-toy-signature` equal to the connection's
/// secret (or, app-level, to a fixed app secret), except when told to accept all.
struct Toy {
    descriptor: &'static ConnectorDescriptor,
    accepts_everything: bool,
}

fn toy(descriptor: &'static ConnectorDescriptor) -> Toy {
    Toy {
        descriptor,
        accepts_everything: false,
    }
}

#[async_trait]
impl Connector for Toy {
    type Config = Value;
    type Secrets = ToySecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        self.descriptor
    }

    async fn authenticate(&self, _request: AuthRequest) -> Result<Credentials<Value, ToySecrets>> {
        Err(Error::unsupported("not used"))
    }

    async fn validate(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &mut Credentials<Value, ToySecrets>,
    ) -> Result<ValidationReport> {
        Err(Error::unsupported("not used"))
    }

    async fn query(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &Credentials<Value, ToySecrets>,
        _operation: &str,
        _params: Value,
    ) -> Result<QueryOutput> {
        Err(Error::unsupported("not used"))
    }

    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<Value, ToySecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        let expected = credentials.map_or(SIGNING_SECRET, |credentials| {
            credentials.secrets.secret.expose().as_str()
        });
        if self.accepts_everything || delivery.header("x-toy-signature") == Some(expected) {
            Ok(delivery.mark_verified())
        } else {
            Err(Error::new(ErrorKind::AuthFailed, "bad signature"))
        }
    }

    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &Value,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        let raw: Value = serde_json::from_slice(delivery.body())?;
        Ok(WebhookOutcome {
            events: vec![NormalizedAlert {
                source: "toy".to_owned(),
                kind: EventKind::Alert,
                external_id: "evt".to_owned(),
                dedup_key: "evt".to_owned(),
                title: "toy".to_owned(),
                status: AlertStatus::Firing,
                severity: AlertSeverity::Low,
                service: None,
                started_at: None,
                ended_at: None,
                url: None,
                labels: Default::default(),
                tags: Vec::new(),
                raw,
            }],
            reply: None,
        })
    }
}

fn request(headers: &[(&'static str, &str)]) -> InboundWebhook {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    InboundWebhook {
        headers: map,
        body: Bytes::from_static(b"{\"id\": 1}"),
    }
}

fn ctx(connection: Option<&str>) -> ConnectorContext {
    ConnectorContext {
        connection_id: connection.map(str::to_owned),
        tenant: None,
    }
}

fn secrets(secret: &str) -> RevealedJson {
    RevealedJson::new(json!({ "secret": secret }))
}

#[tokio::test]
async fn token_webhooks_are_checked_by_core_even_if_the_connector_accepts_everything() {
    let connector = Toy {
        descriptor: &TOKEN_TOY,
        accepts_everything: true,
    };
    let stored = token_hash(TOKEN);
    let key = WebhookKey::TokenHash(&stored);
    let delivery = DynConnector::verify(
        &connector,
        &ctx(Some("conn-1")),
        key,
        &request(&[("x-patchbay-token", TOKEN)]),
    )
    .await
    .unwrap();
    assert_eq!(delivery.connector(), "toy");
    assert_eq!(delivery.connection_id(), Some("conn-1"));
    for refused in [
        request(&[]),
        request(&[("x-patchbay-token", "pbw_not-the-token")]),
        request(&[("x-toy-signature", SIGNING_SECRET)]),
    ] {
        let error = DynConnector::verify(&connector, &ctx(Some("conn-1")), key, &refused)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AuthFailed, "{error}");
        assert_eq!(error.connector(), Some("toy"));
    }
}

#[tokio::test]
async fn signed_webhooks_are_verified_by_the_connector_with_the_connections_secrets() {
    let connector = toy(&SIGNED_TOY);
    let stored = secrets("conn-secret");
    let config = json!({});
    let key = WebhookKey::Connection {
        config: &config,
        secrets: &stored,
    };
    let good = request(&[("x-toy-signature", "conn-secret")]);
    DynConnector::verify(&connector, &ctx(Some("conn-1")), key, &good)
        .await
        .unwrap();
    let forged = request(&[("x-toy-signature", "another-secret")]);
    let error = DynConnector::verify(&connector, &ctx(Some("conn-1")), key, &forged)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);

    let malformed = RevealedJson::new(json!({ "secret": 42 }));
    let key = WebhookKey::Connection {
        config: &config,
        secrets: &malformed,
    };
    let error = DynConnector::verify(&connector, &ctx(Some("conn-1")), key, &good)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert!(
        error
            .message()
            .starts_with("stored secrets do not match the connector's shape"),
        "{error}"
    );
}

#[tokio::test]
async fn each_style_takes_only_its_own_key() {
    let stored_hash = token_hash(TOKEN);
    let stored = secrets(SIGNING_SECRET);
    let config = json!({});
    let connection = WebhookKey::Connection {
        config: &config,
        secrets: &stored,
    };
    let signed = request(&[
        ("x-toy-signature", SIGNING_SECRET),
        ("x-patchbay-token", TOKEN),
    ]);
    let mismatches = [
        (&SIGNED_TOY, WebhookKey::TokenHash(&stored_hash)),
        (&SIGNED_TOY, WebhookKey::App),
        (&APP_TOY, WebhookKey::TokenHash(&stored_hash)),
        (&APP_TOY, connection),
        (&TOKEN_TOY, WebhookKey::App),
        (&TOKEN_TOY, connection),
    ];
    for (descriptor, key) in mismatches {
        let error = DynConnector::verify(&toy(descriptor), &ctx(None), key, &signed)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal, "{key:?}: {error}");
    }
    let error = DynConnector::verify(&toy(&SILENT_TOY), &ctx(None), WebhookKey::App, &signed)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn a_delivery_is_normalised_only_for_the_connection_and_connector_that_verified_it() {
    let connector = toy(&SIGNED_TOY);
    let stored = secrets("conn-secret");
    let config = json!({});
    let key = WebhookKey::Connection {
        config: &config,
        secrets: &stored,
    };
    let good = request(&[("x-toy-signature", "conn-secret")]);
    let delivery = DynConnector::verify(&connector, &ctx(Some("conn-a")), key, &good)
        .await
        .unwrap();
    let outcome = DynConnector::normalize(&connector, &ctx(Some("conn-a")), &config, &delivery)
        .await
        .unwrap();
    assert_eq!(outcome.events[0].raw, json!({"id": 1}));
    for other in [ctx(Some("conn-b")), ctx(None)] {
        let error = DynConnector::normalize(&connector, &other, &config, &delivery)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal, "{error}");
    }

    // App-level deliveries are verified before routing names a connection.
    let app = toy(&APP_TOY);
    let app_request = request(&[("x-toy-signature", SIGNING_SECRET)]);
    let delivery = DynConnector::verify(&app, &ctx(None), WebhookKey::App, &app_request)
        .await
        .unwrap();
    assert_eq!(delivery.connection_id(), None);
    DynConnector::normalize(&app, &ctx(Some("routed")), &config, &delivery)
        .await
        .unwrap();
    let error = DynConnector::normalize(&toy(&OTHER_TOY), &ctx(None), &config, &delivery)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal, "{error}");
}
