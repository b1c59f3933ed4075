//! Parlor's network lab.
//!
//! - [`impair`]: the sans-IO impairment model of one link direction (loss, Gilbert–Elliott
//!   bursts, delay, jitter, reordering, duplication, a rate limit with a drop-tail queue).
//! - [`schedule`]: impairments that change during a run, and their text syntax.
//! - [`proxy`]: the `parlor-impair` proxy that applies them to real UDP and TCP traffic.
//! - [`lab`]: the `parlor-lab` scenario runner (relay and bots as processes, impaired paths,
//!   reports and plots).

pub mod impair;
pub mod lab;
pub mod proxy;
pub mod schedule;

pub use impair::{Impairment, LinkConfig, LossModel, PacketClass, Verdict};
pub use proxy::{PortMap, Proxy, ProxyConfig, ProxyStats};
pub use schedule::Schedule;
