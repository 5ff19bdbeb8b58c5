//! One target per connector that receives webhooks: a delivery (see
//! [`crate::delivery`]) goes through `verify` as received, then again signed with
//! the connection's secret so the fuzzer reaches `normalize` with any body.
//!
//! Each connection uses the secret of the provider's published signature example,
//! so the official vectors in the seed corpus verify as they are.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patchbay_core::slots::with_webhook_secret;
use patchbay_core::{
    token_hash, AuthRequest, DynConnector, DynCredentials, FormFields, InboundWebhook,
    SecretString, VerifiedDelivery, WebhookKey, WebhookRoute,
};
use serde_json::{json, Value};

use crate::delivery::{self, with_header};
use crate::harness::{self, check_outcome, check_refusal, context, run};

/// GitHub's documented webhook secret (`X-Hub-Signature-256` example).
pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// The subscription secret of go-pagerduty's signature test.
pub const PAGERDUTY_SECRET: &str =
    "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK";
/// Slack's documented signing secret (request-signing example).
pub const SLACK_SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The time of Slack's documented example request, which the Slack target's clock shows.
pub const SLACK_EXAMPLE_TIME: u64 = 1_531_420_618;
/// The secret of Grafana's documented payload signed in the fixture's vector.
pub const GRAFANA_SECRET: &str = "grafana-test-secret";
/// The timestamp header of the Grafana connection that signs timestamps.
pub const GRAFANA_TIMESTAMP_HEADER: &str = "X-Grafana-Alerting-Timestamp";
/// The webhook token of the Datadog and Netdata connections.
pub const WEBHOOK_TOKEN: &str = "pbw_fuzz-webhook-token";

/// What a connection checks deliveries against.
enum Credential {
    /// A `Token` webhook: the stored hash of [`WEBHOOK_TOKEN`].
    TokenHash(String),
    /// A `Signature` or `ProviderSignature` webhook: the connection's settings and secrets.
    Connection(DynCredentials),
    /// An app-level webhook, routed afterwards by the named settings field.
    App {
        /// The settings field holding the routing key (`team_id`).
        routing_field: &'static str,
    },
}

/// Makes a request into the one the provider would send with the connection's secret.
type Signer = Box<dyn Fn(&InboundWebhook) -> Option<InboundWebhook> + Send + Sync>;
/// Says whether a request carries the credential the provider would compute.
type Genuine = Box<dyn Fn(&InboundWebhook) -> bool + Send + Sync>;

/// A connection of one connector that receives deliveries.
pub(crate) struct Receiver {
    /// The connector's id.
    pub(crate) id: &'static str,
    connector: Box<dyn DynConnector>,
    credential: Credential,
    /// The settings `normalize` reads.
    config: Value,
    /// The request as the provider would send this body with the connection's
    /// secret; `None` when the scheme refuses it whatever its signature.
    sign: Signer,
    /// Whether a request carries the credential the provider would compute: a
    /// delivery `verify` accepts must.
    pub(crate) genuine: Genuine,
}

impl Receiver {
    pub(crate) fn verify(
        &self,
        request: &InboundWebhook,
    ) -> patchbay_core::Result<VerifiedDelivery> {
        let key = match &self.credential {
            Credential::TokenHash(hash) => WebhookKey::TokenHash(hash),
            Credential::Connection(credentials) => WebhookKey::Connection {
                config: &credentials.config,
                secrets: &credentials.secrets,
            },
            Credential::App { .. } => WebhookKey::App,
        };
        run(self.connector.verify(&context(), key, request))
    }

    fn normalize(&self, delivery: &VerifiedDelivery) {
        let mut config = self.config.clone();
        if let Credential::App { routing_field } = self.credential {
            match run(self.connector.route_webhook(delivery)) {
                Ok(WebhookRoute::Reply(_)) => return,
                Ok(WebhookRoute::Connection(key)) => {
                    assert!(!key.is_empty(), "{}: routed to an empty key", self.id);
                    config[routing_field] = Value::String(key);
                }
                Err(error) => {
                    check_outcome(self.id, Err(error));
                    return;
                }
            }
        }
        check_outcome(
            self.id,
            run(self.connector.normalize(&context(), &config, delivery)),
        );
    }

