//! The query operations over Confluence, declared once with
//! [`patchbay_core::operations!`]: names, descriptions, parameter schemas and
//! dispatch come from the declaration; parameter checks, opaque cursors and output
//! caps from the toolkit.

use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::client::ConfluenceClient;
use crate::render;
use crate::urls::{self, PageRef};
use crate::CONNECTOR_ID;

/// Default and largest page size of the searches (Confluence caps CQL pages at 50 here).
pub const DEFAULT_SEARCH_LIMIT: u32 = 10;
/// Default page size of `list_spaces`.
pub const DEFAULT_SPACE_LIMIT: u32 = 25;
/// Default number of characters of a page body returned (storage and Markdown each).
pub const DEFAULT_MAX_CHARS: u32 = 20_000;
/// Default look-back of `find_similar_incidents`, in days.
pub const DEFAULT_INCIDENT_DAYS: u32 = 365;
/// Labels that mark postmortems and incident write-ups.
pub const INCIDENT_LABELS: &[&str] = &[
    "postmortem",
    "rca",
    "runbook",
    "incident",
    "outage",
    "sev1",
    "sev2",
];
/// Labels that mark runbooks.
pub const RUNBOOK_LABELS: &[&str] = &["runbook", "playbook", "sop", "procedure"];
/// Longest keyword string sent in a similar-incident search.
pub const MAX_KEYWORD_CHARS: usize = 200;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_>,
    /// Turn a Confluence page link into its page id and title: full Cloud and Data Center
    /// page URLs, viewpage.action?pageId=…, Data Center /display/KEY/Title and Data Center
    /// short links /x/…. Cloud short links cannot be resolved; use the full page URL.
    read resolve_page_url(ResolvePageUrlParams);
    /// Read one page by id or URL: title, space, version, labels, link, its storage-format
    /// HTML and a Markdown rendering (each cut to `max_chars`).
    read get_page(GetPageParams);
    /// Read a page as a runbook: Markdown sections and numbered steps, each with the shell
    /// commands found in its code blocks and whether running them is manual, safe or risky.
    read get_runbook(GetRunbookParams);
    /// Search pages with CQL built from plain text, title, space and labels (text is escaped),
    /// or an explicit `cql` query; newest first, a page at a time.
    read search_pages(SearchPagesParams), paged;
    /// Find postmortems and incident pages that resemble an alert: its text reduced to
    /// keywords (timestamps, ids, addresses removed), pages labelled postmortem, rca,
    /// runbook, incident, outage, sev1 or sev2 created in the last `within_days` days.
    read find_similar_incidents(SimilarIncidentsParams), paged;
    /// Find runbooks for a service: pages matching "<service> runbook" labelled runbook,
    /// playbook, sop or procedure.
    read find_runbooks(FindRunbooksParams), paged;
    /// List the spaces the connected user can see, a page at a time.
    read list_spaces(ListSpacesParams), paged;
}

/// Parameters of `resolve_page_url`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolvePageUrlParams {
    /// The page URL, e.g. https://company.atlassian.net/wiki/spaces/OPS/pages/123456/Title.
    pub url: String,
}

/// Which page: an id or a URL (exactly one).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPageParams {
    /// The page id (digits).
    #[serde(default)]
    pub page_id: Option<String>,
    /// A page URL, resolved as `resolve_page_url` does.
    #[serde(default)]
    pub url: Option<String>,
    /// Characters of storage HTML and of Markdown to return, 500 to 100000 (default 20000).
    #[serde(default = "default_max_chars")]
    #[schemars(range(min = 500, max = 100000))]
    pub max_chars: u32,
    /// Whether to return the storage-format HTML as well as the Markdown (default true).
    #[serde(default = "default_true")]
    pub include_storage: bool,
}

/// Parameters of `get_runbook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRunbookParams {
    /// The page id (digits).
    #[serde(default)]
    pub page_id: Option<String>,
    /// A page URL, resolved as `resolve_page_url` does.
    #[serde(default)]
    pub url: Option<String>,
    /// Most steps to return, 1 to 200 (default 50).
    #[serde(default = "default_max_steps")]
    #[schemars(range(min = 1, max = 200))]
    pub max_steps: u32,
}

