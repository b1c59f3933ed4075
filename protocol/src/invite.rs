//! Invitations: what a host sends to someone they want in a meeting, so that the person's app
//! reaches the right relay, names the right meeting and checks the relay's certificate
//! without asking them anything.
//!
//! An invitation is a link, `parlor://join?relay=HOST%3APORT&code=123456&fp=<64 hex digits>`
//! (docs/protocol.md §1.2), and a few lines of text around it for people to read. [`Invite::find`]
//! takes either back out of whatever was pasted: the whole text, the link alone.

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::control::is_valid_meeting_code;
use crate::fingerprint::Fingerprint;

/// The scheme and path of an invitation link.
pub const LINK_PREFIX: &str = "parlor://join?";

/// Characters a query value keeps as they are (RFC 3986 unreserved).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Longest relay address an invitation may name (a DNS name of 253 characters and a port).
const MAX_RELAY_LEN: usize = 260;

/// Where a meeting is and how to know its relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The relay's address, "HOST:PORT" of its TCP port.
    pub relay: String,
    /// The 6-digit meeting code.
    pub code: String,
    /// The SHA-256 fingerprint of the relay's certificate; `None` for a relay whose
    /// certificate is CA-signed and checked against the system's roots instead.
    pub fingerprint: Option<Fingerprint>,
}

/// Why a text is not an invitation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("no parlor://join link in the text")]
    NoLink,
    #[error("the invitation names no relay address")]
    NoRelay,
    #[error("the invitation's relay address is not HOST:PORT")]
    BadRelay,
    #[error("the invitation's meeting code is not 6 digits")]
    BadCode,
    #[error("the invitation's certificate fingerprint is not 64 hex digits")]
    BadFingerprint,
}

impl Invite {
    /// The `parlor://join?…` link.
    pub fn link(&self) -> String {
        let mut link = format!(
            "{LINK_PREFIX}relay={}&code={}",
            utf8_percent_encode(&self.relay, VALUE),
            utf8_percent_encode(&self.code, VALUE)
        );
        if let Some(fp) = &self.fingerprint {
            link.push_str(&format!("&fp={fp}"));
        }
        link
    }

    /// The invitation as text to paste into a message: the link, then each part on a line of
    /// its own for someone who types them in.
    pub fn text(&self) -> String {
        let mut text =
            format!("Join my Parlor meeting: {}\nRelay: {}\nMeeting code: {}\n", self.link(), self.relay, self.code);
        if let Some(fp) = &self.fingerprint {
            text.push_str(&format!("Certificate: {fp}\n"));
        }
        text
    }

    /// Finds the invitation link in `text` (an invitation's text, or a link alone) and reads it.
    pub fn find(text: &str) -> Result<Self, InviteError> {
        let start = text.find(LINK_PREFIX).ok_or(InviteError::NoLink)?;
        let link = &text[start..];
        let end = link.find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>').unwrap_or(link.len());
        Self::parse_link(&link[..end])
    }

    /// Reads a `parlor://join?…` link. Unknown parameters are ignored, so later versions can add
    /// some.
    pub fn parse_link(link: &str) -> Result<Self, InviteError> {
        let query = link.strip_prefix(LINK_PREFIX).ok_or(InviteError::NoLink)?;
        let (mut relay, mut code, mut fingerprint) = (None, None, None);
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value).decode_utf8_lossy();
            match key {
                "relay" => relay = Some(value.trim().to_string()),
                "code" => code = Some(value.trim().to_string()),
                "fp" => fingerprint = Some(value.parse::<Fingerprint>().map_err(|_| InviteError::BadFingerprint)?),
                _ => {}
            }
        }
        let relay = relay.filter(|r| !r.is_empty()).ok_or(InviteError::NoRelay)?;
        if !is_valid_relay_address(&relay) {
            return Err(InviteError::BadRelay);
        }
        let code = code.filter(|c| is_valid_meeting_code(c)).ok_or(InviteError::BadCode)?;
        Ok(Self { relay, code, fingerprint })
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.link())
    }
}

/// Whether `relay` is a relay address a client may connect to: "HOST:PORT" with a port other
/// than 0, at most 260 characters, no blanks or control characters.
pub fn is_valid_relay_address(relay: &str) -> bool {
    relay.len() <= MAX_RELAY_LEN && has_port(relay) && !relay.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether `relay` ends in ":PORT" with a port other than 0 after a non-empty host.
fn has_port(relay: &str) -> bool {
    match relay.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(relay: &str) -> Invite {
        Invite {
            relay: relay.to_string(),
            code: "482913".to_string(),
            fingerprint: Some(Fingerprint::of_certificate(b"relay certificate")),
        }
    }

    #[test]
    fn links_round_trip_with_every_kind_of_address() {
        for relay in ["192.168.1.20:5000", "relay.example.org:443", "[fe80::1]:5000"] {
            let inv = invite(relay);
            let link = inv.link();
            assert!(link.starts_with("parlor://join?relay="), "{link}");
            assert!(!link[LINK_PREFIX.len()..].contains(':'), "the address is escaped: {link}");
            assert_eq!(Invite::parse_link(&link).unwrap(), inv);
        }
        let without_pin = Invite { fingerprint: None, ..invite("relay.example.org:443") };
        assert_eq!(Invite::parse_link(&without_pin.link()).unwrap(), without_pin);
    }

    #[test]
    fn the_link_is_found_in_the_pasted_text() {
        let inv = invite("192.168.1.20:5000");
        assert_eq!(Invite::find(&inv.text()).unwrap(), inv);
        assert_eq!(Invite::find(&format!("see <{}> today", inv.link())).unwrap(), inv);
        assert!(inv.text().contains("Meeting code: 482913\n"));
        assert_eq!(Invite::find("482913"), Err(InviteError::NoLink));
    }

    #[test]
    fn bad_invitations_say_what_is_wrong() {
        let fp = Fingerprint::of_certificate(b"x");
        let cases = [
            ("parlor://join?code=482913".to_string(), InviteError::NoRelay),
            ("parlor://join?relay=relay.lan&code=482913".to_string(), InviteError::BadRelay),
            ("parlor://join?relay=relay.lan%3A0&code=482913".to_string(), InviteError::BadRelay),
            ("parlor://join?relay=relay.lan%3A5000&code=48291".to_string(), InviteError::BadCode),
            ("parlor://join?relay=relay.lan%3A5000&code=482913&fp=abc".to_string(), InviteError::BadFingerprint),
            (format!("parlor://join?relay=a%20b%3A5000&code=482913&fp={fp}"), InviteError::BadRelay),
            ("https://example.org/?relay=x".to_string(), InviteError::NoLink),
        ];
        for (text, want) in cases {
            assert_eq!(Invite::find(&text), Err(want), "{text}");
        }
        let later = format!("parlor://join?relay=relay.lan%3A5000&code=482913&fp={fp}&v=9");
        assert_eq!(Invite::find(&later).unwrap().fingerprint, Some(fp));
    }
}
