//! Netdata end to end through the real binary: connect with a bad and a good token,
//! every operation, webhooks of both payload versions and a test delivery, the
//! bearer check answering like an unknown user, disconnect, a custom space URL
//! through the operator's allowlist, and a canary scan of logs, responses and the
//! data directory.

use patchbay_connector_netdata::fake::{
    test_payload, v1_payload, v2_payload, FakeNetdata, ALL_NODES_ROOM, SPACE_ID, SPACE_NAME,
};
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const CANARY_TOKEN: &str = "canary-netdata-token-5d81c0e7a2";
const CANARY_WRONG_TOKEN: &str = "canary-netdata-wrong-94be13f6";

fn operations_params() -> Vec<(&'static str, Value)> {
    vec![
        ("list_spaces", json!({})),
        ("list_rooms", json!({ "limit": 2 })),
        ("list_nodes", json!({ "room_id": ALL_NODES_ROOM })),
        ("list_alerts", json!({ "room_id": ALL_NODES_ROOM })),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netdata_connect_query_webhook_disconnect_without_leaking_secrets() {
    let fake = FakeNetdata::start(CANARY_TOKEN).await;
    let overrides = fake.override_spec();
    let patchbay = Patchbay::start(&[("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str())]).await;
    let alice = patchbay.create_api_key("alice", Some("acme"));

    // The catalogue lists Netdata with its four read operations.
    let catalogue = patchbay.api("GET", "/api/connectors", &alice, None).await;
    assert_eq!(catalogue.status, 200);
    let catalogue = catalogue.json();
    let netdata = catalogue["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "netdata")
        .expect("netdata in the catalogue")
        .clone();
    let operations: Vec<&str> = netdata["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|operation| operation["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        operations,
        ["list_spaces", "list_rooms", "list_nodes", "list_alerts"]
    );

    // A missing token names the field.
    let missing = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({ "connector": "netdata", "fields": { "space_name": SPACE_NAME } })),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.json()["error"]["field"], "api_token");
    assert_eq!(
        missing.json()["error"]["message"],
        "Netdata API token is required"
    );

    // A bad token: 422 with the report, nothing stored.
    let bad = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "netdata",
                "fields": { "api_token": CANARY_WRONG_TOKEN, "space_name": SPACE_NAME }
            })),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let bad = bad.json();
    assert_eq!(bad["report"]["overall"], "failed");
    assert_eq!(bad["report"]["checks"][0]["id"], "spaces");
    assert_eq!(bad["report"]["checks"][0]["outcome"], "failed");

    // A space the token cannot see: 422 naming the spaces it can.
    let no_space = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "netdata",
                "fields": { "api_token": CANARY_TOKEN, "space_name": "Production" }
            })),
        )
        .await;
    assert_eq!(no_space.status, 422, "{}", no_space.text);
    let detail = no_space.json()["report"]["checks"][1]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("`Ops Team`, `Staging`"), "{detail}");

    // A custom space URL on an internal address is refused without the allowlist.
    let internal = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "netdata",
                "fields": { "api_token": CANARY_TOKEN, "space_url": fake.base_url(), "space_name": SPACE_NAME }
            })),
        )
        .await;
    assert_eq!(internal.status, 400, "{}", internal.text);
    assert_eq!(internal.json()["error"]["field"], "space_url");
    assert!(
        internal.text.contains("127.0.0.1 is a loopback address"),
        "{}",
        internal.text
    );

    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(
        listed["connections"],
        json!([]),
        "failed connects store nothing"
    );

    // The good token: 201 with the webhook URL and the bearer token shown once.
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "netdata",
                "label": "ops",
                "fields": { "api_token": CANARY_TOKEN, "space_name": SPACE_NAME }
            })),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    assert_eq!(connected["report"]["overall"], "ok");
    assert_eq!(connected["connection"]["metadata"]["space_id"], SPACE_ID);
    assert_eq!(
        connected["webhook"]["url"],
        format!("{}/netdata/alerts/webhook/alice", patchbay.base_url)
    );
    assert_eq!(connected["webhook"]["header"], "Authorization");
    assert!(connected["webhook"]["note"]
        .as_str()
        .unwrap()
        .contains("Bearer"));
    let token = connected["webhook"]["token"].as_str().unwrap().to_owned();
    let fetched = patchbay
        .api("GET", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert!(!fetched.text.contains(&token), "the token is shown once");

    // Every operation runs against the fake.
    for (operation, params) in operations_params() {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                &alice,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
        let output = answer.json();
        assert!(output["data"].is_object(), "{operation}: {output}");
    }
    let rooms = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_rooms"),
            &alice,
            Some(json!({ "limit": 2 })),
        )
        .await
        .json();
    assert!(rooms["next_cursor"].is_string(), "{rooms}");
    let too_many = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_nodes"),
            &alice,
            Some(json!({ "room_id": ALL_NODES_ROOM, "limit": 500 })),
        )
        .await;
    assert_eq!(too_many.status, 400, "{}", too_many.text);
    assert_eq!(too_many.json()["error"]["field"], "limit");

    let revalidated = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/validate"),
            &alice,
            None,
        )
        .await;
    assert_eq!(revalidated.status, 200, "{}", revalidated.text);
    assert_eq!(revalidated.json()["report"]["overall"], "ok");

    // Webhooks.
    let path = "/netdata/alerts/webhook/alice";
    let send = |authorization: Option<String>, path: &'static str, body: Value| {
        let patchbay = &patchbay;
        async move {
            let mut headers = vec![("content-type", "application/json")];
            let value;
            if let Some(authorization) = authorization {
                value = authorization;
                headers.push(("authorization", value.as_str()));
            }
            patchbay
                .request(
                    "POST",
                    path,
                    &headers,
                    Some(serde_json::to_vec(&body).unwrap()),
                )
                .await
        }
    };
    let bearer = format!("Bearer {token}");
    let firing_v1 = v1_payload("10min_cpu_usage", "web-1", "CRITICAL", 1_714_564_800);
    let accepted = send(Some(bearer.clone()), path, firing_v1.clone()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.json()["accepted"], 1);
    let duplicate = send(Some(bearer.clone()), path, firing_v1.clone()).await;
    assert_eq!(duplicate.json()["duplicates"], 1, "{}", duplicate.text);

    let warning_v2 = v2_payload("disk_space_usage", "db-1", "WARNING", 1_714_563_000);
    let accepted = send(Some(bearer.clone()), path, warning_v2).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.json()["accepted"], 1);

    let cleared = v1_payload("10min_cpu_usage", "web-1", "CLEAR", 1_714_565_400);
    assert_eq!(send(Some(bearer.clone()), path, cleared).await.status, 202);

    let test = send(Some(bearer.clone()), path, test_payload()).await;
    assert_eq!(test.status, 200, "{}", test.text);
    assert_eq!(
        test.json(),
        json!({"received": true, "test": true, "stored": false})
    );

    let alerts = patchbay
        .api("GET", "/api/alerts?limit=10", &alice, None)
        .await
        .json();
    let stored = alerts["alerts"].as_array().unwrap();
    assert_eq!(stored.len(), 3, "duplicate and test not stored: {alerts}");
    assert!(stored.iter().all(|alert| alert["source"] == "netdata"));
    assert_eq!(stored[0]["title"], "10min_cpu_usage");
    assert_eq!(stored[0]["severity"], "critical");
    assert_eq!(stored[1]["severity"], "high");
    assert_eq!(stored[1]["service"], "db-1");
    assert_eq!(stored[2]["status"], "resolved");
    assert_eq!(stored[0]["external_id"], stored[2]["external_id"]);

    // A wrong, missing or non-Bearer credential gets the unknown user's 401.
    let unknown_user = send(
        Some(bearer.clone()),
        "/netdata/alerts/webhook/nobody",
        firing_v1.clone(),
    )
    .await;
    assert_eq!(unknown_user.status, 401);
    for authorization in [
        Some("Bearer pbw_not-the-token".to_owned()),
        None,
        Some(format!("Basic {token}")),
        Some(token.clone()),
    ] {
        let refused = send(authorization.clone(), path, firing_v1.clone()).await;
        assert_eq!(refused.status, 401, "{authorization:?}: {}", refused.text);
        assert_eq!(refused.json(), unknown_user.json(), "{authorization:?}");
    }
    let custom_header = patchbay
        .request(
            "POST",
            path,
            &[
                ("content-type", "application/json"),
                ("x-patchbay-token", token.as_str()),
            ],
            Some(serde_json::to_vec(&firing_v1).unwrap()),
        )
        .await;
    assert_eq!(custom_header.status, 401);
    assert_eq!(custom_header.json(), unknown_user.json());

    // Disconnect removes the secret, the record and the webhook token.
    let deleted = patchbay
        .api("DELETE", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = patchbay
        .api("GET", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert_eq!(gone.status, 404);
    let secrets: Value =
        serde_json::from_slice(&std::fs::read(patchbay.data_dir().join("secrets.json")).unwrap())
            .unwrap();
    assert_eq!(secrets, json!({}));
    assert_eq!(send(Some(bearer), path, firing_v1).await.status, 401);

    // Canary scan: logs, every response, every file in the data directory.
    patchbay.assert_nowhere(&[CANARY_TOKEN, CANARY_WRONG_TOKEN]);
    patchbay.assert_not_logged_or_stored(&[&token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_space_url_connects_through_the_operators_allowlist() {
    let fake = FakeNetdata::start(CANARY_TOKEN).await;
    let patchbay = Patchbay::start(&[("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", "127.0.0.1/32")]).await;
    let alice = patchbay.create_api_key("alice", None);
    let space_url = fake.base_url();
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "netdata",
                "fields": { "api_token": CANARY_TOKEN, "space_url": space_url, "space_name": SPACE_NAME }
            })),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    assert_eq!(
        connected["connection"]["metadata"]["base_url"],
        space_url.trim_end_matches('/')
    );
    let id = connected["connection"]["id"].as_str().unwrap();
    let alerts = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_alerts"),
            &alice,
            Some(json!({ "room_id": ALL_NODES_ROOM })),
        )
        .await;
    assert_eq!(alerts.status, 200, "{}", alerts.text);
    assert_eq!(alerts.json()["data"]["total"], 4);
    assert!(!fake.requests().is_empty());
    patchbay.assert_nowhere(&[CANARY_TOKEN]);
}
