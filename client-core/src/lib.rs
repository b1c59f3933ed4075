//! Parlor's client engine.
