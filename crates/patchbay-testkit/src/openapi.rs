//! Checks the requests a provider fake recorded against the provider's published
//! OpenAPI description, so a connector is held to the real API and not only to
//! its own fake: a declared path and method, declared query parameters with
//! values of the declared type or enum, every required parameter, the `Accept`
//! media type the description asks for, and the headers its security scheme names.
//!
//! ```no_run
//! use patchbay_testkit::openapi::{OpenApi, SpecRequest};
//!
//! let spec = OpenApi::load("fixtures/provider-openapi.yaml", "the provider's description");
//! let query = vec![("limit".to_owned(), "10".to_owned())];
//! let headers = vec!["authorization".to_owned()];
//! let covered = spec.check(&SpecRequest {
//!     method: "GET",
//!     path: "/incidents",
//!     query: &query,
//!     header_names: &headers,
//!     accept: None,
//! });
//! assert_eq!(covered, "GET /incidents");
//! ```

use std::path::Path;

use serde_json::{Map, Number, Value};

/// A provider's OpenAPI description, loaded from JSON or YAML into one
/// [`serde_json::Value`] so both formats are checked by the same code.
#[derive(Debug, Clone)]
pub struct OpenApi {
    document: Value,
    name: String,
}

/// What the checker needs to know of one recorded request; each connector's own
/// recorded request maps into it, so the test kit depends on no connector.
#[derive(Debug, Clone, Copy)]
pub struct SpecRequest<'a> {
    /// `GET`, `POST`, ... as sent; it is repeated as-is in the coverage key.
    pub method: &'a str,
    /// The path without host or query, e.g. `/api/v1/monitor/1001`.
    pub path: &'a str,
    /// Query pairs in the order they were sent.
    pub query: &'a [(String, String)],
    /// The names of the headers sent, in any case.
    pub header_names: &'a [String],
    /// The `Accept` header value, when the fake records it.
    pub accept: Option<&'a str>,
}

impl SpecRequest<'_> {
    fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(key, _)| key == name)
    }

    fn has_header(&self, name: &str) -> bool {
        self.header_names
            .iter()
            .any(|header| header.eq_ignore_ascii_case(name))
    }
}

/// One parameter an operation declares, with `$ref`s already followed.
#[derive(Debug, Clone)]
struct Parameter {
    name: String,
    location: String,
    required: bool,
    schema: Value,
}

/// What the chosen security alternative asks a request to carry.
#[derive(Debug, Default)]
struct Credentials {
    headers: Vec<String>,
    query: Vec<String>,
}

impl OpenApi {
    /// Reads the description at `path`: YAML when the file name ends in `.yaml`
    /// or `.yml`, JSON otherwise. `name` says which description it is in failure
    /// messages, e.g. "the Datadog v1 description". Panics naming the file when
    /// it cannot be read or parsed.
    pub fn load(path: impl AsRef<Path>, name: impl Into<String>) -> Self {
        let path = path.as_ref();
        let shown = path.display();
        let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{shown}: {error}"));
        let yaml = matches!(
            path.extension().and_then(|extension| extension.to_str()),
            Some("yaml" | "yml")
        );
        let document = if yaml {
            let yaml: serde_yaml::Value = serde_yaml::from_str(&text)
                .unwrap_or_else(|error| panic!("{shown} is not YAML: {error}"));
            yaml_to_json(yaml)
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{shown} is not JSON: {error}"))
        };
        Self::from_document(document, name)
    }

    /// A description already parsed, e.g. a small inline one for a test.
    pub fn from_document(document: Value, name: impl Into<String>) -> Self {
        Self {
            document,
            name: name.into(),
        }
    }

