//! File transfer over dedicated TCP connections to the relay.
//!
//! **Upload** ([`upload`]): hash the file (SHA-256), open a file connection, `FILE_UPLOAD`,
//! wait for `FILE_UPLOAD_READY`, then send `DATA` chunks while the [`Reno`] window allows,
//! feeding it every `ACK` and its retransmission timer. Over TCP nothing is really lost: an
//! RTO only shrinks the window and the chunks stay in flight. The relay answers
//! `FILE_UPLOAD_COMPLETE` once it has every byte and the hash matched.
//!
//! **Download** ([`download`]): bytes go to a partial file next to the destination,
//! `NAME.<first 16 hex digits of the SHA-256>.part`. The hash in the name means a partial
//! file is only ever resumed by the very same file, never by another one that happens to
//! share its name. A download asks for `offset` = the partial file's length, so an
//! interrupted one continues where it stopped. When the last byte arrived, the SHA-256 of
//! the whole file is checked: on a match the partial file is renamed to a free name (never
//! overwriting: `name (1).ext`, `name (2).ext`, …), on a mismatch it is removed and the
//! failure reported.
//!
//! **Broken connections**: a transfer whose file connection closes, fails, or brings no
//! `ACK`/`DATA` for [`STALL_TIMEOUT`] is taken up again by itself on a new connection, on the
//! schedule the control connection resumes on ([`ReconnectSchedule`]: at once, then about 1,
//! 2, 4, 4… s apart for up to 60 s, each attempt given [`ATTEMPT_TIMEOUT`]): an upload with
//! `FILE_UPLOAD_RESUME`, going on from the offset the relay holds; a download from its partial
//! file. Only when that window passes, or the relay refuses, is the transfer reported failed
//! ([`FileError::GaveUp`] keeps the last reason).

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use protocol::chunks::{send_chunks, ChunkError, ChunkLink, ChunkSender, LinkEvent, Progress};
use protocol::control::{sanitize_file_name, FileInfo};
use protocol::estimators::RateMeter;
use protocol::file::{FileFrame, MAX_CHUNK_SIZE, MAX_FILE_FRAME_LEN};
use protocol::framing::RawFrames;
use protocol::reno::RenoConfig;
use protocol::resume::ReconnectSchedule;
use protocol::{ControlMessage, FrameCodec};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::codec::Framed;

use crate::net::control::{connect_tcp, ConnectError};
use crate::net::tls::{RelayTrust, TlsStream};
use crate::session::events::{EventSender, FileFailure, FileProgress, SessionEvent};
use crate::stats::{FileDirection, FileTransferStats, TransferState};

/// How often progress events go out during a transfer.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// How long to wait for the relay's handshake answers and, after the last chunk, for its
/// verdict on the upload (it hashes the whole file first).
const RELAY_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a transfer waits for the next chunk (a download) or acknowledgement (an upload)
/// before it takes the connection as broken and resumes on a new one; the relay's own limit.
const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one attempt to take a broken transfer up again may take, connection to answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many transfers are remembered for the stats panel.
const MAX_REMEMBERED_TRANSFERS: usize = 64;
/// Longest file name kept when saving.
const MAX_FILE_NAME_CHARS: usize = 200;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot reach the relay: {0}")]
    Connect(#[from] crate::net::control::ConnectError),
    #[error("file connection: {0}")]
    Frame(#[from] protocol::FrameError),
    #[error("relay refused ({code:?}): {message}")]
    Refused { code: protocol::control::ErrorCode, message: String },
    #[error("relay closed the file connection")]
    Closed,
    #[error("relay did not answer in time")]
    Timeout,
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("SHA-256 mismatch: expected {expected}, got {actual}; the file was removed")]
    HashMismatch { expected: String, actual: String },
    #[error("no free file name for {0}")]
    NoFreeName(String),
    #[error("the connection to the relay broke and did not come back within {secs} s ({last})")]
    GaveUp { secs: u64, last: String },
}

