//! Inbound webhook deliveries: verifying where they come from, then what a
//! connector makes of them.
//!
//! A delivery arrives as an [`InboundWebhook`]. [`crate::DynConnector::verify`]
//! proves its origin and is the only way to obtain a [`VerifiedDelivery`], the one
//! input `route_webhook` and `normalize` accept, so nothing is routed, normalised
//! or stored from a delivery that was not verified.

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::alert::NormalizedAlert;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::RevealedJson;

/// A webhook delivery as received: headers and the raw body (signatures cover raw bytes).
#[derive(Clone)]
pub struct InboundWebhook {
    /// Request headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl InboundWebhook {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Header values carry tokens and signatures, so only names and the body's size print.
fn describe<'a, 'b>(
    f: &'a mut fmt::Formatter<'b>,
    name: &str,
    request: &InboundWebhook,
) -> fmt::DebugStruct<'a, 'b> {
    let mut debug = f.debug_struct(name);
    debug
        .field(
            "headers",
            &request
                .headers
                .keys()
                .map(|key| key.as_str())
                .collect::<Vec<_>>(),
        )
        .field("body", &format_args!("{} bytes", request.body.len()));
    debug
}

impl fmt::Debug for InboundWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, "InboundWebhook", self).finish()
    }
}

/// What a delivery is checked against, by the connector's [`crate::WebhookAuth`] style.
#[derive(Clone, Copy)]
pub enum WebhookKey<'a> {
    /// `Token` webhooks: the SHA-256 (hex) of the connection's token, as stored
    /// (see [`token_hash`]).
    TokenHash(&'a str),
    /// `Signature` webhooks: the connection's stored settings and secrets.
    Connection {
        /// Non-secret settings.
        config: &'a serde_json::Value,
        /// Secrets, holding the signing secret.
        secrets: &'a RevealedJson,
    },
    /// `App` webhooks: the connector checks the app-wide signature with its own
    /// configuration; the connection is found afterwards, by routing key.
    App,
}

impl WebhookKey<'_> {
    /// The style this key serves, for error messages.
    pub(crate) fn style(&self) -> &'static str {
        match self {
            Self::TokenHash(_) => "token",
            Self::Connection { .. } => "signature",
            Self::App => "app",
        }
    }
}

impl fmt::Debug for WebhookKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookKey::{}", self.style())
    }
}

/// A delivery whose origin was not yet proven, handed to [`crate::Connector::verify`].
///
/// It reads like the request, and [`UnverifiedDelivery::mark_verified`] is the
/// only way to turn it into a [`VerifiedDelivery`]. Only this crate creates one.
pub struct UnverifiedDelivery {
    request: InboundWebhook,
    connector: &'static str,
    connection_id: Option<String>,
}

impl UnverifiedDelivery {
    pub(crate) fn new(
        connector: &'static str,
        connection_id: Option<String>,
        request: InboundWebhook,
    ) -> Self {
        Self {
            request,
            connector,
            connection_id,
        }
    }

    /// The request as received, to check.
    pub fn request(&self) -> &InboundWebhook {
        &self.request
    }

    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.header(name)
    }

    /// The raw body, exactly as received.
    pub fn body(&self) -> &Bytes {
        &self.request.body
    }

    /// Vouches for this delivery. Call it only after checking its signature (and
    /// timestamp, where the scheme has one) against the raw request; everything
    /// after it trusts the delivery.
    pub fn mark_verified(self) -> VerifiedDelivery {
        VerifiedDelivery {
            request: self.request,
            connector: self.connector,
            connection_id: self.connection_id,
        }
    }
}

impl fmt::Debug for UnverifiedDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, "UnverifiedDelivery", &self.request)
            .field("connector", &self.connector)
            .field("connection_id", &self.connection_id)
            .finish()
    }
}

/// A delivery whose origin `verify` proved: the only input routing and normalising take.
///
/// It has no public constructor: it comes from [`crate::DynConnector::verify`],
/// through the host's token check or a connector's
/// [`UnverifiedDelivery::mark_verified`]. It remembers the connector and the
/// connection it was verified for, so it cannot be normalised for another.
pub struct VerifiedDelivery {
    request: InboundWebhook,
    connector: &'static str,
    connection_id: Option<String>,
}

