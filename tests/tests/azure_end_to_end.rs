//! Azure end to end through the real binary: a service principal (bad secret,
//! bad tenant, then a good one with a read-only principal), every operation,
//! paging, a refused token re-acquired, the delegated sign-in through the fake
//! (PKCE, a refresh after Azure refuses the token, the reply-URL mismatch with the
//! guide's message), disconnect, and a canary scan covering the client secrets
//! and every access and refresh token the fake issued.

use patchbay_connector_azure::fake::{
    self as fake_azure, FakeAzure, CLIENT_ID, READ_ONLY_CLIENT_ID, SUBSCRIPTION_ID, TENANT_ID,
    VM_ID, WORKSPACE_ID,
};
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const CANARY_SECRET: &str = "canary-az-secret-5f2e8a91c3";
const CANARY_READ_ONLY_SECRET: &str = "canary-az-ro-secret-0b7d44";
const CANARY_WRONG_SECRET: &str = "canary-az-wrong-secret-e19c2f";

fn operations() -> Vec<(&'static str, Value)> {
    vec![
        (
            "query_resource_graph",
            json!({"query": "Resources | project name, location", "limit": 10}),
        ),
        (
            "query_metrics",
            json!({"resource_id": VM_ID, "metric_names": ["Percentage CPU"], "interval": "PT5M"}),
        ),
        ("list_activity_log", json!({"limit": 5})),
        ("list_alerts", json!({"state": "New"})),
        ("list_aks_clusters", json!({})),
        (
            "query_log_analytics",
            json!({"workspace_id": WORKSPACE_ID, "query": "AzureActivity | take 5"}),
        ),
    ]
}

