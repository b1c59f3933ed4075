//! Invitation links the app is opened with: `parlor://join?relay=…&code=…&fp=…`.
//!
//! The operating system hands a clicked link to the app (the deep-link plugin registers the
//! `parlor` scheme: the desktop entry's `MimeType` on Linux, the registry on Windows,
//! `CFBundleURLTypes` on macOS). A link that starts the app arrives before the page has loaded;
//! one clicked while the app runs reaches the running instance (the single-instance plugin
//! forwards a second launch's argument) and focuses its window. Either way the link waits here
//! until the page takes it with `take_opened_invitation`; the `invitation-opened` event tells a
//! running page to take it. Taking empties the slot, so each link is read once, and the page
//! reads it with `read_invitation` like a pasted one: a malformed link gets the same clear error.

use std::sync::Mutex;

/// Only the newest link waits: clicking two invitations before the page takes them joins the
/// second, as a person clicking twice would expect.
#[derive(Debug, Default)]
pub struct OpenedLinks {
    newest: Mutex<Option<String>>,
}

impl OpenedLinks {
    /// Keeps `link` (the last of `links`, a launch carries one) for the page.
    pub fn opened<I: IntoIterator<Item = String>>(&self, links: I) -> bool {
        let Some(link) = links.into_iter().last() else { return false };
        *self.newest.lock().unwrap_or_else(|e| e.into_inner()) = Some(link);
        true
    }

    /// The link waiting for the page, once.
    pub fn take(&self) -> Option<String> {
        self.newest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_link_is_taken_once() {
        let links = OpenedLinks::default();
        assert_eq!(links.take(), None);
        assert!(!links.opened(Vec::new()), "nothing opened, nothing kept");
        assert!(links.opened(["parlor://join?code=111111".to_string()]));
        assert!(links.opened(["parlor://join?code=222222".to_string()]));
        assert_eq!(links.take().as_deref(), Some("parlor://join?code=222222"));
        assert_eq!(links.take(), None, "a link is read once");
    }
}
