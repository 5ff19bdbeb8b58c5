//! The service-account connect form, Google OAuth grants, and the credentials they
//! yield; the RS256 JWT-bearer assertion a service-account key signs.
//!
//! OAuth tokens live in the shared token slot (the engine refreshes them); an
//! uploaded key is kept whole as one secret and only ever read to sign assertions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use patchbay_core::{Error, ErrorKind, FormFields, OAuthGrant, OAuthTokens, Result, SecretString};
use patchbay_http::HttpClient;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::config::{is_project_id, GcpConfig, MAX_SELECTED_PROJECTS};

/// The connect field (and OAuth start option) naming the projects to use.
pub const PROJECTS_OPTION: &str = "projects";
/// The connect field holding the uploaded key.
pub const KEY_FIELD: &str = "service_account_json";
/// The grant type of a JWT-bearer token request (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long a signed assertion is valid: Google accepts at most one hour.
pub const ASSERTION_LIFETIME_SECS: i64 = 3600;

/// The reference's messages for a refused upload, word for word.
pub mod messages {
    /// The key field is absent or not a string.
    pub const KEY_MISSING: &str = "Missing 'service_account_json' field or value is not a string";
    /// The key is not JSON; the parser's reason follows.
    pub const NOT_JSON: &str = "Uploaded file is not valid JSON";
    /// The key is JSON but not a service-account key.
    pub const WRONG_TYPE: &str =
        "Service account JSON must have 'type' field equal to 'service_account'";
    /// The private key does not parse.
    pub const MALFORMED: &str = "Service account key is malformed — check that 'private_key' is a valid PEM and all fields are intact";
    /// Google's token endpoint refused the assertion.
    pub const REJECTED: &str = "Google rejected the service account key — it may be revoked, the SA may be disabled, or the project may not have the required APIs enabled";
    /// The service account reaches no project.
    pub const SA_NO_PROJECTS: &str = "The uploaded service account has no accessible GCP projects. Grant it at least roles/viewer on a project before connecting.";
    /// The Google account reaches no project.
    pub const USER_NO_PROJECTS: &str = "User has no accessible GCP projects";
    /// An OAuth grant came without a refresh token.
    pub const NO_REFRESH_TOKEN: &str = "No refresh token available. Please re-authenticate.";
    /// A connection without any credential.
    pub const NO_CREDENTIALS: &str = "No GCP credentials found. Please authenticate with GCP.";
    /// Minting or refreshing an access token failed for another reason than a refusal.
    pub const REFRESH_FAILED: &str = "Token refresh failed";
    /// Google's token endpoint answered `redirect_uri_mismatch`.
    pub const REDIRECT_URI_MISMATCH: &str = "Redirect URI mismatch";

    /// The message for a required key field that is missing.
    pub fn missing_field(field: &str) -> String {
        format!("Missing required field '{field}' in service account JSON")
    }
}

/// What a user submits to connect with a service-account key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The service account's JSON key file, as text (IAM & Admin > Service Accounts >
    /// Keys > Add key > JSON). Grant the account roles/viewer (or narrower read roles)
    /// on the projects to query.
    pub service_account_json: SecretString,
    /// Optional: the project ids to use, as a list or comma-separated. Without it, every
    /// accessible project is used when there are at most five.
    #[serde(default)]
    pub projects: Option<Vec<String>>,
}

/// The secrets of a connection to Google Cloud, stored only in a secret store.
/// OAuth tokens are in the shared token slot, not here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcpSecrets {
    /// The uploaded service-account JSON key, for service-account connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_json: Option<SecretString>,
}

