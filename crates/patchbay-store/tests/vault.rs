//! `VaultSecretStore` against a real OpenBao through its HTTP API.
//!
//! `cargo xtask test` starts a shared dev server and exports
//! `PATCHBAY_TEST_VAULT_ADDR`, `PATCHBAY_TEST_VAULT_TOKEN` and `PATCHBAY_BAO_BIN`;
//! tests that stop the server or need short token TTLs start their own.
//! Each test works under its own base path or mount, so they run in parallel.

#[path = "vault_support/openbao.rs"]
mod openbao;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openbao::{Bao, PrivateBao, MOUNT};
use patchbay_core::{ErrorKind, RevealedJson, SecretString, Tenant};
use patchbay_store::vault::clock::ManualClock;
use patchbay_store::vault::{LayoutMigration, VaultAuth, UNAVAILABLE};
use patchbay_store::{
    modify, ConnectionRecord, ConnectionStatus, RecordStore, SecretLocation, SecretRef,
    SecretStore, SecretTenant, SecretVersion, SqliteRecordStore, VaultConfig, VaultSecretStore,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn secret(value: Value) -> RevealedJson {
    RevealedJson::new(value)
}

/// The location of a secret of organisation `tenant`.
fn location(tenant: &str, connector: &str, connection_id: &str) -> SecretLocation {
    SecretLocation {
        tenant: SecretTenant::Org(tenant.into()),
        connector: connector.into(),
        connection_id: connection_id.into(),
    }
}

fn config(bao: &Bao, mount: &str, base_path: &str, cache_ttl: Duration) -> VaultConfig {
    VaultConfig {
        mount: mount.into(),
        base_path: base_path.into(),
        cache_ttl,
        ..VaultConfig::new(
            bao.addr.clone(),
            VaultAuth::Token(SecretString::from(bao.token.as_str())),
        )
    }
}

async fn store(bao: &Bao, base_path: &str, cache_ttl: Duration) -> VaultSecretStore {
    VaultSecretStore::connect(config(bao, MOUNT, base_path, cache_ttl))
        .await
        .unwrap()
}

#[tokio::test]
async fn needs_vault_round_trip_lives_at_the_documented_path() {
    let bao = Bao::shared();
    let base = unique("round-trip");
    let store = store(&bao, &base, Duration::ZERO).await;
    assert_eq!(store.backend(), "vault");
    store.health().await.unwrap();

    let first = secret(json!({ "api_key": "first-key", "app_key": "first-app" }));
    let reference = store
        .put(&location("org_1", "datadog", "conn-1"), &first)
        .await
        .unwrap();
    assert_eq!(
        reference.0,
        format!("vault:{MOUNT}/{base}/orgs/org_1/datadog/conn-1")
    );
    assert_eq!(store.get(&reference).await.unwrap(), first);

    let data_path = format!("{MOUNT}/data/{base}/orgs/org_1/datadog/conn-1");
    let raw = bao.ok(Method::GET, &data_path, None).await;
    assert_eq!(
        raw["data"]["data"],
        json!({ "schema_version": 1, "secrets": { "api_key": "first-key", "app_key": "first-app" } })
    );
    assert_eq!(raw["data"]["metadata"]["version"], 1);

    let second = secret(json!({ "api_key": "second-key" }));
    let (_, version) = store.get_versioned(&reference).await.unwrap();
    assert_eq!(version, SecretVersion(1));
    assert_eq!(
        store
            .update_if_version(&reference, version, &second)
            .await
            .unwrap(),
        SecretVersion(2)
    );
    assert_eq!(store.get(&reference).await.unwrap(), second);
    let (value, version) = store.get_versioned(&reference).await.unwrap();
    assert_eq!((value, version), (second.clone(), SecretVersion(2)));
    let raw = bao.ok(Method::GET, &data_path, None).await;
    assert_eq!(
        raw["data"]["data"]["secrets"],
        json!({ "api_key": "second-key" })
    );

    store.delete(&reference).await.unwrap();
    let metadata_path = format!("{MOUNT}/metadata/{base}/orgs/org_1/datadog/conn-1");
    let (status, _) = bao.request(Method::GET, &metadata_path, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "metadata and every version are gone"
    );
    let (status, _) = bao
        .request(Method::GET, &format!("{data_path}?version=1"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let error = store.get(&reference).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    store.delete(&reference).await.unwrap();

    // An update must not bring a deleted secret back.
    let error = store
        .update_if_version(&reference, SecretVersion(2), &first)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let error = modify(&store, &reference, |_| Ok(first.clone()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let (status, _) = bao.request(Method::GET, &metadata_path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // put never overwrites: the connection id is taken until deleted.
    store
        .put(&location("org_1", "datadog", "conn-2"), &first)
        .await
        .unwrap();
    let error = store
        .put(&location("org_1", "datadog", "conn-2"), &second)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert!(error.message().contains("already exists"), "{error}");
}

#[tokio::test]
async fn needs_vault_path_segments_cannot_escape_the_tenant_folder() {
    let bao = Bao::shared();
    let base = unique("escape");
    let store = store(&bao, &base, Duration::ZERO).await;

    let value = secret(json!({ "token": "t" }));
    let reference = store
        .put(&location("../../outside", "..", "a/../b"), &value)
        .await
        .unwrap();
    assert_eq!(
        reference.0,
        format!("vault:{MOUNT}/{base}/orgs/..%2F..%2Foutside/%2E%2E/a%2F..%2Fb")
    );
    assert_eq!(store.get(&reference).await.unwrap(), value);

    // Vault holds exactly one tenant folder, named literally, under the base path.
    let list = |path: String| {
        let bao = bao.clone();
        async move {
            bao.ok(Method::from_bytes(b"LIST").unwrap(), &path, None)
                .await
        }
    };
    let listing = list(format!("{MOUNT}/metadata/{base}")).await;
    assert_eq!(listing["data"]["keys"], json!(["orgs/"]));
    let listing = list(format!("{MOUNT}/metadata/{base}/orgs")).await;
    assert_eq!(listing["data"]["keys"], json!(["..%2F..%2Foutside/"]));
    let (status, _) = bao
        .request(Method::GET, &format!("{MOUNT}/metadata/outside"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for outside in [
        format!("vault:{MOUNT}/other/orgs/t/c/1"),
        format!("vault:{MOUNT}/{base}/orgs/../other/c/1"),
        format!("vault:{MOUNT}/{base}/orgs/t"),
        format!("vault:{MOUNT}/{base}/orgs/t/c/1/2"),
        format!("vault:{MOUNT}/{base}/teams/t/c/1"),
        format!("vault:{MOUNT}/{base}/t/../c/1"),
        format!("vault:secret/{base}/orgs/t/c/1"),
        format!("local:{}", uuid::Uuid::new_v4()),
    ] {
        let reference = SecretRef(outside.clone());
        for error in [
            store.get(&reference).await.unwrap_err(),
            store
                .update_if_version(&reference, SecretVersion(1), &value)
                .await
                .unwrap_err(),
            store.delete(&reference).await.unwrap_err(),
            store.get_versioned(&reference).await.unwrap_err(),
        ] {
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{outside}: {error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_check_and_set_lets_exactly_one_writer_win() {
    let bao = Bao::shared();
    let store = Arc::new(store(&bao, &unique("cas"), Duration::from_secs(30)).await);
    let reference = store
        .put(
            &location("t", "oauth", "c"),
            &secret(json!({ "refresh_token": "r0" })),
        )
        .await
        .unwrap();
    let (_, version) = store.get_versioned(&reference).await.unwrap();
    assert_eq!(version, SecretVersion(1));

    let writers: Vec<_> = ["r-a", "r-b"]
        .into_iter()
        .map(|token| {
            let store = Arc::clone(&store);
            let reference = reference.clone();
            tokio::spawn(async move {
                let value = secret(json!({ "refresh_token": token }));
                (
                    token,
                    store.update_if_version(&reference, version, &value).await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for writer in writers {
        let (token, outcome) = writer.await.unwrap();
        match outcome {
            Ok(new_version) => winners.push((token, new_version)),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Conflict, "{error:?}");
                assert_eq!(
                    error.message(),
                    format!("secret {reference} changed since version 1 was read")
                );
            }
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (winner, new_version) = winners[0];
    assert_eq!(new_version, SecretVersion(2));
    let (value, version) = store.get_versioned(&reference).await.unwrap();
    assert_eq!(
        (value, version),
        (secret(json!({ "refresh_token": winner })), SecretVersion(2))
    );
    assert_eq!(
        store.get(&reference).await.unwrap(),
        secret(json!({ "refresh_token": winner }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_concurrent_writers_lose_no_update() {
    let bao = Bao::shared();
    let base = unique("counter");
    let store = Arc::new(store(&bao, &base, Duration::from_secs(30)).await);
    let reference = store
        .put(
            &location("t", "c", "counter"),
            &secret(json!({ "counter": 0 })),
        )
        .await
        .unwrap();

    // `modify` from two tasks: both land as versions, in some order.
    for round in 0..5u64 {
        let tasks: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|writer| {
                let store = Arc::clone(&store);
                let reference = reference.clone();
                tokio::spawn(async move {
                    let value = secret(json!({ "counter": round * 10 + writer }));
                    modify(&*store, &reference, |_| Ok(value.clone()))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let latest = 1 + 2 * (round + 1);
        let path = format!("{MOUNT}/data/{base}/orgs/t/c/counter");
        let mut written = Vec::new();
        for version in [latest - 1, latest] {
            let raw = bao
                .ok(Method::GET, &format!("{path}?version={version}"), None)
                .await;
            written.push(raw["data"]["data"]["secrets"]["counter"].as_u64().unwrap());
        }
        written.sort_unstable();
        assert_eq!(written, [round * 10 + 1, round * 10 + 2], "round {round}");
        let (_, version) = store.get_versioned(&reference).await.unwrap();
        assert_eq!(version, SecretVersion(latest));
    }

    // Read-modify-write with check-and-set: every increment counts.
    let (_, start) = store.get_versioned(&reference).await.unwrap();
    store
        .update_if_version(&reference, start, &secret(json!({ "counter": 0 })))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            let reference = reference.clone();
            tokio::spawn(async move {
                loop {
                    let (value, version) = store.get_versioned(&reference).await.unwrap();
                    let counter = value.expose()["counter"].as_u64().unwrap();
                    let next = secret(json!({ "counter": counter + 1 }));
                    match store.update_if_version(&reference, version, &next).await {
                        Ok(_) => return,
                        Err(error) if error.kind() == ErrorKind::Conflict => continue,
                        Err(error) => panic!("{error:?}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        store.get(&reference).await.unwrap(),
        secret(json!({ "counter": 4 }))
    );
}

#[tokio::test]
async fn needs_vault_missing_or_kv_v1_mounts_are_refused_with_the_fix() {
    let bao = Bao::shared();
    let absent = unique("absent");
    let error = VaultSecretStore::connect(config(&bao, &absent, "tenants", Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error:?}");
    assert_eq!(error.field(), Some("VAULT_KV_MOUNT"));
    let hint = error.hint().unwrap();
    assert!(
        hint.contains(&format!("bao secrets enable -path={absent} kv-v2")),
        "{hint}"
    );
    let (status, _) = bao
        .request(Method::GET, &format!("sys/mounts/{absent}"), None)
        .await;
    assert_ne!(
        status,
        StatusCode::OK,
        "connect must never create the mount"
    );

    let version_one = unique("kv1");
    bao.enable_kv(&version_one, "1").await;
    let error = VaultSecretStore::connect(config(&bao, &version_one, "tenants", Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error:?}");
    assert_eq!(error.field(), Some("VAULT_KV_MOUNT"));
    assert!(error.message().contains("not KV version 2"), "{error}");

    // A mount removed while Patchbay runs is named as the cause, not reported as a missing secret.
    let vanishing = unique("vanishing");
    bao.enable_kv(&vanishing, "2").await;
    let store = VaultSecretStore::connect(config(&bao, &vanishing, "tenants", Duration::ZERO))
        .await
        .unwrap();
    let reference = store
        .put(&location("t", "c", "1"), &secret(json!({ "key": "v" })))
        .await
        .unwrap();
    bao.ok(Method::DELETE, &format!("sys/mounts/{vanishing}"), None)
        .await;
    let errors = [
        store.get(&reference).await.unwrap_err(),
        store
            .put(&location("t", "c", "2"), &secret(json!({ "key": "v" })))
            .await
            .unwrap_err(),
        store.delete(&reference).await.unwrap_err(),
    ];
    for error in errors {
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error:?}");
        assert_eq!(error.field(), Some("VAULT_KV_MOUNT"));
        assert!(
            error.hint().unwrap().contains("kv-v2"),
            "{:?}",
            error.hint()
        );
    }
}

#[tokio::test]
async fn needs_vault_a_rejected_token_fails_connect_without_printing_it() {
    let bao = Bao::shared();
    let canary = format!("canary-token-{}", uuid::Uuid::new_v4());
    let mut settings = config(&bao, MOUNT, "tenants", Duration::ZERO);
    settings.auth = VaultAuth::Token(SecretString::from(canary.as_str()));
    assert!(!format!("{settings:?}").contains(&canary));
    let error = VaultSecretStore::connect(settings).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed, "{error:?}");
    assert_eq!(error.field(), Some("VAULT_TOKEN"));
    let printed = format!("{error} {error:?} {:?}", error.hint());
    assert!(!printed.contains(&canary), "{printed}");
}

#[tokio::test]
async fn needs_vault_cache_serves_repeat_reads_and_follows_own_writes() {
    let bao = Bao::shared();
    let base = unique("cache");
    let data_path = format!("{MOUNT}/data/{base}/orgs/t/c/1");
    let write_behind_the_store = |value: &'static str| {
        let bao = bao.clone();
        let data_path = data_path.clone();
        async move {
            bao.ok(
                Method::POST,
                &data_path,
                Some(json!({ "data": { "schema_version": 1, "secrets": { "key": value } } })),
            )
            .await;
        }
    };

    let cached = store(&bao, &base, Duration::from_secs(30)).await;
    let reference = cached
        .put(&location("t", "c", "1"), &secret(json!({ "key": "v1" })))
        .await
        .unwrap();
    assert_eq!(
        cached.get(&reference).await.unwrap(),
        secret(json!({ "key": "v1" }))
    );
    write_behind_the_store("v2").await;
    assert_eq!(
        cached.get(&reference).await.unwrap(),
        secret(json!({ "key": "v1" })),
        "a repeat read within the TTL is served from memory"
    );
    modify(&cached, &reference, |_| Ok(secret(json!({ "key": "v3" }))))
        .await
        .unwrap();
    assert_eq!(
        cached.get(&reference).await.unwrap(),
        secret(json!({ "key": "v3" }))
    );
    cached.delete(&reference).await.unwrap();
    assert_eq!(
        cached.get(&reference).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let uncached = store(&bao, &base, Duration::ZERO).await;
    let reference = uncached
        .put(&location("t", "c", "1"), &secret(json!({ "key": "v1" })))
        .await
        .unwrap();
    assert_eq!(
        uncached.get(&reference).await.unwrap(),
        secret(json!({ "key": "v1" }))
    );
    write_behind_the_store("v2").await;
    assert_eq!(
        uncached.get(&reference).await.unwrap(),
        secret(json!({ "key": "v2" }))
    );
}

#[tokio::test]
async fn needs_vault_planted_secret_never_prints() {
    let bao = Bao::shared();
    // Every log line at every level, from this crate and the Vault client alike.
    let logs = patchbay_testkit::logs::capture();
    let canary = format!("canary-{}", uuid::Uuid::new_v4());
    let settings = config(&bao, MOUNT, &unique("canary"), Duration::from_secs(30));
    let printed_config = format!("{settings:?}");
    assert!(!printed_config.contains(&bao.token), "{printed_config}");
    let store = VaultSecretStore::connect(settings).await.unwrap();

    let value = secret(json!({ "api_key": canary }));
    let reference = store.put(&location("t", "c", "1"), &value).await.unwrap();
    let read = store.get(&reference).await.unwrap();
    assert_eq!(read, value);
    let mut printed = vec![
        format!("{store:?}"),
        format!("{read:?}"),
        reference.0.clone(),
    ];

    let errors = [
        store
            .put(&location("t", "c", "1"), &value)
            .await
            .unwrap_err(),
        store
            .update_if_version(
                &SecretRef(format!("vault:{MOUNT}/elsewhere/orgs/t/c/1")),
                SecretVersion(1),
                &value,
            )
            .await
            .unwrap_err(),
        store
            .update_if_version(&reference, SecretVersion(7), &value)
            .await
            .unwrap_err(),
        {
            store.delete(&reference).await.unwrap();
            store.get(&reference).await.unwrap_err()
        },
    ];
    for error in &errors {
        printed.push(format!("{error} {error:?} {:?}", error.hint()));
    }
    let logged = logs.text();
    assert!(logged.contains("stored secret in Vault"), "{logged}");
    assert!(
        logged.contains("/v1/patchbay/data/"),
        "the client's request spans are captured"
    );
    printed.push(logged);
    for text in printed {
        assert!(!text.contains(&canary), "{text}");
        assert!(!text.contains(&bao.token), "{text}");
    }
}

#[tokio::test]
async fn unreachable_vault_at_connect_is_unavailable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let settings = VaultConfig::new(address.clone(), VaultAuth::Token("t".into()));
    let error = VaultSecretStore::connect(settings).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.message(), UNAVAILABLE);
    let hint = error.hint().unwrap();
    assert!(
        hint.contains(&address) && hint.contains("connection refused"),
        "{hint}"
    );
}

#[tokio::test]
async fn a_silent_vault_is_cut_off_at_the_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let settings = VaultConfig {
        timeout: Duration::from_secs(1),
        ..VaultConfig::new(address.clone(), VaultAuth::Token("t".into()))
    };
    let started = Instant::now();
    let error = VaultSecretStore::connect(settings).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.message(), UNAVAILABLE);
    assert_eq!(
        error.hint(),
        Some(format!("Vault at {address} did not answer within 1 s").as_str())
    );
    held.abort();
}

#[tokio::test]
async fn needs_vault_stopped_vault_fails_fast_and_the_same_store_recovers() {
    let mut server = PrivateBao::start().await;
    let bao = server.bao.clone();
    let store = store(&bao, "tenants", Duration::ZERO).await;
    let reference = store
        .put(
            &location("t", "c", "1"),
            &secret(json!({ "key": "before" })),
        )
        .await
        .unwrap();
    store.get(&reference).await.unwrap();

    bao.ok(Method::PUT, "sys/seal", None).await;
    let error = store.get(&reference).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
    assert_eq!(error.message(), UNAVAILABLE);
    assert!(
        error.hint().unwrap().contains("sealed"),
        "{:?}",
        error.hint()
    );
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    server.kill();
    let started = Instant::now();
    let error = store.get(&reference).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "get took {elapsed:?}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.message(), UNAVAILABLE);
    assert!(
        error.hint().unwrap().contains(&bao.addr),
        "{:?}",
        error.hint()
    );
    let error = store
        .put(&location("t", "c", "2"), &secret(json!({ "key": "down" })))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    // Dev mode forgets everything: the fresh server has an empty mount.
    server.restart().await;
    assert_eq!(
        store.get(&reference).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let reference = store
        .put(&location("t", "c", "1"), &secret(json!({ "key": "after" })))
        .await
        .unwrap();
    assert_eq!(
        store.get(&reference).await.unwrap(),
        secret(json!({ "key": "after" }))
    );
    store.health().await.unwrap();
}

/// AppRole credentials set up on a private server.
struct AppRoleLogin {
    role_id: String,
    secret_id: String,
}

impl AppRoleLogin {
    /// Enables AppRole with a role holding exactly the policy the store documents.
    /// `reuse` recreates a previous login's ids (dev servers forget them on restart).
    async fn set_up(bao: &Bao, token_ttl: &str, token_max_ttl: &str, reuse: Option<&Self>) -> Self {
        bao.ok(
            Method::POST,
            "sys/auth/approle",
            Some(json!({ "type": "approle" })),
        )
        .await;
        let policy = format!(
            "path \"{MOUNT}/config\" {{ capabilities = [\"read\"] }}\n\
             path \"{MOUNT}/data/tenants/*\" {{ capabilities = [\"create\", \"read\", \"update\"] }}\n\
             path \"{MOUNT}/metadata/tenants/*\" {{ capabilities = [\"delete\"] }}\n"
        );
        bao.ok(
            Method::PUT,
            "sys/policies/acl/patchbay",
            Some(json!({ "policy": policy })),
        )
        .await;
        bao.ok(
            Method::POST,
            "auth/approle/role/patchbay",
            Some(json!({
                "token_policies": ["patchbay"],
                "token_ttl": token_ttl,
                "token_max_ttl": token_max_ttl,
            })),
        )
        .await;
        if let Some(previous) = reuse {
            bao.ok(
                Method::POST,
                "auth/approle/role/patchbay/role-id",
                Some(json!({ "role_id": previous.role_id })),
            )
            .await;
            bao.ok(
                Method::POST,
                "auth/approle/role/patchbay/custom-secret-id",
                Some(json!({ "secret_id": previous.secret_id })),
            )
            .await;
        }
        let role_id = bao
            .ok(Method::GET, "auth/approle/role/patchbay/role-id", None)
            .await["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_id = match reuse {
            Some(previous) => previous.secret_id.clone(),
            None => bao
                .ok(Method::POST, "auth/approle/role/patchbay/secret-id", None)
                .await["data"]["secret_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        };
        Self { role_id, secret_id }
    }

    fn config(&self, bao: &Bao) -> VaultConfig {
        VaultConfig {
            cache_ttl: Duration::ZERO,
            ..VaultConfig::new(
                bao.addr.clone(),
                VaultAuth::AppRole {
                    role_id: SecretString::from(self.role_id.as_str()),
                    secret_id: SecretString::from(self.secret_id.as_str()),
                },
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_approle_tokens_are_renewed_then_replaced_at_max_ttl() {
    let server = PrivateBao::start().await;
    let bao = &server.bao;
    let login = AppRoleLogin::set_up(bao, "3s", "12s", None).await;
    let (role_id, secret_id) = (&login.role_id, &login.secret_id);
    let settings = login.config(bao);
    let printed = format!("{settings:?}");
    assert!(
        !printed.contains(secret_id) && !printed.contains(role_id),
        "{printed}"
    );
    let started = Instant::now();
    let store = VaultSecretStore::connect(settings).await.unwrap();
    assert_eq!(store.token_stats().logins, 1);
    let value = secret(json!({ "key": "approle" }));
    let reference = store.put(&location("t", "c", "1"), &value).await.unwrap();

    while started.elapsed() < Duration::from_secs(8) {
        assert_eq!(store.get(&reference).await.unwrap(), value);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats = store.token_stats();
    assert!(stats.renewals >= 1, "{stats:?}");
    assert_eq!(
        stats.logins, 1,
        "renewal, not login, keeps the first token alive: {stats:?}"
    );

    // Past the 12 s max TTL the first token is dead; a fresh login carries on.
    while started.elapsed() < Duration::from_secs(13) {
        assert_eq!(store.get(&reference).await.unwrap(), value);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats = store.token_stats();
    assert!(stats.logins >= 2, "{stats:?}");
    assert_eq!(store.get(&reference).await.unwrap(), value);
    modify(&store, &reference, |_| {
        Ok(secret(json!({ "key": "rotated" })))
    })
    .await
    .unwrap();
    store.delete(&reference).await.unwrap();
    store.health().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_approle_store_fails_fast_while_vault_is_down_and_logs_in_again() {
    let mut server = PrivateBao::start().await;
    let login = AppRoleLogin::set_up(&server.bao, "3s", "1h", None).await;
    let clock = ManualClock::new();
    let store =
        VaultSecretStore::connect_with_clock(login.config(&server.bao), Arc::new(clock.clone()))
            .await
            .unwrap();
    let reference = store
        .put(&location("t", "c", "1"), &secret(json!({ "key": "v" })))
        .await
        .unwrap();

    server.kill();
    // The token outlives neither its 3 s TTL nor the failed renewals.
    clock.advance(Duration::from_millis(3500));
    let started = Instant::now();
    let error = store.get(&reference).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.message(), UNAVAILABLE);
    let hint = error.hint().unwrap();
    assert!(hint.contains("token expired"), "{hint}");
    assert!(hint.contains(&server.bao.addr), "{hint}");
    assert!(!hint.contains(&login.secret_id), "{hint}");

    server.restart().await;
    AppRoleLogin::set_up(&server.bao, "3s", "1h", Some(&login)).await;
    let reference = loop {
        // Time passes: the renewal task's next login attempt comes due.
        clock.advance(Duration::from_secs(1));
        match store
            .put(&location("t", "c", "1"), &secret(json!({ "key": "back" })))
            .await
        {
            Ok(reference) => break reference,
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(25),
                    "no fresh login after Vault came back: {error:?} {:?}",
                    error.hint()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(
        store.get(&reference).await.unwrap(),
        secret(json!({ "key": "back" }))
    );
    assert!(store.token_stats().logins >= 2, "{:?}", store.token_stats());
}

#[tokio::test]
async fn needs_vault_a_writer_holding_a_stale_read_gets_a_conflict_and_nothing_is_lost() {
    let bao = Bao::shared();
    let store = store(&bao, &unique("stale"), Duration::from_secs(30)).await;
    let reference = store
        .put(
            &location("t", "oauth", "c"),
            &secret(json!({ "refresh_token": "r0" })),
        )
        .await
        .unwrap();
    let (_, first_read) = store.get_versioned(&reference).await.unwrap();
    let (_, second_read) = store.get_versioned(&reference).await.unwrap();
    assert_eq!(first_read, second_read);

    store
        .update_if_version(
            &reference,
            first_read,
            &secret(json!({ "refresh_token": "r1" })),
        )
        .await
        .unwrap();
    let error = store
        .update_if_version(
            &reference,
            second_read,
            &secret(json!({ "refresh_token": "stale" })),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict, "{error:?}");
    let expected = secret(json!({ "refresh_token": "r1" }));
    assert_eq!(store.get(&reference).await.unwrap(), expected);
    assert_eq!(
        store.get_versioned(&reference).await.unwrap(),
        (expected, SecretVersion(2))
    );
}

#[tokio::test]
async fn needs_vault_cached_secrets_expire_after_the_ttl() {
    let bao = Bao::shared();
    let base = unique("ttl");
    let clock = ManualClock::new();
    let store = VaultSecretStore::connect_with_clock(
        config(&bao, MOUNT, &base, Duration::from_secs(30)),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let reference = store
        .put(&location("t", "c", "1"), &secret(json!({ "key": "v1" })))
        .await
        .unwrap();
    assert_eq!(
        store.get(&reference).await.unwrap(),
        secret(json!({ "key": "v1" }))
    );
    bao.ok(
        Method::POST,
        &format!("{MOUNT}/data/{base}/orgs/t/c/1"),
        Some(json!({ "data": { "schema_version": 1, "secrets": { "key": "v2" } } })),
    )
    .await;

    clock.advance(Duration::from_secs(29));
    assert_eq!(
        store.get(&reference).await.unwrap(),
        secret(json!({ "key": "v1" })),
        "within the TTL the cached value is served"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.get(&reference).await.unwrap(),
        secret(json!({ "key": "v2" })),
        "at the TTL the value is read from Vault again"
    );
}

/// A connection record pointing at `secret_ref`.
fn record(id: &str, tenant: Tenant, connector: &str, secret_ref: SecretRef) -> ConnectionRecord {
    ConnectionRecord {
        id: id.into(),
        tenant,
        connector: connector.into(),
        label: id.into(),
        metadata: json!({}),
        secret_ref,
        status: ConnectionStatus::Active,
        webhook_token_hash: None,
        routing_key: None,
        allow_writes: false,
        last_report: None,
        created_at: chrono::Utc::now(),
        validated_at: None,
    }
}

/// Writes a secret the way Patchbay did before organisations and users had folders.
async fn write_legacy(bao: &Bao, base: &str, path: &str, value: Value) -> SecretRef {
    bao.ok(
        Method::POST,
        &format!("{MOUNT}/data/{base}/{path}"),
        Some(json!({ "data": { "schema_version": 1, "secrets": value } })),
    )
    .await;
    SecretRef(format!("vault:{MOUNT}/{base}/{path}"))
}

async fn exists(bao: &Bao, base: &str, path: &str) -> bool {
    let (status, _) = bao
        .request(
            Method::GET,
            &format!("{MOUNT}/metadata/{base}/{path}"),
            None,
        )
        .await;
    status == StatusCode::OK
}

fn org(user: &str, org: &str) -> Tenant {
    Tenant {
        user_id: user.into(),
        org_id: Some(org.into()),
    }
}

#[tokio::test]
async fn needs_vault_legacy_secrets_move_to_separate_org_and_user_folders() {
    let bao = Bao::shared();
    let base = unique("legacy");
    let store = store(&bao, &base, Duration::from_secs(30)).await;
    let records = SqliteRecordStore::open_in_memory().await.unwrap();

    // Organisation `alice` and user `alice` once shared the folder `alice/`.
    let org_alice = record(
        "c-org",
        org("u-1", "alice"),
        "github",
        write_legacy(&bao, &base, "alice/github/c-org", json!({ "token": "org" })).await,
    );
    let user_alice = record(
        "c-user",
        Tenant::user("alice"),
        "datadog",
        write_legacy(
            &bao,
            &base,
            "alice/datadog/c-user",
            json!({ "api_key": "user" }),
        )
        .await,
    );
    let vanished = record(
        "c-gone",
        org("u-2", "acme"),
        "slack",
        SecretRef(format!("vault:{MOUNT}/{base}/acme/slack/c-gone")),
    );
    let current = record(
        "c-new",
        org("u-3", "acme"),
        "slack",
        store
            .put(
                &SecretLocation::new(&org("u-3", "acme"), "slack", "c-new"),
                &secret(json!({ "bot": "new" })),
            )
            .await
            .unwrap(),
    );
    let local = record(
        "c-local",
        org("u-3", "acme"),
        "datadog",
        SecretRef("local:1234".into()),
    );
    for record in [&org_alice, &user_alice, &vanished, &current, &local] {
        records.insert_connection(record).await.unwrap();
    }
    // Until moved, a secret in the old layout is still read.
    assert_eq!(
        store.get(&org_alice.secret_ref).await.unwrap(),
        secret(json!({ "token": "org" }))
    );

    let outcome = store.migrate_legacy_layout(&records).await.unwrap();
    assert_eq!(
        outcome,
        LayoutMigration {
            moved: 2,
            missing: 1,
            cleaned_up: 0
        }
    );
    let reference_of = |tenant: Tenant, id: &'static str| {
        let records = &records;
        async move {
            records
                .get_connection(&tenant, id)
                .await
                .unwrap()
                .unwrap()
                .secret_ref
        }
    };
    let org_ref = reference_of(org("u-1", "alice"), "c-org").await;
    let user_ref = reference_of(Tenant::user("alice"), "c-user").await;
    assert_eq!(
        org_ref.0,
        format!("vault:{MOUNT}/{base}/orgs/alice/github/c-org")
    );
    assert_eq!(
        user_ref.0,
        format!("vault:{MOUNT}/{base}/users/alice/datadog/c-user")
    );
    assert_eq!(
        store.get(&org_ref).await.unwrap(),
        secret(json!({ "token": "org" }))
    );
    assert_eq!(
        store.get(&user_ref).await.unwrap(),
        secret(json!({ "api_key": "user" }))
    );
    assert!(!exists(&bao, &base, "alice/github/c-org").await);
    assert!(!exists(&bao, &base, "alice/datadog/c-user").await);
    assert_eq!(
        reference_of(org("u-2", "acme"), "c-gone").await,
        vanished.secret_ref
    );
    assert_eq!(
        reference_of(org("u-3", "acme"), "c-new").await,
        current.secret_ref
    );
    assert_eq!(
        reference_of(org("u-3", "acme"), "c-local").await,
        local.secret_ref
    );
    assert!(records.retired_secret_refs().await.unwrap().is_empty());

    // Running again changes nothing.
    let again = store.migrate_legacy_layout(&records).await.unwrap();
    assert_eq!(
        again,
        LayoutMigration {
            moved: 0,
            missing: 1,
            cleaned_up: 0
        }
    );
    assert_eq!(
        store.get(&org_ref).await.unwrap(),
        secret(json!({ "token": "org" }))
    );
}

#[tokio::test]
async fn needs_vault_an_interrupted_move_is_finished_by_the_next_start() {
    let bao = Bao::shared();
    let base = unique("interrupted");
    let store = store(&bao, &base, Duration::ZERO).await;
    let records = SqliteRecordStore::open_in_memory().await.unwrap();
    let acme = org("u-1", "acme");

    // Interrupted after copying: the copy is older than the secret, the record unmoved.
    let copied = record(
        "c-copied",
        acme.clone(),
        "slack",
        write_legacy(
            &bao,
            &base,
            "acme/slack/c-copied",
            json!({ "refresh_token": "r2" }),
        )
        .await,
    );
    bao.ok(
        Method::POST,
        &format!("{MOUNT}/data/{base}/orgs/acme/slack/c-copied"),
        Some(json!({ "data": { "schema_version": 1, "secrets": { "refresh_token": "r1" } } })),
    )
    .await;
    // Interrupted after moving the record: the old secret is still there.
    let moved = record(
        "c-moved",
        acme.clone(),
        "slack",
        write_legacy(
            &bao,
            &base,
            "acme/slack/c-moved",
            json!({ "refresh_token": "m" }),
        )
        .await,
    );
    for record in [&copied, &moved] {
        records.insert_connection(record).await.unwrap();
    }
    let moved_to = store
        .put(
            &SecretLocation::new(&acme, "slack", "c-moved"),
            &secret(json!({ "refresh_token": "m" })),
        )
        .await
        .unwrap();
    assert!(records
        .move_secret_ref("c-moved", &moved.secret_ref, &moved_to)
        .await
        .unwrap());

    let outcome = store.migrate_legacy_layout(&records).await.unwrap();
    assert_eq!(
        outcome,
        LayoutMigration {
            moved: 1,
            missing: 0,
            cleaned_up: 1
        }
    );
    let copied_ref = records
        .get_connection(&acme, "c-copied")
        .await
        .unwrap()
        .unwrap()
        .secret_ref;
    assert_eq!(
        store.get(&copied_ref).await.unwrap(),
        secret(json!({ "refresh_token": "r2" })),
        "the latest value of the old secret wins over an earlier copy"
    );
    for old in ["acme/slack/c-copied", "acme/slack/c-moved"] {
        assert!(!exists(&bao, &base, old).await, "{old} is left behind");
    }
    assert!(records.retired_secret_refs().await.unwrap().is_empty());
    assert_eq!(
        store.get(&moved_to).await.unwrap(),
        secret(json!({ "refresh_token": "m" }))
    );
}

#[tokio::test]
async fn needs_vault_list_finds_every_secret_under_the_base_and_nothing_outside() {
    let bao = Bao::shared();
    let ours = store(&bao, &unique("list"), Duration::ZERO).await;
    let other = store(&bao, &unique("list-other"), Duration::ZERO).await;
    assert!(
        ours.list().await.unwrap().is_empty(),
        "an empty base lists nothing"
    );

    let user = SecretLocation {
        tenant: SecretTenant::User("user 3".into()),
        connector: "github".into(),
        connection_id: "conn-3".into(),
    };
    let mut written = Vec::new();
    for (location, value) in [
        (location("org_1", "datadog", "conn-1"), 1),
        (location("org_1", "slack", "conn-2"), 2),
        (user, 3),
    ] {
        written.push(
            ours.put(&location, &secret(json!({ "k": value })))
                .await
                .unwrap(),
        );
    }
    // A secret under another base is another store's.
    other
        .put(
            &location("org_1", "datadog", "elsewhere"),
            &secret(json!({ "k": 4 })),
        )
        .await
        .unwrap();

    let mut listed = ours.list().await.unwrap();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    written.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, written);

    ours.delete(&written[0]).await.unwrap();
    assert_eq!(ours.list().await.unwrap().len(), 2);
}
