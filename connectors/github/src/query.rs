//! Read-only query operations over the GitHub REST API.
//!
//! Every operation declares its parameters as a struct whose doc comments become
//! the schema agents read. Lists follow `Link: rel="next"` up to a per-call item
//! limit and [`MAX_PAGES`] pages; `next_cursor` is the first page not fully
//! returned (items are never skipped, a few may repeat). Output is cut to
//! [`MAX_OUTPUT_BYTES`] with `truncated` set, and every answer carries GitHub's
//! `rate_limit_remaining`.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{
    parse_params, unknown_operation, Error, OperationDescriptor, QueryOutput, Result,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::GitHubClient;
use crate::CONNECTOR_ID;

/// The largest serialized `data` an operation returns.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// The most pages one call reads.
pub const MAX_PAGES: u32 = 10;
/// The largest file content `get_file` returns.
pub const MAX_FILE_BYTES: usize = 100 * 1024;
/// The largest patch kept per changed file.
pub const MAX_PATCH_BYTES: usize = 8 * 1024;
/// GitHub's largest page.
const MAX_PER_PAGE: u32 = 100;

/// One query operation.
struct Operation {
    name: &'static str,
    description: &'static str,
    descriptor: fn(&'static str, &'static str) -> OperationDescriptor,
}

fn describe<P: JsonSchema>(name: &'static str, description: &'static str) -> OperationDescriptor {
    OperationDescriptor::new::<P>(name, description, true)
}

const OPERATIONS: &[Operation] = &[
    Operation {
        name: "list_repos",
        description: "List repositories the token can see, most recently updated first (GET /user/repos).",
        descriptor: describe::<ListReposParams>,
    },
    Operation {
        name: "get_file",
        description: "Read a file (base64-decoded, at most 100 KB) or list a directory at a ref (GET /repos/{owner}/{repo}/contents/{path}).",
        descriptor: describe::<GetFileParams>,
    },
    Operation {
        name: "list_commits",
        description: "List commits over the last 72 hours by default, filtered by branch, path or author; at most 300 (GET /repos/{owner}/{repo}/commits).",
        descriptor: describe::<ListCommitsParams>,
    },
    Operation {
        name: "get_commit",
        description: "Get one commit with its changed files, line counts and patches (capped) (GET /repos/{owner}/{repo}/commits/{sha}).",
        descriptor: describe::<GetCommitParams>,
    },
    Operation {
        name: "list_pull_requests",
        description: "List pull requests by state and base branch, most recently updated first by default (GET /repos/{owner}/{repo}/pulls).",
        descriptor: describe::<ListPullRequestsParams>,
    },
    Operation {
        name: "get_pull_request",
        description: "Get one pull request with its changed files and patches (capped) (GET /repos/{owner}/{repo}/pulls/{number} and /files).",
        descriptor: describe::<GetPullRequestParams>,
    },
    Operation {
        name: "list_workflow_runs",
        description: "List GitHub Actions workflow runs, newest first, by status and branch (GET /repos/{owner}/{repo}/actions/runs).",
        descriptor: describe::<ListWorkflowRunsParams>,
    },
    Operation {
        name: "list_deployments",
        description: "List deployments, newest first, by environment and ref (GET /repos/{owner}/{repo}/deployments).",
        descriptor: describe::<ListDeploymentsParams>,
    },
    Operation {
        name: "search_code",
        description: "Search code with GitHub search syntax, e.g. `timeout repo:org/app` (GET /search/code; a much lower rate limit than other calls).",
        descriptor: describe::<SearchCodeParams>,
    },
];

/// Every operation's descriptor, in a stable order.
pub fn descriptors() -> Vec<OperationDescriptor> {
    OPERATIONS
        .iter()
        .map(|operation| (operation.descriptor)(operation.name, operation.description))
        .collect()
}

/// The names of every operation.
pub fn operation_names() -> Vec<&'static str> {
    OPERATIONS.iter().map(|operation| operation.name).collect()
}

/// Runs `operation` with JSON `params`, resolving relative times against `now`.
pub async fn run(
    client: &GitHubClient<'_>,
    operation: &str,
    params: Value,
    now: DateTime<Utc>,
) -> Result<QueryOutput> {
    let Some(spec) = OPERATIONS.iter().find(|spec| spec.name == operation) else {
        return Err(unknown_operation(
            CONNECTOR_ID,
            operation,
            &operation_names(),
        ));
    };
    let call = Call {
        client,
        operation: spec.name,
    };
    match spec.name {
        "list_repos" => call.list_repos(parse(spec.name, params)?).await,
        "get_file" => call.get_file(parse(spec.name, params)?).await,
        "list_commits" => call.list_commits(parse(spec.name, params)?, now).await,
        "get_commit" => call.get_commit(parse(spec.name, params)?).await,
        "list_pull_requests" => call.list_pull_requests(parse(spec.name, params)?).await,
        "get_pull_request" => call.get_pull_request(parse(spec.name, params)?).await,
        "list_workflow_runs" => call.list_workflow_runs(parse(spec.name, params)?).await,
        "list_deployments" => call.list_deployments(parse(spec.name, params)?).await,
        _ => call.search_code(parse(spec.name, params)?).await,
    }
}

