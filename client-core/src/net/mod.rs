//! The engine's sockets: the control connection ([`control`]), TLS and the trust in a relay's
//! certificate ([`tls`]) and the UDP media socket ([`udp`]). File connections live in
//! [`crate::files`].

pub mod control;
pub mod tls;
pub mod udp;
