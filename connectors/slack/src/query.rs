//! Query operations over the Slack Web API: four reads and one write, declared
//! once with [`patchbay_core::operations!`].
//!
//! Parameters are structs whose doc comments become the schema agents read; the
//! toolkit checks their ranges, seals Slack's `response_metadata.next_cursor` and
//! caps the output. What is Slack's own stays here: history defaults to the last
//! 24 hours, bounds are sent as message `ts` values, and channel errors carry
//! whether the bot could join the channel itself.

use chrono::{DateTime, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::{CallContext, SlackClient};
use crate::config::SlackConfig;
use crate::CONNECTOR_ID;

/// The most items Slack is asked for in one page.
pub const MAX_PAGE: u32 = 200;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: SlackApi<'_>,
    /// List public channels (conversations.list) with whether the bot is a member;
    /// follows Slack's cursor up to `limit` channels.
    read list_channels(ListChannelsParams), paged;
    /// Read a channel's messages (conversations.history), newest first over the last
    /// 24 hours by default; the bot must be in the channel.
    read get_channel_history(ChannelHistoryParams), paged;
    /// Read a thread: the parent message and its replies (conversations.replies).
    read get_thread_replies(ThreadRepliesParams), paged;
    /// Get a Slack user's name, title, time zone and whether it is a bot (users.info).
    read get_user(GetUserParams);
    /// Post a message to a channel or thread as the bot (chat.postMessage). Writes to
    /// Slack; never retried.
    write post_message(PostMessageParams);
}

/// Parameters of `list_channels`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListChannelsParams {
    /// How many channels to return, 1 to 1000 (default 200); fetched 200 per page.
    #[serde(default = "default_channels_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: u32,
    /// Leave out archived channels (default true).
    #[serde(default = "yes")]
    pub exclude_archived: bool,
}

/// Parameters of `get_channel_history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelHistoryParams {
    /// The channel id, e.g. `C0123ABCD`.
    pub channel: String,
    /// Start of the window: `now-24h` (default), `now-1h`, an RFC 3339 time, epoch seconds, or a message `ts`.
    #[serde(default)]
    pub oldest: Option<TimeBound>,
    /// End of the window: `now` (default), an RFC 3339 time, epoch seconds, or a message `ts`.
    #[serde(default)]
    pub latest: Option<TimeBound>,
    /// Include messages whose `ts` equals `oldest` or `latest` (default false).
    #[serde(default)]
    pub inclusive: bool,
    /// How many messages to return, 1 to 200 (default 100).
    #[serde(default = "default_page_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// Parameters of `get_thread_replies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreadRepliesParams {
    /// The channel id, e.g. `C0123ABCD`.
    pub channel: String,
    /// The `ts` of the thread's parent message, e.g. `1715000000.000100`.
    pub ts: String,
    /// How many messages to return, 1 to 200 (default 100).
    #[serde(default = "default_page_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// Parameters of `get_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetUserParams {
    /// The user id, e.g. `U0123ABCD` (the `user` of a message).
    pub user: String,
}

/// Parameters of `post_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessageParams {
    /// The channel id, e.g. `C0123ABCD`; the bot must be a member.
    pub channel: String,
    /// The message text (Slack mrkdwn).
    pub text: String,
    /// Reply in the thread whose parent message has this `ts`.
    #[serde(default)]
    pub thread_ts: Option<String>,
}

fn default_channels_limit() -> u32 {
    200
}

fn default_page_limit() -> u32 {
    100
}

fn yes() -> bool {
    true
}

/// The handler of every operation: a client holding the bot token, the
/// connection's settings, and the time relative bounds are resolved against.
pub struct SlackApi<'a> {
    client: &'a SlackClient<'a>,
    config: &'a SlackConfig,
    now: DateTime<Utc>,
}

impl<'a> SlackApi<'a> {
    /// Operations of the connection whose settings are `config`, through `client`,
    /// resolving `now-…` bounds against `now`.
    pub fn new(client: &'a SlackClient<'a>, config: &'a SlackConfig, now: DateTime<Utc>) -> Self {
        Self {
            client,
            config,
            now,
        }
    }