fn parse<P: serde::de::DeserializeOwned>(operation: &str, params: Value) -> Result<P> {
    parse_params::<P>(CONNECTOR_ID, operation, params)
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
    /// `next_cursor` from a previous call, to read on.
    #[serde(default)]
    pub cursor: Option<String>,
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
    /// `next_cursor` from a previous call, to read on.
    #[serde(default)]
    pub cursor: Option<String>,
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
    /// `next_cursor` from a previous call, to read on.
    #[serde(default)]
    pub cursor: Option<String>,
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
    /// `next_cursor` from a previous call, to read on.
    #[serde(default)]
    pub cursor: Option<String>,
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
    /// `next_cursor` from a previous call, to read on.
    #[serde(default)]
    pub cursor: Option<String>,
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
    /// `next_cursor` from a previous call, to read on.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A list read across pages.
struct Listing {
    items: Vec<Value>,
    truncated: bool,
    next_page: Option<u32>,
    rate_limit_remaining: Option<u64>,
    total_count: Option<u64>,
}

impl Listing {
    fn into_output(self, extra: Map<String, Value>) -> QueryOutput {
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
        QueryOutput {
            data: Value::Object(data),
            truncated: self.truncated,
            next_cursor: self.next_page.map(|page| page.to_string()),
        }
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

struct Call<'a> {
    client: &'a GitHubClient<'a>,
    operation: &'static str,
}

impl Call<'_> {
    /// Reads pages from `start_page` until `limit` items, [`MAX_PAGES`] pages,
    /// [`MAX_OUTPUT_BYTES`] or the last page.
    async fn list(
        &self,
        segments: &[&str],
        query: Vec<(&str, String)>,
        items_at: Items,
        limit: u32,
        cursor: Option<&str>,
        project: fn(&Value) -> Value,
    ) -> Result<Listing> {
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let per_page = limit.min(MAX_PER_PAGE as usize);
        let mut page = parse_cursor(cursor)?;
        let mut listing = Listing {
            items: Vec::new(),
            truncated: false,
            next_page: None,
            rate_limit_remaining: None,
            total_count: None,
        };
        let mut bytes = 0usize;
        let mut pages_read = 0;
        loop {
            if pages_read == MAX_PAGES {
                listing.next_page = Some(page);
                break;
            }
            pages_read += 1;
            let mut page_query = query.clone();
            page_query.push(("per_page", per_page.to_string()));
            page_query.push(("page", page.to_string()));
            let response = self
                .client
                .get(self.operation, segments, &page_query)
                .await?;
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
            let mut page_complete = true;
            for item in array {
                let projected = project(item);
                let size = serde_json::to_string(&projected).map_or(0, |text| text.len());
                if listing.items.len() >= limit || bytes + size > MAX_OUTPUT_BYTES {
                    page_complete = false;
                    if bytes + size > MAX_OUTPUT_BYTES {
                        listing.truncated = true;
                    }
                    break;
                }
                bytes += size;
                listing.items.push(projected);
            }
            if !page_complete {
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

    async fn list_repos(&self, params: ListReposParams) -> Result<QueryOutput> {
        let affiliation = params
            .affiliation
            .unwrap_or_else(|| "owner,collaborator,organization_member".to_owned());
        let listing = self
            .list(
                &["user", "repos"],
                vec![
                    ("affiliation", affiliation),
                    ("sort", "updated".to_owned()),
                    ("direction", "desc".to_owned()),
                ],
                Items::Body,
                params.limit.min(500),
                params.cursor.as_deref(),
                project_repo,
            )
            .await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn get_file(&self, params: GetFileParams) -> Result<QueryOutput> {
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
        let response = self.client.get(self.operation, &segments, &query).await?;
        let remaining = json!(response.rate_limit_remaining);
        if let Some(entries) = response.body.as_array() {
            let entries: Vec<Value> = entries
                .iter()
                .map(|entry| pick(entry, &["name", "path", "type", "size", "sha"]))
                .collect();
            return Ok(QueryOutput {
                data: json!({"type": "dir", "path": path, "entries": entries, "rate_limit_remaining": remaining}),
                truncated: false,
                next_cursor: None,
            });
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
        Ok(QueryOutput {
            data,
            truncated,
            next_cursor: None,
        })
    }

    async fn list_commits(
        &self,
        params: ListCommitsParams,
        now: DateTime<Utc>,
    ) -> Result<QueryOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let range = TimeRange::resolve_fields(
            ("since", params.since.as_ref()),
            ("until", params.until.as_ref()),
            TimeDelta::hours(72),
            now,
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
        let listing = self
            .list(
                &["repos", owner, repo, "commits"],
                query,
                Items::Body,
                params.limit.min(300),
                params.cursor.as_deref(),
                project_commit,
            )
            .await?;
        let mut extra = Map::new();
        extra.insert("since".into(), json!(range.from.to_rfc3339()));
        extra.insert("until".into(), json!(range.to.to_rfc3339()));
        Ok(listing.into_output(extra))
    }

    async fn get_commit(&self, params: GetCommitParams) -> Result<QueryOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let sha = required("sha", &params.sha)?;
        let response = self
            .client
            .get(self.operation, &["repos", owner, repo, "commits", sha], &[])
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
        Ok(QueryOutput {
            data,
            truncated,
            next_cursor: None,
        })
    }

    async fn list_pull_requests(&self, params: ListPullRequestsParams) -> Result<QueryOutput> {
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
        let listing = self
            .list(
                &["repos", owner, repo, "pulls"],
                query,
                Items::Body,
                params.limit.min(100),
                params.cursor.as_deref(),
                project_pull,
            )
            .await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn get_pull_request(&self, params: GetPullRequestParams) -> Result<QueryOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let number = params.number.to_string();
        let pull = self
            .client
            .get(
                self.operation,
                &["repos", owner, repo, "pulls", &number],
                &[],
            )
            .await?;
        let files = self
            .client
            .get(
                self.operation,
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
        Ok(QueryOutput {
            data,
            truncated,
            next_cursor: None,
        })
    }

    async fn list_workflow_runs(&self, params: ListWorkflowRunsParams) -> Result<QueryOutput> {
        let (owner, repo) = repository(&params.owner, &params.repo)?;
        let mut query = Vec::new();
        for (key, value) in [("status", &params.status), ("branch", &params.branch)] {
            if let Some(value) = nonblank(value.as_deref()) {
                query.push((key, value.to_owned()));
            }
        }
        let listing = self
            .list(
                &["repos", owner, repo, "actions", "runs"],
                query,
                Items::Under("workflow_runs"),
                params.limit.min(100),
                params.cursor.as_deref(),
                project_run,
            )
            .await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn list_deployments(&self, params: ListDeploymentsParams) -> Result<QueryOutput> {
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
        let listing = self
            .list(
                &["repos", owner, repo, "deployments"],
                query,
                Items::Body,
                params.limit.min(100),
                params.cursor.as_deref(),
                project_deployment,
            )
            .await?;
        Ok(listing.into_output(Map::new()))
    }

    async fn search_code(&self, params: SearchCodeParams) -> Result<QueryOutput> {
        let query = required("query", &params.query)?;
        let listing = self
            .list(
                &["search", "code"],
                vec![("q", query.to_owned())],
                Items::Under("items"),
                params.limit.min(100),
                params.cursor.as_deref(),
                project_code_result,
            )
            .await?;
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

/// The page a cursor names; no cursor is page 1.
fn parse_cursor(cursor: Option<&str>) -> Result<u32> {
    match nonblank(cursor) {
        None => Ok(1),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(|| {
                Error::invalid_input(
                    "cursor",
                    format!("`cursor` must be a page number, got `{text}`"),
                )
                .with_connector(CONNECTOR_ID)
                .with_hint("pass back the `next_cursor` of a previous answer unchanged")
            }),
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

/// Changed files with patches capped at [`MAX_PATCH_BYTES`] each and the whole list
/// at [`MAX_OUTPUT_BYTES`]; the flag says whether anything was cut.
fn project_files(files: Option<&Value>) -> (Value, bool) {
    let mut truncated = false;
    let mut bytes = 0usize;
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
        let size = serde_json::to_string(&entry).map_or(0, |text| text.len());
        if bytes + size > MAX_OUTPUT_BYTES {
            truncated = true;
            break;
        }
        bytes += size;
        projected.push(entry);
    }
    (Value::Array(projected), truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_page_numbers() {
        assert_eq!(parse_cursor(None).unwrap(), 1);
        assert_eq!(parse_cursor(Some("4")).unwrap(), 4);
        for bad in ["0", "two", "-1"] {
            assert_eq!(parse_cursor(Some(bad)).unwrap_err().field(), Some("cursor"));
        }
    }

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
