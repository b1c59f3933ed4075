//! The cluster directory: several relays act as one service by sharing a Redis server
//! (`--redis URL`; docs/protocol.md §3.9, README "Several relays").
//!
//! What each relay keeps there:
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `parlor:relay:<id>` | the relay's [`RelayRecord`] as JSON: where clients reach it, its certificate's fingerprint, its load | [`LEASE`], renewed every [`HEARTBEAT`] |
//! | `parlor:relays` | set of the ids of the relays that registered (expired ones are pruned by whoever lists them) | — |
//! | `parlor:meeting:<code>` | the id of the relay hosting meeting `code` | [`LEASE`], renewed every [`HEARTBEAT`] while the meeting lives |
//! | `parlor:state:<code>` | the meeting's record as JSON (roster with seat secrets, host, chat, files offered: what a restart keeps, `meeting::record`), written [`STATE_FLUSH`] after a change | the grace window + 2 × [`LEASE`], renewed with the claim |
//!
//! A relay's id is its public address (two relays cannot share one). A new meeting's code is
//! claimed with `SET … NX`, so it is unique across the cluster; the owner renews its claims at
//! each heartbeat (re-claiming a code whose lease ran out while Redis was away, and counting a
//! conflict if another relay took it meanwhile, and handing that meeting over) and deletes a
//! claim and the state when the meeting ends (retried while Redis is away); a relay that dies
//! stops renewing, and its registration and claims are gone within [`LEASE`].
//!
//! **Failover.** A `RESUME` for a meeting this relay does not host is answered with a redirect
//! while the meeting's relay renews its registration ([`Directory::locate_for_resume`]); once
//! that relay has been silent for [`OWNER_SILENCE`], the relay the seat holder reached claims
//! the code with a compare-and-set ([`Directory::take_over`]: of several, one wins) and restores
//! the meeting from its state, every seat held for the grace window.
//!
//! The control tasks ask the directory where a meeting they do not host is
//! ([`Directory::lookup`]) and whether a new meeting belongs on a less loaded relay
//! ([`Directory::placement`], decided by [`place_new_meeting`] from the relay records the last
//! heartbeat read, without a round trip). If Redis is unreachable the relay goes on hosting its
//! own meetings and refuses, with `DIRECTORY_UNAVAILABLE`, what it cannot check; the heartbeat
//! task keeps trying and registers again as soon as Redis answers. Every Redis operation is
//! bounded by [`OP_TIMEOUT`], so nothing waits on a Redis that stopped answering.
//!
//! The Redis URL may carry a password: it is never logged, nor put in an error.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::fingerprint::Fingerprint;
use rand::rngs::OsRng;
use rand::Rng;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::meeting::record::{MeetingRecord, RECORD_FORMAT};
use crate::meeting::{lock, Shared};
use crate::stats::Stats;
use protocol::control::ClusterRelay;

/// How long a registration or a code claim lives without being renewed: a relay that dies
/// is out of the directory within this.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a relay renews its registration and claims (five chances per lease) and reads
/// the other relays' load.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Longest a single Redis operation may take before it counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts at claiming a fresh random code before giving up (each draw collides with a live
/// meeting with odds of live meetings / 10^6).
const CLAIM_ATTEMPTS: usize = 16;
/// Codes renewed by one script call.
const RENEW_BATCH: usize = 500;
/// Ended meetings' claims waiting to be deleted; beyond it, a claim expires with its lease.
const RELEASE_QUEUE: usize = 1024;
/// Relays `WELCOME` lists at most.
const MAX_LISTED_RELAYS: usize = 16;
/// How often the state of meetings that changed is copied to the directory.
pub const STATE_FLUSH: Duration = Duration::from_millis(250);

const RELAYS_KEY: &str = "parlor:relays";

fn relay_key(id: &str) -> String {
    format!("parlor:relay:{id}")
}

fn meeting_key(code: &str) -> String {
    format!("parlor:meeting:{code}")
}

fn state_key(code: &str) -> String {
    format!("parlor:state:{code}")
}

