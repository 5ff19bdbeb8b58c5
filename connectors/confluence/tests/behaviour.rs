//! Behaviour users rely on, against the fake Atlassian: validation line by line,
//! site choice, the URL resolver and its messages, paging and caps, error mapping,
//! CQL escaping and the address policy for Data Center base URLs.

use std::net::IpAddr;
use std::sync::Arc;

use patchbay_connector_confluence::fake::{
    FakeConfluence, FakeSite, Fault, ProviderFake, DEFAULT_CLOUD_ID, POSTMORTEM_PAGE_ID,
    RESTRICTED_PAGE_ID, REVIEW_PAGE_COUNT, RUNBOOK_PAGE_ID, RUNBOOK_TITLE, SHORT_LINK,
    SHORT_LINK_ELSEWHERE, SHORT_LINK_TO_DISPLAY, SPACE_COUNT, USER_NAME,
};
use patchbay_connector_confluence::{
    ConfluenceConnector, DESCRIPTOR, DISABLED_MESSAGE, FEATURE_FLAG,
};
use patchbay_core::{
    AuthRequest, CheckOutcome, ClientAuthStyle, ConnectorContext, ConnectorEnv, DynConnector,
    DynCredentials, ErrorKind, FormFields, FromEnv, QueryOutput, ValidationReport,
    ValidationStatus,
};
use patchbay_http::AddressPolicy;
use serde_json::{json, Value};

const TOKEN: &str = "behaviour-confluence-token-7f3a";

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("behaviour-connection".to_owned()),
        tenant: None,
    }
}

fn form(value: Value) -> AuthRequest {
    AuthRequest::Form(FormFields(value.as_object().cloned().unwrap_or_default()))
}

fn connector(fake: &FakeConfluence) -> Arc<dyn DynConnector> {
    Arc::new(fake.connector_allowing_loopback())
}

fn connector_from_env(overrides: &str, allowed: &str) -> Arc<dyn DynConnector> {
    let env = ConnectorEnv::from_pairs([
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides),
        ("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", allowed),
        ("PATCHBAY_HTTP_MAX_RETRIES", "0"),
    ]);
    Arc::new(ConfluenceConnector::from_env(&env).unwrap())
}

async fn data_center(
    fake: &FakeConfluence,
    token: &str,
) -> (Arc<dyn DynConnector>, DynCredentials, ValidationReport) {
    let connector = connector(fake);
    let mut credentials = connector
        .authenticate(form(
            json!({"base_url": fake.base_url(), "personal_access_token": token}),
        ))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    (connector, credentials, report)
}

async fn cloud(
    fake: &FakeConfluence,
    token: &str,
    options: Value,
) -> (
    Arc<dyn DynConnector>,
    DynCredentials,
    patchbay_core::Result<ValidationReport>,
) {
    let connector = connector(fake);
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(fake.grant(token, options)))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await;
    (connector, credentials, report)
}

fn check<'r>(report: &'r ValidationReport, id: &str) -> &'r patchbay_core::ValidationCheck {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {report:?}"))
}

async fn query(
    connector: &Arc<dyn DynConnector>,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
) -> patchbay_core::Result<QueryOutput> {
    connector
        .query(&ctx(), credentials, operation, params)
        .await
}

// ---- descriptor ----

#[test]
fn the_descriptor_declares_the_guide_names_flag_and_atlassian_oauth() {
    assert_eq!(
        DESCRIPTOR.feature_flag,
        Some("NEXT_PUBLIC_ENABLE_CONFLUENCE")
    );
    assert_eq!(
        DESCRIPTOR.disabled_message,
        Some("Confluence connector not enabled")
    );
    assert!(!DESCRIPTOR.is_enabled(&ConnectorEnv::from_pairs([("X", "y")])));
    assert!(!DESCRIPTOR.is_enabled(&ConnectorEnv::from_pairs([(FEATURE_FLAG, "false")])));
    assert!(DESCRIPTOR.is_enabled(&ConnectorEnv::from_pairs([(FEATURE_FLAG, "true")])));
    assert_eq!(DISABLED_MESSAGE, "Confluence connector not enabled");
    let spec = DESCRIPTOR.oauth.unwrap();
    assert_eq!(spec.authorize_url, "https://auth.atlassian.com/authorize");
    assert_eq!(spec.token_url, "https://auth.atlassian.com/oauth/token");
    assert_eq!(spec.client_auth, ClientAuthStyle::JsonBody);
    assert_eq!(
        spec.client_id_env,
        ["CONFLUENCE_CLIENT_ID", "ATLASSIAN_CLIENT_ID"]
    );
    assert_eq!(
        spec.client_secret_env,
        ["CONFLUENCE_CLIENT_SECRET", "ATLASSIAN_CLIENT_SECRET"]
    );
    assert_eq!(spec.callback_path, "/confluence/callback");
    assert_eq!(spec.start_options, ["site"]);
    assert!(spec.scopes.contains(&"offline_access"));
    for scope in [
        "read:page:confluence",
        "read:space:confluence",
        "read:user:confluence",
    ] {
        assert!(spec.scopes.contains(&scope), "{scope}");
    }
    assert!(spec
        .extra_authorize_params
        .contains(&("audience", "api.atlassian.com")));
    assert!(spec.extra_authorize_params.contains(&("prompt", "consent")));
}

