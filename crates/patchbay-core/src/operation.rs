//! The operation toolkit: a connector declares each query operation once, with
//! [`operations!`](crate::operations), and gets from that declaration its
//! descriptors, its dispatch, parameter parsing, range checks, the unknown-operation
//! error, output capping and opaque, checked cursors, all worded the same way in
//! every connector.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::connector::{parse_params, ConnectorContext, QueryOutput};
use crate::descriptor::OperationDescriptor;
use crate::error::{Error, Result};

/// The largest serialized `data` an operation returns; beyond it trailing list items
/// (then the ends of long texts) are dropped and `truncated` is set.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// The parameter that carries a paged operation's cursor.
pub const CURSOR_PARAM: &str = "cursor";

/// What the [`operations!`](crate::operations) declaration says of one operation.
#[derive(Debug, Clone, Copy)]
pub struct OperationSpec {
    /// The `verb_noun` name used in `/query/{operation}`.
    pub name: &'static str,
    /// What it does, for people and agents.
    pub description: &'static str,
    /// False for operations that change provider state.
    pub read_only: bool,
    /// Whether it returns pages and takes a `cursor` back.
    pub paged: bool,
}

/// What an operation handler returns: the provider's answer trimmed to what
/// matters, and the provider's own cursor of the next page, which the toolkit seals
/// before a caller sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationOutput {
    /// The result.
    pub data: Value,
    /// The provider's cursor for the next page, if there is one.
    pub next_page: Option<String>,
    /// True when the handler itself stopped short (a page limit reached).
    pub truncated: bool,
}

impl OperationOutput {
    /// A complete result.
    pub fn new(data: Value) -> Self {
        Self {
            data,
            next_page: None,
            truncated: false,
        }
    }

    /// Sets the provider's cursor of the next page; empty cursors mean none.
    pub fn with_next_page(mut self, cursor: Option<String>) -> Self {
        self.next_page = cursor.filter(|cursor| !cursor.is_empty());
        self
    }

    /// Marks the result as cut short by the handler.
    pub fn truncated(mut self, truncated: bool) -> Self {
        self.truncated |= truncated;
        self
    }
}

/// The descriptor of an operation whose parameters are `P`: `P`'s JSON Schema, with
/// `cursor` added for paged operations.
pub fn describe<P: schemars::JsonSchema>(spec: &OperationSpec) -> OperationDescriptor {
    let mut schema = schemars::schema_for!(P);
    if spec.paged {
        if let Some(properties) = schema.as_object_mut().and_then(|object| {
            object
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
        }) {
            properties.insert(
                CURSOR_PARAM.to_owned(),
                serde_json::json!({
                    "type": "string",
                    "description": "`next_cursor` of the previous page of this operation, passed back unchanged.",
                }),
            );
        }
    }
    OperationDescriptor {
        name: spec.name,
        description: spec.description.trim(),
        read_only: spec.read_only,
        params_schema: schema,
    }
}

/// One call of a connector's operation: everything the toolkit needs to check its
/// input and shape its output. Built by the code [`operations!`](crate::operations)
/// generates.
#[derive(Debug)]
pub struct Invocation<'a> {
    connector: &'static str,
    operation: &'a str,
    connection: Option<&'a str>,
    params: Value,
}

/// The sealed form of a cursor: which operation and connection issued it, and
/// the provider's own cursor.
#[derive(Serialize, Deserialize)]
struct SealedCursor {
    #[serde(rename = "o")]
    operation: String,
    #[serde(rename = "c")]
    connection: String,
    #[serde(rename = "p")]
    provider: String,
}

const CURSOR_PREFIX: &str = "pb1.";

impl<'a> Invocation<'a> {
    /// A call of `operation` on the connection of `ctx` with JSON `params`.
    pub fn new(
        connector: &'static str,
        ctx: &'a ConnectorContext,
        operation: &'a str,
        params: Value,
    ) -> Self {
        Self {
            connector,
            operation,
            connection: ctx.connection_id.as_deref(),
            params,
        }
    }

    /// The error for an operation the connector does not declare, listing those it does.
    pub fn unknown(&self, known: &[&str]) -> Error {
        crate::connector::unknown_operation(self.connector, self.operation, known)
    }