/// A parsed service-account key; the private key stays a redacting secret.
#[derive(Clone)]
pub struct ServiceAccountKey {
    /// `client_email`, the assertion's issuer.
    pub client_email: String,
    /// `project_id`, the project the key was made in.
    pub project_id: String,
    /// `private_key_id`, sent as the assertion's `kid` when present.
    pub private_key_id: Option<String>,
    /// `token_uri`, where assertions are exchanged for access tokens.
    pub token_uri: String,
    private_key: RsaPrivateKey,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

fn key_error(message: impl Into<String>) -> Error {
    Error::invalid_config(KEY_FIELD, message).with_hint(
        "upload the JSON key file exactly as Google Cloud Console downloaded it (IAM & Admin > Service Accounts > Keys)",
    )
}

impl ServiceAccountKey {
    /// Parses and checks an uploaded key: JSON, `type`, the required fields, the
    /// private key's PEM, and `token_uri` against `http`'s address policy.
    pub fn parse(text: &str, http: &HttpClient) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|error| key_error(format!("{}: {error}", messages::NOT_JSON)))?;
        let Value::Object(object) = value else {
            return Err(key_error(messages::WRONG_TYPE));
        };
        if object.get("type").and_then(Value::as_str) != Some("service_account") {
            return Err(key_error(messages::WRONG_TYPE));
        }
        let field = |name: &str| -> Result<String> {
            object
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| key_error(messages::missing_field(name)))
        };
        let project_id = field("project_id")?;
        let private_key = field("private_key")?;
        let client_email = field("client_email")?;
        let token_uri = field("token_uri")?;
        let private_key = RsaPrivateKey::from_pkcs8_pem(&private_key)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&private_key))
            .map_err(|_| key_error(messages::MALFORMED))?;
        if !client_email.contains('@') {
            return Err(key_error(messages::MALFORMED));
        }
        http.check_tenant_url("token_uri", &token_uri)?;
        let private_key_id = object
            .get("private_key_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        Ok(Self {
            client_email,
            project_id,
            private_key_id,
            token_uri,
            private_key,
        })
    }

    /// An RS256-signed JWT-bearer assertion for `scope`, issued now, valid one hour,
    /// with `aud` the key's own `token_uri`.
    pub fn assertion(&self, scope: &str) -> Result<SecretString> {
        let now = Utc::now().timestamp();
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let signing_input = format!("{}.{}", encode(&header), encode(&claims));
        let signer = SigningKey::<Sha256>::new(self.private_key.clone());
        let signature = signer
            .try_sign(signing_input.as_bytes())
            .map_err(|_| key_error(messages::MALFORMED))?;
        Ok(SecretString::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )))
    }
}

/// Reads the `projects` option or field: a list of project ids or one string of ids
/// separated by commas or spaces. Each must look like a project id; at most
/// [`MAX_SELECTED_PROJECTS`].
pub fn parse_projects(value: Option<&Value>) -> Result<Vec<String>> {
    let refuse = |message: String| {
        Error::invalid_config(PROJECTS_OPTION, message).with_hint(
            "give project ids such as [\"acme-prod\", \"acme-staging\"] (not names or numbers)",
        )
    };
    let raw: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(|id| id.trim().to_owned())
                    .ok_or_else(|| refuse("`projects` must list project ids as strings".to_owned()))
            })
            .collect::<Result<_>>()?,
        Some(_) => {
            return Err(refuse(
                "`projects` must be a list of project ids or a comma-separated string".to_owned(),
            ))
        }
    };
    let mut projects: Vec<String> = Vec::new();
    for id in raw {
        if !is_project_id(&id) {
            return Err(refuse(format!("`{id}` is not a Google Cloud project id")));
        }
        if !projects.contains(&id) {
            projects.push(id);
        }
    }
    if projects.len() > MAX_SELECTED_PROJECTS {
        return Err(refuse(format!(
            "at most {MAX_SELECTED_PROJECTS} projects per connection; got {}",
            projects.len()
        )));
    }
    Ok(projects)
}

impl ConnectForm {
    /// Reads the form, naming the field at fault with the reference's messages.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        let key = match fields.0.get(KEY_FIELD) {
            Some(Value::String(text)) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => return Err(key_error(messages::KEY_MISSING)),
        };
        let projects = parse_projects(fields.0.get(PROJECTS_OPTION))?;
        if let Some(other) = fields
            .0
            .keys()
            .find(|name| *name != KEY_FIELD && *name != PROJECTS_OPTION)
        {
            return Err(Error::invalid_config(
                other,
                format!("the Google Cloud form takes only `{KEY_FIELD}` and `{PROJECTS_OPTION}`; `{other}` is not accepted"),
            ));
        }
        Ok(Self {
            service_account_json: SecretString::new(key),
            projects: Some(projects),
        })
    }

    /// Checks the key and splits the form into settings and secrets.
    pub fn into_parts(self, http: &HttpClient) -> Result<(GcpConfig, GcpSecrets)> {
        let key = ServiceAccountKey::parse(self.service_account_json.expose(), http)?;
        let config = GcpConfig::service_account(
            key.client_email,
            key.project_id,
            self.projects.unwrap_or_default(),
        );
        Ok((
            config,
            GcpSecrets {
                service_account_json: Some(self.service_account_json),
            },
        ))
    }
}

