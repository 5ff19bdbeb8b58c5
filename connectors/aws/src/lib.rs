//! The Amazon Web Services connector. Patchbay reaches a customer's AWS account by
//! assuming an IAM role the customer created to trust Patchbay's own AWS account
//! with a server-generated ExternalId (STS `AssumeRole`), and reads CloudWatch
//! alarms, metrics and logs, CloudTrail events, EC2 instances and EKS clusters
//! through the official SDK. No customer secret exists; session credentials stay
//! in memory. See the crate README for the checks, operations and caps.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;

use std::sync::Arc;

use async_trait::async_trait;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, EnvVar, Error,
    ErrorKind, FromEnv, QueryOutput, Result, SecretString, ValidationCheck, ValidationReport,
};
use patchbay_http::HttpClient;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

pub use auth::{AwsSecrets, ConnectForm};
use client::{Clients, Session, ACCESS_DENIED, CANNOT_ASSUME, PROBE_SESSION_SECONDS};
pub use client::{Platform, PlatformCredentials};
pub use config::AwsConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "aws";

/// The CloudFormation template the quick-create link uses: a role trusting the
/// platform account with the ExternalId, `ReadOnlyAccess` attached.
pub const TEMPLATE_URL_VAR: &str = "PATCHBAY_AWS_CFN_TEMPLATE_URL";

/// What the registry knows about the Amazon Web Services connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Amazon Web Services",
    category: Category::Cloud,
    auth_kinds: &[AuthKind::AssumeRole],
    env_vars: &[
        EnvVar {
            name: "AWS_ACCESS_KEY_ID",
            required: false,
            secret: false,
            description: "Access key of Patchbay's own AWS identity (it needs only sts:AssumeRole and sts:GetCallerIdentity); without it the standard AWS chain is used (profile, web identity, container or instance role)",
        },
        EnvVar {
            name: "AWS_SECRET_ACCESS_KEY",
            required: false,
            secret: true,
            description: "Secret access key of Patchbay's own AWS identity",
        },
        EnvVar {
            name: "AWS_SESSION_TOKEN",
            required: false,
            secret: true,
            description: "Session token, when Patchbay's own credentials are temporary",
        },
        EnvVar {
            name: "AWS_DEFAULT_REGION",
            required: false,
            secret: false,
            description: "Region of Patchbay's STS calls and the default connect region (us-east-1)",
        },
        EnvVar {
            name: "AWS_REGION",
            required: false,
            secret: false,
            description: "Overrides AWS_DEFAULT_REGION, as in the AWS SDKs",
        },
        EnvVar {
            name: "AWS_ENDPOINT_URL",
            required: false,
            secret: false,
            description: "Endpoint for every AWS service (a VPC endpoint or an emulator), as in the AWS SDKs",
        },
        EnvVar {
            name: "AWS_ENDPOINT_URL_STS",
            required: false,
            secret: false,
            description: "Endpoint for STS only",
        },
        EnvVar {
            name: "AWS_ENDPOINT_URL_CLOUDWATCH",
            required: false,
            secret: false,
            description: "Endpoint for CloudWatch only",
        },
        EnvVar {
            name: "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
            required: false,
            secret: false,
            description: "Endpoint for CloudWatch Logs only",
        },
        EnvVar {
            name: "AWS_ENDPOINT_URL_CLOUDTRAIL",
            required: false,
            secret: false,
            description: "Endpoint for CloudTrail only",
        },
        EnvVar {
            name: "AWS_ENDPOINT_URL_EC2",
            required: false,
            secret: false,
            description: "Endpoint for EC2 only",
        },
        EnvVar {
            name: "AWS_ENDPOINT_URL_EKS",
            required: false,
            secret: false,
            description: "Endpoint for EKS only",
        },
        EnvVar {
            name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            required: false,
            secret: false,
            description: "`true` ignores the AWS_ENDPOINT_URL variables, as in the AWS SDKs",
        },
        EnvVar {
            name: client::EXTERNAL_ID_KEY_VAR,
            required: true,
            secret: true,
            description: "A long random value the per-tenant ExternalIds are derived from; keep it stable, or every trust policy must be updated",
        },
        EnvVar {
            name: TEMPLATE_URL_VAR,
            required: false,
            secret: false,
            description: "URL of the CloudFormation template behind the onboarding quick-create link",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    oauth: None,
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<AwsConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Amazon Web Services connector: the platform's AWS identity and the session
/// cache, created on first use; never a customer secret.
#[derive(Clone)]
pub struct AwsConnector {
    env: ConnectorEnv,
    http: HttpClient,
    credentials: Arc<dyn Fn() -> PlatformCredentials + Send + Sync>,
    clock: Option<client::Clock>,
    platform: Arc<OnceCell<Platform>>,
}

impl std::fmt::Debug for AwsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConnector").finish_non_exhaustive()
    }
}