    /// What Slack's channel errors need to know: the channel, and whether the bot
    /// may join it itself (`channels:join` granted).
    fn context<'c>(&self, channel: &'c str) -> CallContext<'c> {
        CallContext {
            channel: Some(channel),
            can_join: self.config.has_scope("channels:join"),
        }
    }

    async fn list_channels(
        &self,
        params: ListChannelsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut channels = Vec::new();
        let mut cursor = cursor;
        loop {
            let wanted = params.limit - u32::try_from(channels.len()).unwrap_or(u32::MAX);
            let mut query = vec![
                ("types", "public_channel".to_owned()),
                ("exclude_archived", params.exclude_archived.to_string()),
                ("limit", wanted.min(MAX_PAGE).to_string()),
            ];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let (body, _) = self
                .client
                .read("conversations.list", &query, CallContext::default())
                .await?;
            let page = body
                .get("channels")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            channels.extend(page.iter().map(channel_summary));
            cursor = next_cursor(&body);
            let full = channels.len() >= params.limit as usize;
            if cursor.is_none() || full || page.is_empty() {
                break;
            }
        }
        channels.truncate(params.limit as usize);
        Ok(OperationOutput::new(json!({ "channels": channels })).with_next_page(cursor))
    }

    async fn get_channel_history(
        &self,
        params: ChannelHistoryParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let channel = required_id("channel", &params.channel)?;
        let oldest = params.oldest.as_ref().and_then(message_ts);
        let latest = params.latest.as_ref().and_then(message_ts);
        let range = TimeRange::resolve_fields(
            (
                "oldest",
                params.oldest.as_ref().filter(|_| oldest.is_none()),
            ),
            (
                "latest",
                params.latest.as_ref().filter(|_| latest.is_none()),
            ),
            TimeDelta::hours(24),
            self.now,
        )?;
        let oldest = oldest.unwrap_or_else(|| slack_ts(range.from));
        let latest = latest.unwrap_or_else(|| slack_ts(range.to));
        let mut query = vec![
            ("channel", channel.to_owned()),
            ("oldest", oldest.clone()),
            ("latest", latest.clone()),
            ("inclusive", params.inclusive.to_string()),
            ("limit", params.limit.to_string()),
        ];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor));
        }
        let (body, _) = self
            .client
            .read("conversations.history", &query, self.context(channel))
            .await?;
        Ok(OperationOutput::new(json!({
            "channel": channel,
            "oldest": oldest,
            "latest": latest,
            "messages": messages(&body),
            "has_more": body.get("has_more").and_then(Value::as_bool).unwrap_or(false),
        }))
        .with_next_page(next_cursor(&body)))
    }

    async fn get_thread_replies(
        &self,
        params: ThreadRepliesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let channel = required_id("channel", &params.channel)?;
        let ts = params.ts.trim();
        if !is_message_ts(ts) {
            return Err(
                Error::invalid_input("ts", format!("`{ts}` is not a Slack message ts"))
                    .with_connector(CONNECTOR_ID)
                    .with_hint("use the parent message's `ts`, e.g. 1715000000.000100"),
            );
        }
        let mut query = vec![
            ("channel", channel.to_owned()),
            ("ts", ts.to_owned()),
            ("limit", params.limit.to_string()),
        ];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor));
        }
        let (body, _) = self
            .client
            .read("conversations.replies", &query, self.context(channel))
            .await?;
        Ok(OperationOutput::new(json!({
            "channel": channel,
            "thread_ts": ts,
            "messages": messages(&body),
            "has_more": body.get("has_more").and_then(Value::as_bool).unwrap_or(false),
        }))
        .with_next_page(next_cursor(&body)))
    }

    async fn get_user(&self, params: GetUserParams) -> Result<OperationOutput> {
        let user = required_id("user", &params.user)?;
        let (body, _) = self
            .client
            .read(
                "users.info",
                &[("user", user.to_owned())],
                CallContext::default(),
            )
            .await?;
        let user = body.get("user").cloned().unwrap_or(Value::Null);
        let profile = user.get("profile").cloned().unwrap_or(Value::Null);
        Ok(OperationOutput::new(json!({
            "id": user.get("id"),
            "name": user.get("name"),
            "real_name": user.get("real_name").or_else(|| profile.get("real_name")),
            "display_name": profile.get("display_name"),
            "title": profile.get("title"),
            "tz": user.get("tz"),
            "is_bot": user.get("is_bot"),
            "is_admin": user.get("is_admin"),
            "deleted": user.get("deleted"),
        })))
    }

    async fn post_message(&self, params: PostMessageParams) -> Result<OperationOutput> {
        let channel = required_id("channel", &params.channel)?;
        if params.text.trim().is_empty() {
            return Err(Error::invalid_input("text", "the message text is empty")
                .with_connector(CONNECTOR_ID)
                .with_hint("give the message to post in `text`"));
        }
        let mut body = json!({ "channel": channel, "text": params.text });
        if let Some(thread_ts) = params.thread_ts.as_deref().map(str::trim) {
            if !is_message_ts(thread_ts) {
                return Err(Error::invalid_input(
                    "thread_ts",
                    format!("`{thread_ts}` is not a Slack message ts"),
                )
                .with_connector(CONNECTOR_ID)
                .with_hint("use the parent message's `ts`, e.g. 1715000000.000100"));
            }
            body["thread_ts"] = json!(thread_ts);
        }
        let answer = self
            .client
            .write("chat.postMessage", &body, self.context(channel))
            .await?;
        Ok(OperationOutput::new(json!({
            "channel": answer.get("channel"),
            "ts": answer.get("ts"),
            "message": answer.get("message").map(message_summary),
        })))
    }
}

