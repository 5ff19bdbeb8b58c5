//! Secret paths inside the mount and the `vault:<mount>/<path>` references that name them.

use patchbay_core::{Error, ErrorKind, Result};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::secrets::{SecretLocation, SecretRef};

/// The reference scheme of this backend.
pub const SCHEME: &str = "vault";

/// Everything but `[A-Za-z0-9_.-]` is percent-encoded in a path segment.
const SEGMENT_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-');

/// Turns a tenant, connector or connection id into one safe path segment.
///
/// `/` and every other byte outside `[A-Za-z0-9_.-]` become `%XX`, and the
/// dot segments `.` and `..` have their dots encoded, so no input can name
/// a path outside its own folder.
pub fn sanitize_segment(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(
            Error::invalid_input(field, format!("{field} must not be empty"))
                .with_hint("secrets are stored per tenant, connector and connection id"),
        );
    }
    if value.bytes().all(|byte| byte == b'.') && value.len() <= 2 {
        return Ok("%2E".repeat(value.len()));
    }
    Ok(utf8_percent_encode(value, SEGMENT_ESCAPES).to_string())
}

/// Whether `segment` could have come out of [`sanitize_segment`].
fn is_sanitized_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let escape = bytes.get(index + 1..index + 3);
                if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                index += 3;
            }
            byte if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-') => {
                index += 1;
            }
            _ => return false,
        }
    }
    !matches!(segment, "" | "." | "..")
}

/// Checks a configured mount or base path: `/`-separated segments of
/// `[A-Za-z0-9_.-]`, none empty, `.` or `..`.
pub fn validate_prefix(variable: &str, value: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value.split('/').all(|segment| {
            !matches!(segment, "" | "." | "..")
                && segment
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
        });
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_config(
            variable,
            format!(
                "{variable} `{value}` must be path segments of letters, digits, `_`, `.` and `-` \
                 separated by `/`"
            ),
        ))
    }
}

/// Where secrets live: `<mount>` and `<base>` from the configuration.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The KV v2 mount.
    pub mount: String,
    /// The folder inside the mount that holds every tenant.
    pub base_path: String,
}

impl Layout {
    /// The path inside the mount for a new secret:
    /// `<base>/<orgs|users>/<tenant id>/<connector>/<connection id>`.
    pub fn secret_path(&self, location: &SecretLocation) -> Result<String> {
        Ok(format!(
            "{}/{}/{}/{}/{}",
            self.base_path,
            location.tenant.kind(),
            sanitize_segment("tenant", location.tenant.id())?,
            sanitize_segment("connector", &location.connector)?,
            sanitize_segment("connection_id", &location.connection_id)?,
        ))
    }

