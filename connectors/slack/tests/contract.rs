//! The shared connector contract, run against the fake Slack with OAuth grants.

mod support;

use std::collections::BTreeMap;

use patchbay_connector_slack::fake::{self as slack, sign, signed_delivery, FakeSlack};
use patchbay_connector_slack::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use patchbay_core::InboundWebhook;
use patchbay_testkit::contract::{
    run_oauth_contract_suite, ContractCase, OAuthGrants, OperationCall, WebhookSigning,
};
use serde_json::json;
use support::{connector_for, grant, now_seconds, BOT_TOKEN, SIGNING_SECRET};

const WRONG_TOKEN: &str = "xoxb-canary-wrong-token-9d0e3b";

#[tokio::test]
async fn slack_meets_the_connector_contract() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let operation_params = BTreeMap::from([
        ("list_channels".to_owned(), json!({"limit": 5})),
        (
            "get_channel_history".to_owned(),
            json!({"channel": slack::GENERAL_CHANNEL, "oldest": "now-1h"}),
        ),
        (
            "get_thread_replies".to_owned(),
            json!({"channel": slack::INCIDENTS_CHANNEL, "ts": slack::THREAD_TS}),
        ),
        (
            "get_user".to_owned(),
            json!({"user": slack::INSTALLER_USER_ID}),
        ),
        (
            "post_message".to_owned(),
            json!({"channel": slack::GENERAL_CHANNEL, "text": "contract check"}),
        ),
    ]);
    let mention = slack::app_mention(
        "Ev0CONTRACT1",
        slack::INCIDENTS_CHANNEL,
        "1714564900.000200",
        "<@U0FAKEBOT1> why is checkout failing?",
    );
    run_oauth_contract_suite(
        ContractCase {
            connector,
            good_form: json!({}),
            bad_form: json!({}),
            invalid_form: json!({"api_key": BOT_TOKEN}),
            operation_params,
            webhook_samples: vec![signed_delivery(
                SIGNING_SECRET,
                &now_seconds(),
                "application/json",
                &mention.to_string(),
            )],
            webhook_signing: Some(WebhookSigning {
                signature_header: SIGNATURE_HEADER,
                timestamp_header: Some(TIMESTAMP_HEADER),
                sign: Box::new(|request: &InboundWebhook| {
                    sign(
                        SIGNING_SECRET,
                        request.header(TIMESTAMP_HEADER).unwrap_or_default(),
                        std::str::from_utf8(&request.body).unwrap(),
                    )
                }),
            }),
            canaries: vec![
                BOT_TOKEN.to_owned(),
                WRONG_TOKEN.to_owned(),
                SIGNING_SECRET.to_owned(),
            ],
            paging: Some(OperationCall::new(
                "get_channel_history",
                json!({"channel": slack::GENERAL_CHANNEL, "limit": 50}),
            )),
            oversized: Some(OperationCall::new(
                "get_channel_history",
                json!({"channel": slack::ALERTS_CHANNEL}),
            )),
        },
        OAuthGrants {
            good: grant(BOT_TOKEN),
            bad: grant(WRONG_TOKEN),
        },
    )
    .await;
}
