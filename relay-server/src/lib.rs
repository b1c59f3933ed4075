//! The Parlor relay: hosts meetings, forwards media between participants, spools files.
