//! Shared by the relay's bench binaries: joining meetings over the real control protocol,
//! registering media sockets, and reading threads' CPU time.

#![allow(dead_code)] // each bench uses its own part

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::control::MeetingWelcome;
use protocol::framing::{ControlFrames, FrameCodec};
use protocol::hop::{HopReceiver, HopSecret, HopSender};
use protocol::media::RttEcho;
use protocol::{ControlMessage, MediaPacket, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A client's control connection.
pub type Control = Framed<tokio_rustls::client::TlsStream<TcpStream>, ControlFrames>;

/// The kernel's thread id of the calling thread (Linux), to read its CPU time later.
pub fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU time (user + system) a thread of this process has used so far (Linux).
pub fn thread_cpu(tid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux configuration Parlor runs on.
    Some(Duration::from_millis(ticks * 10))
}

pub fn cpu_of(tids: &[u32]) -> Option<Duration> {
    tids.iter().map(|t| thread_cpu(*t)).sum()
}

pub async fn send(c: &mut Control, msg: ControlMessage) {
    c.send(msg).await.expect("send");
}

pub async fn recv_until(c: &mut Control, mut pred: impl FnMut(&ControlMessage) -> bool) -> ControlMessage {
    loop {
        let msg = c.next().await.expect("open").expect("framing").expect("valid");
        if let ControlMessage::Ping { nonce } = msg {
            send(c, ControlMessage::Pong { nonce }).await;
        } else if pred(&msg) {
            return msg;
        }
    }
}

pub async fn connect(addr: SocketAddr, pin: protocol::fingerprint::Fingerprint) -> Control {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let config = protocol::tls::client_config(protocol::tls::pinned(pin));
    let name = rustls::pki_types::ServerName::try_from("parlor-relay").expect("a DNS name");
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await.expect("TLS");
    let mut c = Framed::new(stream, ControlFrames(FrameCodec::default()));
    send(&mut c, ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: "bench".into() }).await;
    recv_until(&mut c, |m| matches!(m, ControlMessage::Welcome { .. })).await;
    c
}

/// The hop keys of a control connection's TLS session.
pub fn hop_secret(c: &Control) -> HopSecret {
    protocol::tls::export_hop_secret(&**c.get_ref().get_ref().1).expect("TLS exporter")
}

/// Creates a meeting of `n` participants over the control protocol.
pub async fn meeting(
    addr: SocketAddr,
    pin: protocol::fingerprint::Fingerprint,
    n: usize,
) -> Vec<(Control, MeetingWelcome)> {
    let mut host = connect(addr, pin).await;
    send(&mut host, ControlMessage::CreateMeeting { display_name: "host".into(), media_public_key: "0f".repeat(32) })
        .await;
    let ControlMessage::Joined(welcome) = recv_until(&mut host, |m| matches!(m, ControlMessage::Joined(_))).await
    else {
        unreachable!()
    };
    let code = welcome.code.clone();
    let mut members = vec![(host, welcome)];
    for i in 1..n {
        let mut c = connect(addr, pin).await;
        send(
            &mut c,
            ControlMessage::JoinRequest {
                code: code.clone(),
                display_name: format!("p{i}"),
                media_public_key: "0f".repeat(32),
            },
        )
        .await;
        let ControlMessage::Knock { request_id, .. } =
            recv_until(&mut members[0].0, |m| matches!(m, ControlMessage::Knock { .. })).await
        else {
            unreachable!()
        };
        send(
            &mut members[0].0,
            ControlMessage::Admit { request_id, media_key: "5a".repeat(protocol::e2ee::SEALED_MEETING_KEY_LEN) },
        )
        .await;
        let ControlMessage::Joined(w) = recv_until(&mut c, |m| matches!(m, ControlMessage::Joined(_))).await else {
            unreachable!()
        };
        members.push((c, w));
    }
    members
}

/// A media socket whose address the relay has learned, and the sealer its datagrams go on
/// with (its numbers continue after the registration's).
pub fn register(relay: SocketAddr, welcome: &MeetingWelcome, secret: &HopSecret) -> (UdpSocket, HopSender) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let hop = HopSender::new(secret.to_relay());
    let mut from_relay = HopReceiver::new(secret.from_relay());
    let keepalive = MediaPacket::Keepalive { sender_id: welcome.participant_id };
    let request =
        MediaPacket::RttRequest { sender_id: welcome.participant_id, echo: RttEcho { echo_id: 1, sent_ts_us: 0 } };
    let mut buf = [0u8; 2048];
    for _ in 0..50 {
        socket.send_to(&hop.to_vec(&keepalive).unwrap(), relay).unwrap();
        socket.send_to(&hop.to_vec(&request).unwrap(), relay).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            if let Ok(packet) = from_relay.open(&buf[..n]) {
                if matches!(MediaPacket::decode(packet), Ok(MediaPacket::RttReply { .. })) {
                    return (socket, hop);
                }
            }
        }
    }
    panic!("could not register media address");
}
