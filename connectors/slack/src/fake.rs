//! A fake Slack: the Web API methods the connector uses, the OAuth v2 install
//! flow, and request signing for Events API deliveries.
//!
//! It answers the way Slack does: errors are HTTP 200 `{"ok": false, "error":
//! "..."}` (only rate limits use 429 with `Retry-After`), tokens come as a Bearer
//! header or a `token` parameter, every method checks the bot scope it needs
//! (`missing_scope` naming `needed`), and channel reads answer `not_in_channel`
//! where the bot is not a member. One server serves `/api/*` and
//! `/oauth/v2/authorize`.
//!
//! Fixed data: 250 public channels (every tenth archived) of which the bot is in
//! [`GENERAL_CHANNEL`], [`INCIDENTS_CHANNEL`] and [`ALERTS_CHANNEL`]; 300 messages
//! in the general channel, one every five minutes back from start (so 288 in the
//! last 24 hours); 120 alert messages of about 4 KiB each in the alerts channel,
//! one every ten minutes back from start, so that a page of 100 is larger than the
//! 256 KiB an operation returns; a thread of five replies under [`THREAD_TS`] in
//! the incidents channel; and three users. Lists page with Slack's
//! `response_metadata.next_cursor`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use patchbay_core::InboundWebhook;
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{
    first_value, redacted_pairs, BoundPort, FakeServer, FakeState, FaultQueue, RequestLog,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The client id of the fake's Slack app.
pub const CLIENT_ID: &str = "1111111111.2222222222";
/// The client secret of the fake's Slack app.
pub const CLIENT_SECRET: &str = "fake-slack-client-secret-7d3e1b";
/// The redirect URL registered in the fake app from the start (the guide's local one).
pub const REDIRECT_URI: &str = "http://localhost:5080/slack/callback";
/// The workspace id.
pub const TEAM_ID: &str = "T0FAKETEAM";
/// The workspace name.
pub const TEAM_NAME: &str = "Patchbay Test Workspace";
/// The bot's user id.
pub const BOT_USER_ID: &str = "U0FAKEBOT1";
/// The bot id.
pub const BOT_ID: &str = "B0FAKEBOT1";
/// The Slack app id.
pub const APP_ID: &str = "A0FAKEAPP1";
/// The user who installs the app.
pub const INSTALLER_USER_ID: &str = "U0INSTALL1";
/// A channel the bot is in, with 300 messages.
pub const GENERAL_CHANNEL: &str = "C0GENERAL1";
/// A channel the bot is in, with one thread.
pub const INCIDENTS_CHANNEL: &str = "C0INCIDNT1";
/// A channel the bot is in, where an alerting tool posts long messages with stack traces.
pub const ALERTS_CHANNEL: &str = "C0ALERTS01";
/// A public channel the bot is not in.
pub const OUTSIDE_CHANNEL: &str = "C0OUTSIDE1";
/// The `ts` of the thread's parent message in [`INCIDENTS_CHANNEL`].
pub const THREAD_TS: &str = "1714564800.000100";
/// The bot scopes the app is configured with (the setup guide's six).
pub use crate::auth::BOT_SCOPES;

const CHANNEL_COUNT: usize = 250;
const HISTORY_LEN: i64 = 300;
const ALERT_COUNT: i64 = 120;
const ALERT_TRACE_FRAMES: usize = 56;
const SECRET_PARAMS: &[&str] = &["token", "client_secret", "refresh_token", "code_verifier"];

/// A request the fake received, without token values.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub http_method: String,
    /// The path, e.g. `/api/conversations.list`.
    pub path: String,
    /// The Slack method (`conversations.list`), or `oauth.v2.authorize`.
    pub method: String,
    /// Query, form and top-level JSON parameters; secret values are `[redacted]`.
    pub params: Vec<(String, String)>,
    /// Lower-case header names, sorted; values are never kept.
    pub header_names: Vec<String>,
    /// Whether an `Authorization: Bearer` header was sent.
    pub bearer: bool,
    /// The `Content-Type` sent, if any.
    pub content_type: Option<String>,
}