// ---- validation, one line per check ----

#[tokio::test]
async fn data_center_validation_reports_identity_spaces_and_search() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (_, credentials, report) = data_center(&fake, TOKEN).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    assert_eq!(report.check_ids(), ["pat", "space_read", "search"]);
    assert!(check(&report, "pat").detail.contains(USER_NAME));
    assert_eq!(credentials.config["user_display_name"], USER_NAME);
    assert_eq!(credentials.config["auth_type"], "pat");
    let user = &fake.requests_to("/rest/api/user/current")[0];
    assert!(user.has_header("authorization"));
}

#[tokio::test]
async fn a_refused_pat_fails_with_the_guide_message_and_skips_the_rest() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (_, _, report) = data_center(&fake, "not-the-pat").await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let pat = check(&report, "pat");
    assert_eq!(pat.outcome, CheckOutcome::Failed);
    assert!(
        pat.detail
            .starts_with("Failed to validate Confluence PAT (Verify PAT is valid and not expired"),
        "{}",
        pat.detail
    );
    assert_eq!(pat.provider_status, Some(401));
    assert_eq!(check(&report, "space_read").outcome, CheckOutcome::Skipped);
    assert_eq!(check(&report, "search").outcome, CheckOutcome::Skipped);
}

#[tokio::test]
async fn failing_space_and_search_probes_degrade_the_connection_line_by_line() {
    let fake = FakeConfluence::start(TOKEN).await;
    for _ in 0..2 {
        fake.inject("/rest/api/space", Fault::Unavailable);
    }
    let (_, _, report) = data_center(&fake, TOKEN).await;
    assert_eq!(report.overall, ValidationStatus::Degraded, "{report:?}");
    assert_eq!(check(&report, "space_read").outcome, CheckOutcome::Error);
    assert_eq!(check(&report, "search").outcome, CheckOutcome::Ok);

    fake.inject("/rest/api/content/search", Fault::ServerError);
    let (_, _, report) = data_center(&fake, TOKEN).await;
    assert_eq!(report.overall, ValidationStatus::Degraded, "{report:?}");
    assert_eq!(check(&report, "space_read").outcome, CheckOutcome::Ok);
    assert_eq!(check(&report, "search").outcome, CheckOutcome::Error);
    assert_eq!(check(&report, "search").provider_status, Some(500));
}

#[tokio::test]
async fn cloud_validation_chooses_the_site_and_names_the_user() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (_, credentials, report) = cloud(&fake, TOKEN, json!({})).await;
    let report = report.unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    assert_eq!(
        report.check_ids(),
        ["site", "identity", "space_read", "search"]
    );
    assert_eq!(credentials.config["cloud_id"], DEFAULT_CLOUD_ID);
    assert_eq!(credentials.config["base_url"], "https://acme.atlassian.net");
    assert_eq!(credentials.config["user_display_name"], USER_NAME);
    let identity = format!("/ex/confluence/{DEFAULT_CLOUD_ID}/wiki/rest/api/user/current");
    assert_eq!(fake.requests_to(&identity).len(), 1);
    assert_eq!(
        fake.requests_to(&format!(
            "/ex/confluence/{DEFAULT_CLOUD_ID}/wiki/api/v2/spaces"
        ))
        .len(),
        1
    );
}

