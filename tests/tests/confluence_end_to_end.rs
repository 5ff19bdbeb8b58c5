//! Confluence end to end through the real binary: Data Center with a personal access
//! token (bad and good, every operation, an expired token), Cloud through the
//! Atlassian OAuth flow against the fake (two sites, the `site` option, refresh with
//! rotating refresh tokens), the feature flag, disconnect, and a canary scan of logs,
//! responses and the data directory.

use patchbay_connector_confluence::fake::{
    FakeConfluence, FakeSite, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, RUNBOOK_PAGE_ID, SHORT_LINK,
};
use patchbay_e2e::{Answer, Patchbay};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const CANARY_PAT: &str = "canary-confluence-pat-5d7e21a9c4";
const CANARY_ACCESS: &str = "canary-atlassian-access-8b3f6e02";

fn operations(base: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "resolve_page_url",
            json!({ "url": format!("{base}/x/{SHORT_LINK}") }),
        ),
        ("get_page", json!({ "page_id": RUNBOOK_PAGE_ID })),
        (
            "get_runbook",
            json!({ "url": format!("{base}/display/OPS/Checkout+service+runbook") }),
        ),
        ("search_pages", json!({ "text": "checkout", "limit": 5 })),
        (
            "find_similar_incidents",
            json!({ "text": "checkout 502 errors on 10.1.2.3" }),
        ),
        ("find_runbooks", json!({ "service": "checkout" })),
        ("list_spaces", json!({ "limit": 5 })),
    ]
}

async fn start_oauth(patchbay: &Patchbay, key: &str, options: Value) -> String {
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/confluence/start",
            key,
            Some(json!({ "label": "Confluence Cloud", "options": options })),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    started.json()["begin_url"].as_str().unwrap().to_owned()
}

/// Follows a begin URL as a browser would: Patchbay's begin route (binding cookie),
/// the fake's authorize endpoint in place of auth.atlassian.com, then Patchbay's
/// callback. Returns the callback's answer and the authorize URL.
async fn authorize(patchbay: &Patchbay, begin_url: &str, fake_base: &str) -> (Answer, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let begun = browser.get(begin_url).send().await.unwrap();
    assert_eq!(begun.status().as_u16(), 303);
    let authorize_url = begun.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize_url.starts_with("https://auth.atlassian.com/authorize?"),
        "{authorize_url}"
    );
    let cookie = begun.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let at_fake = authorize_url.replacen("https://auth.atlassian.com", fake_base, 1);
    let answer = browser.get(&at_fake).send().await.unwrap();
    assert_eq!(
        answer.status().as_u16(),
        302,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let callback = location
        .strip_prefix(&patchbay.base_url)
        .unwrap_or_else(|| panic!("redirected to {location}, not to Patchbay"))
        .to_owned();
    assert!(callback.starts_with("/confluence/callback?"), "{callback}");
    let answer = patchbay
        .request("GET", &callback, &[("cookie", cookie.as_str())], None)
        .await;
    (answer, authorize_url)
}