impl RecordedRequest {
    /// The first value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        first_value(&self.params, name)
    }
}

/// A one-shot failure for the next call of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: <retry_after_secs>` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// HTTP 500.
    ServerError,
    /// HTTP 503.
    Unavailable,
    /// HTTP 200 `{"ok": false, "error": <code>}`.
    SlackError(&'static str),
}

/// A running fake Slack; stops when dropped.
pub struct FakeSlack {
    shared: Arc<Shared>,
    server: FakeServer,
}

struct Shared {
    data: Dataset,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
    mutable: FakeState<Mutable>,
}

struct TokenState {
    scopes: Vec<String>,
    revoked: bool,
}

struct CodeGrant {
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: String,
    used: bool,
}

struct Mutable {
    tokens: HashMap<String, TokenState>,
    bot_token: String,
    granted_scopes: Vec<String>,
    redirect_uris: Vec<String>,
    codes: HashMap<String, CodeGrant>,
    refresh_tokens: HashMap<String, bool>,
    rotation_expires_in: Option<u64>,
    token_requests: usize,
    issued: u64,
    members: Vec<String>,
    posted: Vec<(String, Value)>,
}

impl FakeSlack {
    /// Starts the fake on `127.0.0.1:0`; `bot_token` is valid with the six bot scopes
    /// and is what an install without token rotation issues.
    pub async fn start(bot_token: &str) -> FakeSlack {
        let port = BoundPort::loopback("Slack").await;
        let granted_scopes: Vec<String> = BOT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        let mut tokens = HashMap::new();
        tokens.insert(
            bot_token.to_owned(),
            TokenState {
                scopes: granted_scopes.clone(),
                revoked: false,
            },
        );
        let shared = Arc::new(Shared {
            data: Dataset::new(Utc::now().timestamp()),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
            mutable: FakeState::new(Mutable {
                tokens,
                bot_token: bot_token.to_owned(),
                granted_scopes,
                redirect_uris: vec![REDIRECT_URI.to_owned()],
                codes: HashMap::new(),
                refresh_tokens: HashMap::new(),
                rotation_expires_in: None,
                token_requests: 0,
                issued: 0,
                members: vec![
                    GENERAL_CHANNEL.to_owned(),
                    INCIDENTS_CHANNEL.to_owned(),
                    ALERTS_CHANNEL.to_owned(),
                ],
                posted: Vec::new(),
            }),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = port.serve(router);
        FakeSlack { shared, server }
    }

    /// How many `oauth.v2.access` calls were made (code exchanges and refreshes).
    pub fn token_requests(&self) -> usize {
        self.shared.mutable.lock().token_requests
    }

    /// Turns token rotation on: installs and refreshes issue `xoxe.xoxb-` tokens
    /// expiring in `expires_in` seconds and a `xoxe-` refresh token.
    pub fn enable_rotation(&self, expires_in: u64) {
        self.shared.mutable.lock().rotation_expires_in = Some(expires_in);
    }

    /// The refresh token issued last (with token rotation on), if any.
    pub fn newest_refresh_token(&self) -> Option<String> {
        self.shared
            .mutable
            .lock()
            .refresh_tokens
            .keys()
            .max_by_key(|token| refresh_token_serial(token))
            .cloned()
    }

    /// Registers another redirect URL in the fake app's OAuth settings.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.shared
            .mutable
            .lock()
            .redirect_uris
            .push(uri.to_owned());
    }

    /// Sets the scopes granted to the bot token and to tokens issued from now on.
    pub fn set_granted_scopes(&self, scopes: &[&str]) {
        let mut state = self.shared.mutable.lock();
        let scopes: Vec<String> = scopes.iter().map(|scope| (*scope).to_owned()).collect();
        let bot_token = state.bot_token.clone();
        if let Some(token) = state.tokens.get_mut(&bot_token) {
            token.scopes = scopes.clone();
        }
        state.granted_scopes = scopes;
    }

    /// Whether `token` has been revoked with `auth.revoke`.
    pub fn is_revoked(&self, token: &str) -> bool {
        self.shared
            .mutable
            .lock()
            .tokens
            .get(token)
            .is_some_and(|state| state.revoked)
    }

    /// The number of public channels, optionally leaving out archived ones.
    pub fn public_channel_count(&self, exclude_archived: bool) -> usize {
        self.shared
            .data
            .channels
            .iter()
            .filter(|channel| !(exclude_archived && channel.archived))
            .count()
    }

    /// Messages posted with `chat.postMessage`, as `(channel, message)`.
    pub fn posted(&self) -> Vec<(String, Value)> {
        self.shared.mutable.lock().posted.clone()
    }
}

patchbay_testkit::provider_fake!(FakeSlack, hosts: ["slack.com"], request: RecordedRequest, keyed by: method, log: shared.requests, fault: Fault, queued in: shared.faults);

/// Slack's request signature: `v0=<hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery of `body` signed with `secret` at `timestamp`, as Slack posts it.
pub fn signed_delivery(
    secret: &str,
    timestamp: &str,
    content_type: &'static str,
    body: &str,
) -> InboundWebhook {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-slack-request-timestamp",
        HeaderValue::from_str(timestamp).expect("a timestamp is a valid header value"),
    );
    headers.insert(
        "x-slack-signature",
        HeaderValue::from_str(&sign(secret, timestamp, body))
            .expect("a signature is a valid header value"),
    );
    InboundWebhook {
        headers,
        body: Bytes::from(body.to_owned()),
    }
}

