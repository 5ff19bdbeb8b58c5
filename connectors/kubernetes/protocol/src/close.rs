//! Why the service closes an agent's socket at authentication, and how the agent
//! tells a terminal close (stop retrying) from a transient one.

/// The WebSocket close code of protocol v1 for authentication failures.
pub const POLICY_VIOLATION: u16 = 1008;

/// An authentication failure that closes the agent's socket. Every one is
/// terminal: retrying with the same token cannot succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The upgrade request had no `Authorization: Bearer` header.
    MissingAuthorization,
    /// The token matches no cluster.
    InvalidToken,
    /// The cluster's token was revoked.
    TokenRevoked,
    /// The cluster's token passed its expiry.
    TokenExpired,
}

impl CloseReason {
    /// Every reason, in code order.
    pub const ALL: [CloseReason; 4] = [
        CloseReason::MissingAuthorization,
        CloseReason::InvalidToken,
        CloseReason::TokenRevoked,
        CloseReason::TokenExpired,
    ];

    /// The close reason text, exactly as protocol v1 sends it with code 1008.
    pub fn text(self) -> &'static str {
        match self {
            CloseReason::MissingAuthorization => "Missing Authorization header",
            CloseReason::InvalidToken => "Invalid token",
            CloseReason::TokenRevoked => "Token revoked",
            CloseReason::TokenExpired => "Token expired",
        }
    }

    /// The terminal 4xxx close code of the extensions.
    pub fn terminal_code(self) -> u16 {
        match self {
            CloseReason::MissingAuthorization => 4001,
            CloseReason::InvalidToken => 4002,
            CloseReason::TokenRevoked => 4003,
            CloseReason::TokenExpired => 4004,
        }
    }

    /// The code to close with: 1008 for a v1 agent, which knows no other, and the
    /// terminal 4xxx code for an agent that sent [`crate::PROTOCOL_HEADER`].
    pub fn code_for(self, speaks_extensions: bool) -> u16 {
        if speaks_extensions {
            self.terminal_code()
        } else {
            POLICY_VIOLATION
        }
    }

    /// The reason a close frame carries: a 4001–4004 code whatever its text, or
    /// 1008 with one of the v1 texts. Anything else is not an authentication close.
    pub fn from_close(code: u16, reason: &str) -> Option<CloseReason> {
        if let Some(found) = Self::ALL.into_iter().find(|r| r.terminal_code() == code) {
            return Some(found);
        }
        if code == POLICY_VIOLATION {
            return Self::ALL.into_iter().find(|r| r.text() == reason.trim());
        }
        None
    }

    /// Whether a close frame tells the agent to stop retrying.
    pub fn is_terminal(code: u16, reason: &str) -> bool {
        Self::from_close(code, reason).is_some()
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_the_v1_reasons() {
        let texts: Vec<_> = CloseReason::ALL.iter().map(|r| r.text()).collect();
        assert_eq!(
            texts,
            [
                "Missing Authorization header",
                "Invalid token",
                "Token revoked",
                "Token expired"
            ]
        );
    }

    #[test]
    fn v1_agents_get_1008_and_extension_agents_the_4xxx_code() {
        assert_eq!(CloseReason::TokenRevoked.code_for(false), 1008);
        assert_eq!(CloseReason::TokenRevoked.code_for(true), 4003);
        let codes: Vec<_> = CloseReason::ALL.iter().map(|r| r.code_for(true)).collect();
        assert_eq!(codes, [4001, 4002, 4003, 4004]);
    }

    #[test]
    fn closes_round_trip_through_code_and_text() {
        for reason in CloseReason::ALL {
            for extensions in [false, true] {
                let code = reason.code_for(extensions);
                assert_eq!(CloseReason::from_close(code, reason.text()), Some(reason));
                assert!(CloseReason::is_terminal(code, reason.text()));
            }
            assert_eq!(
                CloseReason::from_close(reason.terminal_code(), ""),
                Some(reason)
            );
        }
    }

    #[test]
    fn other_closes_are_not_terminal() {
        assert!(!CloseReason::is_terminal(1000, "Token revoked"));
        assert!(!CloseReason::is_terminal(1001, ""));
        assert!(!CloseReason::is_terminal(1008, "Message too big"));
        assert!(!CloseReason::is_terminal(1011, "Invalid token"));
        assert!(!CloseReason::is_terminal(4000, "Invalid token"));
        assert!(!CloseReason::is_terminal(4005, ""));
        assert_eq!(CloseReason::from_close(1009, "Invalid token"), None);
    }
}
