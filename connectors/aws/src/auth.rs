//! The connect form (a role ARN, an optional read-only role ARN, a region) and the
//! credentials it yields. The customer types no secret: the ExternalId is the
//! server's, added at validation.

use patchbay_core::{Error, FormFields, Result, SecretString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::client::DEFAULT_REGION;
use crate::config::{AwsConfig, CONNECTION_METHOD};

/// What a user types to connect an AWS account.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The ARN of the role Patchbay assumes, `arn:aws:iam::<12-digit account>:role/<name>`
    /// (the role created with the onboarding ExternalId, e.g. `PatchbayRole`).
    pub role_arn: String,
    /// Optional: the ARN of a read-only role in the same account; queries use it.
    #[serde(default)]
    pub read_only_role_arn: Option<String>,
    /// The region queries run in unless they name another (default `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
}

/// The secrets of a connection: only the ExternalId `AssumeRole` needs, filled in
/// by validation from the tenant's onboarding value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSecrets {
    /// The ExternalId sent with every `AssumeRole`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<SecretString>,
}

/// A parsed IAM role ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The 12-digit account id.
    pub account_id: String,
    /// The role name (after any path).
    pub name: String,
}

/// Parses `arn:<partition>:iam::<12 digits>:role/<path/><name>`.
pub fn parse_role_arn(arn: &str) -> Option<RoleArn> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !["aws", "aws-cn", "aws-us-gov"].contains(&partition) {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let path_and_name = resource.strip_prefix("role/")?;
    let name = path_and_name.rsplit('/').next()?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(allowed)
        || !path_and_name.chars().all(|c| allowed(c) || c == '/')
        || path_and_name.len() > 512
    {
        return None;
    }
    Some(RoleArn {
        partition: partition.to_owned(),
        account_id: account.to_owned(),
        name: name.to_owned(),
    })
}

/// Whether `region` looks like an AWS region code (`us-east-1`, `ap-southeast-2`).
pub fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        let role_arn = fields
            .filled("role_arn")?
            .ok_or_else(|| required("role_arn", "role_arn is required"))?;
        let form = Self {
            role_arn,
            read_only_role_arn: fields.filled("read_only_role_arn")?,
            region: fields.filled("region")?,
        };
        form.check()?;
        Ok(form)
    }

    fn check(&self) -> Result<()> {
        let main = parse_role_arn(&self.role_arn).ok_or_else(|| {
            Error::invalid_config("role_arn", "Invalid role ARN format").with_hint(
                "copy the Role ARN from the role's page in the IAM console: \
                 arn:aws:iam::<12-digit account id>:role/<role name>",
            )
        })?;
        if let Some(read_only) = &self.read_only_role_arn {
            let parsed = parse_role_arn(read_only).ok_or_else(|| {
                Error::invalid_config("read_only_role_arn", "Invalid readOnlyRoleArn format")
                    .with_hint(
                        "arn:aws:iam::<12-digit account id>:role/<role name>, or leave it empty",
                    )
            })?;
            if parsed.account_id != main.account_id {
                return Err(Error::invalid_config(
                    "read_only_role_arn",
                    format!(
                        "the read-only role is in account {}, the role in account {}",
                        parsed.account_id, main.account_id
                    ),
                )
                .with_hint("both roles must be in the account being connected"));
            }
        }
        if let Some(region) = &self.region {
            if !valid_region(region) {
                return Err(Error::invalid_config(
                    "region",
                    format!("`{region}` is not an AWS region code"),
                )
                .with_hint("use a region code such as us-east-1 or eu-west-3"));
            }
        }
        Ok(())
    }

    /// Splits the form into settings and (empty) secrets.
    pub fn into_parts(self) -> (AwsConfig, AwsSecrets) {
        let account_id = parse_role_arn(&self.role_arn)
            .map(|arn| arn.account_id)
            .unwrap_or_default();
        let can_execute = self
            .read_only_role_arn
            .as_ref()
            .is_some_and(|read_only| read_only != &self.role_arn);
        let config = AwsConfig {
            role_arn: self.role_arn,
            read_only_role_arn: self.read_only_role_arn,
            region: self.region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            account_id,
            connection_method: CONNECTION_METHOD.to_owned(),
            can_execute,
            assumed_arn: None,
        };
        (config, AwsSecrets::default())
    }
}

/// The error for a required field left empty.
fn required(field: &str, message: &str) -> Error {
    Error::invalid_config(field, message)
        .with_hint("fill in every required field of the connect form")
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

    #[test]
    fn role_arns_are_parsed_strictly() {
        let arn = parse_role_arn("arn:aws:iam::123456789012:role/PatchbayRole").unwrap();
        assert_eq!(arn.account_id, "123456789012");
        assert_eq!(arn.name, "PatchbayRole");
        assert!(parse_role_arn("arn:aws:iam::123456789012:role/team/Reader").is_some());
        for bad in [
            "",
            "PatchbayRole",
            "arn:aws:iam::12345678901:role/R",
            "arn:aws:iam::1234567890123:role/R",
            "arn:aws:iam::12345678901a:role/R",
            "arn:aws:iam::123456789012:user/R",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:s3::123456789012:role/R",
            "arn:other:iam::123456789012:role/R",
            "arn:aws:iam:us-east-1:123456789012:role/R",
            "arn:aws:iam::123456789012:role/bad name",
        ] {
            assert!(parse_role_arn(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_form_names_the_field_at_fault() {
        let error = ConnectForm::from_fields(fields(json!({}))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("role_arn"));
        assert_eq!(error.message(), "role_arn is required");
        let error = ConnectForm::from_fields(fields(json!({"role_arn": "arn:aws:iam::1:role/x"})))
            .unwrap_err();
        assert_eq!(error.message(), "Invalid role ARN format");
        let error = ConnectForm::from_fields(fields(json!({
            "role_arn": "arn:aws:iam::123456789012:role/A",
            "read_only_role_arn": "nope"
        })))
        .unwrap_err();
        assert_eq!(error.field(), Some("read_only_role_arn"));
        assert_eq!(error.message(), "Invalid readOnlyRoleArn format");
        let error = ConnectForm::from_fields(fields(json!({
            "role_arn": "arn:aws:iam::123456789012:role/A",
            "read_only_role_arn": "arn:aws:iam::210987654321:role/B"
        })))
        .unwrap_err();
        assert_eq!(error.field(), Some("read_only_role_arn"));
        let error = ConnectForm::from_fields(fields(json!({
            "role_arn": "arn:aws:iam::123456789012:role/A",
            "region": "Mars"
        })))
        .unwrap_err();
        assert_eq!(error.field(), Some("region"));
    }

    #[test]
    fn the_form_yields_settings_and_no_secret() {
        let form = ConnectForm::from_fields(fields(json!({
            "role_arn": " arn:aws:iam::123456789012:role/A ",
            "read_only_role_arn": "arn:aws:iam::123456789012:role/B"
        })))
        .unwrap();
        let (config, secrets) = form.into_parts();
        assert_eq!(config.account_id, "123456789012");
        assert_eq!(config.region, "us-east-1");
        assert!(config.can_execute);
        assert_eq!(config.query_role(), "arn:aws:iam::123456789012:role/B");
        assert_eq!(serde_json::to_value(&secrets).unwrap(), json!({}));
    }
}