/// An `event_callback` carrying an `app_mention` of the bot, shaped like Slack's documented sample.
pub fn app_mention(event_id: &str, channel: &str, ts: &str, text: &str) -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": {
            "type": "app_mention",
            "user": INSTALLER_USER_ID,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
        },
        "type": "event_callback",
        "authorizations": [{
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "event_id": event_id,
        "event_time": ts.split('.').next().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0),
    })
}

struct Channel {
    id: String,
    name: String,
    archived: bool,
    created: i64,
}

struct Message {
    micros: i64,
    value: Value,
}

struct Dataset {
    channels: Vec<Channel>,
    general: Vec<Message>,
    alerts: Vec<Message>,
    thread: Vec<Message>,
    users: Vec<Value>,
}

fn ts_of(seconds: i64, micros: i64) -> (i64, String) {
    (
        seconds * 1_000_000 + micros,
        format!("{seconds}.{micros:06}"),
    )
}

fn parse_ts(text: &str) -> Option<i64> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = seconds.parse().ok()?;
    let fraction = format!("{fraction:0<6}");
    let micros: i64 = fraction.get(..6)?.parse().ok()?;
    Some(seconds * 1_000_000 + micros)
}

impl Dataset {
    fn new(now: i64) -> Self {
        let mut channels = vec![
            Channel {
                id: GENERAL_CHANNEL.to_owned(),
                name: "general".to_owned(),
                archived: false,
                created: 1_449_252_889,
            },
            Channel {
                id: INCIDENTS_CHANNEL.to_owned(),
                name: "incidents".to_owned(),
                archived: false,
                created: 1_449_252_900,
            },
            Channel {
                id: OUTSIDE_CHANNEL.to_owned(),
                name: "random".to_owned(),
                archived: false,
                created: 1_449_252_950,
            },
            Channel {
                id: ALERTS_CHANNEL.to_owned(),
                name: "alerts".to_owned(),
                archived: false,
                created: 1_449_253_000,
            },
        ];
        for index in channels.len()..CHANNEL_COUNT {
            channels.push(Channel {
                id: format!("C1{index:08}"),
                name: format!("team-{index:03}"),
                archived: index % 10 == 0,
                created: 1_500_000_000 + index as i64,
            });
        }
        let users = ["U0GENERAL1", INSTALLER_USER_ID, "U0ONCALL01"];
        let general = (0..HISTORY_LEN)
            .map(|index| {
                let (micros, ts) = ts_of(now - 60 - index * 300, 100 + index);
                let user = users[(index % 3) as usize];
                Message {
                    micros,
                    value: json!({
                        "type": "message",
                        "user": user,
                        "text": format!("deploy {index} of checkout finished"),
                        "ts": ts,
                        "team": TEAM_ID,
                    }),
                }
            })
            .collect();
        let trace: String = (0..ALERT_TRACE_FRAMES)
            .map(|frame| {
                format!(
                    "    at com.example.checkout.payments.PaymentClient.charge(PaymentClient.java:{})\n",
                    100 + frame
                )
            })
            .collect();
        let alerts = (0..ALERT_COUNT)
            .map(|index| {
                let (micros, ts) = ts_of(now - 120 - index * 600, 200 + index);
                Message {
                    micros,
                    value: json!({
                        "type": "message",
                        "subtype": "bot_message",
                        "bot_id": "B0ALERTER1",
                        "text": format!(
                            "[FIRING] checkout-api 5xx rate above 5% (alert {index})\n```\njava.net.SocketTimeoutException: Read timed out\n{trace}```"
                        ),
                        "ts": ts,
                        "team": TEAM_ID,
                    }),
                }
            })
            .collect();
        let parent_micros = parse_ts(THREAD_TS).unwrap_or_default();
        let mut thread = vec![Message {
            micros: parent_micros,
            value: json!({
                "type": "message",
                "user": INSTALLER_USER_ID,
                "text": "checkout is returning 500s",
                "ts": THREAD_TS,
                "thread_ts": THREAD_TS,
                "reply_count": 5,
                "latest_reply": "1714565100.000100",
            }),
        }];
        for reply in 1..=5i64 {
            let (micros, ts) = ts_of(1_714_564_800 + reply * 60, 100);
            thread.push(Message {
                micros,
                value: json!({
                    "type": "message",
                    "user": "U0ONCALL01",
                    "text": format!("update {reply}: looking at the payments pool"),
                    "ts": ts,
                    "thread_ts": THREAD_TS,
                    "parent_user_id": INSTALLER_USER_ID,
                }),
            });
        }
        let users = vec![
            json!({
                "id": BOT_USER_ID, "team_id": TEAM_ID, "name": "patchbay", "deleted": false,
                "real_name": "Patchbay", "tz": "Etc/UTC", "is_admin": false, "is_bot": true,
                "is_app_user": false,
                "profile": {"real_name": "Patchbay", "display_name": "patchbay", "title": "", "bot_id": BOT_ID},
            }),
            json!({
                "id": INSTALLER_USER_ID, "team_id": TEAM_ID, "name": "ada", "deleted": false,
                "real_name": "Ada Lovelace", "tz": "Europe/London", "is_admin": true, "is_bot": false,
                "is_app_user": false,
                "profile": {"real_name": "Ada Lovelace", "display_name": "ada", "title": "SRE lead"},
            }),
            json!({
                "id": "U0ONCALL01", "team_id": TEAM_ID, "name": "grace", "deleted": false,
                "real_name": "Grace Hopper", "tz": "America/New_York", "is_admin": false, "is_bot": false,
                "is_app_user": false,
                "profile": {"real_name": "Grace Hopper", "display_name": "grace", "title": "On-call engineer"},
            }),
        ];
        Self {
            channels,
            general,
            alerts,
            thread,
            users,
        }
    }
}

