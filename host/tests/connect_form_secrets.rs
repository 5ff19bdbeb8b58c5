//! A property of every connector this host links: whatever is typed into a connect
//! form's secret fields (those its schema marks `writeOnly`) — awkward text, text
//! with whitespace around it, JSON holding it, or a value of the wrong type
//! wrapping it — `authenticate` never shows it: not in the credentials' `Debug`,
//! not in the settings stored in the records database, and not in an error's
//! message, hint, `Debug` or API body. The form's other required fields get valid
//! values, so the secrets reach the connector's parsing and, for every connector
//! whose secrets are opaque tokens, the stored secret really holds them.

use std::collections::BTreeMap;

use patchbay_core::{AuthRequest, ConnectorEnv, DynConnector, FormFields};
use patchbay_host::error::{ErrorBody, ErrorEnvelope};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

/// Valid values for the required settings beside the secrets, by field name.
const SETTINGS: &[(&str, &str)] = &[
    ("base_url", "https://acme.example.com"),
    ("tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
    ("client_id", "0f3a1c2d-4b5e-4f60-8a7b-9c0d1e2f3a4b"),
];

/// Connectors whose secret is a document the connector parses (a service-account
/// key), which generated text never is: only their refusals are checked.
const STRUCTURED_SECRETS: &[&str] = &["gcp"];

/// How a generated secret is put into its field.
#[derive(Clone, Debug)]
enum Typed {
    /// As the field's text.
    Plain,
    /// With whitespace around it, which connectors trim.
    Padded,
    /// Inside a JSON document given as the field's text.
    InJson,
    /// Inside an array, where text is expected.
    InArray,
    /// Inside an object, where text is expected.
    InObject,
}

fn typed() -> impl Strategy<Value = Typed> {
    prop_oneof![
        3 => Just(Typed::Plain),
        1 => Just(Typed::Padded),
        1 => Just(Typed::InJson),
        1 => Just(Typed::InArray),
        1 => Just(Typed::InObject),
    ]
}

/// Secret text: at least 8 characters, not blank.
fn secret_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Keys as providers issue them.
        "[A-Za-z0-9]{8,64}",
        "[ -~]{8,48}",
        "\\PC{8,32}",
        "[A-Za-z0-9\"'\\\\\n\t /+=_-]{8,48}",
        "[A-Za-z0-9+/=_.-]{512,2048}",
    ]
    .prop_map(|text| text.trim().to_owned())
    .prop_filter("long enough to be told from fixed text", |text| {
        text.chars().count() >= 8
    })
}

