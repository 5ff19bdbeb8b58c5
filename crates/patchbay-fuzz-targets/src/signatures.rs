//! One target per signature-header parser: the input is the header's value (for
//! timestamped schemes: the timestamp on the first line, the signature after it),
//! checked against the body and secret of the provider's published example, which
//! are read from the connector's fixtures when the target starts.
//!
//! Every target checks that whatever verifies carries the signature the provider
//! computes; PagerDuty's also checks that a list holding a valid `v1` entry verifies
//! whatever else it holds.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use patchbay_core::InboundWebhook;
use serde_json::{json, Value};

use crate::delivery::with_header;
use crate::harness::check_refusal;
use crate::webhooks::{self, Receiver, GITHUB, PAGERDUTY, SLACK};

const GITHUB_FIXTURE: &str = include_str!("../../../connectors/github/fixtures/github.json");
const PAGERDUTY_FIXTURE: &str =
    include_str!("../../../connectors/pagerduty/fixtures/pagerduty.json");
const SLACK_FIXTURE: &str = include_str!("../../../connectors/slack/fixtures/vectors.json");
const GRAFANA_FIXTURE: &str = include_str!("../../../connectors/grafana/fixtures/grafana.json");

/// A published signature example: the secret and the signed body.
struct Example {
    secret: String,
    body: Bytes,
}

/// The first vector at `pointer` in `fixture` that `pick` accepts, with its secret
/// under `secret_key`.
fn example(
    fixture: &str,
    pointer: &str,
    secret_key: &str,
    pick: impl Fn(&Value) -> bool,
) -> Example {
    let fixture: Value = serde_json::from_str(fixture).expect("the fixture is JSON");
    let vector = fixture
        .pointer(pointer)
        .and_then(Value::as_array)
        .and_then(|vectors| vectors.iter().find(|vector| pick(vector)))
        .unwrap_or_else(|| panic!("the fixture has no vector at {pointer}"));
    let text = |key: &str| {
        vector[key]
            .as_str()
            .unwrap_or_else(|| panic!("the vector has no `{key}`"))
            .to_owned()
    };
    Example {
        secret: text(secret_key),
        body: Bytes::from(text("body")),
    }
}

static GITHUB_EXAMPLE: LazyLock<Example> = LazyLock::new(|| {
    let example = example(
        GITHUB_FIXTURE,
        "/webhook_signature/vectors",
        "secret",
        |v| v["name"] == "github-docs-official",
    );
    assert_eq!(example.secret, webhooks::GITHUB_SECRET);
    example
});

static PAGERDUTY_EXAMPLE: LazyLock<Example> = LazyLock::new(|| {
    let example = example(
        PAGERDUTY_FIXTURE,
        "/webhook_signature/vectors",
        "secret",
        |v| v["expect"] == "accept",
    );
    assert_eq!(example.secret, webhooks::PAGERDUTY_SECRET);
    example
});

static SLACK_EXAMPLE: LazyLock<Example> = LazyLock::new(|| {
    let example = example(
        SLACK_FIXTURE,
        "/request_signing/vectors",
        "signing_secret",
        |v| v["clock_for_acceptance"] == webhooks::SLACK_EXAMPLE_TIME,
    );
    assert_eq!(example.secret, webhooks::SLACK_SIGNING_SECRET);
    example
});

/// Grafana's example without a timestamp, and its connections with and without one.
static GRAFANA_EXAMPLE: LazyLock<(Example, [Receiver; 2])> = LazyLock::new(|| {
    let example = example(
        GRAFANA_FIXTURE,
        "/hmac_signature/vectors_DERIVED",
        "secret",
        |v| v["name"] == "grafana-test-inputs no timestamp",
    );
    let receivers = [
        webhooks::grafana(json!({"webhook_auth": "hmac"}), &example.secret),
        webhooks::grafana(
            json!({"webhook_auth": "hmac", "timestamp_header": webhooks::GRAFANA_TIMESTAMP_HEADER}),
            &example.secret,
        ),
    ];
    (example, receivers)
});