impl FileError {
    /// The failure's kind, as events report it.
    pub fn failure(&self) -> FileFailure {
        match self {
            FileError::Io(_) => FileFailure::LocalFile,
            FileError::Connect(crate::net::control::ConnectError::Refused { code, .. }) => FileFailure::Refused(*code),
            FileError::Connect(_)
            | FileError::Frame(_)
            | FileError::Closed
            | FileError::Timeout
            | FileError::GaveUp { .. } => FileFailure::Connection,
            FileError::Refused { code, .. } => FileFailure::Refused(*code),
            FileError::Protocol(_) => FileFailure::Protocol,
            FileError::HashMismatch { .. } => FileFailure::HashMismatch,
            FileError::NoFreeName(_) => FileFailure::NoFreeName,
        }
    }

    /// What the person is told: the relay's own words when it refused the transfer (they say
    /// which limit it was), else this error.
    pub fn reason(&self) -> String {
        match self {
            FileError::Refused { message, .. }
            | FileError::Connect(crate::net::control::ConnectError::Refused { message, .. }) => message.clone(),
            other => other.to_string(),
        }
    }

    /// Whether trying the same download again may succeed and continue from the partial file.
    pub fn is_resumable(&self) -> bool {
        matches!(self, FileError::Io(_) | FileError::GaveUp { .. }) || self.is_connection_lost()
    }

    /// Whether the relay refused for now (`SERVER_BUSY`): a later attempt may succeed.
    fn is_busy(&self) -> bool {
        matches!(self, FileError::Refused { code: protocol::control::ErrorCode::ServerBusy, .. })
    }

    /// Whether the connection to the relay broke (or could not be made), so the transfer goes
    /// on by itself over a new one.
    fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            FileError::Connect(
                ConnectError::Resolve { .. }
                    | ConnectError::NoAddress(_)
                    | ConnectError::Connect { .. }
                    | ConnectError::Timeout(_)
                    | ConnectError::Tls { .. }
                    | ConnectError::Frame(_)
                    | ConnectError::Closed
            ) | FileError::Frame(_)
                | FileError::Closed
                | FileError::Timeout
        )
    }
}

/// Progress and window of every transfer, for the stats snapshots. Keyed by a local id.
#[derive(Debug, Default)]
pub(crate) struct TransferTable {
    entries: Mutex<BTreeMap<u64, FileTransferStats>>,
}

impl TransferTable {
    pub(crate) fn update(&self, key: u64, stats: FileTransferStats) {
        let Ok(mut map) = self.entries.lock() else { return };
        map.insert(key, stats);
        while map.len() > MAX_REMEMBERED_TRANSFERS {
            // Forget the oldest finished transfer; active ones are bounded by the caller.
            let Some(old) = map.iter().find(|(_, s)| s.state.is_finished()).map(|(k, _)| *k) else { break };
            map.remove(&old);
        }
    }

    pub(crate) fn set_state(&self, key: u64, state: TransferState) {
        if let Ok(mut map) = self.entries.lock() {
            if let Some(s) = map.get_mut(&key) {
                s.state = state;
                s.rate_bps = 0.0;
            }
        }
    }

    pub(crate) fn keyed_snapshot(&self) -> Vec<(u64, FileTransferStats)> {
        self.entries.lock().map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect()).unwrap_or_default()
    }

    pub(crate) fn snapshot(&self) -> Vec<FileTransferStats> {
        self.entries.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }
}

/// What a transfer needs from its session.
#[derive(Debug, Clone)]
pub(crate) struct FileContext {
    /// "HOST:PORT" of the relay's TCP port.
    pub relay: String,
    /// The certificate the session's control connection saw: its file connections accept that
    /// one only.
    pub pin: protocol::fingerprint::Fingerprint,
    pub session_token: String,
    pub events: EventSender,
    pub table: Arc<TransferTable>,
}

type FileConn = Framed<TlsStream, RawFrames>;

async fn open_file_conn(ctx: &FileContext, first: ControlMessage) -> Result<FileConn, FileError> {
    let stream = connect_tcp(&ctx.relay).await?;
    let (stream, _) = crate::net::tls::handshake(&ctx.relay, stream, &RelayTrust::expecting(ctx.pin)).await?;
    let mut conn = Framed::new(stream, RawFrames(FrameCodec::new(MAX_FILE_FRAME_LEN)));
    conn.send(FileFrame::Control(first).encode()).await?;
    Ok(conn)
}