impl AwsConnector {
    /// A connector configured from `env` (the descriptor's variables) sending
    /// through `http`.
    pub fn new(env: ConnectorEnv, http: HttpClient) -> Self {
        Self {
            env,
            http,
            credentials: Arc::new(|| PlatformCredentials::Standard),
            clock: None,
            platform: Arc::default(),
        }
    }

    /// The same connector with no platform credentials at all (tests of the
    /// guide's "Unable to determine … account ID").
    pub fn without_platform_credentials(mut self) -> Self {
        self.credentials = Arc::new(|| PlatformCredentials::None);
        self
    }

    /// The same connector reading the time for its session cache from `clock`.
    pub fn with_clock(mut self, clock: client::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The platform side, built on first use.
    pub async fn platform(&self) -> &Platform {
        self.platform
            .get_or_init(|| async {
                let platform =
                    Platform::from_env(&self.env, self.http.clone(), (self.credentials)()).await;
                match &self.clock {
                    Some(clock) => platform.with_clock(clock.clone()),
                    None => platform,
                }
            })
            .await
    }

    /// What a user needs before connecting, for the tenant of `ctx`: Patchbay's
    /// account id, the tenant's ExternalId, the trust policy and a CloudFormation
    /// quick-create link.
    pub async fn onboarding_info(&self, ctx: &ConnectorContext) -> Result<Value> {
        let platform = self.platform().await;
        let account_id = platform.account_id().await?;
        let external_id = platform.external_id(&tenant_scope(ctx))?;
        let region = platform.region().to_owned();
        let mut answer = json!({
            "account_id": account_id,
            "external_id": external_id.expose(),
            "role_name": "PatchbayRole",
            "permissions": ["ReadOnlyAccess"],
            "trust_policy": trust_policy(&account_id, external_id.expose()),
            "region": region,
        });
        if let Some(template) = self.env.get(TEMPLATE_URL_VAR) {
            let stack = &hex_of(external_id.expose())[..8];
            let link = format!(
                "https://console.aws.amazon.com/cloudformation/home?region={region}#/stacks/quickcreate?stackName=patchbay-role-{stack}&templateURL={}&param_PatchbayAccountId={account_id}&param_ExternalId={}&param_RoleType=ReadOnly",
                percent(template.trim()),
                percent(external_id.expose()),
            );
            answer["cloudformation_url"] = Value::String(link);
        }
        Ok(answer)
    }
}

fn hex_of(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn percent(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|encoded| encoded.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// The trust policy the guide shows, with the account id and ExternalId filled in.
pub fn trust_policy(account_id: &str, external_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "AWS": format!("arn:aws:iam::{account_id}:root")
                },
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {
                        "sts:ExternalId": external_id
                    }
                }
            }
        ]
    })
}

/// The scope an ExternalId belongs to: the organisation when there is one,
/// otherwise the user, so every member of an organisation shares it.
fn tenant_scope(ctx: &ConnectorContext) -> String {
    ctx.tenant
        .as_ref()
        .map_or_else(|| "embedded".to_owned(), |tenant| tenant.scope_key())
}

impl FromEnv for AwsConnector {
    /// A connector configured from `env` (the AWS variables, the ExternalId key,
    /// `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(env.clone(), HttpClient::from_env(env)?))
    }
}

const PLATFORM_CHECK: (&str, &str) = (
    "platform_identity",
    "Patchbay's own AWS identity answers sts:GetCallerIdentity (the account the role must trust)",
);
const EXTERNAL_ID_CHECK: (&str, &str) =
    ("external_id", "Patchbay has an ExternalId for this tenant");
