//! Behaviour users rely on, against the fake Amazon Web Services.

use patchbay_connector_aws::fake::{FakeAws, ProviderFake, ACCOUNT_NAME, ITEM_COUNT};
use patchbay_core::{AuthRequest, ConnectorContext, DynConnector, FormFields};
use serde_json::json;

const API_KEY: &str = "behaviour-api-key-7f3a";

#[tokio::test]
async fn list_items_pages_through_every_item_with_the_credential() {
    let fake = FakeAws::start(API_KEY).await;
    let connector = fake.connector();
    let ctx = ConnectorContext {
        connection_id: Some("behaviour-connection".to_owned()),
        tenant: None,
    };
    let form = json!({"api_key": API_KEY});
    let request = AuthRequest::Form(FormFields(form.as_object().cloned().unwrap_or_default()));
    let mut credentials = connector.authenticate(request).await.unwrap();
    let report = connector.validate(&ctx, &mut credentials).await.unwrap();
    assert!(report.passed(), "{report:?}");
    assert_eq!(credentials.config["account_name"], json!(ACCOUNT_NAME));

    let first = connector
        .query(&ctx, &credentials, "list_items", json!({"limit": 10}))
        .await
        .unwrap();
    let cursor = first.next_cursor.clone().expect("a second page");
    assert!(cursor.starts_with("pb1."), "cursors are sealed: {cursor}");
    let second = connector
        .query(
            &ctx,
            &credentials,
            "list_items",
            json!({"limit": 10, "cursor": cursor}),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page.data["items"].as_array().unwrap())
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), ITEM_COUNT);
    assert_eq!(ids.first(), Some(&"item-01"));
    assert_eq!(ids.last(), Some(&"item-15"));
    assert_eq!(second.next_cursor, None);

    let pages = fake.requests_to("/v1/items");
    let page_tokens: Vec<Option<&str>> = pages
        .iter()
        .map(|request| request.query_value("page_token"))
        .collect();
    assert_eq!(
        page_tokens,
        [None, None, Some("10")],
        "the probe, then two pages"
    );
    assert!(pages.iter().all(|request| request.has_header("x-api-key")));
}