    /// The target's body: the delivery as received, then signed.
    pub(crate) fn check(&self, data: &[u8]) {
        let request = delivery::read(data);
        match self.verify(&request) {
            Ok(verified) => {
                assert!(
                    (self.genuine)(&request),
                    "{}: verified a delivery without the connection's credential",
                    self.id
                );
                self.normalize(&verified);
            }
            Err(error) => check_refusal(self.id, &error),
        }
        if let Some(signed) = (self.sign)(&request) {
            let verified = self.verify(&signed).unwrap_or_else(|error| {
                panic!(
                    "{}: a delivery signed with the connection's secret was refused: {error}",
                    self.id
                )
            });
            self.normalize(&verified);
        }
    }
}

/// The credentials `form` connects with, with `webhook_secret` as the host's webhook key.
fn connection(
    connector: &dyn DynConnector,
    form: Value,
    webhook_secret: Option<&str>,
) -> DynCredentials {
    let Value::Object(fields) = form else {
        unreachable!("connect forms are objects")
    };
    let mut credentials = run(connector.authenticate(AuthRequest::Form(FormFields(fields))))
        .unwrap_or_else(|error| {
            panic!(
                "{}: the target's connect form is refused: {error}",
                connector.descriptor().id
            )
        });
    if let Some(secret) = webhook_secret {
        credentials.secrets =
            with_webhook_secret(&credentials.secrets, &SecretString::from(secret));
    }
    credentials
}

/// Whether any header value holds `digest` (lowercase hex), in any case.
fn carries_digest(request: &InboundWebhook, digest: &str) -> bool {
    request.headers.values().any(|value| {
        value
            .to_str()
            .is_ok_and(|value| value.to_ascii_lowercase().contains(digest))
    })
}

/// The digest part of a `prefix=<hex>` signature.
fn digest_of(signature: &str) -> &str {
    signature
        .split_once('=')
        .map_or(signature, |(_, digest)| digest)
}

pub(crate) static GITHUB: LazyLock<Receiver> = LazyLock::new(|| {
    use patchbay_connector_github::webhook::{sign, SIGNATURE_HEADER};
    let connector = harness::build(&patchbay_connector_github::DESCRIPTOR);
    let credentials = connection(
        connector.as_ref(),
        json!({"token": "ghp_fuzz"}),
        Some(GITHUB_SECRET),
    );
    Receiver {
        id: patchbay_connector_github::CONNECTOR_ID,
        config: credentials.config.clone(),
        connector,
        credential: Credential::Connection(credentials),
        sign: Box::new(|request| {
            let signature = sign(GITHUB_SECRET.as_bytes(), &request.body);
            Some(with_header(request, SIGNATURE_HEADER, &signature))
        }),
        genuine: Box::new(|request| {
            let signature = sign(GITHUB_SECRET.as_bytes(), &request.body);
            carries_digest(request, digest_of(&signature))
        }),
    }
});

pub(crate) static PAGERDUTY: LazyLock<Receiver> = LazyLock::new(|| {
    use patchbay_connector_pagerduty::webhook::{sign, SIGNATURE_HEADER};
    let connector = harness::build(&patchbay_connector_pagerduty::DESCRIPTOR);
    let credentials = connection(
        connector.as_ref(),
        json!({"api_token": "u+fuzz-api-token", "webhook_secret": PAGERDUTY_SECRET}),
        None,
    );
    Receiver {
        id: patchbay_connector_pagerduty::CONNECTOR_ID,
        config: credentials.config.clone(),
        connector,
        credential: Credential::Connection(credentials),
        // PagerDuty never signs an empty body, and the connector refuses one.
        sign: Box::new(|request| {
            (!request.body.is_empty()).then(|| {
                let signature = sign(PAGERDUTY_SECRET, &request.body);
                with_header(request, SIGNATURE_HEADER, &signature)
            })
        }),
        genuine: Box::new(|request| {
            let signature = sign(PAGERDUTY_SECRET, &request.body);
            carries_digest(request, digest_of(&signature))
        }),
    }
});

