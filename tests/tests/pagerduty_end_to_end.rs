//! PagerDuty end to end through the real binary: token connect (bad, then good),
//! every operation, signed webhooks with provider-issued secrets added and removed
//! through the API, the OAuth flow through the fake (flag on) with a rotating
//! refresh token, the flag-off answers, disconnect, and a canary scan of logs,
//! responses and the data directory.

use patchbay_connector_pagerduty::fake::{
    self as fake_pagerduty, sample_payload, FakePagerduty, INCIDENT_ID, SERVICE_ID,
};
use patchbay_connector_pagerduty::webhook::sign;
use patchbay_e2e::{Answer, Patchbay};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const CANARY_TOKEN: &str = "canary-pd-token-5f2e8a91c3";
const CANARY_SECRET_OLD: &str = "canary-pd-whsec-old-0b7d44";
const CANARY_SECRET_NEW: &str = "canary-pd-whsec-new-e19c2f";
const OAUTH_FLAG: &str = "NEXT_PUBLIC_ENABLE_PAGERDUTY_OAUTH";

fn operations() -> Vec<(&'static str, Value)> {
    vec![
        (
            "list_incidents",
            json!({"statuses": ["triggered"], "limit": 5}),
        ),
        ("get_incident", json!({"incident_id": INCIDENT_ID})),
        ("list_incident_alerts", json!({"incident_id": INCIDENT_ID})),
        (
            "list_incident_log_entries",
            json!({"incident_id": INCIDENT_ID}),
        ),
        ("list_incident_notes", json!({"incident_id": INCIDENT_ID})),
        (
            "list_related_change_events",
            json!({"incident_id": INCIDENT_ID}),
        ),
        ("list_services", json!({})),
        ("get_service", json!({"service_id": SERVICE_ID})),
        ("list_oncalls", json!({})),
        ("list_change_events", json!({})),
        ("list_schedules", json!({})),
        ("list_escalation_policies", json!({})),
    ]
}