/// Parameters merged from the query string, a form body and a JSON body's top level.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        first_value(&self.0, name).filter(|value| !value.is_empty())
    }
}

fn slack_json(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

fn slack_error(code: &str) -> Response {
    slack_json(json!({"ok": false, "error": code}))
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut params: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let is_json = content_type
        .as_deref()
        .is_some_and(|kind| kind.starts_with("application/json"));
    if is_json {
        if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) {
            for (key, value) in fields {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                params.push((key, text));
            }
        }
    } else if !body.is_empty() {
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let params = Params(params);
    let method = if path == "/oauth/v2/authorize" {
        "oauth.v2.authorize".to_owned()
    } else {
        path.strip_prefix("/api/").unwrap_or(&path).to_owned()
    };
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let basic = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    let fault = {
        let mut header_names: Vec<String> = parts
            .headers
            .keys()
            .map(|name| name.as_str().to_ascii_lowercase())
            .collect();
        header_names.sort();
        shared.requests.record(RecordedRequest {
            http_method: parts.method.to_string(),
            path: path.clone(),
            method: method.clone(),
            params: redacted_pairs(&params.0, |name| SECRET_PARAMS.contains(&name)),
            header_names,
            bearer: bearer.is_some(),
            content_type: content_type.clone(),
        });
        shared.faults.take(&method)
    };
    if let Some(fault) = fault {
        return fault_response(fault);
    }
    if method == "oauth.v2.authorize" {
        return if parts.method == Method::GET {
            authorize(&shared, &params)
        } else {
            StatusCode::METHOD_NOT_ALLOWED.into_response()
        };
    }
    if method == "oauth.v2.access" {
        return token(&shared, &params, basic);
    }
    let token = bearer.or_else(|| params.get("token").map(str::to_owned));
    let Some(token) = token else {
        return slack_error("not_authed");
    };
    let scopes = {
        let state = shared.mutable.lock();
        match state.tokens.get(&token) {
            None => return slack_error("invalid_auth"),
            Some(state) if state.revoked => return slack_error("token_revoked"),
            Some(state) => state.scopes.clone(),
        }
    };
    let needed = match method.as_str() {
        "conversations.list" => Some("channels:read"),
        "conversations.history" | "conversations.replies" => Some("channels:history"),
        "conversations.join" => Some("channels:join"),
        "users.info" => Some("users:read"),
        "chat.postMessage" => Some("chat:write"),
        _ => None,
    };
    if let Some(needed) = needed {
        if !scopes.iter().any(|scope| scope == needed) {
            return slack_json(json!({
                "ok": false,
                "error": "missing_scope",
                "needed": needed,
                "provided": scopes.join(","),
            }));
        }
    }
    let is_post = parts.method == Method::POST;
    match method.as_str() {
        "auth.test" => {
            let mut response = slack_json(json!({
                "ok": true,
                "url": "https://patchbay-test.slack.com/",
                "team": TEAM_NAME,
                "user": "patchbay",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": false,
            }));
            if let Ok(value) = HeaderValue::from_str(&scopes.join(",")) {
                response.headers_mut().insert("x-oauth-scopes", value);
            }
            response
        }
        "auth.revoke" => {
            if let Some(state) = shared.mutable.lock().tokens.get_mut(&token) {
                state.revoked =
                    params.get("test") != Some("true") && params.get("test") != Some("1");
            }
            slack_json(json!({"ok": true, "revoked": true}))
        }
        "conversations.list" => conversations_list(&shared, &params),
        "conversations.history" => conversations_history(&shared, &params),
        "conversations.replies" => conversations_replies(&shared, &params),
        "conversations.join" => {
            let Some(channel) = params.get("channel") else {
                return slack_error("channel_not_found");
            };
            if !shared.data.channels.iter().any(|known| known.id == channel) {
                return slack_error("channel_not_found");
            }
            let mut state = shared.mutable.lock();
            if !state.members.iter().any(|member| member == channel) {
                state.members.push(channel.to_owned());
            }
            slack_json(json!({"ok": true, "channel": {"id": channel}}))
        }
        "users.info" => {
            let user = params.get("user").unwrap_or_default();
            match shared.data.users.iter().find(|known| known["id"] == user) {
                Some(found) => slack_json(json!({"ok": true, "user": found})),
                None => slack_error("user_not_found"),
            }
        }
        "chat.postMessage" if is_post => chat_post_message(&shared, &params),
        "chat.postMessage" => slack_error("invalid_post_type"),
        _ => slack_error("unknown_method"),
    }
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        Fault::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response(),
        Fault::SlackError(code) => slack_error(code),
    }
}

