//! The service-principal connect form, delegated OAuth grants, and the credentials
//! they yield. The client secrets are tenant-supplied and live only in
//! [`AzureSecrets`] (redacting types in the secret store), never in the config.

use patchbay_core::{Error, FormFields, OAuthGrant, OAuthTokens, Result, SecretString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{check_guid, check_tenant, AuthType, AzureConfig};

/// The reference system's message for a form without tenant, client id or secret.
pub const MISSING_CREDENTIALS: &str = "Missing required credentials";
/// The reference system's message for an incomplete read-only principal.
pub const READ_ONLY_INCOMPLETE: &str = "readOnlyCredentials must include clientId and clientSecret";
/// The OAuth start option naming the subscription to use.
pub const SUBSCRIPTION_OPTION: &str = "subscription_id";

/// What a user types to connect Azure with a service principal (the guide's app
/// registration with a client secret and a Reader role on the subscription).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// Directory (tenant) ID from the app registration's Overview page (a GUID or a verified domain).
    pub tenant_id: String,
    /// Application (client) ID from the app registration's Overview page.
    pub client_id: String,
    /// The client secret's Value (Certificates & secrets), copied when it was created.
    pub client_secret: SecretString,
    /// The subscription to query; by default the first enabled one the principal sees.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// Optional read-only principal used for queries: its tenant (default: `tenant_id`).
    #[serde(default)]
    pub read_only_tenant_id: Option<String>,
    /// Optional read-only principal: its application (client) ID.
    #[serde(default)]
    pub read_only_client_id: Option<String>,
    /// Optional read-only principal: its client secret.
    #[serde(default)]
    pub read_only_client_secret: Option<SecretString>,
    /// A name for this connection, shown on the Connectors page.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// The secrets of an Azure connection: the service principals' client secrets.
/// Delegated connections keep their tokens in the shared token slot instead.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSecrets {
    /// The main principal's client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretString>,
    /// The read-only principal's client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_client_secret: Option<SecretString>,
}