/// Renews this relay's claims: KEYS are pairs of a meeting key and its state key, ARGV[1] the
/// relay's id, ARGV[2] the lease and ARGV[3] the state's lifetime in ms. A claim that expired
/// is claimed again; returns the meeting keys another relay holds.
const RENEW_SCRIPT: &str = r"
local taken = {}
for i = 1, #KEYS, 2 do
  local owner = redis.call('GET', KEYS[i])
  if not owner then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    redis.call('PEXPIRE', KEYS[i + 1], ARGV[3])
  elseif owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    redis.call('PEXPIRE', KEYS[i + 1], ARGV[3])
  else
    table.insert(taken, KEYS[i])
  end
end
return taken
";

/// Takes over a meeting whose relay is gone: KEYS[1] the meeting key, ARGV[1] this relay's id,
/// ARGV[2] the lease in ms, ARGV[3] the owner the directory showed ('' for none). Claims the
/// code only if it is still as it was seen, so of several relays taking over at once one wins.
const TAKE_OVER_SCRIPT: &str = r"
local owner = redis.call('GET', KEYS[1])
if (not owner and ARGV[3] == '') or owner == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Writes a meeting's state if its claim is this relay's: KEYS[1] the meeting key, KEYS[2] its
/// state key, ARGV[1] the relay's id, ARGV[2] the state, ARGV[3] its lifetime in ms.
const SAVE_STATE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Deletes a claim and the meeting's state if the claim is still this relay's: KEYS[1] the
/// meeting key, KEYS[2] its state key, ARGV[1] the relay's id.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1], KEYS[2])
end
return 0
";

/// What a relay publishes about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayRecord {
    /// Its id in the directory: its public address.
    pub id: String,
    /// Where clients reach its TCP port, "HOST:PORT".
    pub address: String,
    /// Its certificate's SHA-256 fingerprint: what a redirected client accepts.
    pub fingerprint: Fingerprint,
    pub meetings: u64,
    pub participants: u64,
    /// Participants it hosts before it sends new meetings elsewhere.
    pub capacity: u64,
    /// Whether it takes new meetings (under its capacity and its meeting limit).
    pub accepting: bool,
}

impl RelayRecord {
    /// How full it is, as a fraction of its capacity.
    fn load(&self) -> f64 {
        self.participants as f64 / self.capacity.max(1) as f64
    }
}

/// Where a new meeting asked of relay `me` goes: `None` keeps it there; otherwise the least
/// loaded relay that takes new meetings. A relay that takes new meetings keeps them; one that
/// does not, with nowhere else to send them, keeps them too (up to its meeting limit).
pub fn place_new_meeting<'a>(me: &RelayRecord, relays: &'a [RelayRecord]) -> Option<&'a RelayRecord> {
    if me.accepting {
        return None;
    }
    relays
        .iter()
        .filter(|r| r.id != me.id && r.accepting)
        .min_by(|a, b| a.load().total_cmp(&b.load()).then_with(|| a.id.cmp(&b.id)))
}

/// Why the directory could not answer.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DirectoryError {
    #[error("the meeting directory is unreachable")]
    Unavailable,
    #[error("the meeting directory failed: {0}")]
    Redis(String),
    #[error("the meeting directory did not answer within {} ms", OP_TIMEOUT.as_millis())]
    Timeout,
    #[error("no free meeting code found in {CLAIM_ATTEMPTS} draws")]
    NoFreeCode,
}

/// Where a meeting this relay does not host is.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// No relay claims the code.
    Unknown,
    /// The directory names this relay, which does not host it (it ended a moment ago).
    Here,
    /// Another relay hosts it.
    Elsewhere(RelayRecord),
    /// The relay that claimed it is not registered any more (it stopped or died; the claim
    /// expires with its lease).
    OwnerGone,
}

/// Where a meeting a client wants to resume (and this relay does not host) is.
#[derive(Debug)]
pub enum ResumeLookup {
    /// Nowhere: no relay claims it and no state is kept.
    Unknown,
    /// Another relay hosts it and is alive.
    Elsewhere(RelayRecord),
    /// Its relay is gone (or silent for [`OWNER_SILENCE`]) and its state is here: this relay
    /// may take it over, if the claim is still held by `owner` (`None`: by nobody).
    Orphaned { record: Box<MeetingRecord>, owner: Option<String> },
}

