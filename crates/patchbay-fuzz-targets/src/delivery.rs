//! The input format of the webhook targets: a delivery written like an HTTP
//! message, so seeds stay readable and the fuzzer mutates headers and body alike.
//!
//! ```text
//! X-GitHub-Event: ping
//! Content-Type: application/json
//!
//! {"zen": "..."}
//! ```
//!
//! Header lines (`Name: value`) come first, then an empty line, then the raw body.
//! Input without an empty line is all body. Lines that are not a valid header are
//! skipped, as an HTTP server would refuse them before any connector sees them.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use patchbay_core::InboundWebhook;

/// Reads a fuzz input as a delivery: headers, an empty line, the raw body.
pub fn read(data: &[u8]) -> InboundWebhook {
    let (head, body) = match find_blank_line(data) {
        Some((end_of_head, start_of_body)) => (&data[..end_of_head], &data[start_of_body..]),
        None => (&data[..0], data),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|byte| *byte == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    InboundWebhook {
        headers,
        body: Bytes::copy_from_slice(body),
    }
}

/// Writes a delivery in the format [`read`] reads, for seeds and regressions.
pub fn write(headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Where the head ends and the body starts: the first `\n\n` or `\n\r\n`, or an
/// input that starts with an empty line (no headers).
fn find_blank_line(data: &[u8]) -> Option<(usize, usize)> {
    if data.starts_with(b"\n") {
        return Some((0, 1));
    }
    if data.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    data.windows(2)
        .position(|pair| pair == b"\n\n")
        .map(|at| (at, at + 2))
        .into_iter()
        .chain(
            data.windows(3)
                .position(|triple| triple == b"\n\r\n")
                .map(|at| (at, at + 3)),
        )
        .min_by_key(|(end, _)| *end)
}

/// `request` with every value of `name` replaced by `value`.
pub fn with_header(request: &InboundWebhook, name: &str, value: &str) -> InboundWebhook {
    let mut request = request.clone();
    let name = HeaderName::from_bytes(name.as_bytes()).expect("header names are constants");
    let value = HeaderValue::from_str(value).expect("computed header values are visible ASCII");
    request.headers.insert(name, value);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_then_a_blank_line_then_the_body() {
        let request = read(b"X-A: 1\r\nbad line\nX-B:  two \n\n{\"k\": 1}\n\nmore");
        assert_eq!(request.header("x-a"), Some("1"));
        assert_eq!(request.header("x-b"), Some("two"));
        assert_eq!(request.headers.len(), 2);
        assert_eq!(request.body.as_ref(), b"{\"k\": 1}\n\nmore");
    }

    #[test]
    fn input_without_a_blank_line_is_all_body() {
        let request = read(b"{\"k\": 1}");
        assert!(request.headers.is_empty());
        assert_eq!(request.body.as_ref(), b"{\"k\": 1}");
        assert_eq!(read(b"\nX-A: 1").body.as_ref(), b"X-A: 1");
    }

    #[test]
    fn written_deliveries_read_back() {
        let bytes = write(&[("X-GitHub-Event", "ping")], b"{}");
        let request = read(&bytes);
        assert_eq!(request.header("x-github-event"), Some("ping"));
        assert_eq!(request.body.as_ref(), b"{}");
    }
}
