//! The Patchbay connector SDK.
//!
//! A connector crate implements [`Connector`] for one provider and submits a
//! [`ConnectorDescriptor`] with [`inventory::submit!`]; a host collects every
//! descriptor into a [`Registry`] and drives connectors through the object-safe
//! [`DynConnector`] twin.
#![deny(missing_docs)]

pub mod alert;
pub mod connector;
pub mod descriptor;
pub mod env;
pub mod error;
pub mod metrics;
pub mod oauth;
pub mod operation;
pub mod registry;
pub mod secret;
pub mod slots;
pub mod tenant;
pub mod time;
pub mod validation;
pub mod webhook;

pub use alert::{AlertSeverity, AlertStatus, EventKind, NormalizedAlert};
pub use connector::{
    parse_params, unknown_operation, AuthRequest, Connector, ConnectorContext, Credentials,
    DynConnector, DynCredentials, FormFields, NoSecrets, QueryOutput,
};
pub use descriptor::{
    build_from_env, schema_of, AuthKind, Category, ConnectorDescriptor, EnvVar, FromEnv,
    OperationDescriptor, WebhookAuth, WebhookDescriptor, WebhookMethod,
};
pub use env::ConnectorEnv;
pub use error::{Error, ErrorKind, Result};
pub use oauth::{
    ClientAuthStyle, OAuthClientCredentials, OAuthGrant, OAuthRegion, OAuthSpec, RegionalOAuth,
    RevokeOutcome,
};
pub use operation::{OperationOutput, OperationSpec, MAX_OUTPUT_BYTES};
pub use registry::Registry;
pub use secret::{RevealedJson, Secret, SecretString};
pub use slots::{OAuthTokens, ProviderWebhookSecret};
pub use tenant::Tenant;
pub use validation::{
    CheckOutcome, CheckTimer, ValidationCheck, ValidationReport, ValidationStatus,
};
pub use webhook::{
    is_bearer_header, token_hash, token_header_value, InboundWebhook, SetupValue,
    UnverifiedDelivery, VerifiedDelivery, WebhookEvent, WebhookKey, WebhookOutcome, WebhookReply,
    WebhookRoute, WebhookSetup, WebhookSetupField,
};

#[doc(hidden)]
pub use inventory as __inventory;
#[doc(hidden)]
pub use schemars as __schemars;
#[doc(hidden)]
pub use serde_json as __serde_json;