async fn next_frame(conn: &mut FileConn) -> Result<FileFrame, FileError> {
    match conn.next().await {
        None => Err(FileError::Closed),
        Some(payload) => Ok(FileFrame::decode(payload?)?),
    }
}

/// Waits for the relay's next control answer on a file connection.
async fn next_control(conn: &mut FileConn) -> Result<ControlMessage, FileError> {
    let frame =
        tokio::time::timeout(RELAY_ANSWER_TIMEOUT, next_frame(conn)).await.map_err(|_| FileError::Timeout)??;
    match frame {
        FileFrame::Control(ControlMessage::Error { code, message, .. }) => Err(FileError::Refused { code, message }),
        FileFrame::Control(msg) => Ok(msg),
        other => Err(FileError::Protocol(format!("expected a control message, got {}", frame_name(&other)))),
    }
}

fn frame_name(frame: &FileFrame) -> &'static str {
    match frame {
        FileFrame::Control(m) => m.type_name(),
        FileFrame::Data { .. } => "DATA",
        FileFrame::Ack { .. } => "ACK",
    }
}

/// SHA-256 of the first `len` bytes of a file, as lower-case hex digits and as a running
/// hasher that can take more bytes.
async fn hash_prefix(path: PathBuf, len: Option<u64>) -> Result<Sha256, FileError> {
    tokio::task::spawn_blocking(move || -> Result<Sha256, FileError> {
        use std::io::Read;
        let file = std::fs::File::open(&path)?;
        let mut reader: Box<dyn Read> = match len {
            Some(len) => Box::new(file.take(len)),
            None => Box::new(file),
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher)
    })
    .await
    .map_err(|e| FileError::Io(std::io::Error::other(e)))?
}

/// Uploads `path` to the meeting. Emits progress, then `FileDone` or `FileFailed`.
pub(crate) async fn upload(ctx: FileContext, key: u64, upload_id: u64, path: PathBuf) {
    let name = path
        .file_name()
        .and_then(|n| sanitize_file_name(&n.to_string_lossy(), MAX_FILE_NAME_CHARS))
        .unwrap_or_else(|| "file".to_string());
    let mut file_id = None;
    match upload_inner(&ctx, key, upload_id, &path, &name, &mut file_id).await {
        Ok((file_id, sha256)) => {
            ctx.table.set_state(key, TransferState::Done);
            ctx.events.emit(SessionEvent::FileDone {
                upload_id: Some(upload_id),
                file_id,
                direction: FileDirection::Upload,
                name,
                path,
                sha256,
                verified: true,
            });
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), "upload failed: {e}");
            ctx.table.set_state(key, TransferState::Failed);
            ctx.events.emit(SessionEvent::FileFailed {
                upload_id: Some(upload_id),
                file_id,
                direction: FileDirection::Upload,
                name,
                failure: e.failure(),
                reason: e.reason(),
                resumable: false,
            });
        }
    }
}