const ASSUME_CHECK: (&str, &str) = (
    "assume_role",
    "sts:AssumeRole on the role with the tenant's ExternalId succeeds",
);
const ENFORCED_CHECK: (&str, &str) = (
    "external_id_enforced",
    "sts:AssumeRole on the role WITHOUT the ExternalId is refused (the trust policy requires it)",
);
const READ_ONLY_ASSUME_CHECK: (&str, &str) = (
    "read_only_assume_role",
    "sts:AssumeRole on the read-only role with the tenant's ExternalId succeeds",
);
const READ_ONLY_ENFORCED_CHECK: (&str, &str) = (
    "read_only_external_id_enforced",
    "sts:AssumeRole on the read-only role WITHOUT the ExternalId is refused",
);
const IDENTITY_CHECK: (&str, &str) = (
    "assumed_identity",
    "sts:GetCallerIdentity with the session names the role in the customer's account",
);

/// One probe per service the operations use: (check id, action).
const PROBES: &[(&str, &str)] = &[
    ("permission:cloudwatch", "cloudwatch:DescribeAlarms"),
    ("permission:logs", "logs:DescribeLogGroups"),
    ("permission:cloudtrail", "cloudtrail:LookupEvents"),
    ("permission:ec2", "ec2:DescribeInstances"),
    ("permission:eks", "eks:ListClusters"),
];

/// Runs one permission probe with the session's clients.
async fn probe(clients: &Clients, action: &str) -> Result<String> {
    let outcome = match action {
        "cloudwatch:DescribeAlarms" => clients
            .cloudwatch
            .describe_alarms()
            .max_records(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| clients.error(action, error)),
        "logs:DescribeLogGroups" => clients
            .logs
            .describe_log_groups()
            .limit(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| clients.error(action, error)),
        "cloudtrail:LookupEvents" => clients
            .cloudtrail
            .lookup_events()
            .max_results(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| clients.error(action, error)),
        "ec2:DescribeInstances" => clients
            .ec2
            .describe_instances()
            .max_results(5)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| clients.error(action, error)),
        "eks:ListClusters" => clients
            .eks
            .list_clusters()
            .max_results(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| clients.error(action, error)),
        other => Err(Error::internal(format!("no probe for {other}"))),
    };
    outcome.map(|()| format!("{action} is allowed"))
}

/// The guide's "cannot assume" error with the checklist of what to verify.
fn cannot_assume(cause: &Error, role_arn: &str, account_id: &str, platform_account: &str) -> Error {
    let kind = match cause.kind() {
        ErrorKind::PermissionDenied | ErrorKind::AuthFailed => ErrorKind::AuthFailed,
        other => other,
    };
    Error::new(kind, format!("{CANNOT_ASSUME}: {}", cause.message()))
        .with_connector(CONNECTOR_ID)
        .with_hint(format!(
            "Verify trust policy has correct Patchbay Account ID and External ID: the role \
             {role_arn} must exist in account {account_id}; its trust policy's Principal must \
             be arn:aws:iam::{platform_account}:root with Action sts:AssumeRole; its Condition \
             StringEquals sts:ExternalId must be the External ID shown in Patchbay's AWS \
             onboarding; and Patchbay's own identity must be allowed sts:AssumeRole"
        ))
}

