//! Properties of redaction: for generated secret values (unicode, quotes,
//! backslashes, newlines, very long ones), no `Debug`, `Display`, serialised or
//! error form of a [`Secret`] or of the credential types holding one contains the
//! value, in clear or escaped as `Debug` and JSON escape it, while the one door for
//! storage ([`reveal_json`]) and `expose` still give it back.

use chrono::{TimeZone, Utc};
use patchbay_core::secret::{reveal_json, REDACTED};
use patchbay_core::{
    AuthRequest, ClientAuthStyle, Credentials, DynCredentials, FormFields, NoSecrets,
    OAuthClientCredentials, OAuthGrant, OAuthSpec, OAuthTokens, ProviderWebhookSecret,
    RevealedJson, Secret, SecretString,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

/// A connector's secret half, shaped like the connectors' own (`DatadogSecrets`,
/// `AzureSecrets`): required, optional and listed secret fields beside a plain one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConnectorSecrets {
    api_key: SecretString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_key: Option<SecretString>,
    #[serde(default)]
    previous_keys: Vec<SecretString>,
    site: String,
}

/// A connector's settings, holding no secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConnectorConfig {
    site: String,
    api_base: String,
}

const SPEC: OAuthSpec = OAuthSpec {
    authorize_url: "https://provider.example/oauth/authorize",
    token_url: "https://provider.example/oauth/token",
    revoke_url: None,
    api_base_url: Some("https://api.provider.example/v1"),
    start_options: &[],
    scopes: &["read"],
    scope_separator: " ",
    extra_authorize_params: &[],
    client_auth: ClientAuthStyle::BasicHeader,
    pkce: true,
    client_id_env: &["PROVIDER_CLIENT_ID"],
    client_secret_env: &["PROVIDER_CLIENT_SECRET"],
    callback_path: "/provider/callback",
    feature_flag: None,
    disabled_message: None,
};

/// Secret values of every awkward kind, at least 8 characters long.
fn secret_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Printable ASCII, quotes and backslashes included.
        "[ -~]{8,64}",
        // Any Unicode scalar that is not a control character.
        "\\PC{8,48}",
        // Line breaks, tabs, quotes and escapes mixed into key-like text.
        "[A-Za-z0-9\"'\\\\\n\r\t /+=_-]{8,64}",
        // Control characters and NUL, which Debug and JSON both escape.
        "[a-z\\x00-\\x1f\\x7f]{8,32}",
        // Long tokens (PEM bodies, JWTs).
        "[A-Za-z0-9+/=_.-]{1024,4096}",
    ]
    .prop_filter("the secret must not be blank", |text| {
        !text.trim().is_empty()
    })
}

/// Every way `secret` could show up in text: as is, as `Debug` escapes it inside a
/// quoted string, and as JSON escapes it.
fn spellings(secret: &str) -> Vec<String> {
    let debug = format!("{secret:?}");
    let json = serde_json::to_string(secret).expect("a string serialises");
    let mut spellings = vec![
        secret.to_owned(),
        debug[1..debug.len() - 1].to_owned(),
        json[1..json.len() - 1].to_owned(),
    ];
    spellings.sort();
    spellings.dedup();
    spellings
}

/// Fails when `text` (the rendering named `what`) holds `secret` in any spelling.
/// A spelling that is also part of `baseline`, the same rendering made with an
/// unrelated secret, is fixed text and not a leak.
fn assert_hidden(what: &str, text: &str, baseline: &str, secret: &str) {
    for spelling in spellings(secret) {
        if text.contains(&spelling) && !baseline.contains(&spelling) {
            panic!("{what} shows the secret {secret:?}:\n{text}");
        }
    }
}

/// The renderings of `value` a log line, an error or an API answer could carry.
fn renderings<T: std::fmt::Debug + ?Sized>(value: &T) -> Vec<(&'static str, String)> {
    vec![
        ("Debug", format!("{value:?}")),
        ("alternate Debug", format!("{value:#?}")),
    ]
}

/// The JSON renderings of `value`.
fn json_renderings<T: Serialize + ?Sized>(value: &T) -> Vec<(&'static str, String)> {
    vec![
        ("JSON", serde_json::to_string(value).expect("serialises")),
        (
            "pretty JSON",
            serde_json::to_string_pretty(value).expect("serialises"),
        ),
        (
            "JSON value",
            serde_json::to_value(value).expect("serialises").to_string(),
        ),
    ]
}

const UNRELATED: &str = "unrelated-baseline-secret";

fn tokens(access: &str, refresh: &str) -> OAuthTokens {
    OAuthTokens {
        access_token: access.into(),
        refresh_token: Some(refresh.into()),
        expires_at: Some(Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()),
        token_type: Some("bearer".into()),
    }
}

fn connector_secrets(secret: &str) -> ConnectorSecrets {
    ConnectorSecrets {
        api_key: secret.into(),
        app_key: Some(secret.into()),
        previous_keys: vec![secret.into(), "older".into()],
        site: "datadoghq.eu".into(),
    }
}

fn credentials(secret: &str) -> Credentials<ConnectorConfig, ConnectorSecrets> {
    let mut credentials = Credentials::new(
        ConnectorConfig {
            site: "datadoghq.eu".into(),
            api_base: "https://api.datadoghq.eu".into(),
        },
        connector_secrets(secret),
    )
    .with_tokens(tokens(secret, secret));
    credentials.webhook_secret = Some(secret.into());
    credentials.webhook_secrets = vec![ProviderWebhookSecret::new(
        secret.into(),
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
    )];
    credentials
}

