//! End-to-end tests of the shared client against local servers.

mod config;
mod errors;
mod limits;
mod overrides;
mod pinning;
mod policy;
mod requests;
mod retries;
mod secrets;
mod support;
