//! Properties of Datadog's dedup key. The key of a delivery is its `id` when the
//! payload carries one (the default template: one id per event); otherwise a hash
//! of `alert_id`, `alert_scope`, `alert_transition` and `date` when any of them is
//! there; otherwise a hash of the whole body. Each value is read as trimmed text,
//! and a number reads as its digits. So the same delivery keeps its key whatever
//! the JSON layout or key order, whether it came as JSON or as a flat form, with
//! or without whitespace around those values, and whatever else it carries; and
//! deliveries that differ in what identifies them never share a key.

use std::sync::{Arc, OnceLock};

use patchbay_connector_datadog::{DatadogConnector, WEBHOOK_TOKEN_HEADER};
use patchbay_core::{
    token_hash, AuthRequest, ConnectorContext, DynConnector, DynCredentials, FormFields,
    InboundWebhook, WebhookKey,
};
use patchbay_http::{Bytes, HeaderMap, HttpClient, HttpConfig};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const WEBHOOK_TOKEN: &str = "pbw_dedup-properties-token";

/// What identifies a delivery, each field optional.
#[derive(Clone, Debug, PartialEq)]
struct Identity {
    id: Option<String>,
    alert_id: Option<String>,
    scope: Option<String>,
    transition: Option<String>,
    date: Option<String>,
}

impl Identity {
    fn fields(&self) -> [(&'static str, &Option<String>); 5] {
        [
            ("id", &self.id),
            ("alert_id", &self.alert_id),
            ("alert_scope", &self.scope),
            ("alert_transition", &self.transition),
            ("date", &self.date),
        ]
    }

    /// What the key is made of, per the rule above: `None` when the body decides.
    fn key_material(&self) -> Option<Vec<Option<&str>>> {
        if let Some(id) = &self.id {
            return Some(vec![Some(id.as_str())]);
        }
        let rest = vec![
            self.alert_id.as_deref(),
            self.scope.as_deref(),
            self.transition.as_deref(),
            self.date.as_deref(),
        ];
        rest.iter().any(Option::is_some).then_some(rest)
    }
}

/// Text Datadog fills a variable with: not blank, not an unfilled `$VARIABLE`.
fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,12}",
        "[a-z0-9:_,.-]{1,16}",
        "\\PC{1,12}",
        prop::sample::select(vec!["Triggered", "Recovered", "Warn", "No Data"])
            .prop_map(str::to_owned),
    ]
    .prop_filter("a filled value", |text| {
        !text.trim().is_empty() && !text.trim_start().starts_with('$')
    })
}

fn identity() -> impl Strategy<Value = Identity> {
    (
        proptest::option::of(value_text()),
        proptest::option::of(value_text()),
        proptest::option::of(value_text()),
        proptest::option::of(value_text()),
        proptest::option::of(value_text()),
    )
        .prop_map(|(id, alert_id, scope, transition, date)| Identity {
            id: id.map(|text| text.trim().to_owned()),
            alert_id: alert_id.map(|text| text.trim().to_owned()),
            scope: scope.map(|text| text.trim().to_owned()),
            transition: transition.map(|text| text.trim().to_owned()),
            date: date.map(|text| text.trim().to_owned()),
        })
}

/// The other fields of a delivery, none of which identifies it.
fn extras() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        prop::sample::select(vec![
            "body",
            "event_type",
            "hostname",
            "alert_priority",
            "alert_metric",
            "alert_query",
            "link",
            "org_name",
            "last_updated_by",
            "alert_cycle_key",
            "alert_title",
        ]),
        "[ -~]{0,24}".prop_map(Value::from),
        0..5,
    )
    .prop_map(|map| {
        map.into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect()
    })
}

/// How one delivery of an identity is written.
#[derive(Clone, Debug)]
struct Layout {
    /// Whitespace around each identifying value (the key reads values trimmed).
    padding: (String, String),
    /// Write all-digit values as JSON numbers.
    numbers: bool,
    pretty: bool,
    /// Send a flat form instead of JSON (only when every value is text).
    form: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        ("[ \\t]{0,2}", "[ \\t]{0,2}"),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(padding, numbers, pretty, form)| Layout {
            padding,
            numbers,
            pretty,
            form,
        })
}