/// Settings and tokens from a finished Google OAuth flow. A grant without a refresh
/// token is refused: the connection could not outlive its first hour.
pub fn from_grant(grant: OAuthGrant) -> Result<(GcpConfig, OAuthTokens)> {
    if grant.access_token.is_empty() {
        return Err(
            Error::invalid_config("access_token", "Google returned no access token")
                .with_hint("start the Google Cloud connection again"),
        );
    }
    if grant
        .refresh_token
        .as_ref()
        .is_none_or(|token| token.is_empty())
    {
        return Err(Error::new(ErrorKind::AuthFailed, messages::NO_REFRESH_TOKEN).with_hint(
            "Patchbay asks Google for offline access with prompt=consent; remove Patchbay's access at https://myaccount.google.com/permissions and connect again",
        ));
    }
    let mut options: Map<String, Value> = grant.options.clone();
    let projects = parse_projects(options.remove(PROJECTS_OPTION).as_ref())?;
    if let Some((other, _)) = options.into_iter().find(|(_, value)| !value.is_null()) {
        return Err(Error::invalid_config(
            &other,
            format!("Google Cloud OAuth takes only the `{PROJECTS_OPTION}` option; `{other}` is not accepted"),
        ));
    }
    let scopes = grant
        .scopes
        .iter()
        .flat_map(|scope| scope.split_whitespace())
        .map(str::to_owned)
        .collect();
    Ok((
        GcpConfig::oauth(projects, scopes),
        OAuthTokens::from_grant(&grant),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(refresh: Option<&str>, options: Value) -> OAuthGrant {
        OAuthGrant {
            access_token: "at".into(),
            refresh_token: refresh.map(Into::into),
            expires_at: None,
            scopes: vec!["https://www.googleapis.com/auth/cloud-platform.read-only".to_owned()],
            token_type: Some("Bearer".to_owned()),
            extra: Map::new(),
            options: options.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn projects_come_as_a_list_or_a_string_and_must_be_ids() {
        assert_eq!(
            parse_projects(Some(&json!("acme-prod, acme-staging acme-prod"))).unwrap(),
            ["acme-prod", "acme-staging"]
        );
        assert_eq!(
            parse_projects(Some(&json!(["acme-prod"]))).unwrap(),
            ["acme-prod"]
        );
        assert!(parse_projects(None).unwrap().is_empty());
        for bad in [json!(["Acme Prod"]), json!(7), json!([1])] {
            assert_eq!(
                parse_projects(Some(&bad)).unwrap_err().field(),
                Some(PROJECTS_OPTION)
            );
        }
        let many: Vec<String> = (0..11).map(|n| format!("project-{n:02}")).collect();
        assert!(parse_projects(Some(&json!(many)))
            .unwrap_err()
            .message()
            .contains("at most 10"));
    }

    #[test]
    fn grants_need_a_refresh_token_and_take_only_the_projects_option() {
        let error = from_grant(grant(None, json!({}))).unwrap_err();
        assert_eq!(error.message(), messages::NO_REFRESH_TOKEN);
        let (config, tokens) =
            from_grant(grant(Some("rt"), json!({"projects": ["acme-prod"]}))).unwrap();
        assert_eq!(config.requested_projects, ["acme-prod"]);
        assert_eq!(tokens.refresh_token.unwrap().expose(), "rt");
        let error = from_grant(grant(Some("rt"), json!({"site": "x"}))).unwrap_err();
        assert_eq!(error.field(), Some("site"));
    }

    #[test]
    fn a_missing_or_non_string_key_gets_the_reference_message() {
        for form in [
            json!({}),
            json!({"service_account_json": {"type": "service_account"}}),
        ] {
            let error = ConnectForm::from_fields(FormFields(form.as_object().cloned().unwrap()))
                .unwrap_err();
            assert_eq!(error.field(), Some(KEY_FIELD));
            assert_eq!(error.message(), messages::KEY_MISSING);
        }
    }
}