    /// Parses the parameters as `P`: refuses parameters `P` does not declare, values
    /// outside the ranges its schema declares, and cursors issued by another
    /// operation or connection, each naming the field. Returns the parameters and,
    /// for paged operations, the provider's cursor.
    pub fn parse<P: DeserializeOwned + schemars::JsonSchema>(
        &self,
        spec: &OperationSpec,
    ) -> Result<(P, Option<String>)> {
        let mut params = match &self.params {
            Value::Null => Map::new(),
            Value::Object(params) => params.clone(),
            other => {
                return Err(Error::invalid_input(
                    "params",
                    format!(
                        "the parameters of `{}` must be a JSON object, not {}",
                        spec.name,
                        json_type(other)
                    ),
                )
                .with_connector(self.connector))
            }
        };
        let cursor = if spec.paged {
            match params.remove(CURSOR_PARAM) {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) if text.is_empty() => None,
                Some(Value::String(text)) => Some(self.open_cursor(spec, &text)?),
                Some(other) => return Err(self.bad_cursor(spec, json_type(&other))),
            }
        } else {
            None
        };
        let schema = schemars::schema_for!(P);
        self.check_against_schema(spec, &params, &schema)?;
        let parsed = parse_params::<P>(self.connector, spec.name, Value::Object(params))?;
        Ok((parsed, cursor))
    }

    /// Turns a handler's output into the query's: caps `data` at
    /// [`MAX_OUTPUT_BYTES`] and seals the provider's cursor.
    pub fn finish(&self, spec: &OperationSpec, output: OperationOutput) -> Result<QueryOutput> {
        let mut data = output.data;
        let capped = cap_output(&mut data, MAX_OUTPUT_BYTES);
        let next_cursor = match output.next_page {
            Some(provider) if spec.paged => Some(self.seal_cursor(spec, provider)),
            Some(_) => {
                return Err(Error::internal(format!(
                    "`{}` returned a next page but is not declared paged",
                    spec.name
                ))
                .with_connector(self.connector))
            }
            None => None,
        };
        Ok(QueryOutput {
            data,
            truncated: output.truncated || capped,
            next_cursor,
        })
    }

    fn connection_tag(&self) -> String {
        let digest = Sha256::new()
            .chain_update(self.connector.as_bytes())
            .chain_update([0])
            .chain_update(self.connection.unwrap_or_default().as_bytes())
            .finalize();
        hex::encode(&digest[..8])
    }

    fn seal_cursor(&self, spec: &OperationSpec, provider: String) -> String {
        let sealed = SealedCursor {
            operation: spec.name.to_owned(),
            connection: self.connection_tag(),
            provider,
        };
        let json = serde_json::to_vec(&sealed).unwrap_or_default();
        format!(
            "{CURSOR_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    fn open_cursor(&self, spec: &OperationSpec, text: &str) -> Result<String> {
        let sealed = text
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|body| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(body)
                    .ok()
            })
            .and_then(|json| serde_json::from_slice::<SealedCursor>(&json).ok())
            .ok_or_else(|| self.bad_cursor(spec, "a value it did not issue"))?;
        if sealed.operation != spec.name {
            return Err(self.bad_cursor(spec, &format!("a cursor of `{}`", sealed.operation)));
        }
        if sealed.connection != self.connection_tag() {
            return Err(self.bad_cursor(spec, "a cursor of another connection"));
        }
        Ok(sealed.provider)
    }

    fn bad_cursor(&self, spec: &OperationSpec, given: &str) -> Error {
        Error::invalid_input(
            CURSOR_PARAM,
            format!(
                "`cursor` must be a `next_cursor` that `{}` returned on this connection; got {given}",
                spec.name
            ),
        )
        .with_connector(self.connector)
        .with_hint("pass back the `next_cursor` of the previous page unchanged, or leave `cursor` out for the first page")
    }

    /// Refuses parameters the schema does not list, and numbers outside its
    /// `minimum`/`maximum`, before serde sees them, so both read the same in every
    /// connector.
    fn check_against_schema(
        &self,
        spec: &OperationSpec,
        params: &Map<String, Value>,
        schema: &schemars::Schema,
    ) -> Result<()> {
        let no_properties = Map::new();
        let properties = match schema.get("properties").and_then(Value::as_object) {
            Some(properties) => properties,
            // A struct without fields takes no parameters; any other shape is left to serde.
            None if schema.get("type").and_then(Value::as_str) == Some("object") => &no_properties,
            None => return Ok(()),
        };
        for (name, value) in params {
            let Some(property) = properties.get(name) else {
                let mut known: Vec<&str> = properties.keys().map(String::as_str).collect();
                if spec.paged {
                    known.push(CURSOR_PARAM);
                }
                let takes = if known.is_empty() {
                    "it takes no parameters".to_owned()
                } else {
                    format!("it takes: {}", known.join(", "))
                };
                return Err(Error::invalid_input(
                    name.clone(),
                    format!("`{}` has no parameter `{name}`; {takes}", spec.name),
                )
                .with_connector(self.connector)
                .with_hint("see the operation's params_schema in GET /api/connectors"));
            };
            let Some(number) = value.as_f64() else {
                continue;
            };
            let minimum = property.get("minimum").and_then(Value::as_f64);
            let maximum = property.get("maximum").and_then(Value::as_f64);
            let below = minimum.is_some_and(|minimum| number < minimum);
            let above = maximum.is_some_and(|maximum| number > maximum);
            if below || above {
                let range = match (minimum, maximum) {
                    (Some(minimum), Some(maximum)) => format!("from {minimum} to {maximum}"),
                    (Some(minimum), None) => format!("at least {minimum}"),
                    (None, Some(maximum)) => format!("at most {maximum}"),
                    (None, None) => unreachable!("a bound was crossed"),
                };
                return Err(Error::invalid_input(
                    name.clone(),
                    format!("`{name}` must be {range}; got {value}"),
                )
                .with_connector(self.connector));
            }
        }
        Ok(())
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn size_of(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

/// Cuts `data` until it serializes to at most `max` bytes: trailing items of the
/// largest list first (keeping at least one), then the ends of the longest texts.
/// Returns whether anything was cut.
pub fn cap_output(data: &mut Value, max: usize) -> bool {
    let mut total = size_of(data);
    if total <= max {
        return false;
    }
    // Each pass shrinks one list or one text; the bound only guards against a
    // value that cannot shrink further.
    for _ in 0..256 {
        if total <= max {
            break;
        }
        let excess = total - max;
        if let Some(list) = largest(
            data,
            &|value| matches!(value, Value::Array(items) if items.len() > 1),
        ) {
            let Value::Array(items) = list else {
                unreachable!("largest list")
            };
            let mut dropped = 0;
            while items.len() > 1 && dropped < excess {
                let last = items.pop().expect("more than one item");
                dropped += size_of(&last) + 1;
            }
        } else if let Some(text) = largest(
            data,
            &|value| matches!(value, Value::String(text) if text.len() > 1),
        ) {
            let Value::String(text) = text else {
                unreachable!("largest text")
            };
            let mut keep = text.len().saturating_sub(excess + 3);
            while !text.is_char_boundary(keep) {
                keep -= 1;
            }
            text.truncate(keep);
            text.push('…');
        } else {
            break;
        }
        total = size_of(data);
    }
    true
}

/// The value matching `wanted` whose serialized form is largest.
fn largest<'v>(value: &'v mut Value, wanted: &dyn Fn(&Value) -> bool) -> Option<&'v mut Value> {
    fn find(
        value: &Value,
        wanted: &dyn Fn(&Value) -> bool,
        path: &mut Vec<usize>,
        best: &mut Option<(usize, Vec<usize>)>,
    ) {
        if wanted(value) {
            let size = size_of(value);
            if best.as_ref().is_none_or(|(best_size, _)| size > *best_size) {
                *best = Some((size, path.clone()));
            }
        }
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => return,
        };
        for (index, child) in children.enumerate() {
            path.push(index);
            find(child, wanted, path, best);
            path.pop();
        }
    }
    let mut best = None;
    find(value, wanted, &mut Vec::new(), &mut best);
    let (_, path) = best?;
    let mut current = value;
    for index in path {
        current = match current {
            Value::Array(items) => &mut items[index],
            Value::Object(fields) => fields.values_mut().nth(index)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Declares a connector's query operations once. Each entry is an operation's
/// description (doc comment), `read` or `write`, its `verb_noun` name, which is also
/// the name of the handler method, its parameter type, and `paged` for operations
/// that return pages.
///
/// It generates, in the module where it is invoked:
/// - `descriptors()`, for the connector descriptor's `operations`;
/// - `OPERATION_NAMES`, in declaration order;
/// - `run(handler, ctx, operation, params)`, which parses and checks the
///   parameters and cursor, calls `handler.<name>(params)` (or
///   `handler.<name>(params, cursor)` when paged), caps the output and seals the
///   next cursor.
///
/// A declared operation without a handler method does not compile.
///
/// ```ignore
/// patchbay_core::operations! {
///     connector: CONNECTOR_ID,
///     handler: Api<'_>,
///     /// List the channels the bot can see.
///     read list_channels(ListChannelsParams), paged;
///     /// Post a message to a channel.
///     write post_message(PostMessageParams);
/// }
/// ```
#[macro_export]
macro_rules! operations {
    (
        connector: $connector:expr,
        handler: $handler:ty,
        $(
            $(#[doc = $doc:literal])+
            $access:ident $name:ident ( $params:ty ) $(, $paged:ident)? ;
        )+
    ) => {
        /// Every operation's descriptor, in declaration order.
        pub fn descriptors() -> ::std::vec::Vec<$crate::OperationDescriptor> {
            ::std::vec![$(
                $crate::operation::describe::<$params>(
                    &$crate::__operation_spec!($access $name [$($doc)+] $($paged)?),
                ),
            )+]
        }

        /// The name of every operation, in declaration order.
        pub const OPERATION_NAMES: &[&str] = &[$(::core::stringify!($name)),+];

        /// Runs `operation` with JSON `params` on the connection of `ctx`: checks
        /// the parameters and cursor, calls the handler method of the same name,
        /// caps the output and seals the next cursor.
        pub async fn run(
            handler: &$handler,
            ctx: &$crate::ConnectorContext,
            operation: &str,
            params: $crate::__serde_json::Value,
        ) -> $crate::Result<$crate::QueryOutput> {
            let invocation = $crate::operation::Invocation::new($connector, ctx, operation, params);
            $(
                if operation == ::core::stringify!($name) {
                    let spec = $crate::__operation_spec!($access $name [$($doc)+] $($paged)?);
                    let (params, cursor) = invocation.parse::<$params>(&spec)?;
                    let output = $crate::__operation_call!(handler $name params cursor $($paged)?).await?;
                    return invocation.finish(&spec, output);
                }
            )+
            ::core::result::Result::Err(invocation.unknown(OPERATION_NAMES))
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __operation_spec {
    ($access:ident $name:ident [$($doc:literal)+] $($paged:ident)?) => {
        $crate::operation::OperationSpec {
            name: ::core::stringify!($name),
            description: ::core::concat!($($doc),+),
            read_only: $crate::__operation_read_only!($access),
            paged: $crate::__operation_paged!($($paged)?),
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __operation_read_only {
    (read) => {
        true
    };
    (write) => {
        false
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __operation_paged {
    () => {
        false
    };
    (paged) => {
        true
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __operation_call {
    ($handler:ident $name:ident $params:ident $cursor:ident) => {{
        let _ = $cursor;
        $handler.$name($params)
    }};
    ($handler:ident $name:ident $params:ident $cursor:ident paged) => {
        $handler.$name($params, $cursor)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::JsonSchema;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ListParams {
        /// How many, 1 to 50.
        #[serde(default = "ten")]
        #[schemars(range(min = 1, max = 50))]
        limit: u32,
    }

    fn ten() -> u32 {
        10
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    pub struct NoParams {}

    pub struct Api {
        pages: Vec<&'static str>,
    }

    impl Api {
        async fn list_things(
            &self,
            params: ListParams,
            cursor: Option<String>,
        ) -> Result<OperationOutput> {
            let page = cursor.map_or(0, |cursor| cursor.parse::<usize>().unwrap());
            let next = (page + 1 < self.pages.len()).then(|| (page + 1).to_string());
            Ok(
                OperationOutput::new(json!({"limit": params.limit, "page": self.pages[page]}))
                    .with_next_page(next),
            )
        }

        async fn delete_thing(&self, _params: NoParams) -> Result<OperationOutput> {
            Ok(OperationOutput::new(json!({"deleted": true})))
        }
    }

    crate::operations! {
        connector: "demo",
        handler: Api,
        /// List things,
        /// a page at a time.
        read list_things(ListParams), paged;
        /// Delete a thing.
        write delete_thing(NoParams);
    }

    fn ctx(connection: &str) -> ConnectorContext {
        ConnectorContext {
            connection_id: Some(connection.to_owned()),
            tenant: None,
        }
    }

    fn api() -> Api {
        Api {
            pages: vec!["first", "second"],
        }
    }

    #[test]
    fn descriptors_come_from_the_declaration() {
        let descriptors = descriptors();
        assert_eq!(OPERATION_NAMES, ["list_things", "delete_thing"]);
        assert_eq!(descriptors[0].description, "List things, a page at a time.");
        assert!(descriptors[0].read_only);
        assert!(!descriptors[1].read_only);
        let properties = descriptors[0].params_schema.get("properties").unwrap();
        assert!(properties.get("cursor").is_some());
        assert!(properties.get("limit").is_some());
        assert!(descriptors[1]
            .params_schema
            .get("properties")
            .and_then(|p| p.get("cursor"))
            .is_none());
    }

    #[tokio::test]
    async fn a_cursor_round_trips_and_is_opaque() {
        let api = api();
        let first = run(&api, &ctx("c1"), "list_things", json!({}))
            .await
            .unwrap();
        assert_eq!(first.data["page"], "first");
        let cursor = first.next_cursor.unwrap();
        assert!(cursor.starts_with("pb1."), "{cursor}");
        let second = run(&api, &ctx("c1"), "list_things", json!({ "cursor": cursor }))
            .await
            .unwrap();
        assert_eq!(second.data["page"], "second");
        assert_eq!(second.next_cursor, None);
    }

    #[tokio::test]
    async fn a_cursor_from_another_connection_or_operation_is_refused() {
        let api = api();
        let cursor = run(&api, &ctx("c1"), "list_things", json!({}))
            .await
            .unwrap()
            .next_cursor
            .unwrap();
        let other = run(&api, &ctx("c2"), "list_things", json!({ "cursor": cursor }))
            .await
            .unwrap_err();
        assert_eq!(other.kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(other.field(), Some("cursor"));
        assert!(other.message().contains("another connection"), "{other}");
        for forged in ["abc", "pb1.!!!", "pb1.e30"] {
            let error = run(&api, &ctx("c1"), "list_things", json!({ "cursor": forged }))
                .await
                .unwrap_err();
            assert_eq!(error.field(), Some("cursor"), "{forged}");
        }
        let spec = OperationSpec {
            name: "list_other",
            description: "",
            read_only: true,
            paged: true,
        };
        let c1 = ctx("c1");
        let invocation = Invocation::new("demo", &c1, "list_other", Value::Null);
        let foreign = invocation.seal_cursor(&spec, "0".into());
        let error = run(
            &api,
            &ctx("c1"),
            "list_things",
            json!({ "cursor": foreign }),
        )
        .await
        .unwrap_err();
        assert!(
            error.message().contains("a cursor of `list_other`"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn ranges_unknown_parameters_and_operations_have_one_wording() {
        let api = api();
        let error = run(&api, &ctx("c1"), "list_things", json!({"limit": 500}))
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some("limit"));
        assert_eq!(error.message(), "`limit` must be from 1 to 50; got 500");

        let error = run(&api, &ctx("c1"), "list_things", json!({"limits": 5}))
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some("limits"));
        assert_eq!(
            error.message(),
            "`list_things` has no parameter `limits`; it takes: limit, cursor"
        );

        let error = run(&api, &ctx("c1"), "delete_thing", json!({"cursor": "x"}))
            .await
            .unwrap_err();
        assert_eq!(
            error.message(),
            "`delete_thing` has no parameter `cursor`; it takes no parameters"
        );

        let error = run(&api, &ctx("c1"), "list_thing", json!({}))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::NotFound);
        assert_eq!(error.hint(), Some("use one of: list_things, delete_thing"));

        let error = run(&api, &ctx("c1"), "list_things", json!([1]))
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some("params"));

        let done = run(&api, &ctx("c1"), "delete_thing", Value::Null)
            .await
            .unwrap();
        assert_eq!(done.data, json!({"deleted": true}));
    }

    #[test]
    fn output_is_capped_by_dropping_trailing_items_then_cutting_texts() {
        let item = json!({"text": "x".repeat(100 * 1024)});
        let mut data = json!({"items": [item.clone(), item.clone(), item], "count": 3});
        assert!(cap_output(&mut data, MAX_OUTPUT_BYTES));
        assert_eq!(data["items"].as_array().unwrap().len(), 2);
        assert_eq!(data["count"], 3);
        assert!(size_of(&data) <= MAX_OUTPUT_BYTES);

        let mut one = json!({"log": "é".repeat(MAX_OUTPUT_BYTES)});
        assert!(cap_output(&mut one, MAX_OUTPUT_BYTES));
        assert!(size_of(&one) <= MAX_OUTPUT_BYTES);
        assert!(one["log"].as_str().unwrap().ends_with('…'));

        let mut small = json!({"items": [1, 2, 3]});
        assert!(!cap_output(&mut small, MAX_OUTPUT_BYTES));
        assert_eq!(small, json!({"items": [1, 2, 3]}));
    }
}
