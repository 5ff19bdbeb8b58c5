//! [`VaultConfig`]: the Vault backend's settings, read from the variables operators already use.

use std::path::PathBuf;
use std::time::Duration;

use patchbay_core::{ConnectorEnv, Error, Result, SecretString};

use super::path::validate_prefix;

/// Vault's address, e.g. `https://vault.example.com:8200`.
pub const ADDR_ENV: &str = "VAULT_ADDR";
/// A static Vault token.
pub const TOKEN_ENV: &str = "VAULT_TOKEN";
/// The AppRole role id.
pub const ROLE_ID_ENV: &str = "VAULT_ROLE_ID";
/// The AppRole secret id.
pub const SECRET_ID_ENV: &str = "VAULT_SECRET_ID";
/// The KV v2 mount Patchbay writes to.
pub const KV_MOUNT_ENV: &str = "VAULT_KV_MOUNT";
/// The folder inside the mount that holds every tenant's secrets.
pub const KV_BASE_PATH_ENV: &str = "VAULT_KV_BASE_PATH";
/// The Vault Enterprise / OpenBao namespace.
pub const NAMESPACE_ENV: &str = "VAULT_NAMESPACE";
/// A PEM file with the CA certificates that sign Vault's TLS certificate.
pub const CACERT_ENV: &str = "VAULT_CACERT";
/// The bound on every Vault call, in seconds.
pub const TIMEOUT_ENV: &str = "PATCHBAY_VAULT_TIMEOUT_SECS";
/// How long resolved secrets stay in the in-process cache, in seconds (0 disables it).
pub const CACHE_TTL_ENV: &str = "PATCHBAY_VAULT_CACHE_TTL_SECS";

/// The mount used when `VAULT_KV_MOUNT` is not set.
pub const DEFAULT_KV_MOUNT: &str = "patchbay";
/// The base path used when `VAULT_KV_BASE_PATH` is not set.
pub const DEFAULT_KV_BASE_PATH: &str = "tenants";
/// The call bound used when `PATCHBAY_VAULT_TIMEOUT_SECS` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// The cache lifetime used when `PATCHBAY_VAULT_CACHE_TTL_SECS` is not set.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// Where the AppRole auth method is mounted.
pub const APPROLE_MOUNT: &str = "approle";

/// How Patchbay authenticates to Vault.
#[derive(Debug, Clone)]
pub enum VaultAuth {
    /// A token issued out of band (`VAULT_TOKEN`); renewed while it is renewable.
    Token(SecretString),
    /// AppRole login (`VAULT_ROLE_ID` + `VAULT_SECRET_ID`); tokens are renewed and,
    /// once they cannot be, replaced by a fresh login.
    AppRole {
        /// The role id.
        role_id: SecretString,
        /// The secret id.
        secret_id: SecretString,
    },
}

/// Settings of [`VaultSecretStore`](super::VaultSecretStore); `Debug` prints no token or secret id.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Vault's base URL (`http` or `https`).
    pub address: String,
    /// How to authenticate.
    pub auth: VaultAuth,
    /// The KV v2 mount, without slashes at either end.
    pub mount: String,
    /// The folder inside the mount for tenant secrets, without slashes at either end.
    pub base_path: String,
    /// The namespace sent as `X-Vault-Namespace`, if any.
    pub namespace: Option<String>,
    /// A PEM bundle of CA certificates to trust for Vault's TLS certificate.
    pub ca_cert: Option<PathBuf>,
    /// The bound on every Vault call.
    pub timeout: Duration,
    /// How long resolved secrets are kept in memory; zero disables the cache.
    pub cache_ttl: Duration,
}

impl VaultConfig {
    /// A configuration with defaults for everything but the address and the auth method.
    pub fn new(address: impl Into<String>, auth: VaultAuth) -> Self {
        Self {
            address: address.into(),
            auth,
            mount: DEFAULT_KV_MOUNT.to_owned(),
            base_path: DEFAULT_KV_BASE_PATH.to_owned(),
            namespace: None,
            ca_cert: None,
            timeout: DEFAULT_TIMEOUT,
            cache_ttl: DEFAULT_CACHE_TTL,
        }
    }

