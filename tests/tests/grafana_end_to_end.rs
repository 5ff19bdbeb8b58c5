//! Grafana end to end through the real binary: the Grafana URL through the SSRF
//! policy, connect with bad and good tokens, every operation, contact-point
//! webhooks by POST and PUT (HMAC and bearer), a test delivery, disconnect, and a
//! canary scan of logs, responses and the data directory.

use patchbay_connector_grafana::fake::{sample_payload, test_payload, FakeGrafana, PROMETHEUS_UID};
use patchbay_connector_grafana::webhook::sign;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const CANARY_TOKEN: &str = "glsa_canary-grafana-token-5d1c9e7a";
const SIGNATURE_HEADER: &str = "x-grafana-alerting-signature";

fn operations_params() -> Vec<(&'static str, Value)> {
    vec![
        (
            "search_dashboards",
            json!({ "limit": 20, "tags": ["prod"] }),
        ),
        ("get_dashboard", json!({ "uid": "dash-01" })),
        ("list_datasources", json!({})),
        (
            "query_datasource",
            json!({ "datasource_uid": PROMETHEUS_UID, "expr": "up", "max_data_points": 20 }),
        ),
        ("list_alert_rules", json!({ "group_limit": 2 })),
        ("list_active_alerts", json!({ "limit": 5 })),
        ("list_annotations", json!({ "limit": 50 })),
    ]
}

