//! Meetings that outlive the relay process: what a restart needs is written to the data
//! directory while the relay runs, and read back when it starts.
//!
//! With a data directory and a resume grace window, the relay keeps, in its spool root
//! (`<data_dir>/parlor-spool`):
//!
//! - `relay.json`: the id counters (so no meeting, file or participant id is handed out twice),
//!   whether the last stop was graceful, and when the relay was last alive (rewritten every
//!   second, so a relay killed outright knows how long it has been gone);
//! - `meeting-<id>/meeting.json`: each live meeting's [`MeetingRecord`] (roster with the
//!   seats' secrets, host, chat history, files offered, uploads in progress), rewritten at
//!   most four times a second while something in it changes, beside the meeting's spooled
//!   files and partial uploads. Both files are written whole to a temporary name and renamed,
//!   so a crash leaves the old or the new record, never half of one; they hold secrets and
//!   are readable by the relay's user only.
//!
//! A graceful stop tells every participant `RELAY_RESTARTING` instead of ending its meeting
//! and writes everything once more. At start, if the relay was gone for less than the grace
//! window, every meeting comes back with its code, its seats held (as reconnecting) for what
//! is left of the window, its chat, its files and its interrupted uploads; otherwise, or for a
//! record that cannot be read, the meeting's directory is deleted as before. After a stop that
//! was not graceful the ids (chat ids too) jump ahead, as the records may miss what clients
//! saw in the last moments. An ended meeting's record is deleted before the rest of its spool,
//! so it never comes back. Nothing of the
//! media path is kept: a resumed seat gets the datagram keys of its new connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::meeting::record::{MeetingRecord, RECORD_FORMAT};
use crate::meeting::{IdCounters, Meeting, Shared};

/// The relay's own record, in the spool root.
const RELAY_FILE: &str = "relay.json";
/// Each meeting's record, in its spool directory.
pub(crate) const MEETING_FILE: &str = "meeting.json";
/// How often changed meeting records are written.
const WRITE_INTERVAL: Duration = Duration::from_millis(250);
/// How often `relay.json` says the relay is alive.
const ALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// After a stop that was not graceful, the records may be up to a write interval (or a
/// second, for the id counters) behind what clients saw: every id counter and each meeting's
/// chat ids go on this far ahead, so no id a client already saw is handed out again (clients
/// drop a chat message whose id they have seen).
const UNCLEAN_STOP_ID_MARGIN: u32 = 1_000_000;

/// `relay.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RelayRecord {
    format: u32,
    counters: IdCounters,
    /// The relay stopped gracefully (every meeting record was written at the stop).
    clean_stop: bool,
    /// When the relay was last known alive (ms since the Unix epoch): its stop, or its last
    /// heartbeat.
    alive_unix_ms: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What [`restore`] brought back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restored {
    pub meetings: usize,
    pub seats: usize,
}

/// Writes `bytes` to `path` whole: to a temporary file readable by the owner only, synced,
/// then renamed over `path`.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

fn write_relay_record(shared: &Shared, clean_stop: bool) -> std::io::Result<()> {
    let record =
        RelayRecord { format: RECORD_FORMAT, counters: shared.counters(), clean_stop, alive_unix_ms: unix_ms() };
    let bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    write_whole(&shared.spool_root.join(RELAY_FILE), &bytes)
}

/// Writes `meeting`'s record, unless it ended (its spool is deleted, or about to be).
async fn write_meeting(meeting: Arc<Meeting>) -> std::io::Result<()> {
    let _not_deleted_meanwhile = meeting.record_lock.lock().await;
    let Some(record) = meeting.record() else { return Ok(()) };
    let bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    let dir = meeting.spool_dir.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        write_whole(&dir.join(MEETING_FILE), &bytes)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Writes the records of the meetings that changed, and `relay.json` every second, until the
/// relay stops.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(WRITE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut alive_written: Option<Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for meeting in shared.meetings() {
            if meeting.take_unsaved() {
                if let Err(e) = write_meeting(meeting.clone()).await {
                    warn!(meeting = %meeting.code, "cannot write the meeting's record: {e}");
                    meeting.mark_unsaved();
                }
            }
        }
        if alive_written.is_none_or(|at| at.elapsed() >= ALIVE_INTERVAL) {
            let shared = shared.clone();
            match tokio::task::spawn_blocking(move || write_relay_record(&shared, false)).await {
                Ok(Ok(())) => alive_written = Some(Instant::now()),
                Ok(Err(e)) => warn!("cannot write {RELAY_FILE}: {e}"),
                Err(e) => warn!("cannot write {RELAY_FILE}: {e}"),
            }
        }
    }
}

