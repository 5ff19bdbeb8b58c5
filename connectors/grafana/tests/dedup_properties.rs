//! Properties of Grafana's dedup key. Grafana sends no delivery id and re-sends an
//! unchanged alert on every repeat interval, so the key of an alert is defined by
//! what identifies its transition: `fingerprint`, `status`, `startsAt` and `endsAt`
//! as sent (trimmed). The same transition therefore keeps its key whatever else
//! the delivery carries (labels, annotations, values, links, the envelope, its
//! place in `alerts[]`, JSON layout), and two transitions that differ in any of
//! those four fields never share a key.

use std::sync::Arc;

use patchbay_connector_grafana::webhook::dedup_key;
use patchbay_connector_grafana::GrafanaConnector;
use patchbay_core::{
    AuthRequest, ConnectorContext, DynConnector, DynCredentials, FormFields, InboundWebhook,
    WebhookKey,
};
use patchbay_http::{Bytes, HeaderMap, HttpClient, HttpConfig};
use patchbay_testkit::contract::with_webhook_secret;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const WEBHOOK_SECRET: &str = "pbw_dedup-properties-secret";

/// What identifies one alert transition.
#[derive(Clone, Debug)]
struct Transition {
    fingerprint: String,
    status: &'static str,
    starts_at: String,
    ends_at: String,
}

impl Transition {
    /// The fields as the key reads them: trimmed, a blank one absent.
    fn identity(&self) -> (String, &'static str, String, String) {
        (
            self.fingerprint.trim().to_owned(),
            self.status,
            self.starts_at.trim().to_owned(),
            self.ends_at.trim().to_owned(),
        )
    }
}

/// Everything else a delivery of the transition may carry.
#[derive(Clone, Debug)]
struct Noise {
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
    values: Map<String, Value>,
    links: Vec<(&'static str, String)>,
    envelope: Map<String, Value>,
    /// Other alerts placed before this one in `alerts[]`.
    before: usize,
    /// Whitespace around the identifying fields, which the key ignores.
    padding: (String, String),
    pretty: bool,
}

/// Identifying text with awkward characters, NUL and separators included, from a
/// small alphabet so that near-collisions come up.
fn identifying_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c0-2:\\x00\\x01-]{0,5}",
        "[0-9a-f]{16}",
        (2000i32..2030, 1u32..=12, 0u32..24)
            .prop_map(|(year, month, hour)| { format!("{year}-{month:02}-01T{hour:02}:00:00Z") }),
    ]
}

fn transition() -> impl Strategy<Value = Transition> {
    (
        identifying_text().prop_filter("Grafana sends a fingerprint", |text| {
            !text.trim().is_empty()
        }),
        prop::sample::select(vec!["firing", "resolved"]),
        identifying_text(),
        identifying_text(),
    )
        .prop_map(|(fingerprint, status, starts_at, ends_at)| Transition {
            fingerprint,
            status,
            starts_at,
            ends_at,
        })
}

/// Two transitions: unrelated, or the same text with the boundary between
/// `startsAt` and `endsAt` moved, which a careless key would confuse.
fn transition_pairs() -> impl Strategy<Value = (Transition, Transition)> {
    prop_oneof![
        (transition(), transition()),
        (transition(), 0usize..12).prop_map(|(one, cut)| {
            let joined: Vec<char> = one.starts_at.chars().chain(one.ends_at.chars()).collect();
            let cut = cut.min(joined.len());
            let other = Transition {
                starts_at: joined[..cut].iter().collect(),
                ends_at: joined[cut..].iter().collect(),
                ..one.clone()
            };
            (one, other)
        }),
    ]
}

fn small_map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        "[a-z_]{1,8}",
        prop_oneof![
            "\\PC{0,12}".prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
        ],
        0..4,
    )
    .prop_map(|map| map.into_iter().collect())
}

fn noise() -> impl Strategy<Value = Noise> {
    (
        small_map(),
        small_map(),
        small_map(),
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "generatorURL",
                    "silenceURL",
                    "dashboardURL",
                    "panelURL",
                    "valueString",
                ]),
                "[a-z0-9/:.]{0,20}",
            ),
            0..4,
        ),
        small_map().prop_map(|mut envelope| {
            // The envelope's own fields never name the alert list.
            envelope.remove("alerts");
            envelope
        }),
        0usize..3,
        ("[ \\t\\n]{0,2}", "[ \\t\\n]{0,2}"),
        any::<bool>(),
    )
        .prop_map(
            |(labels, annotations, values, links, envelope, before, padding, pretty)| Noise {
                labels,
                annotations,
                values,
                links,
                envelope,
                before,
                padding,
                pretty,
            },
        )
}

