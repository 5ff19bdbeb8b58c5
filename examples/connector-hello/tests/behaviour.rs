//! Behaviour users rely on, against the fake Hello.

use patchbay_connector_hello::fake::{FakeHello, ProviderFake, ACCOUNT_NAME, GREETINGS};
use patchbay_connector_hello::HelloConnector;
use patchbay_core::{
    AuthRequest, ConnectorContext, DynConnector, DynCredentials, ErrorKind, FormFields,
};
use serde_json::json;

const API_KEY: &str = "behaviour-api-key-7f3a";

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("behaviour-connection".to_owned()),
        tenant: None,
    }
}

/// Validated credentials for `API_KEY`.
async fn connected(connector: &HelloConnector) -> DynCredentials {
    let form = json!({"api_key": API_KEY});
    let request = AuthRequest::Form(FormFields(form.as_object().cloned().unwrap_or_default()));
    let mut credentials = connector.authenticate(request).await.unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(report.passed(), "{report:?}");
    assert_eq!(credentials.config["account_name"], json!(ACCOUNT_NAME));
    credentials
}

#[tokio::test]
async fn list_greetings_pages_through_every_greeting_with_the_key() {
    let fake = FakeHello::start(API_KEY).await;
    let connector = fake.connector();
    let credentials = connected(&connector).await;

    let first = connector
        .query(&ctx(), &credentials, "list_greetings", json!({"limit": 10}))
        .await
        .unwrap();
    let cursor = first.next_cursor.clone().expect("a second page");
    assert!(cursor.starts_with("pb1."), "cursors are sealed: {cursor}");
    let second = connector
        .query(
            &ctx(),
            &credentials,
            "list_greetings",
            json!({"limit": 10, "cursor": cursor}),
        )
        .await
        .unwrap();
    let languages: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page.data["greetings"].as_array().unwrap())
        .map(|greeting| greeting["language"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = GREETINGS.iter().map(|(code, _, _)| *code).collect();
    assert_eq!(languages, expected);
    assert_eq!(second.next_cursor, None);

    let pages = fake.requests_to("/v1/greetings");
    let page_tokens: Vec<Option<&str>> = pages
        .iter()
        .map(|request| request.query_value("page_token"))
        .collect();
    assert_eq!(
        page_tokens,
        [None, None, Some("10")],
        "the validation probe, then two pages"
    );
    assert!(pages.iter().all(|request| request.has_header("x-api-key")));
}

#[tokio::test]
async fn get_greeting_answers_for_one_language_and_names_a_bad_one() {
    let fake = FakeHello::start(API_KEY).await;
    let connector = fake.connector();
    let credentials = connected(&connector).await;

    let french = connector
        .query(
            &ctx(),
            &credentials,
            "get_greeting",
            json!({"language": "FR"}),
        )
        .await
        .unwrap();
    assert_eq!(
        french.data,
        json!({"language": "fr", "language_name": "French", "text": "Bonjour"})
    );

    let unknown = connector
        .query(
            &ctx(),
            &credentials,
            "get_greeting",
            json!({"language": "xx"}),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert!(
        unknown.message().contains("no greeting for language `xx`"),
        "{unknown}"
    );

    let malformed = connector
        .query(
            &ctx(),
            &credentials,
            "get_greeting",
            json!({"language": "../v1/account"}),
        )
        .await
        .unwrap_err();
    assert_eq!(malformed.kind(), ErrorKind::InvalidInput);
    assert_eq!(malformed.field(), Some("language"));
    let greeting_paths: Vec<String> = fake
        .requests()
        .into_iter()
        .map(|request| request.path)
        .filter(|path| path.starts_with("/v1/greetings/"))
        .collect();
    assert_eq!(
        greeting_paths,
        ["/v1/greetings/fr", "/v1/greetings/xx"],
        "the malformed language never left the connector"
    );
}
