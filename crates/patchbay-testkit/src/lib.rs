//! Test support shared by connector, host and end-to-end tests: the contract suite
//! every connector must pass (ours and third parties'), an HTTP client pointed at a
//! provider fake, log capture, a checker of recorded requests against a provider's
//! OpenAPI description, the published specs and test vectors of providers
//! not yet built kept in `fixtures/`, and access to the local services some tests
//! need. Each connector's fake lives in its own crate, behind its `fake` feature.
#![deny(missing_docs)]

pub mod contract;
pub mod fake_server;
pub mod fault_proxy;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod services;

use std::path::{Path, PathBuf};

/// The path of `relative` under this crate's `fixtures/` directory, e.g.
/// `fixture_path("vectors/aws_sts.json")`.
pub fn fixture_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

/// The text of the fixture at `relative` (see [`fixture_path`]); panics naming the
/// file when it cannot be read.
pub fn fixture(relative: &str) -> String {
    let path = fixture_path(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read fixture {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_read_from_inside_the_crate() {
        let path = fixture_path("vectors/aws_sts.json");
        assert!(
            path.starts_with(env!("CARGO_MANIFEST_DIR")),
            "{}",
            path.display()
        );
        let vectors: serde_json::Value = serde_json::from_str(&fixture("vectors/aws_sts.json"))
            .expect("the AWS STS vectors are JSON");
        assert!(vectors["_sources"].is_array());
    }

    #[test]
    #[should_panic(expected = "cannot read fixture")]
    fn a_missing_fixture_names_its_path() {
        fixture("vectors/no-such-provider.json");
    }
}
