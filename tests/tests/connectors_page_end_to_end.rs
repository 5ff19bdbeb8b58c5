//! The Connectors page: its sessions (API-key sign-in, the CSRF guard, one-time
//! connect links and what their sessions may do) through the real binary, and the
//! whole page in a real browser (Debian's headless Chromium driven by
//! `playwright-core`, `tests/browser/connectors_page.cjs`) against the Datadog and
//! GitHub fakes, with a screenshot of every state kept under
//! `target/test-output/connectors-page/`.

use std::path::PathBuf;
use std::process::Command;

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_connector_github::fake as fake_github;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::services;
use serde_json::{json, Value};

const CANARY_API_KEY: &str = "canary-page-dd-api-5c0e7a91b3";
const CANARY_APP_KEY: &str = "canary-page-dd-app-2f84d6c0e9";
const GITHUB_TOKEN: &str = "gho_canaryPageGithubToken0001";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/connectors_page.cjs");

/// A browser-like client: keeps no cookies of its own and follows no redirects, so
/// each answer's `Set-Cookie` and `Location` can be checked.
fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` part of the `Set-Cookie` header, and the whole header.
fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_owned();
    (header.split(';').next().unwrap().to_owned(), header)
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })),
    )
}

fn datadog_fields() -> Value {
    json!({ "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY, "site": "datadoghq.com" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_sessions_sign_in_guard_changes_and_connect_links_open_once_for_one_connector() {
    let datadog = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = datadog.override_spec();
    let patchbay = Patchbay::start(&[("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str())]).await;
    let base = &patchbay.base_url;
    let key = patchbay.create_api_key("alice", Some("acme"));
    let browser = browser_client();

    // The page itself, with a policy that runs no inline script.
    let page = browser.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(page.text().await.unwrap().contains("/assets/app.js"));
    for asset in ["app.js", "app.css"] {
        let answer = browser
            .get(format!("{base}/assets/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
    }

    // Signing in needs the page's header, and a key that works.
    let refused = browser
        .post(format!("{base}/api/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "a sign-in another site could post");
    let (status, wrong) = json_of(
        browser
            .post(format!("{base}/api/session"))
            .header("x-requested-with", "patchbay")
            .json(&json!({ "api_key": "pbk_not-a-key-at-all" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{wrong}");
    assert_eq!(wrong["error"]["field"], "api_key", "{wrong}");
    let signed_in = browser
        .post(format!("{base}/api/session"))
        .header("x-requested-with", "patchbay")
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let (cookie, header) = session_cookie(&signed_in);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attribute), "{attribute} missing: {header}");
    }
    let (_, who) = json_of(signed_in).await;
    assert_eq!(who["user_id"], "alice");
    assert_eq!(who["via"], "api_key");

    // The cookie authenticates reads; changes need the header too.
    let (status, listed) = json_of(
        browser
            .get(format!("{base}/api/connections"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let (status, forged) = json_of(
        browser
            .post(format!("{base}/api/connections"))
            .header("cookie", &cookie)
            .json(&json!({ "connector": "datadog", "label": "forged", "fields": datadog_fields() }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "a cross-site form post is refused: {forged}");
    assert!(
        forged["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Requested-With"),
        "{forged}"
    );
    let (status, connected) = json_of(
        browser
            .post(format!("{base}/api/connections"))
            .header("cookie", &cookie)
            .header("x-requested-with", "patchbay")
            .json(&json!({ "connector": "datadog", "label": "from the page", "fields": datadog_fields() }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{connected}");
    let signed_out = browser
        .delete(format!("{base}/api/session"))
        .header("cookie", &cookie)
        .header("x-requested-with", "patchbay")
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 204);
    assert!(session_cookie(&signed_out).1.contains("Max-Age=0"));

    // A connect link for bob: it opens once, into a session for Datadog only.
    let link = patchbay.create_connect_link("bob", Some("beta"), "datadog");
    assert!(link.starts_with(&format!("{base}/connect/pbl_")), "{link}");
    let opened = browser.get(&link).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/#/connect/datadog");
    assert_eq!(opened.headers()["referrer-policy"], "no-referrer");
    let (link_cookie, header) = session_cookie(&opened);
    assert!(
        header.contains("HttpOnly") && header.contains("Max-Age=3600"),
        "{header}"
    );
    let again = browser.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 410, "a link works once");
    assert!(again.text().await.unwrap().contains("already used"));
    let forged = browser
        .get(format!("{base}/connect/pbl_forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);

    let as_link = |method: reqwest::Method, path: &str| {
        browser
            .request(method, format!("{base}{path}"))
            .header("cookie", &link_cookie)
            .header("x-requested-with", "patchbay")
    };
    let (_, who) = json_of(
        as_link(reqwest::Method::GET, "/api/session")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(who["user_id"], "bob");
    assert_eq!(who["org_id"], "beta");
    assert_eq!(who["via"], "connect_link");
    assert_eq!(who["connector"], "datadog");
    let (status, other) = json_of(
        as_link(reqwest::Method::POST, "/api/connections")
            .json(&json!({ "connector": "grafana", "label": "x", "fields": {} }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "another connector: {other}");
    assert_eq!(other["error"]["kind"], "permission_denied");
    let (status, alerts) = json_of(
        as_link(reqwest::Method::GET, "/api/alerts")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "a link session reads no alerts: {alerts}");
    let (status, bobs) = json_of(
        as_link(reqwest::Method::POST, "/api/connections")
            .json(
                &json!({ "connector": "datadog", "label": "bob-prod", "fields": datadog_fields() }),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{bobs}");
    let bobs_id = bobs["connection"]["id"].as_str().unwrap().to_owned();
    let (status, _) = json_of(
        as_link(
            reqwest::Method::POST,
            &format!("/api/connections/{bobs_id}/validate"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    for (method, path) in [
        (
            reqwest::Method::DELETE,
            format!("/api/connections/{bobs_id}"),
        ),
        (
            reqwest::Method::POST,
            format!("/api/connections/{bobs_id}/query/list_hosts"),
        ),
    ] {
        let (status, refused) = json_of(as_link(method, &path).send().await.unwrap()).await;
        assert_eq!(status, 403, "{path}: {refused}");
    }
    let bob = patchbay.create_api_key("bob", Some("beta"));
    let (_, listed) = json_of(
        browser
            .get(format!("{base}/api/connections"))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["connections"][0]["label"], "bob-prod", "{listed}");

    patchbay.assert_nowhere(&[CANARY_API_KEY, CANARY_APP_KEY]);
    patchbay.assert_not_logged_or_stored(&[
        &key,
        link.rsplit('/').next().unwrap(),
        link_cookie.split_once('=').unwrap().1,
    ]);
}

/// Where the browser test keeps its screenshots.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("test-output/connectors-page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_browser_the_connectors_page_connects_validates_and_disconnects_in_chromium() {
    let browser = services::browser();
    let datadog = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let github = fake_github::FakeGitHub::start(GITHUB_TOKEN).await;
    let overrides = format!("{},{}", datadog.override_spec(), github.override_spec());
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("GH_OAUTH_CLIENT_ID", fake_github::FAKE_CLIENT_ID),
        ("GH_OAUTH_CLIENT_SECRET", fake_github::FAKE_CLIENT_SECRET),
    ])
    .await;
    let key = patchbay.create_api_key("alice", Some("acme"));
    let link = patchbay.create_connect_link("bob", Some("beta"), "datadog");
    let screenshots = screenshot_dir();
    if screenshots.exists() {
        std::fs::remove_dir_all(&screenshots).unwrap();
    }

    let output = Command::new("node")
        .arg(SCRIPT)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NODE_PATH", &browser.playwright)
        .env("CHROMIUM_PATH", &browser.chromium)
        .env("PATCHBAY_URL", &patchbay.base_url)
        .env("PATCHBAY_API_KEY", &key)
        .env("PATCHBAY_CONNECT_LINK", &link)
        .env("DATADOG_API_KEY", CANARY_API_KEY)
        .env("DATADOG_APP_KEY", CANARY_APP_KEY)
        .env("GITHUB_AUTHORIZE_ORIGIN", "https://github.com")
        .env("GITHUB_FAKE_URL", github.base_url())
        .env("SCREENSHOT_DIR", &screenshots)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stderr}\n{stdout}\npatchbay's log:\n{}",
        patchbay.logs()
    );
    for canary in [CANARY_API_KEY, CANARY_APP_KEY, GITHUB_TOKEN] {
        assert!(
            !stdout.contains(canary) && !stderr.contains(canary),
            "{canary} printed"
        );
    }
    let shots = std::fs::read_dir(&screenshots)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "png"))
        })
        .count();
    assert!(
        shots >= 8,
        "{shots} screenshots in {}",
        screenshots.display()
    );

    // What the page did, as the API sees it: alice kept GitHub and removed Datadog;
    // bob connected Datadog through his link.
    let connectors_of = |listed: Value| -> Vec<String> {
        listed["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|connection| connection["connector"].as_str().unwrap().to_owned())
            .collect()
    };
    let alices = patchbay.api("GET", "/api/connections", &key, None).await;
    assert_eq!(connectors_of(alices.json()), ["github"], "{}", alices.text);
    let bob = patchbay.create_api_key("bob", Some("beta"));
    let bobs = patchbay.api("GET", "/api/connections", &bob, None).await;
    assert_eq!(connectors_of(bobs.json()), ["datadog"], "{}", bobs.text);

    patchbay.assert_nowhere(&[CANARY_API_KEY, CANARY_APP_KEY, GITHUB_TOKEN]);
}
