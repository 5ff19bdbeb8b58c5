//! Read-only query operations over the GitHub REST API, declared once with
//! [`patchbay_core::operations!`].
//!
//! Every operation declares its parameters as a struct whose doc comments and
//! ranges become the schema agents read. Lists follow `Link: rel="next"` up to a
//! per-call item limit and [`MAX_PAGES`] pages; the next cursor carries GitHub's
//! `page` of the first page not fully returned (items are not skipped, a few may
//! repeat). Every answer carries GitHub's `rate_limit_remaining`.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::GitHubClient;
use crate::CONNECTOR_ID;

/// The most pages one call reads.
pub const MAX_PAGES: u32 = 10;
/// The largest file content `get_file` returns.
pub const MAX_FILE_BYTES: usize = 100 * 1024;
/// The largest patch kept per changed file.
pub const MAX_PATCH_BYTES: usize = 8 * 1024;
/// GitHub's largest page.
const MAX_PER_PAGE: u32 = 100;
/// The page GitHub starts from when no cursor is given.
const FIRST_PAGE: &str = "1";

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_>,
    /// List repositories the token can see, most recently updated first (GET /user/repos).
    read list_repos(ListReposParams), paged;
    /// Read a file (base64-decoded, at most 100 KB) or list a directory at a ref (GET /repos/{owner}/{repo}/contents/{path}).
    read get_file(GetFileParams);
    /// List commits over the last 72 hours by default, filtered by branch, path or author; at most 300 (GET /repos/{owner}/{repo}/commits).
    read list_commits(ListCommitsParams), paged;
    /// Get one commit with its changed files, line counts and patches (capped) (GET /repos/{owner}/{repo}/commits/{sha}).
    read get_commit(GetCommitParams);
    /// List pull requests by state and base branch, most recently updated first by default (GET /repos/{owner}/{repo}/pulls).
    read list_pull_requests(ListPullRequestsParams), paged;
    /// Get one pull request with its changed files and patches (capped) (GET /repos/{owner}/{repo}/pulls/{number} and /files).
    read get_pull_request(GetPullRequestParams);
    /// List GitHub Actions workflow runs, newest first, by status and branch (GET /repos/{owner}/{repo}/actions/runs).
    read list_workflow_runs(ListWorkflowRunsParams), paged;
    /// List deployments, newest first, by environment and ref (GET /repos/{owner}/{repo}/deployments).
    read list_deployments(ListDeploymentsParams), paged;
    /// Search code with GitHub search syntax, e.g. `timeout repo:org/app` (GET /search/code; a much lower rate limit than other calls).
    read search_code(SearchCodeParams), paged;
}

/// What the operations run against: one connection's client, and the time that
/// relative windows (`now-72h`) are resolved against.
pub struct Api<'a> {
    client: GitHubClient<'a>,
    now: DateTime<Utc>,
}

impl<'a> Api<'a> {
    /// Operations through `client`, with relative times resolved against `now`.
    pub fn new(client: GitHubClient<'a>, now: DateTime<Utc>) -> Self {
        Self { client, now }
    }
}

fn default_limit() -> u32 {
    30
}

fn default_commit_limit() -> u32 {
    100
}

/// Parameters of `list_repos`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListReposParams {
    /// Comma-separated relationships: `owner`, `collaborator`, `organization_member` (default all three).
    #[serde(default)]
    pub affiliation: Option<String>,
    /// How many repositories to return, 1 to 500 (default 30).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `get_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetFileParams {
    /// Repository owner (user or organisation), e.g. `octo-org`.
    pub owner: String,
    /// Repository name, e.g. `checkout`.
    pub repo: String,
    /// Path inside the repository, e.g. `deploy/values.yaml`; empty lists the root.
    #[serde(default)]
    pub path: String,
    /// Branch, tag or commit SHA (default: the default branch).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
}

/// Parameters of `list_commits`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListCommitsParams {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Only commits after this time: `now-72h` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub since: Option<TimeBound>,
    /// Only commits before this time: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub until: Option<TimeBound>,
    /// Only commits touching this file or directory path.
    #[serde(default)]
    pub path: Option<String>,
    /// Only commits by this GitHub login or email.
    #[serde(default)]
    pub author: Option<String>,
    /// Branch or commit SHA to start from (default: the default branch).
    #[serde(default)]
    pub sha: Option<String>,
    /// How many commits to return, 1 to 300 (default 100).
    #[serde(default = "default_commit_limit")]
    #[schemars(range(min = 1, max = 300))]
    pub limit: u32,
}