/// A request with `body` and the given headers; `None` when a value is not one
/// an HTTP server would accept.
fn request(body: &Bytes, headers: &[(&str, &[u8])]) -> Option<InboundWebhook> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header names are constants"),
            HeaderValue::from_bytes(value).ok()?,
        );
    }
    Some(InboundWebhook {
        headers: map,
        body: body.clone(),
    })
}

/// Verifies `request` with `receiver`: a refusal is `auth_failed`, and an accepted
/// request carries the provider's signature. Returns whether it verified.
fn verify_checked(receiver: &Receiver, request: &InboundWebhook) -> bool {
    match receiver.verify(request) {
        Ok(_) => {
            assert!(
                (receiver.genuine)(request),
                "{}: verified a signature the provider would not compute",
                receiver.id
            );
            true
        }
        Err(error) => {
            check_refusal(receiver.id, &error);
            false
        }
    }
}

/// The first line and the rest: a timestamp and a signature.
fn split_timestamp(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|byte| *byte == b'\n') {
        Some(newline) => (&data[..newline], &data[newline + 1..]),
        None => (&data[..0], data),
    }
}

/// GitHub's `X-Hub-Signature-256: sha256=<hex>`.
pub fn signature_github(data: &[u8]) {
    use patchbay_connector_github::webhook::{EVENT_HEADER, SIGNATURE_HEADER};
    let Some(request) = request(
        &GITHUB_EXAMPLE.body,
        &[(SIGNATURE_HEADER, data), (EVENT_HEADER, b"ping")],
    ) else {
        return;
    };
    verify_checked(&GITHUB, &request);
}

/// PagerDuty's `X-PagerDuty-Signature`: a comma-separated list of `v1=<hex>`.
pub fn signature_pagerduty(data: &[u8]) {
    use patchbay_connector_pagerduty::webhook::{sign, SIGNATURE_HEADER};
    let body = &PAGERDUTY_EXAMPLE.body;
    let Some(request) = request(body, &[(SIGNATURE_HEADER, data)]) else {
        return;
    };
    verify_checked(&PAGERDUTY, &request);
    // A valid entry verifies wherever it stands in a list of anything else.
    let Some(given) = request.header(SIGNATURE_HEADER) else {
        return;
    };
    let valid = sign(&PAGERDUTY_EXAMPLE.secret, body);
    for list in [format!("{given},{valid}"), format!("{valid},{given}")] {
        let rotated = with_header(&request, SIGNATURE_HEADER, &list);
        assert!(
            verify_checked(&PAGERDUTY, &rotated),
            "pagerduty: a list with a valid v1 entry was refused"
        );
    }
}

/// Slack's `X-Slack-Request-Timestamp` (first line) and `X-Slack-Signature: v0=<hex>`.
pub fn signature_slack(data: &[u8]) {
    use patchbay_connector_slack::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
    let (timestamp, signature) = split_timestamp(data);
    let Some(request) = request(
        &SLACK_EXAMPLE.body,
        &[
            (TIMESTAMP_HEADER, timestamp),
            (SIGNATURE_HEADER, signature),
            ("Content-Type", b"application/x-www-form-urlencoded"),
        ],
    ) else {
        return;
    };
    verify_checked(&SLACK, &request);
}

/// Grafana's bare hex signature, without and with a signed timestamp (first line).
pub fn signature_grafana(data: &[u8]) {
    use patchbay_connector_grafana::config::DEFAULT_SIGNATURE_HEADER;
    let (example, receivers) = &*GRAFANA_EXAMPLE;
    let (timestamp, signature) = split_timestamp(data);
    let Some(request) = request(
        &example.body,
        &[
            (webhooks::GRAFANA_TIMESTAMP_HEADER, timestamp),
            (DEFAULT_SIGNATURE_HEADER, signature),
        ],
    ) else {
        return;
    };
    for receiver in receivers {
        verify_checked(receiver, &request);
    }
}