/// A relay whose registration was not renewed for this long counts as gone, before its lease
/// runs out: three heartbeats missed.
pub const OWNER_SILENCE: Duration = Duration::from_secs(6);

/// One relay's handle on the cluster directory.
#[derive(Debug)]
pub struct Directory {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// This relay's id and public address.
    id: String,
    fingerprint: Fingerprint,
    capacity: u64,
    max_meetings: u64,
    /// Set while Redis answers; requests fail fast while it does not.
    available: AtomicBool,
    /// The other relays as the last heartbeat read them.
    relays: Mutex<Vec<RelayRecord>>,
    releases: mpsc::Sender<String>,
    stats: Arc<Stats>,
    /// How long a meeting's state outlives its relay's last renewal: long enough for its
    /// participants to resume elsewhere within their grace window.
    state_ttl: Duration,
    renew: redis::Script,
    release: redis::Script,
    take_over: redis::Script,
    save_state: redis::Script,
    /// Claims of ended meetings whose deletion failed, tried again at each heartbeat (at most
    /// `max_meetings`; beyond, the oldest are left to expire).
    unreleased: Mutex<Vec<String>>,
}

impl Directory {
    /// A directory at `redis_url` for the relay reached at `address`; the receiver is the
    /// queue of claims to delete, for [`run`].
    pub fn new(
        redis_url: &str,
        address: String,
        fingerprint: Fingerprint,
        capacity: usize,
        max_meetings: usize,
        resume_grace: Duration,
        stats: Arc<Stats>,
    ) -> Result<(Arc<Self>, mpsc::Receiver<String>), redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        let (releases, release_rx) = mpsc::channel(RELEASE_QUEUE);
        let directory = Self {
            client,
            connection: tokio::sync::Mutex::new(None),
            id: address,
            fingerprint,
            capacity: capacity as u64,
            max_meetings: max_meetings as u64,
            available: AtomicBool::new(false),
            relays: Mutex::new(Vec::new()),
            releases,
            stats,
            state_ttl: resume_grace + 2 * LEASE,
            renew: redis::Script::new(RENEW_SCRIPT),
            release: redis::Script::new(RELEASE_SCRIPT),
            take_over: redis::Script::new(TAKE_OVER_SCRIPT),
            save_state: redis::Script::new(SAVE_STATE_SCRIPT),
            unreleased: Mutex::new(Vec::new()),
        };
        Ok((Arc::new(directory), release_rx))
    }

    /// This relay's id in the directory: its public address.
    pub fn relay_id(&self) -> &str {
        &self.id
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_available(&self) -> bool {
        self.available.load(Relaxed)
    }

    /// This relay as the directory shows it now.
    fn own_record(&self) -> RelayRecord {
        let meetings = self.stats.meetings_live.load(Relaxed);
        let participants = self.stats.participants_live.load(Relaxed);
        RelayRecord {
            id: self.id.clone(),
            address: self.id.clone(),
            fingerprint: self.fingerprint,
            meetings,
            participants,
            capacity: self.capacity,
            accepting: participants < self.capacity && meetings < self.max_meetings,
        }
    }

    /// The other relays of the cluster, as `WELCOME` lists them.
    pub fn other_relays(&self) -> Vec<ClusterRelay> {
        lock(&self.relays)
            .iter()
            .filter(|r| r.id != self.id)
            .take(MAX_LISTED_RELAYS)
            .map(|r| ClusterRelay { relay: r.address.clone(), fingerprint: r.fingerprint })
            .collect()
    }

    /// The relay a new meeting should be created on instead of this one, if any.
    pub fn placement(&self) -> Option<RelayRecord> {
        let me = self.own_record();
        let relays = lock(&self.relays);
        place_new_meeting(&me, &relays).cloned()
    }

    /// The connection to use for a request: fails at once while Redis is known to be away
    /// (the heartbeat reconnects).
    async fn request_connection(&self) -> Result<MultiplexedConnection, DirectoryError> {
        if !self.is_available() {
            return Err(DirectoryError::Unavailable);
        }
        self.connection.lock().await.clone().ok_or(DirectoryError::Unavailable)
    }

    /// The connection, opened if there is none (heartbeat only).
    async fn open_connection(&self) -> Result<MultiplexedConnection, DirectoryError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = bounded(self.client.get_multiplexed_async_connection()).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Counts a failed operation and marks Redis as away until the next heartbeat succeeds.
    async fn failed(&self, error: &DirectoryError) {
        Stats::inc(&self.stats.directory_failures);
        *self.connection.lock().await = None;
        self.stats.directory_available.store(0, Relaxed);
        if self.available.swap(false, Relaxed) {
            warn!(
                "lost the meeting directory ({error}): hosting this relay's meetings on, refusing what needs the \
                 directory until it is back"
            );
        }
    }

    /// Runs one request, marking the directory away if it fails.
    async fn request<T>(
        &self,
        op: impl AsyncFnOnce(MultiplexedConnection) -> Result<T, DirectoryError>,
    ) -> Result<T, DirectoryError> {
        let connection = self.request_connection().await?;
        // However many round trips `op` makes, it answers within this.
        let result = tokio::time::timeout(2 * OP_TIMEOUT, op(connection)).await.unwrap_or(Err(DirectoryError::Timeout));
        // Only Redis failing marks it away (not, say, running out of codes to draw).
        if let Err(e @ (DirectoryError::Redis(_) | DirectoryError::Timeout)) = &result {
            self.failed(e).await;
        }
        result
    }

    /// Where meeting `code` (not hosted here) is.
    pub async fn lookup(&self, code: &str) -> Result<Lookup, DirectoryError> {
        let id = self.id.as_str();
        self.request(async |mut c| {
            let owner: Option<String> = bounded(redis::cmd("GET").arg(meeting_key(code)).query_async(&mut c)).await?;
            let Some(owner) = owner else { return Ok(Lookup::Unknown) };
            if owner == id {
                return Ok(Lookup::Here);
            }
            let record: Option<String> = bounded(redis::cmd("GET").arg(relay_key(&owner)).query_async(&mut c)).await?;
            Ok(match record.and_then(|json| parse_record(&json)) {
                Some(record) => Lookup::Elsewhere(record),
                None => Lookup::OwnerGone,
            })
        })
        .await
    }

    /// Where meeting `code` (not hosted here) is, for a `RESUME`: with a relay that is alive, or
    /// orphaned with the state to take it over.
    pub async fn locate_for_resume(&self, code: &str) -> Result<ResumeLookup, DirectoryError> {
        let id = self.id.as_str();
        self.request(async |mut c| {
            let owner: Option<String> = bounded(redis::cmd("GET").arg(meeting_key(code)).query_async(&mut c)).await?;
            if let Some(owner) = owner.as_deref().filter(|o| *o != id) {
                let (record, ttl_ms): (Option<String>, i64) = bounded(
                    redis::pipe()
                        .cmd("GET")
                        .arg(relay_key(owner))
                        .cmd("PTTL")
                        .arg(relay_key(owner))
                        .query_async(&mut c),
                )
                .await?;
                let renewed_lately = ttl_ms > (LEASE - OWNER_SILENCE).as_millis() as i64;
                if let (Some(record), true) = (record.as_deref().and_then(parse_record), renewed_lately) {
                    return Ok(ResumeLookup::Elsewhere(record));
                }
            }
            let state: Option<String> = bounded(redis::cmd("GET").arg(state_key(code)).query_async(&mut c)).await?;
            let record = state.and_then(|json| match serde_json::from_str::<MeetingRecord>(&json) {
                Ok(record) if record.format == RECORD_FORMAT && record.code == code => Some(record),
                Ok(_) => None,
                Err(e) => {
                    warn!(meeting = code, "the directory's state of this meeting cannot be read: {e}");
                    None
                }
            });
            Ok(match record {
                Some(record) => ResumeLookup::Orphaned { record: Box::new(record), owner },
                None => ResumeLookup::Unknown,
            })
        })
        .await
    }

    /// Claims orphaned meeting `code` for this relay if the directory still shows `owner` as
    /// its owner; `false` if another relay was quicker.
    pub async fn take_over(&self, code: &str, owner: Option<&str>) -> Result<bool, DirectoryError> {
        let (id, script) = (self.id.as_str(), &self.take_over);
        let taken = self
            .request(async |mut c| {
                let lease_ms = LEASE.as_millis() as u64;
                let won: i64 = bounded(
                    script.key(meeting_key(code)).arg(id).arg(lease_ms).arg(owner.unwrap_or("")).invoke_async(&mut c),
                )
                .await?;
                Ok(won == 1)
            })
            .await?;
        if taken {
            Stats::inc(&self.stats.directory_takeovers);
        }
        Ok(taken)
    }

    /// Copies the state of the meetings that changed since the last copy, so another relay can
    /// take them over if this one dies; only where the claim is still this relay's.
    async fn save_states(&self, shared: &Shared) {
        let changed: Vec<_> = shared.meetings().into_iter().filter(|m| m.take_unsaved_in_directory()).collect();
        if changed.is_empty() {
            return;
        }
        let ttl_ms = self.state_ttl.as_millis() as u64;
        let (id, script) = (self.id.as_str(), &self.save_state);
        let mut failed_from = None;
        for (i, meeting) in changed.iter().enumerate() {
            // `None`: it ended meanwhile, and its state goes with its claim.
            let Some(record) = meeting.record() else { continue };
            let json = serde_json::to_string(&record).expect("a meeting record serialises");
            let code = meeting.code.as_str();
            let saved = self
                .request(async |mut c| {
                    let mut invocation = script.key(meeting_key(code));
                    invocation.key(state_key(code)).arg(id).arg(json).arg(ttl_ms);
                    bounded(invocation.invoke_async::<i64>(&mut c)).await
                })
                .await;
            if saved.is_err() {
                failed_from = Some(i);
                break;
            }
        }
        if let Some(i) = failed_from {
            for meeting in &changed[i..] {
                meeting.mark_unsaved_in_directory();
            }
        }
    }

    /// Draws a random code no relay of the cluster uses and claims it for this relay.
    pub async fn claim_new_code(&self, shared: &Shared) -> Result<String, DirectoryError> {
        let id = self.id.as_str();
        let code = self
            .request(async |mut c| {
                for _ in 0..CLAIM_ATTEMPTS {
                    let code = format!("{:06}", OsRng.gen_range(0..1_000_000u32));
                    if shared.find_meeting(&code).is_some() {
                        continue;
                    }
                    let claimed: Option<String> = bounded(
                        redis::cmd("SET")
                            .arg(meeting_key(&code))
                            .arg(id)
                            .arg("NX")
                            .arg("PX")
                            .arg(LEASE.as_millis() as u64)
                            .query_async(&mut c),
                    )
                    .await?;
                    if claimed.is_some() {
                        return Ok(code);
                    }
                }
                Err(DirectoryError::NoFreeCode)
            })
            .await?;
        Stats::inc(&self.stats.directory_claims);
        Ok(code)
    }

    /// Deletes the claim and state of a meeting that ended (soon, by [`run`]; retried while Redis
    /// is away).
    pub fn release_later(&self, code: &str) {
        if self.releases.try_send(code.to_string()).is_err() {
            let mut unreleased = lock(&self.unreleased);
            if unreleased.len() >= self.max_meetings as usize {
                unreleased.remove(0);
            }
            unreleased.push(code.to_string());
        }
    }

    /// Registers this relay, renews its claims and reads the other relays; marks the directory
    /// available or away by the outcome.
    async fn heartbeat(&self, shared: &Shared, first: bool) {
        match self.try_heartbeat(shared).await {
            Ok(()) => {
                self.stats.directory_available.store(1, Relaxed);
                if !self.available.swap(true, Relaxed) {
                    info!(relay = %self.id, "meeting directory reachable: relay registered");
                }
            }
            Err(e) => {
                if first {
                    warn!("cannot reach the meeting directory ({e}): hosting meetings already here only, retrying");
                }
                // Logs the loss once; a directory still away stays quiet.
                self.failed(&e).await;
            }
        }
    }

    /// Reads the other relays (kept before this relay registers, so that once it shows in the
    /// directory it knows those that were there), registers this relay and renews its claims.
    async fn try_heartbeat(&self, shared: &Shared) -> Result<(), DirectoryError> {
        let mut c = self.open_connection().await?;
        let ids: Vec<String> = bounded(redis::cmd("SMEMBERS").arg(RELAYS_KEY).query_async(&mut c)).await?;
        let mut relays = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            let keys: Vec<String> = ids.iter().map(|id| relay_key(id)).collect();
            let records: Vec<Option<String>> = bounded(redis::cmd("MGET").arg(&keys).query_async(&mut c)).await?;
            let mut gone = Vec::new();
            for (id, record) in ids.into_iter().zip(records) {
                match record.as_deref().and_then(parse_record) {
                    Some(record) => relays.push(record),
                    None => gone.push(id),
                }
            }
            if !gone.is_empty() {
                let _: () = bounded(redis::cmd("SREM").arg(RELAYS_KEY).arg(&gone).query_async(&mut c)).await?;
            }
        }
        *lock(&self.relays) = relays;

        let me = self.own_record();
        let json = serde_json::to_string(&me).expect("a relay record serialises");
        let lease_ms = LEASE.as_millis() as u64;
        let _: () = bounded(
            redis::pipe()
                .cmd("SET")
                .arg(relay_key(&self.id))
                .arg(json)
                .arg("PX")
                .arg(lease_ms)
                .ignore()
                .cmd("SADD")
                .arg(RELAYS_KEY)
                .arg(&self.id)
                .ignore()
                .query_async(&mut c),
        )
        .await?;
        let codes = shared.live_codes();
        for batch in codes.chunks(RENEW_BATCH) {
            let mut invocation = self.renew.prepare_invoke();
            for code in batch {
                invocation.key(meeting_key(code)).key(state_key(code));
            }
            invocation.arg(&self.id).arg(lease_ms).arg(self.state_ttl.as_millis() as u64);
            let taken: Vec<String> = bounded(invocation.invoke_async(&mut c)).await?;
            for key in taken {
                Stats::inc(&self.stats.directory_conflicts);
                shared.hand_over(key.trim_start_matches("parlor:meeting:"));
            }
        }
        Ok(())
    }

    /// Deletes the claim and state of ended meeting `code`; kept for the next heartbeat if
    /// Redis does not answer (else a participant who missed the end could resume it).
    async fn release_claim(&self, shared: &Shared, code: &str) {
        // A meeting here has the code again (restored, or taken over): the claim is its own.
        if shared.find_meeting(code).is_some() {
            return;
        }
        if self.try_release(code).await.is_err() {
            let mut unreleased = lock(&self.unreleased);
            if unreleased.len() >= self.max_meetings as usize {
                unreleased.remove(0);
            }
            unreleased.push(code.to_string());
        }
    }

    /// Tries again the releases that failed.
    async fn retry_releases(&self, shared: &Shared) {
        let pending = std::mem::take(&mut *lock(&self.unreleased));
        for code in pending {
            self.release_claim(shared, &code).await;
        }
    }

    async fn try_release(&self, code: &str) -> Result<(), DirectoryError> {
        let id = self.id.as_str();
        let release = &self.release;
        self.request(async |mut c| {
            let _: i64 =
                bounded(release.key(meeting_key(code)).key(state_key(code)).arg(id).invoke_async(&mut c)).await?;
            Ok(())
        })
        .await
    }

    /// Takes this relay out of the directory (it is stopping); its claims expire with their
    /// lease unless it comes back and renews them.
    async fn deregister(&self) {
        let id = self.id.as_str();
        let _ = self
            .request(async |mut c| {
                let _: () = bounded(
                    redis::pipe()
                        .cmd("DEL")
                        .arg(relay_key(id))
                        .ignore()
                        .cmd("SREM")
                        .arg(RELAYS_KEY)
                        .arg(id)
                        .ignore()
                        .query_async(&mut c),
                )
                .await?;
                Ok(())
            })
            .await;
    }
}