fn cursor_for(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("offset:{offset}"))
}

/// `None` for a malformed cursor, `Some(0)` for none.
fn offset_of(params: &Params) -> Option<usize> {
    match params.get("cursor") {
        None => Some(0),
        Some(cursor) => base64::engine::general_purpose::STANDARD
            .decode(cursor)
            .ok()
            .and_then(|decoded| String::from_utf8(decoded).ok())
            .and_then(|text| text.strip_prefix("offset:").and_then(|n| n.parse().ok())),
    }
}

fn limit_of(params: &Params, default: usize, max: usize) -> usize {
    params
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .filter(|limit| *limit > 0)
        .unwrap_or(default)
        .min(max)
}

fn conversations_list(shared: &Shared, params: &Params) -> Response {
    let types = params.get("types").unwrap_or("public_channel");
    if types
        .split(',')
        .any(|kind| kind.trim() == "private_channel")
    {
        return slack_json(json!({
            "ok": false, "error": "missing_scope", "needed": "groups:read",
        }));
    }
    let Some(offset) = offset_of(params) else {
        return slack_error("invalid_cursor");
    };
    let exclude_archived = matches!(params.get("exclude_archived"), Some("true" | "1"));
    let limit = limit_of(params, 100, 1000);
    let members = shared.mutable.lock().members.clone();
    let visible: Vec<&Channel> = shared
        .data
        .channels
        .iter()
        .filter(|channel| !(exclude_archived && channel.archived))
        .collect();
    let page: Vec<Value> = visible
        .iter()
        .skip(offset)
        .take(limit)
        .map(|channel| {
            json!({
                "id": channel.id,
                "name": channel.name,
                "name_normalized": channel.name,
                "is_channel": true,
                "is_group": false,
                "is_im": false,
                "is_private": false,
                "is_archived": channel.archived,
                "is_general": channel.id == GENERAL_CHANNEL,
                "is_member": members.contains(&channel.id),
                "created": channel.created,
                "creator": INSTALLER_USER_ID,
                "num_members": 4,
                "topic": {"value": format!("{} topic", channel.name), "creator": "", "last_set": 0},
                "purpose": {"value": format!("Talk about {}", channel.name), "creator": "", "last_set": 0},
                "previous_names": [],
            })
        })
        .collect();
    let next = offset + page.len();
    let next_cursor = if next < visible.len() {
        cursor_for(next)
    } else {
        String::new()
    };
    slack_json(json!({
        "ok": true,
        "channels": page,
        "response_metadata": {"next_cursor": next_cursor},
    }))
}