async fn deliver(
    patchbay: &Patchbay,
    user: &str,
    body: &str,
    signature: Option<&str>,
    webhook_id: &str,
) -> Answer {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("x-webhook-id", webhook_id),
    ];
    if let Some(signature) = signature {
        headers.push(("x-pagerduty-signature", signature));
    }
    patchbay
        .request(
            "POST",
            &format!("/pagerduty/webhook/{user}"),
            &headers,
            Some(body.as_bytes().to_vec()),
        )
        .await
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
async fn pagerduty_token_oauth_webhooks_and_disconnect_without_leaking_secrets() {
    let fake = FakePagerduty::start(CANARY_TOKEN).await;
    let overrides = fake.upstream_overrides();
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        (OAUTH_FLAG, "true"),
        ("PAGERDUTY_CLIENT_ID", fake_pagerduty::CLIENT_ID),
        ("PAGERDUTY_CLIENT_SECRET", fake_pagerduty::CLIENT_SECRET),
    ])
    .await;
    let alice = patchbay.create_api_key("alice", Some("acme"));

    // A wrong token: 422 with the report, nothing stored.
    let bad = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "pagerduty", "fields": {"api_token": "wrong-token-0000"}})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let bad = bad.json();
    assert_eq!(check(&bad["report"], "credentials")["outcome"], "failed");
    assert!(check(&bad["report"], "credentials")["detail"]
        .as_str()
        .unwrap()
        .contains("Invalid or expired API token"));
    let missing = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "pagerduty", "fields": {}})),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"]["message"], "Token required");
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(listed["connections"], json!([]));

    // The good token, with the subscription's signing secret.
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "pagerduty", "label": "on-call", "fields": {
                "api_token": CANARY_TOKEN, "display_name": "Prod", "webhook_secret": CANARY_SECRET_OLD
            }})),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    assert_eq!(connected["report"]["overall"], "ok", "{connected}");
    assert_eq!(
        connected["connection"]["metadata"]["account_subdomain"],
        "acme"
    );
    assert_eq!(
        connected["webhook"]["url"],
        format!("{}/pagerduty/webhook/alice", patchbay.base_url)
    );
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let secrets_path = format!("/api/connections/{id}/webhook/secrets");

    // Every operation runs against the fake.
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
    let page = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_incidents"),
            &alice,
            Some(json!({"limit": 5})),
        )
        .await
        .json();
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_incidents"),
            &alice,
            Some(json!({"limit": 5, "cursor": cursor})),
        )
        .await;
    assert_eq!(next.status, 200, "{}", next.text);
    assert_eq!(
        fake.requests_to("/incidents")
            .last()
            .unwrap()
            .query_value("offset"),
        Some("5")
    );

    // Webhooks: signed with the first secret.
    let triggered = sample_payload("evt-1", "incident.triggered", INCIDENT_ID).to_string();
    let old_signature = sign(CANARY_SECRET_OLD, triggered.as_bytes());
    let accepted = deliver(&patchbay, "alice", &triggered, Some(&old_signature), "wh-1").await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.json()["accepted"], 1);
    let again = deliver(&patchbay, "alice", &triggered, Some(&old_signature), "wh-1").await;
    assert_eq!(
        again.json()["duplicates"],
        1,
        "a retry with the same X-Webhook-Id is stored once"
    );
    let forged = deliver(
        &patchbay,
        "alice",
        &triggered,
        Some(&sign("guess", triggered.as_bytes())),
        "wh-2",
    )
    .await;
    assert_eq!(forged.status, 401);
    let unsigned = deliver(&patchbay, "alice", &triggered, None, "wh-2").await;
    assert_eq!(unsigned.status, 401);
    let stranger = deliver(
        &patchbay,
        "nobody",
        &triggered,
        Some(&old_signature),
        "wh-2",
    )
    .await;
    assert_eq!(stranger.status, 401);
    assert_eq!(
        stranger.json(),
        forged.json(),
        "an unknown user and a bad signature look the same"
    );
    let service = json!({"event": {"id": "evt-s", "event_type": "service.updated", "resource_type": "service", "data": {"id": SERVICE_ID, "type": "service"}}}).to_string();
    let dropped = deliver(
        &patchbay,
        "alice",
        &service,
        Some(&sign(CANARY_SECRET_OLD, service.as_bytes())),
        "wh-3",
    )
    .await;
    assert_eq!(dropped.status, 202, "{}", dropped.text);
    assert_eq!(
        dropped.json()["accepted"],
        0,
        "non-incident events are acknowledged and dropped"
    );

    // Rotation: add the new secret, PagerDuty signs with both, then remove the old one.
    let rotate = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/webhook/rotate"),
            &alice,
            None,
        )
        .await;
    assert_eq!(
        rotate.status, 501,
        "Patchbay cannot mint PagerDuty's secret: {}",
        rotate.text
    );
    let added = patchbay
        .api(
            "POST",
            &secrets_path,
            &alice,
            Some(json!({"secret": CANARY_SECRET_NEW})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let new_id = added.json()["webhook_secret"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = patchbay
        .api("GET", &secrets_path, &alice, None)
        .await
        .json();
    let ids: Vec<String> = listed["webhook_secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|secret| secret["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    let old_id = ids.iter().find(|id| **id != new_id).unwrap().clone();
    let resolved = sample_payload("evt-2", "incident.resolved", INCIDENT_ID).to_string();
    let both = format!(
        "{},{}",
        sign(CANARY_SECRET_OLD, resolved.as_bytes()),
        sign(CANARY_SECRET_NEW, resolved.as_bytes())
    );
    let during = deliver(&patchbay, "alice", &resolved, Some(&both), "wh-4").await;
    assert_eq!(during.status, 202, "{}", during.text);
    let removed = patchbay
        .api("DELETE", &format!("{secrets_path}/{old_id}"), &alice, None)
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    let old_only = deliver(
        &patchbay,
        "alice",
        &resolved,
        Some(&sign(CANARY_SECRET_OLD, resolved.as_bytes())),
        "wh-5",
    )
    .await;
    assert_eq!(
        old_only.status, 401,
        "the removed secret no longer verifies"
    );
    let new_only = deliver(
        &patchbay,
        "alice",
        &resolved,
        Some(&sign(CANARY_SECRET_NEW, resolved.as_bytes())),
        "wh-6",
    )
    .await;
    assert_eq!(new_only.status, 202);

    let alerts = patchbay
        .api("GET", "/api/alerts?limit=10", &alice, None)
        .await
        .json();
    let stored = alerts["alerts"].as_array().unwrap();
    assert_eq!(stored.len(), 3, "{alerts}");
    assert_eq!(stored[0]["source"], "pagerduty");
    assert_eq!(stored[0]["status"], "firing");
    assert_eq!(stored[0]["severity"], "high");
    assert_eq!(stored[1]["status"], "resolved");
    assert_eq!(stored[0]["external_id"], stored[1]["external_id"]);

    // OAuth through the fake, in the EU region.
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/pagerduty/start",
            &alice,
            Some(json!({"label": "PagerDuty via OAuth", "options": {"region": "eu"}})),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    let (page, authorize_url) = patchbay
        .authorize_in_browser(
            &begin_url,
            "https://identity.pagerduty.com",
            &fake.base_url(),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        authorize_url.starts_with("https://identity.pagerduty.com/oauth/authorize?"),
        "{authorize_url}"
    );
    assert!(authorize_url.contains("incidents.read"), "{authorize_url}");
    let token_request = fake.requests_to("/oauth/token").pop().unwrap();
    let form_names: Vec<&str> = token_request
        .form
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    for name in [
        "grant_type",
        "client_id",
        "client_secret",
        "code",
        "code_verifier",
        "redirect_uri",
    ] {
        assert!(form_names.contains(&name), "{name} in {form_names:?}");
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
        .expect("the OAuth connection")
        .clone();
    assert_eq!(oauth_connection["metadata"]["api_region"], "eu");
    let oauth_id = oauth_connection["id"].as_str().unwrap().to_owned();
    fake.clear_requests();
    let answer = patchbay
        .api(
            "POST",
            &format!("/api/connections/{oauth_id}/query/list_services"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.region == "eu" && request.auth_scheme.as_deref() == Some("bearer")));
    // An expired access token is refreshed once, and the rotated refresh token is kept.
    for round in 0..2 {
        let before = fake.token_requests();
        fake.expire_access_tokens();
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{oauth_id}/query/list_oncalls"),
                &alice,
                Some(json!({})),
            )
            .await;
        assert_eq!(answer.status, 200, "refresh round {round}: {}", answer.text);
        assert_eq!(fake.token_requests(), before + 1, "round {round}");
    }

    // Disconnect both.
    for connection in [&id, &oauth_id] {
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
    let after = deliver(
        &patchbay,
        "alice",
        &resolved,
        Some(&sign(CANARY_SECRET_NEW, resolved.as_bytes())),
        "wh-7",
    )
    .await;
    assert_eq!(after.status, 401);

    // Canary scan.
    let issued: Vec<String> = (1..=6)
        .map(|n| format!("pdus+_1XFAKE_{n:08}"))
        .chain((1..=6).map(|n| format!("pdus+_0XFAKE_{n:08}")))
        .collect();
    let mut canaries = vec![
        CANARY_TOKEN.to_owned(),
        CANARY_SECRET_OLD.to_owned(),
        CANARY_SECRET_NEW.to_owned(),
        fake_pagerduty::CLIENT_SECRET.to_owned(),
    ];
    canaries.extend(issued);
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    patchbay.assert_nowhere(&canaries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_oauth_flag_off_oauth_answers_403_and_tokens_still_connect() {
    let fake = FakePagerduty::start(CANARY_TOKEN).await;
    let overrides = fake.upstream_overrides();
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("PAGERDUTY_CLIENT_ID", fake_pagerduty::CLIENT_ID),
        ("PAGERDUTY_CLIENT_SECRET", fake_pagerduty::CLIENT_SECRET),
    ])
    .await;
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/pagerduty/start",
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(started.status, 403, "{}", started.text);
    assert_eq!(
        started.json()["error"]["message"],
        "PagerDuty OAuth is not enabled"
    );
    assert!(
        started.text.contains(OAUTH_FLAG),
        "the hint names the flag: {}",
        started.text
    );
    let callback = patchbay
        .request(
            "GET",
            "/pagerduty/oauth/callback?code=pdcode1&state=forged-state",
            &[],
            None,
        )
        .await;
    assert_eq!(callback.status, 403, "{}", callback.text);
    assert!(
        callback.text.contains("PagerDuty OAuth is not enabled"),
        "{}",
        callback.text
    );
    let begin = patchbay
        .request("GET", "/oauth/begin/forged-state", &[], None)
        .await;
    assert!(begin.status >= 400, "{}", begin.text);
    assert!(fake.requests_to("/oauth/token").is_empty());

    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "pagerduty", "fields": {"api_token": CANARY_TOKEN}})),
        )
        .await;
    assert_eq!(
        connected.status, 201,
        "token mode works with the flag off: {}",
        connected.text
    );
    let catalogue = patchbay
        .api("GET", "/api/connectors", &alice, None)
        .await
        .json();
    let pagerduty = catalogue["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|connector| connector["id"] == "pagerduty")
        .unwrap()
        .clone();
    assert_eq!(pagerduty["enabled"], true);
    assert_eq!(
        pagerduty["oauth"]["callback_path"],
        "/pagerduty/oauth/callback"
    );
}
