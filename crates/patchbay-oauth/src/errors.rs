//! The user-facing messages of the OAuth flow, one function per failure so the
//! callback page, the API and the tests agree on the wording.

use patchbay_core::{ConnectorDescriptor, Error, ErrorKind, OAuthRegion, OAuthSpec, RegionalOAuth};

/// The callback arrived without `state`.
pub fn missing_state() -> Error {
    Error::invalid_input("state", "Missing state parameter")
        .with_hint("open the connection flow from Patchbay again; the link must carry its state")
}

/// The state was never issued here (forged), or is too old to remember.
pub fn unknown_state() -> Error {
    Error::invalid_input(
        "state",
        "Unknown authorization state: this link was not issued by Patchbay or is too old",
    )
    .with_hint("start connecting again from Patchbay")
}

/// The state was issued but its ten minutes are over.
pub fn expired_state() -> Error {
    Error::invalid_input(
        "state",
        "The authorization request expired: finish it within 10 minutes of starting",
    )
    .with_hint("start connecting again from Patchbay")
}

/// The state was consumed before: a replayed callback.
pub fn reused_state() -> Error {
    Error::invalid_input("state", "This authorization link was already used")
        .with_hint("start connecting again from Patchbay; each link works once")
}

/// A start request named an option the connector's OAuth spec does not declare.
pub fn unknown_start_option(
    descriptor: &ConnectorDescriptor,
    spec: &OAuthSpec,
    option: &str,
) -> Error {
    let accepted = if spec.start_options.is_empty() {
        "it takes no options".to_owned()
    } else {
        format!("it takes: {}", spec.start_options.join(", "))
    };
    Error::invalid_input(
        format!("options.{option}"),
        format!(
            "{} OAuth does not accept the option `{option}`; {accepted}",
            descriptor.display_name
        ),
    )
    .with_connector(descriptor.id)
    .with_hint(
        "remove the option; a self-hosted server (such as GitHub Enterprise Server) connects \
         with a token and its base URL through POST /api/connections",
    )
}

/// The begin URL was opened before, or its flow already finished.
pub fn begun_twice() -> Error {
    Error::invalid_input(
        "state",
        "This sign-in link was already opened; each link opens once, in the browser that finishes it",
    )
    .with_hint("start connecting again from Patchbay")
}

/// The callback came to a browser the flow was not begun in (no or another binding cookie).
pub fn unbound_browser(descriptor: &ConnectorDescriptor) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "This {} authorization was not started in this browser, so Patchbay refused it",
            descriptor.display_name
        ),
    )
    .with_field("state")
    .with_connector(descriptor.id)
    .with_hint(
        "start connecting from Patchbay in this browser and finish there; never open a sign-in \
         link someone else sent you",
    )
}

/// The state belongs to another connector's flow.
pub fn wrong_connector(expected: &ConnectorDescriptor, started_for: &str) -> Error {
    Error::invalid_input(
        "state",
        format!(
            "This authorization was started for `{started_for}`, not {}",
            expected.display_name
        ),
    )
    .with_connector(expected.id)
    .with_hint("start connecting again from Patchbay")
}

/// The provider sent the person back with `error=...` instead of a code.
pub fn provider_refused(
    descriptor: &ConnectorDescriptor,
    code: &str,
    description: Option<&str>,
) -> Error {
    if let Some(error) =
        patchbay_core::oauth::connector_oauth_error(descriptor.id, code, description, None)
    {
        return error.with_connector(descriptor.id);
    }
    let name = descriptor.display_name;
    let (kind, message) = if code == "access_denied" {
        (
            ErrorKind::PermissionDenied,
            format!("{name} authorization was denied (access_denied)"),
        )
    } else {
        (
            ErrorKind::AuthFailed,
            format!("{name} reported an authorization error: {code}"),
        )
    };
    let message = match description.filter(|text| !text.trim().is_empty()) {
        Some(text) => format!("{message}: {text}"),
        None => message,
    };
    Error::new(kind, message)
        .with_connector(descriptor.id)
        .with_hint(format!(
            "approve the request at {name} to connect, or start again"
        ))
}

/// The callback carried neither a code nor an error.
pub fn missing_code(descriptor: &ConnectorDescriptor, redirect_uri: &str) -> Error {
    Error::invalid_input("code", "No authorization code provided")
        .with_connector(descriptor.id)
        .with_hint(format!(
            "Verify callback URL matches exactly: {redirect_uri}"
        ))
}

/// The client id or secret variables are unset.
pub fn credentials_not_configured(
    descriptor: &ConnectorDescriptor,
    id_vars: &[&str],
    secret_vars: &[&str],
) -> Error {
    let first = |vars: &[&str]| vars.first().copied().unwrap_or_default().to_owned();
    let id_var = first(id_vars);
    let secret_var = first(secret_vars);
    Error::invalid_config(
        id_var.clone(),
        format!(
            "{} OAuth credentials not configured: set {id_var} and {secret_var}",
            descriptor.display_name
        ),
    )
    .with_connector(descriptor.id)
    .with_hint("copy the client id and secret from the provider's OAuth app settings, then restart Patchbay")
}