impl VerifiedDelivery {
    /// The request as received.
    pub fn request(&self) -> &InboundWebhook {
        &self.request
    }

    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.header(name)
    }

    /// The raw body, exactly as received.
    pub fn body(&self) -> &Bytes {
        &self.request.body
    }

    /// The connector that verified it.
    pub fn connector(&self) -> &'static str {
        self.connector
    }

    /// The connection whose credential verified it; `None` for app-level deliveries,
    /// which an app-wide secret verifies before they are routed.
    pub fn connection_id(&self) -> Option<&str> {
        self.connection_id.as_deref()
    }
}

impl fmt::Debug for VerifiedDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, "VerifiedDelivery", &self.request)
            .field("connector", &self.connector)
            .field("connection_id", &self.connection_id)
            .finish()
    }
}

/// SHA-256 (hex) of a webhook token: what the host stores instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a `Token` webhook's header is `Authorization`, which then carries the
/// token with the `Bearer` scheme (for providers whose webhook settings offer a
/// bearer token rather than a custom header).
pub fn is_bearer_header(header: &str) -> bool {
    header.eq_ignore_ascii_case("authorization")
}

/// The value a provider sends in `header` to present `token`: `Bearer <token>` for
/// the `Authorization` header, the bare token for any other header.
pub fn token_header_value(header: &str, token: &str) -> String {
    if is_bearer_header(header) {
        format!("Bearer {token}")
    } else {
        token.to_owned()
    }
}

/// The credential of an `Authorization` header that uses the `Bearer` scheme.
fn bearer_credential(request: &InboundWebhook) -> Option<&str> {
    let value = request.header("authorization")?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credential)
}

/// The token a delivery presents: the `header` the provider was told to send, or
/// `Authorization: Bearer`. When `header` is `Authorization` itself, only a
/// `Bearer` credential counts.
fn presented_token<'a>(request: &'a InboundWebhook, header: &str) -> Option<&'a str> {
    let presented = if is_bearer_header(header) {
        bearer_credential(request)
    } else {
        request
            .header(header)
            .or_else(|| bearer_credential(request))
    };
    presented.map(str::trim).filter(|token| !token.is_empty())
}

/// Verifies a `Token` webhook: the presented token must hash to `stored_hash`,
/// compared in constant time. Every token connector goes through this one check.
pub(crate) fn verify_token(
    header: &str,
    stored_hash: &str,
    delivery: UnverifiedDelivery,
) -> Result<VerifiedDelivery> {
    let matches = presented_token(&delivery.request, header).is_some_and(|token| {
        bool::from(
            token_hash(token)
                .as_bytes()
                .ct_eq(stored_hash.trim().as_bytes()),
        )
    });
    if matches {
        Ok(delivery.mark_verified())
    } else {
        Err(Error::new(
            ErrorKind::AuthFailed,
            format!("the delivery's {header} token is missing or does not match"),
        )
        .with_connector(delivery.connector)
        .with_field(header)
        .with_hint(if is_bearer_header(header) {
            "send `Authorization: Bearer <token>` with the token shown when the connection was made"
                .to_owned()
        } else {
            format!("send the {header} header with the token shown when the connection was made")
        }))
    }
}

/// An answer the provider expects instead of a plain acknowledgement (a ping, a challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    /// HTTP status.
    pub status: u16,
    /// Content type of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// What a connector made of one delivery.
#[derive(Debug, Clone, Default)]
pub struct WebhookOutcome {
    /// Events to store durably before acknowledging.
    pub events: Vec<WebhookEvent>,
    /// A special answer, if the provider expects one.
    pub reply: Option<WebhookReply>,
}

/// An event to store; an alias kept short for connector code.
pub type WebhookEvent = NormalizedAlert;