    /// The whole description, for assertions the checker does not make.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Follows a local `$ref` such as `#/components/parameters/PageSize`, and the
    /// one it leads to, until a node that is not a reference; panics on a
    /// dangling one.
    pub fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        let mut node = node;
        // A cycle of references would never end; no description needs this many.
        for _ in 0..64 {
            let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
                return node;
            };
            let pointer = reference.trim_start_matches('#');
            node = self
                .document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        }
        panic!("$ref cycle in {}", self.name)
    }

    /// The path template that `path` is an instance of and its path item. When
    /// several match, the one with fewest `{param}` segments wins (`/users/me`
    /// over `/users/{id}`); among equals, the one whose first literal segment
    /// comes earliest, then the first in text order, so the choice never depends
    /// on map order.
    pub fn path_template(&self, path: &str) -> Option<(&str, &Value)> {
        self.document
            .get("paths")
            .and_then(Value::as_object)?
            .iter()
            .filter(|(template, _)| template_matches(template, path))
            .min_by_key(|(template, _)| {
                let shape: Vec<bool> = template.split('/').map(is_parameter).collect();
                (
                    shape.iter().filter(|&&parameter| parameter).count(),
                    shape,
                    *template,
                )
            })
            .map(|(template, item)| (template.as_str(), item))
    }

    /// Checks `request` against the description and returns `"METHOD /template"`
    /// for coverage accounting; panics, naming the request, the parameter, and
    /// what was expected and sent, on the first way it departs from it.
    pub fn check(&self, request: &SpecRequest<'_>) -> String {
        let context = format!("{} {}", request.method, request.path);
        let (template, path_item) = self
            .path_template(request.path)
            .unwrap_or_else(|| panic!("{context}: no path in {} matches", self.name));
        let method = request.method.to_ascii_lowercase();
        let operation = path_item
            .get(method.as_str())
            .unwrap_or_else(|| panic!("{context}: {template} does not declare {}", request.method));
        let declared = self.parameters(path_item, operation);
        let credentials = self.credentials(&context, operation);
        for (name, value) in request.query {
            if credentials.query.contains(name) {
                continue;
            }
            let parameter = declared
                .iter()
                .find(|parameter| parameter.location == "query" && &parameter.name == name)
                .unwrap_or_else(|| {
                    panic!("{context}: query parameter `{name}` is not declared for {template}")
                });
            self.check_value(&context, parameter, value);
        }
        for parameter in declared.iter().filter(|parameter| parameter.required) {
            match parameter.location.as_str() {
                "query" => assert!(
                    request.has_query(&parameter.name),
                    "{context}: required query parameter `{}` is missing",
                    parameter.name
                ),
                "header" => assert!(
                    request.has_header(&parameter.name),
                    "{context}: required header `{}` is missing",
                    parameter.name
                ),
                "path" => {
                    let position = template
                        .split('/')
                        .position(|segment| segment == format!("{{{}}}", parameter.name))
                        .unwrap_or_else(|| {
                            panic!(
                                "{context}: path parameter `{}` does not appear in {template}",
                                parameter.name
                            )
                        });
                    let value = request.path.split('/').nth(position).unwrap_or_default();
                    self.check_value(&context, parameter, value);
                }
                _ => {}
            }
        }
        if let Some(accept) = declared.iter().find(|parameter| {
            parameter.location == "header" && parameter.name.eq_ignore_ascii_case("Accept")
        }) {
            assert_eq!(
                request.accept,
                accept.schema.get("default").and_then(Value::as_str),
                "{context}: the Accept media type"
            );
        }
        for header in &credentials.headers {
            assert!(
                request.has_header(header),
                "{context}: the security scheme requires header `{header}`"
            );
        }
        for name in &credentials.query {
            assert!(
                request.has_query(name),
                "{context}: the security scheme requires query parameter `{name}`"
            );
        }
        format!("{} {template}", request.method)
    }

    /// The parameters of the path item and then of the operation.
    fn parameters(&self, path_item: &Value, operation: &Value) -> Vec<Parameter> {
        [path_item.get("parameters"), operation.get("parameters")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .map(|parameter| {
                let parameter = self.resolve(parameter);
                let text = |key: &str| {
                    parameter
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                Parameter {
                    name: text("name"),
                    location: text("in"),
                    required: parameter
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    schema: self
                        .resolve(parameter.get("schema").unwrap_or(&Value::Null))
                        .clone(),
                }
            })
            .collect()
    }

    /// Whether `value` is of the parameter's declared type and among its enum;
    /// for an array, each item's schema is the one checked.
    fn check_value(&self, context: &str, parameter: &Parameter, value: &str) {
        let mut schema = self.resolve(&parameter.schema);
        if schema.get("type").and_then(Value::as_str) == Some("array") {
            schema = self.resolve(schema.get("items").unwrap_or(&Value::Null));
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("integer") => assert!(
                value.parse::<i64>().is_ok(),
                "{context}: `{}` must be an integer, got `{value}`",
                parameter.name
            ),
            Some("number") => assert!(
                value.parse::<f64>().is_ok_and(f64::is_finite),
                "{context}: `{}` must be a number, got `{value}`",
                parameter.name
            ),
            Some("boolean") => assert!(
                value == "true" || value == "false",
                "{context}: `{}` must be true or false, got `{value}`",
                parameter.name
            ),
            _ => {}
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            assert!(
                allowed.iter().any(|option| match option {
                    Value::String(option) => option == value,
                    other => value.parse::<Value>().is_ok_and(|parsed| &parsed == other),
                }),
                "{context}: `{}` must be one of {allowed:?}, got `{value}`",
                parameter.name
            );
        }
    }

    /// What the first security alternative of the operation (or, when it has
    /// none, of the whole description) asks for. The first alternative is the
    /// key-based one in the descriptions we check; an empty list means none.
    fn credentials(&self, context: &str, operation: &Value) -> Credentials {
        let mut credentials = Credentials::default();
        let requirements = operation
            .get("security")
            .or_else(|| self.document.get("security"))
            .and_then(Value::as_array);
        let Some(first) = requirements
            .and_then(|alternatives| alternatives.first())
            .and_then(Value::as_object)
        else {
            return credentials;
        };
        for name in first.keys() {
            let scheme = self
                .document
                .pointer(&format!("/components/securitySchemes/{name}"))
                .map(|scheme| self.resolve(scheme))
                .unwrap_or_else(|| {
                    panic!(
                        "{context}: security scheme `{name}` is not declared in {}",
                        self.name
                    )
                });
            let field = |key: &str| scheme.get(key).and_then(Value::as_str).unwrap_or_default();
            match (field("type"), field("in")) {
                ("apiKey", "header") => credentials.headers.push(field("name").to_owned()),
                ("apiKey", "query") => credentials.query.push(field("name").to_owned()),
                ("apiKey", "cookie") => credentials.headers.push("Cookie".to_owned()),
                // HTTP authentication and OAuth/OpenID tokens travel in `Authorization`.
                ("http" | "oauth2" | "openIdConnect", _) => {
                    credentials.headers.push("Authorization".to_owned());
                }
                (kind, location) => panic!(
                    "{context}: security scheme `{name}` ({kind} in {location}) cannot be checked"
                ),
            }
        }
        credentials
    }
}

fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// Whether `path` is an instance of `template`: the same segments, a `{param}`
/// standing for any non-empty one.
fn template_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template.iter().zip(&path).all(|(expected, actual)| {
            (is_parameter(expected) && !actual.is_empty()) || expected == actual
        })
}

