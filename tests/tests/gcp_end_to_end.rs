//! Google Cloud end to end through the real binary: the OAuth flow against the fake
//! Google (offline access, consent, PKCE, read-only scope, the `projects` option),
//! a refresh after Google stops accepting the access token, a service-account key
//! upload (refused keys with the reference's messages, then a good one), project
//! selection, every operation on both connections, disconnect with revoke, and a
//! canary scan of the client secret, the private key and every token.

use patchbay_connector_gcp::fake::{
    FakeGcp, TestServiceAccount, FAKE_CLIENT_ID, INSTANCE_COUNT, USER_EMAIL,
};
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

/// Every token the fake issues (access, refresh, id, service-account) starts with this.
const CANARY_TOKEN: &str = "canary-google-token-71d0e3b5";
const CANARY_CLIENT_SECRET: &str = "canary-GOCSPX-client-secret-2a9f";
const SA_EMAIL: &str = "patchbay-reader@acme-staging.iam.gserviceaccount.com";

fn operations(project: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("list_projects", json!({ "limit": 10 })),
        (
            "query_logs",
            json!({ "project": project, "filter": "severity>=ERROR", "limit": 20 }),
        ),
        (
            "query_metrics",
            json!({ "project": project, "filter": "metric.type=\"compute.googleapis.com/instance/cpu/utilization\"", "limit": 2 }),
        ),
        ("list_instances", json!({ "project": project, "limit": 5 })),
        ("list_alert_policies", json!({ "project": project })),
        ("list_gke_clusters", json!({ "project": project })),
        (
            "search_assets",
            json!({ "project": project, "query": "name:checkout" }),
        ),
    ]
}

fn connection<'v>(listed: &'v Value, auth_type: &str) -> &'v Value {
    listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metadata"]["auth_type"] == auth_type)
        .unwrap_or_else(|| panic!("a {auth_type} connection in {listed}"))
}

