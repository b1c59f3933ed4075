//! File connections: uploads into the meeting's spool and downloads out of it.
//!
//! A file connection is a separate TCP connection whose first message is `FILE_UPLOAD` or
//! `FILE_DOWNLOAD`, authorized by the participant's session token; chat and roster traffic
//! never queue behind file bytes. After the JSON handshake the connection switches to the
//! larger frame limit of [`protocol::file::MAX_FILE_FRAME_LEN`] and carries
//! [`FileFrame`]s: `DATA` one way, one `ACK` per chunk the other way.
//!
//! - Upload: the client paces its `DATA` with its own Reno window; the relay writes each chunk
//!   to `<spool>/meeting-<id>/<file_id>.part` (never a path derived from the user's file
//!   name), hashes it on the fly, ACKs it with the bytes held so far, and sends `FILE_PROGRESS`
//!   to the meeting at most four times a second. When the announced size has arrived it checks
//!   the SHA-256: a mismatch deletes the file and answers `HASH_MISMATCH`; a match renames it
//!   to `<file_id>`, offers it in chat (and chat history) and with `FILE_OFFER`, then answers
//!   `FILE_UPLOAD_COMPLETE`. An upload that ends any other way after its progress was
//!   announced is announced as stopped (`FILE_UPLOAD_STOPPED`, with the reason).
//! - Download: from any offset up to the file's size; the relay sends `DATA` while its
//!   [`Reno`] window allows, feeds each `ACK` to it, drives its retransmission timer (which
//!   only shrinks the window: TCP loses nothing), and ends the connection once the receiver
//!   has acknowledged the whole file.
//!
//! Uploads are charged as their bytes arrive to three spool quotas, the relay's, the
//! meeting's and the uploader's (a file that could not fit one of them is refused at once), so
//! announcing a huge file and sending nothing holds nothing, and one meeting or one person
//! cannot fill the spool for everyone.
//! An upload that moves too few bytes in a window is cut ([`crate::stall`]). The meeting's
//! files go when the meeting ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use protocol::chunks::{send_chunks, ChunkError, ChunkLink, ChunkSender, LinkEvent, Progress};
use protocol::control::{
    sanitize_file_name, ErrorCode, FileInfo, ParticipantId, UploadStopReason, MAX_FILE_NAME_CHARS,
};
use protocol::file::{FileFrame, DEFAULT_CHUNK_SIZE, MAX_FILE_FRAME_LEN};
use protocol::framing::{ControlFrames, FrameCodec, FrameError, RawFrames};
use protocol::reno::RenoConfig;
use protocol::ControlMessage;
use sha2::{Digest, Sha256};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;
use tokio_util::codec::{Framed, FramedParts};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::control::frame_error;
use crate::meeting::record::UploadRecord;
use crate::meeting::uploads::Claim;
use crate::meeting::{Meeting, OpError, Shared, SpooledFile};
use crate::stall::StallWatch;
use crate::stats::{LimitHit, Stats};

type FileStream = Framed<crate::Stream, RawFrames>;

/// Minimum time between two `FILE_PROGRESS` broadcasts of one upload.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Buffer between the socket and the spool file, so disk I/O happens in large blocks.
const DISK_BUFFER: usize = 256 * 1024;
/// How long a resume waits for the upload's previous connection to let go of it.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves a file connection whose first message, `first`, was read by the control codec.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    framed: Framed<crate::Stream, ControlFrames>,
    first: ControlMessage,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    Stats::inc(&shared.stats.file_connections);
    // Same stream, larger frame limit; keep whatever the control codec already buffered.
    let old = framed.into_parts();
    let mut parts = FramedParts::new::<Bytes>(old.io, RawFrames(FrameCodec::new(MAX_FILE_FRAME_LEN)));
    parts.read_buf = old.read_buf;
    parts.write_buf = old.write_buf;
    let taken_over = CancellationToken::new();
    let mut conn = FileConn { framed: Framed::from_parts(parts), shared, peer, shutdown, taken_over };
    let result = match first {
        ControlMessage::FileUpload { session_token, name, size, sha256 } => {
            conn.upload(&session_token, &name, size, &sha256).await
        }
        ControlMessage::FileUploadResume { session_token, file_id } => {
            conn.resume_upload(&session_token, file_id).await
        }
        ControlMessage::FileDownload { session_token, file_id, offset } => {
            conn.download(&session_token, file_id, offset).await
        }
        _ => Err(Ended::Refused(OpError::new(ErrorCode::InvalidState, "not a file transfer"))),
    };
    match result {
        Ok(()) => {}
        Err(Ended::Refused(e)) => {
            debug!(%peer, code = ?e.code, message = %e.message, "file transfer refused");
            let reply = e.reply(&conn.shared.stats);
            let _ = conn.send(&reply).await;
        }
        Err(Ended::Broken(why) | Ended::Gone(why)) => {
            debug!(%peer, "file transfer ended: {why}");
            return;
        }
    }
    crate::control::close_tls(&mut conn.framed).await;
}