/// At a graceful stop, after every task has finished: writes every meeting's record and
/// `relay.json` marked as a clean stop.
pub(crate) async fn save_all(shared: &Arc<Shared>) {
    for meeting in shared.meetings() {
        if let Err(e) = write_meeting(meeting.clone()).await {
            warn!(meeting = %meeting.code, "cannot write the meeting's record at the stop: {e}");
        }
    }
    let shared = shared.clone();
    match tokio::task::spawn_blocking(move || write_relay_record(&shared, true)).await {
        Ok(Ok(())) => info!("meetings kept for a restart"),
        Ok(Err(e)) => warn!("cannot write {RELAY_FILE} at the stop: {e}"),
        Err(e) => warn!("cannot write {RELAY_FILE} at the stop: {e}"),
    }
}

/// The `meeting-<digits>` directories in the spool root.
fn meeting_dirs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let is_spool = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("meeting-"))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
        if is_spool && entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

fn delete_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        warn!(dir = %dir.display(), "cannot delete a stale spool: {e}");
    }
}

fn read_meeting(dir: &Path) -> Result<MeetingRecord, String> {
    let bytes = std::fs::read(dir.join(MEETING_FILE)).map_err(|e| e.to_string())?;
    let record: MeetingRecord = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if record.format != RECORD_FORMAT {
        return Err(format!("record format {} is not {RECORD_FORMAT}", record.format));
    }
    let named = dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("meeting-"));
    if named != Some(record.meeting_id.to_string().as_str()) {
        return Err("the record names another meeting".into());
    }
    Ok(record)
}

/// At start, before anything is accepted: brings back the meetings a previous run kept, if it
/// stopped less than the grace window ago, and deletes every other meeting spool. Without a
/// data directory (or grace window) it only deletes what a previous run left. Reads files:
/// call it where blocking is allowed.
pub(crate) fn restore(shared: &Arc<Shared>) -> std::io::Result<Restored> {
    let root = shared.spool_root.clone();
    let dirs = meeting_dirs(&root)?;
    let relay: Option<RelayRecord> = std::fs::read(root.join(RELAY_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|r: &RelayRecord| r.format == RECORD_FORMAT);
    let unclean = relay.is_some_and(|r| !r.clean_stop);
    if let Some(relay) = &relay {
        let mut counters = relay.counters;
        if unclean {
            let margin = u64::from(UNCLEAN_STOP_ID_MARGIN);
            counters.next_meeting_id = counters.next_meeting_id.saturating_add(margin);
            counters.next_file_id = counters.next_file_id.saturating_add(margin);
            counters.next_request_id = counters.next_request_id.saturating_add(margin);
            counters.next_participant_id = counters.next_participant_id.saturating_add(UNCLEAN_STOP_ID_MARGIN);
        }
        shared.restore_counters(&counters);
    }
    let gone = relay.map(|r| Duration::from_millis(unix_ms().saturating_sub(r.alive_unix_ms)));
    let left = gone.and_then(|gone| shared.config.resume_grace.checked_sub(gone)).filter(|_| shared.keeps_meetings());
    let mut restored = Restored::default();
    for dir in dirs {
        let Some(left) = left else {
            delete_dir(&dir);
            continue;
        };
        let mut record = match read_meeting(&dir) {
            Ok(record) => record,
            Err(e) => {
                warn!(dir = %dir.display(), "meeting not restored: {e}");
                delete_dir(&dir);
                continue;
            }
        };
        let _ = std::fs::remove_file(dir.join(MEETING_FILE).with_extension("json.tmp"));
        if unclean {
            record.next_chat_id = record.next_chat_id.saturating_add(u64::from(UNCLEAN_STOP_ID_MARGIN));
        }
        let uploads = record.uploads.clone();
        let seats = record.members.len();
        let until = Instant::now() + left;
        match shared.restore_meeting(record, until, "after a restart") {
            Some(meeting) => {
                crate::files::restore_uploads(shared, &meeting, uploads, until);
                meeting.expire_at(shared, until);
                restored.meetings += 1;
                restored.seats += seats;
            }
            None => {
                warn!(dir = %dir.display(), "meeting not restored: its code is taken, the relay is full or the record has no host");
                delete_dir(&dir);
            }
        }
    }
    if let (Some(relay), Some(gone)) = (relay, gone) {
        info!(
            meetings = restored.meetings,
            seats = restored.seats,
            gone_ms = gone.as_millis() as u64,
            clean_stop = relay.clean_stop,
            "previous run's meetings {}",
            if left.is_some() { "restored" } else { "given up" }
        );
    }
    Ok(restored)
}