    /// Reads `VAULT_ADDR`, `VAULT_TOKEN` or `VAULT_ROLE_ID` + `VAULT_SECRET_ID`,
    /// `VAULT_KV_MOUNT`, `VAULT_KV_BASE_PATH`, `VAULT_NAMESPACE`, `VAULT_CACERT`,
    /// `PATCHBAY_VAULT_TIMEOUT_SECS` and `PATCHBAY_VAULT_CACHE_TTL_SECS`.
    pub fn from_env(env: &ConnectorEnv) -> Result<Self> {
        let address = env.get(ADDR_ENV).ok_or_else(|| {
            Error::invalid_config(ADDR_ENV, format!("{ADDR_ENV} is not set")).with_hint(format!(
                "set {ADDR_ENV} to Vault's URL, e.g. https://vault.example.com:8200"
            ))
        })?;
        let config = Self {
            address: address.trim().trim_end_matches('/').to_owned(),
            auth: auth_from_env(env)?,
            mount: env
                .get(KV_MOUNT_ENV)
                .unwrap_or(DEFAULT_KV_MOUNT)
                .trim()
                .trim_matches('/')
                .to_owned(),
            base_path: env
                .get(KV_BASE_PATH_ENV)
                .unwrap_or(DEFAULT_KV_BASE_PATH)
                .trim()
                .trim_matches('/')
                .to_owned(),
            namespace: env.get(NAMESPACE_ENV).map(|value| value.trim().to_owned()),
            ca_cert: env.get(CACERT_ENV).map(|value| PathBuf::from(value.trim())),
            timeout: seconds(env, TIMEOUT_ENV, DEFAULT_TIMEOUT, 1)?,
            cache_ttl: seconds(env, CACHE_TTL_ENV, DEFAULT_CACHE_TTL, 0)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the address, mount, base path and timeout; `connect` calls it too.
    pub fn validate(&self) -> Result<()> {
        let url = url::Url::parse(&self.address).map_err(|error| {
            Error::invalid_config(
                ADDR_ENV,
                format!("{ADDR_ENV} `{}` is not a URL: {error}", self.address),
            )
            .with_hint("use the form https://vault.example.com:8200")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::invalid_config(
                ADDR_ENV,
                format!("{ADDR_ENV} `{}` must be an http or https URL", self.address),
            )
            .with_hint("use the form https://vault.example.com:8200"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid_config(
                ADDR_ENV,
                format!("{ADDR_ENV} must not carry credentials"),
            )
            .with_hint(format!("put the token in {TOKEN_ENV} instead")));
        }
        validate_prefix(KV_MOUNT_ENV, &self.mount)?;
        validate_prefix(KV_BASE_PATH_ENV, &self.base_path)?;
        if self.timeout.is_zero() {
            return Err(Error::invalid_config(
                TIMEOUT_ENV,
                format!("{TIMEOUT_ENV} must be at least 1 second"),
            ));
        }
        Ok(())
    }
}

fn auth_from_env(env: &ConnectorEnv) -> Result<VaultAuth> {
    let token = env.get(TOKEN_ENV);
    let role_id = env.get(ROLE_ID_ENV);
    let secret_id = env.get(SECRET_ID_ENV);
    let one_method =
        format!("set either {TOKEN_ENV}, or {ROLE_ID_ENV} and {SECRET_ID_ENV} for AppRole login");
    match (token, role_id, secret_id) {
        (Some(token), None, None) => Ok(VaultAuth::Token(SecretString::from(token.trim()))),
        (None, Some(role_id), Some(secret_id)) => Ok(VaultAuth::AppRole {
            role_id: SecretString::from(role_id.trim()),
            secret_id: SecretString::from(secret_id.trim()),
        }),
        (None, None, None) => Err(Error::invalid_config(
            TOKEN_ENV,
            format!("no Vault credentials: {TOKEN_ENV}, {ROLE_ID_ENV} and {SECRET_ID_ENV} are all unset"),
        )
        .with_hint(one_method)),
        (Some(_), _, _) => Err(Error::invalid_config(
            TOKEN_ENV,
            format!(
                "{TOKEN_ENV} and AppRole variables ({ROLE_ID_ENV}, {SECRET_ID_ENV}) are both set; \
                 choose one auth method"
            ),
        )
        .with_hint(one_method)),
        (None, Some(_), None) => Err(Error::invalid_config(
            SECRET_ID_ENV,
            format!("{ROLE_ID_ENV} is set but {SECRET_ID_ENV} is not; AppRole login needs both"),
        )
        .with_hint(one_method)),
        (None, None, Some(_)) => Err(Error::invalid_config(
            ROLE_ID_ENV,
            format!("{SECRET_ID_ENV} is set but {ROLE_ID_ENV} is not; AppRole login needs both"),
        )
        .with_hint(one_method)),
    }
}

fn seconds(env: &ConnectorEnv, name: &str, default: Duration, minimum: u64) -> Result<Duration> {
    let Some(value) = env.get(name) else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(secs) if secs >= minimum => Ok(Duration::from_secs(secs)),
        _ => Err(Error::invalid_config(
            name,
            format!("{name} must be a whole number of seconds, at least {minimum}; got `{value}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use patchbay_core::ErrorKind;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ConnectorEnv {
        ConnectorEnv::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_apply_with_a_token() {
        let config = VaultConfig::from_env(&env(&[
            (ADDR_ENV, "http://127.0.0.1:8200/"),
            (TOKEN_ENV, "hvs.canary-token"),
        ]))
        .unwrap();
        assert_eq!(config.address, "http://127.0.0.1:8200");
        assert_eq!(config.mount, "patchbay");
        assert_eq!(config.base_path, "tenants");
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.cache_ttl, Duration::from_secs(30));
        assert!(config.namespace.is_none() && config.ca_cert.is_none());
        assert!(
            matches!(&config.auth, VaultAuth::Token(token) if token.expose() == "hvs.canary-token")
        );
        assert!(!format!("{config:?}").contains("canary"));
    }

    #[test]
    fn every_variable_is_read() {
        let config = VaultConfig::from_env(&env(&[
            (ADDR_ENV, "https://vault.internal:8200"),
            (ROLE_ID_ENV, "role-canary"),
            (SECRET_ID_ENV, "secret-canary"),
            (KV_MOUNT_ENV, "/kv/patchbay/"),
            (KV_BASE_PATH_ENV, "prod/tenants"),
            (NAMESPACE_ENV, "team-a"),
            (CACERT_ENV, "/etc/vault/ca.pem"),
            (TIMEOUT_ENV, "5"),
            (CACHE_TTL_ENV, "0"),
        ]))
        .unwrap();
        assert_eq!(config.mount, "kv/patchbay");
        assert_eq!(config.base_path, "prod/tenants");
        assert_eq!(config.namespace.as_deref(), Some("team-a"));
        assert_eq!(config.ca_cert, Some(PathBuf::from("/etc/vault/ca.pem")));
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.cache_ttl, Duration::ZERO);
        let printed = format!("{config:?}");
        assert!(!printed.contains("canary"), "{printed}");
        assert!(printed.contains("AppRole"), "{printed}");
    }

    #[test]
    fn address_is_required_and_must_be_http() {
        let error = VaultConfig::from_env(&env(&[(TOKEN_ENV, "t")])).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some(ADDR_ENV));

        for address in [
            "vault:8200",
            "ftp://vault:8200",
            "https://user:pw@vault:8200",
        ] {
            let error =
                VaultConfig::from_env(&env(&[(ADDR_ENV, address), (TOKEN_ENV, "t")])).unwrap_err();
            assert_eq!(error.field(), Some(ADDR_ENV), "{address}");
            assert!(!error.to_string().contains("pw@"), "{error}");
        }
    }

    #[test]
    fn exactly_one_auth_method_is_accepted() {
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[], TOKEN_ENV),
            (
                &[(TOKEN_ENV, "t"), (ROLE_ID_ENV, "r"), (SECRET_ID_ENV, "s")],
                TOKEN_ENV,
            ),
            (&[(ROLE_ID_ENV, "r")], SECRET_ID_ENV),
            (&[(SECRET_ID_ENV, "s")], ROLE_ID_ENV),
        ];
        for (vars, field) in cases {
            let mut env = env(vars);
            env.set(ADDR_ENV, "http://127.0.0.1:8200");
            let error = VaultConfig::from_env(&env).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{vars:?}");
            assert_eq!(error.field(), Some(field), "{vars:?}");
            let hint = error.hint().unwrap();
            for name in [TOKEN_ENV, ROLE_ID_ENV, SECRET_ID_ENV] {
                assert!(hint.contains(name), "{hint}");
            }
        }
    }

    #[test]
    fn bad_mount_base_and_numbers_name_their_variable() {
        let cases = [
            (KV_MOUNT_ENV, "patch bay"),
            (KV_MOUNT_ENV, "kv/../sys"),
            (KV_BASE_PATH_ENV, "tenants//x"),
            (KV_BASE_PATH_ENV, ".."),
            (TIMEOUT_ENV, "0"),
            (TIMEOUT_ENV, "soon"),
            (CACHE_TTL_ENV, "-1"),
        ];
        for (name, value) in cases {
            let error = VaultConfig::from_env(&env(&[
                (ADDR_ENV, "http://127.0.0.1:8200"),
                (TOKEN_ENV, "t"),
                (name, value),
            ]))
            .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{name}={value}");
            assert_eq!(error.field(), Some(name), "{name}={value}");
        }
    }
}