fn grant(secret: &str) -> OAuthGrant {
    OAuthGrant {
        access_token: secret.into(),
        refresh_token: Some(secret.into()),
        expires_at: None,
        scopes: vec!["read".into()],
        token_type: Some("bearer".into()),
        extra: Map::new(),
        options: Map::new(),
    }
}

fn form(secret: &str) -> FormFields {
    let mut fields = Map::new();
    fields.insert("api_key".into(), json!(secret));
    fields.insert("app_key".into(), json!([secret]));
    fields.insert("token".into(), json!({ "value": secret }));
    FormFields(fields)
}

/// Every rendering of every secret-holding type for `secret`.
fn everything(secret: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut add = |kind: &str, forms: Vec<(&'static str, String)>| {
        all.extend(
            forms
                .into_iter()
                .map(|(form, text)| (format!("{kind} {form}"), text)),
        );
    };
    let wrapped = SecretString::from(secret);
    add("Secret", renderings(&wrapped));
    add("Secret", json_renderings(&wrapped));
    add("Secret", vec![("Display", wrapped.to_string())]);
    let bytes = Secret::new(secret.as_bytes().to_vec());
    add("Secret<Vec<u8>>", renderings(&bytes));
    add("connector secrets", renderings(&connector_secrets(secret)));
    add(
        "connector secrets",
        json_renderings(&connector_secrets(secret)),
    );
    add("credentials", renderings(&credentials(secret)));
    add("OAuth tokens", renderings(&tokens(secret, secret)));
    add("OAuth grant", renderings(&grant(secret)));
    add(
        "OAuth request",
        renderings(&AuthRequest::OAuth(grant(secret))),
    );
    add("connect form", renderings(&AuthRequest::Form(form(secret))));
    let client = OAuthClientCredentials::for_spec("client-id", secret.into(), &SPEC);
    add("OAuth client credentials", renderings(&client));
    let revealed = reveal_json(&connector_secrets(secret)).expect("reveals");
    add("revealed JSON", renderings(&revealed));
    add(
        "dynamic credentials",
        renderings(&DynCredentials {
            config: json!({ "site": "datadoghq.eu" }),
            secrets: revealed,
        }),
    );
    // Form fields of the wrong type are refused without echoing the value.
    let fields = form(secret);
    for name in ["app_key", "token"] {
        for error in [
            fields.text(name).expect_err("not a string"),
            fields.filled(name).expect_err("not a string"),
        ] {
            add("form field error", vec![("Display", error.to_string())]);
            add("form field error", renderings(&error));
        }
    }
    // A refused destination names the host, never the client secret.
    let elsewhere = url::Url::parse("https://attacker.example/token").expect("a URL");
    let error = client.secret_for(&elsewhere).expect_err("another origin");
    add(
        "client credentials error",
        vec![("Display", error.to_string())],
    );
    add("client credentials error", renderings(&error));
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_rendering_of_a_secret_or_its_holders_shows_it(secret in secret_text()) {
        let baselines = everything(UNRELATED);
        let forms = everything(&secret);
        prop_assert_eq!(forms.len(), baselines.len());
        for ((what, text), (_, baseline)) in forms.iter().zip(&baselines) {
            assert_hidden(what, text, baseline, &secret);
        }
        // The fixed text is what shows instead.
        prop_assert_eq!(SecretString::from(secret.as_str()).to_string(), REDACTED);
    }

    #[test]
    fn the_value_stays_reachable_through_its_doors(secret in secret_text()) {
        // Not vacuous: the same value is there to leak, and comes back in full
        // through `expose` and the storage door, in every spelling the scan looks for.
        let wrapped = SecretString::from(secret.as_str());
        prop_assert_eq!(wrapped.expose(), &secret);
        let revealed = reveal_json(&connector_secrets(&secret)).expect("reveals");
        prop_assert_eq!(revealed.expose()["api_key"].as_str(), Some(secret.as_str()));
        let stored = revealed.expose().to_string();
        let json = serde_json::to_string(&secret).unwrap();
        prop_assert!(stored.contains(&json[1..json.len() - 1]));
        let back: ConnectorSecrets = revealed.deserialize().expect("reads back");
        prop_assert_eq!(back.api_key.expose(), &secret);
        prop_assert_eq!(back.previous_keys[0].expose(), &secret);
    }

    #[test]
    fn revealing_is_scoped_to_one_call(secret in secret_text()) {
        // After `reveal_json` (and while another value is revealed), ordinary
        // serialisation on the same thread redacts again.
        let value = connector_secrets(&secret);
        let revealed = reveal_json(&value).expect("reveals");
        prop_assert_eq!(revealed.expose()["app_key"].as_str(), Some(secret.as_str()));
        let after = serde_json::to_string(&value).expect("serialises");
        assert_hidden("JSON after reveal_json", &after, &serde_json::to_string(&connector_secrets(UNRELATED)).unwrap(), &secret);
        let nested: Vec<RevealedJson> = (0..2).map(|_| reveal_json(&value).unwrap()).collect();
        prop_assert_eq!(nested[1].expose(), revealed.expose());
        let again = serde_json::to_string(&value).expect("serialises");
        prop_assert_eq!(again, after);
    }

    #[test]
    fn no_secrets_reads_no_field(secret in secret_text()) {
        // A connector that keeps no secrets of its own refuses a stored field,
        // naming the key and not its value.
        let error = serde_json::from_value::<NoSecrets>(json!({ "api_key": secret }))
            .expect_err("an unknown field");
        let baseline = serde_json::from_value::<NoSecrets>(json!({ "api_key": UNRELATED }))
            .expect_err("an unknown field");
        assert_hidden("NoSecrets error", &error.to_string(), &baseline.to_string(), &secret);
        prop_assert!(error.to_string().contains("api_key"));
    }
}
