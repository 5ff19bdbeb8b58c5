//! Local fakes of provider APIs, served on `127.0.0.1` by the test's tokio runtime.

pub mod github;
pub mod slack;