#[tokio::test]
async fn cloud_validation_failures_are_reported_per_check() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (_, _, report) = cloud(&fake, "revoked-token", json!({})).await;
    let report = report.unwrap();
    let site = check(&report, "site");
    assert_eq!(site.outcome, CheckOutcome::Failed);
    assert!(
        site.detail
            .starts_with("Failed to validate Confluence OAuth token"),
        "{}",
        site.detail
    );
    assert_eq!(check(&report, "identity").outcome, CheckOutcome::Skipped);

    fake.set_sites(vec![FakeSite {
        id: "jira-only".into(),
        name: "jira".into(),
        url: "https://jira-only.atlassian.net".into(),
        scopes: vec!["read:jira-work".into()],
    }]);
    let (_, _, report) = cloud(&fake, TOKEN, json!({})).await;
    let report = report.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    assert!(check(&report, "site")
        .detail
        .starts_with("Token lacks confluence access"));

    fake.set_sites(vec![FakeSite::confluence(
        DEFAULT_CLOUD_ID,
        "acme",
        "https://acme.atlassian.net",
    )]);
    let identity = format!("/ex/confluence/{DEFAULT_CLOUD_ID}/wiki/rest/api/user/current");
    for _ in 0..2 {
        fake.inject(&identity, Fault::Unavailable);
    }
    let (_, _, report) = cloud(&fake, TOKEN, json!({})).await;
    let report = report.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    assert_eq!(check(&report, "site").outcome, CheckOutcome::Ok);
    assert_eq!(check(&report, "identity").outcome, CheckOutcome::Error);
    assert_eq!(check(&report, "space_read").outcome, CheckOutcome::Skipped);
}

#[tokio::test]
async fn several_sites_need_the_site_option_and_are_never_chosen_silently() {
    let fake = FakeConfluence::start(TOKEN).await;
    fake.set_sites(vec![
        FakeSite::confluence("cloud-alpha", "alpha", "https://alpha.atlassian.net"),
        FakeSite::confluence("cloud-beta", "beta", "https://beta.atlassian.net"),
    ]);
    let (_, _, report) = cloud(&fake, TOKEN, json!({})).await;
    let error = report.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("site"));
    assert!(
        error
            .message()
            .contains("https://alpha.atlassian.net (alpha, cloud id cloud-alpha)"),
        "{error}"
    );
    assert!(
        error
            .message()
            .contains("https://beta.atlassian.net (beta, cloud id cloud-beta)"),
        "{error}"
    );
    assert!(error.hint().unwrap().contains("option `site`"), "{error:?}");

    let (connector, credentials, report) =
        cloud(&fake, TOKEN, json!({"site": "https://beta.atlassian.net"})).await;
    assert!(report.unwrap().passed());
    assert_eq!(credentials.config["cloud_id"], "cloud-beta");
    assert_eq!(credentials.config["base_url"], "https://beta.atlassian.net");
    query(&connector, &credentials, "list_spaces", json!({}))
        .await
        .unwrap();
    assert_eq!(
        fake.requests_to("/ex/confluence/cloud-beta/wiki/api/v2/spaces")
            .len(),
        2
    );
    assert!(fake
        .requests_to("/ex/confluence/cloud-alpha/wiki/api/v2/spaces")
        .is_empty());

    let (_, _, report) = cloud(&fake, TOKEN, json!({"site": "gamma.atlassian.net"})).await;
    let error = report.unwrap_err();
    assert_eq!(error.field(), Some("site"));
    assert!(
        error
            .message()
            .contains("`gamma.atlassian.net` is not among"),
        "{error}"
    );
}

// ---- the URL resolver ----

