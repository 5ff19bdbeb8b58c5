//! The query operations over the Hello API, declared once with
//! [`patchbay_core::operations!`]: names, descriptions, parameter schemas and
//! dispatch come from the declaration; parameter checks, opaque cursors and output
//! caps from the toolkit.

use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::HelloClient;
use crate::CONNECTOR_ID;

/// The page size of `list_greetings` when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 20;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: HelloClient<'_>,
    /// List greetings with their language and text, a page at a time
    /// (GET /v1/greetings).
    read list_greetings(ListGreetingsParams), paged;
    /// Get the greeting of one language (GET /v1/greetings/{language}).
    read get_greeting(GetGreetingParams);
}

/// Parameters of `list_greetings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListGreetingsParams {
    /// How many greetings to return, 1 to 100 (default 20).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// Parameters of `get_greeting`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetGreetingParams {
    /// The language's ISO 639 code, e.g. `en` or `fr`.
    pub language: String,
}

/// One page of greetings as Hello returns it.
#[derive(Debug, Deserialize)]
struct GreetingsPage {
    #[serde(default)]
    greetings: Vec<Value>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl HelloClient<'_> {
    /// `list_greetings`: one page of greetings and Hello's token for the next page.
    async fn list_greetings(
        &self,
        params: ListGreetingsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = vec![("limit", params.limit.to_string())];
        if let Some(page_token) = cursor {
            query.push(("page_token", page_token));
        }
        let page: GreetingsPage = self
            .get("list_greetings", &self.path("/greetings"), &query)
            .await?;
        Ok(OperationOutput::new(json!({ "greetings": page.greetings }))
            .with_next_page(page.next_page_token))
    }

    /// `get_greeting`: the greeting of one language; an unknown language is Hello's 404.
    async fn get_greeting(&self, params: GetGreetingParams) -> Result<OperationOutput> {
        let language = params.language.trim().to_ascii_lowercase();
        if language.is_empty() || !language.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(Error::invalid_input(
                "language",
                format!("`language` must be a language code such as `en`; got `{language}`"),
            )
            .with_connector(CONNECTOR_ID));
        }
        let greeting: Value = self
            .get(
                "get_greeting",
                &self.path(&format!("/greetings/{language}")),
                &[],
            )
            .await?;
        Ok(OperationOutput::new(greeting))
    }
}
