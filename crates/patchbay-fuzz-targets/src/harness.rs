//! What every target shares: running a connector's async hooks to completion, and
//! the checks every normalised event and every refusal must pass.

use std::future::Future;

use patchbay_core::{
    ConnectorContext, ConnectorDescriptor, ConnectorEnv, DynConnector, ErrorKind, NormalizedAlert,
    WebhookOutcome,
};
use patchbay_http::HttpClient;

/// The connection id the targets verify and normalise deliveries for.
pub const CONNECTION_ID: &str = "fuzz-connection";

/// Runs a connector hook to completion. The hooks the targets call make no network
/// request, so they finish without a runtime.
pub fn run<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// The context of the targets' connection.
pub fn context() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some(CONNECTION_ID.to_owned()),
        tenant: None,
    }
}

/// The environment the targets build connectors from: nothing from the process.
pub fn empty_env() -> ConnectorEnv {
    ConnectorEnv::from_pairs(std::iter::empty::<(String, String)>())
}

/// An HTTP client with the default settings; the targets never send through it.
pub fn http_client() -> HttpClient {
    HttpClient::from_env(&empty_env()).expect("the default HTTP settings are valid")
}

/// The connector `descriptor` builds from an empty environment.
pub fn build(descriptor: &ConnectorDescriptor) -> Box<dyn DynConnector> {
    (descriptor.build)(&empty_env())
        .unwrap_or_else(|error| panic!("{} does not build: {error}", descriptor.id))
}

/// Checks what `normalize` made of a verified delivery: a refusal is an
/// `invalid_input` (a 400), never an internal error; each event comes from
/// `connector`, has a dedup key and an external id, and survives a JSON round trip
/// as the store keeps it.
pub fn check_outcome(connector: &str, outcome: patchbay_core::Result<WebhookOutcome>) {
    match outcome {
        Ok(outcome) => {
            for event in &outcome.events {
                check_event(connector, event);
            }
        }
        Err(error) => assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{connector}: normalising a verified delivery failed with {error}"
        ),
    }
}

/// Checks one normalised event (see [`check_outcome`]).
pub fn check_event(connector: &str, event: &NormalizedAlert) {
    assert_eq!(event.source, connector, "an event from another source");
    assert!(
        !event.dedup_key.is_empty(),
        "{connector}: an event without a dedup key: {event:?}"
    );
    assert!(
        !event.external_id.is_empty(),
        "{connector}: an event without an external id: {event:?}"
    );
    let stored = serde_json::to_string(event).expect("events serialise");
    let loaded: NormalizedAlert = serde_json::from_str(&stored).expect("stored events load");
    assert_eq!(
        &loaded, event,
        "{connector}: the event changes through JSON"
    );
}

/// Checks a refused delivery: every refusal of `verify` is `auth_failed`.
pub fn check_refusal(connector: &str, error: &patchbay_core::Error) {
    assert_eq!(
        error.kind(),
        ErrorKind::AuthFailed,
        "{connector}: verify refused with {error}"
    );
}