/// The Slack target's clock: the time of Slack's documented example.
fn slack_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SLACK_EXAMPLE_TIME)
}

pub(crate) static SLACK: LazyLock<Receiver> = LazyLock::new(|| {
    use patchbay_connector_slack::webhook::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
    let secret = SecretString::from(SLACK_SIGNING_SECRET);
    let connector = patchbay_connector_slack::SlackConnector::with_clock(
        harness::http_client(),
        Some(secret.clone()),
        Arc::new(slack_now),
    );
    let signing_secret = secret.clone();
    Receiver {
        id: patchbay_connector_slack::CONNECTOR_ID,
        connector: Box::new(connector),
        credential: Credential::App {
            routing_field: "team_id",
        },
        config: json!({"team_id": "T123ABC456", "bot_user_id": "U0LAN0Z89"}),
        sign: Box::new(move |request| {
            let timestamp = SLACK_EXAMPLE_TIME.to_string();
            let signed = with_header(request, TIMESTAMP_HEADER, &timestamp);
            let value = signature(&signing_secret, &timestamp, &signed.body);
            Some(with_header(&signed, SIGNATURE_HEADER, &value))
        }),
        genuine: Box::new(move |request| {
            let timestamp = request.header(TIMESTAMP_HEADER).unwrap_or_default().trim();
            let value = signature(&secret, timestamp, &request.body);
            carries_digest(request, digest_of(&value))
        }),
    }
});

/// The current time in Unix seconds, as Grafana's signed timestamps give it.
fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The signature Grafana computes for `request` under `secret`, over the
/// timestamp header's value too when `timestamped`.
fn grafana_signature(secret: &str, timestamped: bool, request: &InboundWebhook) -> String {
    let timestamp = timestamped.then(|| {
        request
            .header(GRAFANA_TIMESTAMP_HEADER)
            .unwrap_or_default()
            .trim()
    });
    patchbay_connector_grafana::webhook::sign(secret.as_bytes(), timestamp, &request.body)
}

/// A Grafana connection with webhook secret `secret`, authenticating deliveries as
/// `webhook_form` says (the `webhook_auth`, `timestamp_header` connect fields).
pub(crate) fn grafana(webhook_form: Value, secret: &str) -> Receiver {
    use patchbay_connector_grafana::config::DEFAULT_SIGNATURE_HEADER;
    let connector = harness::build(&patchbay_connector_grafana::DESCRIPTOR);
    let mut form = json!({"base_url": "https://acme.grafana.net", "api_token": "glsa_fuzz"});
    if let (Value::Object(form), Value::Object(extra)) = (&mut form, webhook_form) {
        form.extend(extra);
    }
    let credentials = connection(connector.as_ref(), form, Some(secret));
    let bearer = credentials.config["webhook_auth"] == "bearer";
    let timestamped = credentials.config["timestamp_header"].is_string();
    let signing_secret = secret.to_owned();
    let secret = secret.to_owned();
    Receiver {
        id: patchbay_connector_grafana::CONNECTOR_ID,
        config: credentials.config.clone(),
        connector,
        credential: Credential::Connection(credentials),
        sign: Box::new(move |request| {
            if bearer {
                let credential = format!("Bearer {signing_secret}");
                return Some(with_header(request, "Authorization", &credential));
            }
            let mut request = request.clone();
            if timestamped {
                request = with_header(&request, GRAFANA_TIMESTAMP_HEADER, &unix_now().to_string());
            }
            let signature = grafana_signature(&signing_secret, timestamped, &request);
            Some(with_header(&request, DEFAULT_SIGNATURE_HEADER, &signature))
        }),
        genuine: Box::new(move |request| {
            if bearer {
                carries_digest(request, &secret.to_ascii_lowercase())
            } else {
                carries_digest(request, &grafana_signature(&secret, timestamped, request))
            }
        }),
    }
}