fn check<'r>(report: &'r Value, id: &str) -> &'r Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_service_principal_oauth_operations_and_disconnect_without_leaking_secrets() {
    let fake = FakeAzure::start(CANARY_SECRET, CANARY_READ_ONLY_SECRET).await;
    let login_override = fake.server().override_for("login.microsoftonline.com");
    let mut env: Vec<(&str, String)> = fake.env_vars();
    env.push(("PATCHBAY_UPSTREAM_OVERRIDES", login_override));
    env.push(("AZURE_CLIENT_ID", fake_azure::OAUTH_CLIENT_ID.to_owned()));
    env.push((
        "AZURE_CLIENT_SECRET",
        fake_azure::OAUTH_CLIENT_SECRET.to_owned(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let patchbay = Patchbay::start(&env).await;
    let alice = patchbay.create_api_key("alice", Some("acme"));

    // A wrong secret: 422 with the guide's message, nothing stored.
    let bad = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "azure", "fields": {
                "tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CANARY_WRONG_SECRET
            }})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let bad = bad.json();
    let token = check(&bad["report"], "token");
    assert_eq!(token["outcome"], "failed");
    assert!(
        token["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid Azure credentials (AADSTS7000215"),
        "{token}"
    );
    // A tenant that is not a GUID or domain never reaches a URL.
    let invalid = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "azure", "fields": {
                "tenant_id": "../../common", "client_id": CLIENT_ID, "client_secret": CANARY_WRONG_SECRET
            }})),
        )
        .await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    assert_eq!(invalid.json()["error"]["field"], "tenant_id");
    let missing = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "azure", "fields": {"tenant_id": TENANT_ID}})),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.json()["error"]["message"],
        "Missing required credentials"
    );
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(listed["connections"], json!([]));

    // The good principal with a read-only principal for queries.
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "azure", "label": "prod", "fields": {
                "tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CANARY_SECRET,
                "read_only_client_id": READ_ONLY_CLIENT_ID, "read_only_client_secret": CANARY_READ_ONLY_SECRET
            }})),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    let report = &connected["report"];
    for id in [
        "token",
        "subscriptions",
        "subscription",
        "permission_read",
        "permission_write",
        "client_secret_expiry",
        "read_only_token",
        "read_only_subscription",
        "read_only_permission_read",
        "read_only_no_write",
        "read_only_client_secret_expiry",
    ] {
        assert_eq!(check(report, id)["outcome"], "ok", "{id}: {report}");
    }
    let metadata = &connected["connection"]["metadata"];
    assert_eq!(metadata["subscription_id"], SUBSCRIPTION_ID);
    assert_eq!(metadata["subscription_name"], "Production");
    assert_eq!(metadata["can_write"], true);
    assert!(metadata["secret_expires_at"].is_string(), "{metadata}");
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();

    // Every operation, as the read-only principal with one token per audience.
    for (operation, params) in operations() {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                &alice,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
        assert!(answer.json()["data"].is_object(), "{operation}");
    }
    let la_tokens: Vec<_> = fake
        .token_requests()
        .into_iter()
        .filter(|request| {
            request.form_value("scope") == Some("https://api.loganalytics.io/.default")
        })
        .collect();
    assert_eq!(la_tokens.len(), 1);
    assert_eq!(
        la_tokens[0].form_value("client_id"),
        Some(READ_ONLY_CLIENT_ID)
    );

    // Resource Graph pages with $skipToken behind an opaque cursor.
    let page = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/query_resource_graph"),
            &alice,
            Some(json!({"query": "Resources", "limit": 20})),
        )
        .await
        .json();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert!(
        !cursor.contains("fakeSkip"),
        "the cursor is opaque: {cursor}"
    );
    let next = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/query_resource_graph"),
            &alice,
            Some(json!({"query": "Resources", "limit": 20, "cursor": cursor})),
        )
        .await;
    assert_eq!(next.status, 200, "{}", next.text);
    assert_eq!(next.json()["data"]["rows"].as_array().unwrap().len(), 5);

    // A refused cached token is dropped and a new one acquired.
    let before = fake.token_requests().len();
    fake.expire_tokens();
    let answer = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_aks_clusters"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(fake.token_requests().len(), before + 1);

    // The delegated flow: PKCE, offline_access, user_impersonation.
    fake.set_registered_redirects(&[&format!("{}/azure/callback", patchbay.base_url)]);
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/azure/start",
            &alice,
            Some(json!({"label": "Azure as me", "options": {"subscription_id": fake_azure::SECOND_SUBSCRIPTION_ID}})),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    let (page, authorize_url) = patchbay
        .authorize_in_browser(
            &begin_url,
            "https://login.microsoftonline.com",
            &fake.base_url(),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        authorize_url
            .starts_with("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?"),
        "{authorize_url}"
    );
    for part in [
        "user_impersonation",
        "offline_access",
        "response_mode=query",
    ] {
        assert!(authorize_url.contains(part), "{part} in {authorize_url}");
    }
    let code_request = fake.token_requests().pop().unwrap();
    assert_eq!(
        code_request.form_value("grant_type"),
        Some("authorization_code")
    );
    for name in ["client_secret", "code", "code_verifier", "redirect_uri"] {
        assert!(code_request.form_value(name).is_some(), "{name}");
    }
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    let oauth_connection = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|connection| connection["metadata"]["auth_type"] == "oauth")
        .unwrap_or_else(|| panic!("an OAuth connection in {listed}"))
        .clone();
    assert_eq!(
        oauth_connection["metadata"]["subscription_id"],
        fake_azure::SECOND_SUBSCRIPTION_ID
    );
    assert_eq!(oauth_connection["metadata"]["tenant_id"], TENANT_ID);
    let oauth_id = oauth_connection["id"].as_str().unwrap().to_owned();
    for (operation, params) in operations() {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{oauth_id}/query/{operation}"),
                &alice,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
    }
    let traded = fake
        .token_requests()
        .into_iter()
        .filter(|request| request.form_value("grant_type") == Some("refresh_token"))
        .count();
    assert_eq!(
        traded, 1,
        "one Log Analytics token traded from the refresh token"
    );
    // Azure refuses the delegated token: the engine refreshes it once and retries.
    fake.expire_tokens();
    let before = fake.token_requests().len();
    let answer = patchbay
        .api(
            "POST",
            &format!("/api/connections/{oauth_id}/query/list_alerts"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let refresh = &fake.token_requests()[before];
    assert_eq!(refresh.form_value("grant_type"), Some("refresh_token"));

    // The registration no longer lists Patchbay's reply URL: Microsoft shows
    // AADSTS50011 on its own page, and a code presented anyway is refused with the
    // guide's message.
    fake.set_registered_redirects(&["https://elsewhere.example/azure/callback"]);
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/azure/start",
            &alice,
            Some(json!({})),
        )
        .await;
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    let browser_fake = fake.base_url();
    let mismatch = reply_url_mismatch(&patchbay, &begin_url, &browser_fake).await;
    assert!(
        mismatch.contains("AADSTS50011: Reply URL mismatch"),
        "{mismatch}"
    );

    // While the connections are stored: nothing in clear in the data directory or logs.
    patchbay.assert_nowhere(
        &canaries(&fake)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );

    // Disconnect everything.
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    for connection in listed["connections"].as_array().unwrap() {
        let connection = connection["id"].as_str().unwrap();
        let deleted = patchbay
            .api(
                "DELETE",
                &format!("/api/connections/{connection}"),
                &alice,
                None,
            )
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
    }
    let gone = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_alerts"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);

    // Canary scan after disconnecting.
    patchbay.assert_nowhere(
        &canaries(&fake)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
}

/// The client secrets, the platform's app secret, and every token and code the fake issued.
fn canaries(fake: &FakeAzure) -> Vec<String> {
    let mut canaries = vec![
        CANARY_SECRET.to_owned(),
        CANARY_READ_ONLY_SECRET.to_owned(),
        CANARY_WRONG_SECRET.to_owned(),
        fake_azure::OAUTH_CLIENT_SECRET.to_owned(),
    ];
    canaries.extend(fake.issued_tokens());
    canaries
}

/// Follows a flow whose token request Azure refuses with AADSTS50011 and returns
/// the callback page.
async fn reply_url_mismatch(patchbay: &Patchbay, begin_url: &str, fake_base: &str) -> String {
    // The authorize step redirects only to registered URLs, so the browser is sent
    // to the callback by hand with the code the fake would have issued.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let begun = browser.get(begin_url).send().await.unwrap();
    let authorize_url = begun.headers()["location"].to_str().unwrap().to_owned();
    let cookie = begun.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let at_fake = authorize_url.replacen("https://login.microsoftonline.com", fake_base, 1);
    let shown = browser.get(&at_fake).send().await.unwrap();
    assert_eq!(shown.status().as_u16(), 400, "Microsoft shows its own page");
    assert!(shown.text().await.unwrap().contains("AADSTS50011"));
    let state = url_param(&authorize_url, "state");
    let answer = patchbay
        .request(
            "GET",
            &format!("/azure/callback?code=0.AXunknown&state={state}"),
            &[("cookie", cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    answer.text
}

fn url_param(url: &str, name: &str) -> String {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}
