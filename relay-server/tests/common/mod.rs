//! Test clients for the relay's integration tests: a control client over real TCP, a media
//! client over real UDP, and file-transfer helpers, all against a relay started in-process on
//! 127.0.0.1 with ephemeral ports.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use protocol::control::{ErrorCode, MeetingWelcome, ParticipantId};
use protocol::e2ee::SEAL_OVERHEAD;
use protocol::file::{FileFrame, MAX_FILE_FRAME_LEN};
use protocol::framing::{ControlFrames, FrameCodec, RawFrames};
use protocol::hop::{HopReceiver, HopSecret, HopSender, HOP_TRAILER_LEN};
use protocol::media::{AudioHeader, VideoFrameMeta, MAX_DATAGRAM_LEN};
use protocol::{ControlMessage, MediaPacket, PROTOCOL_VERSION};
use relay_server::{Relay, RelayConfig, RelayHandle};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::codec::Framed;

/// How long a test waits for something that should happen. Generous: the machine is shared.
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits until `done()` holds, checking every 10 ms, for at most [`WAIT`]; panics naming `what`
/// when it never does. For state the relay publishes without telling anyone (counters, the
/// meeting directory), where there is no message to wait on.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not so after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn start(config: RelayConfig) -> RelayHandle {
    Relay::start(config).await.expect("relay starts")
}

pub async fn start_default() -> RelayHandle {
    start(RelayConfig::for_tests()).await
}

/// A connection to the relay after its TLS handshake.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// Runs the TLS handshake on `stream`, pinning the relay's certificate as a client that got it
/// from an invitation does.
pub async fn tls(relay: &RelayHandle, stream: TcpStream) -> Tls {
    tls_pinned(relay.certificate_fingerprint(), stream).await
}

/// Runs the TLS handshake on `stream`, accepting only the certificate with fingerprint `pin`.
pub async fn tls_pinned(pin: protocol::fingerprint::Fingerprint, stream: TcpStream) -> Tls {
    let config = protocol::tls::client_config(protocol::tls::pinned(pin));
    let name = rustls::pki_types::ServerName::try_from("parlor-relay").expect("a DNS name");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await.expect("TLS handshake")
}

/// Opens a TCP connection to the relay and runs the TLS handshake.
pub async fn connect_tls(relay: &RelayHandle) -> Tls {
    let stream = TcpStream::connect(relay.tcp_addr()).await.expect("connect");
    tls(relay, stream).await
}

/// A control connection.
pub struct Client {
    pub framed: Framed<Tls, ControlFrames>,
    /// The keys of this participant's datagrams, exported from the TLS session.
    pub hop: HopSecret,
}

impl Client {
    fn new(stream: Tls) -> Client {
        let hop = protocol::tls::export_hop_secret(&**stream.get_ref().1).expect("TLS exporter");
        Client { framed: Framed::new(stream, ControlFrames(FrameCodec::default())), hop }
    }

    /// Connects without saying hello.
    pub async fn connect_raw(relay: &RelayHandle) -> Client {
        Client::new(connect_tls(relay).await)
    }

