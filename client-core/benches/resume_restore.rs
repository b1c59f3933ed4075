//! How fast a call comes back after the network does: two sessions in a meeting on a relay in
//! this process (the relay's default liveness and grace windows), one of them (the "guest")
//! behind a path that is black-holed for 5 s (TCP held, UDP dropped, both ways), 20 times.
//! After each restore it measures, on both sides, the time to the first decoded video frame of
//! the other and to the other's audio playing again (its level, quiet during the outage, back above the speaking
//! threshold; levels are published every 200 ms, so audio times have that resolution), and
//! prints p50/p95 over the cycles.
//!
//! ```text
//! cargo bench -p client-core --bench resume_restore [-- CYCLES [DROP_SECS]]
//! cargo bench -p client-core --bench resume_restore -- restart [CYCLES]
//! ```
//!
//! With `restart`, the outage is a relay restart instead: the relay (keeping its meetings in a
//! temporary data directory) is stopped as SIGTERM stops it and started again on the same
//! ports, and the times count from when it is listening again.
//!
//! Both sessions send the 480p test pattern at 20 fps and a tone. Needs 127.0.0.2 (the path's
//! forwarders bind there), as the session tests do.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use client_core::{SessionEvent, SessionOptions};
use common::*;
use relay_server::{Relay, RelayConfig};

/// How long after a restore a cycle waits for video and audio before calling it a failure.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);
/// Quiet time between cycles, so each drop starts from a call in its steady state.
const SETTLE: Duration = Duration::from_secs(2);

fn talker() -> SessionOptions {
    SessionOptions { video: client_core::VideoChoice::Synthetic, audio: client_core::AudioChoice::Tone, ..quiet() }
}

/// When `bot` first decoded a frame from `sender` at or after `since`.
fn first_frame_after(bot: &Bot, sender: u32, since: Instant) -> Option<Instant> {
    let log = bot.log.lock().unwrap();
    log.frames.get(&sender)?.iter().find(|f| f.at >= since).map(|f| f.at)
}

/// Whether `bot` hears `sender` speaking (its tone) in the newest level report among `events`.
fn hears(events: &[SessionEvent], sender: u32) -> Option<bool> {
    levels(events, sender).last()
}

/// Whether `sender`'s speaking flag, as `bot`'s level reports among `events` showed it, went
/// off (the outage) and then on again.
fn hears_again(events: &[SessionEvent], sender: u32) -> bool {
    let mut flags = levels(events, sender);
    flags.any(|speaking| !speaking) && flags.any(|speaking| speaking)
}

/// `sender`'s speaking flag in each level report among `events`, oldest first.
fn levels(events: &[SessionEvent], sender: u32) -> impl DoubleEndedIterator<Item = bool> + '_ {
    events.iter().filter_map(move |e| match e {
        SessionEvent::AudioLevel { levels } => {
            Some(levels.iter().any(|level| level.participant_id == sender && level.speaking))
        }
        _ => None,
    })
}

/// Waits until `f` holds, polling every 10 ms; the time it first held, or `None` after `limit`.
async fn until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    if samples.is_empty() {
        println!("{name:<44} no samples");
        return;
    }
    println!(
        "{name:<44} p50 {:>6.0} ms   p95 {:>6.0} ms   max {:>6.0} ms   (n = {})",
        percentile(samples, 50.0),
        percentile(samples, 95.0),
        samples[samples.len() - 1],
        samples.len()
    );
}