async fn upload_inner(
    ctx: &FileContext,
    key: u64,
    upload_id: u64,
    path: &Path,
    name: &str,
    file_id_out: &mut Option<u64>,
) -> Result<(u64, String), FileError> {
    let size = tokio::fs::metadata(path).await?.len();
    let sha256 = hex::encode(hash_prefix(path.to_path_buf(), None).await?.finalize());
    let mut file = tokio::fs::File::open(path).await?;
    let first = ControlMessage::FileUpload {
        session_token: ctx.session_token.clone(),
        name: name.to_string(),
        size,
        sha256: sha256.clone(),
    };
    let (mut conn, file_id, chunk_size, mut offset) = match upload_ready(ctx, first, RELAY_ANSWER_TIMEOUT).await? {
        UploadStart::Ready { conn, file_id, chunk_size, offset: 0 } => (*conn, file_id, chunk_size, 0),
        _ => return Err(FileError::Protocol("a new upload must start at offset 0".into())),
    };
    *file_id_out = Some(file_id);
    let mut progress = UploadProgress {
        ctx,
        key,
        upload_id,
        file_id,
        name,
        chunk_size,
        rate: RateMeter::new(Duration::from_secs(1)),
        last_report: None,
        resumed_from: 0,
    };
    let mut retry = Retry::default();
    loop {
        let mut sender = ChunkSender::new(RenoConfig::default(), size, offset, chunk_size);
        let sent = send_upload(&mut conn, &mut file, &mut sender, &mut progress, file_id).await;
        let moved = sender.acked() > offset;
        let error = match sent {
            Ok(()) => return Ok((file_id, sha256)),
            Err(e) if e.is_connection_lost() => e,
            Err(e) => return Err(e),
        };
        // The connection broke: take the upload up again where the relay has it.
        if moved {
            retry = Retry::default();
        }
        tracing::info!(file_id, "upload interrupted ({error}): resuming");
        let resume = ControlMessage::FileUploadResume { session_token: ctx.session_token.clone(), file_id };
        let mut why = error;
        loop {
            retry.wait(&why).await?;
            match upload_ready(ctx, resume.clone(), ATTEMPT_TIMEOUT).await {
                Ok(UploadStart::Ready { conn: new, file_id: id, chunk_size: size_now, offset: at }) => {
                    if id != file_id || size_now != chunk_size || at > size {
                        return Err(FileError::Protocol(format!(
                            "resume of upload {file_id} answered for upload {id} at offset {at}"
                        )));
                    }
                    tracing::info!(file_id, offset = at, attempts = retry.attempts(), "upload resumed");
                    (conn, offset) = (*new, at);
                    file.seek(SeekFrom::Start(offset)).await?;
                    progress.resumed_from = offset;
                    break;
                }
                // Every byte had arrived before the break: the relay offered the file.
                Ok(UploadStart::Complete) => return Ok((file_id, sha256)),
                // Lost again, or the relay still busy letting go of the old connection.
                Err(e) if e.is_connection_lost() || e.is_busy() => why = e,
                Err(e) => return Err(e),
            }
        }
    }
}

/// How the relay answered the first message of an upload connection.
enum UploadStart {
    Ready {
        conn: Box<FileConn>,
        file_id: u64,
        chunk_size: u32,
        offset: u64,
    },
    /// A resumed upload had already completed.
    Complete,
}

/// Opens a file connection with `first` (`FILE_UPLOAD` or `FILE_UPLOAD_RESUME`) and reads the
/// relay's answer, all within `timeout`.
async fn upload_ready(ctx: &FileContext, first: ControlMessage, timeout: Duration) -> Result<UploadStart, FileError> {
    tokio::time::timeout(timeout, async {
        let mut conn = open_file_conn(ctx, first).await?;
        match next_control(&mut conn).await? {
            ControlMessage::FileUploadReady { file_id, chunk_size, offset } => {
                if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
                    return Err(FileError::Protocol(format!("chunk size {chunk_size} out of range")));
                }
                Ok(UploadStart::Ready { conn: Box::new(conn), file_id, chunk_size, offset })
            }
            ControlMessage::FileUploadComplete { .. } => Ok(UploadStart::Complete),
            other => Err(FileError::Protocol(format!("expected FILE_UPLOAD_READY, got {}", other.type_name()))),
        }
    })
    .await
    .map_err(|_| FileError::Timeout)?
}

/// Sends the file from `sender`'s offset on `conn`, then waits for the relay's verdict.
async fn send_upload(
    conn: &mut FileConn,
    file: &mut tokio::fs::File,
    sender: &mut ChunkSender,
    progress: &mut UploadProgress<'_>,
    file_id: u64,
) -> Result<(), FileError> {
    let mut link = UploadLink { conn, last_heard: Instant::now(), file, progress };
    link.progress.report(sender, true);
    send_chunks(sender, &mut link).await?;
    link.progress.report(sender, true);
    // The relay hashes the whole file, then answers.
    match next_control(conn).await? {
        ControlMessage::FileUploadComplete { file_id: done } if done == file_id => Ok(()),
        other => Err(FileError::Protocol(format!("expected FILE_UPLOAD_COMPLETE, got {}", other.type_name()))),
    }
}

