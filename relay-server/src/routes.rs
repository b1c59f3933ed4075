//! Route updates from the meetings to the UDP task, without an await on either side.
//!
//! A meeting changes its roster under its own (synchronous) lock and must put the UDP route
//! in place before the joiner learns its id, so its first keepalive finds the route. A
//! bounded channel would make the meeting wait for room while holding the lock; an unbounded
//! one would let churn grow it. Instead the updates go into [`PendingRoutes`], which cancels
//! an `Add` that was never applied against its `Remove`: what it holds is bounded by the
//! participants alive (or just gone) since the UDP task last drained it, however fast people
//! come and go. The UDP task drains it before each receive batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use protocol::hop::HopSecret;
use tokio::sync::Notify;

use crate::meeting::lock;

/// A change to the routing table, made by a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteUpdate {
    /// A participant was admitted to meeting `meeting_id`.
    Add { meeting_id: u64, participant_id: u32, hop: Arc<HopSecret> },
    /// A participant resumed its seat on a new connection: its route takes that connection's
    /// keys and learns its address again (the router may or may not have a route for it:
    /// a seat restored after a relay restart has none).
    Reroute { meeting_id: u64, participant_id: u32, hop: Arc<HopSecret> },
    /// A participant left.
    Remove { participant_id: u32 },
    /// A moderator muted a participant (`muted`: its audio is dropped, not forwarded), or it
    /// unmuted itself since.
    Mute { participant_id: u32, muted: bool },
}

/// Updates not yet applied, in order, with never-applied adds cancelled by their removes and
/// reroutes merged into the update still pending for the same participant.
#[derive(Debug, Default)]
pub(crate) struct PendingRoutes {
    updates: Vec<RouteUpdate>,
}

impl PendingRoutes {
    pub fn push(&mut self, update: RouteUpdate) {
        let pending = |updates: &[RouteUpdate], id: u32| {
            updates.iter().position(|u| {
                matches!(u, RouteUpdate::Add { participant_id, .. } | RouteUpdate::Reroute { participant_id, .. }
                    if *participant_id == id)
            })
        };
        match update {
            RouteUpdate::Reroute { participant_id, ref hop, .. } => {
                if let Some(index) = pending(&self.updates, participant_id) {
                    // Not applied yet: it takes the newest keys (an add stays an add).
                    if let RouteUpdate::Add { hop: pending_hop, .. } | RouteUpdate::Reroute { hop: pending_hop, .. } =
                        &mut self.updates[index]
                    {
                        *pending_hop = hop.clone();
                    }
                    return;
                }
                self.updates.push(update);
            }
            RouteUpdate::Remove { participant_id } => {
                if let Some(index) = pending(&self.updates, participant_id) {
                    let never_seen = matches!(self.updates.remove(index), RouteUpdate::Add { .. });
                    if never_seen {
                        // The router never saw this participant: forgetting the add is the removal.
                        return;
                    }
                }
                self.updates.push(update);
            }
            RouteUpdate::Mute { participant_id, .. } => {
                // Only the newest mute state of a participant matters: one entry each.
                self.updates
                    .retain(|u| !matches!(u, RouteUpdate::Mute { participant_id: id, .. } if *id == participant_id));
                self.updates.push(update);
            }
            RouteUpdate::Add { .. } => self.updates.push(update),
        }
    }

    pub fn take(&mut self) -> Vec<RouteUpdate> {
        std::mem::take(&mut self.updates)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.updates.len()
    }
}

/// The queue shared by the meetings (producers) and the UDP task (the consumer).
#[derive(Debug, Default)]
pub(crate) struct RouteQueue {
    pending: Mutex<PendingRoutes>,
    /// Set with each push, so the UDP task's hot loop checks a flag instead of a lock.
    dirty: AtomicBool,
    wake: Notify,
}

impl RouteQueue {
    /// Queues `update`; never waits.
    pub fn push(&self, update: RouteUpdate) {
        lock(&self.pending).push(update);
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Everything pushed since the last call, in order (empty without a lock when nothing was).
    pub fn take(&self) -> Vec<RouteUpdate> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        lock(&self.pending).take()
    }

    /// Waits until something may have been pushed since the last wait.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    #[cfg(test)]
    pub fn pending_len(&self) -> usize {
        lock(&self.pending).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(participant_id: u32) -> RouteUpdate {
        RouteUpdate::Add {
            meeting_id: 1,
            participant_id,
            hop: Arc::new(HopSecret::new([7; protocol::hop::HOP_SECRET_LEN])),
        }
    }

    #[test]
    fn keeps_order_of_applied_changes() {
        let mut p = PendingRoutes::default();
        p.push(add(1));
        p.push(add(2));
        p.push(RouteUpdate::Remove { participant_id: 9 });
        assert_eq!(p.take(), vec![add(1), add(2), RouteUpdate::Remove { participant_id: 9 }]);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn a_remove_cancels_an_add_the_router_never_saw() {
        let mut p = PendingRoutes::default();
        p.push(add(1));
        p.push(add(2));
        p.push(RouteUpdate::Remove { participant_id: 1 });
        assert_eq!(p.take(), vec![add(2)]);
    }

    fn reroute(participant_id: u32, key: u8) -> RouteUpdate {
        RouteUpdate::Reroute {
            meeting_id: 1,
            participant_id,
            hop: Arc::new(HopSecret::new([key; protocol::hop::HOP_SECRET_LEN])),
        }
    }

    #[test]
    fn a_reroute_gives_a_pending_update_the_newest_keys() {
        let mut p = PendingRoutes::default();
        p.push(add(1));
        p.push(reroute(1, 9));
        let RouteUpdate::Add { hop, .. } = &p.take()[0] else { panic!("still an add") };
        assert_eq!(**hop, HopSecret::new([9; protocol::hop::HOP_SECRET_LEN]));
        p.push(reroute(2, 3));
        p.push(reroute(2, 4));
        assert_eq!(p.take(), vec![reroute(2, 4)]);
    }

    #[test]
    fn a_remove_after_a_reroute_still_removes_the_route_the_router_has() {
        let mut p = PendingRoutes::default();
        p.push(reroute(1, 9));
        p.push(RouteUpdate::Remove { participant_id: 1 });
        assert_eq!(p.take(), vec![RouteUpdate::Remove { participant_id: 1 }]);
        p.push(add(2));
        p.push(reroute(2, 9));
        p.push(RouteUpdate::Remove { participant_id: 2 });
        assert!(p.take().is_empty(), "the router never saw participant 2");
    }

    #[test]
    fn only_the_newest_mute_state_of_a_participant_is_kept() {
        let mut p = PendingRoutes::default();
        p.push(add(1));
        for muted in [true, false, true] {
            p.push(RouteUpdate::Mute { participant_id: 1, muted });
            p.push(RouteUpdate::Mute { participant_id: 2, muted: !muted });
        }
        assert_eq!(
            p.take(),
            vec![
                add(1),
                RouteUpdate::Mute { participant_id: 1, muted: true },
                RouteUpdate::Mute { participant_id: 2, muted: false }
            ]
        );
    }

    #[test]
    fn churn_between_drains_stays_bounded() {
        let q = RouteQueue::default();
        for id in 1..=100_000u32 {
            q.push(add(id));
            q.push(RouteUpdate::Remove { participant_id: id });
        }
        assert_eq!(q.pending_len(), 0);
        q.push(add(5));
        assert_eq!(q.take(), vec![add(5)]);
        assert!(q.take().is_empty(), "a second take without pushes finds nothing");
    }
}
