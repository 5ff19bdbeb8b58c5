//! Redaction of credentials from kubectl's output before it leaves the connector:
//! agent tokens, bearer tokens and JSON Web Tokens (service-account tokens) print
//! as `[redacted]`.

use patchbay_core::secret::REDACTED;
use patchbay_kubectl_protocol::TOKEN_PREFIX;

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

/// `text` with every credential-looking value replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((start, keep)) = next_secret(rest) {
        out.push_str(&rest[..start + keep]);
        out.push_str(REDACTED);
        let after = &rest[start + keep..];
        let end = after.find(|c: char| !token_char(c)).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Where the next secret starts in `text`, and how many of its bytes to keep
/// (the `Bearer ` word).
fn next_secret(text: &str) -> Option<(usize, usize)> {
    let candidates = [
        text.find(TOKEN_PREFIX).map(|at| (at, 0)),
        find_jwt(text).map(|at| (at, 0)),
        find_bearer(text).map(|at| (at, "Bearer ".len())),
    ];
    candidates.into_iter().flatten().min_by_key(|(at, _)| *at)
}

fn find_jwt(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find("eyJ") {
        let at = from + found;
        let boundary = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !token_char(c));
        let run: String = text[at..].chars().take_while(|c| token_char(*c)).collect();
        if boundary && run.matches('.').count() >= 2 && run.len() >= 20 {
            return Some(at);
        }
        from = at + 3;
    }
    None
}

fn find_bearer(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("bearer ") {
        let at = from + found;
        let next = text[at + 7..].chars().next();
        if next.is_some_and(token_char) {
            return Some(at);
        }
        from = at + 7;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_and_the_rest_kept() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl";
        let text = format!(
            "token: pbk8s_AbC-12_x\nAuthorization: Bearer abc.def\nsa {jwt} end\nname: eyJ-not-a-token\n"
        );
        let redacted = redact(&text);
        assert_eq!(
            redacted,
            "token: [redacted]\nAuthorization: Bearer [redacted]\nsa [redacted] end\nname: eyJ-not-a-token\n"
        );
        assert_eq!(redact("plain output"), "plain output");
        assert_eq!(redact("bearer"), "bearer");
    }
}