/// A delivery holding `transition` (padded and surrounded as `noise` says).
fn delivery(transition: &Transition, noise: &Noise) -> (InboundWebhook, usize) {
    let (left, right) = &noise.padding;
    let pad = |text: &str| format!("{left}{text}{right}");
    let mut alert = json!({
        "fingerprint": pad(&transition.fingerprint),
        "status": transition.status,
        "startsAt": pad(&transition.starts_at),
        "endsAt": pad(&transition.ends_at),
        "labels": noise.labels,
        "annotations": noise.annotations,
        "values": noise.values,
    });
    for (key, value) in &noise.links {
        alert[*key] = json!(value);
    }
    let others = (0..noise.before).map(|index| {
        json!({
            "fingerprint": format!("other-{index}"),
            "status": "firing",
            "startsAt": "2024-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
        })
    });
    let mut envelope = noise.envelope.clone();
    envelope.insert(
        "alerts".into(),
        Value::Array(others.chain([alert]).collect()),
    );
    let envelope = Value::Object(envelope);
    let body = if noise.pretty {
        serde_json::to_string_pretty(&envelope).unwrap()
    } else {
        envelope.to_string()
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert(
        "authorization",
        format!("Bearer {WEBHOOK_SECRET}").parse().unwrap(),
    );
    (
        InboundWebhook {
            headers,
            body: Bytes::from(body),
        },
        noise.before,
    )
}

struct Connection {
    connector: Arc<dyn DynConnector>,
    credentials: DynCredentials,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn connection(runtime: &tokio::runtime::Runtime) -> Connection {
    let connector = with_webhook_secret(
        Arc::new(GrafanaConnector::new(
            HttpClient::new(HttpConfig::default()).expect("a client"),
        )),
        WEBHOOK_SECRET,
    );
    let Value::Object(fields) = json!({
        "base_url": "https://acme.grafana.net",
        "api_token": "glsa_dedup-properties",
        "webhook_auth": "bearer",
    }) else {
        unreachable!("a form is an object")
    };
    let credentials = runtime
        .block_on(connector.authenticate(AuthRequest::Form(FormFields(fields))))
        .expect("the form authenticates");
    Connection {
        connector,
        credentials,
    }
}

/// The dedup key Patchbay stores for the alert at `index` of a verified `request`.
fn stored_key(
    runtime: &tokio::runtime::Runtime,
    connection: &Connection,
    (request, index): (InboundWebhook, usize),
) -> String {
    runtime.block_on(async {
        let ctx = ConnectorContext::default();
        let key = WebhookKey::Connection {
            config: &connection.credentials.config,
            secrets: &connection.credentials.secrets,
        };
        let delivery = connection
            .connector
            .verify(&ctx, key, &request)
            .await
            .expect("the delivery verifies");
        let outcome = connection
            .connector
            .normalize(&ctx, &connection.credentials.config, &delivery)
            .await
            .expect("the delivery normalises");
        outcome.events[index].dedup_key.clone()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_transition_keeps_its_key_whatever_else_the_delivery_carries(
        transition in transition(),
        first in noise(),
        second in noise(),
    ) {
        let runtime = runtime();
        let connection = connection(&runtime);
        let once = stored_key(&runtime, &connection, delivery(&transition, &first));
        let again = stored_key(&runtime, &connection, delivery(&transition, &second));
        prop_assert_eq!(&once, &again);
        // A redelivery of the very same bytes too.
        prop_assert_eq!(stored_key(&runtime, &connection, delivery(&transition, &first)), once);
    }

    #[test]
    fn different_transitions_never_share_a_key(
        (one, other) in transition_pairs(),
        noise in noise(),
    ) {
        prop_assume!(one.identity() != other.identity());
        let runtime = runtime();
        let connection = connection(&runtime);
        prop_assert_ne!(
            stored_key(&runtime, &connection, delivery(&one, &noise)),
            stored_key(&runtime, &connection, delivery(&other, &noise)),
            "{:?} and {:?}", one.identity(), other.identity()
        );
    }

    #[test]
    fn the_key_function_tells_any_two_lists_of_parts_apart(
        text in "[a-c:\\x00\\x01]{0,10}",
        one_cuts in prop::array::uniform3(0usize..=10),
        other_cuts in prop::array::uniform3(0usize..=10),
    ) {
        // Two lists cut from the same text differ only in where one part ends and
        // the next begins: exactly what a separator that can also occur inside a
        // part would confuse.
        let one = split_in_four(&text, one_cuts);
        let other = split_in_four(&text, other_cuts);
        prop_assume!(one != other);
        prop_assert_ne!(
            dedup_key(&one[0], &one[1], &one[2], &one[3]),
            dedup_key(&other[0], &other[1], &other[2], &other[3]),
            "{:?} and {:?}", one, other
        );
    }
}

/// `text` cut into four parts at the sorted positions `cuts` (clamped to its length).
fn split_in_four(text: &str, mut cuts: [usize; 3]) -> [String; 4] {
    let chars: Vec<char> = text.chars().collect();
    for cut in &mut cuts {
        *cut = (*cut).min(chars.len());
    }
    cuts.sort_unstable();
    let part = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
    [
        part(0, cuts[0]),
        part(cuts[0], cuts[1]),
        part(cuts[1], cuts[2]),
        part(cuts[2], chars.len()),
    ]
}