    /// Connects without saying hello, from the loopback address `source` (any 127.x.y.z
    /// works on Linux): how the tests play clients on different machines.
    pub async fn connect_raw_from(relay: &RelayHandle, source: [u8; 4]) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("tcp socket");
        socket.bind(SocketAddr::from((source, 0))).expect("bind the source address");
        Client::new(tls(relay, socket.connect(relay.tcp_addr()).await.expect("connect")).await)
    }

    /// Connects from `source` and completes HELLO / WELCOME.
    pub async fn connect_from(relay: &RelayHandle, source: [u8; 4]) -> Client {
        let mut c = Self::connect_raw_from(relay, source).await;
        c.hello(relay).await;
        c
    }

    async fn hello(&mut self, relay: &RelayHandle) {
        self.send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: "test".into() }).await;
        match self.recv().await {
            ControlMessage::Welcome { udp_port, .. } => assert_eq!(udp_port, relay.udp_addr().port()),
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    /// Connects to the relay at `addr` whose certificate is `pin` (no handle needed, for tasks)
    /// and completes HELLO / WELCOME.
    pub async fn connect_to(addr: SocketAddr, pin: protocol::fingerprint::Fingerprint) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client::new(tls_pinned(pin, stream).await);
        c.send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: "test".into() }).await;
        match c.recv().await {
            ControlMessage::Welcome { .. } => c,
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    /// Connects and completes HELLO / WELCOME.
    pub async fn connect(relay: &RelayHandle) -> Client {
        let mut c = Self::connect_raw(relay).await;
        c.hello(relay).await;
        c
    }

    pub async fn send(&mut self, msg: ControlMessage) {
        self.framed.send(msg).await.expect("send");
    }

    /// The next message other than PING (answered) and FILE_PROGRESS (skipped).
    pub async fn recv(&mut self) -> ControlMessage {
        self.recv_with_progress(false).await
    }

    pub async fn recv_with_progress(&mut self, keep_progress: bool) -> ControlMessage {
        loop {
            let next = tokio::time::timeout(WAIT, self.framed.next()).await.expect("timed out waiting for a message");
            match next.expect("connection closed").expect("framing error").expect("malformed message") {
                ControlMessage::Ping { nonce } => self.send(ControlMessage::Pong { nonce }).await,
                ControlMessage::FileProgress { .. } if !keep_progress => {}
                msg => return msg,
            }
        }
    }

    /// Skips messages until one matches.
    pub async fn recv_until(&mut self, mut pred: impl FnMut(&ControlMessage) -> bool) -> ControlMessage {
        loop {
            let msg = self.recv().await;
            if pred(&msg) {
                return msg;
            }
        }
    }

    /// Asserts that nothing but pings arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Ok(ControlMessage::Ping { nonce })))) => self.send(ControlMessage::Pong { nonce }).await,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Waits until the relay closes the connection (messages before that are returned).
    pub async fn expect_closed(&mut self) -> Vec<ControlMessage> {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.framed.next()).await.expect("connection not closed in time") {
                None | Some(Err(_)) => return seen,
                Some(Ok(Ok(msg))) => seen.push(msg),
                Some(Ok(Err(e))) => panic!("malformed message from the relay: {e}"),
            }
        }
    }

    /// Expects `ERROR RATE_LIMITED` and returns its `retry_after_ms`.
    pub async fn expect_rate_limited(&mut self) -> u64 {
        match self.recv().await {
            ControlMessage::Error { code: ErrorCode::RateLimited, retry_after_ms: Some(ms), .. } => ms,
            other => panic!("expected ERROR RATE_LIMITED with retry_after_ms, got {other:?}"),
        }
    }

    pub async fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv().await {
            ControlMessage::Error { code: got, message, .. } => {
                assert_eq!(got, code, "error message: {message}");
                message
            }
            other => panic!("expected ERROR {code:?}, got {other:?}"),
        }
    }

    pub async fn create(&mut self, name: &str) -> MeetingWelcome {
        self.send(ControlMessage::CreateMeeting { display_name: name.into(), media_public_key: public_key() }).await;
        match self.recv().await {
            ControlMessage::Joined(w) => w,
            other => panic!("expected JOINED, got {other:?}"),
        }
    }

    /// Sends JOIN_REQUEST and returns the request id from WAITING.
    pub async fn knock(&mut self, code: &str, name: &str) -> u64 {
        self.send(join_request(code, name)).await;
        match self.recv().await {
            ControlMessage::Waiting { code: c, request_id } => {
                assert_eq!(c, code);
                request_id
            }
            other => panic!("expected WAITING, got {other:?}"),
        }
    }

    /// Host side: waits for the knock and returns its request id.
    pub async fn expect_knock(&mut self, name: &str) -> u64 {
        match self.recv_until(|m| matches!(m, ControlMessage::Knock { .. })).await {
            ControlMessage::Knock { request_id, display_name, .. } => {
                assert_eq!(display_name, name);
                request_id
            }
            _ => unreachable!(),
        }
    }

    pub async fn expect_joined(&mut self) -> MeetingWelcome {
        match self.recv_until(|m| matches!(m, ControlMessage::Joined(_))).await {
            ControlMessage::Joined(w) => w,
            _ => unreachable!(),
        }
    }

    pub async fn expect_participant_joined(&mut self) -> ParticipantId {
        match self.recv_until(|m| matches!(m, ControlMessage::ParticipantJoined { .. })).await {
            ControlMessage::ParticipantJoined { participant } => participant.id,
            _ => unreachable!(),
        }
    }

    pub async fn chat(&mut self, text: &str) {
        self.send(ControlMessage::ChatSend { text: text.into(), client_msg_id: None }).await;
    }
}

