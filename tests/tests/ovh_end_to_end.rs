//! OVHcloud end to end through the real binary: the flag-off answers, OAuth refused
//! for a region without a client, an application-key connection (bad, then good)
//! with every operation, an OAuth connection in the EU region through the fake with
//! the redirect URI taken from the environment, a refresh after a rejected token,
//! a refused refresh that ends in an error (never the old token), disconnect, and a
//! canary scan of logs, responses and the data directory.

use patchbay_connector_ovh::fake::{self as fake_ovh, AppKeys, FakeOvh, ProviderFake, PROJECT_ID};
use patchbay_e2e::{Answer, Patchbay};
use serde_json::{json, Value};

const AK: &str = "canaryOvhE2eAk7d1e2f";
const AS: &str = "canaryOvhE2eAs9c2d4a7b1e3f5a6b8c0d";
const CK: &str = "canaryOvhE2eCk3e8b1f07a9c2d4e6f8a0";
const WRONG_CK: &str = "canaryOvhE2eWrongCk5b7d9f1a3c5e7a9";
const TUNNEL: &str = "https://abc123.ngrok-free.app";
const CALLBACK_PATH: &str = "/ovh_api/ovh/oauth2/callback";

fn keys() -> AppKeys {
    AppKeys {
        application_key: AK.to_owned(),
        application_secret: AS.to_owned(),
        consumer_key: CK.to_owned(),
    }
}

fn operations() -> Vec<(&'static str, Value, &'static str)> {
    let project = json!({"project_id": PROJECT_ID});
    vec![
        ("list_projects", json!({}), "projects"),
        ("list_instances", project.clone(), "instances"),
        ("list_kube_clusters", project.clone(), "clusters"),
        ("list_databases", project.clone(), "databases"),
        ("list_private_networks", project.clone(), "networks"),
        ("get_quotas", project, "quotas"),
        ("list_dedicated_servers", json!({}), "servers"),
    ]
}

async fn run_every_operation(patchbay: &Patchbay, key: &str, id: &str) {
    for (operation, params, field) in operations() {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                key,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
        let items = answer.json()["data"][field].as_array().cloned();
        assert!(
            items.is_some_and(|items| !items.is_empty()),
            "{operation}: {}",
            answer.text
        );
    }
}

async fn query(patchbay: &Patchbay, key: &str, id: &str, operation: &str) -> Answer {
    patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/{operation}"),
            key,
            Some(json!({})),
        )
        .await
}