/// YAML as JSON: map keys that are not strings (response codes such as `200`)
/// become their text, and tags are dropped.
fn yaml_to_json(yaml: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Yaml;
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(value) => Value::Bool(value),
        Yaml::Number(number) => {
            if let Some(value) = number.as_i64() {
                Value::from(value)
            } else if let Some(value) = number.as_u64() {
                Value::from(value)
            } else {
                number
                    .as_f64()
                    .and_then(Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Yaml::String(value) => Value::String(value),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .map(|(key, value)| {
                    let key = match yaml_to_json(key) {
                        Value::String(key) => key,
                        other => other.to_string(),
                    };
                    (key, yaml_to_json(value))
                })
                .collect::<Map<String, Value>>(),
        ),
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn spec() -> OpenApi {
        OpenApi::from_document(
            json!({
                "openapi": "3.0.0",
                "security": [{"token": []}, {"oauth": []}],
                "components": {
                    "securitySchemes": {
                        "token": {"type": "apiKey", "in": "header", "name": "X-Token"},
                        "oauth": {"type": "oauth2", "flows": {}}
                    },
                    "parameters": {
                        "limit": {"name": "limit", "in": "query", "schema": {"$ref": "#/components/schemas/Limit"}},
                        "accept": {"name": "Accept", "in": "header", "required": true,
                                   "schema": {"type": "string", "default": "application/vnd.test+json"}}
                    },
                    "schemas": {
                        "Limit": {"type": "integer"},
                        "Status": {"type": "string", "enum": ["open", "closed"]}
                    }
                },
                "paths": {
                    "/users/{id}": {
                        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                        "get": {}
                    },
                    "/users/me": {"get": {"security": []}},
                    "/items": {
                        "get": {"parameters": [
                            {"$ref": "#/components/parameters/limit"},
                            {"$ref": "#/components/parameters/accept"},
                            {"name": "since", "in": "query", "required": true, "schema": {"type": "string"}},
                            {"name": "statuses[]", "in": "query",
                             "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Status"}}},
                            {"name": "exact", "in": "query", "schema": {"type": "boolean"}}
                        ]}
                    }
                }
            }),
            "the test description",
        )
    }

    struct Owned {
        method: &'static str,
        path: &'static str,
        query: Vec<(String, String)>,
        header_names: Vec<String>,
        accept: Option<&'static str>,
    }

    fn request(path: &'static str, query: &[(&str, &str)]) -> Owned {
        Owned {
            method: "GET",
            path,
            query: query
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            header_names: vec!["x-token".to_owned(), "accept".to_owned()],
            accept: Some("application/vnd.test+json"),
        }
    }

    fn check(spec: &OpenApi, request: &Owned) -> String {
        spec.check(&SpecRequest {
            method: request.method,
            path: request.path,
            query: &request.query,
            header_names: &request.header_names,
            accept: request.accept,
        })
    }

    /// The panic message of a check, or its coverage key when it passed.
    fn outcome(request: Owned) -> Result<String, String> {
        let spec = spec();
        catch_unwind(AssertUnwindSafe(|| check(&spec, &request))).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default()
        })
    }

    fn refused(request: Owned, expected: &str) {
        let message = outcome(request).expect_err("the checker refuses the request");
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }

    #[test]
    fn a_conforming_request_is_accepted_and_named_by_its_template() {
        let covered = outcome(request(
            "/items",
            &[
                ("since", "now"),
                ("limit", "5"),
                ("statuses[]", "open"),
                ("exact", "true"),
            ],
        ));
        assert_eq!(covered.as_deref(), Ok("GET /items"));
    }

    #[test]
    fn an_undeclared_query_parameter_is_refused() {
        refused(
            request("/items", &[("since", "now"), ("offset", "5")]),
            "GET /items: query parameter `offset` is not declared for /items",
        );
    }

    #[test]
    fn values_of_the_wrong_type_or_outside_the_enum_are_refused() {
        refused(
            request("/items", &[("since", "now"), ("limit", "ten")]),
            "GET /items: `limit` must be an integer, got `ten`",
        );
        refused(
            request("/items", &[("since", "now"), ("exact", "yes")]),
            "`exact` must be true or false, got `yes`",
        );
        refused(
            request("/items", &[("since", "now"), ("statuses[]", "pending")]),
            "`statuses[]` must be one of [String(\"open\"), String(\"closed\")], got `pending`",
        );
        refused(
            request("/users/abc", &[]),
            "`id` must be an integer, got `abc`",
        );
    }

    #[test]
    fn missing_required_parameters_headers_and_keys_are_refused() {
        refused(
            request("/items", &[]),
            "GET /items: required query parameter `since` is missing",
        );
        let mut no_accept = request("/items", &[("since", "now")]);
        no_accept.header_names.retain(|name| name != "accept");
        refused(no_accept, "required header `Accept` is missing");
        let mut wrong_accept = request("/items", &[("since", "now")]);
        wrong_accept.accept = Some("application/json");
        refused(wrong_accept, "GET /items: the Accept media type");
        let mut no_token = request("/items", &[("since", "now")]);
        no_token.header_names = vec!["accept".to_owned()];
        refused(no_token, "the security scheme requires header `X-Token`");
    }

    #[test]
    fn a_literal_segment_wins_over_a_template_one() {
        let mut me = request("/users/me", &[]);
        // `/users/me` declares no security, so no key is needed for it.
        me.header_names.clear();
        assert_eq!(outcome(me).as_deref(), Ok("GET /users/me"));
        assert_eq!(
            outcome(request("/users/42", &[])).as_deref(),
            Ok("GET /users/{id}")
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_refused() {
        refused(
            request("/item", &[]),
            "GET /item: no path in the test description matches",
        );
        let mut post = request("/items", &[("since", "now")]);
        post.method = "POST";
        refused(post, "POST /items: /items does not declare POST");
    }

    #[test]
    fn references_are_followed_and_dangling_ones_named() {
        let spec = spec();
        let parameter = &spec.document()["paths"]["/items"]["get"]["parameters"][0];
        assert_eq!(spec.resolve(parameter)["name"], "limit");
        let dangling = json!({"$ref": "#/components/schemas/Missing"});
        let message = catch_unwind(AssertUnwindSafe(|| {
            spec.resolve(&dangling);
        }))
        .expect_err("a dangling reference panics");
        assert_eq!(
            message.downcast_ref::<String>().map(String::as_str),
            Some("dangling $ref #/components/schemas/Missing")
        );
    }

    #[test]
    fn yaml_descriptions_load_like_json_ones() {
        let path =
            std::env::temp_dir().join(format!("patchbay-openapi-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "paths:\n  /ping:\n    get:\n      responses:\n        200:\n          description: ok\n",
        )
        .unwrap();
        let spec = OpenApi::load(&path, "the YAML description");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            spec.document()["paths"]["/ping"]["get"]["responses"]["200"]["description"],
            "ok"
        );
        let query = Vec::new();
        let headers = Vec::new();
        let covered = spec.check(&SpecRequest {
            method: "GET",
            path: "/ping",
            query: &query,
            header_names: &headers,
            accept: None,
        });
        assert_eq!(covered, "GET /ping");
    }
}
