//! The messages read and write protocol v1 frames as the original agent and
//! server exchange them (providers.md §4), and the extensions stay optional.

use patchbay_kubectl_protocol::{
    argv_from_v1_command, shell_join, Capabilities, ErrorCode, Message, DEFAULT_TIMEOUT_SECS,
};
use serde_json::{json, Value};

fn parse(value: Value) -> Message {
    Message::parse(&value.to_string()).expect("a valid frame")
}

fn wire(message: &Message) -> Value {
    serde_json::from_str(&message.to_json()).unwrap()
}

#[test]
fn v1_register_and_heartbeat_parse_and_write_back_unchanged() {
    let register = json!({"type": "register", "cluster_id": "cluster-0123456789abcdef", "agent_version": "1.0.3"});
    let message = parse(register.clone());
    assert_eq!(
        message,
        Message::Register {
            cluster_id: Some("cluster-0123456789abcdef".into()),
            agent_version: Some("1.0.3".into()),
            protocol_version: None,
            capabilities: None,
        }
    );
    assert_eq!(wire(&message), register);

    let heartbeat = json!({"type": "heartbeat", "cluster_id": "cluster-0123456789abcdef"});
    assert_eq!(wire(&parse(heartbeat.clone())), heartbeat);
}

#[test]
fn register_carries_the_extensions() {
    let message = Message::Register {
        cluster_id: None,
        agent_version: Some("0.1.0".into()),
        protocol_version: Some(1),
        capabilities: Some(Capabilities {
            max_concurrency: 8,
            max_output_bytes: 1_048_576,
            allowlist_version: "v1-0123456789ab".into(),
        }),
    };
    let frame = wire(&message);
    assert_eq!(
        frame,
        json!({"type": "register", "agent_version": "0.1.0", "protocol_version": 1,
               "capabilities": {"max_concurrency": 8, "max_output_bytes": 1048576,
                                "allowlist_version": "v1-0123456789ab"}})
    );
    assert_eq!(parse(frame), message);
}

#[test]
fn v1_host_messages_parse() {
    assert_eq!(
        parse(json!({"type": "connected", "cluster_id": "c-1", "cluster_name": "prod"})),
        Message::Connected {
            cluster_id: "c-1".into(),
            cluster_name: "prod".into()
        }
    );
    assert_eq!(
        parse(json!({"type": "heartbeat_ack"})),
        Message::HeartbeatAck
    );
    assert_eq!(
        wire(&Message::HeartbeatAck),
        json!({"type": "heartbeat_ack"})
    );
}

#[test]
fn a_v1_kubectl_command_is_split_on_whitespace_with_the_default_timeout() {
    let message = parse(json!({
        "type": "kubectl_command",
        "command_id": "6f1c2a0e-8d1b-4a57-9b55-2f5d8c3b9a10",
        "command": "get pods -n default  -o wide"
    }));
    let Message::KubectlCommand { timeout, args, .. } = &message else {
        panic!("not a kubectl_command: {message:?}");
    };
    assert_eq!(*timeout, DEFAULT_TIMEOUT_SECS);
    assert_eq!(*args, None);
    assert_eq!(
        message.kubectl_argv().unwrap(),
        ["get", "pods", "-n", "default", "-o", "wide"]
    );
}

#[test]
fn a_command_carries_the_v1_string_and_the_exact_argv() {
    let argv: Vec<String> = ["get", "pods", "-o", "jsonpath={.items[*].metadata.name} x"]
        .map(String::from)
        .to_vec();
    let message = Message::kubectl_command("id-1", argv.clone(), 30);
    let frame = wire(&message);
    assert_eq!(frame["type"], "kubectl_command");
    assert_eq!(frame["command_id"], "id-1");
    assert_eq!(frame["timeout"], 30);
    assert_eq!(
        frame["command"],
        "get pods -o 'jsonpath={.items[*].metadata.name} x'"
    );
    assert_eq!(frame["args"], json!(argv));
    let parsed = parse(frame);
    assert_eq!(parsed.kubectl_argv().unwrap(), argv);
    assert_eq!(parsed, message);
}