/// When a transfer whose connection broke tries again: on the schedule of the control
/// connection's resume (at once, then about 1, 2, 4, 4… s apart, for up to 60 s).
#[derive(Debug, Default)]
struct Retry {
    schedule: Option<ReconnectSchedule>,
}

impl Retry {
    /// Waits until the next attempt is due; when the window is over, fails saying why the
    /// latest attempt (or the connection) failed: `why`.
    async fn wait(&mut self, why: &FileError) -> Result<(), FileError> {
        let schedule = self.schedule.get_or_insert_with(crate::session::reconnect_schedule);
        let Some(at) = schedule.next_attempt() else {
            return Err(FileError::GaveUp { secs: schedule.elapsed(Instant::now()).as_secs(), last: why.to_string() });
        };
        tokio::time::sleep_until(at.into()).await;
        schedule.on_attempt(Instant::now());
        Ok(())
    }

    fn attempts(&self) -> u32 {
        self.schedule.as_ref().map_or(0, ReconnectSchedule::attempts)
    }
}

/// Progress events and stats of one upload, throttled to one per [`PROGRESS_INTERVAL`].
struct UploadProgress<'a> {
    ctx: &'a FileContext,
    key: u64,
    upload_id: u64,
    file_id: u64,
    name: &'a str,
    chunk_size: u32,
    rate: RateMeter,
    last_report: Option<Instant>,
    /// Where the latest resume of the upload started.
    resumed_from: u64,
}

impl UploadProgress<'_> {
    /// Emits a progress event (unless one went out less than [`PROGRESS_INTERVAL`] ago and
    /// `force` is false) and updates the transfer's stats.
    fn report(&mut self, sender: &ChunkSender, force: bool) {
        let now = Instant::now();
        if !force && self.last_report.is_some_and(|at| now.duration_since(at) < PROGRESS_INTERVAL) {
            return;
        }
        self.last_report = Some(now);
        let reno = sender.reno();
        let progress = FileProgress {
            upload_id: Some(self.upload_id),
            file_id: self.file_id,
            direction: FileDirection::Upload,
            name: self.name.to_string(),
            bytes: sender.acked(),
            total: sender.size(),
            rate_bps: self.rate.bits_per_second(now) / 8.0,
            cwnd: Some(reno.cwnd()),
            chunk_size: Some(self.chunk_size),
            ssthresh: Some(reno.ssthresh()),
            phase: Some(reno.phase()),
            resumed_from: self.resumed_from,
        };
        self.ctx.table.update(self.key, transfer_stats(&progress, TransferState::Active));
        self.ctx.events.emit(SessionEvent::FileProgress(progress));
    }
}

/// The upload's side of [`send_chunks`]: chunks from the local file, ACKs from the relay.
struct UploadLink<'a, 'p> {
    conn: &'a mut FileConn,
    /// When the relay last acknowledged a chunk (or the connection started).
    last_heard: Instant,
    file: &'a mut tokio::fs::File,
    progress: &'a mut UploadProgress<'p>,
}

impl From<ChunkError> for FileError {
    fn from(e: ChunkError) -> Self {
        match e {
            ChunkError::AckPastEnd { .. } => FileError::Protocol(e.to_string()),
            ChunkError::ShortRead { .. } => FileError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e)),
        }
    }
}

impl ChunkLink for UploadLink<'_, '_> {
    type Error = FileError;

    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn read_chunk(&mut self, len: usize) -> Result<Bytes, FileError> {
        let mut buf = BytesMut::zeroed(len);
        self.file.read_exact(&mut buf).await?;
        Ok(buf.freeze())
    }

    async fn feed(&mut self, frame: Bytes) -> Result<(), FileError> {
        // A dead path fills the socket's buffer; the write then waits as long as an ACK may.
        Ok(tokio::time::timeout(STALL_TIMEOUT, self.conn.feed(frame)).await.map_err(|_| FileError::Timeout)??)
    }