/// Parameters of `search_pages`; give at least one filter.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchPagesParams {
    /// Words to find in page text (escaped into `text ~ "…"`).
    #[serde(default)]
    pub text: Option<String>,
    /// Words to find in page titles (escaped into `title ~ "…"`).
    #[serde(default)]
    pub title: Option<String>,
    /// Only pages in this space (its key, e.g. OPS).
    #[serde(default)]
    pub space_key: Option<String>,
    /// Only pages with any of these labels (at most 10).
    #[serde(default)]
    #[schemars(length(max = 10))]
    pub labels: Vec<String>,
    /// Only pages changed in the last this many days, 1 to 3650.
    #[serde(default)]
    #[schemars(range(min = 1, max = 3650))]
    pub updated_within_days: Option<u32>,
    /// A complete CQL query, used as given instead of the filters above
    /// (e.g. `type = page AND label = "runbook"`).
    #[serde(default)]
    pub cql: Option<String>,
    /// Results per page, 1 to 50 (default 10).
    #[serde(default = "default_search_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u32,
}

/// Parameters of `find_similar_incidents`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarIncidentsParams {
    /// The alert or incident text (title, description); reduced to keywords.
    #[schemars(length(min = 1, max = 4000))]
    pub text: String,
    /// Only pages created in the last this many days, 1 to 3650 (default 365).
    #[serde(default = "default_incident_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub within_days: u32,
    /// Only pages in this space.
    #[serde(default)]
    pub space_key: Option<String>,
    /// Results per page, 1 to 50 (default 10).
    #[serde(default = "default_search_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u32,
}

/// Parameters of `find_runbooks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindRunbooksParams {
    /// The service name, e.g. checkout.
    #[schemars(length(min = 1, max = 200))]
    pub service: String,
    /// Only pages in this space.
    #[serde(default)]
    pub space_key: Option<String>,
    /// Results per page, 1 to 50 (default 10).
    #[serde(default = "default_search_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u32,
}

/// Parameters of `list_spaces`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSpacesParams {
    /// Spaces per page, 1 to 100 (default 25).
    #[serde(default = "default_space_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

fn default_max_chars() -> u32 {
    DEFAULT_MAX_CHARS
}
fn default_true() -> bool {
    true
}
fn default_max_steps() -> u32 {
    50
}
fn default_search_limit() -> u32 {
    DEFAULT_SEARCH_LIMIT
}
fn default_space_limit() -> u32 {
    DEFAULT_SPACE_LIMIT
}
fn default_incident_days() -> u32 {
    DEFAULT_INCIDENT_DAYS
}

/// A CQL string literal: `text` in double quotes with `\` and `"` escaped.
pub fn cql_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            // Line breaks end nothing in CQL but read badly in logs.
            '\n' | '\r' | '\t' => quoted.push(' '),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// `label in ("a","b")`.
fn label_clause(labels: &[&str]) -> String {
    let quoted: Vec<String> = labels.iter().map(|label| cql_string(label)).collect();
    format!("label in ({})", quoted.join(","))
}

fn is_noise(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    let digits = word.bytes().filter(u8::is_ascii_digit).count();
    let hex = !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_hexdigit());
    // Timestamps, dates, durations, numbers and addresses.
    digits * 2 >= word.len()
        // UUIDs and hashes.
        || (hex && word.len() >= 8)
        || (word.len() >= 32 && word.split('-').all(|part| part.bytes().all(|b| b.is_ascii_hexdigit())))
        // Base64 and other long opaque tokens.
        || (word.len() >= 24 && !word.contains(' ') && word.bytes().any(|b| b.is_ascii_digit()))
        || word.len() < 2
        || [
            "the", "and", "for", "with", "from", "this", "that", "alert", "firing", "resolved",
            "on", "at", "in", "of", "to", "is", "an", "by",
        ]
            .contains(&lower.as_str())
}

