//! The engine's sockets: the control connection ([`control`]) and the UDP media socket
//! ([`udp`]). File connections live in [`crate::files`].

pub mod control;
pub mod udp;