/// Where an app-level delivery goes, as the connector decided from the verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookRoute {
    /// Answer directly, without a connection (a URL-verification challenge).
    Reply(WebhookReply),
    /// Hand it to the connection whose routing key is this (a Slack team id).
    Connection(String),
}

/// What a person enters in the provider's webhook settings for one connection,
/// field by field, shown with the connect answer beside the URL and the credential.
///
/// A connector gives it through [`crate::Connector::webhook_setup`] when its
/// provider's settings hold more than a URL and a secret (an HTTP method, a header
/// name, an authorization scheme). The connector never sees the credential: it
/// names where it goes with [`SetupValue::Credential`] and the host fills it in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookSetup {
    /// Where the settings are in the provider's UI, e.g.
    /// "Grafana: Alerting > Contact points > + Add contact point, Integration: Webhook".
    pub location: String,
    /// The settings, in the order the provider's form shows them.
    pub fields: Vec<WebhookSetupField>,
    /// What else to do once the settings are saved.
    pub steps: Vec<String>,
}

/// One setting of the provider's webhook form and the value to enter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookSetupField {
    /// The setting's name as the provider's form labels it ("HTTP Method").
    pub name: String,
    /// What to enter.
    pub value: SetupValue,
}

impl WebhookSetupField {
    /// A setting whose value is `text`.
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: SetupValue::Text(text.into()),
        }
    }

    /// A setting whose value is the connection's webhook URL.
    pub fn url(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: SetupValue::WebhookUrl,
        }
    }

    /// A setting whose value is the connection's webhook token or secret.
    pub fn credential(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: SetupValue::Credential,
        }
    }
}

/// The value of a [`WebhookSetupField`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum SetupValue {
    /// Literal text, such as `POST` or a header name.
    Text(String),
    /// The connection's webhook URL, filled in by the host.
    WebhookUrl,
    /// The connection's webhook token or signing secret, filled in by the host
    /// where it is shown (once, at connect and on rotation).
    Credential,
}

