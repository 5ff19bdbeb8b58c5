//! Which tests need which service, and what `cargo xtask test` does when one is missing.
//!
//! A test that needs a service carries the service's group marker in its name (in
//! its function name or the name of a module around it); a test needing several
//! carries each marker, e.g. `needs_vault_needs_postgres_two_replicas_...`. When a
//! service cannot be provided, its group is left out with libtest's `--skip` (a
//! substring filter) and listed at the end of the run. This table is the only
//! place the markers are defined.

use anyhow::{bail, Result};
use patchbay_testkit::services::Service;

/// The variable that turns a missing service into an immediate failure (CI sets it).
pub const REQUIRE_SERVICES_VAR: &str = "PATCHBAY_REQUIRE_SERVICES";

/// Tests whose names contain `marker` need `service`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The substring in the test's name.
    pub marker: &'static str,
    /// The service the tests need.
    pub service: Service,
}

/// Every group of service-bound tests.
pub const GROUPS: &[Group] = &[
    Group {
        marker: "needs_postgres",
        service: Service::Postgres,
    },
    Group {
        marker: "needs_vault",
        service: Service::OpenBao,
    },
    Group {
        marker: "needs_oauth_mock",
        service: Service::OAuthMock,
    },
    Group {
        marker: "needs_moto",
        service: Service::Moto,
    },
    Group {
        marker: "needs_helm",
        service: Service::Helm,
    },
    Group {
        marker: "needs_mcp_client",
        service: Service::McpClient,
    },
    Group {
        marker: "needs_browser",
        service: Service::Browser,
    },
    Group {
        marker: "needs_schemathesis",
        service: Service::Schemathesis,
    },
];

/// A service `cargo xtask test` could not provide, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The service.
    pub service: Service,
    /// What went wrong, on one line.
    pub reason: String,
}

/// Whether `PATCHBAY_REQUIRE_SERVICES` (its value, if set) asks for every service.
pub fn require_services(value: Option<&str>) -> Result<bool> {
    match value.map(str::trim) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => bail!(
            "{REQUIRE_SERVICES_VAR} is {other:?}; set it to 1 to fail when a service the tests \
             need cannot be started, or to 0 (or leave it unset) to leave those tests out"
        ),
    }
}

/// The groups left out because their service is missing, in table order.
pub fn skipped_groups(missing: &[Missing]) -> Vec<(Group, &Missing)> {
    GROUPS
        .iter()
        .filter_map(|group| {
            missing
                .iter()
                .find(|missing| missing.service == group.service)
                .map(|missing| (*group, missing))
        })
        .collect()
}

/// The arguments after `cargo test --workspace --no-fail-fast`: the caller's `extra`
/// arguments, then a libtest `--skip <marker>` for every group whose service is missing
/// (after the caller's own `--`, or a new one).
pub fn cargo_test_args(extra: &[String], missing: &[Missing]) -> Vec<String> {
    let mut args = extra.to_vec();
    let skips = skipped_groups(missing);
    if skips.is_empty() {
        return args;
    }
    if !args.iter().any(|arg| arg == "--") {
        args.push("--".to_owned());
    }
    for (group, _) in skips {
        args.push("--skip".to_owned());
        args.push(group.marker.to_owned());
    }
    args
}

/// What was not run and why, printed after cargo's own summary; `None` when every
/// service was there.
pub fn summary(missing: &[Missing]) -> Option<String> {
    let skips = skipped_groups(missing);
    if skips.is_empty() {
        return None;
    }
    let mut text = String::from("Not run, because a service they need is unavailable:\n");
    for (group, missing) in skips {
        text.push_str(&format!(
            "  tests named *{}*: {} unavailable ({})\n",
            group.marker, missing.service, missing.reason
        ));
    }
    text.push_str(&format!(
        "Set {REQUIRE_SERVICES_VAR}=1 to make a missing service an error instead."
    ));
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(service: Service, reason: &str) -> Missing {
        Missing {
            service,
            reason: reason.to_owned(),
        }
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn every_service_has_exactly_one_group_and_no_marker_contains_another() {
        for service in [
            Service::Postgres,
            Service::OpenBao,
            Service::OAuthMock,
            Service::Moto,
            Service::Helm,
            Service::McpClient,
            Service::Browser,
            Service::Schemathesis,
        ] {
            let groups = GROUPS
                .iter()
                .filter(|group| group.service == service)
                .count();
            assert_eq!(groups, 1, "{service} has {groups} groups");
        }
        for a in GROUPS {
            for b in GROUPS {
                assert!(
                    a == b || !a.marker.contains(b.marker),
                    "skipping {} would also skip {}",
                    b.marker,
                    a.marker
                );
            }
        }
    }

    #[test]
    fn nothing_is_added_when_every_service_is_there() {
        let extra = strings(&["-p", "patchbay-store"]);
        assert_eq!(cargo_test_args(&extra, &[]), extra);
        assert_eq!(summary(&[]), None);
    }

    #[test]
    fn a_missing_service_skips_its_group_after_a_new_separator() {
        let args = cargo_test_args(&[], &[missing(Service::Postgres, "refused")]);
        assert_eq!(args, strings(&["--", "--skip", "needs_postgres"]));
    }

    #[test]
    fn skips_follow_the_callers_own_test_arguments_in_table_order() {
        let extra = strings(&["-p", "patchbay-e2e", "--", "--nocapture"]);
        let args = cargo_test_args(
            &extra,
            &[
                missing(Service::OAuthMock, "npm failed"),
                missing(Service::Postgres, "refused"),
            ],
        );
        assert_eq!(
            args,
            strings(&[
                "-p",
                "patchbay-e2e",
                "--",
                "--nocapture",
                "--skip",
                "needs_postgres",
                "--skip",
                "needs_oauth_mock",
            ])
        );
    }

    #[test]
    fn a_missing_helm_skips_the_chart_tests() {
        let args = cargo_test_args(&[], &[missing(Service::Helm, "pip failed")]);
        assert_eq!(args, strings(&["--", "--skip", "needs_helm"]));
    }

    #[test]
    fn a_missing_moto_skips_the_aws_emulator_tests() {
        let args = cargo_test_args(&[], &[missing(Service::Moto, "pip failed")]);
        assert_eq!(args, strings(&["--", "--skip", "needs_moto"]));
    }

    #[test]
    fn the_summary_names_each_group_its_service_and_the_reason() {
        let text = summary(&[
            missing(
                Service::OpenBao,
                "installing OpenBao from PyPI needs python3 with pip",
            ),
            missing(Service::Postgres, "nothing answers on 127.0.0.1:5432"),
        ])
        .expect("a summary");
        assert_eq!(
            text,
            "Not run, because a service they need is unavailable:\n\
             \x20 tests named *needs_postgres*: PostgreSQL unavailable (nothing answers on 127.0.0.1:5432)\n\
             \x20 tests named *needs_vault*: OpenBao unavailable (installing OpenBao from PyPI needs python3 with pip)\n\
             Set PATCHBAY_REQUIRE_SERVICES=1 to make a missing service an error instead."
        );
    }

    #[test]
    fn require_services_accepts_one_and_zero_and_refuses_anything_else() {
        assert!(!require_services(None).unwrap());
        assert!(!require_services(Some("")).unwrap());
        assert!(!require_services(Some("0")).unwrap());
        assert!(require_services(Some("1")).unwrap());
        assert!(require_services(Some(" true ")).unwrap());
        let error = require_services(Some("yes please"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("PATCHBAY_REQUIRE_SERVICES is \"yes please\"; set it to 1"),
            "{error}"
        );
    }
}
