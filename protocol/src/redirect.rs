//! Following `REDIRECT`s: a client of a cluster of relays (docs/protocol.md §3.9) sends its
//! `CREATE_MEETING` or `JOIN_REQUEST` to whichever relay it knows, and that relay may answer
//! with the relay that takes the request instead. [`RedirectTrail`] decides whether to follow
//! one more: never to an address that is not HOST:PORT, never back to a relay this request
//! already visited (two relays with stale views of each other's load would otherwise bounce
//! it between them for ever), and at most [`MAX_REDIRECTS`] times. Sans-IO: the client's
//! control task does the connecting.

use crate::invite::is_valid_relay_address;

/// Redirects one request may follow. One is what a cluster normally needs (the relay that
/// owns the meeting, or the least-loaded one); the rest cover a meeting that moved meanwhile.
pub const MAX_REDIRECTS: usize = 3;

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("the relays sent this request back to {relay}, where it already was (a redirect loop)")]
    Loop { relay: String },
    #[error("the relays redirected this request more than {MAX_REDIRECTS} times")]
    TooMany,
    #[error("a relay redirected this request to {relay:?}, which is not a HOST:PORT address")]
    BadAddress { relay: String },
}

/// The relays one request has been sent to, first to last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTrail {
    visited: Vec<String>,
}

/// Relay addresses compare as typed, without surrounding blanks, in lower case.
fn same_relay(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

impl RedirectTrail {
    /// A request first sent to `relay`.
    pub fn starting_at(relay: &str) -> Self {
        Self { visited: vec![relay.trim().to_string()] }
    }

    /// Records a redirect to `relay` if it may be followed.
    pub fn follow(&mut self, relay: &str) -> Result<(), RedirectError> {
        if !is_valid_relay_address(relay) {
            return Err(RedirectError::BadAddress { relay: relay.chars().take(80).collect() });
        }
        if self.visited.iter().any(|v| same_relay(v, relay)) {
            return Err(RedirectError::Loop { relay: relay.to_string() });
        }
        if self.redirects() >= MAX_REDIRECTS {
            return Err(RedirectError::TooMany);
        }
        self.visited.push(relay.trim().to_string());
        Ok(())
    }

    /// Redirects followed so far.
    pub fn redirects(&self) -> usize {
        self.visited.len() - 1
    }

    /// The relay the request is at now.
    pub fn current(&self) -> &str {
        self.visited.last().map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_new_relays_up_to_the_limit() {
        let mut trail = RedirectTrail::starting_at("a.example:5000");
        for (i, relay) in ["b.example:5000", "c.example:5000", "d.example:5000"].iter().enumerate() {
            trail.follow(relay).unwrap();
            assert_eq!(trail.redirects(), i + 1);
            assert_eq!(trail.current(), *relay);
        }
        assert_eq!(trail.follow("e.example:5000"), Err(RedirectError::TooMany));
        assert_eq!(trail.current(), "d.example:5000", "a refused redirect is not recorded");
    }

    #[test]
    fn refuses_to_go_back_to_a_relay_already_visited() {
        let mut trail = RedirectTrail::starting_at("A.example:5000 ");
        trail.follow("b.example:5000").unwrap();
        assert_eq!(trail.follow("a.example:5000"), Err(RedirectError::Loop { relay: "a.example:5000".into() }));
        assert_eq!(trail.follow("B.EXAMPLE:5000"), Err(RedirectError::Loop { relay: "B.EXAMPLE:5000".into() }));
    }

    #[test]
    fn refuses_addresses_a_client_cannot_connect_to() {
        let mut trail = RedirectTrail::starting_at("a.example:5000");
        for bad in ["b.example", "b.example:0", ":5000", "b example:5000", "b.example:99999", ""] {
            assert!(matches!(trail.follow(bad), Err(RedirectError::BadAddress { .. })), "{bad:?}");
        }
        assert_eq!(trail.redirects(), 0);
    }
}