/// The channel asked for, or the Slack error code refusing it.
fn channel_access(shared: &Shared, params: &Params) -> Result<String, &'static str> {
    let Some(channel) = params.get("channel") else {
        return Err("channel_not_found");
    };
    if !shared.data.channels.iter().any(|known| known.id == channel) {
        return Err("channel_not_found");
    }
    if !shared
        .mutable
        .lock()
        .members
        .iter()
        .any(|member| member == channel)
    {
        return Err("not_in_channel");
    }
    Ok(channel.to_owned())
}

fn conversations_history(shared: &Shared, params: &Params) -> Response {
    let channel = match channel_access(shared, params) {
        Ok(channel) => channel,
        Err(code) => return slack_error(code),
    };
    let oldest = match params.get("oldest").map(parse_ts) {
        None => i64::MIN,
        Some(Some(micros)) => micros,
        Some(None) => return slack_error("invalid_ts_oldest"),
    };
    let latest = match params.get("latest").map(parse_ts) {
        None => i64::MAX,
        Some(Some(micros)) => micros,
        Some(None) => return slack_error("invalid_ts_latest"),
    };
    let inclusive = matches!(params.get("inclusive"), Some("true" | "1"));
    let Some(offset) = offset_of(params) else {
        return slack_error("invalid_cursor");
    };
    let limit = limit_of(params, 100, 999);
    let state = shared.mutable.lock();
    let stored: &[Message] = match channel.as_str() {
        GENERAL_CHANNEL => &shared.data.general,
        ALERTS_CHANNEL => &shared.data.alerts,
        INCIDENTS_CHANNEL => shared.data.thread.get(..1).unwrap_or_default(),
        _ => &[],
    };
    let mut source: Vec<(i64, Value)> = stored
        .iter()
        .map(|message| (message.micros, message.value.clone()))
        .collect();
    for (posted_channel, message) in &state.posted {
        if *posted_channel == channel && message.get("thread_ts").is_none() {
            let micros = message["ts"].as_str().and_then(parse_ts).unwrap_or(0);
            source.push((micros, message.clone()));
        }
    }
    source.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let matching: Vec<Value> = source
        .into_iter()
        .filter(|(micros, _)| {
            if inclusive {
                *micros >= oldest && *micros <= latest
            } else {
                *micros > oldest && *micros < latest
            }
        })
        .map(|(_, value)| value)
        .collect();
    let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    let next = offset + page.len();
    let has_more = next < matching.len();
    let mut answer = json!({
        "ok": true,
        "messages": page,
        "has_more": has_more,
        "pin_count": 0,
    });
    if has_more {
        answer["response_metadata"] = json!({"next_cursor": cursor_for(next)});
    }
    slack_json(answer)
}