/// Parameters of `get_commit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetCommitParams {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Commit SHA (full or abbreviated) or a branch name.
    pub sha: String,
}

/// Which pull requests to list.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullState {
    /// Open pull requests (default).
    #[default]
    Open,
    /// Closed and merged pull requests.
    Closed,
    /// Both.
    All,
}

/// How to order pull requests.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PullSort {
    /// By creation time.
    Created,
    /// By last update (default).
    #[default]
    Updated,
    /// By number of comments.
    Popularity,
    /// By age, for open pull requests updated in the last month.
    LongRunning,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending (default).
    #[default]
    Desc,
}

/// Parameters of `list_pull_requests`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListPullRequestsParams {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// `open` (default), `closed` or `all`.
    #[serde(default)]
    pub state: PullState,
    /// Only pull requests into this base branch.
    #[serde(default)]
    pub base: Option<String>,
    /// `created`, `updated` (default), `popularity` or `long-running`.
    #[serde(default)]
    pub sort: PullSort,
    /// `asc` or `desc` (default).
    #[serde(default)]
    pub direction: Direction,
    /// How many pull requests to return, 1 to 100 (default 30).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `get_pull_request`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPullRequestParams {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Pull request number.
    pub number: u64,
}

/// Parameters of `list_workflow_runs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListWorkflowRunsParams {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// A status or conclusion: `completed`, `in_progress`, `queued`, `failure`, `success`, `cancelled`, `timed_out`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Only runs for this branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// How many runs to return, 1 to 100 (default 30).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `list_deployments`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDeploymentsParams {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Only deployments to this environment, e.g. `production`.
    #[serde(default)]
    pub environment: Option<String>,
    /// Only deployments of this branch, tag or SHA.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// How many deployments to return, 1 to 100 (default 30).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `search_code`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchCodeParams {
    /// GitHub code search query, e.g. `connection timeout repo:octo-org/checkout language:go`.
    pub query: String,
    /// How many results to return, 1 to 100 (default 30).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// A list read across pages.
struct Listing {
    items: Vec<Value>,
    next_page: Option<String>,
    rate_limit_remaining: Option<u64>,
    total_count: Option<u64>,
}

impl Listing {
    fn into_output(self, extra: Map<String, Value>) -> OperationOutput {
        let mut data = extra;
        data.insert("count".into(), json!(self.items.len()));
        if let Some(total) = self.total_count {
            data.insert("total_count".into(), json!(total));
        }
        data.insert("items".into(), Value::Array(self.items));
        data.insert(
            "rate_limit_remaining".into(),
            json!(self.rate_limit_remaining),
        );
        OperationOutput::new(Value::Object(data)).with_next_page(self.next_page)
    }
}

/// Where a list's items sit in GitHub's answer.
#[derive(Clone, Copy)]
enum Items {
    /// The body is the array.
    Body,
    /// The body is an object with the array under this key and a `total_count`.
    Under(&'static str),
}

/// One list request: where the list is, how to ask for it and how to trim its items.
struct ListRequest<'r> {
    operation: &'static str,
    segments: &'r [&'r str],
    query: Vec<(&'static str, String)>,
    items_at: Items,
    project: fn(&Value) -> Value,
}