/// How a transfer ended early.
#[derive(Debug)]
enum Ended {
    /// Answer the client with this error, then close.
    Refused(OpError),
    /// The connection closed, broke, went silent or was taken over by a resume: just close
    /// (an upload is held for a resume).
    Broken(String),
    /// The relay is shutting down, or the peer sent what cannot be framed: just close.
    Gone(String),
}

impl From<OpError> for Ended {
    fn from(e: OpError) -> Self {
        Ended::Refused(e)
    }
}

fn io_gone(what: &str, e: impl std::fmt::Display) -> Ended {
    Ended::Broken(format!("{what}: {e}"))
}

fn internal(what: &str, e: impl std::fmt::Display) -> Ended {
    warn!("file spool: {what}: {e}");
    Ended::Refused(OpError::new(ErrorCode::Internal, format!("{what} failed on the relay")))
}

/// What arrived on a file connection.
enum Incoming {
    Frame(FileFrame),
    Timer,
}

struct FileConn {
    framed: FileStream,
    shared: Arc<Shared>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    /// Cancelled when a resume takes this connection's upload over.
    taken_over: CancellationToken,
}

impl FileConn {
    fn limit(&self) -> Duration {
        self.shared.config.liveness_timeout
    }

    async fn send(&mut self, msg: &ControlMessage) -> Result<(), Ended> {
        self.send_frame(FileFrame::Control(msg.clone())).await
    }