fn conversations_replies(shared: &Shared, params: &Params) -> Response {
    let channel = match channel_access(shared, params) {
        Ok(channel) => channel,
        Err(code) => return slack_error(code),
    };
    if channel != INCIDENTS_CHANNEL || params.get("ts") != Some(THREAD_TS) {
        return slack_error("thread_not_found");
    }
    let Some(offset) = offset_of(params) else {
        return slack_error("invalid_cursor");
    };
    let limit = limit_of(params, 1000, 1000);
    let all: Vec<Value> = shared
        .data
        .thread
        .iter()
        .map(|message| message.value.clone())
        .collect();
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    let next = offset + page.len();
    let has_more = next < all.len();
    slack_json(json!({
        "ok": true,
        "messages": page,
        "has_more": has_more,
        "response_metadata": {"next_cursor": if has_more { cursor_for(next) } else { String::new() }},
    }))
}

fn chat_post_message(shared: &Shared, params: &Params) -> Response {
    let channel = match channel_access(shared, params) {
        Ok(channel) => channel,
        Err(code) => return slack_error(code),
    };
    let Some(text) = params.get("text") else {
        return slack_error("no_text");
    };
    let mut state = shared.mutable.lock();
    let seconds = Utc::now().timestamp();
    let ts = format!("{seconds}.{:06}", state.posted.len() + 1);
    let mut message = json!({
        "type": "message",
        "subtype": "bot_message",
        "text": text,
        "ts": ts,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
    });
    if let Some(thread_ts) = params.get("thread_ts") {
        message["thread_ts"] = json!(thread_ts);
    }
    state.posted.push((channel.clone(), message.clone()));
    slack_json(json!({"ok": true, "channel": channel, "ts": ts, "message": message}))
}

