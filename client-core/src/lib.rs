//! Parlor's client engine.

pub mod media;
