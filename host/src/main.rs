//! The `patchbay` binary: run the service and manage it from the command line.

use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use patchbay_core::{ConnectorEnv, SecretString, Tenant};
use patchbay_host::client::{self, ApiClient, ApiFailure};
use patchbay_host::config::HostConfig;
use patchbay_host::{auth, connectors, telemetry, HostBuilder, SecretsBackend};
use patchbay_store::{ApiKeyRecord, VaultConfig, VaultSecretStore};

/// Patchbay: connectors for AI SRE and incident tooling.
#[derive(Parser)]
#[command(name = "patchbay", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (port 5080 unless PATCHBAY_LISTEN says otherwise).
    Serve,
    /// Inspect the connector registry.
    Connectors {
        #[command(subcommand)]
        command: ConnectorsCommand,
    },
    /// Manage API keys.
    ApiKeys {
        #[command(subcommand)]
        command: ApiKeysCommand,
    },
    /// Create one-time links that open the Connectors page at one connector's form
    /// for a named user, so they can connect without an API key.
    ConnectLinks {
        #[command(subcommand)]
        command: ConnectLinksCommand,
    },
    /// List and re-validate the connections of a running service.
    Connections {
        #[command(flatten)]
        service: Service,
        #[command(subcommand)]
        command: ConnectionsCommand,
    },
    /// Follow the alerts of a running service as they arrive.
    Alerts {
        #[command(flatten)]
        service: Service,
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Serve MCP over stdio for a local agent, acting for one user on the
    /// configured stores (the tools and resources of `/mcp`).
    Mcp {
        /// The user whose connections become tools.
        #[arg(long)]
        user: String,
        /// The organisation the user acts for.
        #[arg(long)]
        org: Option<String>,
    },
    /// Maintain the secret store.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Run one operation of a connection on a running service and print its JSON.
    ///
    /// Exit status: 0 success, 2 bad parameters, 3 credentials rejected or
    /// reconnection needed, 4 permission denied, 5 not found, 6 rate limited or
    /// unavailable, 1 anything else.
    Query {
        #[command(flatten)]
        service: Service,
        /// The connection id (`patchbay connections list` shows it).
        connection: String,
        /// The operation (`patchbay connectors list` shows each connector's).
        operation: String,
        /// The operation's parameters as a JSON object.
        #[arg(default_value = "{}")]
        params: String,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Remove the secrets no connection points to (left by a connect that was
    /// stopped between storing its secret and its record); prints each one removed.
    Sweep {
        /// Seconds between listing the secrets and checking the records: a secret is
        /// removed only if it was already stored that long ago. Keep it above the
        /// longest a connect may take while services run.
        #[arg(long, default_value_t = ORPHAN_GRACE.as_secs())]
        grace_secs: u64,
    },
}

/// How long a secret must exist without a record before a sweep removes it.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How often `patchbay serve` sweeps orphaned secrets.
const ORPHAN_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Where the running service is and the API key to call it with; or, with
/// `--user`, the service's own data opened here (the SQLite file and secret file in
/// PATCHBAY_DATA_DIR, or DATABASE_URL and Vault, as `patchbay serve` would).
#[derive(clap::Args)]
struct Service {
    /// Act for this user directly on the configured stores, without a running
    /// service or an API key (run beside the data directory, or with its settings).
    #[arg(long, global = true, conflicts_with = "api_key")]
    user: Option<String>,
    /// With --user: the organisation the user acts for.
    #[arg(long, global = true, requires = "user")]
    org: Option<String>,
    /// The service's base URL.
    #[arg(long, global = true, env = client::URL_VAR, default_value = "http://127.0.0.1:5080")]
    url: String,
    /// An API key (`patchbay api-keys create`); prefer the variable, which stays
    /// out of the shell history.
    #[arg(long, global = true, env = client::API_KEY_VAR, hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Subcommand)]
enum ConnectionsCommand {
    /// List the caller's connections: id, connector, label, status, last validation.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate a connection again and print its report line by line; exits 1 when
    /// the report fails.
    Validate {
        /// The connection id.
        connection: String,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Print alerts as they are stored, one line each, until interrupted; resumes
    /// where it stopped after a dropped connection.
    Tail {
        /// Start after this cursor (0: every stored alert) instead of with new ones.
        #[arg(long)]
        after: Option<i64>,
        /// Print each alert as one line of JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConnectorsCommand {
    /// List the registered connectors.
    List {
        /// Print full descriptors (auth kinds, env vars, operations with schemas) as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Create an API key for a user (printed once; only its hash and prefix are stored).
    Create {
        /// The user the key acts as.
        #[arg(long)]
        user: String,
        /// The organisation the user acts for.
        #[arg(long)]
        org: Option<String>,
    },
    /// List API keys: prefix, user, organisation, creation and last use (never the key).
    List {
        /// Only keys of this user.
        #[arg(long)]
        user: Option<String>,
        /// Only keys of this organisation.
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke an API key; it stops authenticating at once.
    Revoke {
        /// The key's prefix as `list` shows it (for keys created before prefixes were
        /// recorded, the id `list` shows instead).
        prefix: String,
    },
}

#[derive(Subcommand)]
enum ConnectLinksCommand {
    /// Create a link (printed once; only its hash is stored). It opens once, within
    /// its lifetime, and the session it starts lasts an hour and can only connect
    /// the named connector for the named user.
    Create {
        /// The user the connection is made for.
        #[arg(long)]
        user: String,
        /// The organisation the user acts for.
        #[arg(long)]
        org: Option<String>,
        /// The connector whose form the link opens (`patchbay connectors list`).
        #[arg(long)]
        connector: String,
        /// How many hours the link can be opened for.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=720))]
        valid_hours: u32,
    },
}

fn load_env() -> ConnectorEnv {
    // A missing .env is normal; a malformed one is reported.
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            eprintln!("warning: could not read .env: {error}");
        }
    }
    ConnectorEnv::from_process()
}

fn load_config(env: &ConnectorEnv) -> Result<HostConfig, ExitCode> {
    HostConfig::from_env(env).map_err(|problems| {
        eprintln!("patchbay: invalid configuration:");
        for problem in problems {
            eprintln!("  - {problem}");
        }
        ExitCode::from(2)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    // `.env` first, so the CLI's variables (PATCHBAY_URL, PATCHBAY_API_KEY) may come from it.
    let env = load_env();
    let cli = Cli::parse();
    match run(cli.command, env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

async fn run(command: Command, env: ConnectorEnv) -> Result<(), ExitCode> {
    match command {
        Command::Serve => serve(env).await,
        Command::Connectors {
            command: ConnectorsCommand::List { json },
        } => list_connectors(&env, json),
        Command::ApiKeys { command } => match command {
            ApiKeysCommand::Create { user, org } => create_api_key(env, user, org).await,
            ApiKeysCommand::List { user, org } => list_api_keys(env, user, org).await,
            ApiKeysCommand::Revoke { prefix } => revoke_api_key(env, prefix).await,
        },
        Command::ConnectLinks {
            command:
                ConnectLinksCommand::Create {
                    user,
                    org,
                    connector,
                    valid_hours,
                },
        } => create_connect_link(env, user, org, connector, valid_hours).await,
        Command::Connections { service, command } => {
            let client = service.client(env).await?;
            match command {
                ConnectionsCommand::List { json } => list_connections(&client, json).await,
                ConnectionsCommand::Validate { connection } => {
                    validate_connection(&client, &connection).await
                }
            }
        }
        Command::Alerts {
            service,
            command: AlertsCommand::Tail { after, json },
        } => tail_alerts(&service.client(env).await?, after, json).await,
        Command::Mcp { user, org } => serve_mcp_stdio(env, user, org).await,
        Command::Secrets {
            command: SecretsCommand::Sweep { grace_secs },
        } => sweep_orphaned_secrets(env, std::time::Duration::from_secs(grace_secs)).await,
        Command::Query {
            service,
            connection,
            operation,
            params,
        } => {
            run_query(
                &service.client(env).await?,
                &connection,
                &operation,
                &params,
            )
            .await
        }
    }
}

impl Service {
    /// A client of the running service, or of this process's own router with --user.
    async fn client(&self, env: ConnectorEnv) -> Result<ApiClient, ExitCode> {
        if let Some(user) = self.user.as_deref() {
            let user = user.trim();
            if user.is_empty() {
                return Err(fail("--user", "must not be empty"));
            }
            let tenant = Tenant {
                user_id: user.to_owned(),
                org_id: self.org.clone(),
            };
            let config = load_config(&env)?;
            let host = HostBuilder::new(config, env)
                .principal_extractor(Arc::new(auth::FixedPrincipal(tenant)))
                .build()
                .await
                .map_err(|e| fail("opening the service's data", e))?;
            return Ok(ApiClient::in_process(host.router()));
        }
        let Some(api_key) = self.api_key.as_deref().filter(|key| !key.trim().is_empty()) else {
            eprintln!(
                "patchbay: {}: not set; create a key with `patchbay api-keys create --user <user>` and export it",
                client::API_KEY_VAR
            );
            return Err(ExitCode::from(client::exit_code(Some(
                patchbay_core::ErrorKind::InvalidConfig,
            ))));
        };
        ApiClient::new(&self.url, SecretString::from(api_key.trim()))
            .map_err(|failure| api_failure("connecting", failure))
    }
}

/// Prints an API failure with its hint and exits with its kind's status.
fn api_failure(context: &str, failure: ApiFailure) -> ExitCode {
    eprintln!("patchbay: {context}: {failure}");
    ExitCode::from(client::exit_code(failure.kind))
}

fn print_json(value: &serde_json::Value) -> Result<(), ExitCode> {
    let text = serde_json::to_string_pretty(value).map_err(|e| fail("printing JSON", e))?;
    println!("{text}");
    Ok(())
}

async fn list_connections(client: &ApiClient, json: bool) -> Result<(), ExitCode> {
    let listed = client
        .list_connections()
        .await
        .map_err(|failure| api_failure("listing connections", failure))?;
    if json {
        return print_json(&listed);
    }
    let connections = listed["connections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if connections.is_empty() {
        eprintln!("No connections.");
        return Ok(());
    }
    let text = |connection: &serde_json::Value, key: &str| {
        connection[key].as_str().unwrap_or("-").to_owned()
    };
    let rows: Vec<[String; 5]> = connections
        .iter()
        .map(|connection| {
            [
                text(connection, "id"),
                text(connection, "connector"),
                text(connection, "label"),
                text(connection, "status"),
                text(connection, "validated_at"),
            ]
        })
        .collect();
    let header = ["ID", "CONNECTOR", "LABEL", "STATUS", "VALIDATED"];
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 5]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(header));
    for row in &rows {
        println!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    Ok(())
}

async fn validate_connection(client: &ApiClient, connection: &str) -> Result<(), ExitCode> {
    let answer = client
        .validate(connection)
        .await
        .map_err(|failure| api_failure("validating", failure))?;
    let report = &answer["report"];
    for check in report["checks"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {}: {}",
            check["outcome"].as_str().unwrap_or("?"),
            check["id"].as_str().unwrap_or("?"),
            check["detail"].as_str().unwrap_or_default()
        );
    }
    let overall = report["overall"].as_str().unwrap_or("failed");
    println!("overall: {overall}");
    if overall == "failed" {
        return Err(ExitCode::FAILURE);
    }
    Ok(())
}

async fn run_query(
    client: &ApiClient,
    connection: &str,
    operation: &str,
    params: &str,
) -> Result<(), ExitCode> {
    let params: serde_json::Value = serde_json::from_str(params).map_err(|error| {
        eprintln!(
            "patchbay: params: not JSON ({error}); pass an object such as '{{\"limit\": 10}}'"
        );
        ExitCode::from(client::exit_code(Some(
            patchbay_core::ErrorKind::InvalidInput,
        )))
    })?;
    let output = client
        .query(connection, operation, params)
        .await
        .map_err(|failure| api_failure(operation, failure))?;
    print_json(&output)?;
    if output["truncated"] == serde_json::Value::Bool(true) {
        match output["next_cursor"].as_str() {
            Some(cursor) => eprintln!(
                "patchbay: the result was cut short; add \"cursor\": \"{cursor}\" to the parameters for the next page"
            ),
            None => eprintln!("patchbay: the result was cut short by the output cap"),
        }
    }
    Ok(())
}

async fn tail_alerts(client: &ApiClient, after: Option<i64>, json: bool) -> Result<(), ExitCode> {
    use std::io::Write;
    client
        .follow_alerts(after, |alert| {
            let line = if json {
                alert.to_string()
            } else {
                alert_line(alert)
            };
            // Each alert is flushed at once, so a pipe sees it as it arrives.
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        })
        .await
        .map_err(|failure| api_failure("following alerts", failure))
}

/// One alert on one line: when, severity, status, source, title, and its cursor.
fn alert_line(alert: &serde_json::Value) -> String {
    let text = |key: &str| alert[key].as_str().unwrap_or("-").to_owned();
    format!(
        "{}  {:<8} {:<12} {:<12} {}  [#{}]",
        text("received_at"),
        text("severity"),
        text("status"),
        text("source"),
        text("title"),
        alert["cursor"]
    )
}

async fn serve_mcp_stdio(
    env: ConnectorEnv,
    user: String,
    org: Option<String>,
) -> Result<(), ExitCode> {
    use rmcp::ServiceExt;
    let user = user.trim().to_owned();
    if user.is_empty() {
        return Err(fail("--user", "must not be empty"));
    }
    let config = load_config(&env)?;
    let host = HostBuilder::new(config, env)
        .build()
        .await
        .map_err(|e| fail("opening the service's data", e))?;
    let tenant = Tenant {
        user_id: user,
        org_id: org,
    };
    // Standard output carries the protocol: nothing else may be printed there.
    let server = patchbay_host::mcp::PatchbayMcp::for_tenant(host.state().clone(), tenant)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| fail("starting MCP on stdio", e))?;
    server
        .waiting()
        .await
        .map_err(|e| fail("serving MCP on stdio", e))?;
    Ok(())
}

async fn sweep_orphaned_secrets(
    env: ConnectorEnv,
    grace: std::time::Duration,
) -> Result<(), ExitCode> {
    let config = load_config(&env)?;
    let host = HostBuilder::new(config, env)
        .build()
        .await
        .map_err(|e| fail("opening the service's data", e))?;
    let sweep = host
        .state()
        .connections()
        .sweep_orphaned_secrets(grace)
        .await
        .map_err(|e| fail("sweeping orphaned secrets", e))?;
    for reference in &sweep.removed {
        println!("removed {reference}");
    }
    eprintln!(
        "patchbay: {} secrets stored, {} without a connection removed",
        sweep.listed,
        sweep.removed.len()
    );
    Ok(())
}

/// Sweeps orphaned secrets every [`ORPHAN_SWEEP_INTERVAL`] while the service runs;
/// a failed sweep is logged and tried again at the next interval.
async fn sweep_orphaned_secrets_periodically(state: patchbay_host::AppState) {
    let mut interval = tokio::time::interval(ORPHAN_SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match state
            .connections()
            .sweep_orphaned_secrets(ORPHAN_GRACE)
            .await
        {
            Ok(sweep) if !sweep.removed.is_empty() => tracing::warn!(
                removed = sweep.removed.len(),
                "removed secrets no connection pointed to"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(kind = %error.kind(), message = %error.message(), "sweeping orphaned secrets failed")
            }
        }
    }
}

fn fail(context: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("patchbay: {context}: {error}");
    ExitCode::FAILURE
}

fn list_connectors(env: &ConnectorEnv, json: bool) -> Result<(), ExitCode> {
    let registry = connectors::registry(env).map_err(|e| fail("building connectors", e))?;
    if json {
        let documents: Vec<_> = registry
            .descriptors()
            .map(|descriptor| descriptor.document())
            .collect();
        let text = serde_json::to_string_pretty(&serde_json::json!({ "connectors": documents }))
            .map_err(|e| fail("printing connectors", e))?;
        println!("{text}");
    } else {
        for descriptor in registry.descriptors() {
            let operations: Vec<_> = (descriptor.operations)()
                .into_iter()
                .map(|operation| operation.name)
                .collect();
            println!(
                "{:<12} {:<14} {}",
                descriptor.id,
                format!("{:?}", descriptor.category).to_lowercase(),
                operations.join(", ")
            );
        }
    }
    Ok(())
}

async fn create_api_key(
    env: ConnectorEnv,
    user: String,
    org: Option<String>,
) -> Result<(), ExitCode> {
    if user.trim().is_empty() {
        return Err(fail("--user", "must not be empty"));
    }
    let records = open_records_for_cli(&env).await?;
    let key = auth::create_api_key(
        records.as_ref(),
        Tenant {
            user_id: user,
            org_id: org,
        },
    )
    .await
    .map_err(|e| fail("storing the API key", e))?;
    println!("{}", key.expose());
    eprintln!("Store this key now: it is shown once. Send it as `Authorization: Bearer <key>`.");
    Ok(())
}

async fn create_connect_link(
    env: ConnectorEnv,
    user: String,
    org: Option<String>,
    connector: String,
    valid_hours: u32,
) -> Result<(), ExitCode> {
    if user.trim().is_empty() {
        return Err(fail("--user", "must not be empty"));
    }
    let registry = connectors::registry(&env).map_err(|e| fail("building connectors", e))?;
    if registry.descriptor(&connector).is_none() {
        let known: Vec<_> = registry.descriptors().map(|d| d.id).collect();
        return Err(fail(
            "--connector",
            format!(
                "`{connector}` is not an enabled connector; choose one of: {}",
                known.join(", ")
            ),
        ));
    }
    let config = load_config(&env)?;
    let records = open_records_for_cli(&env).await?;
    let token = patchbay_host::session::create_connect_link(
        records.as_ref(),
        Tenant {
            user_id: user,
            org_id: org,
        },
        &connector,
        chrono::TimeDelta::hours(i64::from(valid_hours)),
    )
    .await
    .map_err(|e| fail("storing the connect link", e))?;
    println!(
        "{}",
        patchbay_host::session::connect_link_url(&config.public_url, &token)
    );
    eprintln!(
        "Send this link to the person who connects: it opens once within {valid_hours} h, and is shown only now."
    );
    Ok(())
}

async fn open_records_for_cli(
    env: &ConnectorEnv,
) -> Result<Arc<dyn patchbay_store::RecordStore>, ExitCode> {
    let config = load_config(env)?;
    patchbay_host::open_records(&config)
        .await
        .map_err(|e| fail("opening the records database", e))
}

/// How a key is named in listings: its prefix, or its id for keys from before prefixes.
fn shown_name(key: &ApiKeyRecord) -> &str {
    key.prefix.as_deref().unwrap_or(&key.id)
}

async fn list_api_keys(
    env: ConnectorEnv,
    user: Option<String>,
    org: Option<String>,
) -> Result<(), ExitCode> {
    let records = open_records_for_cli(&env).await?;
    let keys = records
        .list_api_keys(user.as_deref(), org.as_deref())
        .await
        .map_err(|e| fail("listing API keys", e))?;
    if keys.is_empty() {
        eprintln!("No API keys.");
        return Ok(());
    }
    let time =
        |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let name_width = keys
        .iter()
        .map(|key| shown_name(key).len())
        .chain([auth::API_KEY_SHOWN_LEN])
        .max()
        .unwrap_or(auth::API_KEY_SHOWN_LEN);
    let user_width = keys
        .iter()
        .map(|key| key.tenant.user_id.len())
        .chain(["USER".len()])
        .max()
        .unwrap_or(0);
    let org_width = keys
        .iter()
        .map(|key| key.tenant.org_id.as_deref().unwrap_or("-").len())
        .chain(["ORG".len()])
        .max()
        .unwrap_or(0);
    println!(
        "{:<name_width$}  {:<user_width$}  {:<org_width$}  {:<20}  LAST USED",
        "PREFIX", "USER", "ORG", "CREATED"
    );
    for key in &keys {
        println!(
            "{:<name_width$}  {:<user_width$}  {:<org_width$}  {:<20}  {}",
            shown_name(key),
            key.tenant.user_id,
            key.tenant.org_id.as_deref().unwrap_or("-"),
            time(key.created_at),
            key.last_used_at.map_or_else(|| "never".to_owned(), time),
        );
    }
    Ok(())
}

async fn revoke_api_key(env: ConnectorEnv, prefix: String) -> Result<(), ExitCode> {
    let records = open_records_for_cli(&env).await?;
    let prefix = prefix.trim();
    match records
        .revoke_api_key(prefix)
        .await
        .map_err(|e| fail("revoking the API key", e))?
    {
        Some(key) => {
            println!(
                "Revoked API key {} of user {}{}.",
                shown_name(&key),
                key.tenant.user_id,
                key.tenant
                    .org_id
                    .as_deref()
                    .map(|org| format!(" in organisation {org}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        None => Err(fail(
            "revoking the API key",
            format!("no API key with prefix {prefix}; `patchbay api-keys list` shows them"),
        )),
    }
}

async fn serve(env: ConnectorEnv) -> Result<(), ExitCode> {
    let config = load_config(&env)?;
    telemetry::init(config.log_format);
    let started = std::time::Instant::now();
    let listen = config.listen;
    let mut builder = HostBuilder::new(config.clone(), env.clone());
    if config.secrets_backend == SecretsBackend::Vault {
        // Secrets written in the layout that filed organisations and users together
        // move before any request can read them.
        let records = patchbay_host::open_records(&config)
            .await
            .map_err(|e| fail("starting", e))?;
        let vault = VaultConfig::from_env(&env).map_err(|e| fail("starting", e))?;
        let vault = VaultSecretStore::connect(vault)
            .await
            .map_err(|e| fail("starting", e))?;
        vault
            .migrate_legacy_layout(records.as_ref())
            .await
            .map_err(|e| fail("moving Vault secrets to the orgs/ and users/ layout", e))?;
        builder = builder.records(records).secrets(Arc::new(vault));
    }
    let host = builder.build().await.map_err(|e| fail("starting", e))?;
    tokio::spawn(sweep_orphaned_secrets_periodically(host.state().clone()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| fail(&format!("listening on {listen}"), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| fail("reading the listen address", e))?;
    tracing::info!(
        connectors = ?host.state().registry.ids(),
        secrets = host.state().secrets.backend(),
        "registered connectors"
    );
    tracing::info!(
        %address,
        startup_ms = started.elapsed().as_millis() as u64,
        "patchbay listening"
    );
    host.serve(listener, shutdown_signal())
        .await
        .map_err(|e| fail("serving", e))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
