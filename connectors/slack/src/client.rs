//! A thin Slack Web API client: `https://slack.com/api/<method>` with the bot
//! token as a Bearer header, and Slack's `{"ok": false, "error": "..."}` answers
//! (sent with HTTP 200) mapped to errors users can act on.

use std::time::SystemTime;

use patchbay_core::{Error, ErrorKind, Result, SecretString};
use patchbay_http::{parse_retry_after, HttpClient, Method, Response};
use serde_json::Value;

use crate::CONNECTOR_ID;

/// The Slack Web API base URL.
pub const API_BASE: &str = "https://slack.com/api";

/// The message for a bot token Slack no longer accepts.
pub const INVALID_TOKEN_MESSAGE: &str = "Invalid or expired token";

/// What the caller was working on, for error messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallContext<'a> {
    /// The channel the call is about, if any.
    pub channel: Option<&'a str>,
    /// Whether the bot may join public channels itself (`channels:join` granted).
    pub can_join: bool,
}

/// Talks to Slack with one bot token.
pub struct SlackClient<'a> {
    http: &'a HttpClient,
    token: &'a SecretString,
}

impl<'a> SlackClient<'a> {
    /// A client sending `token` as the Bearer token.
    pub fn new(http: &'a HttpClient, token: &'a SecretString) -> Self {
        Self { http, token }
    }

    /// A read method called with GET and query parameters; returns the whole answer.
    pub async fn read(
        &self,
        method: &'static str,
        params: &[(&str, String)],
        context: CallContext<'_>,
    ) -> Result<(Value, Response)> {
        let mut request = self
            .http
            .request(Method::GET, &format!("{API_BASE}/{method}"))
            .connector(CONNECTOR_ID)
            .operation(method)
            .idempotent(true)
            .bearer_auth(self.token);
        if !params.is_empty() {
            request = request.query(params);
        }
        let response = request.send().await?;
        let body = answer(method, &response, context)?;
        Ok((body, response))
    }

    /// A method that changes state, POSTed as JSON and never repeated on 5xx.
    pub async fn write(
        &self,
        method: &'static str,
        body: &Value,
        context: CallContext<'_>,
    ) -> Result<Value> {
        let response = self
            .http
            .request(Method::POST, &format!("{API_BASE}/{method}"))
            .connector(CONNECTOR_ID)
            .operation(method)
            .idempotent(false)
            .bearer_auth(self.token)
            .json(body)
            .send()
            .await?;
        answer(method, &response, context)
    }

    /// `auth.revoke`: revokes the bot token; repeating it is harmless.
    pub async fn revoke(&self) -> Result<Value> {
        let response = self
            .http
            .request(Method::POST, &format!("{API_BASE}/auth.revoke"))
            .connector(CONNECTOR_ID)
            .operation("auth.revoke")
            .idempotent(true)
            .bearer_auth(self.token)
            .form(&[("test", "false")])
            .send()
            .await?;
        answer("auth.revoke", &response, CallContext::default())
    }
}

/// Maps HTTP failures, then Slack's `ok: false` answers, to errors.
fn answer(method: &str, response: &Response, context: CallContext<'_>) -> Result<Value> {
    let response = response.clone().error_for_status().map_err(|error| {
        if error.kind() == ErrorKind::RateLimited {
            rate_limited(method, error.retry_after(), error.provider_status())
        } else {
            error
        }
    })?;
    let body: Value = response.json()?;
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(body);
    }
    let code = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error");
    let retry_after = parse_retry_after(&response.headers, SystemTime::now());
    Err(slack_error(method, code, &body, context, retry_after)
        .with_provider_status(response.status.as_u16()))
}

/// The error for Slack's `error` code `code` answered to `method`.
pub fn slack_error(
    method: &str,
    code: &str,
    body: &Value,
    context: CallContext<'_>,
    retry_after: Option<std::time::Duration>,
) -> Error {
    let channel = context.channel.unwrap_or("(unknown)");
    let error = match code {
        "invalid_auth" | "token_revoked" | "account_inactive" | "not_authed" | "token_expired" => {
            Error::new(ErrorKind::AuthFailed, INVALID_TOKEN_MESSAGE).with_hint(
                "the Slack bot token was revoked, expired or the app was uninstalled; reconnect Slack",
            )
        }
        "missing_scope" => {
            let needed = body
                .get("needed")
                .and_then(Value::as_str)
                .unwrap_or("(not named by Slack)");
            Error::new(
                ErrorKind::PermissionDenied,
                format!("The Slack bot token lacks the `{needed}` scope needed by {method}"),
            )
            .with_hint(format!(
                "add `{needed}` under OAuth & Permissions > Bot Token Scopes in the Slack app, then reinstall the app"
            ))
        }
        "not_in_channel" => {
            let hint = if context.can_join {
                format!("invite the bot with `/invite @<bot>` in the channel, or let it join {channel} (conversations.join, allowed by `channels:join`)")
            } else {
                "invite the bot with `/invite @<bot>` in the channel".to_owned()
            };
            Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "Bot is not a member of channel {channel}. The bot must be invited to the channel first."
                ),
            )
            .with_field("channel")
            .with_hint(hint)
        }
        "channel_not_found" => Error::not_found(format!("Slack channel {channel} was not found"))
            .with_field("channel")
            .with_hint("use a channel id such as C0123ABCD (list_channels shows them); the bot sees public channels only"),
        "thread_not_found" => Error::not_found(format!("no Slack thread with that ts in {channel}"))
            .with_field("ts")
            .with_hint("use the `ts` (or `thread_ts`) of the thread's parent message"),
        "user_not_found" | "user_not_visible" => Error::not_found("Slack user not found")
            .with_field("user")
            .with_hint("use a user id such as U0123ABCD"),
        "ratelimited" | "rate_limited" => {
            return rate_limited(method, retry_after, None);
        }
        "invalid_cursor" => Error::invalid_input("cursor", "Slack rejected the cursor")
            .with_hint("pass `next_cursor` from the previous call unchanged"),
        "invalid_ts_oldest" => Error::invalid_input("oldest", "Slack rejected `oldest`"),
        "invalid_ts_latest" => Error::invalid_input("latest", "Slack rejected `latest`"),
        "invalid_limit" => Error::invalid_input("limit", "Slack rejected `limit`"),
        "no_text" | "msg_too_long" | "too_many_attachments" | "invalid_blocks" => {
            Error::invalid_input("text", format!("Slack rejected the message: {code}"))
        }
        "is_archived" => Error::invalid_input(
            "channel",
            format!("Slack channel {channel} is archived"),
        ),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            Error::unavailable(format!("Slack could not complete {method}: {code}"))
                .with_hint("Slack is having trouble; try again later")
        }
        other => Error::internal(format!("Slack answered {method} with `{other}`")),
    };
    error.with_connector(CONNECTOR_ID)
}

fn rate_limited(
    method: &str,
    retry_after: Option<std::time::Duration>,
    status: Option<u16>,
) -> Error {
    let mut error = Error::new(
        ErrorKind::RateLimited,
        format!("Slack is rate limiting {method}"),
    )
    .with_connector(CONNECTOR_ID)
    .with_hint("wait for the Retry-After delay and try again");
    if let Some(wait) = retry_after {
        error = error.with_retry_after(wait);
    }
    if let Some(status) = status {
        error = error.with_provider_status(status);
    }
    error
}