/// Walks the OAuth flow as a browser behind the tunnel would: Patchbay's begin URL,
/// the fake's authorize endpoint of the region, then the callback the tunnel forwards
/// to Patchbay. Returns the callback page and the authorize URL Patchbay sent.
async fn authorize_through_tunnel(
    patchbay: &Patchbay,
    fake: &FakeOvh,
    begin_url: &str,
) -> (Answer, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let begun = browser.get(begin_url).send().await.unwrap();
    assert_eq!(begun.status().as_u16(), 303);
    let authorize_url = begun.headers()["location"].to_str().unwrap().to_owned();
    let cookie = begun.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let at_fake = authorize_url.replacen(
        "https://www.ovh.com",
        &format!("{}/eu-auth", fake.base_url()),
        1,
    );
    assert_ne!(at_fake, authorize_url, "{authorize_url}");
    let answer = browser.get(&at_fake).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let callback = location
        .strip_prefix(TUNNEL)
        .unwrap_or_else(|| panic!("redirected to {location}, not to the tunnel"))
        .to_owned();
    assert!(callback.starts_with(CALLBACK_PATH), "{callback}");
    let page = patchbay
        .request("GET", &callback, &[("cookie", cookie.as_str())], None)
        .await;
    (page, authorize_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovh_oauth_and_application_key_connections_without_leaking_secrets() {
    let fake = FakeOvh::start(Some(keys())).await;
    let redirect_uri = format!("{TUNNEL}{CALLBACK_PATH}");
    fake.register_callback("eu", &redirect_uri);
    let mut env = fake.api_env();
    env.extend(FakeOvh::client_env(&["eu", "ca"], &redirect_uri));
    env.push(("NEXT_PUBLIC_ENABLE_OVH".to_owned(), "true".to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let patchbay = Patchbay::start(&env).await;
    let alice = patchbay.create_api_key("alice", Some("acme"));

    // Only the regions with a configured client are offered.
    let listing = patchbay.api("GET", "/api/connectors", &alice, None).await;
    let ovh = listing.json()["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|connector| connector["id"] == "ovh")
        .cloned()
        .expect("OVHcloud is listed");
    assert_eq!(
        ovh["oauth_regions"],
        json!({"option": "region", "configured": ["ovh-eu", "ovh-ca"]})
    );

    // OAuth in a region without a client: the guide's message, nothing sent anywhere.
    let refused = patchbay
        .api(
            "POST",
            "/api/connections/oauth/ovh/start",
            &alice,
            Some(json!({"options": {"region": "ovh-us"}})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.json()["error"]["message"],
        "OAuth2 credentials not configured for ovh-us"
    );
    let unknown = patchbay
        .api(
            "POST",
            "/api/connections/oauth/ovh/start",
            &alice,
            Some(json!({"options": {"region": "ovh-eu", "projectId": "x"}})),
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    let missing = patchbay
        .api(
            "POST",
            "/api/connections/oauth/ovh/start",
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert!(
        missing.text.contains("configured regions: ovh-eu, ovh-ca"),
        "{}",
        missing.text
    );

    // Application key: a wrong consumer key is refused with nothing stored.
    let form = |ck: &str| {
        json!({"connector": "ovh", "label": "keys", "fields": {
            "region": "ovh-eu", "application_key": AK, "application_secret": AS, "consumer_key": ck
        }})
    };
    let bad = patchbay
        .api("POST", "/api/connections", &alice, Some(form(WRONG_CK)))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(
        bad.text.contains("This credential does not exist"),
        "{}",
        bad.text
    );
    let invalid = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "ovh", "fields": {"application_key": AK}})),
        )
        .await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    assert_eq!(
        invalid.json()["error"]["message"],
        "Missing region. Must be one of: ovh-eu, ovh-ca, ovh-us"
    );
    let connected = patchbay
        .api("POST", "/api/connections", &alice, Some(form(CK)))
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    assert_eq!(connected["report"]["overall"], "ok", "{connected}");
    assert_eq!(
        connected["connection"]["metadata"]["auth_method"],
        "application_key"
    );
    let keys_id = connected["connection"]["id"].as_str().unwrap().to_owned();
    fake.clear_requests();
    run_every_operation(&patchbay, &alice, &keys_id).await;
    assert!(fake
        .requests()
        .iter()
        .filter(|request| request.path != "/auth/time")
        .all(|request| request.auth.as_deref() == Some("signed") && request.region == "eu"));

    // OAuth in the EU region, with the redirect URI exactly as configured.
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/ovh/start",
            &alice,
            Some(json!({"label": "OVH via OAuth", "options": {"region": "ovh-eu"}})),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    let (page, authorize_url) = authorize_through_tunnel(&patchbay, &fake, &begin_url).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        authorize_url.starts_with("https://www.ovh.com/auth/oauth2/authorize?"),
        "{authorize_url}"
    );
    let sent_redirect = reqwest::Url::parse(&authorize_url)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "redirect_uri")
        .map(|(_, value)| value.into_owned());
    assert_eq!(sent_redirect.as_deref(), Some(redirect_uri.as_str()));
    let token_request = fake.requests_to("/auth/oauth2/token").pop().unwrap();
    assert_eq!(token_request.region, "eu");
    assert_eq!(
        token_request.form_value("redirect_uri"),
        Some(redirect_uri.as_str())
    );
    assert_eq!(
        token_request.form_value("client_id"),
        Some(fake_ovh::client_id("eu").as_str())
    );
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    let oauth = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|connection| connection["metadata"]["auth_method"] == "oauth")
        .expect("the OAuth connection")
        .clone();
    assert_eq!(oauth["metadata"]["region"], "ovh-eu");
    assert_eq!(oauth["metadata"]["nichandle"], fake_ovh::NICHANDLE);
    let oauth_id = oauth["id"].as_str().unwrap().to_owned();
    fake.clear_requests();
    run_every_operation(&patchbay, &alice, &oauth_id).await;
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.auth.as_deref() == Some("bearer") && request.region == "eu"));

    // A rejected access token is refreshed once, at the EU token endpoint.
    let before = fake.token_requests();
    fake.expire_access_tokens();
    let answer = query(&patchbay, &alice, &oauth_id, "list_dedicated_servers").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(fake.token_requests(), before + 1);
    assert_eq!(
        fake.requests_to("/auth/oauth2/token").pop().unwrap().region,
        "eu"
    );

    // A refused refresh is an error asking to reconnect, never an answer with the old token.
    fake.expire_access_tokens();
    fake.refuse_refresh();
    fake.clear_requests();
    let answer = query(&patchbay, &alice, &oauth_id, "list_dedicated_servers").await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(
        answer.json()["error"]["kind"],
        "needs_reauth",
        "{}",
        answer.text
    );
    assert!(answer.json()["data"].is_null());
    assert!(
        answer
            .text
            .contains("OVH authentication expired. Please reconnect your account."),
        "{}",
        answer.text
    );
    let again = query(&patchbay, &alice, &oauth_id, "list_projects").await;
    assert_ne!(again.status, 200, "{}", again.text);

    // While the connections are stored: nothing in clear in the data directory or logs.
    patchbay.assert_nowhere(
        &canaries(&fake)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );

    // Disconnect both.
    for id in [&keys_id, &oauth_id] {
        let deleted = patchbay
            .api("DELETE", &format!("/api/connections/{id}"), &alice, None)
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
    }
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(listed["connections"], json!([]));

    // Canary scan after disconnecting.
    assert!(fake.issued() >= 2);
    patchbay.assert_nowhere(
        &canaries(&fake)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
}