    async fn flush(&mut self) -> Result<(), FileError> {
        Ok(tokio::time::timeout(STALL_TIMEOUT, self.conn.flush()).await.map_err(|_| FileError::Timeout)??)
    }

    async fn next_ack(&mut self, timer: Option<Instant>) -> Result<LinkEvent, FileError> {
        // With nothing in flight the relay owes us nothing but its verdict; wait that long.
        // With chunks in flight, an ACK is due within the stall limit, whatever the timer says.
        let stalled_at = self.last_heard + STALL_TIMEOUT;
        let deadline = timer.map_or_else(|| Instant::now() + RELAY_ANSWER_TIMEOUT, |t| t.min(stalled_at));
        tokio::select! {
            // An ACK that is already there counts before any deadline that has passed meanwhile.
            biased;
            frame = next_frame(self.conn) => match frame? {
                FileFrame::Ack { seq, received } => {
                    self.last_heard = Instant::now();
                    Ok(LinkEvent::Ack { seq, received })
                }
                FileFrame::Control(ControlMessage::FileUploadComplete { .. }) => {
                    Err(FileError::Protocol("FILE_UPLOAD_COMPLETE before every byte was acknowledged".into()))
                }
                FileFrame::Control(ControlMessage::Error { code, message, .. }) => Err(FileError::Refused { code, message }),
                other => Err(FileError::Protocol(format!("unexpected {} during upload", frame_name(&other)))),
            },
            _ = tokio::time::sleep_until(deadline.into()) => match timer {
                Some(_) if Instant::now() < stalled_at => Ok(LinkEvent::Timer),
                _ => Err(FileError::Timeout),
            },
        }
    }

    fn on_progress(&mut self, sender: &ChunkSender, progress: Progress) {
        match progress {
            Progress::Acked { newly_acked } => {
                if newly_acked > 0 {
                    self.progress.rate.record(Instant::now(), newly_acked as usize);
                }
                self.progress.report(sender, false);
            }
            Progress::Timeout => self.progress.report(sender, true),
        }
    }
}

fn transfer_stats(p: &FileProgress, state: TransferState) -> FileTransferStats {
    FileTransferStats {
        file_id: Some(p.file_id),
        direction: p.direction,
        name: p.name.clone(),
        bytes: p.bytes,
        total: p.total,
        rate_bps: p.rate_bps,
        cwnd: p.cwnd,
        chunk_size: p.chunk_size,
        ssthresh: p.ssthresh,
        phase: p.phase,
        state,
    }
}

/// Where a download of `info` keeps its bytes until it is complete and verified.
pub fn partial_path(dir: &Path, info: &FileInfo) -> PathBuf {
    let hash: String = info.sha256.chars().filter(|c| c.is_ascii_hexdigit()).take(16).collect();
    dir.join(format!("{}.{hash}.part", safe_name(&info.name)))
}

fn safe_name(name: &str) -> String {
    sanitize_file_name(name, MAX_FILE_NAME_CHARS).unwrap_or_else(|| "file".to_string())
}

/// The `n`-th candidate name for `name`: `name`, `stem (1).ext`, `stem (2).ext`, …
pub fn numbered_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    let path = Path::new(name);
    match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => format!("{} ({n}).{}", stem.to_string_lossy(), ext.to_string_lossy()),
        _ => format!("{name} ({n})"),
    }
}

