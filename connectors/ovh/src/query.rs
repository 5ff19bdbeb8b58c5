//! Read-only query operations over the OVHcloud API, declared once with
//! [`patchbay_core::operations!`].
//!
//! OVHcloud's `1.0` lists have no paging: some answer every object at once
//! (instances, databases, private networks, quotas), others only ids, each read
//! with one more call (projects, Kubernetes clusters, dedicated servers). Every list
//! here returns at most `limit` items (at most [`MAX_ITEMS`]) from an offset the
//! opaque `next_cursor` carries, and reads the objects behind an id list at most
//! [`MAX_CONCURRENCY`] at a time.

use futures::stream::{self, StreamExt, TryStreamExt};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::OvhClient;
use crate::CONNECTOR_ID;

/// The most items one call returns (and the most objects an id list fans out to).
pub const MAX_ITEMS: u32 = 200;
/// The most object reads in flight at once when an id list fans out.
pub const MAX_CONCURRENCY: usize = 8;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_>,
    /// List the Public Cloud projects with their name, status and creation date (GET /cloud/project, then GET /cloud/project/{id} for each).
    read list_projects(ListProjectsParams), paged;
    /// List a project's compute instances with status, region, flavor, image and IP addresses (GET /cloud/project/{id}/instance).
    read list_instances(ListInstancesParams), paged;
    /// List a project's Managed Kubernetes clusters with version, status and region (GET /cloud/project/{id}/kube, then each cluster).
    read list_kube_clusters(ProjectListParams), paged;
    /// List a project's managed database services with engine, version, plan and status (GET /cloud/project/{id}/database/service).
    read list_databases(ProjectListParams), paged;
    /// List a project's private networks (vRack) with VLAN id, status and regions (GET /cloud/project/{id}/network/private).
    read list_private_networks(ProjectListParams), paged;
    /// Get a project's quotas per region: instances, cores, RAM, volumes, used and maximum (GET /cloud/project/{id}/quota).
    read get_quotas(GetQuotasParams);
    /// List the dedicated (bare-metal) servers with datacenter, state, OS and IP (GET /dedicated/server, then each server).
    read list_dedicated_servers(ListDedicatedServersParams), paged;
}

fn default_limit() -> u32 {
    50
}

/// Parameters of `list_projects`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListProjectsParams {
    /// How many projects to return, 1 to 200 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// Parameters of the lists of one project's resources.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectListParams {
    /// The Public Cloud project id (32 hexadecimal characters, the `id` of `list_projects`).
    pub project_id: String,
    /// How many items to return, 1 to 200 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// Parameters of `list_instances`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInstancesParams {
    /// The Public Cloud project id (32 hexadecimal characters, the `id` of `list_projects`).
    pub project_id: String,
    /// Only instances in this OpenStack region, e.g. `GRA11`, `BHS5`.
    #[serde(default)]
    pub region: Option<String>,
    /// How many instances to return, 1 to 200 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// Parameters of `get_quotas`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetQuotasParams {
    /// The Public Cloud project id (32 hexadecimal characters, the `id` of `list_projects`).
    pub project_id: String,
    /// Only this region's quotas, e.g. `GRA11`.
    #[serde(default)]
    pub region: Option<String>,
}

/// Parameters of `list_dedicated_servers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDedicatedServersParams {
    /// How many servers to return, 1 to 200 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// A project id as OVHcloud issues them: 32 hexadecimal characters.
pub fn project_id(value: &str) -> Result<&str> {
    let value = value.trim();
    if value.len() == 32 && value.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(Error::invalid_input(
            "project_id",
            "`project_id` must be a Public Cloud project id: 32 hexadecimal characters",
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("use an `id` from list_projects"))
    }
}

/// An OpenStack region name filter such as `GRA11`: letters, digits and dashes.
fn region_filter(value: Option<&str>) -> Result<Option<String>> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if value.is_empty()
        || value.len() > 32
        || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Error::invalid_input(
            "region",
            "`region` must be an OpenStack region name such as GRA11 or BHS5",
        )
        .with_connector(CONNECTOR_ID));
    }
    Ok(Some(value.to_owned()))
}

/// The offset a cursor carries (none: 0).
fn offset(cursor: Option<&str>) -> Result<usize> {
    match cursor {
        None => Ok(0),
        Some(text) => text.parse().map_err(|_| {
            Error::invalid_input("cursor", "the cursor is not one this operation issued")
                .with_connector(CONNECTOR_ID)
        }),
    }
}

