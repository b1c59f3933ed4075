//! The UDP media socket: one socket per meeting, connected to the relay's UDP address.
//!
//! The receive side is a tokio socket owned by the engine's network task. The capture
//! threads send on clones of the same socket. The socket is non-blocking (tokio needs that,
//! and the flag is shared by every clone), so [`send_datagram`] retries briefly when the
//! kernel's send buffer is full rather than blocking a capture thread indefinitely.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Kernel buffer size asked for in each direction: a few 480p frames from several senders
/// arrive back to back.
const SOCKET_BUFFER_BYTES: usize = 2 * 1024 * 1024;

/// Opens a UDP socket on an ephemeral port of the relay's address family, connected to the
/// relay, and returns it for tokio plus a clone for the sending threads.
pub fn open(relay_udp: SocketAddr) -> io::Result<(tokio::net::UdpSocket, UdpSocket)> {
    let domain = if relay_udp.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Larger buffers are a wish, not a requirement: the kernel caps them at rmem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let local: SocketAddr = if relay_udp.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    socket.bind(&local.into())?;
    socket.connect(&relay_udp.into())?;
    socket.set_nonblocking(true)?;
    let std_socket: UdpSocket = socket.into();
    let sender = std_socket.try_clone()?;
    let tokio_socket = tokio::net::UdpSocket::from_std(std_socket)?;
    Ok((tokio_socket, sender))
}

/// Sends one datagram from a plain thread, retrying for up to ~5 ms while the send buffer
/// is full. Returns false if the datagram had to be dropped.
pub fn send_datagram(socket: &UdpSocket, datagram: &[u8]) -> bool {
    for _ in 0..5 {
        match socket.send(datagram) {
            Ok(_) => return true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // ECONNREFUSED from an earlier ICMP port-unreachable: the relay is not there
            // (yet); media is best effort, so drop this datagram and go on.
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_the_connected_socket() {
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (rx, tx) = open(peer.local_addr().unwrap()).unwrap();
        assert!(send_datagram(&tx, b"hello"));
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        peer.send_to(b"back", from).await.unwrap();
        let n = rx.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
    }
}