#[tokio::test]
async fn cloud_urls_resolve_and_short_links_get_the_guide_message() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (connector, credentials, _) = cloud(&fake, TOKEN, json!({})).await;
    for (url, kind) in [
        (
            "https://acme.atlassian.net/wiki/spaces/OPS/pages/101/Checkout+service+runbook",
            "page_url",
        ),
        (
            "https://acme.atlassian.net/wiki/pages/viewpage.action?pageId=101",
            "page_url",
        ),
        (
            "https://acme.atlassian.net/wiki/display/OPS/Checkout+service+runbook",
            "display",
        ),
    ] {
        let output = query(
            &connector,
            &credentials,
            "resolve_page_url",
            json!({"url": url}),
        )
        .await
        .unwrap();
        assert_eq!(output.data["page_id"], RUNBOOK_PAGE_ID, "{url}");
        assert_eq!(output.data["recognised_as"], kind, "{url}");
    }
    let error = query(
        &connector,
        &credentials,
        "resolve_page_url",
        json!({"url": "https://acme.atlassian.net/wiki/x/ABC123"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        error.message(),
        "Unable to parse Confluence page ID from URL"
    );
    assert!(error
        .hint()
        .unwrap()
        .starts_with("Use full page URL instead of short link (Cloud only)"));
    let error = query(
        &connector,
        &credentials,
        "get_page",
        json!({"url": "https://other.atlassian.net/wiki/spaces/OPS/pages/101"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.message(),
        "Confluence page URL does not match configured base URL"
    );
    assert!(error
        .hint()
        .unwrap()
        .starts_with("Verify the page is from your connected Confluence instance"));
    let error = query(
        &connector,
        &credentials,
        "resolve_page_url",
        json!({"url": "checkout runbook"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.message(), "Invalid Confluence page URL");
}

#[tokio::test]
async fn data_center_short_links_are_resolved_by_one_authenticated_redirect() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (connector, credentials, _) = data_center(&fake, TOKEN).await;
    let base = fake.base_url();
    fake.clear_requests();
    let output = query(
        &connector,
        &credentials,
        "resolve_page_url",
        json!({"url": format!("{base}/x/{SHORT_LINK}")}),
    )
    .await
    .unwrap();
    assert_eq!(output.data["page_id"], RUNBOOK_PAGE_ID);
    assert_eq!(output.data["recognised_as"], "short_link");
    assert_eq!(
        output.data["redirected_to"],
        format!("{base}/pages/viewpage.action?pageId={RUNBOOK_PAGE_ID}")
    );
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        1,
        "one request, its redirect not followed: {requests:?}"
    );
    assert!(requests[0].has_header("authorization"));

    // A redirect to a /display/ URL is looked up by title.
    let output = query(
        &connector,
        &credentials,
        "resolve_page_url",
        json!({"url": format!("{base}/x/{SHORT_LINK_TO_DISPLAY}")}),
    )
    .await
    .unwrap();
    assert_eq!(output.data["page_id"], RUNBOOK_PAGE_ID);
    let lookup = fake.requests_to("/rest/api/content");
    assert_eq!(
        lookup.last().unwrap().query_value("title"),
        Some(RUNBOOK_TITLE)
    );
    assert_eq!(lookup.last().unwrap().query_value("spaceKey"), Some("OPS"));

    // A redirect off the configured site is refused with the guide's message.
    let error = query(
        &connector,
        &credentials,
        "resolve_page_url",
        json!({"url": format!("{base}/x/{SHORT_LINK_ELSEWHERE}")}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.message(),
        "Confluence page URL does not match configured base URL"
    );
    assert!(error.hint().unwrap().contains("evil.example"));

    for (url, expected) in [
        (
            format!("{base}/display/OPS/Checkout+service+runbook"),
            RUNBOOK_PAGE_ID,
        ),
        (
            format!("{base}/pages/viewpage.action?pageId={POSTMORTEM_PAGE_ID}"),
            POSTMORTEM_PAGE_ID,
        ),
    ] {
        let output = query(
            &connector,
            &credentials,
            "resolve_page_url",
            json!({"url": url}),
        )
        .await
        .unwrap();
        assert_eq!(output.data["page_id"], expected);
    }
    let error = query(
        &connector,
        &credentials,
        "resolve_page_url",
        json!({"url": format!("{base}/display/OPS/No+Such+Page")}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let error = query(
        &connector,
        &credentials,
        "resolve_page_url",
        json!({"url": "https://confluence.elsewhere.example/x/AbC1"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.message(),
        "Confluence page URL does not match configured base URL"
    );
}

// ---- pages and runbooks ----

#[tokio::test]
async fn pages_come_as_storage_and_markdown_with_a_cap() {
    let fake = FakeConfluence::start(TOKEN).await;
    for (connector, credentials, url_prefix) in [
        {
            let (c, cr, _) = cloud(&fake, TOKEN, json!({})).await;
            (
                c,
                cr,
                "https://acme.atlassian.net/wiki/spaces/OPS/pages/101/",
            )
        },
        {
            let (c, cr, _) = data_center(&fake, TOKEN).await;
            (c, cr, "/display/OPS/")
        },
    ] {
        let page = query(
            &connector,
            &credentials,
            "get_page",
            json!({"page_id": RUNBOOK_PAGE_ID}),
        )
        .await
        .unwrap();
        assert_eq!(page.data["title"], RUNBOOK_TITLE);
        assert_eq!(page.data["labels"], json!(["runbook"]));
        assert!(
            page.data["url"].as_str().unwrap().contains(url_prefix),
            "{}",
            page.data["url"]
        );
        assert!(page.data["storage"]
            .as_str()
            .unwrap()
            .contains("ac:structured-macro"));
        let markdown = page.data["markdown"].as_str().unwrap();
        assert!(markdown.contains("## Diagnose"), "{markdown}");
        assert!(
            markdown.contains("kubectl get pods -n checkout"),
            "{markdown}"
        );
        assert!(!page.truncated);

        let short = query(
            &connector,
            &credentials,
            "get_page",
            json!({"page_id": RUNBOOK_PAGE_ID, "max_chars": 500, "include_storage": false}),
        )
        .await
        .unwrap();
        assert!(short.truncated);
        assert_eq!(short.data["body_truncated"], true);
        assert!(short.data.get("storage").is_none());
        assert_eq!(
            short.data["markdown"].as_str().unwrap().chars().count(),
            500
        );

        let error = query(
            &connector,
            &credentials,
            "get_page",
            json!({"page_id": "101", "max_chars": 10}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert_eq!(error.field(), Some("max_chars"));
        let error = query(
            &connector,
            &credentials,
            "get_page",
            json!({"page_id": "101", "url": "https://x"}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.field(), Some("page_id"));
    }
}

#[tokio::test]
async fn runbooks_are_sections_and_numbered_steps_with_commands() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (connector, credentials, _) = data_center(&fake, TOKEN).await;
    let url = format!("{}/x/{SHORT_LINK}", fake.base_url());
    let book = query(&connector, &credentials, "get_runbook", json!({"url": url}))
        .await
        .unwrap();
    let headings: Vec<&str> = book.data["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["heading"].as_str().unwrap())
        .collect();
    assert_eq!(
        headings,
        ["Checkout service runbook", "Diagnose", "Mitigate"]
    );
    let steps = book.data["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{steps:#?}");
    assert_eq!(steps[0]["number"], 1);
    assert_eq!(steps[0]["section"], "Diagnose");
    assert_eq!(
        steps[0]["commands"],
        json!([
            "kubectl get pods -n checkout",
            "kubectl logs deploy/checkout -n checkout --since=10m"
        ])
    );
    assert_eq!(steps[0]["kind"], "safe_automated");
    assert_eq!(steps[1]["kind"], "manual");
    assert_eq!(
        steps[2]["commands"],
        json!(["kubectl rollout restart deploy/checkout -n checkout"])
    );
    assert_eq!(steps[2]["kind"], "risky_automated");
    assert_eq!(
        steps[3]["commands"],
        json!(["helm rollback checkout 0 -n checkout"])
    );

    let capped = query(
        &connector,
        &credentials,
        "get_runbook",
        json!({"page_id": RUNBOOK_PAGE_ID, "max_steps": 2}),
    )
    .await
    .unwrap();
    assert_eq!(capped.data["steps"].as_array().unwrap().len(), 2);
    assert!(capped.truncated);
}

// ---- search, helpers and paging ----

#[tokio::test]
async fn searches_escape_user_text_and_page_through_results() {
    let fake = FakeConfluence::start(TOKEN).await;
    for (connector, credentials, cursor_param) in [
        {
            let (c, cr, _) = cloud(&fake, TOKEN, json!({})).await;
            (c, cr, "cursor")
        },
        {
            let (c, cr, _) = data_center(&fake, TOKEN).await;
            (c, cr, "start")
        },
    ] {
        fake.clear_requests();
        // Quotes and a backslash stay inside the text literal: the fake parses it, no 400.
        let output = query(
            &connector,
            &credentials,
            "search_pages",
            json!({"text": r#"checkout" OR space = "SECRET \"#}),
        )
        .await
        .unwrap();
        assert_eq!(
            output.data["cql"],
            r#"text ~ "checkout\" OR space = \"SECRET \\" AND type = "page" ORDER BY lastmodified DESC"#
        );
        let sent = &fake
            .requests()
            .into_iter()
            .find(|r| r.path.ends_with("/content/search"))
            .unwrap();
        assert_eq!(sent.query_value("cql"), output.data["cql"].as_str());

        // 25 incident reviews plus the postmortem, 10 a page: three pages.
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut params = json!({"labels": ["incident"], "limit": 10});
            if let Some(cursor) = &cursor {
                params["cursor"] = json!(cursor);
            }
            let page = query(&connector, &credentials, "search_pages", params)
                .await
                .unwrap();
            pages += 1;
            ids.extend(
                page.data["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned()),
            );
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(ids.len(), REVIEW_PAGE_COUNT + 1);
        let searches: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/content/search"))
            .collect();
        assert!(
            searches.last().unwrap().query_value(cursor_param).is_some(),
            "{searches:?}"
        );

        let error = query(
            &connector,
            &credentials,
            "search_pages",
            json!({"text": "x", "limit": 51}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.field(), Some("limit"));
        let error = query(&connector, &credentials, "search_pages", json!({}))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        let error = query(
            &connector,
            &credentials,
            "search_pages",
            json!({"space_key": "OPS\" OR x"}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.field(), Some("space_key"));
        // Confluence's own CQL error passes through.
        let error = query(
            &connector,
            &credentials,
            "search_pages",
            json!({"cql": "nonsense ~~"}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.message().contains("Could not parse cql"), "{error}");
    }
}

#[tokio::test]
async fn incident_and_runbook_helpers_use_the_label_sets() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (connector, credentials, _) = data_center(&fake, TOKEN).await;
    let similar = query(
        &connector,
        &credentials,
        "find_similar_incidents",
        json!({"text": "[FIRING] checkout 502 errors on 10.0.3.17 at 2026-03-02T10:15:00Z"}),
    )
    .await
    .unwrap();
    let cql = similar.data["cql"].as_str().unwrap();
    assert!(cql.starts_with(r#"text ~ "checkout errors" AND label in ("postmortem","rca","runbook","incident","outage","sev1","sev2") AND type = "page" AND created >= now("-365d")"#), "{cql}");
    let ids: Vec<&str> = similar.data["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [POSTMORTEM_PAGE_ID],
        "the runbook is older than a year"
    );
    let wider = query(
        &connector,
        &credentials,
        "find_similar_incidents",
        json!({"text": "checkout errors", "within_days": 3650}),
    )
    .await
    .unwrap();
    assert_eq!(wider.data["results"].as_array().unwrap().len(), 2);

    let runbooks = query(
        &connector,
        &credentials,
        "find_runbooks",
        json!({"service": "checkout"}),
    )
    .await
    .unwrap();
    assert!(runbooks.data["cql"]
        .as_str()
        .unwrap()
        .contains(r#"label in ("runbook","playbook","sop","procedure")"#));
    let ids: Vec<&str> = runbooks.data["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&RUNBOOK_PAGE_ID), "{ids:?}");
    assert!(!ids.contains(&POSTMORTEM_PAGE_ID), "{ids:?}");
}

#[tokio::test]
async fn spaces_page_through_on_cloud_and_data_center() {
    let fake = FakeConfluence::start(TOKEN).await;
    for (connector, credentials) in [
        {
            let (c, cr, _) = cloud(&fake, TOKEN, json!({})).await;
            (c, cr)
        },
        {
            let (c, cr, _) = data_center(&fake, TOKEN).await;
            (c, cr)
        },
    ] {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = json!({"limit": 5});
            if let Some(cursor) = &cursor {
                params["cursor"] = json!(cursor);
            }
            let page = query(&connector, &credentials, "list_spaces", params)
                .await
                .unwrap();
            keys.extend(
                page.data["spaces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["key"].as_str().unwrap().to_owned()),
            );
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(keys.len(), SPACE_COUNT);
        assert_eq!(keys[0], "OPS");
        let error = query(
            &connector,
            &credentials,
            "list_spaces",
            json!({"limit": 101}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.field(), Some("limit"));
    }
}

// ---- error mapping ----

#[tokio::test]
async fn provider_errors_map_to_kinds_with_the_guide_wording() {
    let fake = FakeConfluence::start(TOKEN).await;
    let (cloud_connector, cloud_credentials, _) = cloud(&fake, TOKEN, json!({})).await;
    let (dc_connector, dc_credentials, _) = data_center(&fake, TOKEN).await;
    let page = format!("/ex/confluence/{DEFAULT_CLOUD_ID}/wiki/api/v2/pages/{RUNBOOK_PAGE_ID}");

    let error = query(
        &cloud_connector,
        &cloud_credentials,
        "get_page",
        json!({"page_id": RESTRICTED_PAGE_ID}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(
        error.message().contains("User not permitted to view page"),
        "{error}"
    );
    let error = query(
        &dc_connector,
        &dc_credentials,
        "get_page",
        json!({"page_id": RESTRICTED_PAGE_ID}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    let error = query(
        &dc_connector,
        &dc_credentials,
        "get_page",
        json!({"page_id": "424242"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);

    for _ in 0..2 {
        fake.inject(
            &page,
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        );
    }
    let error = query(
        &cloud_connector,
        &cloud_credentials,
        "get_page",
        json!({"page_id": RUNBOOK_PAGE_ID}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(1)));
    // A 500 is not retried (the request may have been processed); 502-504 are.
    fake.inject(&page, Fault::ServerError);
    let error = query(
        &cloud_connector,
        &cloud_credentials,
        "get_page",
        json!({"page_id": RUNBOOK_PAGE_ID}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.provider_status(), Some(500));
    // One 503 is retried away.
    fake.inject(&page, Fault::Unavailable);
    query(
        &cloud_connector,
        &cloud_credentials,
        "get_page",
        json!({"page_id": RUNBOOK_PAGE_ID}),
    )
    .await
    .unwrap();

    fake.expire_tokens();
    // Cloud: auth_failed, which the OAuth engine answers with one refresh and a retry.
    let error = query(
        &cloud_connector,
        &cloud_credentials,
        "list_spaces",
        json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert_eq!(error.message(), "Confluence credentials expired");
    assert!(error
        .hint()
        .unwrap()
        .starts_with("Reconnect via the Connectors page"));
    // Data Center: nothing to refresh, the person must reconnect.
    let error = query(&dc_connector, &dc_credentials, "list_spaces", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth);
    assert_eq!(error.message(), "Confluence credentials expired");
    assert!(!error.to_string().contains(TOKEN));
}

// ---- the address policy for Data Center base URLs ----

#[tokio::test]
async fn internal_base_urls_are_refused_naming_host_and_rule() {
    let connector = connector_from_env("", "");
    for (base_url, reason) in [
        ("https://127.0.0.1", "127.0.0.1 is a loopback address"),
        (
            "https://10.0.0.1/confluence",
            "10.0.0.1 is a private address (RFC 1918)",
        ),
        (
            "https://169.254.169.254",
            "169.254.169.254 is a cloud metadata address",
        ),
        ("https://[::1]:8090", "::1 is a loopback address"),
        ("http://confluence.example.com", "plain http"),
    ] {
        let error = connector
            .authenticate(form(
                json!({"base_url": base_url, "personal_access_token": TOKEN}),
            ))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{base_url}");
        assert_eq!(error.field(), Some("base_url"), "{base_url}");
        assert!(error.message().contains(reason), "{base_url}: {error}");
        assert!(
            error
                .message()
                .contains("PATCHBAY_ALLOWED_PRIVATE_NETWORKS"),
            "{base_url}: {error}"
        );
        assert!(!error.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused_where_the_request_goes() {
    let fake = FakeConfluence::start(TOKEN).await;
    let port = fake.server().address().port();
    let connector = connector_from_env("", "");
    let mut credentials = connector
        .authenticate(form(json!({"base_url": format!("https://localhost:{port}"), "personal_access_token": TOKEN})))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    let pat = check(&report, "pat");
    assert!(
        pat.detail.contains("localhost resolves to"),
        "{}",
        pat.detail
    );
    assert!(pat.detail.contains("a loopback address"), "{}", pat.detail);
    let error = query(&connector, &credentials, "list_spaces", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("base_url"));
    assert!(
        fake.requests().is_empty(),
        "nothing reached the fake: {:?}",
        fake.requests()
    );
}

#[tokio::test]
async fn the_allowlist_admits_exactly_what_it_names() {
    let policy = AddressPolicy::parse("127.0.0.1/32").unwrap();
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    assert!(policy.check(ip("127.0.0.1")).is_ok());
    for refused in ["127.0.0.2", "10.0.0.1", "169.254.169.254", "::1"] {
        let blocked = policy.check(ip(refused)).unwrap_err();
        assert_eq!(blocked.address(), ip(refused));
    }

    let fake = FakeConfluence::start(TOKEN).await;
    let allowed = connector_from_env("", "127.0.0.1/32");
    let mut credentials = allowed
        .authenticate(form(
            json!({"base_url": fake.base_url(), "personal_access_token": TOKEN}),
        ))
        .await
        .unwrap();
    assert!(allowed
        .validate(&ctx(), &mut credentials)
        .await
        .unwrap()
        .passed());
    // The address next to the allowed one is refused at the request, before connecting.
    let port = fake.server().address().port();
    let mut neighbour = allowed
        .authenticate(form(
            json!({"base_url": format!("http://127.0.0.2:{port}"), "personal_access_token": TOKEN}),
        ))
        .await;
    if let Ok(credentials) = &mut neighbour {
        let report = allowed.validate(&ctx(), credentials).await.unwrap();
        assert!(
            check(&report, "pat")
                .detail
                .contains("127.0.0.2 is a loopback address"),
            "{report:?}"
        );
    } else {
        assert!(neighbour
            .unwrap_err()
            .message()
            .contains("127.0.0.2 is a loopback address"));
    }
    // Without the allowlist the fake's own address is refused at connect time.
    let error = connector_from_env("", "")
        .authenticate(form(
            json!({"base_url": fake.base_url(), "personal_access_token": TOKEN}),
        ))
        .await
        .unwrap_err();
    assert!(
        error
            .message()
            .contains("PATCHBAY_ALLOWED_PRIVATE_NETWORKS=127.0.0.1/32"),
        "{error}"
    );
}

// ---- Atlassian's published OAuth facts ----

/// Atlassian's 3LO facts (see `fixtures/README.md`).
fn vectors() -> Value {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/atlassian_confluence.json"
    ));
    serde_json::from_str(text).unwrap()
}

#[test]
fn the_oauth_description_follows_atlassians_documented_flow() {
    let vectors = vectors();
    let oauth = &vectors["oauth_3lo"];
    let spec = DESCRIPTOR.oauth.unwrap();
    let authorize = oauth["authorize"].as_str().unwrap();
    assert!(
        authorize.starts_with(&format!("GET {}?", spec.authorize_url)),
        "{authorize}"
    );
    for (name, value) in spec.extra_authorize_params {
        assert!(
            authorize.contains(&format!("{name}={value}")),
            "{name} in {authorize}"
        );
    }
    let token = oauth["token"].as_str().unwrap();
    assert!(
        token.starts_with(&format!("POST {}", spec.token_url)),
        "{token}"
    );
    assert!(token.contains("Content-Type: application/json"));
    assert_eq!(spec.client_auth, ClientAuthStyle::JsonBody);
    assert!(oauth["refresh"]
        .as_str()
        .unwrap()
        .contains("offline_access"));
    assert!(spec.scopes.contains(&"offline_access"));
    assert!(oauth["accessible_resources"]
        .as_str()
        .unwrap()
        .contains(patchbay_connector_confluence::client::ACCESSIBLE_RESOURCES_URL));
    assert!(oauth["api_base_with_oauth"]
        .as_str()
        .unwrap()
        .starts_with("https://api.atlassian.com/ex/confluence/{cloudid}/wiki/"));
    for scope in oauth["scopes"]["granular_v2_examples"].as_array().unwrap() {
        let scope = scope.as_str().unwrap();
        if spec.scopes.contains(&scope) {
            assert!(
                scope.starts_with("read:"),
                "only read scopes are requested: {scope}"
            );
        }
    }
}

#[test]
fn the_documented_accessible_resources_example_parses_with_escaped_slashes() {
    let example = vectors()["oauth_3lo"]["accessible_resources_example_jira"].to_string();
    let escaped = example.replace('/', "\\/");
    let sites: Vec<patchbay_connector_confluence::client::Site> =
        serde_json::from_str(&escaped).unwrap();
    assert_eq!(sites[0].id, "1324a887-45db-1bf4-1e99-ef0ff456d421");
    assert_eq!(sites[0].url, "https://your-domain.atlassian.net");
    // A Jira-only site is not a Confluence site.
    assert!(!sites[0].has_confluence());
}
