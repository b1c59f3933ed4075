//! `parlor-bot`: a headless Parlor client.
fn main() {}
