//! Inbound webhook deliveries and what a connector makes of them.

use bytes::Bytes;
use http::HeaderMap;

use crate::alert::NormalizedAlert;

/// A webhook delivery as received: headers and the raw body (signatures cover raw bytes).
#[derive(Debug, Clone)]
pub struct InboundWebhook {
    /// Request headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl InboundWebhook {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// An answer the provider expects instead of a plain acknowledgement (a ping, a challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    /// HTTP status.
    pub status: u16,
    /// Content type of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// What a connector made of one delivery.
#[derive(Debug, Clone, Default)]
pub struct WebhookOutcome {
    /// Events to store durably before acknowledging.
    pub events: Vec<WebhookEvent>,
    /// A special answer, if the provider expects one.
    pub reply: Option<WebhookReply>,
}

/// An event to store; an alias kept short for connector code.
pub type WebhookEvent = NormalizedAlert;

/// Where an app-level delivery goes, as the connector decided after verifying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookRoute {
    /// Answer directly, without a connection (a URL-verification challenge).
    Reply(WebhookReply),
    /// Hand it to the connection whose routing key is this (a Slack team id).
    Connection(String),
}