/// A public key for `CREATE_MEETING` and `JOIN_REQUEST` (the relay checks only its form).
pub fn public_key() -> String {
    "0f".repeat(32)
}

/// `JOIN_REQUEST` for `code` as `name`, with a public key of the right form.
pub fn join_request(code: impl Into<String>, name: impl Into<String>) -> ControlMessage {
    ControlMessage::JoinRequest { code: code.into(), display_name: name.into(), media_public_key: public_key() }
}

/// A sealed meeting key for `ADMIT` (opaque to the relay; only its form is checked).
pub fn sealed_key() -> String {
    "5a".repeat(protocol::e2ee::SEALED_MEETING_KEY_LEN)
}

/// A participant: its control connection and what JOINED told it.
pub struct Member {
    pub client: Client,
    pub welcome: MeetingWelcome,
}

impl Member {
    pub fn id(&self) -> ParticipantId {
        self.welcome.participant_id
    }
}

/// Creates a meeting hosted by `names[0]` and admits the others in order. Every member has
/// seen every later join when this returns.
pub async fn meeting(relay: &RelayHandle, names: &[&str]) -> Vec<Member> {
    let mut host = Client::connect(relay).await;
    let welcome = host.create(names[0]).await;
    let code = welcome.code.clone();
    let mut members = vec![Member { client: host, welcome }];
    for name in &names[1..] {
        let mut joiner = Client::connect(relay).await;
        let request_id = joiner.knock(&code, name).await;
        let host = &mut members[0].client;
        assert_eq!(host.expect_knock(name).await, request_id);
        host.send(ControlMessage::Admit { request_id, media_key: sealed_key() }).await;
        let welcome = joiner.expect_joined().await;
        for m in &mut members {
            assert_eq!(m.client.expect_participant_joined().await, welcome.participant_id);
        }
        members.push(Member { client: joiner, welcome });
    }
    members
}

/// Every datagram until none has arrived for `quiet`.
pub async fn drain_socket(socket: &UdpSocket, quiet: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, socket.recv(&mut buf)).await {
        out.push(buf[..n].to_vec());
    }
    out
}

/// A participant's media socket, with the keys of its control connection's TLS session.
/// Everything it receives must be authentic: [`Media::recv_until`] and the drains verify each
/// datagram's trailer and return the packet without it.
pub struct Media {
    pub socket: Arc<UdpSocket>,
    pub id: u32,
    pub relay: SocketAddr,
    hop_out: HopSender,
    from_relay: std::sync::Mutex<HopReceiver>,
    next_seq: u32,
    next_audio_seq: u32,
}

impl Media {
    /// Binds a socket and registers it with keepalives until the relay answers an RTT echo.
    pub async fn register(relay: &RelayHandle, member: &Member) -> Media {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind udp"));
        let media = Media {
            socket,
            id: member.welcome.participant_id,
            relay: relay.udp_addr(),
            hop_out: HopSender::new(member.client.hop.to_relay()),
            from_relay: std::sync::Mutex::new(HopReceiver::new(member.client.hop.from_relay())),
            next_seq: 0,
            next_audio_seq: 0,
        };
        for attempt in 0..50u32 {
            media.send_packet(&MediaPacket::Keepalive { sender_id: media.id }).await;
            let echo = protocol::media::RttEcho { echo_id: attempt, sent_ts_us: 1 };
            media.send_packet(&MediaPacket::RttRequest { sender_id: media.id, echo }).await;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
            while let Some(d) = media.recv_until(deadline).await {
                if matches!(MediaPacket::decode(&d), Ok(MediaPacket::RttReply { .. })) {
                    return media;
                }
            }
        }
        panic!("participant {} could not register its media address", media.id);
    }

