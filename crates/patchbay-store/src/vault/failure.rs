//! Why a Vault call failed, and how that becomes a [`patchbay_core::Error`].
//!
//! Nothing here keeps the client library's error value: some of its variants
//! carry response bodies, which for KV reads hold secrets.

use std::time::Duration;

use patchbay_core::{Error, ErrorKind};
use vaultrs::error::ClientError;

/// The message of every [`ErrorKind::Unavailable`] error from this backend.
pub const UNAVAILABLE: &str = "credential store unavailable";

/// A failed Vault call, reduced to what decides its error kind.
#[derive(Debug)]
pub enum Failure {
    /// No answer within the configured timeout.
    TimedOut,
    /// The request never got an HTTP answer (refused, reset, DNS, TLS).
    Unreachable(String),
    /// Vault answered with an error status.
    Status {
        /// The HTTP status.
        code: u16,
        /// Vault's error strings (never secret values).
        errors: Vec<String>,
    },
    /// The token expired and renewing or logging in again has failed so far.
    TokenExpired(String),
    /// Vault answered something that could not be read.
    Malformed(&'static str),
}

impl Failure {
    /// Classifies a client error; `timed_out` says the call used up the whole timeout.
    pub fn from_client(error: ClientError, timed_out: bool) -> Self {
        match error {
            ClientError::APIError { code, errors } => Self::Status { code, errors },
            ClientError::RestClientError { source } => match source {
                rustify::errors::ClientError::ServerResponseError { code, .. } => Self::Status {
                    code,
                    errors: Vec::new(),
                },
                rustify::errors::ClientError::RequestError { .. }
                | rustify::errors::ClientError::ResponseError { .. }
                    if timed_out =>
                {
                    Self::TimedOut
                }
                rustify::errors::ClientError::RequestError { .. }
                | rustify::errors::ClientError::ResponseError { .. } => {
                    Self::Unreachable(transport_cause(&source))
                }
                _ => Self::Malformed("the answer could not be parsed"),
            },
            ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError => {
                Self::Malformed("the answer was empty")
            }
            _ => Self::Malformed("the answer could not be parsed"),
        }
    }

    /// Whether Vault answered with `code`.
    pub fn is_status(&self, code: u16) -> bool {
        matches!(self, Self::Status { code: status, .. } if *status == code)
    }

    /// Whether this is a KV v2 check-and-set mismatch (another writer got there first).
    pub fn is_cas_mismatch(&self) -> bool {
        matches!(self, Self::Status { code: 400, errors }
            if errors.iter().any(|error| error.contains("check-and-set")))
    }

    /// Whether Vault's error strings mention `text`.
    pub fn mentions(&self, text: &str) -> bool {
        matches!(self, Self::Status { errors, .. } if errors.iter().any(|error| error.contains(text)))
    }

    /// Whether Vault itself answered (as opposed to a transport failure).
    pub fn vault_answered(&self) -> bool {
        matches!(self, Self::Status { .. } | Self::Malformed(_))
    }

    /// A one-line cause for logs and hints; never contains a secret.
    pub fn cause(&self, address: &str, timeout: Duration) -> String {
        match self {
            Self::TimedOut => format!(
                "Vault at {address} did not answer within {} s",
                timeout.as_secs()
            ),
            Self::Unreachable(cause) => format!("Vault at {address} could not be reached: {cause}"),
            Self::Status { code, errors } if errors.is_empty() => {
                format!("Vault at {address} answered HTTP {code}")
            }
            Self::Status { code, errors } => format!(
                "Vault at {address} answered HTTP {code}: {}",
                errors.join("; ").trim()
            ),
            Self::TokenExpired(cause) => format!(
                "the Vault token expired and getting a new one from {address} failed ({cause}); \
                 Patchbay keeps retrying in the background"
            ),
            Self::Malformed(what) => {
                format!("Vault at {address} gave an unexpected answer: {what}")
            }
        }
    }