fn required_id<'p>(field: &str, value: &'p str) -> Result<&'p str> {
    let value = value.trim();
    if value.is_empty() {
        return Err(
            Error::invalid_input(field, format!("`{field}` is required"))
                .with_connector(CONNECTOR_ID),
        );
    }
    Ok(value)
}

/// Slack's `ts` form: epoch seconds with microseconds, `1715000000.000100`.
pub fn slack_ts(time: DateTime<Utc>) -> String {
    format!("{}.{:06}", time.timestamp(), time.timestamp_subsec_micros())
}

fn is_message_ts(text: &str) -> bool {
    match text.split_once('.') {
        Some((seconds, fraction)) => {
            !seconds.is_empty()
                && !fraction.is_empty()
                && seconds.bytes().all(|byte| byte.is_ascii_digit())
                && fraction.bytes().all(|byte| byte.is_ascii_digit())
        }
        None => false,
    }
}

/// A bound given as a Slack message `ts` (seconds with decimals) is sent as is.
fn message_ts(bound: &TimeBound) -> Option<String> {
    match bound {
        TimeBound::Text(text) if is_message_ts(text.trim()) => Some(text.trim().to_owned()),
        _ => None,
    }
}

fn next_cursor(body: &Value) -> Option<String> {
    body.pointer("/response_metadata/next_cursor")
        .and_then(Value::as_str)
        .filter(|cursor| !cursor.is_empty())
        .map(str::to_owned)
}

fn channel_summary(channel: &Value) -> Value {
    pick(
        channel,
        &[
            "id",
            "name",
            "is_member",
            "is_archived",
            "is_private",
            "num_members",
            "created",
        ],
    )
    .map(|mut summary| {
        for key in ["topic", "purpose"] {
            if let Some(text) = channel.pointer(&format!("/{key}/value")) {
                summary.insert(key.to_owned(), text.clone());
            }
        }
        Value::Object(summary)
    })
    .unwrap_or(Value::Null)
}

fn messages(body: &Value) -> Vec<Value> {
    body.get("messages")
        .and_then(Value::as_array)
        .map(|messages| messages.iter().map(message_summary).collect())
        .unwrap_or_default()
}

fn message_summary(message: &Value) -> Value {
    pick(
        message,
        &[
            "type",
            "subtype",
            "user",
            "bot_id",
            "text",
            "ts",
            "thread_ts",
            "reply_count",
            "latest_reply",
            "reactions",
            "files",
        ],
    )
    .map(Value::Object)
    .unwrap_or(Value::Null)
}

fn pick(value: &Value, keys: &[&str]) -> Option<Map<String, Value>> {
    let object = value.as_object()?;
    Some(
        keys.iter()
            .filter_map(|key| {
                object
                    .get(*key)
                    .map(|field| ((*key).to_owned(), field.clone()))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn slack_ts_keeps_microseconds() {
        let time = Utc.timestamp_opt(1_715_000_000, 100_000).unwrap();
        assert_eq!(slack_ts(time), "1715000000.000100");
        assert!(is_message_ts("1515449522.000016"));
        assert!(!is_message_ts("1515449522"));
        assert!(!is_message_ts("now-1h"));
    }
}