fn connections(patchbay_list: &Value) -> Vec<Value> {
    patchbay_list["connections"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluence_data_center_and_cloud_connect_query_and_disconnect_without_leaking_secrets() {
    let dc = FakeConfluence::start(CANARY_PAT).await;
    let cloud = FakeConfluence::start(CANARY_ACCESS).await;
    cloud.set_sites(vec![
        FakeSite::confluence("cloud-alpha", "alpha", "https://alpha.atlassian.net"),
        FakeSite::confluence("cloud-beta", "beta", "https://beta.atlassian.net"),
    ]);
    let overrides = cloud.override_spec();
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", "127.0.0.1/32"),
        ("NEXT_PUBLIC_ENABLE_CONFLUENCE", "true"),
        // The older Atlassian names are read when the guide's are not set.
        ("ATLASSIAN_CLIENT_ID", FAKE_CLIENT_ID),
        ("ATLASSIAN_CLIENT_SECRET", FAKE_CLIENT_SECRET),
    ])
    .await;
    let alice = patchbay.create_api_key("alice", Some("acme"));

    let catalogue = patchbay.api("GET", "/api/connectors", &alice, None).await;
    assert_eq!(catalogue.status, 200);
    let catalogue = catalogue.json();
    let confluence = catalogue["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "confluence")
        .expect("confluence in the catalogue")
        .clone();
    assert_eq!(confluence["category"], "documentation");

    // ---- Data Center with a personal access token ----
    let base = dc.base_url();
    let connect = |fields: Value| json!({ "connector": "confluence", "label": "Confluence DC", "fields": fields });
    let bad = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(
                json!({ "base_url": base, "personal_access_token": "wrong-pat-000000" }),
            )),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let bad = bad.json();
    let pat_check = bad["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == "pat")
        .unwrap()
        .clone();
    assert_eq!(pat_check["outcome"], "failed");
    assert!(
        pat_check["detail"]
            .as_str()
            .unwrap()
            .starts_with("Failed to validate Confluence PAT"),
        "{pat_check}"
    );

    let missing = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(json!({ "base_url": base }))),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.json()["error"]["field"], "personal_access_token");

    let internal = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(json!({ "base_url": "https://10.0.0.1/confluence", "personal_access_token": CANARY_PAT }))),
        )
        .await;
    assert_eq!(internal.status, 400, "{}", internal.text);
    let internal = internal.json();
    assert_eq!(internal["error"]["field"], "base_url");
    assert!(
        internal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10.0.0.1 is a private address (RFC 1918)"),
        "{internal}"
    );
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert!(
        connections(&listed).is_empty(),
        "failed connects store nothing"
    );

    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(
                json!({ "base_url": base, "personal_access_token": CANARY_PAT }),
            )),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    assert_eq!(connected["connection"]["status"], "active");
    assert_eq!(connected["report"]["overall"], "ok");
    let dc_id = connected["connection"]["id"].as_str().unwrap().to_owned();

    for (operation, params) in operations(&base) {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{dc_id}/query/{operation}"),
                &alice,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
        assert!(answer.json().get("data").is_some(), "{operation}");
    }
    let runbook = patchbay
        .api(
            "POST",
            &format!("/api/connections/{dc_id}/query/get_runbook"),
            &alice,
            Some(json!({ "page_id": RUNBOOK_PAGE_ID })),
        )
        .await
        .json();
    assert_eq!(
        runbook["data"]["steps"][0]["commands"][0],
        "kubectl get pods -n checkout"
    );
    let foreign = patchbay
        .api(
            "POST",
            &format!("/api/connections/{dc_id}/query/get_page"),
            &alice,
            Some(json!({ "url": "https://confluence.elsewhere.example/pages/viewpage.action?pageId=101" })),
        )
        .await;
    assert_eq!(foreign.status, 400, "{}", foreign.text);
    assert_eq!(
        foreign.json()["error"]["message"],
        "Confluence page URL does not match configured base URL"
    );

    // ---- Cloud through Atlassian OAuth ----
    // Two sites and none named: the connect fails listing both, and stores nothing.
    let begin = start_oauth(&patchbay, &alice, json!({})).await;
    let (page, authorize_url) = authorize(&patchbay, &begin, &cloud.base_url()).await;
    for part in [
        "audience=api.atlassian.com",
        "prompt=consent",
        "response_type=code",
        "offline_access",
        "read%3Apage%3Aconfluence",
    ] {
        assert!(authorize_url.contains(part), "{part} in {authorize_url}");
    }
    assert_eq!(page.status, 400, "{}", page.text);
    assert!(
        page.text.contains("https://alpha.atlassian.net"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("https://beta.atlassian.net"),
        "{}",
        page.text
    );
    assert!(page.text.contains("`site`"), "{}", page.text);
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(
        connections(&listed).len(),
        1,
        "only the Data Center connection"
    );
    let token_requests = cloud.requests_to("/oauth/token");
    assert_eq!(token_requests.len(), 1);
    assert_eq!(
        token_requests[0].content_type.as_deref(),
        Some("application/json"),
        "Atlassian takes a JSON token body"
    );
    assert_eq!(
        token_requests[0].body_fields,
        [
            "client_id",
            "client_secret",
            "code",
            "grant_type",
            "redirect_uri"
        ]
    );

    // An unknown start option is refused before anything happens.
    let refused = patchbay
        .api(
            "POST",
            "/api/connections/oauth/confluence/start",
            &alice,
            Some(json!({ "options": { "api_url": "https://evil.example" } })),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    // The site named in the start option is connected.
    let begin = start_oauth(
        &patchbay,
        &alice,
        json!({ "site": "https://beta.atlassian.net" }),
    )
    .await;
    let (page, _) = authorize(&patchbay, &begin, &cloud.base_url()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    let cloud_connection = connections(&listed)
        .into_iter()
        .find(|c| c["id"] != dc_id.as_str())
        .expect("the Cloud connection");
    let cloud_id = cloud_connection["id"].as_str().unwrap().to_owned();
    let shown = cloud_connection.to_string();
    assert!(shown.contains("cloud-beta"), "{shown}");
    assert!(shown.contains("https://beta.atlassian.net"), "{shown}");

    let site = "https://beta.atlassian.net/wiki";
    for (operation, params) in operations(site) {
        if operation == "resolve_page_url" {
            continue;
        }
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{cloud_id}/query/{operation}"),
                &alice,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
    }
    let resolved = patchbay
        .api(
            "POST",
            &format!("/api/connections/{cloud_id}/query/resolve_page_url"),
            &alice,
            Some(json!({ "url": format!("{site}/spaces/OPS/pages/{RUNBOOK_PAGE_ID}/Checkout+service+runbook") })),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(resolved.json()["data"]["page_id"], RUNBOOK_PAGE_ID);
    let short = patchbay
        .api(
            "POST",
            &format!("/api/connections/{cloud_id}/query/resolve_page_url"),
            &alice,
            Some(json!({ "url": format!("{site}/x/ABC123") })),
        )
        .await;
    assert_eq!(short.status, 400, "{}", short.text);
    let short = short.json();
    assert_eq!(
        short["error"]["message"],
        "Unable to parse Confluence page ID from URL"
    );
    assert!(short["error"]["hint"]
        .as_str()
        .unwrap()
        .starts_with("Use full page URL instead of short link (Cloud only)"));
    assert!(!cloud
        .requests_to("/ex/confluence/cloud-beta/wiki/api/v2/spaces")
        .is_empty());
    assert!(cloud
        .requests_to("/ex/confluence/cloud-alpha/wiki/api/v2/spaces")
        .is_empty());

    // A rejected access token is refreshed with the rotating refresh token, twice.
    for round in 1..=2 {
        let before = cloud.current_refresh_token();
        cloud.expire_tokens();
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{cloud_id}/query/list_spaces"),
                &alice,
                Some(json!({})),
            )
            .await;
        assert_eq!(answer.status, 200, "round {round}: {}", answer.text);
        assert_ne!(
            cloud.current_refresh_token(),
            before,
            "round {round}: rotated"
        );
    }
    let refreshes: Vec<_> = cloud
        .requests_to("/oauth/token")
        .into_iter()
        .filter(|request| request.grant_type.as_deref() == Some("refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 2);
    assert!(refreshes
        .iter()
        .all(|request| request.content_type.as_deref() == Some("application/json")));

    // A refresh token Atlassian refuses: the guide's message, and the connection
    // needs a person to reconnect.
    cloud.revoke_refresh_token();
    cloud.expire_tokens();
    let refused = patchbay
        .api(
            "POST",
            &format!("/api/connections/{cloud_id}/query/list_spaces"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let refused = refused.json();
    assert_eq!(refused["error"]["kind"], "needs_reauth");
    assert_eq!(
        refused["error"]["message"],
        "Confluence credentials expired"
    );
    assert!(
        refused["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("reconnect Confluence"),
        "{refused}"
    );
    let record = patchbay
        .api("GET", &format!("/api/connections/{cloud_id}"), &alice, None)
        .await
        .json();
    assert!(record.to_string().contains("needs_reauth"), "{record}");

    // An expired personal access token: the guide's message, nothing to refresh.
    dc.expire_tokens();
    let expired = patchbay
        .api(
            "POST",
            &format!("/api/connections/{dc_id}/query/list_spaces"),
            &alice,
            Some(json!({})),
        )
        .await;
    // The host answers provider-refused credentials with 422, keeping 401 for its own callers.
    assert_eq!(expired.status, 422, "{}", expired.text);
    let expired = expired.json();
    assert_eq!(
        expired["error"]["message"],
        "Confluence credentials expired"
    );
    assert_eq!(expired["error"]["kind"], "needs_reauth");

    // Disconnect both; Atlassian offers no revocation for either.
    for id in [&dc_id, &cloud_id] {
        let deleted = patchbay
            .api("DELETE", &format!("/api/connections/{id}"), &alice, None)
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
        assert_eq!(deleted.json()["revoke"], "not_offered", "{}", deleted.text);
        let gone = patchbay
            .api("GET", &format!("/api/connections/{id}"), &alice, None)
            .await;
        assert_eq!(gone.status, 404);
    }
    let secrets: Value =
        serde_json::from_slice(&std::fs::read(patchbay.data_dir().join("secrets.json")).unwrap())
            .unwrap();
    assert_eq!(secrets, json!({}), "no secret is left after disconnect");

    // Canary scan: logs, every response, every file in the data directory. Access and
    // refresh tokens the fake issued all start with CANARY_ACCESS.
    patchbay.assert_nowhere(&[CANARY_PAT, CANARY_ACCESS, FAKE_CLIENT_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluence_with_its_flag_off_answers_the_disabled_message() {
    let dc = FakeConfluence::start(CANARY_PAT).await;
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", "127.0.0.1/32"),
        ("CONFLUENCE_CLIENT_ID", FAKE_CLIENT_ID),
        ("CONFLUENCE_CLIENT_SECRET", FAKE_CLIENT_SECRET),
    ])
    .await;
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let connect = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "confluence",
                "fields": { "base_url": dc.base_url(), "personal_access_token": CANARY_PAT }
            })),
        )
        .await;
    assert_eq!(connect.status, 403, "{}", connect.text);
    let connect = connect.json();
    assert_eq!(
        connect["error"]["message"],
        "Confluence connector not enabled"
    );
    assert!(connect["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("NEXT_PUBLIC_ENABLE_CONFLUENCE=true"));
    let start = patchbay
        .api(
            "POST",
            "/api/connections/oauth/confluence/start",
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(start.status, 403, "{}", start.text);
    assert_eq!(
        start.json()["error"]["message"],
        "Confluence connector not enabled"
    );
    let status = patchbay
        .api("GET", "/api/connectors/status", &alice, None)
        .await
        .json();
    assert_eq!(status["connectors"]["confluence"]["enabled"], false);
    assert_eq!(
        status["connectors"]["confluence"]["message"],
        "Confluence connector not enabled"
    );
    assert!(dc.requests().is_empty(), "nothing reached Confluence");
    patchbay.assert_nowhere(&[CANARY_PAT]);
}