static GRAFANA: LazyLock<[Receiver; 3]> = LazyLock::new(|| {
    [
        grafana(json!({"webhook_auth": "hmac"}), GRAFANA_SECRET),
        grafana(
            json!({"webhook_auth": "hmac", "timestamp_header": GRAFANA_TIMESTAMP_HEADER}),
            GRAFANA_SECRET,
        ),
        grafana(json!({"webhook_auth": "bearer"}), GRAFANA_SECRET),
    ]
});

/// A `Token` webhook connection of `descriptor`, connected with `form`.
fn token_receiver(
    descriptor: &'static patchbay_core::ConnectorDescriptor,
    header: &'static str,
    form: Value,
) -> Receiver {
    let connector = harness::build(descriptor);
    let credentials = connection(connector.as_ref(), form, None);
    Receiver {
        id: descriptor.id,
        config: credentials.config,
        connector,
        credential: Credential::TokenHash(token_hash(WEBHOOK_TOKEN)),
        sign: Box::new(move |request| {
            let value = patchbay_core::token_header_value(header, WEBHOOK_TOKEN);
            Some(with_header(request, header, &value))
        }),
        genuine: Box::new(|request| carries_digest(request, WEBHOOK_TOKEN)),
    }
}

static DATADOG: LazyLock<Receiver> = LazyLock::new(|| {
    token_receiver(
        &patchbay_connector_datadog::DESCRIPTOR,
        patchbay_connector_datadog::WEBHOOK_TOKEN_HEADER,
        json!({"api_key": "fuzz-api-key", "app_key": "fuzz-app-key"}),
    )
});

static NETDATA: LazyLock<Receiver> = LazyLock::new(|| {
    token_receiver(
        &patchbay_connector_netdata::DESCRIPTOR,
        patchbay_connector_netdata::WEBHOOK_TOKEN_HEADER,
        json!({"api_token": "fuzz-api-token", "space_name": "Fuzz Space"}),
    )
});

/// GitHub: `X-Hub-Signature-256` over the body, then change events.
pub fn webhook_github(data: &[u8]) {
    GITHUB.check(data);
}

/// PagerDuty: `X-PagerDuty-Signature` entries under the provider-issued secrets,
/// then incident alerts.
pub fn webhook_pagerduty(data: &[u8]) {
    PAGERDUTY.check(data);
}

/// Slack: the app-level `v0` signature and timestamp window, routing by team,
/// then mentions and challenges.
pub fn webhook_slack(data: &[u8]) {
    SLACK.check(data);
}

/// Grafana: HMAC without and with a signed timestamp, and bearer, then one alert
/// per `alerts[]` element.
pub fn webhook_grafana(data: &[u8]) {
    for receiver in GRAFANA.iter() {
        receiver.check(data);
    }
}

/// Datadog: the host's token check, then the default or custom payload template.
pub fn webhook_datadog(data: &[u8]) {
    DATADOG.check(data);
}

/// Netdata: the bearer token check, then payload versions 1 and 2.
pub fn webhook_netdata(data: &[u8]) {
    NETDATA.check(data);
}

/// Whether any webhook target's connection would accept `data` as received; for
/// the replay test, which checks the official signature examples still verify.
pub fn verifies_as_received(target: &str, data: &[u8]) -> bool {
    let request = delivery::read(data);
    let receivers: Vec<&Receiver> = match target {
        "webhook_github" => vec![&GITHUB],
        "webhook_pagerduty" => vec![&PAGERDUTY],
        "webhook_slack" => vec![&SLACK],
        "webhook_grafana" => GRAFANA.iter().collect(),
        "webhook_datadog" => vec![&DATADOG],
        "webhook_netdata" => vec![&NETDATA],
        _ => Vec::new(),
    };
    receivers
        .iter()
        .any(|receiver| receiver.verify(&request).is_ok())
}