impl Api<'_> {
    /// Reads pages from `page` (GitHub's `page`, the first when `None`) until
    /// `limit` items, [`MAX_PAGES`] pages or the last page.
    async fn list(
        &self,
        request: ListRequest<'_>,
        limit: u32,
        page: Option<String>,
    ) -> Result<Listing> {
        let ListRequest {
            operation,
            segments,
            query,
            items_at,
            project,
        } = request;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let per_page = limit.min(MAX_PER_PAGE as usize);
        let mut page = page.unwrap_or_else(|| FIRST_PAGE.to_owned());
        let mut listing = Listing {
            items: Vec::new(),
            next_page: None,
            rate_limit_remaining: None,
            total_count: None,
        };
        let mut pages_read = 0;
        loop {
            if pages_read == MAX_PAGES {
                listing.next_page = Some(page);
                break;
            }
            pages_read += 1;
            let mut page_query = query.clone();
            page_query.push(("per_page", per_page.to_string()));
            page_query.push(("page", page.clone()));
            let response = self.client.get(operation, segments, &page_query).await?;
            listing.rate_limit_remaining = response.rate_limit_remaining;
            let array = match items_at {
                Items::Body => response.body.as_array(),
                Items::Under(key) => {
                    listing.total_count = response.body.get("total_count").and_then(Value::as_u64);
                    response.body.get(key).and_then(Value::as_array)
                }
            }
            .ok_or_else(|| {
                Error::internal(format!(
                    "GitHub answered {} with an unexpected shape (no list of items)",
                    display(segments)
                ))
                .with_connector(CONNECTOR_ID)
            })?;
            let wanted = limit.saturating_sub(listing.items.len());
            listing.items.extend(array.iter().take(wanted).map(project));
            if array.len() > wanted {
                listing.next_page = Some(page);
                break;
            }
            match response.next_page {
                Some(next) if listing.items.len() < limit => page = next,
                next => {
                    listing.next_page = next;
                    break;
                }
            }
        }
        Ok(listing)
    }

    async fn list_repos(
        &self,
        params: ListReposParams,
        page: Option<String>,
    ) -> Result<OperationOutput> {
        let affiliation = params
            .affiliation
            .unwrap_or_else(|| "owner,collaborator,organization_member".to_owned());
        let request = ListRequest {
            operation: "list_repos",
            segments: &["user", "repos"],
            query: vec![
                ("affiliation", affiliation),
                ("sort", "updated".to_owned()),
                ("direction", "desc".to_owned()),
            ],
            items_at: Items::Body,
            project: project_repo,
        };
        let listing = self.list(request, params.limit, page).await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn get_file(&self, params: GetFileParams) -> Result<OperationOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let path = params.path.trim_matches('/');
        let mut segments = vec!["repos", owner, repo, "contents"];
        if !path.is_empty() {
            segments.extend(path.split('/'));
        }
        let mut query = Vec::new();
        if let Some(git_ref) = nonblank(params.git_ref.as_deref()) {
            query.push(("ref", git_ref.to_owned()));
        }
        let response = self.client.get("get_file", &segments, &query).await?;
        let remaining = json!(response.rate_limit_remaining);
        if let Some(entries) = response.body.as_array() {
            let entries: Vec<Value> = entries
                .iter()
                .map(|entry| pick(entry, &["name", "path", "type", "size", "sha"]))
                .collect();
            return Ok(OperationOutput::new(
                json!({"type": "dir", "path": path, "entries": entries, "rate_limit_remaining": remaining}),
            ));
        }
        let body = &response.body;
        let mut data = pick(body, &["type", "name", "path", "sha", "size", "html_url"]);
        let encoded = body.get("content").and_then(Value::as_str).unwrap_or("");
        let encoding = body.get("encoding").and_then(Value::as_str).unwrap_or("");
        let mut truncated = false;
        let fields = data.as_object_mut().expect("pick returns an object");
        if body.get("type").and_then(Value::as_str) != Some("file") {
            // Symlinks and submodules carry a target instead of content.
            fields.extend(
                pick(body, &["target", "submodule_git_url"])
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            );
        } else if encoding == "base64" {
            let compact: String = encoded.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|error| {
                    Error::internal(format!(
                        "GitHub sent file content that is not base64: {error}"
                    ))
                    .with_connector(CONNECTOR_ID)
                })?;
            match String::from_utf8(bytes) {
                Ok(text) => {
                    let (content, cut) = truncate_text(&text, MAX_FILE_BYTES);
                    truncated = cut;
                    fields.insert("content".into(), json!(content));
                }
                Err(_) => {
                    fields.insert("binary".into(), json!(true));
                }
            }
        } else {
            // Files over 1 MB come with encoding `none` and no content.
            truncated = true;
            fields.insert("content".into(), Value::Null);
        }
        fields.insert("truncated".into(), json!(truncated));
        fields.insert("rate_limit_remaining".into(), remaining);
        Ok(OperationOutput::new(data).truncated(truncated))
    }

    async fn list_commits(
        &self,
        params: ListCommitsParams,
        page: Option<String>,
    ) -> Result<OperationOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let range = TimeRange::resolve_fields(
            ("since", params.since.as_ref()),
            ("until", params.until.as_ref()),
            TimeDelta::hours(72),
            self.now,
        )?;
        let mut query = vec![(
            "since",
            range.from.to_rfc3339_opts(SecondsFormat::Secs, true),
        )];
        // A default `until` is "now": sending it cut to whole seconds would drop
        // commits made in the current second.
        if params.until.is_some() {
            query.push(("until", range.to.to_rfc3339_opts(SecondsFormat::Secs, true)));
        }
        for (key, value) in [
            ("path", &params.path),
            ("author", &params.author),
            ("sha", &params.sha),
        ] {
            if let Some(value) = nonblank(value.as_deref()) {
                query.push((key, value.to_owned()));
            }
        }
        let request = ListRequest {
            operation: "list_commits",
            segments: &["repos", owner, repo, "commits"],
            query,
            items_at: Items::Body,
            project: project_commit,
        };
        let listing = self.list(request, params.limit, page).await?;
        let mut extra = Map::new();
        extra.insert("since".into(), json!(range.from.to_rfc3339()));
        extra.insert("until".into(), json!(range.to.to_rfc3339()));
        Ok(listing.into_output(extra))
    }

    async fn get_commit(&self, params: GetCommitParams) -> Result<OperationOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let sha = required("sha", &params.sha)?;
        let response = self
            .client
            .get("get_commit", &["repos", owner, repo, "commits", sha], &[])
            .await?;
        let mut data = project_commit(&response.body);
        let fields = data.as_object_mut().expect("projections are objects");
        fields.insert(
            "stats".into(),
            response.body.get("stats").cloned().unwrap_or(Value::Null),
        );
        let parents: Vec<Value> = response
            .body
            .get("parents")
            .and_then(Value::as_array)
            .map(|parents| {
                parents
                    .iter()
                    .map(|parent| pick(parent, &["sha"]))
                    .collect()
            })
            .unwrap_or_default();
        fields.insert("parents".into(), Value::Array(parents));
        let (files, truncated) = project_files(response.body.get("files"));
        fields.insert("files".into(), files);
        fields.insert(
            "rate_limit_remaining".into(),
            json!(response.rate_limit_remaining),
        );
        Ok(OperationOutput::new(data).truncated(truncated))
    }

    async fn list_pull_requests(
        &self,
        params: ListPullRequestsParams,
        page: Option<String>,
    ) -> Result<OperationOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let state = match params.state {
            PullState::Open => "open",
            PullState::Closed => "closed",
            PullState::All => "all",
        };
        let sort = match params.sort {
            PullSort::Created => "created",
            PullSort::Updated => "updated",
            PullSort::Popularity => "popularity",
            PullSort::LongRunning => "long-running",
        };
        let mut query = vec![
            ("state", state.to_owned()),
            ("sort", sort.to_owned()),
            ("direction", direction(params.direction).to_owned()),
        ];
        if let Some(base) = nonblank(params.base.as_deref()) {
            query.push(("base", base.to_owned()));
        }
        let request = ListRequest {
            operation: "list_pull_requests",
            segments: &["repos", owner, repo, "pulls"],
            query,
            items_at: Items::Body,
            project: project_pull,
        };
        let listing = self.list(request, params.limit, page).await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn get_pull_request(&self, params: GetPullRequestParams) -> Result<OperationOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let number = params.number.to_string();
        let pull = self
            .client
            .get(
                "get_pull_request",
                &["repos", owner, repo, "pulls", &number],
                &[],
            )
            .await?;
        let files = self
            .client
            .get(
                "get_pull_request",
                &["repos", owner, repo, "pulls", &number, "files"],
                &[("per_page", MAX_PER_PAGE.to_string())],
            )
            .await?;
        let mut data = project_pull(&pull.body);
        let fields = data.as_object_mut().expect("projections are objects");
        for key in [
            "body",
            "additions",
            "deletions",
            "changed_files",
            "commits",
            "mergeable_state",
            "merge_commit_sha",
        ] {
            fields.insert(
                key.into(),
                pull.body.get(key).cloned().unwrap_or(Value::Null),
            );
        }
        if let Some(Value::String(body)) = fields.get("body") {
            let (body, _) = truncate_text(body, MAX_PATCH_BYTES);
            fields.insert("body".into(), json!(body));
        }
        let (file_list, mut truncated) = project_files(Some(&files.body));
        if files.next_page.is_some() {
            truncated = true;
        }
        fields.insert("files".into(), file_list);
        fields.insert(
            "rate_limit_remaining".into(),
            json!(files.rate_limit_remaining),
        );
        Ok(OperationOutput::new(data).truncated(truncated))
    }

    async fn list_workflow_runs(
        &self,
        params: ListWorkflowRunsParams,
        page: Option<String>,
    ) -> Result<OperationOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let mut query = Vec::new();
        for (key, value) in [("status", &params.status), ("branch", &params.branch)] {
            if let Some(value) = nonblank(value.as_deref()) {
                query.push((key, value.to_owned()));
            }
        }
        let request = ListRequest {
            operation: "list_workflow_runs",
            segments: &["repos", owner, repo, "actions", "runs"],
            query,
            items_at: Items::Under("workflow_runs"),
            project: project_run,
        };
        let listing = self.list(request, params.limit, page).await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn list_deployments(
        &self,
        params: ListDeploymentsParams,
        page: Option<String>,
    ) -> Result<OperationOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let mut query = Vec::new();
        for (key, value) in [
            ("environment", &params.environment),
            ("ref", &params.git_ref),
        ] {
            if let Some(value) = nonblank(value.as_deref()) {
                query.push((key, value.to_owned()));
            }
        }
        let request = ListRequest {
            operation: "list_deployments",
            segments: &["repos", owner, repo, "deployments"],
            query,
            items_at: Items::Body,
            project: project_deployment,
        };
        let listing = self.list(request, params.limit, page).await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn search_code(
        &self,
        params: SearchCodeParams,
        page: Option<String>,
    ) -> Result<OperationOutput> {
        let query = required("query", &params.query)?;
        let request = ListRequest {
            operation: "search_code",
            segments: &["search", "code"],
            query: vec![("q", query.to_owned())],
            items_at: Items::Under("items"),
            project: project_code_result,
        };
        let listing = self.list(request, params.limit, page).await?;
        Ok(listing.into_output(Map::new()))
    }
}

