//! The query operations over the Amazon Web Services API, declared once with
//! [`patchbay_core::operations!`]: names, descriptions, parameter schemas and
//! dispatch come from the declaration; parameter checks, opaque cursors and output
//! caps from the toolkit.

use patchbay_core::{OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::AwsClient;
use crate::CONNECTOR_ID;

/// The page size of `list_items` when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 20;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: AwsClient<'_>,
    /// List items with their id, name and update time, a page at a time
    /// (GET /v1/items).
    read list_items(ListItemsParams), paged;
}

/// Parameters of `list_items`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListItemsParams {
    /// How many items to return, 1 to 100 (default 20).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// One page of items as Amazon Web Services returns it.
#[derive(Debug, Deserialize)]
struct ItemsPage {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl AwsClient<'_> {
    /// `list_items`: one page of items and Amazon Web Services's token for the next page.
    async fn list_items(
        &self,
        params: ListItemsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = vec![("limit", params.limit.to_string())];
        if let Some(page_token) = cursor {
            query.push(("page_token", page_token));
        }
        let page: ItemsPage = self.get("list_items", &self.path("/items"), &query).await?;
        Ok(OperationOutput::new(json!({ "items": page.items }))
            .with_next_page(page.next_page_token))
    }
}
