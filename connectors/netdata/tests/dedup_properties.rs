//! Properties of Netdata's dedup key. The key of a delivery hashes the alert's
//! identity (space, host, chart and alert name), its status (in any letter case)
//! and the transition time (`when`, as the instant it names). So one transition
//! keeps its key whether it arrives as a version 1 (flat) or version 2 (nested)
//! payload, with `when` as a number, digits or RFC 3339 text, with whitespace
//! around its texts, and whatever value, link or other fields come with it; and
//! two transitions that differ in any of those facts never share a key.

use std::sync::{Arc, OnceLock};

use chrono::DateTime;
use patchbay_connector_netdata::NetdataConnector;
use patchbay_core::{token_hash, ConnectorContext, DynConnector, InboundWebhook, WebhookKey};
use patchbay_http::{Bytes, HeaderMap, HttpClient, HttpConfig};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const WEBHOOK_TOKEN: &str = "pbw_dedup-properties-token";

/// The facts that identify one transition.
#[derive(Clone, Debug)]
struct Transition {
    space: Option<String>,
    host: Option<String>,
    chart: Option<String>,
    name: String,
    status: &'static str,
    /// Unix seconds.
    when: Option<i64>,
}

impl Transition {
    /// The facts as the key reads them.
    fn identity(&self) -> (String, String, String, String, &'static str, Option<i64>) {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        (
            text(&self.space),
            text(&self.host),
            text(&self.chart),
            self.name.clone(),
            self.status,
            self.when,
        )
    }
}

/// How one delivery of a transition is written.
#[derive(Clone, Debug)]
struct Layout {
    nested: bool,
    /// 0: a number, 1: digits, 2: RFC 3339 text.
    when_form: u8,
    /// The status's letter case: lower, upper or capitalised.
    status_case: u8,
    padding: (String, String),
    /// The space as `{"name": ...}` rather than a string (version 2).
    space_object: bool,
    value: Option<String>,
    url: Option<String>,
    extras: Map<String, Value>,
    pretty: bool,
}

fn fact() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9._-]{1,12}", "\\PC{1,10}", "[a-c ]{1,3}"]
        .prop_map(|text| text.trim().to_owned())
        .prop_filter("not blank", |text| !text.is_empty())
}

fn transition() -> impl Strategy<Value = Transition> {
    (
        proptest::option::of(fact()),
        proptest::option::of(fact()),
        proptest::option::of(fact()),
        fact(),
        prop::sample::select(vec!["critical", "warning", "clear"]),
        proptest::option::of(prop_oneof![
            0i64..4_000_000_000,
            1_700_000_000i64..1_700_000_010
        ]),
    )
        .prop_map(|(space, host, chart, name, status, when)| Transition {
            space,
            host,
            chart,
            name,
            status,
            when,
        })
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        0u8..3,
        0u8..3,
        ("[ \\t]{0,2}", "[ \\t]{0,2}"),
        any::<bool>(),
        proptest::option::of("[0-9.]{1,8}"),
        proptest::option::of("https://app\\.netdata\\.cloud/[a-z0-9/]{0,16}"),
        prop::collection::btree_map(
            prop::sample::select(vec!["message", "class", "severity", "duration", "info"]),
            "[ -~]{0,16}".prop_map(Value::from),
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(
                nested,
                when_form,
                status_case,
                padding,
                space_object,
                value,
                url,
                extras,
                pretty,
            )| {
                Layout {
                    nested,
                    when_form,
                    status_case,
                    padding,
                    space_object,
                    value,
                    url,
                    extras: extras
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value))
                        .collect(),
                    pretty,
                }
            },
        )
}

