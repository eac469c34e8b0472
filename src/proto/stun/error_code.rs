//! ERROR-CODE values (RFC 8489 §14.8, RFC 8656 §19, RFC 6062 §6.3).
//!
//! Call sites name the error (`ErrorCode::ALLOCATION_MISMATCH`), never a bare
//! number; the code and its reason phrase live here, once.

use std::fmt;

/// A STUN error code with its registered reason phrase.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    code: u16,
    reason: &'static str,
}

impl ErrorCode {
    /// 300, RFC 8489 §14.8: the client should use ALTERNATE-SERVER.
    pub const TRY_ALTERNATE: Self = Self::new(300, "Try Alternate");
    /// 400, RFC 8489 §14.8: "The request was malformed."
    pub const BAD_REQUEST: Self = Self::new(400, "Bad Request");
    /// 401, RFC 8489 §14.8: missing or wrong credentials.
    pub const UNAUTHENTICATED: Self = Self::new(401, "Unauthenticated");
    /// 403, RFC 8656 §19: the request is valid but refused (peer policy).
    pub const FORBIDDEN: Self = Self::new(403, "Forbidden");
    /// 420, RFC 8489 §14.8: a comprehension-required attribute is unknown.
    pub const UNKNOWN_ATTRIBUTE: Self = Self::new(420, "Unknown Attribute");
    /// 437, RFC 8656 §19: no allocation, or one already exists, for this 5-tuple.
    pub const ALLOCATION_MISMATCH: Self = Self::new(437, "Allocation Mismatch");
    /// 438, RFC 8489 §14.8: the NONCE is no longer valid.
    pub const STALE_NONCE: Self = Self::new(438, "Stale Nonce");
    /// 440, RFC 8656 §19: the server has no relay of the requested family.
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: Self = Self::new(440, "Address Family not Supported");
    /// 441, RFC 8656 §19: credentials differ from those that created the allocation.
    pub const WRONG_CREDENTIALS: Self = Self::new(441, "Wrong Credentials");
    /// 442, RFC 8656 §19: REQUESTED-TRANSPORT names a transport tern does not relay.
    pub const UNSUPPORTED_TRANSPORT: Self = Self::new(442, "Unsupported Transport Protocol");
    /// 443, RFC 8656 §19: the peer's (or refreshed) family is not the allocation's.
    pub const PEER_ADDRESS_FAMILY_MISMATCH: Self = Self::new(443, "Peer Address Family Mismatch");
    /// 446, RFC 6062 §6.3: a TCP connection to that peer exists or is being made.
    pub const CONNECTION_ALREADY_EXISTS: Self = Self::new(446, "Connection Already Exists");
    /// 447, RFC 6062 §6.3: the TCP connection to the peer failed or timed out.
    pub const CONNECTION_TIMEOUT_OR_FAILURE: Self = Self::new(447, "Connection Timeout or Failure");
    /// 486, RFC 8656 §19: the user has too many allocations.
    pub const ALLOCATION_QUOTA_REACHED: Self = Self::new(486, "Allocation Quota Reached");
    /// 500, RFC 8489 §14.8: a temporary server error.
    pub const SERVER_ERROR: Self = Self::new(500, "Server Error");
    /// 508, RFC 8656 §19: no capacity (relay ports, permissions, channels).
    pub const INSUFFICIENT_CAPACITY: Self = Self::new(508, "Insufficient Capacity");

    const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }

    /// The numeric code (class × 100 + number).
    pub const fn code(self) -> u16 {
        self.code
    }

    /// The reason phrase the RFC registers for it.
    pub const fn reason(self) -> &'static str {
        self.reason
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons() {
        assert_eq!(ErrorCode::STALE_NONCE.code(), 438);
        assert_eq!(ErrorCode::STALE_NONCE.reason(), "Stale Nonce");
        assert_eq!(
            ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH.to_string(),
            "443 Peer Address Family Mismatch"
        );
    }
}