    async fn send_frame(&mut self, frame: FileFrame) -> Result<(), Ended> {
        let limit = self.limit();
        tokio::select! {
            _ = self.taken_over.cancelled() => Err(Ended::Broken("taken over by a resume".into())),
            sent = tokio::time::timeout(limit, self.framed.send(frame.encode())) => match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(io_gone("write", e)),
                Err(_) => Err(Ended::Broken("the peer stopped reading".into())),
            },
        }
    }

    /// The participant a session token belongs to, if it is still in its meeting.
    fn authorize(&self, session_token: &str) -> Result<(Arc<Meeting>, ParticipantId), Ended> {
        self.shared
            .session(session_token)
            .ok_or_else(|| Ended::Refused(OpError::new(ErrorCode::Unauthorized, "unknown session token")))
    }

    /// Waits for the next frame, answering pings and malformed frames on the way. Returns
    /// `Incoming::Timer` at `timer`. Ends if the meeting ends, the relay shuts down, the
    /// connection closes, or nothing arrives by `idle_deadline`.
    async fn next(
        &mut self,
        meeting: &Meeting,
        timer: Option<Instant>,
        idle_deadline: Instant,
    ) -> Result<Incoming, Ended> {
        loop {
            let frame = tokio::select! {
                _ = self.shutdown.cancelled() => return Err(Ended::Gone("relay shutting down".into())),
                _ = self.taken_over.cancelled() => return Err(Ended::Broken("taken over by a resume".into())),
                _ = meeting.ended.cancelled() => {
                    return Err(Ended::Refused(OpError::new(ErrorCode::UnknownFile, "the meeting ended")));
                }
                _ = tokio::time::sleep_until(timer.unwrap_or(idle_deadline)), if timer.is_some_and(|t| t < idle_deadline) => {
                    return Ok(Incoming::Timer);
                }
                _ = tokio::time::sleep_until(idle_deadline) => {
                    return Err(Ended::Broken("the peer went silent".into()));
                }
                frame = self.framed.next() => frame,
            };
            let payload = match frame {
                None => return Err(Ended::Broken("connection closed".into())),
                Some(Err(e)) => {
                    frame_error(&self.shared, self.peer, e.clone());
                    return Err(match e {
                        FrameError::Io(_) | FrameError::Truncated { .. } => Ended::Broken(e.to_string()),
                        _ => Ended::Gone(e.to_string()),
                    });
                }
                Some(Ok(payload)) => payload,
            };
            match FileFrame::decode(payload) {
                Ok(FileFrame::Control(ControlMessage::Ping { nonce })) => {
                    self.send(&ControlMessage::Pong { nonce }).await?;
                }
                Ok(frame) => return Ok(Incoming::Frame(frame)),
                Err(e @ (FrameError::NotUtf8 | FrameError::InvalidJson(_) | FrameError::InvalidBinary(_))) => {
                    Stats::inc(&self.shared.stats.malformed_messages);
                    self.send(&ControlMessage::error(ErrorCode::MalformedMessage, e.to_string())).await?;
                }
                Err(e) => return Err(Ended::Gone(e.to_string())),
            }
        }
    }

    async fn upload(&mut self, session_token: &str, name: &str, size: u64, sha256: &str) -> Result<(), Ended> {
        let (meeting, participant) = self.authorize(session_token)?;
        let sha256 = sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(OpError::new(ErrorCode::MalformedMessage, "sha256 must be 64 hex digits").into());
        }
        let max = self.shared.config.max_file_size;
        if size > max {
            return Err(OpError::new(ErrorCode::FileTooLarge, format!("files are at most {max} bytes")).into());
        }
        let name = sanitize_file_name(name, MAX_FILE_NAME_CHARS).unwrap_or_else(|| "file".to_string());
        // Charged chunk by chunk as the bytes arrive; a file that cannot fit now is refused now.
        let sender_name = meeting.begin_upload(&self.shared, participant, size)?;
        let file_id = self.shared.next_file_id();
        info!(meeting = %meeting.code, file_id, size, sender = participant, "upload started");
        meeting.upload_started(UploadRecord {
            file_id,
            uploader: participant,
            sender_name: sender_name.clone(),
            name: name.clone(),
            size,
            sha256: sha256.clone(),
        });
        let up = UploadState {
            participant,
            file_id,
            part: meeting.spool_dir.join(format!("{file_id}.part")),
            name,
            size,
            sha256,
            sender_name,
            announced: false,
            charged: 0,
            received: 0,
            hasher: Sha256::new(),
        };
        meeting.upload_running(file_id, participant, self.taken_over.clone());
        let file = async {
            tokio::fs::create_dir_all(&meeting.spool_dir).await.map_err(|e| internal("creating the spool", e))?;
            tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&up.part)
                .await
                .map_err(|e| internal("creating the spool file", e))
        }
        .await;
        self.run_upload(&meeting, up, file).await
    }

    /// `FILE_UPLOAD_RESUME`: takes over an upload of ours held after its connection broke (or
    /// still running on a connection the relay has not yet seen break) and goes on from the
    /// bytes the relay holds. An upload that already completed is answered as completed.
    async fn resume_upload(&mut self, session_token: &str, file_id: u64) -> Result<(), Ended> {
        let (meeting, participant) = self.authorize(session_token)?;
        let unknown = || OpError::new(ErrorCode::UnknownFile, "no interrupted upload of yours with this id to resume");
        // A running upload lets go as soon as its task sees the token; wait that long at most.
        let deadline = Instant::now() + TAKEOVER_TIMEOUT;
        let up = loop {
            let changed = meeting.uploads_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match meeting.claim_upload(file_id, participant, self.taken_over.clone()) {
                Claim::Held(up) => break *up,
                Claim::Running(conn) => conn.cancel(),
                Claim::Unknown if meeting.is_offered_by(file_id, participant) => {
                    // Completed while the uploader was away: nothing is left to send.
                    self.send(&ControlMessage::FileUploadComplete { file_id }).await?;
                    return Ok(());
                }
                Claim::Unknown => return Err(unknown().into()),
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(
                    OpError::new(ErrorCode::ServerBusy, "the upload's previous connection did not let go").into()
                );
            }
        };
        Stats::inc(&self.shared.stats.uploads_resumed);
        info!(meeting = %meeting.code, file_id, offset = up.received, "upload resumed");
        let file = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .open(&up.part)
                .await
                .map_err(|e| internal("opening the spool file", e))?;
            file.set_len(up.received).await.map_err(|e| internal("opening the spool file", e))?;
            file.seek(std::io::SeekFrom::Start(up.received))
                .await
                .map_err(|e| internal("opening the spool file", e))?;
            Ok::<_, Ended>(file)
        }
        .await;
        self.run_upload(&meeting, up, file).await
    }

    /// Receives the rest of upload `up` into `file` (positioned at `up.received`), unless the
    /// spool file could not be opened. When the connection breaks first, the upload is held for
    /// a resume; when it ends any other way unfinished, what arrived is deleted and given back.
    async fn run_upload(
        &mut self,
        meeting: &Arc<Meeting>,
        mut up: UploadState,
        file: Result<File, Ended>,
    ) -> Result<(), Ended> {
        let result = match file {
            Ok(file) => self.receive(meeting, &mut up, file).await,
            Err(e) => Err(e),
        };
        let (file_id, received) = (up.file_id, up.received);
        match result {
            Ok(()) => {
                meeting.upload_finished(file_id);
                meeting.end_upload(&self.shared, up.participant);
                Ok(())
            }
            Err(Ended::Broken(why)) if received < up.size => match meeting.hold_upload(Box::new(up)) {
                Ok(until) => {
                    info!(meeting = %meeting.code, file_id, received, "upload interrupted; held for a resume");
                    let (meeting, shared) = (meeting.clone(), self.shared.clone());
                    tokio::spawn(give_up_when_unclaimed(shared, meeting, file_id, until, self.shutdown.clone()));
                    Err(Ended::Broken(why))
                }
                Err(up) => {
                    let ended = Ended::Broken(why);
                    discard_upload(&self.shared, meeting, *up, &ended).await;
                    Err(ended)
                }
            },
            // Kept as it is, with what arrived, for the relay to hold again when it starts.
            Err(ended) if self.shutdown.is_cancelled() && self.shared.keeps_meetings() => Err(ended),
            Err(ended) => {
                discard_upload(&self.shared, meeting, up, &ended).await;
                Err(ended)
            }
        }
    }

    async fn receive(&mut self, meeting: &Arc<Meeting>, up: &mut UploadState, mut out: File) -> Result<(), Ended> {
        let ready = ControlMessage::FileUploadReady {
            file_id: up.file_id,
            chunk_size: DEFAULT_CHUNK_SIZE,
            offset: up.received,
        };
        self.send(&ready).await?;
        self.receive_chunks(meeting, up, &mut out).await?;
        drop(out);

        let digest = hex::encode(up.hasher.clone().finalize());
        if digest != up.sha256 {
            Stats::inc(&self.shared.stats.hash_mismatches);
            warn!(meeting = %meeting.code, file_id = up.file_id, "upload does not match its SHA-256");
            return Err(OpError::new(ErrorCode::HashMismatch, format!("received bytes hash to {digest}")).into());
        }
        let path = meeting.spool_dir.join(up.file_id.to_string());
        tokio::fs::rename(&up.part, &path).await.map_err(|e| internal("storing the file", e))?;
        meeting.file_progress(&self.shared, up.progress(up.size));
        up.announced = true;
        let info = FileInfo {
            file_id: up.file_id,
            name: up.name.clone(),
            size: up.size,
            sha256: up.sha256.clone(),
            sender_id: up.participant,
            sender_name: up.sender_name.clone(),
            lost: false,
        };
        if let Err(e) = meeting.publish_file(&self.shared, SpooledFile { info, path: path.clone() }) {
            remove_file(&path).await;
            return Err(e.into());
        }
        Stats::inc(&self.shared.stats.files_uploaded);
        info!(meeting = %meeting.code, file_id = up.file_id, size = up.size, "upload complete");
        // Best effort: the file is already offered, whether or not the uploader hears this.
        let _ = self.send(&ControlMessage::FileUploadComplete { file_id: up.file_id }).await;
        Ok(())
    }

    /// Takes `DATA` until `up.size` bytes are held, writing, hashing and acknowledging each.
    async fn receive_chunks(
        &mut self,
        meeting: &Arc<Meeting>,
        up: &mut UploadState,
        out: &mut File,
    ) -> Result<(), Ended> {
        let mut last_progress = Instant::now();
        let (stall_window, stall_min) =
            (self.shared.config.upload_stall_window, self.shared.config.upload_stall_min_bytes);
        let mut watch = StallWatch::new(Instant::now().into_std(), stall_window, stall_min);
        while up.received < up.size {
            let idle_deadline = Instant::now() + self.limit();
            let frame = match self.next(meeting, Some(Instant::from_std(watch.deadline())), idle_deadline).await? {
                Incoming::Frame(frame) => frame,
                Incoming::Timer => {
                    if watch.is_stalled(Instant::now().into_std()) {
                        self.shared.stats.limit_hit(LimitHit::StalledUpload);
                        let message = format!(
                            "the upload moved fewer than {stall_min} bytes in {} s; cut",
                            stall_window.as_secs_f64()
                        );
                        return Err(OpError::new(ErrorCode::ServerBusy, message).into());
                    }
                    continue;
                }
            };
            match frame {
                FileFrame::Data { seq, offset, data } => {
                    let end = up.received + data.len() as u64;
                    if offset != up.received || data.is_empty() || end > up.size {
                        return Err(OpError::new(
                            ErrorCode::MalformedMessage,
                            format!("expected a chunk at offset {} within {} bytes", up.received, up.size),
                        )
                        .into());
                    }
                    meeting.charge_upload(&self.shared, up.participant, data.len() as u64)?;
                    up.charged += data.len() as u64;
                    watch.on_bytes(data.len() as u64);
                    // In the file before it is acknowledged: what the uploader was told arrived
                    // survives this process being killed.
                    out.write_all(&data).await.map_err(|e| internal("writing the spool file", e))?;
                    out.flush().await.map_err(|e| internal("writing the spool file", e))?;
                    up.hasher.update(&data);
                    up.received = end;
                    Stats::add(&self.shared.stats.upload_bytes, data.len() as u64);
                    if let Err(ended) = self.send_frame(FileFrame::Ack { seq, received: up.received }).await {
                        // With every byte in, the file is checked and offered all the same.
                        if up.received < up.size {
                            return Err(ended);
                        }
                        debug!(meeting = %meeting.code, file_id = up.file_id, "the last ACK was not delivered");
                        break;
                    }
                    if last_progress.elapsed() >= PROGRESS_INTERVAL {
                        last_progress = Instant::now();
                        meeting.file_progress(&self.shared, up.progress(up.received));
                        up.announced = true;
                    }
                }
                FileFrame::Ack { .. } => {
                    self.send(&ControlMessage::error(
                        ErrorCode::InvalidState,
                        "ACK frames go to the relay only on downloads",
                    ))
                    .await?;
                }
                FileFrame::Control(other) => {
                    let message = format!("{} is not expected during an upload", other.type_name());
                    self.send(&ControlMessage::error(ErrorCode::InvalidState, message)).await?;
                }
            }
        }
        Ok(())
    }

    async fn download(&mut self, session_token: &str, file_id: u64, offset: u64) -> Result<(), Ended> {
        let (meeting, participant) = self.authorize(session_token)?;
        let file = meeting.begin_download(&self.shared, participant, file_id)?;
        let result = self.transmit(&meeting, &file, offset).await;
        meeting.end_download(&self.shared, participant);
        result
    }

    async fn transmit(&mut self, meeting: &Meeting, file: &SpooledFile, offset: u64) -> Result<(), Ended> {
        let size = file.info.size;
        if offset > size {
            return Err(
                OpError::new(ErrorCode::MalformedMessage, format!("offset {offset} is past the end ({size})")).into()
            );
        }
        let mut handle = File::open(&file.path)
            .await
            .map_err(|_| OpError::new(ErrorCode::UnknownFile, "the file is no longer available"))?;
        handle.seek(std::io::SeekFrom::Start(offset)).await.map_err(|e| internal("reading the file", e))?;
        let input = BufReader::with_capacity(DISK_BUFFER, handle);
        self.send(&ControlMessage::FileDownloadReady {
            file: file.info.clone(),
            offset,
            chunk_size: DEFAULT_CHUNK_SIZE,
        })
        .await?;
        debug!(meeting = %meeting.code, file_id = file.info.file_id, offset, "download started");

        let mut sender = ChunkSender::new(RenoConfig::default(), size, offset, DEFAULT_CHUNK_SIZE);
        let idle_deadline = Instant::now() + self.limit();
        let mut link = DownloadLink { conn: self, meeting, input, idle_deadline };
        send_chunks(&mut sender, &mut link).await?;
        debug!(meeting = %meeting.code, file_id = file.info.file_id, "download complete");
        Ok(())
    }
}

