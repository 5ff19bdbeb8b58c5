//! The one outbound HTTP client every Patchbay connector uses.
//!
//! [`HttpClient`] wraps reqwest with per-attempt timeouts, bounded retries with
//! jittered backoff that honour `Retry-After`, a response size cap enforced while
//! streaming, no redirects, host rewrites from `PATCHBAY_UPSTREAM_OVERRIDES`, and
//! [`Response::error_for_status`], which maps provider answers to
//! [`patchbay_core::ErrorKind`]s. Secret headers never reach logs, `Debug` output
//! or error messages.
//!
//! Two guards decide where a request may go. Requests to a URL a tenant supplied
//! ([`RequestBuilder::tenant_url`]) follow the [`AddressPolicy`]: https only, and
//! no loopback, private, link-local or cloud metadata address unless the operator
//! allows it, checked on the resolved address actually connected to. Requests
//! carrying an OAuth client's credentials ([`RequestBuilder::client_basic_auth`],
//! [`RequestBuilder::carries_client_credentials`]) are sent only to the origins of
//! the provider's own endpoints.
#![deny(missing_docs)]

mod client;
mod config;
mod overrides;
mod policy;
mod response;

pub use client::{HttpClient, RequestBuilder};
pub use config::{
    HttpConfig, Pause, PauseFuture, CONNECT_TIMEOUT_VAR, MAX_RETRIES_VAR, TIMEOUT_VAR,
};
pub use overrides::{UpstreamOverrides, OVERRIDES_VAR};
pub use policy::{AddressPolicy, BlockedAddress, ALLOWED_PRIVATE_NETWORKS_VAR};
pub use response::{parse_retry_after, Response};

pub use bytes::Bytes;
pub use http::{HeaderMap, Method, StatusCode};