/// Runs the assume checks for one role; the session when both passed.
async fn check_role(
    platform: &Platform,
    checks: &mut Vec<ValidationCheck>,
    (assume, enforced): ((&str, &str), (&str, &str)),
    role_arn: &str,
    config: &AwsConfig,
    platform_account: &str,
    external_id: &SecretString,
) -> Option<Session> {
    let (region, account_id) = (config.region.as_str(), config.account_id.as_str());
    let timer = CheckTimer::start();
    let session = platform
        .assume_role(role_arn, region, Some(external_id), PROBE_SESSION_SECONDS)
        .await
        .map_err(|error| cannot_assume(&error, role_arn, account_id, platform_account));
    let detail = session
        .as_ref()
        .map(|_| format!("assumed {role_arn}"))
        .map_err(|error| {
            Error::new(error.kind(), error.message()).with_hint(error.hint().unwrap_or_default())
        });
    checks.push(timer.finish(assume.0, assume.1, true, detail));
    let Ok(session) = session else {
        checks.push(CheckTimer::skipped(enforced.0, enforced.1, true));
        return None;
    };
    // Fail closed: only an explicit refusal proves the condition is enforced.
    let timer = CheckTimer::start();
    let without = platform
        .assume_role(role_arn, region, None, PROBE_SESSION_SECONDS)
        .await;
    let outcome = match without {
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            Ok("refused without the ExternalId".to_owned())
        }
        Ok(_) => Err(Error::new(
            ErrorKind::AuthFailed,
            format!(
                "Role {role_arn} does not require ExternalId in its trust policy: anyone who \
                 knows the role ARN could make Patchbay use it"
            ),
        )
        .with_hint(
            "add the Condition StringEquals sts:ExternalId with the External ID shown in \
             Patchbay's AWS onboarding to the role's trust policy, then connect again",
        )),
        Err(error) => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "could not prove that the role requires the ExternalId: {}",
                error.message()
            ),
        )
        .with_hint("try connecting again; the connection is refused until this check passes")),
    };
    let passed = outcome.is_ok();
    checks.push(timer.finish(enforced.0, enforced.1, true, outcome));
    passed.then_some(session)
}