    /// The socket, shareable with a concurrent reader.
    pub fn socket_clone(&self) -> Arc<UdpSocket> {
        self.socket.clone()
    }

    /// Sends raw bytes.
    pub async fn send(&self, datagram: &[u8]) {
        self.socket.send_to(datagram, self.relay).await.expect("udp send");
    }

    /// `packet` as this participant's datagram: sealed with its key and next number.
    pub fn seal(&self, packet: &MediaPacket<'_>) -> Vec<u8> {
        self.hop_out.to_vec(packet).expect("valid packet")
    }

    /// Seals and sends `packet`; returns the packet's bytes (without the trailer), which is
    /// what receivers get once the relay sealed it again for them.
    pub async fn send_packet(&self, packet: &MediaPacket<'_>) -> Vec<u8> {
        let datagram = self.seal(packet);
        self.send(&datagram).await;
        datagram[..datagram.len() - HOP_TRAILER_LEN].to_vec()
    }

    /// The packet of a datagram the relay sent this participant; panics unless it is authentic
    /// and new.
    pub fn open(&self, datagram: &[u8]) -> Vec<u8> {
        let mut from_relay = self.from_relay.lock().expect("not poisoned");
        from_relay.open(datagram).expect("a datagram from the relay is authentic and new").to_vec()
    }

    /// One packet, or `None` at `deadline`.
    pub async fn recv_until(&self, deadline: tokio::time::Instant) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
            Ok(Ok(n)) => Some(self.open(&buf[..n])),
            _ => None,
        }
    }

    /// Every packet until none has arrived for `quiet`.
    pub async fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        drain_socket(&self.socket, quiet).await.iter().map(|d| self.open(d)).collect()
    }

    /// Media packets (video and audio) among everything until quiet; the relay's own
    /// reports and RTT replies are left out.
    pub async fn drain_media(&self, quiet: Duration) -> Vec<Vec<u8>> {
        self.drain(quiet)
            .await
            .into_iter()
            .filter(|d| {
                matches!(MediaPacket::decode(d), Ok(MediaPacket::VideoFragment { .. } | MediaPacket::Audio { .. }))
            })
            .collect()
    }

    /// Sends one video frame of `frags` fragments; returns the packets sent.
    pub async fn send_frame(&mut self, frame_id: u32, frags: usize) -> Vec<Vec<u8>> {
        let jpeg: Vec<u8> = (0..protocol::media::MAX_VIDEO_FRAGMENT_PAYLOAD * frags)
            .map(|i| (i as u32).wrapping_mul(31).wrapping_add(frame_id) as u8)
            .collect();
        let meta = VideoFrameMeta {
            stream: protocol::media::VideoStream::Camera,
            sender_id: self.id,
            frame_id,
            capture_ts_us: u64::from(frame_id) * 33_000,
            width: 640,
            height: 360,
        };
        let mut out = [0u8; MAX_DATAGRAM_LEN];
        let mut datagrams = Vec::new();
        protocol::media::fragment_frame(meta, &jpeg, &mut self.next_seq, &self.hop_out, &mut out, |d| {
            datagrams.push(d.to_vec())
        })
        .unwrap();
        for d in &datagrams {
            self.send(d).await;
        }
        datagrams.into_iter().map(|d| d[..d.len() - HOP_TRAILER_LEN].to_vec()).collect()
    }

    /// Sends one 20 ms audio packet; returns the packet.
    pub async fn send_audio(&mut self) -> Vec<u8> {
        let header = AudioHeader { seq: self.next_audio_seq, capture_ts_us: 1, sample_rate: 16_000, channels: 1 };
        self.next_audio_seq += 1;
        // The relay cannot open the body; any bytes of a sealed body's length do.
        self.send_packet(&MediaPacket::Audio { sender_id: self.id, header, sealed: &[1u8; 2 + 640 + SEAL_OVERHEAD] })
            .await
    }
}

/// A file-transfer connection.
pub struct FileConn {
    pub framed: Framed<Tls, RawFrames>,
}