    /// The path inside the mount of a reference in the layout used before organisations
    /// and users were kept apart (`<base>/<tenant id>/<connector>/<connection id>`),
    /// or `None` for any other reference.
    pub fn parse_legacy<'r>(&self, reference: &'r SecretRef) -> Option<&'r str> {
        let (path, segments) = self.split(reference)?;
        (segments.len() == 3 && segments.iter().all(|segment| is_sanitized_segment(segment)))
            .then_some(path)
    }

    /// The path inside the mount and the segments below `<base>/`, for references of
    /// this backend, mount and base path.
    fn split<'r>(&self, reference: &'r SecretRef) -> Option<(&'r str, Vec<&'r str>)> {
        if reference.scheme() != SCHEME {
            return None;
        }
        let path = reference
            .path()
            .strip_prefix(self.mount.as_str())?
            .strip_prefix('/')?;
        let within_base = path
            .strip_prefix(self.base_path.as_str())?
            .strip_prefix('/')?;
        Some((path, within_base.split('/').collect()))
    }

    /// The reference recorded for a secret at `path` inside the mount.
    pub fn reference(&self, path: &str) -> SecretRef {
        SecretRef(format!("{SCHEME}:{}/{path}", self.mount))
    }

    /// The path inside the mount named by `reference`, refusing anything outside
    /// `<mount>/<base>/`. References in the earlier layout are still accepted, so their
    /// connections keep working until [`Layout::parse_legacy`] finds them to be moved.
    pub fn parse<'r>(&self, reference: &'r SecretRef) -> Result<&'r str> {
        if reference.scheme() != SCHEME {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("secret {reference} does not belong to the vault secret store"),
            )
            .with_hint(format!(
                "it was written by the `{}` backend; configure Patchbay to use that backend",
                reference.scheme()
            )));
        }
        let outside = || {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "secret {reference} is outside {}/{}/, where this Patchbay keeps secrets",
                    self.mount, self.base_path
                ),
            )
            .with_hint(
                "the reference was written with another VAULT_KV_MOUNT or VAULT_KV_BASE_PATH; \
                 restore those settings or reconnect the connection",
            )
        };
        let (path, segments) = self.split(reference).ok_or_else(outside)?;
        let in_layout = segments.len() == 4
            && matches!(segments[0], "orgs" | "users")
            && segments[1..]
                .iter()
                .all(|segment| is_sanitized_segment(segment));
        if !in_layout && self.parse_legacy(reference).is_none() {
            return Err(outside());
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use patchbay_core::Tenant;

    use super::*;
    use crate::secrets::SecretTenant;

    fn layout() -> Layout {
        Layout {
            mount: "kv/patchbay".into(),
            base_path: "tenants".into(),
        }
    }

    #[test]
    fn safe_characters_are_kept_and_the_rest_encoded() {
        assert_eq!(sanitize_segment("t", "org_42.a-b").unwrap(), "org_42.a-b");
        assert_eq!(sanitize_segment("t", "../x").unwrap(), "..%2Fx");
        assert_eq!(
            sanitize_segment("t", "a b/ü%").unwrap(),
            "a%20b%2F%C3%BC%25"
        );
        assert_eq!(sanitize_segment("t", "..").unwrap(), "%2E%2E");
        assert_eq!(sanitize_segment("t", ".").unwrap(), "%2E");
        assert_eq!(sanitize_segment("t", "...").unwrap(), "...");
        let error = sanitize_segment("tenant", "").unwrap_err();
        assert_eq!(error.field(), Some("tenant"));
    }

    #[test]
    fn paths_and_references_round_trip() {
        let layout = layout();
        let location = SecretLocation {
            tenant: SecretTenant::Org("../../other".into()),
            connector: "datadog".into(),
            connection_id: "c1".into(),
        };
        let path = layout.secret_path(&location).unwrap();
        assert_eq!(path, "tenants/orgs/..%2F..%2Fother/datadog/c1");
        let reference = layout.reference(&path);
        assert_eq!(
            reference.0,
            "vault:kv/patchbay/tenants/orgs/..%2F..%2Fother/datadog/c1"
        );
        assert_eq!(layout.parse(&reference).unwrap(), path);
        assert_eq!(layout.parse_legacy(&reference), None);
    }

    #[test]
    fn organisations_and_users_have_separate_folders() {
        let layout = layout();
        let org = SecretLocation::new(
            &Tenant {
                user_id: "u1".into(),
                org_id: Some("alice".into()),
            },
            "datadog",
            "c1",
        );
        let user = SecretLocation::new(&Tenant::user("alice"), "datadog", "c1");
        assert_eq!(
            layout.secret_path(&org).unwrap(),
            "tenants/orgs/alice/datadog/c1"
        );
        assert_eq!(
            layout.secret_path(&user).unwrap(),
            "tenants/users/alice/datadog/c1"
        );
    }

    #[test]
    fn legacy_references_are_recognised_and_still_read() {
        let layout = layout();
        let legacy = SecretRef("vault:kv/patchbay/tenants/acme/datadog/c1".into());
        assert_eq!(
            layout.parse_legacy(&legacy),
            Some("tenants/acme/datadog/c1")
        );
        assert_eq!(layout.parse(&legacy).unwrap(), "tenants/acme/datadog/c1");
        for other in [
            "vault:kv/patchbay/tenants/acme/datadog",
            "vault:kv/patchbay/elsewhere/acme/datadog/c1",
            "vault:kv/patchbay/tenants/../datadog/c1",
            "local:1234",
        ] {
            assert_eq!(
                layout.parse_legacy(&SecretRef(other.into())),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn references_outside_the_base_are_refused() {
        let layout = layout();
        for reference in [
            "vault:kv/patchbay/other/orgs/t/datadog/c1",
            "vault:kv/patchbay/tenants/orgs/t",
            "vault:kv/patchbay/tenants/orgs/t/datadog/c1/extra",
            "vault:kv/patchbay/tenants/orgs/../x/datadog/c1",
            "vault:kv/patchbay/tenants/orgs/t/./c1",
            "vault:kv/patchbay/tenants/orgs/t//c1",
            "vault:kv/patchbay/tenants/orgs/t/data dog/c1",
            "vault:kv/patchbay/tenants/orgs/t/datadog/c%2",
            "vault:kv/patchbay/tenants/groups/t/datadog/c1",
            "vault:kv/patchbay/tenants/t/datadog/c1/extra/more",
            "vault:kv/patchbay/tenants/t/data dog/c1",
            "vault:kv/patchbay/tenants/../datadog/c1",
            "vault:kv/patchbay/tenantsX/orgs/t/datadog/c1",
            "vault:secret/tenants/orgs/t/datadog/c1",
            "vault:kv/patchbayX/tenants/orgs/t/datadog/c1",
        ] {
            let error = layout.parse(&SecretRef(reference.into())).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{reference}");
        }
        let error = layout.parse(&SecretRef("local:1234".into())).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert!(error.hint().unwrap().contains("`local`"));
    }
}