/// Moves the verified partial file to the first free name in `dir`. The name is claimed
/// with `create_new` first, so a file that exists (or appears meanwhile) is never replaced.
fn claim_and_rename(part: &Path, dir: &Path, name: &str) -> Result<PathBuf, FileError> {
    for n in 0..10_000 {
        let candidate = dir.join(numbered_name(name, n));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&candidate) {
            Ok(_) => {
                std::fs::rename(part, &candidate)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(FileError::NoFreeName(name.to_string()))
}

/// Downloads an offered file into `dir`. Emits progress, then `FileDone` or `FileFailed`.
pub(crate) async fn download(ctx: FileContext, key: u64, info: FileInfo, dir: PathBuf) {
    match download_inner(&ctx, key, &info, &dir).await {
        Ok((path, sha256)) => {
            ctx.table.set_state(key, TransferState::Done);
            ctx.events.emit(SessionEvent::FileDone {
                upload_id: None,
                file_id: info.file_id,
                direction: FileDirection::Download,
                name: info.name.clone(),
                path,
                sha256,
                verified: true,
            });
        }
        Err(e) => {
            tracing::warn!(file_id = info.file_id, "download failed: {e}");
            ctx.table.set_state(key, TransferState::Failed);
            ctx.events.emit(SessionEvent::FileFailed {
                upload_id: None,
                file_id: Some(info.file_id),
                direction: FileDirection::Download,
                name: info.name.clone(),
                failure: e.failure(),
                reason: e.reason(),
                resumable: e.is_resumable(),
            });
        }
    }
}

/// Downloads `info`, taking it up again from the partial file whenever the connection breaks.
async fn download_inner(
    ctx: &FileContext,
    key: u64,
    info: &FileInfo,
    dir: &Path,
) -> Result<(PathBuf, String), FileError> {
    let mut retry = Retry::default();
    let mut timeout = RELAY_ANSWER_TIMEOUT;
    loop {
        let mut moved = false;
        match download_once(ctx, key, info, dir, timeout, &mut moved).await {
            // Lost, or refused as busy while the relay still counts the dead connection's
            // download against the limit (until it notices, at most 15 s).
            Err(e) if e.is_connection_lost() || (e.is_busy() && retry.attempts() > 0) => {
                if moved {
                    retry = Retry::default();
                }
                tracing::info!(file_id = info.file_id, "download interrupted ({e}): resuming");
                retry.wait(&e).await?;
                timeout = ATTEMPT_TIMEOUT;
            }
            done => return done,
        }
    }
}

/// One connection's worth of a download: from what the partial file holds, as far as it gets.
/// `moved` says whether any chunk arrived.
async fn download_once(
    ctx: &FileContext,
    key: u64,
    info: &FileInfo,
    dir: &Path,
    answer_timeout: Duration,
    moved: &mut bool,
) -> Result<(PathBuf, String), FileError> {
    tokio::fs::create_dir_all(dir).await?;
    let part = partial_path(dir, info);
    let mut file =
        tokio::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&part).await?;
    let mut have = file.metadata().await?.len();
    if have > info.size {
        // Not a prefix of this file: start over.
        file.set_len(0).await?;
        have = 0;
    }
    let first =
        ControlMessage::FileDownload { session_token: ctx.session_token.clone(), file_id: info.file_id, offset: have };
    let (mut conn, remote, offset) = tokio::time::timeout(answer_timeout, async {
        let mut conn = open_file_conn(ctx, first).await?;
        match next_control(&mut conn).await? {
            ControlMessage::FileDownloadReady { file, offset, chunk_size: _ } => Ok((conn, file, offset)),
            other => Err(FileError::Protocol(format!("expected FILE_DOWNLOAD_READY, got {}", other.type_name()))),
        }
    })
    .await
    .map_err(|_| FileError::Timeout)??;
    if offset > have || remote.size != info.size || remote.sha256 != info.sha256 {
        return Err(FileError::Protocol(format!(
            "relay offers offset {offset} of {} bytes, we asked for {have} of {}",
            remote.size, info.size
        )));
    }
    if offset < have {
        file.set_len(offset).await?;
    }
    let mut hasher = hash_prefix(part.clone(), Some(offset)).await?;
    file.seek(SeekFrom::Start(offset)).await?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);

    let mut received = offset;
    let mut rate = RateMeter::new(Duration::from_secs(1));
    let mut last_progress = Instant::now() - PROGRESS_INTERVAL;
    let progress = |received: u64, rate: &RateMeter| FileProgress {
        upload_id: None,
        file_id: info.file_id,
        direction: FileDirection::Download,
        name: info.name.clone(),
        bytes: received,
        total: info.size,
        rate_bps: rate.bits_per_second(Instant::now()) / 8.0,
        cwnd: None,
        chunk_size: None,
        ssthresh: None,
        phase: None,
        resumed_from: offset,
    };
    let first = progress(received, &rate);
    ctx.table.update(key, transfer_stats(&first, TransferState::Active));
    ctx.events.emit(SessionEvent::FileProgress(first));

    // On any failure, whatever arrived is flushed to the partial file so a retry resumes
    // after it.
    let result: Result<(), FileError> = async {
        while received < info.size {
            let frame =
                tokio::time::timeout(STALL_TIMEOUT, next_frame(&mut conn)).await.map_err(|_| FileError::Timeout)??;
            match frame {
                FileFrame::Data { seq, offset: at, data } => {
                    if at != received {
                        return Err(FileError::Protocol(format!("chunk at offset {at}, expected {received}")));
                    }
                    let end = received + data.len() as u64;
                    if end > info.size {
                        return Err(FileError::Protocol(format!("chunk runs past the end ({end} > {})", info.size)));
                    }
                    out.write_all(&data).await?;
                    hasher.update(&data);
                    received = end;
                    *moved = true;
                    conn.send(FileFrame::Ack { seq, received }.encode()).await?;
                    let now = Instant::now();
                    rate.record(now, data.len());
                    if now.duration_since(last_progress) >= PROGRESS_INTERVAL || received == info.size {
                        last_progress = now;
                        let p = progress(received, &rate);
                        ctx.table.update(key, transfer_stats(&p, TransferState::Active));
                        ctx.events.emit(SessionEvent::FileProgress(p));
                    }
                }
                FileFrame::Control(ControlMessage::Error { code, message, .. }) => {
                    return Err(FileError::Refused { code, message })
                }
                other => return Err(FileError::Protocol(format!("unexpected {} during download", frame_name(&other)))),
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = out.flush().await;
        return Err(e);
    }
    out.flush().await?;
    let file = out.into_inner();
    file.sync_all().await?;
    drop(file);

    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(&info.sha256) {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(FileError::HashMismatch { expected: info.sha256.clone(), actual });
    }
    let name = safe_name(&info.name);
    let dir = dir.to_path_buf();
    let final_path = tokio::task::spawn_blocking(move || claim_and_rename(&part, &dir, &name))
        .await
        .map_err(|e| FileError::Io(std::io::Error::other(e)))??;
    Ok((final_path, actual))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered_name("report.pdf", 0), "report.pdf");
        assert_eq!(numbered_name("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered_name("archive.tar.gz", 2), "archive.tar (2).gz");
        assert_eq!(numbered_name("README", 3), "README (3)");
        assert_eq!(numbered_name(".bashrc", 1), ".bashrc (1)");
    }

    #[test]
    fn claiming_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"old").unwrap();
        std::fs::write(dir.path().join("a (1).txt"), b"older").unwrap();
        let part = dir.path().join("a.txt.0123.part");
        std::fs::write(&part, b"new").unwrap();
        let got = claim_and_rename(&part, dir.path(), "a.txt").unwrap();
        assert_eq!(got, dir.path().join("a (2).txt"));
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"old");
        assert_eq!(std::fs::read(dir.path().join("a (1).txt")).unwrap(), b"older");
        assert_eq!(std::fs::read(&got).unwrap(), b"new");
        assert!(!part.exists());
    }

    #[test]
    fn partial_path_is_tied_to_the_content_and_safe() {
        let info = FileInfo {
            file_id: 1,
            name: "../x.bin".into(),
            size: 3,
            sha256: "ABCDEF0123456789abcdef".into(),
            sender_id: 1,
            sender_name: "a".into(),
            lost: false,
        };
        let p = partial_path(Path::new("/d"), &info);
        assert_eq!(p, Path::new("/d/_x.bin.ABCDEF0123456789.part"));
    }

    #[tokio::test]
    async fn hash_prefix_hashes_only_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").unwrap();
        let mut h = hash_prefix(path.clone(), Some(5)).await.unwrap();
        h.update(b" world");
        let whole = hash_prefix(path, None).await.unwrap();
        assert_eq!(h.finalize(), whole.finalize());
    }
}