/// A relay record from the directory; `None` if it cannot be read (it is then ignored).
fn parse_record(json: &str) -> Option<RelayRecord> {
    match serde_json::from_str(json) {
        Ok(record) => Some(record),
        Err(e) => {
            warn!("ignoring a relay record in the meeting directory that cannot be read: {e}");
            None
        }
    }
}

/// Bounds a Redis operation by [`OP_TIMEOUT`].
async fn bounded<T>(op: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, DirectoryError> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(value)) => Ok(value),
        // Redis errors name commands and server replies, never the URL or its password.
        Ok(Err(e)) => Err(DirectoryError::Redis(e.to_string())),
        Err(_) => Err(DirectoryError::Timeout),
    }
}

/// The directory's tasks: a heartbeat every [`HEARTBEAT`] (the first at once) that also tries
/// again the releases that failed, claims of ended meetings deleted as they come, and the
/// relay's registration deleted when it stops (unless it keeps its meetings for a restart:
/// then the others redirect to it meanwhile, and its participants resume here when it is
/// back); and beside it the state of meetings that changed, copied every [`STATE_FLUSH`].
pub async fn run(
    shared: Arc<Shared>,
    directory: Arc<Directory>,
    mut releases: mpsc::Receiver<String>,
    shutdown: CancellationToken,
) {
    let flusher = tokio::spawn(flush_states(shared.clone(), directory.clone(), shutdown.clone()));
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = heartbeat.tick() => {
                directory.heartbeat(&shared, first).await;
                directory.retry_releases(&shared).await;
                first = false;
            }
            Some(code) = releases.recv() => directory.release_claim(&shared, &code).await,
        }
    }
    let _ = flusher.await;
    // Meetings that ended as the relay stopped.
    while let Ok(code) = releases.try_recv() {
        if shared.find_meeting(&code).is_none() {
            let _ = directory.try_release(&code).await;
        }
    }
    if !shared.keeps_meetings() {
        directory.deregister().await;
    }
}