fn display(segments: &[&str]) -> String {
    format!("/{}", segments.join("/"))
}

fn direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => "asc",
        Direction::Desc => "desc",
    }
}

fn nonblank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

fn required<'v>(field: &str, value: &'v str) -> Result<&'v str> {
    nonblank(Some(value)).ok_or_else(|| {
        Error::invalid_input(field, format!("`{field}` must not be empty"))
            .with_connector(CONNECTOR_ID)
    })
}

/// Validates an owner and repository name (one path segment each).
fn repository<'v>(owner: &'v str, repo: &'v str) -> Result<(&'v str, &'v str)> {
    let owner = required("owner", owner)?;
    let repo = required("repo", repo)?;
    for (field, value) in [("owner", owner), ("repo", repo)] {
        if value.contains('/') {
            return Err(Error::invalid_input(
                field,
                format!("`{field}` must be a single name without `/`, got `{value}`"),
            )
            .with_connector(CONNECTOR_ID)
            .with_hint(
                "give owner and repo separately, e.g. owner `octo-org` and repo `checkout`",
            ));
        }
    }
    Ok((owner, repo))
}

/// The first `limit` bytes of `text` at a character boundary, and whether it was cut.
fn truncate_text(text: &str, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text.to_owned(), false);
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text[..cut].to_owned(), true)
}