/// The first filled field among `names` (the guide's name and the reference's aliases).
fn first_filled(fields: &FormFields, names: &[&str]) -> Result<Option<String>> {
    for name in names {
        if let Some(value) = fields.filled(name)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// The read-only block of the reference system's form (`readOnlyCredentials`), as fields.
fn read_only_block(fields: &FormFields) -> Result<FormFields> {
    match fields.0.get("readOnlyCredentials") {
        None | Some(Value::Null) => Ok(FormFields::default()),
        Some(Value::Object(map)) => Ok(FormFields(map.clone())),
        Some(_) => Err(Error::invalid_config(
            "readOnlyCredentials",
            READ_ONLY_INCOMPLETE,
        )),
    }
}

fn missing(field: &str) -> Error {
    Error::invalid_config(field, MISSING_CREDENTIALS).with_hint(format!(
        "fill in `{field}`: tenant_id, client_id and client_secret come from the app registration \
         (Overview, and Certificates & secrets)"
    ))
}

impl ConnectForm {
    /// Reads the form, accepting the reference system's aliases (`tenantId`,
    /// `clientId`/`appId`, `clientSecret`/`password`, `readOnlyCredentials{…}`);
    /// ids are checked before they are ever put into a URL.
    pub fn from_fields(fields: &FormFields) -> Result<Self> {
        let tenant = first_filled(fields, &["tenant_id", "tenantId", "tenant"])?
            .ok_or_else(|| missing("tenant_id"))?;
        let client = first_filled(fields, &["client_id", "clientId", "appId"])?
            .ok_or_else(|| missing("client_id"))?;
        let secret = first_filled(fields, &["client_secret", "clientSecret", "password"])?
            .ok_or_else(|| missing("client_secret"))?;
        let tenant_id = check_tenant("tenant_id", &tenant)?;
        let client_id = check_guid("client_id", &client, "application (client) ID")?;
        let subscription_id = first_filled(fields, &["subscription_id", "subscriptionId"])?
            .map(|id| check_guid("subscription_id", &id, "subscription ID"))
            .transpose()?;

        let block = read_only_block(fields)?;
        let ro_tenant = first_filled(fields, &["read_only_tenant_id"])?
            .or(first_filled(&block, &["tenantId", "tenant_id", "tenant"])?);
        let ro_client = first_filled(fields, &["read_only_client_id"])?
            .or(first_filled(&block, &["clientId", "client_id", "appId"])?);
        let ro_secret = first_filled(fields, &["read_only_client_secret"])?.or(first_filled(
            &block,
            &["clientSecret", "client_secret", "password"],
        )?);
        let (read_only_tenant_id, read_only_client_id, read_only_client_secret) = match (
            ro_tenant, ro_client, ro_secret,
        ) {
            (None, None, None) => (None, None, None),
            (tenant, Some(client), Some(secret)) => (
                Some(match tenant {
                    Some(tenant) => check_tenant("read_only_tenant_id", &tenant)?,
                    None => tenant_id.clone(),
                }),
                Some(check_guid(
                    "read_only_client_id",
                    &client,
                    "read-only application (client) ID",
                )?),
                Some(SecretString::new(secret)),
            ),
            // Never fall back to the full-access principal when the block is incomplete.
            (_, client, _) => {
                let field = if client.is_none() {
                    "read_only_client_id"
                } else {
                    "read_only_client_secret"
                };
                return Err(Error::invalid_config(field, READ_ONLY_INCOMPLETE).with_hint(
                        "give both the read-only principal's client id and client secret, or neither",
                    ));
            }
        };
        Ok(Self {
            tenant_id,
            client_id,
            client_secret: SecretString::new(secret),
            subscription_id,
            read_only_tenant_id,
            read_only_client_id,
            read_only_client_secret,
            display_name: fields.filled("display_name")?,
        })
    }

    /// Splits the form into settings and secrets.
    pub fn into_parts(self) -> (AzureConfig, AzureSecrets) {
        let mut config = AzureConfig::new(AuthType::ServicePrincipal);
        config.tenant_id = Some(self.tenant_id);
        config.client_id = Some(self.client_id);
        config.subscription_id = self.subscription_id;
        config.read_only_tenant_id = self.read_only_tenant_id;
        config.read_only_client_id = self.read_only_client_id;
        config.display_name = self.display_name;
        let secrets = AzureSecrets {
            client_secret: Some(self.client_secret),
            read_only_client_secret: self.read_only_client_secret,
        };
        (config, secrets)
    }
}

/// Settings and tokens from a finished delegated flow; the subscription comes from
/// the `subscription_id` start option when given.
pub fn from_grant(grant: OAuthGrant) -> Result<(AzureConfig, OAuthTokens)> {
    if let Some(name) = grant
        .options
        .keys()
        .find(|name| name.as_str() != SUBSCRIPTION_OPTION)
    {
        return Err(Error::invalid_config(
            name.as_str(),
            format!("Azure OAuth takes only the `{SUBSCRIPTION_OPTION}` option; `{name}` is not accepted"),
        ));
    }
    if grant.access_token.is_empty() {
        return Err(Error::invalid_config(
            "access_token",
            "Microsoft Azure returned no access token",
        )
        .with_hint("start the Microsoft Azure connection again"));
    }
    let mut config = AzureConfig::new(AuthType::Oauth);
    config.subscription_id = match grant.options.get(SUBSCRIPTION_OPTION) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(check_guid(SUBSCRIPTION_OPTION, id, "subscription ID")?),
        Some(_) => {
            return Err(Error::invalid_config(
                SUBSCRIPTION_OPTION,
                "`subscription_id` must be a string",
            ))
        }
    };
    Ok((config, OAuthTokens::from_grant(&grant)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use serde_json::json;

    const TENANT: &str = "31c75423-32d6-4322-88b7-c478bdde4858";
    const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

    fn fields(value: Value) -> FormFields {
        match value {
            Value::Object(map) => FormFields(map),
            other => panic!("test forms are objects, got {other}"),
        }
    }

    #[test]
    fn missing_fields_give_the_reference_message_naming_the_field() {
        let error = ConnectForm::from_fields(&fields(json!({}))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("tenant_id"));
        assert_eq!(error.message(), MISSING_CREDENTIALS);
        let error =
            ConnectForm::from_fields(&fields(json!({"tenant_id": TENANT, "client_id": CLIENT})))
                .unwrap_err();
        assert_eq!(error.field(), Some("client_secret"));
    }

    #[test]
    fn aliases_and_the_read_only_block_are_read() {
        let form = ConnectForm::from_fields(&fields(json!({
            "tenantId": TENANT, "appId": CLIENT, "password": "s3cret-value",
            "readOnlyCredentials": {"clientId": CLIENT, "clientSecret": "ro-secret"}
        })))
        .unwrap();
        let (config, secrets) = form.into_parts();
        assert_eq!(config.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(config.read_only_tenant_id.as_deref(), Some(TENANT));
        assert_eq!(secrets.client_secret.unwrap().expose(), "s3cret-value");
        assert_eq!(
            secrets.read_only_client_secret.unwrap().expose(),
            "ro-secret"
        );
    }

    #[test]
    fn an_incomplete_read_only_block_is_refused_not_ignored() {
        let error = ConnectForm::from_fields(&fields(json!({
            "tenant_id": TENANT, "client_id": CLIENT, "client_secret": "x",
            "readOnlyCredentials": {"clientId": CLIENT}
        })))
        .unwrap_err();
        assert_eq!(error.message(), READ_ONLY_INCOMPLETE);
        assert_eq!(error.field(), Some("read_only_client_secret"));
    }

    #[test]
    fn ids_are_checked_before_they_reach_a_url() {
        let error = ConnectForm::from_fields(&fields(json!({
            "tenant_id": "../../evil", "client_id": CLIENT, "client_secret": "x"
        })))
        .unwrap_err();
        assert_eq!(error.field(), Some("tenant_id"));
        let error = ConnectForm::from_fields(&fields(json!({
            "tenant_id": TENANT, "client_id": CLIENT, "client_secret": "x",
            "subscription_id": "sub/../../x"
        })))
        .unwrap_err();
        assert_eq!(error.field(), Some("subscription_id"));
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(
            schema["properties"]["client_secret"]["writeOnly"],
            json!(true)
        );
    }
}