    /// The error for a failed call on `path`, given Vault's address, the call
    /// bound and the policy the token needs.
    pub fn into_error(self, path: &str, address: &str, timeout: Duration, policy: &str) -> Error {
        let unavailable = |hint: String| Error::unavailable(UNAVAILABLE).with_hint(hint);
        match &self {
            Self::TimedOut | Self::Unreachable(_) | Self::TokenExpired(_) => {
                unavailable(self.cause(address, timeout))
            }
            Self::Status { code: 503, .. } if self.mentions("sealed") => {
                unavailable("Vault is sealed; unseal it (`bao operator unseal`)".to_owned())
                    .with_provider_status(503)
            }
            Self::Status { code: 429, .. } => unavailable(format!(
                "Vault at {address} is rate-limiting requests (HTTP 429); raise its rate limit quota"
            ))
            .with_provider_status(429),
            Self::Status { code, .. } if *code >= 500 => {
                let code = *code;
                unavailable(self.cause(address, timeout)).with_provider_status(code)
            }
            Self::Status { code: 403, .. } => Error::new(
                ErrorKind::PermissionDenied,
                format!("Vault denied access to {path}"),
            )
            .with_hint(format!(
                "the Vault token has expired or been revoked, or its policy lacks {policy}"
            ))
            .with_provider_status(403),
            Self::Status { code: 404, .. } => {
                Error::not_found(format!("nothing at {path} in Vault")).with_provider_status(404)
            }
            Self::Status { code, .. } => {
                let code = *code;
                Error::internal(format!(
                    "Vault refused the request for {path}: {}",
                    self.cause(address, timeout)
                ))
                .with_provider_status(code)
            }
            Self::Malformed(_) => Error::internal(format!(
                "unexpected answer from Vault for {path}: {}",
                self.cause(address, timeout)
            )),
        }
    }
}

/// The innermost cause of a transport error ("connection refused", a DNS or TLS failure).
fn transport_cause(error: &rustify::errors::ClientError) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = error;
    while let Some(source) = cause.source() {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return "connection refused".to_owned();
            }
        }
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "read on patchbay/config";

    fn error(failure: Failure) -> Error {
        failure.into_error(
            "patchbay/data/tenants/t/c/1",
            "http://127.0.0.1:8200",
            Duration::from_secs(3),
            POLICY,
        )
    }

    #[test]
    fn outages_are_unavailable_with_a_cause() {
        let timed_out = error(Failure::TimedOut);
        assert_eq!(timed_out.kind(), ErrorKind::Unavailable);
        assert_eq!(timed_out.message(), UNAVAILABLE);
        assert_eq!(
            timed_out.hint(),
            Some("Vault at http://127.0.0.1:8200 did not answer within 3 s")
        );

        let sealed = error(Failure::Status {
            code: 503,
            errors: vec!["Vault is sealed".into()],
        });
        assert_eq!(sealed.kind(), ErrorKind::Unavailable);
        assert_eq!(sealed.message(), UNAVAILABLE);
        assert!(sealed
            .hint()
            .unwrap()
            .starts_with("Vault is sealed; unseal it"));

        let bad_gateway = error(Failure::Status {
            code: 502,
            errors: vec![],
        });
        assert_eq!(bad_gateway.kind(), ErrorKind::Unavailable);
        assert!(bad_gateway.hint().unwrap().contains("HTTP 502"));
    }

    #[test]
    fn statuses_map_to_kinds() {
        let denied = error(Failure::Status {
            code: 403,
            errors: vec!["permission denied".into()],
        });
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
        assert_eq!(
            denied.message(),
            "Vault denied access to patchbay/data/tenants/t/c/1"
        );
        assert!(denied.hint().unwrap().contains(POLICY));

        let missing = error(Failure::Status {
            code: 404,
            errors: vec![],
        });
        assert_eq!(missing.kind(), ErrorKind::NotFound);

        let conflict = Failure::Status {
            code: 400,
            errors: vec!["check-and-set parameter did not match the current version".into()],
        };
        assert!(conflict.is_cas_mismatch());
        assert_eq!(error(conflict).kind(), ErrorKind::Internal);
    }
}