/// The payload of `transition` as `layout` writes it.
fn payload(transition: &Transition, layout: &Layout) -> Value {
    let (left, right) = &layout.padding;
    let pad = |text: &str| json!(format!("{left}{text}{right}"));
    let optional = |text: &Option<String>| text.as_deref().map(pad).unwrap_or(Value::Null);
    let status = match layout.status_case {
        0 => transition.status.to_owned(),
        1 => transition.status.to_uppercase(),
        _ => {
            let mut chars = transition.status.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    };
    let when = transition
        .when
        .map_or(Value::Null, |seconds| match layout.when_form {
            0 => json!(seconds),
            1 => json!(seconds.to_string()),
            _ => json!(DateTime::from_timestamp(seconds, 0)
                .expect("a time in range")
                .to_rfc3339()),
        });
    let mut body = layout.extras.clone();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            body.insert(key.to_owned(), value);
        }
    };
    if layout.nested {
        let mut alert = json!({
            "name": pad(&transition.name),
            "state": { "status": status },
        });
        if let Some(value) = &layout.value {
            alert["state"]["value"] = json!(value);
        }
        if let Some(chart) = &transition.chart {
            alert["chart"] = json!({ "name": pad(chart) });
        }
        if let Some(url) = &layout.url {
            alert["url"] = json!(url);
        }
        put("alert", alert);
        put(
            "node",
            transition
                .host
                .as_deref()
                .map_or(Value::Null, |host| json!({ "hostname": pad(host) })),
        );
        put(
            "alarm",
            if when.is_null() {
                Value::Null
            } else {
                json!({ "when": when })
            },
        );
        let space = optional(&transition.space);
        put(
            "space",
            if layout.space_object && !space.is_null() {
                json!({ "name": space })
            } else {
                space
            },
        );
    } else {
        put("alarm", pad(&transition.name));
        put("status", json!(status));
        put("chart", optional(&transition.chart));
        put("host", optional(&transition.host));
        put("space", optional(&transition.space));
        put("when", when);
        put(
            "value",
            layout
                .value
                .as_deref()
                .map_or(Value::Null, |value| json!(value)),
        );
        put(
            "alert_url",
            layout.url.as_deref().map_or(Value::Null, |url| json!(url)),
        );
    }
    Value::Object(body)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn connector() -> &'static Arc<dyn DynConnector> {
    static CONNECTOR: OnceLock<Arc<dyn DynConnector>> = OnceLock::new();
    CONNECTOR.get_or_init(|| {
        Arc::new(NetdataConnector::new(
            HttpClient::new(HttpConfig::default()).expect("a client"),
        ))
    })
}

/// The dedup key Patchbay stores for `transition` delivered as `layout` says.
fn stored_key(
    runtime: &tokio::runtime::Runtime,
    transition: &Transition,
    layout: &Layout,
) -> String {
    let payload = payload(transition, layout);
    let body = if layout.pretty {
        serde_json::to_string_pretty(&payload).unwrap()
    } else {
        payload.to_string()
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert(
        "authorization",
        format!("Bearer {WEBHOOK_TOKEN}").parse().unwrap(),
    );
    let request = InboundWebhook {
        headers,
        body: Bytes::from(body),
    };
    runtime.block_on(async {
        let ctx = ConnectorContext::default();
        let stored = token_hash(WEBHOOK_TOKEN);
        let delivery = connector()
            .verify(&ctx, WebhookKey::TokenHash(&stored), &request)
            .await
            .expect("the token verifies");
        let mut outcome = connector()
            .normalize(&ctx, &json!({}), &delivery)
            .await
            .unwrap_or_else(|error| panic!("{payload}: {error}"));
        assert_eq!(outcome.events.len(), 1, "{payload}");
        outcome.events.remove(0).dedup_key
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_transition_keeps_its_key_however_it_is_delivered(
        transition in transition(),
        first in layout(),
        second in layout(),
    ) {
        let runtime = runtime();
        prop_assert_eq!(
            stored_key(&runtime, &transition, &first),
            stored_key(&runtime, &transition, &second)
        );
    }

    #[test]
    fn different_transitions_never_share_a_key(
        one in transition(),
        other in transition(),
        layout in layout(),
    ) {
        prop_assume!(one.identity() != other.identity());
        let runtime = runtime();
        prop_assert_ne!(
            stored_key(&runtime, &one, &layout),
            stored_key(&runtime, &other, &layout),
            "{:?} and {:?}", one.identity(), other.identity()
        );
    }
}