fn authorize(shared: &Shared, params: &Params) -> Response {
    let bad_request = |code: &str| (StatusCode::BAD_REQUEST, code.to_owned()).into_response();
    if params.get("client_id") != Some(CLIENT_ID) {
        return bad_request("invalid_client_id");
    }
    let requested = params.get("scope").unwrap_or_default();
    if requested
        .split(',')
        .map(str::trim)
        .filter(|scope| !scope.is_empty())
        .any(|scope| !BOT_SCOPES.contains(&scope))
    {
        return bad_request("invalid_scope");
    }
    let mut state = shared.mutable.lock();
    let redirect_uri = params.get("redirect_uri").map(str::to_owned);
    let target = match &redirect_uri {
        Some(uri) if state.redirect_uris.contains(uri) => uri.clone(),
        Some(_) => return bad_request("bad_redirect_uri"),
        None => state.redirect_uris[0].clone(),
    };
    state.issued += 1;
    let code = format!("{}.fake-code-{}", TEAM_ID, state.issued);
    state.codes.insert(
        code.clone(),
        CodeGrant {
            redirect_uri,
            code_challenge: params.get("code_challenge").map(str::to_owned),
            code_challenge_method: params
                .get("code_challenge_method")
                .unwrap_or("plain")
                .to_owned(),
            used: false,
        },
    );
    let Ok(mut location) = url::Url::parse(&target) else {
        return bad_request("bad_redirect_uri");
    };
    location.query_pairs_mut().append_pair("code", &code);
    if let Some(oauth_state) = params.get("state") {
        location.query_pairs_mut().append_pair("state", oauth_state);
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location.as_str()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn token(shared: &Shared, params: &Params, basic: Option<(String, String)>) -> Response {
    let mut state = shared.mutable.lock();
    state.token_requests += 1;
    let (client_id, client_secret) = match basic {
        Some(pair) => pair,
        None => (
            params.get("client_id").unwrap_or_default().to_owned(),
            params.get("client_secret").unwrap_or_default().to_owned(),
        ),
    };
    if client_id != CLIENT_ID {
        return slack_error("invalid_client_id");
    }
    if client_secret != CLIENT_SECRET {
        return slack_error("bad_client_secret");
    }
    match params.get("grant_type").unwrap_or("authorization_code") {
        "authorization_code" => {
            let Some(code) = params.get("code") else {
                return slack_error("invalid_code");
            };
            let sent_redirect = params.get("redirect_uri");
            if let Some(uri) = sent_redirect {
                if !state.redirect_uris.iter().any(|known| known == uri) {
                    return slack_error("bad_redirect_uri");
                }
            }
            let Some(grant) = state.codes.get(code).filter(|grant| !grant.used) else {
                return slack_error("invalid_code");
            };
            if grant.redirect_uri.is_some() && grant.redirect_uri.as_deref() != sent_redirect {
                return slack_error("bad_redirect_uri");
            }
            if let Some(challenge) = &grant.code_challenge {
                let verifier = params.get("code_verifier").unwrap_or_default();
                let computed = if grant.code_challenge_method == "S256" {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(Sha256::digest(verifier.as_bytes()))
                } else {
                    verifier.to_owned()
                };
                if verifier.is_empty() || computed != *challenge {
                    return slack_error("invalid_code_verifier");
                }
            }
            if let Some(grant) = state.codes.get_mut(code) {
                grant.used = true;
            }
            let access_token = match state.rotation_expires_in {
                Some(_) => None,
                None => Some(state.bot_token.clone()),
            };
            issue(&mut state, access_token)
        }
        "refresh_token" => {
            let presented = params.get("refresh_token").unwrap_or_default();
            match state.refresh_tokens.get_mut(presented) {
                Some(used) if !*used => *used = true,
                _ => return slack_error("invalid_refresh_token"),
            }
            issue(&mut state, None)
        }
        _ => slack_error("invalid_grant_type"),
    }
}

/// The serial number a refresh token was minted with (see [`issue`]).
fn refresh_token_serial(token: &str) -> u64 {
    token
        .rsplit('-')
        .next()
        .and_then(|serial| serial.parse().ok())
        .unwrap_or(0)
}

/// Answers a token request; `access_token` is reused, or a new one is minted.
fn issue(state: &mut Mutable, access_token: Option<String>) -> Response {
    state.issued += 1;
    let serial = state.issued;
    let access_token = access_token.unwrap_or_else(|| format!("xoxe.xoxb-1-fake-{serial}"));
    let scopes = state.granted_scopes.clone();
    state
        .tokens
        .entry(access_token.clone())
        .or_insert(TokenState {
            scopes: scopes.clone(),
            revoked: false,
        })
        .revoked = false;
    let mut answer = json!({
        "ok": true,
        "access_token": access_token,
        "token_type": "bot",
        "scope": scopes.join(","),
        "bot_user_id": BOT_USER_ID,
        "app_id": APP_ID,
        "team": {"id": TEAM_ID, "name": TEAM_NAME},
        "enterprise": null,
        "is_enterprise_install": false,
        "authed_user": {"id": INSTALLER_USER_ID},
    });
    if let Some(expires_in) = state.rotation_expires_in {
        let refresh_token = format!("xoxe-1-fake-refresh-{serial}");
        state.refresh_tokens.insert(refresh_token.clone(), false);
        let object: &mut Map<String, Value> = answer.as_object_mut().expect("an object");
        object.insert("refresh_token".to_owned(), json!(refresh_token));
        object.insert("expires_in".to_owned(), json!(expires_in));
    }
    slack_json(answer)
}