/// A delivery of `identity` with `title` and `extras`, written as `layout` says.
fn delivery(
    identity: &Identity,
    title: &str,
    extras: &Map<String, Value>,
    layout: &Layout,
) -> InboundWebhook {
    let mut body = extras.clone();
    body.insert("title".into(), json!(title));
    let (left, right) = &layout.padding;
    for (name, value) in identity.fields() {
        let Some(value) = value else { continue };
        let written = match value.parse::<u64>() {
            Ok(number) if layout.numbers && !layout.form && number.to_string() == *value => {
                json!(number)
            }
            _ => json!(format!("{left}{value}{right}")),
        };
        body.insert(name.into(), written);
    }
    let mut headers = HeaderMap::new();
    headers.insert(WEBHOOK_TOKEN_HEADER, WEBHOOK_TOKEN.parse().unwrap());
    let bytes = if layout.form {
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in &body {
            form.append_pair(key, value.as_str().expect("form values are text"));
        }
        form.finish()
    } else {
        headers.insert("content-type", "application/json".parse().unwrap());
        let value = Value::Object(body);
        if layout.pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            value.to_string()
        }
    };
    InboundWebhook {
        headers,
        body: Bytes::from(bytes),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A Datadog connector and a connection's credentials, made once.
fn connection() -> &'static (Arc<dyn DynConnector>, DynCredentials) {
    static CONNECTION: OnceLock<(Arc<dyn DynConnector>, DynCredentials)> = OnceLock::new();
    CONNECTION.get_or_init(|| {
        let connector: Arc<dyn DynConnector> = Arc::new(DatadogConnector::new(
            HttpClient::new(HttpConfig::default()).expect("a client"),
        ));
        let Value::Object(fields) = json!({"api_key": "dedup-api-key", "app_key": "dedup-app-key"})
        else {
            unreachable!("a form is an object")
        };
        let credentials = runtime()
            .block_on(connector.authenticate(AuthRequest::Form(FormFields(fields))))
            .expect("the form authenticates");
        (connector, credentials)
    })
}

/// The dedup key Patchbay stores for `request`, verified by its token.
fn stored_key(runtime: &tokio::runtime::Runtime, request: &InboundWebhook) -> String {
    let (connector, credentials) = connection();
    runtime.block_on(async {
        let ctx = ConnectorContext::default();
        let stored = token_hash(WEBHOOK_TOKEN);
        let delivery = connector
            .verify(&ctx, WebhookKey::TokenHash(&stored), request)
            .await
            .expect("the token verifies");
        let mut outcome = connector
            .normalize(&ctx, &credentials.config, &delivery)
            .await
            .expect("the delivery normalises");
        assert_eq!(outcome.events.len(), 1);
        outcome.events.remove(0).dedup_key
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_delivery_keeps_its_key_however_it_is_written(
        identity in identity(),
        title in value_text(),
        extras in extras(),
        first in layout(),
        second in layout(),
    ) {
        let runtime = runtime();
        let once = stored_key(&runtime, &delivery(&identity, &title, &extras, &first));
        let again = stored_key(&runtime, &delivery(&identity, &title, &extras, &second));
        prop_assert_eq!(&once, &again);
        // Redelivering the same bytes gives the same key too.
        prop_assert_eq!(stored_key(&runtime, &delivery(&identity, &title, &extras, &first)), once);
    }

    #[test]
    fn what_does_not_identify_a_delivery_does_not_change_its_key(
        identity in identity().prop_filter("an identifying field", |identity| {
            identity.key_material().is_some()
        }),
        titles in (value_text(), value_text()),
        extras in (extras(), extras()),
        layout in layout(),
    ) {
        let runtime = runtime();
        prop_assert_eq!(
            stored_key(&runtime, &delivery(&identity, &titles.0, &extras.0, &layout)),
            stored_key(&runtime, &delivery(&identity, &titles.1, &extras.1, &layout))
        );
    }

    #[test]
    fn deliveries_that_differ_in_what_identifies_them_never_share_a_key(
        one in identity(),
        other in identity(),
        title in value_text(),
        extras in extras(),
        layout in layout(),
    ) {
        let runtime = runtime();
        let one_key = stored_key(&runtime, &delivery(&one, &title, &extras, &layout));
        let other_key = stored_key(&runtime, &delivery(&other, &title, &extras, &layout));
        if let (Some(one), Some(other)) = (one.key_material(), other.key_material()) {
            if one == other {
                prop_assert_eq!(one_key, other_key);
            } else {
                prop_assert_ne!(one_key, other_key, "{:?} and {:?}", one, other);
            }
        }
    }

    #[test]
    fn bodies_without_identifying_fields_are_told_apart_by_content(
        titles in (value_text(), value_text()),
        extras in (extras(), extras()),
        layout in layout(),
    ) {
        let none = Identity { id: None, alert_id: None, scope: None, transition: None, date: None };
        let runtime = runtime();
        let one = delivery(&none, &titles.0, &extras.0, &layout);
        let other = delivery(&none, &titles.1, &extras.1, &layout);
        let same_content = parsed(&one) == parsed(&other);
        let same_key = stored_key(&runtime, &one) == stored_key(&runtime, &other);
        prop_assert_eq!(same_key, same_content);
    }
}

/// The body of a JSON or form delivery as the fields it carries.
fn parsed(request: &InboundWebhook) -> Value {
    match serde_json::from_slice(&request.body) {
        Ok(value) => value,
        Err(_) => Value::Object(
            url::form_urlencoded::parse(&request.body)
                .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
                .collect(),
        ),
    }
}