/// Keywords of an alert text: timestamps, UUIDs, IPs, hex and base64 removed,
/// at most [`MAX_KEYWORD_CHARS`] characters.
pub fn keywords(text: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || ",;()[]{}<>\"'`|=".contains(c)) {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if word.is_empty() || is_noise(word) {
            continue;
        }
        // IPv4/IPv6 and host:port pairs.
        if word.contains(':')
            && word
                .chars()
                .filter(|c| c.is_ascii_hexdigit() || *c == ':' || *c == '.')
                .count()
                == word.len()
        {
            continue;
        }
        if word.split('.').count() == 4 && word.split('.').all(|part| part.parse::<u8>().is_ok()) {
            continue;
        }
        if kept.iter().any(|seen| seen.eq_ignore_ascii_case(word)) {
            continue;
        }
        let length: usize = kept.iter().map(|k| k.len() + 1).sum();
        if length + word.len() > MAX_KEYWORD_CHARS {
            break;
        }
        kept.push(word.to_owned());
    }
    kept.join(" ")
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::invalid_input(field, message).with_connector(CONNECTOR_ID)
}

/// The space-key clause, with the key checked (letters, digits, `~`, `_`, `-`).
fn space_clause(space_key: Option<&str>) -> Result<Option<String>> {
    let Some(key) = space_key.map(str::trim).filter(|key| !key.is_empty()) else {
        return Ok(None);
    };
    if key.len() > 255
        || !key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '~' | '_' | '-'))
    {
        return Err(invalid(
            "space_key",
            format!("`space_key` must be a space key such as OPS; got `{key}`"),
        ));
    }
    Ok(Some(format!("space = {}", cql_string(key))))
}

/// The CQL of `search_pages`.
pub fn search_cql(params: &SearchPagesParams) -> Result<String> {
    if let Some(cql) = params
        .cql
        .as_deref()
        .map(str::trim)
        .filter(|cql| !cql.is_empty())
    {
        return Ok(cql.to_owned());
    }
    let mut clauses = Vec::new();
    if let Some(text) = params
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        clauses.push(format!("text ~ {}", cql_string(text)));
    }
    if let Some(title) = params
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        clauses.push(format!("title ~ {}", cql_string(title)));
    }
    if let Some(space) = space_clause(params.space_key.as_deref())? {
        clauses.push(space);
    }
    let labels: Vec<&str> = params
        .labels
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    if !labels.is_empty() {
        clauses.push(label_clause(&labels));
    }
    if clauses.is_empty() {
        return Err(invalid(
            "text",
            "`search_pages` needs `text`, `title`, `space_key`, `labels` or `cql`",
        )
        .with_hint("for example {\"text\": \"checkout 502\"} or {\"labels\": [\"runbook\"]}"));
    }
    clauses.push("type = \"page\"".to_owned());
    if let Some(days) = params.updated_within_days {
        clauses.push(format!("lastmodified >= now(\"-{days}d\")"));
    }
    Ok(format!(
        "{} ORDER BY lastmodified DESC",
        clauses.join(" AND ")
    ))
}

/// The CQL of `find_similar_incidents`.
pub fn similar_incidents_cql(params: &SimilarIncidentsParams) -> Result<String> {
    let words = keywords(&params.text);
    if words.is_empty() {
        return Err(invalid(
            "text",
            "`text` has no words left once timestamps, ids and addresses are removed",
        )
        .with_hint("pass the alert's title or description"));
    }
    let mut clauses = vec![
        format!("text ~ {}", cql_string(&words)),
        label_clause(INCIDENT_LABELS),
        "type = \"page\"".to_owned(),
        format!("created >= now(\"-{}d\")", params.within_days),
    ];
    if let Some(space) = space_clause(params.space_key.as_deref())? {
        clauses.push(space);
    }
    Ok(format!(
        "{} ORDER BY lastmodified DESC",
        clauses.join(" AND ")
    ))
}

/// The CQL of `find_runbooks`.
pub fn runbooks_cql(params: &FindRunbooksParams) -> Result<String> {
    let service = params.service.trim();
    if service.is_empty() {
        return Err(invalid("service", "`service` must name a service"));
    }
    let mut clauses = vec![
        format!("text ~ {}", cql_string(&format!("{service} runbook"))),
        label_clause(RUNBOOK_LABELS),
        "type = \"page\"".to_owned(),
    ];
    if let Some(space) = space_clause(params.space_key.as_deref())? {
        clauses.push(space);
    }
    Ok(format!(
        "{} ORDER BY lastmodified DESC",
        clauses.join(" AND ")
    ))
}

