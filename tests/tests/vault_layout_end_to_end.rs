//! Start-up moves Vault secrets written in the layout that filed organisations and users
//! in one folder (`<base>/<tenant id>/…`) to `<base>/orgs/…` and `<base>/users/…`.

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_e2e::openbao::{self, vault_call};
use patchbay_e2e::postgres::TestDatabase;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::services;
use serde_json::json;

const CANARY_API_KEY: &str = "canary-layout-api-0a1b2c3d";
const CANARY_APP_KEY: &str = "canary-layout-app-4e5f6a7b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_needs_postgres_a_secret_in_the_old_layout_moves_at_start_and_keeps_working() {
    let services::Vault {
        addr: vault_addr,
        token: vault_token,
    } = services::vault();
    let server = services::postgres_url();
    let database = TestDatabase::create(&server).await;
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let base = format!("layout-{}", openbao::uuid_like());
    let env = [
        ("PATCHBAY_SECRETS", "vault"),
        ("VAULT_ADDR", vault_addr.as_str()),
        ("VAULT_TOKEN", vault_token.as_str()),
        ("VAULT_KV_MOUNT", "patchbay"),
        ("VAULT_KV_BASE_PATH", base.as_str()),
        ("DATABASE_URL", database.url.as_str()),
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
    ];

    let mut first = Patchbay::start(&env).await;
    let key = first.create_api_key("alice", Some("acme"));
    let connected = first
        .api(
            "POST",
            "/api/connections",
            &key,
            Some(json!({
                "connector": "datadog",
                "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY }
            })),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let id = connected.json()["connection"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    first.stop();

    // Put the secret back where an earlier Patchbay kept it.
    let client = reqwest::Client::new();
    let call = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let (client, addr, token) = (&client, &vault_addr, &vault_token);
        async move { vault_call(client, addr, token, method, &path, body).await }
    };
    let current = format!("{base}/orgs/acme/datadog/{id}");
    let legacy = format!("{base}/acme/datadog/{id}");
    let (status, stored) = call("GET", format!("patchbay/data/{current}"), None).await;
    assert_eq!(status, 200, "{stored}");
    let (status, _) = call(
        "POST",
        format!("patchbay/data/{legacy}"),
        Some(json!({ "data": stored["data"]["data"] })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call("DELETE", format!("patchbay/metadata/{current}"), None).await;
    assert_eq!(status, 204);
    let legacy_ref = format!("vault:patchbay/{legacy}");
    assert_eq!(
        database
            .text(
                &format!(
                    "UPDATE connections SET secret_ref = '{legacy_ref}' WHERE id = $1 \
                     RETURNING secret_ref"
                ),
                &id,
            )
            .await
            .as_deref(),
        Some(legacy_ref.as_str())
    );

    let second = Patchbay::start(&env).await;
    let validated = second
        .api(
            "POST",
            &format!("/api/connections/{id}/validate"),
            &key,
            None,
        )
        .await;
    assert_eq!(validated.status, 200, "{}", validated.text);
    assert_eq!(
        database
            .text("SELECT secret_ref FROM connections WHERE id = $1", &id)
            .await,
        Some(format!("vault:patchbay/{current}"))
    );
    let (status, moved) = call("GET", format!("patchbay/data/{current}"), None).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["data"]["data"], stored["data"]["data"]);
    let (status, _) = call("GET", format!("patchbay/metadata/{legacy}"), None).await;
    assert_eq!(status, 404, "the old copy is deleted");
    let logs = second.logs();
    assert!(
        logs.contains("moved Vault secrets to the orgs/ and users/ layout"),
        "{logs}"
    );
    assert!(!logs.contains(CANARY_API_KEY) && !logs.contains(CANARY_APP_KEY));
}