fn field<'v>(setup: &'v Value, name_part: &str) -> &'v Value {
    setup["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|field| field["name"].as_str().unwrap().contains(name_part))
        .map(|field| &field["value"])
        .unwrap_or_else(|| panic!("no setup field {name_part} in {setup}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_connect_query_webhooks_disconnect_without_leaking_secrets() {
    let fake = FakeGrafana::start(CANARY_TOKEN).await;
    // The Grafana URL is the tenant's; the fake on loopback is reachable only
    // because the operator allows loopback.
    let patchbay = Patchbay::start(&FakeGrafana::env_pairs()).await;
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let carol = patchbay.create_api_key("carol", Some("globex"));

    let catalogue = patchbay
        .api("GET", "/api/connectors", &alice, None)
        .await
        .json();
    let grafana = catalogue["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "grafana")
        .expect("grafana in the catalogue")
        .clone();
    assert_eq!(
        grafana["webhook"]["path"], "/grafana/alerts/webhook/{user_id}",
        "{grafana}"
    );

    // Refused URLs name the host and the rule, and nothing is stored.
    for (url, expected) in [
        (
            "https://169.254.169.254",
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "https://10.0.0.1",
            "10.0.0.1 is a private address (RFC 1918)",
        ),
        ("http://grafana.example.com", "must use https"),
    ] {
        let refused = patchbay
            .api(
                "POST",
                "/api/connections",
                &alice,
                Some(json!({"connector": "grafana", "fields": {"base_url": url, "api_token": CANARY_TOKEN}})),
            )
            .await;
        assert_eq!(refused.status, 400, "{url}: {}", refused.text);
        let error = &refused.json()["error"];
        assert_eq!(error["field"], "base_url");
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{url}: {error}"
        );
    }

    // A missing token names the field.
    let missing = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "grafana", "fields": {"base_url": fake.base_url(), "allow_http": true}})),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.json()["error"]["field"], "api_token");

    // A bad token: 422 with the report, nothing stored.
    let bad = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "grafana", "fields": fake.form("glsa_wrong-token-000")})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let bad = bad.json();
    assert_eq!(bad["report"]["overall"], "failed");
    let user_check = bad["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == "user")
        .unwrap();
    assert_eq!(user_check["outcome"], "failed");
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(listed["connections"], json!([]));

    // A good token (HMAC webhooks with a timestamp header).
    let mut fields = fake.form(CANARY_TOKEN);
    fields["timestamp_header"] = json!("X-Grafana-Alerting-Timestamp");
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "grafana", "label": "prod", "fields": fields})),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    assert_eq!(connected["report"]["overall"], "ok", "{connected}");
    assert_eq!(
        connected["connection"]["metadata"]["org_name"],
        "Acme Observability"
    );
    let webhook_path = "/grafana/alerts/webhook/alice";
    let webhook_url = format!("{}{webhook_path}", patchbay.base_url);
    assert_eq!(connected["webhook"]["url"], webhook_url.as_str());
    let secret = connected["webhook"]["secret"].as_str().unwrap().to_owned();
    // The contact point's settings, field by field.
    let setup = &connected["webhook"]["setup"];
    assert_eq!(field(setup, "URL"), webhook_url.as_str());
    assert!(field(setup, "HTTP Method")
        .as_str()
        .unwrap()
        .starts_with("POST"));
    assert_eq!(field(setup, "HMAC Signature > Secret"), secret.as_str());
    assert_eq!(
        field(setup, "HMAC Signature > Header"),
        "X-Grafana-Alerting-Signature"
    );
    assert_eq!(
        field(setup, "Timestamp Header"),
        "X-Grafana-Alerting-Timestamp"
    );
    let fetched = patchbay
        .api("GET", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert!(
        !fetched.text.contains(&secret),
        "the secret is shown only once"
    );
    assert_eq!(
        field(
            &fetched.json()["connection"]["webhook"]["setup"],
            "HMAC Signature > Secret"
        ),
        &Value::Null
    );

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
        assert!(answer.json().get("data").is_some(), "{operation}");
    }
    let page = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/search_dashboards"),
            &alice,
            Some(json!({"limit": 20})),
        )
        .await
        .json();
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/search_dashboards"),
            &alice,
            Some(json!({"limit": 20, "cursor": cursor})),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json()["data"]["dashboards"][0]["uid"], "dash-21");

    // Webhooks: POST and PUT, signed over `timestamp:body`.
    let signed = |body: &Value, key: &str| {
        let body = body.to_string();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let signature = sign(key.as_bytes(), Some(&timestamp), body.as_bytes());
        (body, timestamp, signature)
    };
    let send = |method: &'static str,
                path: &'static str,
                body: String,
                timestamp: String,
                signature: String| {
        let patchbay = &patchbay;
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-grafana-alerting-timestamp", timestamp.as_str()),
                (SIGNATURE_HEADER, signature.as_str()),
            ];
            patchbay
                .request(method, path, &headers, Some(body.into_bytes()))
                .await
        }
    };
    let firing = sample_payload("c6eadffa33fcdf37", "firing", "2026-12-01T10:00:00Z");
    let (body, ts, signature) = signed(&firing, &secret);
    let accepted = send("POST", webhook_path, body, ts, signature).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.json(), json!({"accepted": 1, "duplicates": 0}));
    // Grafana re-sends on its repeat interval, here by PUT: stored once.
    let (body, ts, signature) = signed(&firing, &secret);
    let repeat = send("PUT", webhook_path, body, ts, signature).await;
    assert_eq!(repeat.status, 202, "{}", repeat.text);
    assert_eq!(repeat.json(), json!({"accepted": 0, "duplicates": 1}));
    let resolved = sample_payload("c6eadffa33fcdf37", "resolved", "2026-12-01T10:00:00Z");
    let (body, ts, signature) = signed(&resolved, &secret);
    let put = send("PUT", webhook_path, body, ts, signature).await;
    assert_eq!(put.status, 202, "{}", put.text);
    assert_eq!(put.json()["accepted"], 1);
    // A test delivery is answered and not stored.
    let (body, ts, signature) = signed(&test_payload(), &secret);
    let test = send("POST", webhook_path, body, ts, signature).await;
    assert_eq!(test.status, 200, "{}", test.text);
    assert_eq!(test.json()["test"], true);

    // Refusals all look alike.
    let (body, ts, _) = signed(&firing, &secret);
    let forged = sign(b"not-the-secret", Some(&ts), body.as_bytes());
    let forged = send("POST", webhook_path, body.clone(), ts.clone(), forged).await;
    assert_eq!(forged.status, 401);
    let (_, ts, signature) = signed(&firing, &secret);
    let altered = send(
        "PUT",
        webhook_path,
        body.replace("warning", "critical"),
        ts,
        signature,
    )
    .await;
    assert_eq!(altered.status, 401);
    let stale_ts = "1700000000".to_owned();
    let stale_sig = sign(secret.as_bytes(), Some(&stale_ts), body.as_bytes());
    let stale = send("POST", webhook_path, body.clone(), stale_ts, stale_sig).await;
    assert_eq!(stale.status, 401);
    let (body, ts, signature) = signed(&firing, &secret);
    let unknown = send(
        "POST",
        "/grafana/alerts/webhook/nobody",
        body,
        ts,
        signature,
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.json(),
        forged.json(),
        "an unknown user looks like a bad signature"
    );
    assert_eq!(altered.json(), forged.json());
    assert_eq!(stale.json(), forged.json());

    let alerts = patchbay
        .api("GET", "/api/alerts?limit=10", &alice, None)
        .await
        .json();
    let stored = alerts["alerts"].as_array().unwrap();
    assert_eq!(
        stored.len(),
        2,
        "firing and resolved, the re-send once: {alerts}"
    );
    assert_eq!(stored[0]["source"], "grafana");
    assert_eq!(stored[0]["status"], "firing");
    assert_eq!(stored[0]["severity"], "medium");
    assert_eq!(stored[1]["status"], "resolved");
    assert_eq!(stored[0]["external_id"], "c6eadffa33fcdf37");
    assert_eq!(stored[0]["external_id"], stored[1]["external_id"]);

    // A bearer-authenticated connection for another tenant.
    let mut fields = fake.form(CANARY_TOKEN);
    fields["webhook_auth"] = json!("bearer");
    let bearer = patchbay
        .api(
            "POST",
            "/api/connections",
            &carol,
            Some(json!({"connector": "grafana", "fields": fields})),
        )
        .await;
    assert_eq!(bearer.status, 201, "{}", bearer.text);
    let bearer = bearer.json();
    let bearer_id = bearer["connection"]["id"].as_str().unwrap().to_owned();
    let bearer_secret = bearer["webhook"]["secret"].as_str().unwrap().to_owned();
    let setup = &bearer["webhook"]["setup"];
    assert_eq!(field(setup, "Scheme"), "Bearer");
    assert_eq!(field(setup, "Credentials"), bearer_secret.as_str());
    let authorization = format!("Bearer {bearer_secret}");
    let body = firing.to_string().into_bytes();
    for method in ["PUT", "POST"] {
        let answer = patchbay
            .request(
                method,
                "/grafana/alerts/webhook/carol",
                &[
                    ("content-type", "application/json"),
                    ("authorization", authorization.as_str()),
                ],
                Some(body.clone()),
            )
            .await;
        assert_eq!(answer.status, 202, "{method}: {}", answer.text);
    }
    let wrong = patchbay
        .request(
            "POST",
            "/grafana/alerts/webhook/carol",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer nope"),
            ],
            Some(body.clone()),
        )
        .await;
    assert_eq!(wrong.status, 401);
    // Alice's secret does not work on carol's route.
    let alice_auth = format!("Bearer {secret}");
    let crossed = patchbay
        .request(
            "POST",
            "/grafana/alerts/webhook/carol",
            &[
                ("content-type", "application/json"),
                ("authorization", alice_auth.as_str()),
            ],
            Some(body),
        )
        .await;
    assert_eq!(crossed.status, 401);
    let carol_alerts = patchbay
        .api("GET", "/api/alerts", &carol, None)
        .await
        .json();
    assert_eq!(carol_alerts["alerts"].as_array().unwrap().len(), 1);

    // Disconnect both; the secrets go with them.
    for (id, key) in [(&id, &alice), (&bearer_id, &carol)] {
        let deleted = patchbay
            .api("DELETE", &format!("/api/connections/{id}"), key, None)
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
    }
    let secrets_after: Value =
        serde_json::from_slice(&std::fs::read(patchbay.data_dir().join("secrets.json")).unwrap())
            .unwrap();
    assert_eq!(secrets_after, json!({}));
    let (body, ts, signature) = signed(&firing, &secret);
    let after = send("POST", webhook_path, body, ts, signature).await;
    assert_eq!(
        after.status, 401,
        "a disconnected connection takes no deliveries"
    );

    // Canary scan.
    patchbay.assert_nowhere(&[CANARY_TOKEN]);
    patchbay.assert_not_logged_or_stored(&[&secret, &bearer_secret]);
    // The fake saw the token only as a bearer credential, never in a URL.
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.query.iter().all(|(_, value)| value != CANARY_TOKEN)));
}