/// Cuts `text` to `max` characters; whether it was cut.
fn cut(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((end, _)) => (text[..end].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

/// The query parameters of a provider cursor (`start=10` or `cursor=…`).
fn cursor_pairs(cursor: Option<&str>) -> Vec<(String, String)> {
    cursor
        .map(|cursor| {
            url::form_urlencoded::parse(cursor.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// The next page's provider cursor: the `cursor` or `start` of `_links.next`, else
/// the next offset when the page was full and more results remain.
fn next_cursor(body: &Value, start: u64, returned: usize, limit: u32) -> Option<String> {
    if let Some(next) = body.pointer("/_links/next").and_then(Value::as_str) {
        let url = Url::parse("https://confluence.invalid")
            .ok()?
            .join(next)
            .ok()?;
        for name in ["cursor", "start"] {
            if let Some((_, value)) = url.query_pairs().find(|(key, _)| key == name) {
                return Some(
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair(name, &value)
                        .finish(),
                );
            }
        }
        return None;
    }
    let returned = returned as u64;
    let total = body.get("totalSize").and_then(Value::as_u64);
    let full = returned >= u64::from(limit) && returned > 0;
    let more = total.map_or(full, |total| start + returned < total);
    (full && more).then(|| format!("start={}", start + returned))
}

fn labels_of(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|label| label.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn text_of(value: &Value, pointer: &str) -> Value {
    value.pointer(pointer).cloned().unwrap_or(Value::Null)
}

/// The query operations' handler: a client for one connection.
#[derive(Debug)]
pub struct Api<'a> {
    client: ConfluenceClient<'a>,
}

impl<'a> Api<'a> {
    /// A handler over `client`.
    pub fn new(client: ConfluenceClient<'a>) -> Self {
        Self { client }
    }

    /// The address of a page from its relative `webui` link.
    fn page_link(&self, webui: Option<&str>) -> Value {
        let (Some(webui), Ok(site)) = (webui, self.client.site_url()) else {
            return Value::Null;
        };
        let wiki = if self.client.config().is_cloud() {
            "/wiki"
        } else {
            ""
        };
        json!(format!("{site}{wiki}{webui}"))
    }

    /// The id of the page a `/display/KEY/Title` URL names.
    async fn page_id_by_title(&self, space_key: &str, title: &str) -> Result<String> {
        let body = self
            .client
            .get_json(
                "resolve_page_url",
                self.client.v1_url(&["content"])?,
                &[
                    ("spaceKey", space_key.to_owned()),
                    ("title", title.to_owned()),
                    ("type", "page".to_owned()),
                    ("limit", "1".to_owned()),
                ],
                "page lookup by title",
            )
            .await?;
        body.pointer("/results/0/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "Confluence has no page titled `{title}` in space {space_key}"
                ))
                .with_connector(CONNECTOR_ID)
                .with_hint("check the URL; the page may have been renamed or moved")
            })
    }

    /// A URL's page id, following one Data Center short-link redirect.
    async fn resolve(&self, url: &str) -> Result<(String, &'static str, Option<String>)> {
        let reference = urls::parse_page_url(url, self.client.config())?;
        let kind = reference.kind();
        match reference {
            PageRef::Id(id) => Ok((id, kind, None)),
            PageRef::Display { space_key, title } => {
                let id = self.page_id_by_title(&space_key, &title).await?;
                Ok((id, kind, None))
            }
            PageRef::ShortLink(code) => {
                let short = self.client.site_path_url(&["x", &code])?;
                let location = self.client.redirect_target(short.clone()).await?.ok_or_else(|| {
                    Error::invalid_input("url", urls::UNPARSABLE_URL)
                        .with_connector(CONNECTOR_ID)
                        .with_hint("Confluence did not redirect the short link to a page; use the full page URL")
                })?;
                let target = urls::redirect_url(&short, &location)?;
                match urls::parse_page_url(target.as_str(), self.client.config())? {
                    PageRef::Id(id) => Ok((id, kind, Some(target.to_string()))),
                    PageRef::Display { space_key, title } => {
                        let id = self.page_id_by_title(&space_key, &title).await?;
                        Ok((id, kind, Some(target.to_string())))
                    }
                    PageRef::ShortLink(_) => Err(Error::invalid_input("url", urls::UNPARSABLE_URL)
                        .with_connector(CONNECTOR_ID)
                        .with_hint(
                            "the short link redirects to another short link; use the full page URL",
                        )),
                }
            }
        }
    }

    /// The page id from `page_id` or `url` (exactly one).
    async fn page_id(&self, page_id: Option<&str>, url: Option<&str>) -> Result<String> {
        match (
            page_id.map(str::trim).filter(|id| !id.is_empty()),
            url.map(str::trim).filter(|u| !u.is_empty()),
        ) {
            (Some(id), None) if id.bytes().all(|b| b.is_ascii_digit()) && id.len() <= 20 => {
                Ok(id.to_owned())
            }
            (Some(id), None) => Err(invalid(
                "page_id",
                format!("`page_id` must be digits; got `{id}`"),
            )
            .with_hint("pass a page URL as `url` instead")),
            (None, Some(url)) => Ok(self.resolve(url).await?.0),
            _ => Err(invalid(
                "page_id",
                "give exactly one of `page_id` and `url`",
            )),
        }
    }

    /// One page: Cloud v2 with storage body and labels, Data Center v1 with expansions.
    async fn fetch_page(&self, id: &str) -> Result<Value> {
        if self.client.config().is_cloud() {
            let body = self
                .client
                .get_json(
                    "get_page",
                    self.client.v2_url(&["pages", id])?,
                    &[
                        ("body-format", "storage".to_owned()),
                        ("include-labels", "true".to_owned()),
                    ],
                    "page",
                )
                .await?;
            Ok(json!({
                "id": text_of(&body, "/id"),
                "title": text_of(&body, "/title"),
                "status": text_of(&body, "/status"),
                "space": { "id": text_of(&body, "/spaceId") },
                "version": text_of(&body, "/version/number"),
                "updated_at": text_of(&body, "/version/createdAt"),
                "url": self.page_link(body.pointer("/_links/webui").and_then(Value::as_str)),
                "labels": labels_of(&body, "/labels/results"),
                "storage": body.pointer("/body/storage/value").and_then(Value::as_str).unwrap_or_default(),
            }))
        } else {
            let body = self
                .client
                .get_json(
                    "get_page",
                    self.client.v1_url(&["content", id])?,
                    &[(
                        "expand",
                        "body.storage,version,space,metadata.labels".to_owned(),
                    )],
                    "page",
                )
                .await?;
            Ok(json!({
                "id": text_of(&body, "/id"),
                "title": text_of(&body, "/title"),
                "status": text_of(&body, "/status"),
                "space": { "key": text_of(&body, "/space/key"), "name": text_of(&body, "/space/name") },
                "version": text_of(&body, "/version/number"),
                "updated_at": text_of(&body, "/version/when"),
                "url": self.page_link(body.pointer("/_links/webui").and_then(Value::as_str)),
                "labels": labels_of(&body, "/metadata/labels/results"),
                "storage": body.pointer("/body/storage/value").and_then(Value::as_str).unwrap_or_default(),
            }))
        }
    }

    /// One page of a CQL search, shaped for an investigation.
    async fn search(
        &self,
        operation: &'static str,
        cql: String,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let pairs = cursor_pairs(cursor.as_deref());
        let start = pairs
            .iter()
            .find(|(name, _)| name == "start")
            .and_then(|(_, value)| value.parse::<u64>().ok())
            .unwrap_or(0);
        let mut query = vec![
            ("cql", cql.clone()),
            ("limit", limit.to_string()),
            ("expand", "space,version,metadata.labels".to_owned()),
        ];
        for (name, value) in &pairs {
            match name.as_str() {
                "start" => query.push(("start", value.clone())),
                "cursor" => query.push(("cursor", value.clone())),
                _ => {}
            }
        }
        let body = self
            .client
            .get_json(
                operation,
                self.client.v1_url(&["content", "search"])?,
                &query,
                "search",
            )
            .await?;
        let results: Vec<Value> = body
            .get("results")
            .and_then(Value::as_array)
            .map(|results| {
                results
                    .iter()
                    .map(|page| {
                        json!({
                            "id": text_of(page, "/id"),
                            "title": text_of(page, "/title"),
                            "type": text_of(page, "/type"),
                            "space_key": text_of(page, "/space/key"),
                            "space_name": text_of(page, "/space/name"),
                            "labels": labels_of(page, "/metadata/labels/results"),
                            "version": text_of(page, "/version/number"),
                            "updated_at": text_of(page, "/version/when"),
                            "url": self.page_link(page.pointer("/_links/webui").and_then(Value::as_str)),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let next = next_cursor(&body, start, results.len(), limit);
        Ok(OperationOutput::new(json!({
            "cql": cql,
            "results": results,
            "total": body.get("totalSize").cloned().unwrap_or(Value::Null),
        }))
        .with_next_page(next))
    }

    /// `resolve_page_url`.
    async fn resolve_page_url(&self, params: ResolvePageUrlParams) -> Result<OperationOutput> {
        let (id, kind, redirected_to) = self.resolve(&params.url).await?;
        Ok(OperationOutput::new(json!({
            "page_id": id,
            "recognised_as": kind,
            "redirected_to": redirected_to,
        })))
    }

    /// `get_page`.
    async fn get_page(&self, params: GetPageParams) -> Result<OperationOutput> {
        let id = self
            .page_id(params.page_id.as_deref(), params.url.as_deref())
            .await?;
        let mut page = self.fetch_page(&id).await?;
        let storage = page["storage"].as_str().unwrap_or_default().to_owned();
        let max = params.max_chars as usize;
        let markdown = render::storage_to_markdown(&storage);
        let (markdown_cut, markdown_truncated) = cut(&markdown, max);
        let (storage_cut, storage_truncated) = cut(&storage, max);
        page["markdown"] = json!(markdown_cut);
        page["markdown_chars"] = json!(markdown.chars().count());
        page["storage_chars"] = json!(storage.chars().count());
        if params.include_storage {
            page["storage"] = json!(storage_cut);
        } else if let Some(object) = page.as_object_mut() {
            object.remove("storage");
        }
        let truncated = markdown_truncated || (params.include_storage && storage_truncated);
        page["body_truncated"] = json!(truncated);
        Ok(OperationOutput::new(page).truncated(truncated))
    }

    /// `get_runbook`.
    async fn get_runbook(&self, params: GetRunbookParams) -> Result<OperationOutput> {
        let id = self
            .page_id(params.page_id.as_deref(), params.url.as_deref())
            .await?;
        let page = self.fetch_page(&id).await?;
        let markdown = render::storage_to_markdown(page["storage"].as_str().unwrap_or_default());
        let mut book = render::runbook(&markdown);
        let max = params.max_steps as usize;
        let truncated = book.steps.len() > max;
        book.steps.truncate(max);
        Ok(OperationOutput::new(json!({
            "id": page["id"],
            "title": page["title"],
            "url": page["url"],
            "labels": page["labels"],
            "version": page["version"],
            "updated_at": page["updated_at"],
            "sections": book.sections,
            "steps": book.steps,
            "steps_truncated": truncated,
        }))
        .truncated(truncated))
    }

    /// `search_pages`.
    async fn search_pages(
        &self,
        params: SearchPagesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let cql = search_cql(&params)?;
        self.search("search_pages", cql, params.limit, cursor).await
    }

    /// `find_similar_incidents`.
    async fn find_similar_incidents(
        &self,
        params: SimilarIncidentsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let cql = similar_incidents_cql(&params)?;
        self.search("find_similar_incidents", cql, params.limit, cursor)
            .await
    }

    /// `find_runbooks`.
    async fn find_runbooks(
        &self,
        params: FindRunbooksParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let cql = runbooks_cql(&params)?;
        self.search("find_runbooks", cql, params.limit, cursor)
            .await
    }

    /// `list_spaces`: Cloud v2 with cursors, Data Center v1 with offsets.
    async fn list_spaces(
        &self,
        params: ListSpacesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let pairs = cursor_pairs(cursor.as_deref());
        let start = pairs
            .iter()
            .find(|(name, _)| name == "start")
            .and_then(|(_, value)| value.parse::<u64>().ok())
            .unwrap_or(0);
        let mut query = vec![("limit", params.limit.to_string())];
        for (name, value) in &pairs {
            match name.as_str() {
                "start" => query.push(("start", value.clone())),
                "cursor" => query.push(("cursor", value.clone())),
                _ => {}
            }
        }
        let url = if self.client.config().is_cloud() {
            self.client.v2_url(&["spaces"])?
        } else {
            self.client.v1_url(&["space"])?
        };
        let body = self
            .client
            .get_json("list_spaces", url, &query, "space list")
            .await?;
        let spaces: Vec<Value> = body
            .get("results")
            .and_then(Value::as_array)
            .map(|spaces| {
                spaces
                    .iter()
                    .map(|space| {
                        json!({
                            "id": text_of(space, "/id"),
                            "key": text_of(space, "/key"),
                            "name": text_of(space, "/name"),
                            "type": text_of(space, "/type"),
                            "status": text_of(space, "/status"),
                            "url": self.page_link(space.pointer("/_links/webui").and_then(Value::as_str)),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let next = next_cursor(&body, start, spaces.len(), params.limit);
        Ok(OperationOutput::new(json!({ "spaces": spaces })).with_next_page(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cql_strings_escape_quotes_and_backslashes() {
        assert_eq!(cql_string(r#"say "hi" \ now"#), r#""say \"hi\" \\ now""#);
        let params = SearchPagesParams {
            text: Some(r#"x" OR space = "SECRET"#.to_owned()),
            title: None,
            space_key: None,
            labels: vec![],
            updated_within_days: None,
            cql: None,
            limit: 10,
        };
        assert_eq!(
            search_cql(&params).unwrap(),
            r#"text ~ "x\" OR space = \"SECRET" AND type = "page" ORDER BY lastmodified DESC"#
        );
    }

    #[test]
    fn alert_text_is_reduced_to_keywords() {
        let text = "FIRING: checkout-api 502 errors on 10.0.3.17:8080 at 2026-03-02T10:15:00Z \
                    request 3f2a9c1e-1b2c-4d5e-8f90-1234567890ab trace deadbeefcafebabe \
                    token dGhpcyBpcyBhIGJhc2U2NCBzdHJpbmc0Mg==";
        assert_eq!(keywords(text), "checkout-api errors request trace token");
    }

    #[test]
    fn helper_cql_uses_the_label_sets() {
        let cql = similar_incidents_cql(&SimilarIncidentsParams {
            text: "checkout latency".to_owned(),
            within_days: 365,
            space_key: None,
            limit: 10,
        })
        .unwrap();
        assert_eq!(
            cql,
            r#"text ~ "checkout latency" AND label in ("postmortem","rca","runbook","incident","outage","sev1","sev2") AND type = "page" AND created >= now("-365d") ORDER BY lastmodified DESC"#
        );
        let cql = runbooks_cql(&FindRunbooksParams {
            service: "checkout".to_owned(),
            space_key: Some("OPS".into()),
            limit: 5,
        })
        .unwrap();
        assert_eq!(
            cql,
            r#"text ~ "checkout runbook" AND label in ("runbook","playbook","sop","procedure") AND type = "page" AND space = "OPS" ORDER BY lastmodified DESC"#
        );
    }

    #[test]
    fn next_cursors_come_from_links_or_offsets() {
        let body = json!({"_links": {"next": "/wiki/api/v2/spaces?cursor=abc%3D&limit=2"}});
        assert_eq!(
            next_cursor(&body, 0, 2, 2).as_deref(),
            Some("cursor=abc%3D")
        );
        let body = json!({"_links": {"next": "/rest/api/space?start=20&limit=10"}});
        assert_eq!(next_cursor(&body, 10, 10, 10).as_deref(), Some("start=20"));
        let body = json!({"totalSize": 25});
        assert_eq!(next_cursor(&body, 20, 5, 10), None);
        assert_eq!(
            next_cursor(&json!({}), 0, 10, 10).as_deref(),
            Some("start=10")
        );
    }
}