#[async_trait]
impl Connector for AwsConnector {
    type Config = AwsConfig;
    type Secrets = AwsSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<AwsConfig, AwsSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            _ => Err(Error::unsupported(
                "Amazon Web Services connects with a role ARN form, not through OAuth",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("send role_arn (and optionally read_only_role_arn and region)")),
        }
    }

    /// Checks, in order: Patchbay's own identity, the tenant's ExternalId,
    /// `AssumeRole` with it, `AssumeRole` without it refused (fail closed), the same
    /// for the read-only role, the assumed identity, then one permission probe per
    /// service. Stores the ExternalId with the connection.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<AwsConfig, AwsSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating an AWS role");
        let platform = self.platform().await;
        let config = credentials.config.clone();
        let mut checks = Vec::new();
        let skip_from = |checks: &mut Vec<ValidationCheck>, from: usize| {
            let all = [
                EXTERNAL_ID_CHECK,
                ASSUME_CHECK,
                ENFORCED_CHECK,
                READ_ONLY_ASSUME_CHECK,
                READ_ONLY_ENFORCED_CHECK,
                IDENTITY_CHECK,
            ];
            for (id, description) in &all[from..] {
                if config.read_only_role_arn.is_some() || !id.starts_with("read_only") {
                    checks.push(CheckTimer::skipped(id, description, true));
                }
            }
            for (id, action) in PROBES {
                checks.push(CheckTimer::skipped(id, &probe_description(action), false));
            }
        };

        let timer = CheckTimer::start();
        let platform_account = platform.account_id().await;
        let detail = platform_account
            .as_ref()
            .map(|account| format!("Patchbay's AWS account is {account}"))
            .map_err(|error| {
                Error::new(error.kind(), error.message())
                    .with_hint(error.hint().unwrap_or_default())
            });
        checks.push(timer.finish(PLATFORM_CHECK.0, PLATFORM_CHECK.1, true, detail));
        let Ok(platform_account) = platform_account else {
            skip_from(&mut checks, 0);
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        };

        let timer = CheckTimer::start();
        let external_id = credentials
            .secrets
            .external_id
            .clone()
            .map_or_else(|| platform.external_id(&tenant_scope(ctx)), Ok);
        let detail = external_id
            .as_ref()
            .map(|_| "the tenant's ExternalId is ready".to_owned())
            .map_err(|error| {
                Error::new(error.kind(), error.message())
                    .with_hint(error.hint().unwrap_or_default())
            });
        checks.push(timer.finish(EXTERNAL_ID_CHECK.0, EXTERNAL_ID_CHECK.1, true, detail));
        let Ok(external_id) = external_id else {
            skip_from(&mut checks, 1);
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        };

        let main = check_role(
            platform,
            &mut checks,
            (ASSUME_CHECK, ENFORCED_CHECK),
            &config.role_arn,
            &config,
            &platform_account,
            &external_id,
        )
        .await;
        let mut session = main;
        if let Some(read_only) = &config.read_only_role_arn {
            if session.is_some() {
                session = check_role(
                    platform,
                    &mut checks,
                    (READ_ONLY_ASSUME_CHECK, READ_ONLY_ENFORCED_CHECK),
                    read_only,
                    &config,
                    &platform_account,
                    &external_id,
                )
                .await;
            } else {
                checks.push(CheckTimer::skipped(
                    READ_ONLY_ASSUME_CHECK.0,
                    READ_ONLY_ASSUME_CHECK.1,
                    true,
                ));
                checks.push(CheckTimer::skipped(
                    READ_ONLY_ENFORCED_CHECK.0,
                    READ_ONLY_ENFORCED_CHECK.1,
                    true,
                ));
            }
        }
        let Some(session) = session else {
            checks.push(CheckTimer::skipped(
                IDENTITY_CHECK.0,
                IDENTITY_CHECK.1,
                true,
            ));
            for (id, action) in PROBES {
                checks.push(CheckTimer::skipped(id, &probe_description(action), false));
            }
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        };

        let clients = platform.clients(&session, &config.region);
        let timer = CheckTimer::start();
        let identity = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|error| clients.error("sts:GetCallerIdentity", error))
            .and_then(|identity| {
                let arn = identity.arn().unwrap_or_default().to_owned();
                let role_name = auth::parse_role_arn(config.query_role())
                    .map(|arn| arn.name)
                    .unwrap_or_default();
                let expected = format!("assumed-role/{role_name}/");
                let account = identity.account().unwrap_or_default();
                if account == config.account_id
                    && arn.starts_with("arn:")
                    && arn.contains(&expected)
                {
                    Ok(arn)
                } else {
                    Err(Error::new(
                        ErrorKind::AuthFailed,
                        format!(
                            "the assumed identity is {arn} in account {account}, not the role \
                             {role_name} in account {}",
                            config.account_id
                        ),
                    ))
                }
            });
        let assumed_arn = identity.as_ref().ok().cloned();
        let detail = identity.map(|arn| format!("acting as {arn}"));
        let identity_check = timer.finish(IDENTITY_CHECK.0, IDENTITY_CHECK.1, true, detail);
        let identity_ok = identity_check.outcome == CheckOutcome::Ok;
        checks.push(identity_check);
        if !identity_ok {
            for (id, action) in PROBES {
                checks.push(CheckTimer::skipped(id, &probe_description(action), false));
            }
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }

        for (id, action) in PROBES {
            let timer = CheckTimer::start();
            let outcome = probe(&clients, action).await;
            checks.push(timer.finish(id, &probe_description(action), false, outcome));
        }
        credentials.config.assumed_arn = assumed_arn;
        credentials.secrets.external_id = Some(external_id);
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    /// Patchbay's account id, the tenant's ExternalId, the trust policy and the
    /// CloudFormation link, for the onboarding screen.
    async fn onboarding(&self, ctx: &ConnectorContext) -> Result<Value> {
        self.onboarding_info(ctx).await
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<AwsConfig, AwsSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "AWS query");
        if !query::OPERATION_NAMES.contains(&operation) {
            return Err(patchbay_core::unknown_operation(
                CONNECTOR_ID,
                operation,
                query::OPERATION_NAMES,
            ));
        }
        let platform = self.platform().await;
        let external_id = match &credentials.secrets.external_id {
            Some(external_id) => external_id.clone(),
            None => platform.external_id(&tenant_scope(ctx))?,
        };
        let config = &credentials.config;
        let session = platform
            .session(config.query_role(), &config.region, &external_id)
            .await
            .map_err(|error| match error.kind() {
                ErrorKind::PermissionDenied | ErrorKind::AuthFailed => Error::new(
                    ErrorKind::NeedsReauth,
                    "Role assumption failed -- the IAM role may have been deleted or the trust policy changed",
                )
                .with_connector(CONNECTOR_ID)
                .with_hint(format!(
                    "check the role {} and its trust policy, then reconnect ({})",
                    config.query_role(),
                    error.message()
                )),
                _ => error,
            })?;
        let api = query::AwsApi {
            platform,
            session,
            region: config.region.clone(),
        };
        query::run(&api, ctx, operation, params).await
    }
}

fn probe_description(action: &str) -> String {
    format!("The role may call {action} (the operations on this service need it; {ACCESS_DENIED} otherwise)")
}
