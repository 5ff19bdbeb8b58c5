//! Validation reports: one line per check, so a user sees exactly what works.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// The probe succeeded.
    Ok,
    /// The provider answered that this capability is missing.
    Failed,
    /// Not run (an earlier mandatory check failed).
    Skipped,
    /// The probe could not get an answer (network, provider error).
    Error,
}

/// The verdict over all checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    /// Every check passed.
    Ok,
    /// Mandatory checks passed; some optional ones did not.
    Degraded,
    /// A mandatory check did not pass.
    Failed,
}

/// One line of a validation report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationCheck {
    /// Stable id (`api_key`, `monitors_read`).
    pub id: String,
    /// What the check proves.
    pub description: String,
    /// Whether connecting must fail when this check does not pass.
    pub mandatory: bool,
    /// How it ended.
    pub outcome: CheckOutcome,
    /// Details for people (provider message, hint).
    pub detail: String,
    /// The provider's HTTP status, when there was one.
    pub provider_status: Option<u16>,
    /// How long the probe took.
    pub elapsed_ms: u64,
}

/// The result of validating a connection's credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationReport {
    /// The connector validated.
    pub connector: String,
    /// When the report was made.
    pub validated_at: DateTime<Utc>,
    /// The verdict.
    pub overall: ValidationStatus,
    /// Every check, in the order run.
    pub checks: Vec<ValidationCheck>,
}

impl ValidationReport {
    /// The ids of the checks, in order.
    pub fn check_ids(&self) -> Vec<&str> {
        self.checks.iter().map(|check| check.id.as_str()).collect()
    }

    /// Builds a report and derives its verdict from the checks.
    pub fn new(connector: impl Into<String>, checks: Vec<ValidationCheck>) -> Self {
        let mandatory_failed = checks
            .iter()
            .any(|check| check.mandatory && check.outcome != CheckOutcome::Ok);
        let any_failed = checks.iter().any(|check| check.outcome != CheckOutcome::Ok);
        let overall = if mandatory_failed {
            ValidationStatus::Failed
        } else if any_failed {
            ValidationStatus::Degraded
        } else {
            ValidationStatus::Ok
        };
        Self {
            connector: connector.into(),
            validated_at: Utc::now(),
            overall,
            checks,
        }
    }

    /// Whether the connection may be stored (no mandatory check failed).
    pub fn passed(&self) -> bool {
        self.overall != ValidationStatus::Failed
    }
}

/// Times a probe and turns its result into a [`ValidationCheck`].
///
/// `Ok(detail)` is a pass; a permission or auth error is `Failed`; anything
/// else (network, provider 5xx) is `Error`.
pub struct CheckTimer {
    started: Instant,
}

impl CheckTimer {
    /// Starts timing.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
        }
    }

    /// Finishes the check with the probe's result.
    pub fn finish(
        self,
        id: &str,
        description: &str,
        mandatory: bool,
        result: Result<String, Error>,
    ) -> ValidationCheck {
        let elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (outcome, detail, provider_status) = match result {
            Ok(detail) => (CheckOutcome::Ok, detail, None),
            Err(error) => {
                let outcome = match error.kind() {
                    crate::ErrorKind::AuthFailed | crate::ErrorKind::PermissionDenied => {
                        CheckOutcome::Failed
                    }
                    _ => CheckOutcome::Error,
                };
                let detail = match error.hint() {
                    Some(hint) => format!("{} ({hint})", error.message()),
                    None => error.message().to_owned(),
                };
                (outcome, detail, error.provider_status())
            }
        };
        ValidationCheck {
            id: id.to_owned(),
            description: description.to_owned(),
            mandatory,
            outcome,
            detail,
            provider_status,
            elapsed_ms,
        }
    }

    /// A check not run because an earlier mandatory one failed.
    pub fn skipped(id: &str, description: &str, mandatory: bool) -> ValidationCheck {
        ValidationCheck {
            id: id.to_owned(),
            description: description.to_owned(),
            mandatory,
            outcome: CheckOutcome::Skipped,
            detail: "not run: an earlier mandatory check failed".to_owned(),
            provider_status: None,
            elapsed_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn verdict_follows_mandatory_checks() {
        let ok = CheckTimer::start().finish("a", "a", true, Ok("fine".into()));
        let optional_failed = CheckTimer::start().finish(
            "b",
            "b",
            false,
            Err(Error::new(ErrorKind::PermissionDenied, "403").with_provider_status(403)),
        );
        assert_eq!(optional_failed.outcome, CheckOutcome::Failed);
        assert_eq!(optional_failed.provider_status, Some(403));
        let report = ValidationReport::new("x", vec![ok.clone(), optional_failed]);
        assert_eq!(report.overall, ValidationStatus::Degraded);
        assert!(report.passed());
        let report = ValidationReport::new("x", vec![ok, CheckTimer::skipped("c", "c", true)]);
        assert_eq!(report.overall, ValidationStatus::Failed);
        assert!(!report.passed());
    }
}
