//! The MCP server: every operation of every connection the caller can see, as a
//! tool; each connection's validation report and the caller's alerts as resources.
//!
//! Served over Streamable HTTP at `/mcp` (authenticated like the JSON API: the
//! same principal extractor reads the request's headers) and over stdio by
//! `patchbay mcp --user U [--org O]`. Tools are named
//! `<connector>_<label>__<operation>` so an agent can tell two accounts of the same
//! provider apart; write operations appear only on connections that allow writes.
//! A session is told `notifications/tools/list_changed` when the caller's
//! connections change, and `notifications/resources/updated` for
//! `patchbay://alerts` when it subscribed and the caller's alerts grow (the feed
//! of the SSE alert stream).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get_service;
use axum::Router;
use patchbay_core::{Error, Tenant};
use patchbay_store::ConnectionRecord;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    Tool, ToolAnnotations, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};

use crate::state::AppState;

/// Where the Streamable HTTP transport is served.
pub const MCP_PATH: &str = "/mcp";
/// The URI of the caller's alerts resource.
pub const ALERTS_URI: &str = "patchbay://alerts";
/// How often a session compares the caller's connections, so changes made on
/// another replica (or by the service, for a stdio session) are announced too.
const TOOL_LIST_RECHECK: Duration = Duration::from_secs(10);
/// How much of a result the text rendering shows; the structured content has it all.
const TEXT_PREVIEW_CHARS: usize = 2000;

/// One MCP session's handler: the host's state, for stdio the one tenant, and
/// the session's resource subscriptions.
#[derive(Clone)]
pub struct PatchbayMcp {
    state: AppState,
    tenant: Option<Tenant>,
    subscriptions: Arc<Mutex<HashMap<String, tokio::task::JoinHandle<()>>>>,
}

impl Drop for PatchbayMcp {
    fn drop(&mut self) {
        // The last clone of a session's handler ends its subscriptions.
        if Arc::strong_count(&self.subscriptions) == 1 {
            for (_, task) in self
                .subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain()
            {
                task.abort();
            }
        }
    }
}

impl PatchbayMcp {
    /// A handler that acts for `tenant` whatever the transport says (stdio).
    pub fn for_tenant(state: AppState, tenant: Tenant) -> Self {
        Self {
            state,
            tenant: Some(tenant),
            subscriptions: Arc::default(),
        }
    }

    /// A handler for one HTTP session; the caller comes from each request.
    fn for_http(state: AppState) -> Self {
        Self {
            state,
            tenant: None,
            subscriptions: Arc::default(),
        }
    }

    /// The caller: the fixed tenant, or whoever the HTTP request's headers name.
    async fn caller(&self, extensions: &rmcp::model::Extensions) -> Result<Tenant, McpError> {
        if let Some(tenant) = &self.tenant {
            return Ok(tenant.clone());
        }
        let parts = extensions
            .get::<http::request::Parts>()
            .ok_or_else(|| McpError::invalid_request("no caller: not an HTTP request", None))?;
        self.state
            .principals
            .principal(&parts.headers)
            .await
            .map_err(|refused| {
                McpError::invalid_request(refused.error().message().to_owned(), None)
            })
    }

    /// The caller's tools, by name.
    async fn tools(&self, tenant: &Tenant) -> Result<BTreeMap<String, ToolTarget>, McpError> {
        let records = self
            .state
            .records
            .list_connections(tenant)
            .await
            .map_err(internal)?;
        Ok(tool_targets(&self.state, records))
    }
}

/// What a tool name stands for.
#[derive(Clone)]
struct ToolTarget {
    record: ConnectionRecord,
    operation: &'static str,
    description: String,
    read_only: bool,
    schema: Value,
}

/// Tool names of `records` (oldest first, so names are stable): the connector,
/// the label as a slug (plus the id's start when two labels give the same slug),
/// two underscores, the operation.
fn tool_targets(state: &AppState, records: Vec<ConnectionRecord>) -> BTreeMap<String, ToolTarget> {
    let mut prefixes = HashSet::new();
    let mut tools = BTreeMap::new();
    for record in records {
        let Some(descriptor) = state.registry.descriptor(&record.connector) else {
            continue;
        };
        let mut prefix = format!("{}_{}", record.connector, slug(&record.label));
        if !prefixes.insert(prefix.clone()) {
            prefix = format!(
                "{prefix}_{}",
                slug(&record.id.chars().take(8).collect::<String>())
            );
            prefixes.insert(prefix.clone());
        }
        for operation in (descriptor.operations)() {
            if !operation.read_only && !record.allow_writes {
                continue;
            }
            let schema =
                serde_json::to_value(&operation.params_schema).unwrap_or_else(|_| json!({}));
            tools.insert(
                format!("{prefix}__{}", operation.name),
                ToolTarget {
                    record: record.clone(),
                    operation: operation.name,
                    description: format!(
                        "{} ({} connection \"{}\"): {}",
                        operation.name,
                        descriptor.display_name,
                        record.label,
                        operation.description
                    ),
                    read_only: operation.read_only,
                    schema,
                },
            );
        }
    }
    tools
}

