//! `relay-server` binary.
fn main() {}
