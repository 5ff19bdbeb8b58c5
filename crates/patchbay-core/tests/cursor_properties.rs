//! Properties of the sealed cursors paged operations hand out: a provider cursor
//! sealed by one operation on one connection opens to the same provider cursor
//! there and only there, sealing is deterministic (so opening and sealing again
//! gives the cursor back), sealed cursors are URL-safe, and no string or JSON
//! value passed as `cursor` panics: each is either a cursor this operation issued
//! on this connection or an `invalid_input` error naming `cursor`.

use base64::Engine as _;
use patchbay_core::operation::{Invocation, OperationOutput, OperationSpec, CURSOR_PARAM};
use patchbay_core::{ConnectorContext, ErrorKind, Result};
use proptest::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

/// The parameters of the paged operations under test: none but the cursor.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PageParams {}

const CONNECTOR: &str = "demo";

fn spec(name: &'static str) -> OperationSpec {
    OperationSpec {
        name,
        description: "A paged listing.",
        read_only: true,
        paged: true,
    }
}

fn context(connection: &str) -> ConnectorContext {
    ConnectorContext {
        connection_id: Some(connection.to_owned()),
        tenant: None,
    }
}

/// The cursor `operation` on `connection` hands out for the provider's `next_page`.
fn seal(connection: &str, operation: &'static str, next_page: &str) -> Option<String> {
    let ctx = context(connection);
    Invocation::new(CONNECTOR, &ctx, operation, Value::Null)
        .finish(
            &spec(operation),
            OperationOutput::new(json!([])).with_next_page(Some(next_page.to_owned())),
        )
        .expect("a paged operation returns its next page")
        .next_cursor
}

/// What `operation` on `connection` makes of `cursor` passed back as its parameter.
fn open(connection: &str, operation: &'static str, cursor: Value) -> Result<Option<String>> {
    let ctx = context(connection);
    let mut params = serde_json::Map::new();
    params.insert(CURSOR_PARAM.to_owned(), cursor);
    Invocation::new(CONNECTOR, &ctx, operation, Value::Object(params))
        .parse::<PageParams>(&spec(operation))
        .map(|(_, cursor)| cursor)
}

/// Fails unless `result` is the error a caller gets for a cursor that is not one.
fn assert_refused(result: &Result<Option<String>>, given: &Value) {
    match result {
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{given}: {error}");
            assert_eq!(error.field(), Some(CURSOR_PARAM), "{given}: {error}");
        }
        Ok(opened) => panic!("{given} opened to {opened:?}"),
    }
}

fn provider_cursor() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9+/=_-]{1,64}",
        "\\PC{1,32}",
        "[ -~\n\t]{1,32}",
        any::<u64>().prop_map(|page| page.to_string()),
    ]
}

fn connection_id() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9-]{1,36}", "\\PC{1,16}"]
}

fn operation() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["list_things", "search_logs", "list_monitors"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_sealed_cursor_opens_to_its_provider_cursor_and_seals_back_to_itself(
        next_page in provider_cursor(),
        connection in connection_id(),
        operation in operation(),
    ) {
        let sealed = seal(&connection, operation, &next_page).expect("a next page gives a cursor");
        prop_assert!(
            sealed.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte)),
            "not URL-safe: {}", sealed
        );
        let opened = open(&connection, operation, json!(sealed)).expect("the issuer opens it");
        prop_assert_eq!(opened.as_deref(), Some(next_page.as_str()));
        prop_assert_eq!(seal(&connection, operation, &next_page), Some(sealed));
    }

    #[test]
    fn a_cursor_opens_only_where_it_was_issued(
        next_page in provider_cursor(),
        connection in connection_id(),
        other_connection in connection_id(),
        operation in operation(),
        other_operation in operation(),
    ) {
        let sealed = json!(seal(&connection, operation, &next_page).unwrap());
        if other_connection != connection {
            assert_refused(&open(&other_connection, operation, sealed.clone()), &sealed);
        }
        if other_operation != operation {
            assert_refused(&open(&connection, other_operation, sealed.clone()), &sealed);
        }
    }

    #[test]
    fn an_empty_provider_cursor_means_no_next_page(
        connection in connection_id(),
        operation in operation(),
    ) {
        prop_assert_eq!(seal(&connection, operation, ""), None);
        prop_assert_eq!(open(&connection, operation, json!("")).unwrap(), None);
        prop_assert_eq!(open(&connection, operation, Value::Null).unwrap(), None);
    }

    #[test]
    fn any_string_is_a_cursor_issued_here_or_a_typed_refusal(
        text in prop_oneof![
            "\\PC{1,64}",
            "pb1\\.[A-Za-z0-9_-]{0,64}",
            "[ -~]{1,64}",
        ],
        connection in connection_id(),
        operation in operation(),
    ) {
        let given = json!(text);
        match open(&connection, operation, given.clone()) {
            // Only a cursor that really names this operation and connection opens,
            // and it seals back to a cursor that opens the same way.
            Ok(Some(next_page)) => {
                let resealed = seal(&connection, operation, &next_page).unwrap();
                prop_assert_eq!(
                    open(&connection, operation, json!(resealed)).unwrap(),
                    Some(next_page)
                );
            }
            other => assert_refused(&other, &given),
        }
    }

    #[test]
    fn decoded_junk_behind_the_prefix_is_refused(
        payload in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            // JSON of the sealed shape with fields of the wrong type or missing.
            (any::<Option<i64>>(), "\\PC{0,8}").prop_map(|(number, text)| {
                json!({ "o": number, "c": text, "p": [text] }).to_string().into_bytes()
            }),
            "\\PC{0,16}".prop_map(|text| json!({ "o": text, "p": text }).to_string().into_bytes()),
        ],
        connection in connection_id(),
        operation in operation(),
    ) {
        let text = format!(
            "pb1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&payload)
        );
        let given = json!(text);
        assert_refused(&open(&connection, operation, given.clone()), &given);
    }

    #[test]
    fn a_cursor_that_is_not_a_string_is_refused(
        value in prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            prop::collection::vec("\\PC{0,8}", 0..3).prop_map(|items| json!(items)),
            "\\PC{0,8}".prop_map(|text| json!({ "cursor": text })),
        ],
        connection in connection_id(),
        operation in operation(),
    ) {
        assert_refused(&open(&connection, operation, value.clone()), &value);
    }
}