/// What breaks the call in each cycle.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// The guest's path is black-holed this long.
    BlackHole(Duration),
    /// The relay restarts.
    Restart,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let restart = args.first().is_some_and(|a| a == "restart");
    if restart {
        args.remove(0);
    }
    let cycles: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(if restart { 10 } else { 20 });
    let outage = if restart {
        Outage::Restart
    } else {
        Outage::BlackHole(Duration::from_secs(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5)))
    };
    let data_dir = tempfile::tempdir().expect("a data directory");
    let defaults = RelayConfig::default();
    let mut config = RelayConfig {
        liveness_timeout: defaults.liveness_timeout,
        resume_grace: defaults.resume_grace,
        data_dir: Some(data_dir.path().to_path_buf()),
        ..RelayConfig::for_tests()
    };
    let mut relay = Relay::start(config.clone()).await.expect("relay starts");
    // A restarted relay comes back where it was.
    (config.tcp_port, config.udp_port) = (relay.tcp_addr().port(), relay.udp_addr().port());
    let path = Path::start(&relay).await;
    let host = Bot::connect(&relay.tcp_addr().to_string(), talker()).await;
    let guest = Bot::connect(&path.addr, talker()).await;
    let (code, host_id) = create(&host, "Host").await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;
    match outage {
        Outage::BlackHole(drop_for) => println!("resume after a {} s black hole, {cycles} cycles", drop_for.as_secs()),
        Outage::Restart => println!("resume after a relay restart, {cycles} cycles"),
    }

    let (mut guest_video, mut guest_audio, mut host_video, mut host_audio, mut resumed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut failures = 0;
    for cycle in 0..cycles {
        // A steady call first: both see and hear each other.
        let steady = Instant::now();
        let ready = until(RECOVERY_LIMIT, || {
            first_frame_after(&guest, host_id, steady).is_some()
                && first_frame_after(&host, guest_id, steady).is_some()
                && hears(&guest.events(), host_id) == Some(true)
                && hears(&host.events(), guest_id) == Some(true)
        })
        .await;
        if ready.is_none() {
            println!("cycle {cycle}: the call never reached a steady state; stopping");
            failures += 1;
            break;
        }
        tokio::time::sleep(SETTLE).await;

        let marks = (guest.mark(), host.mark());
        let restored = match outage {
            Outage::BlackHole(drop_for) => {
                path.black_hole();
                tokio::time::sleep(drop_for).await;
                path.restore();
                Instant::now()
            }
            Outage::Restart => {
                relay.shutdown().await;
                relay = Relay::start(config.clone()).await.expect("the relay starts again");
                Instant::now()
            }
        };
        let ms = |at: Option<Instant>| at.map(|t| t.duration_since(restored).as_secs_f64() * 1000.0);

        let (mut gv, mut ga, mut hv, mut ha) = (None, None, None, None);
        let done = until(RECOVERY_LIMIT, || {
            gv = gv.or_else(|| first_frame_after(&guest, host_id, restored));
            hv = hv.or_else(|| first_frame_after(&host, guest_id, restored));
            // Audio counts once the level reports since the outage began went quiet and came back.
            if ga.is_none() && hears_again(&guest.events()[marks.0..], host_id) {
                ga = Some(Instant::now());
            }
            if ha.is_none() && hears_again(&host.events()[marks.1..], guest_id) {
                ha = Some(Instant::now());
            }
            gv.is_some() && hv.is_some() && ga.is_some() && ha.is_some()
        })
        .await;
        let resume = guest.events().iter().skip(marks.0).find_map(|e| match e {
            SessionEvent::Resumed { after_ms, .. } => Some(*after_ms),
            _ => None,
        });
        println!(
            "cycle {cycle:>2}: guest sees {:?} ms, hears {:?} ms; host sees {:?} ms, hears {:?} ms; \
             resume took {:?} ms after the break was noticed",
            ms(gv).map(|v| v.round()),
            ms(ga).map(|v| v.round()),
            ms(hv).map(|v| v.round()),
            ms(ha).map(|v| v.round()),
            resume
        );
        if done.is_none() {
            failures += 1;
        }
        guest_video.extend(ms(gv));
        guest_audio.extend(ms(ga));
        host_video.extend(ms(hv));
        host_audio.extend(ms(ha));
        resumed.extend(resume.map(|v| v as f64));
    }

    println!();
    summary("guest: first frame of the host after restore", &mut guest_video);
    summary("guest: host's audio playing after restore", &mut guest_audio);
    summary("host: first frame of the guest after restore", &mut host_video);
    summary("host: guest's audio playing after restore", &mut host_audio);
    summary("guest: RESUMED, from the break it noticed", &mut resumed);
    println!("cycles that did not recover within {} s: {failures}", RECOVERY_LIMIT.as_secs());
    guest.close().await;
    host.close().await;
    relay.shutdown().await;
}