async fn run_every_operation(patchbay: &Patchbay, key: &str, id: &str, project: &str) {
    for (operation, params) in operations(project) {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                key,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
        let data = &answer.json()["data"];
        let listed = match operation {
            "list_projects" => &data["projects"],
            "query_logs" => &data["entries"],
            "query_metrics" => &data["time_series"],
            "list_instances" => &data["instances"],
            "list_alert_policies" => &data["alert_policies"],
            "list_gke_clusters" => &data["clusters"],
            _ => &data["results"],
        };
        assert!(
            listed.as_array().is_some_and(|items| !items.is_empty()),
            "{operation} returned items: {data}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_connects_by_oauth_and_by_key_queries_and_disconnects_without_leaking_secrets() {
    let fake = FakeGcp::start(CANARY_TOKEN).await;
    fake.set_oauth_client(FAKE_CLIENT_ID, CANARY_CLIENT_SECRET);
    let key = TestServiceAccount::generate(SA_EMAIL, "acme-staging");
    let unknown_key = TestServiceAccount::generate(SA_EMAIL, "acme-staging");
    fake.register_service_account(&key);
    let overrides = fake.override_spec();
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", "127.0.0.1/32"),
        ("CLIENT_ID", FAKE_CLIENT_ID),
        ("CLIENT_SECRET", CANARY_CLIENT_SECRET),
    ])
    .await;
    fake.register_redirect_uri(&format!("{}/callback", patchbay.base_url));
    let alice = patchbay.create_api_key("alice", Some("acme"));

    let catalogue = patchbay
        .api("GET", "/api/connectors", &alice, None)
        .await
        .json();
    let gcp = catalogue["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "gcp")
        .expect("gcp in the catalogue")
        .clone();
    assert_eq!(gcp["category"], "cloud");

    // Only the `projects` start option is accepted.
    let refused = patchbay
        .api(
            "POST",
            "/api/connections/oauth/gcp/start",
            &alice,
            Some(json!({ "options": { "token_uri": "https://evil.example/token" } })),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    // ---- OAuth: the flow against the fake Google, choosing one project ----
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/gcp/start",
            &alice,
            Some(json!({ "label": "Google Cloud", "options": { "projects": ["acme-prod"] } })),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    let (page, authorize_url) = patchbay
        .authorize_in_browser(&begin_url, "https://accounts.google.com", &fake.base_url())
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        authorize_url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"),
        "{authorize_url}"
    );
    let authorize = reqwest::Url::parse(&authorize_url).unwrap();
    let param = |name: &str| {
        authorize
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(param("access_type").as_deref(), Some("offline"));
    assert_eq!(param("prompt").as_deref(), Some("consent"));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(
        param("redirect_uri"),
        Some(format!("{}/callback", patchbay.base_url))
    );
    assert_eq!(
        param("scope").as_deref(),
        Some("https://www.googleapis.com/auth/cloud-platform.read-only https://www.googleapis.com/auth/userinfo.email")
    );
    let exchange = fake.requests_to("/token");
    assert_eq!(exchange.len(), 1);
    assert_eq!(
        exchange[0].body_fields,
        [
            "client_id",
            "client_secret",
            "code",
            "code_verifier",
            "grant_type",
            "redirect_uri"
        ]
    );

    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    let oauth_connection = connection(&listed, "oauth").clone();
    let oauth_id = oauth_connection["id"].as_str().unwrap().to_owned();
    assert_eq!(oauth_connection["metadata"]["email"], USER_EMAIL);
    assert_eq!(
        oauth_connection["metadata"]["projects"],
        json!(["acme-prod"])
    );
    let accessible: Vec<&str> = oauth_connection["metadata"]["accessible_projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project_id"].as_str().unwrap())
        .collect();
    assert_eq!(accessible, ["acme-prod", "acme-staging"]);

    run_every_operation(&patchbay, &alice, &oauth_id, "acme-prod").await;
    let other = patchbay
        .api(
            "POST",
            &format!("/api/connections/{oauth_id}/query/list_instances"),
            &alice,
            Some(json!({ "project": "acme-staging" })),
        )
        .await;
    assert_eq!(other.status, 400, "{}", other.text);
    assert_eq!(other.json()["error"]["field"], "project");

    // Google stops accepting the access token: Patchbay refreshes once and retries.
    fake.expire_access_tokens();
    let refreshed = patchbay
        .api(
            "POST",
            &format!("/api/connections/{oauth_id}/query/list_instances"),
            &alice,
            Some(json!({ "project": "acme-prod" })),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        refreshed.json()["data"]["instances"]
            .as_array()
            .unwrap()
            .len(),
        INSTANCE_COUNT
    );
    let grants: Vec<Option<String>> = fake
        .requests_to("/token")
        .into_iter()
        .map(|r| r.grant_type)
        .collect();
    assert_eq!(
        grants,
        [
            Some("authorization_code".to_owned()),
            Some("refresh_token".to_owned())
        ]
    );

    // A disabled API is reported by name with the console link.
    fake.disable_api("acme-prod", "logging.googleapis.com");
    let revalidated = patchbay
        .api(
            "POST",
            &format!("/api/connections/{oauth_id}/validate"),
            &alice,
            None,
        )
        .await;
    assert_eq!(revalidated.status, 200, "{}", revalidated.text);
    let revalidated = revalidated.json();
    assert_eq!(revalidated["status"], "degraded", "{revalidated}");
    let logging = revalidated["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "logging:acme-prod")
        .unwrap()
        .clone();
    assert!(
        logging["detail"]
            .as_str()
            .unwrap()
            .starts_with("API not enabled: Cloud Logging API (logging.googleapis.com)"),
        "{logging}"
    );
    assert!(logging["detail"].as_str().unwrap().contains(
        "https://console.cloud.google.com/apis/library/logging.googleapis.com?project=acme-prod"
    ));

    // ---- Service-account key upload ----
    let connect =
        |fields: Value| json!({ "connector": "gcp", "label": "GCP key", "fields": fields });
    let missing = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(
                json!({ "service_account_json": key.json_with("client_email", Value::Null) }),
            )),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    let missing = missing.json();
    assert_eq!(
        missing["error"]["message"],
        "Missing required field 'client_email' in service account JSON"
    );
    assert_eq!(missing["error"]["field"], "service_account_json");
    let not_json = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(json!({ "service_account_json": "{\"type\": " }))),
        )
        .await;
    assert_eq!(not_json.status, 400, "{}", not_json.text);
    assert!(not_json.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Uploaded file is not valid JSON: "));
    let refused = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(json!({ "service_account_json": unknown_key.json_with("client_email", json!("gone@acme-staging.iam.gserviceaccount.com")) }))),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let token_check = refused.json()["report"]["checks"][0].clone();
    assert_eq!(token_check["id"], "token");
    assert!(
        token_check["detail"]
            .as_str()
            .unwrap()
            .starts_with("Google rejected the service account key"),
        "{token_check}"
    );

    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(connect(
                json!({ "service_account_json": key.json, "projects": ["acme-staging"] }),
            )),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    assert_eq!(connected["report"]["overall"], "ok", "{connected}");
    assert_eq!(connected["connection"]["status"], "active", "{connected}");
    let key_id = connected["connection"]["id"].as_str().unwrap().to_owned();
    assert_eq!(connected["connection"]["metadata"]["email"], SA_EMAIL);
    assert_eq!(
        connected["connection"]["metadata"]["projects"],
        json!(["acme-staging"])
    );
    assert_eq!(
        connected["connection"]["metadata"]["accessible_projects"][1]["project_id"], "acme-staging",
        "the connect result lists the accessible projects"
    );
    let jwt = fake
        .requests_to("/token")
        .into_iter()
        .filter(|r| r.grant_type.as_deref() == Some("urn:ietf:params:oauth:grant-type:jwt-bearer"))
        .count();
    assert!(
        jwt >= 2,
        "the refused and the accepted key each sent an assertion"
    );
    run_every_operation(&patchbay, &alice, &key_id, "acme-staging").await;

    // While both connections are stored: nothing in clear in the data directory or logs.
    patchbay.assert_nowhere(&[
        CANARY_TOKEN,
        CANARY_CLIENT_SECRET,
        &key.private_key_canary(),
        &unknown_key.private_key_canary(),
    ]);

    // ---- Disconnect: the OAuth grant is revoked at Google; a key is not Patchbay's to revoke ----
    let deleted = patchbay
        .api(
            "DELETE",
            &format!("/api/connections/{oauth_id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json()["revoke"], "revoked", "{}", deleted.text);
    assert_eq!(fake.revoked_grants(), 1);
    assert_eq!(fake.requests_to("/revoke")[0].body_fields, ["token"]);
    assert!(fake.requests_to("/revoke")[0].query.is_empty());
    let deleted = patchbay
        .api(
            "DELETE",
            &format!("/api/connections/{key_id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json()["revoke"], "not_offered", "{}", deleted.text);
    for id in [&oauth_id, &key_id] {
        let gone = patchbay
            .api("GET", &format!("/api/connections/{id}"), &alice, None)
            .await;
        assert_eq!(gone.status, 404);
    }
    let secrets: Value =
        serde_json::from_slice(&std::fs::read(patchbay.data_dir().join("secrets.json")).unwrap())
            .unwrap();
    assert_eq!(secrets, json!({}), "no secret is left after disconnect");

    // Many projects and no choice: nothing is stored and the page lists them; the
    // person starts again naming the projects.
    let many = [
        "acme-prod",
        "acme-staging",
        "acme-dev-001",
        "acme-dev-002",
        "acme-dev-003",
        "acme-dev-004",
    ];
    fake.set_projects(&many);
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/gcp/start",
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    let (page, _) = patchbay
        .authorize_in_browser(&begin_url, "https://accounts.google.com", &fake.base_url())
        .await;
    assert!(
        page.text.contains("reach 6 projects") && page.text.contains("acme-dev-004"),
        "{}",
        page.text
    );
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(listed["connections"], json!([]), "nothing was stored");
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/gcp/start",
            &alice,
            Some(json!({ "options": { "projects": "acme-dev-002, acme-dev-003" } })),
        )
        .await;
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    let (page, _) = patchbay
        .authorize_in_browser(&begin_url, "https://accounts.google.com", &fake.base_url())
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    let picked = connection(&listed, "oauth");
    assert_eq!(
        picked["metadata"]["projects"],
        json!(["acme-dev-002", "acme-dev-003"])
    );
    let picked_id = picked["id"].as_str().unwrap().to_owned();
    let deleted = patchbay
        .api(
            "DELETE",
            &format!("/api/connections/{picked_id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(deleted.json()["revoke"], "revoked", "{}", deleted.text);

    // Canary scan: logs, every response, every file in the data directory.
    patchbay.assert_nowhere(&[
        CANARY_TOKEN,
        CANARY_CLIENT_SECRET,
        &key.private_key_canary(),
        &unknown_key.private_key_canary(),
    ]);
}
