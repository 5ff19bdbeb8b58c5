//! Paged operations' cursors: the `cursor` a caller passes back is opened by the
//! operation toolkit, which must refuse anything it did not issue for the same
//! operation and connection, naming `cursor`, and give back exactly the provider
//! cursor it sealed.

use patchbay_core::operation::Invocation;
use patchbay_core::{ConnectorContext, ErrorKind, OperationOutput, OperationSpec, QueryOutput};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

/// The parameters of the paged operation the target calls.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The paged operation the target calls.
pub const LIST_THINGS: OperationSpec = OperationSpec {
    name: "list_things",
    description: "Lists things, a page at a time.",
    read_only: true,
    paged: true,
};

/// The same connector's other paged operation, whose cursors `list_things` refuses.
pub const LIST_OTHERS: OperationSpec = OperationSpec {
    name: "list_others",
    description: "Lists other things, a page at a time.",
    read_only: true,
    paged: true,
};

const CONNECTOR: &str = "fuzz";

fn connection(id: &str) -> ConnectorContext {
    ConnectorContext {
        connection_id: Some(id.to_owned()),
        tenant: None,
    }
}

/// Opens `cursor` for `spec` on the connection of `ctx`.
fn open(
    ctx: &ConnectorContext,
    spec: &OperationSpec,
    cursor: Value,
) -> patchbay_core::Result<Option<String>> {
    Invocation::new(CONNECTOR, ctx, spec.name, json!({ "cursor": cursor }))
        .parse::<PageParams>(spec)
        .map(|(_, cursor)| cursor)
}

/// Seals `provider` as `spec`'s next cursor on the connection of `ctx`.
fn seal(ctx: &ConnectorContext, spec: &OperationSpec, provider: &str) -> Option<String> {
    let output = OperationOutput::new(json!([])).with_next_page(Some(provider.to_owned()));
    let QueryOutput { next_cursor, .. } = Invocation::new(CONNECTOR, ctx, spec.name, Value::Null)
        .finish(spec, output)
        .expect("a paged operation's output is finished");
    next_cursor
}

/// The target's body: the input as a cursor a caller passes back, and as a
/// provider cursor the toolkit seals.
pub fn operation_cursor(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = connection("conn-a");
    let theirs = connection("conn-b");

    // A cursor as a caller passes it back.
    match open(&ours, &LIST_THINGS, Value::String(text.to_owned())) {
        Ok(Some(provider)) => {
            // It was sealed for this operation and connection: re-sealing gives
            // back a cursor that opens to the same provider cursor.
            let resealed = seal(&ours, &LIST_THINGS, &provider)
                .expect("a provider cursor that came back opens is not empty");
            let reopened = open(&ours, &LIST_THINGS, Value::String(resealed));
            assert_eq!(reopened.ok().flatten().as_deref(), Some(provider.as_str()));
        }
        Ok(None) => assert!(text.is_empty(), "a cursor opened to nothing"),
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
            assert_eq!(error.field(), Some("cursor"), "{error}");
        }
    }

    // The input as the provider's cursor: it round-trips unchanged, and only
    // for the operation and connection it was issued for.
    let Some(sealed) = seal(&ours, &LIST_THINGS, text) else {
        assert!(text.is_empty(), "a provider cursor was dropped");
        return;
    };
    let opened = open(&ours, &LIST_THINGS, Value::String(sealed.clone()))
        .unwrap_or_else(|error| panic!("a cursor the toolkit issued is refused: {error}"));
    assert_eq!(opened.as_deref(), Some(text));
    for (ctx, spec) in [(&theirs, &LIST_THINGS), (&ours, &LIST_OTHERS)] {
        let error = open(ctx, spec, Value::String(sealed.clone()))
            .expect_err("a cursor was accepted by another connection or operation");
        assert_eq!(error.field(), Some("cursor"), "{error}");
    }
}
