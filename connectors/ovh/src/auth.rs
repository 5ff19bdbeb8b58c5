//! The application-key connect form, OAuth grants, and the credentials they yield.

use patchbay_core::{Error, FormFields, OAuthGrant, OAuthTokens, Result, SecretString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{AuthMethod, OvhConfig, Region, REGION_NAMES};

/// What a user types to connect OVHcloud with an application key (the keys created
/// at `https://<region>.api.ovh.com/createToken/`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The region of the account: `ovh-eu`, `ovh-ca` or `ovh-us`.
    pub region: Region,
    /// The application key (AK).
    pub application_key: SecretString,
    /// The application secret (AS); it signs every request and is never sent.
    pub application_secret: SecretString,
    /// The consumer key (CK) validated for the application.
    pub consumer_key: SecretString,
}

/// The secrets of an OVHcloud connection; OAuth tokens live in the shared token slot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OvhSecrets {
    /// The application key, sent as `X-Ovh-Application`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_key: Option<SecretString>,
    /// The application secret, used only to compute `X-Ovh-Signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_secret: Option<SecretString>,
    /// The consumer key, sent as `X-Ovh-Consumer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_key: Option<SecretString>,
}

/// Reads a region name, with the reference system's messages for a missing or unknown one.
pub fn region_field(field: &str, text: Option<&str>) -> Result<Region> {
    let hint = "use the region of the OVHcloud account: ovh-eu (Europe), ovh-ca (Canada) or ovh-us (United States)";
    let text = text.map(str::trim).filter(|text| !text.is_empty());
    let Some(text) = text else {
        return Err(Error::invalid_config(
            field,
            format!("Missing region. Must be one of: {REGION_NAMES}"),
        )
        .with_hint(hint));
    };
    Region::parse(text).ok_or_else(|| {
        // The text is not echoed: a pasted value may be a key.
        Error::invalid_config(
            field,
            format!("Invalid region. Must be one of: {REGION_NAMES}"),
        )
        .with_hint(hint)
    })
}

/// Reads one key: required, and made of letters and digits only, as OVHcloud issues them.
fn key_field(fields: &FormFields, field: &str, what: &str) -> Result<SecretString> {
    let value = fields.filled(field)?.ok_or_else(|| {
        Error::invalid_config(field, format!("{what} is required")).with_hint(
            "create the keys at https://<region>.api.ovh.com/createToken/ with GET rights on /me, /cloud/* and /dedicated/*",
        )
    })?;
    if !(8..=128).contains(&value.len()) || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid_config(
            field,
            format!("{what} is malformed: OVHcloud keys are 8 to 128 letters and digits"),
        )
        .with_hint("paste the key exactly as OVHcloud showed it, without spaces"));
    }
    Ok(SecretString::new(value))
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: &FormFields) -> Result<Self> {
        Ok(Self {
            region: region_field("region", fields.text("region")?)?,
            application_key: key_field(fields, "application_key", "Application key")?,
            application_secret: key_field(fields, "application_secret", "Application secret")?,
            consumer_key: key_field(fields, "consumer_key", "Consumer key")?,
        })
    }

    /// Splits the form into settings and secrets.
    pub fn into_parts(self) -> (OvhConfig, OvhSecrets) {
        (
            OvhConfig::new(self.region, AuthMethod::ApplicationKey),
            OvhSecrets {
                application_key: Some(self.application_key),
                application_secret: Some(self.application_secret),
                consumer_key: Some(self.consumer_key),
            },
        )
    }
}