#[test]
fn v1_command_response_parses_and_extensions_are_optional() {
    let v1 = json!({"type": "command_response", "command_id": "id-1", "success": false,
                    "output": "", "error": "Command timed out after 60 seconds", "return_code": 124});
    let message = parse(v1.clone());
    assert_eq!(
        message,
        Message::CommandResponse {
            command_id: "id-1".into(),
            success: false,
            output: String::new(),
            error: Some("Command timed out after 60 seconds".into()),
            return_code: 124,
            truncated: None,
            duration_ms: None,
            duration_us: None,
            stdout_bytes: None,
        }
    );
    assert_eq!(wire(&message), v1);

    let extended = Message::CommandResponse {
        command_id: "id-2".into(),
        success: true,
        output: "NAME\n".into(),
        error: None,
        return_code: 0,
        truncated: Some(true),
        duration_ms: Some(12),
        duration_us: Some(12_345),
        stdout_bytes: Some(2_000_000),
    };
    let frame = wire(&extended);
    assert_eq!(
        frame["error"],
        Value::Null,
        "v1 sends error: null on success"
    );
    assert_eq!(frame["truncated"], true);
    assert_eq!(frame["duration_ms"], 12);
    assert_eq!(frame["stdout_bytes"], 2_000_000);
    assert_eq!(parse(frame), extended);
}

#[test]
fn cancel_and_error_are_the_extension_messages() {
    let cancel = Message::Cancel {
        command_id: "id-3".into(),
    };
    assert_eq!(
        wire(&cancel),
        json!({"type": "cancel", "command_id": "id-3"})
    );
    for (code, text) in [
        (ErrorCode::VerbNotAllowed, "verb_not_allowed"),
        (ErrorCode::Busy, "busy"),
        (ErrorCode::BadRequest, "bad_request"),
    ] {
        let error = Message::Error {
            command_id: Some("id-4".into()),
            code,
            message: "m".into(),
        };
        let frame = wire(&error);
        assert_eq!(
            frame,
            json!({"type": "error", "command_id": "id-4", "code": text, "message": "m"})
        );
        assert_eq!(code.as_str(), text);
        assert_eq!(parse(frame), error);
    }
    assert_eq!(
        parse(json!({"type": "error", "code": "rate_limited", "message": "later"})),
        Message::Error {
            command_id: None,
            code: ErrorCode::Unknown,
            message: "later".into()
        }
    );
}

#[test]
fn unknown_types_parse_as_unknown_and_broken_frames_are_errors() {
    assert_eq!(
        parse(json!({"type": "subscribe", "topic": "x"})),
        Message::Unknown
    );
    assert_eq!(parse(json!({"type": "future_thing"})), Message::Unknown);
    assert!(Message::parse("not json").is_err());
    assert!(Message::parse(r#"{"command_id": "x"}"#).is_err());
    assert!(Message::parse(r#"{"type": "cancel"}"#).is_err());
    assert!(
        Message::parse(r#"{"type": "kubectl_command", "command_id": 5, "command": "get"}"#)
            .is_err()
    );
    assert_eq!(Message::Unknown.kubectl_argv(), None);
}

#[test]
fn shell_join_quotes_only_what_needs_it() {
    assert_eq!(shell_join(&["get", "pods", "-A"]), "get pods -A");
    assert_eq!(shell_join(&["a b", "it's", ""]), r#"'a b' 'it'\''s' ''"#);
    assert_eq!(
        shell_join(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]),
        "get pods -o jsonpath={.items[*].metadata.name}"
    );
    let argv = ["logs", "web-1", "--since=1h"];
    assert_eq!(argv_from_v1_command(&shell_join(&argv)), argv);
}