async fn flush_states(shared: Arc<Shared>, directory: Arc<Directory>, shutdown: CancellationToken) {
    let mut flush = tokio::time::interval(STATE_FLUSH);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = flush.tick() => directory.save_states(&shared).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(id: &str, participants: u64, capacity: u64) -> RelayRecord {
        RelayRecord {
            id: id.into(),
            address: id.into(),
            fingerprint: Fingerprint([1; 32]),
            meetings: participants / 4,
            participants,
            capacity,
            accepting: participants < capacity,
        }
    }

    #[test]
    fn a_relay_with_room_keeps_its_new_meetings() {
        let me = relay("a:5000", 10, 400);
        let others = [relay("b:5000", 0, 400)];
        assert_eq!(place_new_meeting(&me, &others), None);
    }

    #[test]
    fn a_full_relay_sends_new_meetings_to_the_least_loaded_one_with_room() {
        let me = relay("a:5000", 400, 400);
        let others = [
            me.clone(),
            relay("b:5000", 300, 400),
            relay("c:5000", 90, 100),
            relay("d:5000", 500, 400),
            relay("e:5000", 200, 1000),
        ];
        assert_eq!(place_new_meeting(&me, &others).map(|r| r.id.as_str()), Some("e:5000"));
    }

    #[test]
    fn a_full_relay_with_nowhere_to_send_keeps_its_new_meetings() {
        let me = relay("a:5000", 400, 400);
        let others = [me.clone(), relay("b:5000", 400, 400)];
        assert_eq!(place_new_meeting(&me, &others), None);
        assert_eq!(place_new_meeting(&me, &[]), None);
    }

    #[test]
    fn equally_loaded_relays_are_chosen_in_a_stable_order() {
        let me = relay("a:5000", 10, 10);
        let others = [relay("c:5000", 1, 10), relay("b:5000", 1, 10)];
        assert_eq!(place_new_meeting(&me, &others).map(|r| r.id.as_str()), Some("b:5000"));
    }

    #[test]
    fn relay_records_read_back_as_written() {
        let record = relay("relay-2.example.org:5000", 12, 400);
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(parse_record(&json), Some(record));
        assert_eq!(parse_record("{\"id\": 3}"), None);
    }
}