impl WebhookSetup {
    /// The setup as a person reads it: `{location, fields: [{name, value}], steps}`,
    /// with the webhook URL filled in and the credential filled in where `credential`
    /// is given (otherwise `null`).
    pub fn render(&self, url: &str, credential: Option<&str>) -> serde_json::Value {
        let fields: Vec<serde_json::Value> = self
            .fields
            .iter()
            .map(|field| {
                let value = match &field.value {
                    SetupValue::Text(text) => serde_json::Value::String(text.clone()),
                    SetupValue::WebhookUrl => serde_json::Value::String(url.to_owned()),
                    SetupValue::Credential => credential
                        .map(|credential| serde_json::Value::String(credential.to_owned()))
                        .unwrap_or(serde_json::Value::Null),
                };
                serde_json::json!({ "name": field.name, "value": value })
            })
            .collect();
        serde_json::json!({
            "location": self.location,
            "fields": fields,
            "steps": self.steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_setup_renders_the_url_and_fills_the_credential_only_where_given() {
        let setup = WebhookSetup {
            location: "Acme > Webhooks".to_owned(),
            fields: vec![
                WebhookSetupField::url("URL"),
                WebhookSetupField::text("HTTP Method", "PUT"),
                WebhookSetupField::credential("Secret"),
            ],
            steps: vec!["route alerts to it".to_owned()],
        };
        let shown = setup.render("https://patchbay.example/acme/u1", Some("pbs_secret"));
        assert_eq!(
            shown,
            serde_json::json!({
                "location": "Acme > Webhooks",
                "fields": [
                    {"name": "URL", "value": "https://patchbay.example/acme/u1"},
                    {"name": "HTTP Method", "value": "PUT"},
                    {"name": "Secret", "value": "pbs_secret"},
                ],
                "steps": ["route alerts to it"],
            })
        );
        let hidden = setup.render("https://patchbay.example/acme/u1", None);
        assert_eq!(hidden["fields"][2]["value"], serde_json::Value::Null);
    }

    fn request(headers: &[(&'static str, &str)]) -> InboundWebhook {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        InboundWebhook {
            headers: map,
            body: Bytes::from_static(b"{\"debug-canary-body\": 1}"),
        }
    }

    fn check(headers: &[(&'static str, &str)], stored: &str) -> Result<VerifiedDelivery> {
        let delivery = UnverifiedDelivery::new("toy", Some("conn-1".to_owned()), request(headers));
        verify_token("X-Patchbay-Token", stored, delivery)
    }

    #[test]
    fn debug_output_names_headers_but_shows_no_credential() {
        let request = request(&[
            ("x-patchbay-token", "pbw_debug-canary-token"),
            ("x-hub-signature-256", "sha256=debug-canary-sig"),
        ]);
        let printed = format!("{request:?}");
        assert!(printed.contains("x-patchbay-token"), "{printed}");
        assert!(printed.contains("24 bytes"), "{printed}");
        assert!(!printed.contains("canary"), "{printed}");
        let delivery = UnverifiedDelivery::new("toy", None, request);
        assert!(!format!("{delivery:?}").contains("canary"));
        assert!(!format!("{:?}", delivery.mark_verified()).contains("canary"));
    }

    #[test]
    fn the_token_check_accepts_the_stored_token_in_either_header() {
        let stored = token_hash("pbw_good-token");
        // The SHA-256 of the token, hex-encoded, as the host stores it.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let verified = check(&[("x-patchbay-token", "pbw_good-token")], &stored).unwrap();
        assert_eq!(verified.connector(), "toy");
        assert_eq!(verified.connection_id(), Some("conn-1"));
        assert_eq!(verified.body().as_ref(), b"{\"debug-canary-body\": 1}");
        check(&[("authorization", "Bearer pbw_good-token")], &stored).unwrap();
        check(&[("x-patchbay-token", " pbw_good-token ")], &stored).unwrap();
    }

    #[test]
    fn an_authorization_token_header_takes_only_a_bearer_credential() {
        let stored = token_hash("pbw_good-token");
        let check = |headers: &[(&'static str, &str)]| {
            let delivery =
                UnverifiedDelivery::new("toy", Some("conn-1".to_owned()), request(headers));
            verify_token("Authorization", &stored, delivery)
        };
        check(&[("authorization", "Bearer pbw_good-token")]).unwrap();
        check(&[("authorization", "bearer pbw_good-token")]).unwrap();
        assert_eq!(
            token_header_value("Authorization", "pbw_good-token"),
            "Bearer pbw_good-token"
        );
        assert_eq!(
            token_header_value("X-Patchbay-Token", "pbw_good-token"),
            "pbw_good-token"
        );
        for refused in [
            check(&[]),
            check(&[("authorization", "pbw_good-token")]),
            check(&[("authorization", "Basic pbw_good-token")]),
            check(&[("authorization", "Bearer ")]),
            check(&[("authorization", "Bearer pbw_good-tokeN")]),
            check(&[("x-patchbay-token", "pbw_good-token")]),
        ] {
            let error = refused.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::AuthFailed, "{error}");
            assert_eq!(error.field(), Some("Authorization"));
            assert!(error.hint().unwrap().contains("Bearer"));
            assert!(!format!("{error:?}").contains("good-tok"), "{error:?}");
        }
    }

    #[test]
    fn the_token_check_refuses_missing_wrong_and_empty_tokens_without_echoing_them() {
        let stored = token_hash("pbw_good-token");
        let refusals = [
            check(&[], &stored),
            check(&[("x-patchbay-token", "pbw_good-tokeN")], &stored),
            check(&[("x-patchbay-token", "")], &stored),
            check(&[("authorization", "Basic pbw_good-token")], &stored),
            check(&[("x-patchbay-token", "pbw_good-token")], ""),
            check(&[("x-patchbay-token", stored.as_str())], &stored),
        ];
        for refusal in refusals {
            let error = refusal.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::AuthFailed, "{error}");
            assert_eq!(error.field(), Some("X-Patchbay-Token"));
            assert_eq!(error.connector(), Some("toy"));
            assert!(!format!("{error:?}").contains("good-tok"), "{error:?}");
        }
    }
}