/// An object of the listed top-level fields (missing ones as `null`).
fn pick(value: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|key| {
                (
                    (*key).to_owned(),
                    value.get(*key).cloned().unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}

fn at(value: &Value, pointer: &str) -> Value {
    value.pointer(pointer).cloned().unwrap_or(Value::Null)
}

fn project_repo(repo: &Value) -> Value {
    pick(
        repo,
        &[
            "full_name",
            "private",
            "visibility",
            "default_branch",
            "description",
            "language",
            "archived",
            "html_url",
            "pushed_at",
            "updated_at",
        ],
    )
}

fn project_commit(commit: &Value) -> Value {
    let message = commit
        .pointer("/commit/message")
        .and_then(Value::as_str)
        .map(|message| truncate_text(message, 4096).0);
    json!({
        "sha": at(commit, "/sha"),
        "message": message,
        "author_name": at(commit, "/commit/author/name"),
        "author_email": at(commit, "/commit/author/email"),
        "author_login": at(commit, "/author/login"),
        "authored_at": at(commit, "/commit/author/date"),
        "committed_at": at(commit, "/commit/committer/date"),
        "html_url": at(commit, "/html_url"),
    })
}

fn project_pull(pull: &Value) -> Value {
    json!({
        "number": at(pull, "/number"),
        "title": at(pull, "/title"),
        "state": at(pull, "/state"),
        "draft": at(pull, "/draft"),
        "user": at(pull, "/user/login"),
        "head": at(pull, "/head/ref"),
        "head_sha": at(pull, "/head/sha"),
        "base": at(pull, "/base/ref"),
        "created_at": at(pull, "/created_at"),
        "updated_at": at(pull, "/updated_at"),
        "closed_at": at(pull, "/closed_at"),
        "merged_at": at(pull, "/merged_at"),
        "html_url": at(pull, "/html_url"),
    })
}

fn project_run(run: &Value) -> Value {
    json!({
        "id": at(run, "/id"),
        "name": at(run, "/name"),
        "workflow_id": at(run, "/workflow_id"),
        "run_number": at(run, "/run_number"),
        "event": at(run, "/event"),
        "status": at(run, "/status"),
        "conclusion": at(run, "/conclusion"),
        "head_branch": at(run, "/head_branch"),
        "head_sha": at(run, "/head_sha"),
        "actor": at(run, "/actor/login"),
        "created_at": at(run, "/created_at"),
        "updated_at": at(run, "/updated_at"),
        "run_started_at": at(run, "/run_started_at"),
        "html_url": at(run, "/html_url"),
    })
}

fn project_deployment(deployment: &Value) -> Value {
    json!({
        "id": at(deployment, "/id"),
        "sha": at(deployment, "/sha"),
        "ref": at(deployment, "/ref"),
        "task": at(deployment, "/task"),
        "environment": at(deployment, "/environment"),
        "description": at(deployment, "/description"),
        "creator": at(deployment, "/creator/login"),
        "created_at": at(deployment, "/created_at"),
        "updated_at": at(deployment, "/updated_at"),
        "statuses_url": at(deployment, "/statuses_url"),
    })
}

fn project_code_result(result: &Value) -> Value {
    json!({
        "name": at(result, "/name"),
        "path": at(result, "/path"),
        "sha": at(result, "/sha"),
        "repository": at(result, "/repository/full_name"),
        "html_url": at(result, "/html_url"),
    })
}

/// Changed files with patches capped at [`MAX_PATCH_BYTES`] each; the flag says
/// whether a patch was cut.
fn project_files(files: Option<&Value>) -> (Value, bool) {
    let mut truncated = false;
    let mut projected = Vec::new();
    for file in files.and_then(Value::as_array).into_iter().flatten() {
        let mut entry = pick(
            file,
            &[
                "filename",
                "status",
                "additions",
                "deletions",
                "changes",
                "previous_filename",
            ],
        );
        let fields = entry.as_object_mut().expect("pick returns an object");
        if let Some(patch) = file.get("patch").and_then(Value::as_str) {
            let (patch, cut) = truncate_text(patch, MAX_PATCH_BYTES);
            truncated |= cut;
            fields.insert("patch".into(), json!(patch));
            fields.insert("patch_truncated".into(), json!(cut));
        }
        projected.push(entry);
    }
    (Value::Array(projected), truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        let (text, cut) = truncate_text("héllo", 2);
        assert_eq!((text.as_str(), cut), ("h", true));
        assert_eq!(truncate_text("abc", 3), ("abc".to_owned(), false));
    }

    #[test]
    fn owner_and_repo_must_be_single_names() {
        assert_eq!(repository("o/x", "r").unwrap_err().field(), Some("owner"));
        assert_eq!(repository("o", " ").unwrap_err().field(), Some("repo"));
        assert_eq!(repository("o", "r").unwrap(), ("o", "r"));
    }
}