impl FileConn {
    pub async fn connect(relay: &RelayHandle, first: ControlMessage) -> FileConn {
        let stream = connect_tls(relay).await;
        let mut c = FileConn { framed: Framed::new(stream, RawFrames(FrameCodec::new(MAX_FILE_FRAME_LEN))) };
        c.send(FileFrame::Control(first)).await;
        c
    }

    pub async fn send(&mut self, frame: FileFrame) {
        self.framed.send(frame.encode()).await.expect("send");
    }

    /// Sends any payload, valid file frame or not.
    pub async fn send_raw(&mut self, payload: &[u8]) {
        self.framed.send(Bytes::copy_from_slice(payload)).await.expect("send");
    }

    /// The next frame, or `None` when the relay closed the connection.
    pub async fn recv(&mut self) -> Option<FileFrame> {
        let next = tokio::time::timeout(WAIT, self.framed.next()).await.expect("timed out on a file connection");
        next.map(|r| FileFrame::decode(r.expect("framing")).expect("valid file frame"))
    }

    pub async fn recv_control(&mut self) -> ControlMessage {
        match self.recv().await {
            Some(FileFrame::Control(m)) => m,
            other => panic!("expected a control message, got {other:?}"),
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Uploads `data` (with `sha256` announced) keeping up to 32 chunks unacknowledged. Returns
/// the relay's final control message (FILE_UPLOAD_COMPLETE or ERROR) and the file id.
pub async fn upload(relay: &RelayHandle, token: &str, name: &str, data: &[u8], sha256: &str) -> (ControlMessage, u64) {
    let mut conn = FileConn::connect(
        relay,
        ControlMessage::FileUpload {
            session_token: token.into(),
            name: name.into(),
            size: data.len() as u64,
            sha256: sha256.into(),
        },
    )
    .await;
    let (file_id, chunk) = match conn.recv_control().await {
        ControlMessage::FileUploadReady { file_id, chunk_size, .. } => (file_id, chunk_size as usize),
        other => return (other, 0),
    };
    let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
    let mut next = 0usize;
    let mut acked = 0usize;
    let mut offset = 0u64;
    let mut received = 0u64;
    while acked < chunks.len() {
        while next < chunks.len() && next - acked < 32 {
            let c = chunks[next];
            conn.send(FileFrame::Data { seq: next as u32, offset, data: Bytes::copy_from_slice(c) }).await;
            offset += c.len() as u64;
            next += 1;
        }
        match conn.recv().await {
            Some(FileFrame::Ack { seq, received: r }) => {
                assert_eq!(seq as usize, acked, "ACKs arrive in order");
                assert!(r > received, "received grows");
                received = r;
                acked += 1;
            }
            Some(FileFrame::Control(ControlMessage::Ping { nonce })) => {
                conn.send(FileFrame::Control(ControlMessage::Pong { nonce })).await
            }
            Some(FileFrame::Control(other)) => return (other, file_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, data.len() as u64);
    (conn.recv_control().await, file_id)
}

/// Downloads `file_id` from `offset`, ACKing every chunk. Returns the bytes received and
/// what FILE_DOWNLOAD_READY announced.
pub async fn download(relay: &RelayHandle, token: &str, file_id: u64, offset: u64) -> (Vec<u8>, ControlMessage) {
    let mut conn =
        FileConn::connect(relay, ControlMessage::FileDownload { session_token: token.into(), file_id, offset }).await;
    let ready = conn.recv_control().await;
    let ControlMessage::FileDownloadReady { file, offset: start, .. } = &ready else { return (Vec::new(), ready) };
    assert_eq!(*start, offset);
    let mut data = Vec::new();
    let mut position = offset;
    while let Some(frame) = conn.recv().await {
        match frame {
            FileFrame::Data { seq, offset, data: chunk } => {
                assert_eq!(offset, position, "chunks arrive in order");
                position += chunk.len() as u64;
                data.extend_from_slice(&chunk);
                conn.send(FileFrame::Ack { seq, received: position }).await;
            }
            FileFrame::Control(ControlMessage::Ping { nonce }) => {
                conn.send(FileFrame::Control(ControlMessage::Pong { nonce })).await
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(position, file.size, "the relay closes only after the whole file");
    (data, ready)
}

/// Deterministic pseudo-random bytes.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