/// A regional connector's start came without its region option.
pub fn region_required(
    descriptor: &ConnectorDescriptor,
    regional: &RegionalOAuth,
    configured: &[&str],
) -> Error {
    let offered = if configured.is_empty() {
        "no region is configured".to_owned()
    } else {
        format!("configured regions: {}", configured.join(", "))
    };
    Error::invalid_input(
        format!("options.{}", regional.option),
        format!(
            "{} OAuth needs the option `{}`; {offered}",
            descriptor.display_name, regional.option
        ),
    )
    .with_connector(descriptor.id)
    .with_hint(format!(
        "start again with options {{\"{}\": \"<region>\"}}",
        regional.option
    ))
}

/// A regional connector's start named a region it does not have.
pub fn unknown_region(
    descriptor: &ConnectorDescriptor,
    regional: &RegionalOAuth,
    configured: &[&str],
) -> Error {
    let offered = if configured.is_empty() {
        "no region is configured".to_owned()
    } else {
        format!("it takes one of: {}", configured.join(", "))
    };
    Error::invalid_input(
        format!("options.{}", regional.option),
        format!(
            "{} OAuth has no such `{}`; {offered}",
            descriptor.display_name, regional.option
        ),
    )
    .with_connector(descriptor.id)
}

/// The chosen region's client id or secret is unset.
pub fn region_not_configured(
    descriptor: &ConnectorDescriptor,
    regional: &RegionalOAuth,
    region: &OAuthRegion,
) -> Error {
    let first = |vars: &[&str]| vars.first().copied().unwrap_or_default().to_owned();
    let id_var = first(region.spec.client_id_env);
    let secret_var = first(region.spec.client_secret_env);
    Error::invalid_config(
        id_var.clone(),
        regional
            .not_configured_message
            .replace("{region}", region.name),
    )
    .with_connector(descriptor.id)
    .with_hint(format!(
        "set {id_var} and {secret_var}, then restart Patchbay"
    ))
}

/// A stored connection of a regional connector names no region its tokens can be refreshed in.
pub fn connection_without_region(descriptor: &ConnectorDescriptor, option: &str) -> Error {
    Error::new(
        ErrorKind::NeedsReauth,
        format!(
            "this {} connection does not say which `{option}` issued its tokens",
            descriptor.display_name
        ),
    )
    .with_connector(descriptor.id)
    .with_hint(format!("reconnect {}", descriptor.display_name))
}

/// A refresh was refused for good (`invalid_grant`): a person must reconnect.
pub fn needs_reauth(descriptor: &ConnectorDescriptor) -> Error {
    let name = descriptor.display_name;
    Error::new(
        ErrorKind::NeedsReauth,
        format!("the {name} authorization expired or was revoked; reconnect {name}"),
    )
    .with_connector(descriptor.id)
}

/// A token endpoint refused a request with an OAuth error code; the code is kept by name.
pub fn token_endpoint_refused(
    descriptor: &ConnectorDescriptor,
    code: &str,
    description: Option<&str>,
    redirect_uri: Option<&str>,
) -> Error {
    if let Some(error) =
        patchbay_core::oauth::connector_oauth_error(descriptor.id, code, description, redirect_uri)
    {
        return error.with_connector(descriptor.id);
    }
    let name = descriptor.display_name;
    let mut message = format!("{name} refused the token request: {code}");
    if let Some(text) = description.filter(|text| !text.trim().is_empty()) {
        message = format!("{message} ({text})");
    }
    let (kind, hint) = match code {
        "bad_redirect_uri" | "redirect_uri_mismatch" | "invalid_redirect_uri" => (
            ErrorKind::InvalidConfig,
            match redirect_uri {
                Some(uri) => {
                    format!("Redirect URL must match exactly in {name} App settings: {uri}")
                }
                None => format!("Redirect URL must match exactly in {name} App settings"),
            },
        ),
        "invalid_client"
        | "invalid_client_id"
        | "bad_client_secret"
        | "incorrect_client_credentials"
        | "unauthorized_client" => (
            ErrorKind::InvalidConfig,
            format!("check the {name} OAuth client id and secret Patchbay is configured with"),
        ),
        "bad_verification_code" | "invalid_code" | "code_already_used" | "invalid_grant" => (
            ErrorKind::AuthFailed,
            "the authorization code is wrong, expired or already used; start connecting again"
                .to_owned(),
        ),
        _ => (
            ErrorKind::AuthFailed,
            format!("start connecting again; if it keeps failing, check the {name} app settings"),
        ),
    };
    Error::new(kind, message)
        .with_connector(descriptor.id)
        .with_hint(hint)
}