/// The client secrets, the application secret and keys, and every token the fake issued.
fn canaries(fake: &FakeOvh) -> Vec<String> {
    let mut canaries: Vec<String> = vec![
        AK.to_owned(),
        AS.to_owned(),
        CK.to_owned(),
        WRONG_CK.to_owned(),
        fake_ovh::client_secret("eu"),
        fake_ovh::client_secret("ca"),
    ];
    for n in 1..=fake.issued() {
        canaries.push(fake_ovh::issued_access_token("eu", n));
        canaries.push(fake_ovh::issued_refresh_token("eu", n));
    }
    canaries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_flag_off_every_ovh_route_says_the_connector_is_not_enabled() {
    let fake = FakeOvh::start(Some(keys())).await;
    let redirect_uri = format!("{TUNNEL}{CALLBACK_PATH}");
    let mut env = fake.api_env();
    env.extend(FakeOvh::client_env(&["eu"], &redirect_uri));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let patchbay = Patchbay::start(&env).await;
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let connect = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "ovh", "fields": {
                "region": "ovh-eu", "application_key": AK, "application_secret": AS, "consumer_key": CK
            }})),
        )
        .await;
    assert_eq!(connect.status, 403, "{}", connect.text);
    assert_eq!(
        connect.json()["error"]["message"],
        "OVH connector not enabled"
    );
    assert!(
        connect.text.contains("NEXT_PUBLIC_ENABLE_OVH"),
        "{}",
        connect.text
    );
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/ovh/start",
            &alice,
            Some(json!({"options": {"region": "ovh-eu"}})),
        )
        .await;
    assert_eq!(started.status, 403, "{}", started.text);
    assert_eq!(
        started.json()["error"]["message"],
        "OVH connector not enabled"
    );
    let callback = patchbay
        .request(
            "GET",
            &format!("{CALLBACK_PATH}?code=c&state=forged-state"),
            &[],
            None,
        )
        .await;
    assert_eq!(callback.status, 403, "{}", callback.text);
    assert!(
        callback.text.contains("OVH connector not enabled"),
        "{}",
        callback.text
    );
    assert!(fake.requests().is_empty());
}