/// Settings and tokens from a finished OAuth flow; the region is the `region` start
/// option the OAuth engine already checked against the configured regions.
pub fn from_grant(grant: OAuthGrant) -> Result<(OvhConfig, OAuthTokens)> {
    let region = region_field(
        "region",
        grant
            .options
            .get("region")
            .and_then(serde_json::Value::as_str),
    )?;
    if grant.access_token.is_empty() {
        return Err(
            Error::invalid_config("access_token", "No access_token received from OVH")
                .with_hint("start the OVHcloud connection again"),
        );
    }
    Ok((
        OvhConfig::new(region, AuthMethod::Oauth),
        OAuthTokens::from_grant(&grant),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use serde_json::{json, Value};

    fn fields(value: Value) -> FormFields {
        match value {
            Value::Object(map) => FormFields(map),
            other => panic!("test forms are objects, got {other}"),
        }
    }

    const GOOD: &str = "TDPKJdwZwAQPwKX2";

    fn form(overrides: Value) -> Value {
        let mut base = json!({
            "region": "ovh-eu", "application_key": GOOD,
            "application_secret": "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk",
            "consumer_key": "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY"
        });
        for (key, value) in overrides.as_object().unwrap() {
            if value.is_null() {
                base.as_object_mut().unwrap().remove(key);
            } else {
                base[key] = value.clone();
            }
        }
        base
    }

    #[test]
    fn every_field_failure_names_its_field() {
        let cases = [
            (
                json!({"region": null}),
                "region",
                "Missing region. Must be one of: ovh-eu, ovh-ca, ovh-us",
            ),
            (
                json!({"region": "ovh-fr"}),
                "region",
                "Invalid region. Must be one of: ovh-eu, ovh-ca, ovh-us",
            ),
            (
                json!({"application_key": null}),
                "application_key",
                "Application key is required",
            ),
            (
                json!({"application_secret": ""}),
                "application_secret",
                "Application secret is required",
            ),
            (
                json!({"consumer_key": null}),
                "consumer_key",
                "Consumer key is required",
            ),
            (
                json!({"application_key": "short"}),
                "application_key",
                "Application key is malformed: OVHcloud keys are 8 to 128 letters and digits",
            ),
            (
                json!({"consumer_key": "5mBuy6SUQcRw2ZUx g0cG68BoDKpED4KY"}),
                "consumer_key",
                "Consumer key is malformed: OVHcloud keys are 8 to 128 letters and digits",
            ),
            (
                json!({"application_secret": 12345678}),
                "application_secret",
                "",
            ),
        ];
        for (overrides, field, message) in cases {
            let error = ConnectForm::from_fields(&fields(form(overrides.clone()))).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{overrides}");
            assert_eq!(error.field(), Some(field), "{overrides}");
            if !message.is_empty() {
                assert_eq!(error.message(), message, "{overrides}");
            }
            assert!(!error.to_string().contains("g0cG68"), "{error}");
        }
    }

    #[test]
    fn the_form_yields_an_application_key_connection_in_its_region() {
        let form = ConnectForm::from_fields(&fields(form(json!({"region": "ovh-ca"})))).unwrap();
        let (config, secrets) = form.into_parts();
        assert_eq!(config.region, Region::Ca);
        assert_eq!(config.auth_method, AuthMethod::ApplicationKey);
        assert_eq!(secrets.application_key.unwrap().expose(), GOOD);
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        for secret in ["application_key", "application_secret", "consumer_key"] {
            assert_eq!(
                schema["properties"][secret]["writeOnly"],
                json!(true),
                "{secret}"
            );
        }
    }

    #[test]
    fn a_grant_takes_its_region_and_needs_an_access_token() {
        let grant = |token: &str, region: Option<&str>| OAuthGrant {
            access_token: token.into(),
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            token_type: None,
            extra: serde_json::Map::new(),
            options: region
                .map(|region| serde_json::Map::from_iter([("region".to_owned(), json!(region))]))
                .unwrap_or_default(),
        };
        let error = from_grant(grant("", Some("ovh-eu"))).unwrap_err();
        assert_eq!(error.message(), "No access_token received from OVH");
        let error = from_grant(grant("t", None)).unwrap_err();
        assert_eq!(error.field(), Some("region"));
        let (config, _) = from_grant(grant("t", Some("ovh-us"))).unwrap();
        assert_eq!(config.region, Region::Us);
        assert_eq!(config.auth_method, AuthMethod::Oauth);
    }
}