/// The download's side of [`send_chunks`]: chunks from the spooled file, ACKs from the
/// participant. Anything else the participant sends meanwhile gets an `INVALID_STATE` reply.
struct DownloadLink<'a> {
    conn: &'a mut FileConn,
    meeting: &'a Meeting,
    input: BufReader<File>,
    /// The download ends if no ACK arrives by then; every ACK moves it on.
    idle_deadline: Instant,
}

impl From<ChunkError> for Ended {
    fn from(e: ChunkError) -> Self {
        match e {
            ChunkError::AckPastEnd { .. } => Ended::Refused(OpError::new(ErrorCode::MalformedMessage, e.to_string())),
            ChunkError::ShortRead { .. } => internal("reading the file", e),
        }
    }
}

impl ChunkLink for DownloadLink<'_> {
    type Error = Ended;

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    async fn read_chunk(&mut self, len: usize) -> Result<Bytes, Ended> {
        let mut chunk = BytesMut::zeroed(len);
        self.input.read_exact(&mut chunk).await.map_err(|e| internal("reading the file", e))?;
        Ok(chunk.freeze())
    }

    async fn feed(&mut self, frame: Bytes) -> Result<(), Ended> {
        match tokio::time::timeout(self.conn.limit(), self.conn.framed.feed(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_gone("write", e)),
            Err(_) => Err(Ended::Broken("the peer stopped reading".into())),
        }
    }

    async fn flush(&mut self) -> Result<(), Ended> {
        match tokio::time::timeout(self.conn.limit(), self.conn.framed.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_gone("write", e)),
            Err(_) => Err(Ended::Broken("the peer stopped reading".into())),
        }
    }

    async fn next_ack(&mut self, timer: Option<std::time::Instant>) -> Result<LinkEvent, Ended> {
        loop {
            let timer = timer.map(Instant::from_std);
            match self.conn.next(self.meeting, timer, self.idle_deadline).await? {
                Incoming::Timer => return Ok(LinkEvent::Timer),
                Incoming::Frame(FileFrame::Ack { seq, received }) => {
                    self.idle_deadline = Instant::now() + self.conn.limit();
                    return Ok(LinkEvent::Ack { seq, received });
                }
                Incoming::Frame(FileFrame::Data { .. }) => {
                    self.conn
                        .send(&ControlMessage::error(
                            ErrorCode::InvalidState,
                            "DATA frames go to the relay only on uploads",
                        ))
                        .await?;
                }
                Incoming::Frame(FileFrame::Control(other)) => {
                    let message = format!("{} is not expected during a download", other.type_name());
                    self.conn.send(&ControlMessage::error(ErrorCode::InvalidState, message)).await?;
                }
            }
        }
    }

    fn on_progress(&mut self, _sender: &ChunkSender, progress: Progress) {
        if let Progress::Acked { newly_acked } = progress {
            Stats::add(&self.conn.shared.stats.download_bytes, newly_acked);
        }
    }
}