/// Lower-case letters, digits and single underscores: what MCP clients accept in
/// a tool name.
fn slug(text: &str) -> String {
    let mut slug = String::new();
    for character in text.chars().flat_map(char::to_lowercase) {
        if character.is_ascii_alphanumeric() {
            slug.push(character);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug: String = slug.trim_matches('_').chars().take(40).collect();
    if slug.is_empty() {
        "connection".to_owned()
    } else {
        slug
    }
}

fn internal(error: Error) -> McpError {
    McpError::internal_error(error.message().to_owned(), None)
}

/// A provider or input failure as a tool result the agent reads, with the fix.
fn tool_error(error: &Error) -> CallToolResult {
    let shown = serde_json::to_value(crate::error::ErrorBody::of(error)).unwrap_or_default();
    let mut result = CallToolResult::structured_error(shown);
    let mut text = format!("{}: {}", error.kind().as_str(), error.message());
    if let Some(hint) = error.hint() {
        text.push_str(&format!(" (fix: {hint})"));
    }
    result.content = vec![ContentBlock::text(text)];
    result
}

/// The operation's JSON as structured content, with a short text rendering.
fn tool_output(output: &patchbay_core::QueryOutput) -> CallToolResult {
    let value = serde_json::to_value(output).unwrap_or_default();
    let mut result = CallToolResult::structured(value);
    let pretty = serde_json::to_string_pretty(&output.data).unwrap_or_default();
    let mut text: String = pretty.chars().take(TEXT_PREVIEW_CHARS).collect();
    if text.len() < pretty.len() {
        text.push_str("\n… (the structured content holds the whole result)");
    }
    if output.truncated {
        match &output.next_cursor {
            Some(cursor) => text.push_str(&format!(
                "\nThe result was cut short; call again with \"cursor\": \"{cursor}\" for the next page."
            )),
            None => text.push_str("\nThe result was cut short by the output cap."),
        }
    }
    result.content = vec![ContentBlock::text(text)];
    result
}

impl ServerHandler for PatchbayMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("patchbay", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Each tool runs one read operation of one of your connections (its name says which \
             connector, which connection and which operation). patchbay://alerts holds the alerts \
             your connections received; patchbay://connections/<id>/validation each connection's \
             last validation.",
        )
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let Ok(tenant) = self.caller(&context.extensions).await else {
            return;
        };
        let handler = self.clone();
        let peer = context.peer.clone();
        let mut changed = self.state.connections_changed.subscribe();
        tokio::spawn(async move {
            let fingerprint = |tools: &BTreeMap<String, ToolTarget>| -> Vec<String> {
                tools.keys().cloned().collect()
            };
            let mut known = match handler.tools(&tenant).await {
                Ok(tools) => fingerprint(&tools),
                Err(_) => Vec::new(),
            };
            loop {
                tokio::select! {
                    result = changed.changed() => if result.is_err() { return },
                    () = tokio::time::sleep(TOOL_LIST_RECHECK) => {}
                }
                let Ok(tools) = handler.tools(&tenant).await else {
                    continue;
                };
                let now = fingerprint(&tools);
                if now != known {
                    known = now;
                    if peer.notify_tool_list_changed().await.is_err() {
                        // The session ended.
                        return;
                    }
                }
            }
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tenant = self.caller(&context.extensions).await?;
        let tools = self
            .tools(&tenant)
            .await?
            .into_iter()
            .map(|(name, target)| {
                let schema = match target.schema {
                    Value::Object(object) => object,
                    _ => serde_json::Map::new(),
                };
                Tool::new(name, target.description, Arc::new(schema)).with_annotations(
                    ToolAnnotations::new()
                        .read_only(target.read_only)
                        .destructive(!target.read_only),
                )
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tenant = self.caller(&context.extensions).await?;
        let mut tools = self.tools(&tenant).await?;
        let Some(target) = tools.remove(request.name.as_ref()) else {
            return Err(McpError::invalid_params(
                format!(
                    "no tool `{}`; tools/list shows the tools of your connections",
                    request.name
                ),
                None,
            ));
        };
        let Some(connector) = self.state.registry.get(&target.record.connector) else {
            return Err(McpError::invalid_params(
                "that connector is not served here",
                None,
            ));
        };
        let params = Value::Object(request.arguments.unwrap_or_default());
        let outcome = self
            .state
            .connections()
            .query(&target.record, connector.as_ref(), target.operation, params)
            .await;
        Ok(match outcome {
            Ok(output) => tool_output(&output),
            Err(error) => tool_error(&error),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let tenant = self.caller(&context.extensions).await?;
        let records = self
            .state
            .records
            .list_connections(&tenant)
            .await
            .map_err(internal)?;
        let mut resources = vec![Resource::new(ALERTS_URI, "alerts")
            .with_description(
                "Your alerts in the order they were stored, 100 at a time: read \
                 patchbay://alerts?after=<next_cursor> for the next ones",
            )
            .with_mime_type("application/json")];
        for record in records {
            resources.push(
                Resource::new(
                    format!("patchbay://connections/{}/validation", record.id),
                    format!("{} validation", record.label),
                )
                .with_description(format!(
                    "The last validation of the {} connection \"{}\"",
                    record.connector, record.label
                ))
                .with_mime_type("application/json"),
            );
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if request.uri != ALERTS_URI {
            return Err(McpError::invalid_params(
                format!("only {ALERTS_URI} can be followed"),
                None,
            ));
        }
        let tenant = self.caller(&context.extensions).await?;
        let records = Arc::clone(&self.state.records);
        let mut committed = self.state.ingestor.committed().subscribe();
        let peer = context.peer.clone();
        let mut newest = records.last_alert_cursor(&tenant).await.map_err(internal)?;
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    result = committed.changed() => if result.is_err() { return },
                    () = tokio::time::sleep(crate::alert_stream::POLL_INTERVAL) => {}
                }
                // The signal is raised for every tenant's alerts: tell this
                // session only when its own grew.
                let Ok(now) = records.last_alert_cursor(&tenant).await else {
                    continue;
                };
                if now != newest {
                    newest = now;
                    let updated = ResourceUpdatedNotificationParam::new(ALERTS_URI);
                    if peer.notify_resource_updated(updated).await.is_err() {
                        return;
                    }
                }
            }
        });
        if let Some(previous) = self
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.uri, task)
        {
            previous.abort();
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Some(task) = self
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request.uri)
        {
            task.abort();
        }
        Ok(())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let tenant = self.caller(&context.extensions).await?;
        let uri = request.uri.as_str();
        let body = if let Some(rest) = uri.strip_prefix(ALERTS_URI) {
            let after = match rest.strip_prefix("?after=") {
                Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| {
                    McpError::invalid_params(format!("`{cursor}` is not an alert cursor"), None)
                })?),
                None if rest.is_empty() => None,
                None => {
                    return Err(McpError::resource_not_found(
                        format!("no resource {uri}"),
                        None,
                    ))
                }
            };
            let page = self
                .state
                .records
                .list_alerts(&tenant, after, 100)
                .await
                .map_err(internal)?;
            serde_json::to_value(page).unwrap_or_default()
        } else if let Some(id) = uri
            .strip_prefix("patchbay://connections/")
            .and_then(|rest| rest.strip_suffix("/validation"))
        {
            let record = self
                .state
                .records
                .get_connection(&tenant, id)
                .await
                .map_err(internal)?
                .ok_or_else(|| McpError::resource_not_found(format!("no connection {id}"), None))?;
            json!({
                "connection": record.id,
                "connector": record.connector,
                "label": record.label,
                "status": record.status,
                "validated_at": record.validated_at,
                "report": record.last_report,
            })
        } else {
            return Err(McpError::resource_not_found(
                format!("no resource {uri}"),
                None,
            ));
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(body.to_string(), uri)]).into())
    }
}

/// `/mcp`: the Streamable HTTP transport, behind the API's authentication, ending
/// its sessions when the service stops.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut config = StreamableHttpServerConfig::default();
    // The Host header is checked against where the service is published (and
    // loopback), against DNS rebinding.
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(public) = url::Url::parse(&state.public_url) {
        if let Some(host) = public.host_str() {
            hosts.push(host.to_owned());
            if let Some(port) = public.port() {
                hosts.push(format!("{host}:{port}"));
            }
        }
    }
    config = config.with_allowed_hosts(hosts);
    let sessions = config.cancellation_token.clone();
    let mut stopping = state.stopping.subscribe();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
            sessions.cancel();
        });
    }
    let sessions_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(PatchbayMcp::for_http(sessions_state.clone())),
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .route(
            MCP_PATH,
            get_service(service.clone())
                .post_service(service.clone())
                .delete_service(service),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
}

/// Refuses `/mcp` requests without valid credentials, as the API does.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.principals.principal(request.headers()).await {
        Ok(_) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}