fn field_value(secret: &str, typed: &Typed) -> Value {
    match typed {
        Typed::Plain => json!(secret),
        Typed::Padded => json!(format!("  {secret}\n")),
        Typed::InJson => json!(json!({
            "type": "service_account",
            "project_id": "acme",
            "private_key": secret,
            "client_email": "reader@acme.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()),
        Typed::InArray => json!([secret]),
        Typed::InObject => json!({ "value": secret }),
    }
}

/// Every way `secret` could show up in text: as is, and escaped as `Debug` and
/// JSON escape it.
fn spellings(secret: &str) -> Vec<String> {
    let debug = format!("{secret:?}");
    let json = serde_json::to_string(secret).expect("a string serialises");
    vec![
        secret.to_owned(),
        debug[1..debug.len() - 1].to_owned(),
        json[1..json.len() - 1].to_owned(),
    ]
}

/// Fails when `text` holds `secret` in any spelling that the same rendering made
/// without secrets (`baseline`) does not also hold.
fn assert_hidden(what: &str, text: &str, baseline: &str, secret: &str) {
    for spelling in spellings(secret) {
        assert!(
            !text.contains(&spelling) || baseline.contains(&spelling),
            "{what} shows the secret {secret:?}:\n{text}"
        );
    }
}

/// The schema a `$ref` inside `schema` points to, or the schema itself.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/")
            .map(|path| {
                path.split('/')
                    .fold(root, |value, key| value.get(key).unwrap_or(&Value::Null))
            })
            .unwrap_or(schema),
        None => schema,
    }
}

/// A valid value for a required setting: from the table, else the schema's first
/// allowed constant, else plain text.
fn setting_value(root: &Value, name: &str, schema: &Value) -> Value {
    if let Some((_, value)) = SETTINGS.iter().find(|(field, _)| *field == name) {
        return json!(value);
    }
    let schema = resolve(root, schema);
    let first_constant = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .and_then(|choice| choice.get("const"))
        .or_else(|| schema.get("enum").and_then(|values| values.get(0)));
    first_constant.cloned().unwrap_or_else(|| json!("example"))
}

/// A secret field of a connect form.
struct SecretField {
    name: String,
    required: bool,
}

/// The connect form's secret fields and the form's required settings, filled.
fn form_parts(connector: &dyn DynConnector) -> (Vec<SecretField>, Map<String, Value>) {
    let schema = serde_json::to_value((connector.descriptor().connect_schema)()).unwrap();
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let secrets = properties
        .iter()
        .filter(|(_, property)| property["writeOnly"] == json!(true))
        .map(|(name, _)| SecretField {
            name: name.clone(),
            required: required.contains(&name.as_str()),
        })
        .collect();
    let settings = properties
        .iter()
        .filter(|(name, property)| {
            property["writeOnly"] != json!(true) && required.contains(&name.as_str())
        })
        .map(|(name, property)| (name.clone(), setting_value(&schema, name, property)))
        .collect();
    (secrets, settings)
}

/// Authenticates `fields` and returns each rendering a secret could leak through,
/// or on success also the stored secret JSON.
fn renderings(
    runtime: &tokio::runtime::Runtime,
    connector: &dyn DynConnector,
    fields: Map<String, Value>,
) -> (Vec<(&'static str, String)>, Option<String>) {
    match runtime.block_on(connector.authenticate(AuthRequest::Form(FormFields(fields)))) {
        Ok(credentials) => (
            vec![
                ("the credentials' Debug", format!("{credentials:?}")),
                ("the stored settings", credentials.config.to_string()),
            ],
            Some(credentials.secrets.expose().to_string()),
        ),
        Err(error) => {
            let body = serde_json::to_string(&ErrorEnvelope {
                error: ErrorBody::of(&error),
                report: None,
            })
            .expect("an error body serialises");
            (
                vec![
                    ("the error", error.to_string()),
                    ("the error's Debug", format!("{error:?}")),
                    ("the error's API body", body),
                ],
                None,
            )
        }
    }
}

#[test]
fn no_connect_form_shows_the_secrets_typed_into_it() {
    let registry = patchbay_host::connectors::registry(&ConnectorEnv::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut checked = 0;
    for id in registry.ids() {
        let connector = registry.get(id).unwrap().as_ref();
        let (secret_fields, settings) = form_parts(connector);
        if secret_fields.is_empty() {
            continue;
        }
        checked += 1;
        // Not vacuous: a form with plain key-like secrets in its required secret
        // fields authenticates, and what the connector keeps holds them.
        let mut plain = settings.clone();
        let typed_plainly: Vec<String> = secret_fields
            .iter()
            .filter(|field| field.required)
            .enumerate()
            .map(|(index, field)| {
                let secret = format!("Plain{index}SecretValue{}", id.len());
                plain.insert(field.name.clone(), json!(secret));
                secret
            })
            .collect();
        match (
            STRUCTURED_SECRETS.contains(&id),
            renderings(&runtime, connector, plain),
        ) {
            (false, (_, Some(stored))) => {
                for secret in &typed_plainly {
                    assert!(
                        stored.contains(secret),
                        "{id}: the stored secret lacks {secret}"
                    );
                }
            }
            (false, (texts, None)) => panic!(
                "{id}: a plain form does not authenticate; give its required settings valid \
                 values in SETTINGS: {texts:?}"
            ),
            (true, _) => {}
        }
        // Required secret fields are always filled, optional ones half the time.
        let strategy: Vec<BoxedStrategy<Option<(String, Typed)>>> = secret_fields
            .iter()
            .map(|field| {
                if field.required {
                    (secret_text(), typed()).prop_map(Some).boxed()
                } else {
                    proptest::option::of((secret_text(), typed())).boxed()
                }
            })
            .collect();
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |values| {
                let mut fields = settings.clone();
                let mut typed_in = BTreeMap::new();
                for (field, value) in secret_fields.iter().zip(&values) {
                    if let Some((secret, typed)) = value {
                        fields.insert(field.name.clone(), field_value(secret, typed));
                        typed_in.insert(field.name.clone(), (secret.clone(), typed.clone()));
                    }
                }
                // The same form with unrelated secrets tells fixed text from a leak.
                let mut baseline_fields = settings.clone();
                for name in typed_in.keys() {
                    baseline_fields.insert(name.clone(), json!("unrelated-baseline-secret"));
                }
                let (texts, stored) = renderings(&runtime, connector, fields);
                let (baselines, _) = renderings(&runtime, connector, baseline_fields);
                for (what, text) in &texts {
                    let baseline = baselines
                        .iter()
                        .find(|(kind, _)| kind == what)
                        .map_or("", |(_, text)| text.as_str());
                    for (secret, _) in typed_in.values() {
                        assert_hidden(&format!("{id}: {what}"), text, baseline, secret);
                    }
                }
                if let Some(stored) = stored {
                    // What was typed as text is what the connector keeps.
                    for (secret, typed) in typed_in.values() {
                        if matches!(typed, Typed::Plain | Typed::Padded) {
                            let json = serde_json::to_string(secret).unwrap();
                            prop_assert!(
                                stored.contains(&json[1..json.len() - 1]),
                                "{}: the stored secret lacks what was typed",
                                id
                            );
                        }
                    }
                }
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{id}: {failure}"));
    }
    assert!(
        checked >= 5,
        "only {checked} connectors take secrets in a form"
    );
}