/// An upload: what it is and what of it has arrived. Held by the meeting while its connection
/// is away ([`crate::meeting::uploads`]), so a resume goes on where it stopped.
#[derive(Debug)]
pub(crate) struct UploadState {
    participant: ParticipantId,
    file_id: u64,
    /// `<spool>/meeting-<id>/<file_id>.part`, holding the `received` bytes.
    part: PathBuf,
    name: String,
    size: u64,
    sha256: String,
    sender_name: String,
    /// A `FILE_PROGRESS` of it went to the meeting, so its end must be told too.
    announced: bool,
    /// Bytes of the spool budget it holds: what has arrived so far.
    charged: u64,
    /// Bytes written and acknowledged, from the start of the file.
    received: u64,
    /// SHA-256 of those bytes so far.
    hasher: Sha256,
}

impl UploadState {
    pub fn uploader(&self) -> ParticipantId {
        self.participant
    }

    pub fn file_id(&self) -> u64 {
        self.file_id
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    fn stopped(&self, reason: UploadStopReason) -> ControlMessage {
        ControlMessage::FileUploadStopped {
            file_id: self.file_id,
            name: self.name.clone(),
            sender_id: self.participant,
            reason,
        }
    }

    fn progress(&self, bytes: u64) -> ControlMessage {
        ControlMessage::FileProgress {
            file_id: self.file_id,
            name: self.name.clone(),
            sender_id: self.participant,
            bytes,
            size: self.size,
        }
    }
}

/// Gives up held upload `file_id` once its window (`until`) has passed unclaimed, or at once
/// when the meeting ends or the relay stops (which hold nothing).
async fn give_up_when_unclaimed(
    shared: Arc<Shared>,
    meeting: Arc<Meeting>,
    file_id: u64,
    mut until: std::time::Instant,
    shutdown: CancellationToken,
) {
    let keep = shared.keeps_meetings();
    loop {
        let all = tokio::select! {
            () = tokio::time::sleep_until(until.into()) => false,
            () = meeting.ended.cancelled() => true,
            // Kept for the relay to hold again when it starts.
            () = shutdown.cancelled(), if keep => return,
            () = shutdown.cancelled(), if !keep => true,
        };
        let ended = Ended::Broken("not resumed in time".into());
        for up in meeting.expired_uploads(all) {
            discard_upload(&shared, &meeting, up, &ended).await;
        }
        // Claimed, given up, or held again after a later break (that hold has its own task).
        match meeting.upload_held_until(file_id) {
            Some(later) if !all && later <= until => until = later.max(std::time::Instant::now()),
            _ => return,
        }
    }
}

/// Brings back the uploads of `meeting` a restart interrupted, each with the bytes its spool
/// file holds (hashed again: a running SHA-256 cannot be kept), held for a resume until
/// `until`. An upload whose spool file is gone, or that can no longer be charged, is dropped
/// with its file. Reads the files: call it where blocking is allowed.
pub(crate) fn restore_uploads(
    shared: &Arc<Shared>,
    meeting: &Arc<Meeting>,
    uploads: Vec<UploadRecord>,
    until: std::time::Instant,
) {
    for record in uploads {
        let part = meeting.spool_dir.join(format!("{}.part", record.file_id));
        let hashed = std::fs::File::open(&part).and_then(|mut file| {
            let mut hasher = Sha256::new();
            let received = std::io::copy(&mut std::io::Read::take(&mut file, record.size), &mut hasher)?;
            Ok((hasher, received))
        });
        let (hasher, received) = match hashed {
            Ok(hashed) => hashed,
            Err(e) => {
                warn!(meeting = %meeting.code, file_id = record.file_id, "interrupted upload not restored: {e}");
                let _ = std::fs::remove_file(&part);
                continue;
            }
        };
        let state = Box::new(UploadState {
            participant: record.uploader,
            file_id: record.file_id,
            part: part.clone(),
            name: record.name.clone(),
            size: record.size,
            sha256: record.sha256.clone(),
            sender_name: record.sender_name.clone(),
            announced: received > 0,
            charged: received,
            received,
            hasher,
        });
        let file_id = record.file_id;
        match meeting.restore_upload(shared, record, state, until) {
            Ok(()) => {
                info!(meeting = %meeting.code, file_id, received, "interrupted upload held for a resume");
                let task =
                    give_up_when_unclaimed(shared.clone(), meeting.clone(), file_id, until, shared.shutdown.clone());
                tokio::spawn(task);
            }
            Err(_) => {
                let _ = std::fs::remove_file(&part);
            }
        }
    }
}

/// Gives up upload `up`, which ended as `ended` without becoming a file: deletes what arrived,
/// gives back its spool charge and its upload slot, and tells whoever saw its progress.
async fn discard_upload(shared: &Shared, meeting: &Arc<Meeting>, up: UploadState, ended: &Ended) {
    meeting.upload_finished(up.file_id);
    remove_file(&up.part).await;
    meeting.refund_upload(shared, up.participant, up.charged);
    meeting.end_upload(shared, up.participant);
    info!(meeting = %meeting.code, file_id = up.file_id, "upload abandoned");
    if up.announced {
        let reason = match ended {
            Ended::Broken(_) | Ended::Gone(_) => UploadStopReason::Disconnected,
            Ended::Refused(e) if e.code == ErrorCode::HashMismatch => UploadStopReason::HashMismatch,
            Ended::Refused(_) => UploadStopReason::Refused,
        };
        meeting.file_progress(shared, up.stopped(reason));
    }
}

async fn remove_file(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(path = %path.display(), "cannot delete a spool file: {e}"),
    }
}
