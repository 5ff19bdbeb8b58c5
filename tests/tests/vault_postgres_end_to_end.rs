//! Vault-backed secrets and Postgres-backed records, end to end through two replicas
//! of the real binary, plus fault tests: Vault paused or unreachable, Postgres cut.

use std::time::{Duration, Instant};

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_e2e::openbao::{self, vault_call, OpenBao};
use patchbay_e2e::postgres::TestDatabase;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fault_proxy::FaultProxy;
use patchbay_testkit::services;
use serde_json::{json, Value};

const CANARY_API_KEY: &str = "canary-vault-api-91c0ffee42";
const CANARY_APP_KEY: &str = "canary-vault-app-5eed5eed77";
const INTERNAL_SECRET: &str = "internal-secret-for-e2e-0123456789";

fn connect_body() -> Value {
    json!({
        "connector": "datadog",
        "label": "prod",
        "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY }
    })
}

fn vault_env<'a>(addr: &'a str, token: &'a str, base: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("PATCHBAY_SECRETS", "vault"),
        ("VAULT_ADDR", addr),
        ("VAULT_TOKEN", token),
        ("VAULT_KV_MOUNT", "patchbay"),
        ("VAULT_KV_BASE_PATH", base),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_needs_postgres_two_replicas_share_vault_secrets_and_postgres_records() {
    let services::Vault {
        addr: vault_addr,
        token: vault_token,
    } = services::vault();
    let server = services::postgres_url();
    let database = TestDatabase::create(&server).await;
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let base = format!("e2e-{}", openbao::uuid_like());
    let mut env = vault_env(&vault_addr, &vault_token, &base);
    env.push(("DATABASE_URL", database.url.as_str()));
    env.push(("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()));

    let replica_a = Patchbay::start(&env).await;
    let replica_b = Patchbay::start(&env).await;
    let key = replica_a.create_api_key("alice", Some("acme"));
    let other = replica_b.create_api_key("mallory", Some("evil-corp"));

    let connected = replica_a
        .api("POST", "/api/connections", &key, Some(connect_body()))
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let token = connected["webhook"]["token"].as_str().unwrap().to_owned();

    // The secret is at the documented path; Postgres holds only the reference.
    let path = format!("{base}/orgs/acme/datadog/{id}");
    let client = reqwest::Client::new();
    let (status, secret) = vault_call(
        &client,
        &vault_addr,
        &vault_token,
        "GET",
        &format!("patchbay/data/{path}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{secret}");
    let stored = secret["data"]["data"].to_string();
    assert!(stored.contains(CANARY_API_KEY) && stored.contains(CANARY_APP_KEY));
    let reference = database
        .text("SELECT secret_ref FROM connections WHERE id = $1", &id)
        .await;
    assert_eq!(
        reference.as_deref(),
        Some(format!("vault:patchbay/{path}").as_str())
    );

    // A connection made through one replica is usable through the other.
    for (operation, params) in [
        ("list_monitors", json!({})),
        ("search_logs", json!({ "limit": 5 })),
    ] {
        let answer = replica_b
            .api(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                &key,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
    }
    let fetched = replica_b
        .api("GET", &format!("/api/connections/{id}"), &other, None)
        .await;
    assert_eq!(fetched.status, 404, "another tenant sees nothing");

    // Alerts delivered to either replica are read once, in order, from either.
    let mut deliveries = Vec::new();
    for alert_id in 0..40u64 {
        let replica = if alert_id % 2 == 0 {
            &replica_a
        } else {
            &replica_b
        };
        let body =
            serde_json::to_vec(&fake.sample_webhook(10_000 + alert_id, "Triggered")).unwrap();
        let token = token.clone();
        deliveries.push(async move {
            replica
                .request(
                    "POST",
                    "/datadog/webhook/alice",
                    &[
                        ("content-type", "application/json"),
                        ("x-patchbay-token", &token),
                    ],
                    Some(body),
                )
                .await
        });
    }
    for answer in futures::future::join_all(deliveries).await {
        assert_eq!(answer.status, 202, "{}", answer.text);
    }
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(after) => format!("/api/alerts?limit=7&after={after}"),
            None => "/api/alerts?limit=7".to_owned(),
        };
        let replica = if seen.len() % 2 == 0 {
            &replica_b
        } else {
            &replica_a
        };
        let page = replica.api("GET", &path, &key, None).await.json();
        let alerts = page["alerts"].as_array().unwrap().clone();
        if alerts.is_empty() {
            break;
        }
        for alert in &alerts {
            seen.push((
                alert["cursor"].as_i64().unwrap(),
                alert["external_id"].as_str().unwrap().to_owned(),
            ));
        }
        after = page["next_cursor"].as_i64();
    }
    assert_eq!(seen.len(), 40, "every alert read exactly once: {seen:?}");
    assert!(
        seen.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "in order"
    );
    let mut external: Vec<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    external.sort();
    external.dedup();
    assert_eq!(external.len(), 40);

    // Disconnect through the other replica removes the secret (all versions) and the record.
    let deleted = replica_b
        .api("DELETE", &format!("/api/connections/{id}"), &key, None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let (status, _) = vault_call(
        &client,
        &vault_addr,
        &vault_token,
        "GET",
        &format!("patchbay/metadata/{path}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "the secret's metadata is gone");
    assert_eq!(
        database
            .text("SELECT id FROM connections WHERE id = $1", &id)
            .await,
        None
    );

    // Canary scan: both replicas' logs, every response, every Postgres row.
    let dump = database.dump().await;
    for canary in [CANARY_API_KEY, CANARY_APP_KEY] {
        for replica in [&replica_a, &replica_b] {
            let transcript = replica.transcript();
            assert!(
                !transcript.contains(canary),
                "{canary} leaked into a response"
            );
        }
    }
    // The webhook token is shown once, in the connect answer, and stored nowhere.
    for canary in [CANARY_API_KEY, CANARY_APP_KEY, token.as_str()] {
        for replica in [&replica_a, &replica_b] {
            assert!(
                !replica.logs().contains(canary),
                "{canary} leaked into logs"
            );
        }
        assert!(!dump.contains(canary), "{canary} found in Postgres");
    }
    assert!(!dump.contains(&key), "an API key is stored in clear");
}

/// Secret paths under a base, listed through the KV v2 metadata API (recursive).
async fn list_secrets(bao: &OpenBao, base: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![base.to_owned()];
    while let Some(prefix) = stack.pop() {
        let (status, body) = bao
            .call("LIST", &format!("patchbay/metadata/{prefix}"), None)
            .await;
        if status == 404 {
            continue;
        }
        for key in body["data"]["keys"].as_array().cloned().unwrap_or_default() {
            let key = key.as_str().unwrap();
            if let Some(folder) = key.strip_suffix('/') {
                stack.push(format!("{prefix}/{folder}"));
            } else {
                found.push(format!("{prefix}/{key}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_outage_answers_503_quickly_leaves_nothing_half_written_and_recovers() {
    let bao_binary = services::openbao_binary();
    let bao = OpenBao::start(&bao_binary, "patchbay").await;
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    // Patchbay reaches Vault through a proxy, so the test can also refuse connections.
    let vault_address: std::net::SocketAddr =
        bao.addr.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(vault_address).await.unwrap();
    let proxied = format!("http://{}", proxy.address());
    let mut env = vault_env(&proxied, &bao.token, "tenants");
    env.push(("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()));
    // Every query resolves its secret from Vault, so the outage is felt at once
    // (with the cache, queries keep working for up to its TTL).
    env.push(("PATCHBAY_VAULT_CACHE_TTL_SECS", "0"));
    env.push(("INTERNAL_API_SECRET", INTERNAL_SECRET));
    let patchbay = Patchbay::start(&env).await;
    let alice = [
        ("x-user-id", "alice"),
        ("x-internal-secret", INTERNAL_SECRET),
        ("content-type", "application/json"),
    ];
    let body = || Some(serde_json::to_vec(&connect_body()).unwrap());

    let connected = patchbay
        .request("POST", "/api/connections", &alice, body())
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let webhook_token = connected["webhook"]["token"].as_str().unwrap().to_owned();
    let query_path = format!("/api/connections/{id}/query/list_hosts");

    for (outage, start, end) in [
        (
            "paused",
            Box::new(|| bao.pause()) as Box<dyn Fn()>,
            Box::new(|| bao.resume()) as Box<dyn Fn()>,
        ),
        (
            "refusing connections",
            Box::new(|| proxy.cut()),
            Box::new(|| proxy.restore()),
        ),
    ] {
        start();
        let began = Instant::now();
        let query = patchbay
            .request("POST", &query_path, &alice, Some(b"{}".to_vec()))
            .await;
        let waited = began.elapsed();
        assert_eq!(query.status, 503, "{outage}: {}", query.text);
        assert!(
            waited < Duration::from_secs(5),
            "{outage}: answered after {waited:?}"
        );
        let error = query.json();
        assert_eq!(error["error"]["kind"], "unavailable", "{outage}");
        assert_eq!(
            error["error"]["message"], "credential store unavailable",
            "{outage}"
        );
        assert!(error["error"]["hint"].is_string(), "{outage}: {error}");

        let began = Instant::now();
        let connect = patchbay
            .request("POST", "/api/connections", &alice, body())
            .await;
        assert_eq!(connect.status, 503, "{outage}: {}", connect.text);
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{outage}: connect took {:?}",
            began.elapsed()
        );

        // Intake does not read Vault: the replica stays ready and stores alerts.
        let began = Instant::now();
        let ready = patchbay.request("GET", "/readyz", &[], None).await;
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{outage}: /readyz took {:?}",
            began.elapsed()
        );
        assert_eq!(ready.status, 200, "{outage}: {}", ready.text);
        let ready = ready.json();
        assert_eq!(ready["status"], "degraded", "{outage}: {ready}");
        assert_eq!(ready["secrets"]["status"], "unavailable", "{outage}");
        assert_eq!(ready["serving"]["webhooks"], true, "{outage}");
        assert_eq!(ready["serving"]["queries"], false, "{outage}");
        let alert_id = if outage == "paused" { 7_001 } else { 7_002 };
        let delivered = patchbay
            .request(
                "POST",
                "/datadog/webhook/alice",
                &[
                    ("content-type", "application/json"),
                    ("x-patchbay-token", &webhook_token),
                ],
                Some(serde_json::to_vec(&fake.sample_webhook(alert_id, "Triggered")).unwrap()),
            )
            .await;
        assert_eq!(delivered.status, 202, "{outage}: {}", delivered.text);
        end();

        // Recovery without restarting Patchbay.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let query = patchbay
                .request("POST", &query_path, &alice, Some(b"{}".to_vec()))
                .await;
            if query.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{outage}: no recovery: {}",
                query.text
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let listed = patchbay
            .request("GET", "/api/connections", &alice, None)
            .await
            .json();
        assert_eq!(
            listed["connections"].as_array().unwrap().len(),
            1,
            "{outage}: no orphan record"
        );
        // A write that timed out may land when Vault resumes; Patchbay removes it.
        let expected = vec![format!("tenants/users/alice/datadog/{id}")];
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let secrets = list_secrets(&bao, "tenants").await;
            if secrets == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{outage}: orphan secrets remain: {secrets:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let ready = patchbay.request("GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ok");
    let stored = patchbay
        .request("GET", "/api/alerts", &alice, None)
        .await
        .json();
    assert_eq!(
        stored["alerts"].as_array().unwrap().len(),
        2,
        "the deliveries made during both outages were stored: {stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_needs_postgres_outage_answers_503_deletes_the_fresh_secret_and_recovers() {
    let (patchbay, proxy, bao, _database, _fake) = replica_behind_a_database_proxy().await;
    let alice = [
        ("x-user-id", "alice"),
        ("x-internal-secret", INTERNAL_SECRET),
        ("content-type", "application/json"),
    ];
    let body = Some(serde_json::to_vec(&connect_body()).unwrap());

    proxy.cut();
    let began = Instant::now();
    let listed = patchbay
        .request("GET", "/api/connections", &alice, None)
        .await;
    assert_eq!(listed.status, 503, "{}", listed.text);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "took {:?}",
        began.elapsed()
    );
    assert_eq!(
        listed.json()["error"]["message"],
        "records database unavailable"
    );
    let connect = patchbay
        .request("POST", "/api/connections", &alice, body.clone())
        .await;
    assert_eq!(connect.status, 503, "{}", connect.text);
    assert_eq!(
        list_secrets(&bao, "tenants").await,
        Vec::<String>::new(),
        "the secret written before the record failed is deleted again"
    );
    assert_eq!(
        patchbay.request("GET", "/readyz", &[], None).await.status,
        503
    );
    proxy.restore();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let connect = patchbay
            .request("POST", "/api/connections", &alice, body.clone())
            .await;
        if connect.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", connect.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = patchbay
        .request("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1);
    assert_eq!(list_secrets(&bao, "tenants").await.len(), 1);
}

/// A replica on Vault and on a fresh PostgreSQL database reached through a
/// [`FaultProxy`], with Datadog's fake; everything it needs is returned to be kept.
async fn replica_behind_a_database_proxy(
) -> (Patchbay, FaultProxy, OpenBao, TestDatabase, FakeDatadog) {
    let bao_binary = services::openbao_binary();
    let server = services::postgres_url();
    let database = TestDatabase::create(&server).await;
    let bao = OpenBao::start(&bao_binary, "patchbay").await;
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let pg_address: std::net::SocketAddr = {
        let rest = database.url.split('@').nth(1).unwrap();
        let host_port = rest.split('/').next().unwrap();
        tokio::net::lookup_host(host_port)
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = FaultProxy::start(pg_address).await.unwrap();
    let mut proxied_url = database
        .url
        .replace(&pg_address.to_string(), &proxy.address().to_string())
        .replace("localhost:5432", &proxy.address().to_string());
    assert_ne!(
        proxied_url, database.url,
        "the database URL goes through the proxy"
    );
    // In clear, so the proxy can see which message a client sends.
    proxied_url.push_str(if proxied_url.contains('?') { "&" } else { "?" });
    proxied_url.push_str("sslmode=disable");
    let mut env = vault_env(&bao.addr, &bao.token, "tenants");
    env.push(("DATABASE_URL", proxied_url.as_str()));
    env.push(("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()));
    env.push(("INTERNAL_API_SECRET", INTERNAL_SECRET));
    let patchbay = Patchbay::start(&env).await;
    (patchbay, proxy, bao, database, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_needs_postgres_a_connect_whose_commit_answer_is_lost_keeps_its_secret() {
    let (patchbay, proxy, bao, _database, _fake) = replica_behind_a_database_proxy().await;
    let alice = [
        ("x-user-id", "alice"),
        ("x-internal-secret", INTERNAL_SECRET),
        ("content-type", "application/json"),
    ];
    let body = Some(serde_json::to_vec(&connect_body()).unwrap());

    // The database commits the connection's record, but the answer never arrives.
    proxy.lose_answer_to(b"COMMIT");
    let connect = patchbay
        .request("POST", "/api/connections", &alice, body)
        .await;
    assert!(
        proxy.answer_lost(),
        "the connect committed through the proxy"
    );
    assert_eq!(connect.status, 503, "{}", connect.text);

    // The record landed: its secret must stay, and the connection must work.
    let deadline = Instant::now() + Duration::from_secs(15);
    let listed = loop {
        let listed = patchbay
            .request("GET", "/api/connections", &alice, None)
            .await;
        if listed.status == 200 {
            break listed.json();
        }
        assert!(Instant::now() < deadline, "no recovery: {}", listed.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let connections = listed["connections"].as_array().unwrap();
    assert_eq!(
        connections.len(),
        1,
        "the committed record is listed: {listed}"
    );
    let id = connections[0]["id"].as_str().unwrap();
    // Past the background check (it looks once the records answer, within a second or two).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        list_secrets(&bao, "tenants").await.len(),
        1,
        "the committed connection keeps its secret"
    );
    let validated = patchbay
        .request(
            "POST",
            &format!("/api/connections/{id}/validate"),
            &alice,
            None,
        )
        .await;
    assert_eq!(validated.status, 200, "{}", validated.text);
}