/// One page of `items` from `offset`: at most `limit` items, with the next offset
/// as the cursor when more remain.
fn window<T: Clone>(items: &[T], offset: usize, limit: u32) -> (Vec<T>, Option<String>) {
    let limit = limit.min(MAX_ITEMS) as usize;
    let page: Vec<T> = items.iter().skip(offset).take(limit).cloned().collect();
    let next = offset + page.len();
    let more = next < items.len();
    (page, more.then(|| next.to_string()))
}

/// The strings of an id-list answer.
fn ids(body: &Value, template: &str) -> Result<Vec<String>> {
    let list = body.as_array().ok_or_else(|| {
        Error::internal(format!(
            "OVHcloud answered {template} with something other than a list"
        ))
        .with_connector(CONNECTOR_ID)
    })?;
    Ok(list
        .iter()
        .filter_map(|id| match id {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
        .collect())
}

/// The objects of a list answer.
fn objects(body: Value, template: &str) -> Result<Vec<Value>> {
    match body {
        Value::Array(items) => Ok(items),
        _ => Err(Error::internal(format!(
            "OVHcloud answered {template} with something other than a list"
        ))
        .with_connector(CONNECTOR_ID)),
    }
}

/// `object` with only `fields` (those present).
fn pick(object: &Value, fields: &[&str]) -> Value {
    let mut picked = Map::new();
    for field in fields {
        if let Some(value) = object.get(*field) {
            if !value.is_null() {
                picked.insert((*field).to_owned(), value.clone());
            }
        }
    }
    Value::Object(picked)
}

const PROJECT_FIELDS: &[&str] = &[
    "project_id",
    "projectName",
    "description",
    "status",
    "creationDate",
    "expiration",
    "planCode",
    "unleash",
];
const INSTANCE_FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "region",
    "flavorId",
    "imageId",
    "ipAddresses",
    "created",
    "monthlyBilling",
];
const KUBE_FIELDS: &[&str] = &[
    "id",
    "name",
    "region",
    "version",
    "status",
    "url",
    "nodesUrl",
    "updatePolicy",
    "isUpToDate",
    "createdAt",
    "updatedAt",
    "privateNetworkId",
];
const DATABASE_FIELDS: &[&str] = &[
    "id",
    "description",
    "engine",
    "version",
    "plan",
    "status",
    "nodeNumber",
    "flavor",
    "region",
    "networkType",
    "createdAt",
];
const NETWORK_FIELDS: &[&str] = &["id", "name", "vlanId", "status", "type", "regions"];
const QUOTA_FIELDS: &[&str] = &[
    "region",
    "instance",
    "volume",
    "keypair",
    "network",
    "loadbalancer",
];
const SERVER_FIELDS: &[&str] = &[
    "name",
    "serverId",
    "datacenter",
    "state",
    "os",
    "ip",
    "reverse",
    "commercialRange",
    "professionalUse",
    "monitoring",
    "powerState",
    "rack",
    "supportLevel",
];

/// Runs the operations for one connection.
pub struct Api<'a> {
    client: OvhClient<'a>,
}

impl<'a> Api<'a> {
    /// The operations over `client`.
    pub fn new(client: OvhClient<'a>) -> Self {
        Self { client }
    }

    /// Reads an id list, then the object behind each id of the page, at most
    /// [`MAX_CONCURRENCY`] at a time, keeping the list's order.
    #[allow(clippy::too_many_arguments)]
    async fn fan_out(
        &self,
        operation: &'static str,
        list_template: &str,
        item_template: &str,
        list_segments: &[&str],
        key: &str,
        fields: &[&str],
        limit: u32,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let body = self
            .client
            .get(operation, list_template, list_segments, &[])
            .await?;
        let all = ids(&body, list_template)?;
        let (page, next) = window(&all, offset(cursor.as_deref())?, limit);
        let items: Vec<Value> = stream::iter(page)
            .map(|id: String| self.read_item(operation, item_template, list_segments, id, fields))
            .buffered(MAX_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(OperationOutput::new(json!({
            key: items,
            "total": all.len(),
        }))
        .with_next_page(next))
    }

    /// Reads the object `id` under `list_segments`, keeping only `fields`.
    async fn read_item(
        &self,
        operation: &'static str,
        item_template: &str,
        list_segments: &[&str],
        id: String,
        fields: &[&str],
    ) -> Result<Value> {
        let mut segments: Vec<&str> = list_segments.to_vec();
        segments.push(id.as_str());
        let object = self
            .client
            .get(operation, item_template, &segments, &[])
            .await?;
        Ok(pick(&object, fields))
    }

    /// Reads a list of objects and returns one page of it.
    #[allow(clippy::too_many_arguments)]
    async fn listed(
        &self,
        operation: &'static str,
        template: &str,
        segments: &[&str],
        query: &[(&str, String)],
        key: &str,
        fields: &[&str],
        limit: u32,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let body = self
            .client
            .get(operation, template, segments, query)
            .await?;
        let all = objects(body, template)?;
        let (page, next) = window(&all, offset(cursor.as_deref())?, limit);
        let items: Vec<Value> = page.iter().map(|item| pick(item, fields)).collect();
        Ok(OperationOutput::new(json!({
            key: items,
            "total": all.len(),
        }))
        .with_next_page(next))
    }

    async fn list_projects(
        &self,
        params: ListProjectsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        self.fan_out(
            "list_projects",
            "/cloud/project",
            "/cloud/project/{serviceName}",
            &["cloud", "project"],
            "projects",
            PROJECT_FIELDS,
            params.limit,
            cursor,
        )
        .await
    }

    async fn list_instances(
        &self,
        params: ListInstancesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = project_id(&params.project_id)?;
        let query: Vec<(&str, String)> = region_filter(params.region.as_deref())?
            .map(|region| vec![("region", region)])
            .unwrap_or_default();
        self.listed(
            "list_instances",
            "/cloud/project/{serviceName}/instance",
            &["cloud", "project", project, "instance"],
            &query,
            "instances",
            INSTANCE_FIELDS,
            params.limit,
            cursor,
        )
        .await
    }

    async fn list_kube_clusters(
        &self,
        params: ProjectListParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = project_id(&params.project_id)?;
        self.fan_out(
            "list_kube_clusters",
            "/cloud/project/{serviceName}/kube",
            "/cloud/project/{serviceName}/kube/{kubeId}",
            &["cloud", "project", project, "kube"],
            "clusters",
            KUBE_FIELDS,
            params.limit,
            cursor,
        )
        .await
    }

    async fn list_databases(
        &self,
        params: ProjectListParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = project_id(&params.project_id)?;
        self.listed(
            "list_databases",
            "/cloud/project/{serviceName}/database/service",
            &["cloud", "project", project, "database", "service"],
            &[],
            "databases",
            DATABASE_FIELDS,
            params.limit,
            cursor,
        )
        .await
    }

    async fn list_private_networks(
        &self,
        params: ProjectListParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = project_id(&params.project_id)?;
        self.listed(
            "list_private_networks",
            "/cloud/project/{serviceName}/network/private",
            &["cloud", "project", project, "network", "private"],
            &[],
            "networks",
            NETWORK_FIELDS,
            params.limit,
            cursor,
        )
        .await
    }

    async fn get_quotas(&self, params: GetQuotasParams) -> Result<OperationOutput> {
        let project = project_id(&params.project_id)?;
        let region = region_filter(params.region.as_deref())?;
        let body = self
            .client
            .get(
                "get_quotas",
                "/cloud/project/{serviceName}/quota",
                &["cloud", "project", project, "quota"],
                &[],
            )
            .await?;
        let quotas: Vec<Value> = objects(body, "/cloud/project/{serviceName}/quota")?
            .iter()
            .filter(|quota| {
                region.as_deref().is_none_or(|region| {
                    quota.get("region").and_then(Value::as_str) == Some(region)
                })
            })
            .map(|quota| pick(quota, QUOTA_FIELDS))
            .collect();
        Ok(OperationOutput::new(json!({ "quotas": quotas })))
    }

    async fn list_dedicated_servers(
        &self,
        params: ListDedicatedServersParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        self.fan_out(
            "list_dedicated_servers",
            "/dedicated/server",
            "/dedicated/server/{serviceName}",
            &["dedicated", "server"],
            "servers",
            SERVER_FIELDS,
            params.limit,
            cursor,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_page_through_a_list_and_stop_at_the_cap() {
        let items: Vec<u32> = (0..450).collect();
        let (page, next) = window(&items, 0, 500);
        assert_eq!(page.len(), MAX_ITEMS as usize);
        assert_eq!(next.as_deref(), Some("200"));
        let (page, next) = window(&items, 400, 200);
        assert_eq!(page.len(), 50);
        assert_eq!(next, None);
    }

    #[test]
    fn project_ids_are_32_hex_characters() {
        assert!(project_id("0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "../me", "0123456789abcdef0123456789abcdeg", "0123"] {
            let error = project_id(bad).unwrap_err();
            assert_eq!(error.field(), Some("project_id"));
        }
    }
}
