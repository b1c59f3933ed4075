//! What TLS costs the relay's TCP connections: handshakes per second, and bulk throughput over
//! loopback with and without TLS in the same run (the ceiling for file transfers, which cross
//! the relay twice).
//!
//! Run with `cargo bench -p relay-server --bench tls_cost [-- MIB HANDSHAKES]`
//! (default 256 MiB, 500 handshakes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::fingerprint::Fingerprint;
use protocol::tls::{client_config, pinned, server_config};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Size of each write: the relay's largest file chunk.
const WRITE: usize = 256 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let mib: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(256);
    let handshakes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run(mib, handshakes));
}

async fn run(mib: usize, handshakes: usize) {
    let certified = rcgen::generate_simple_self_signed(vec!["parlor-relay".to_string()]).expect("certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let acceptor = TlsAcceptor::from(Arc::new(server_config(vec![cert.clone()], key).expect("server config")));
    let connector = TlsConnector::from(Arc::new(client_config(pinned(Fingerprint::of_certificate(&cert)))));
    let name = ServerName::try_from("parlor-relay").expect("name");
    let bytes = mib * 1024 * 1024;

    println!("TLS cost on loopback ({} cores here)", std::thread::available_parallelism().map_or(0, |n| n.get()));

    // Handshakes: connect, TLS 1.3 handshake (X25519MLKEM768, ECDSA P-256), one byte each way.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            for _ in 0..handshakes {
                let (tcp, _) = listener.accept().await.expect("accept");
                let mut tls = acceptor.accept(tcp).await.expect("server handshake");
                let mut b = [0u8; 1];
                tls.read_exact(&mut b).await.expect("read");
                tls.write_all(&b).await.expect("write");
                tls.shutdown().await.ok();
            }
        })
    };
    let started = Instant::now();
    let cpu0 = process_cpu();
    for _ in 0..handshakes {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut tls = connector.connect(name.clone(), tcp).await.expect("client handshake");
        tls.write_all(b"x").await.expect("write");
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await.expect("read");
    }
    server.await.expect("server");
    let wall = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu0);
    println!(
        "  handshakes: {handshakes} in {:.2} s = {:.0}/s; CPU (both ends) {:.2} ms per connection",
        wall.as_secs_f64(),
        handshakes as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / handshakes as f64
    );

    // Bulk: the same bytes over plain TCP, then over TLS.
    let plain = bulk(bytes, None, &connector, &name).await;
    let tls = bulk(bytes, Some(&acceptor), &connector, &name).await;
    for (what, (wall, cpu)) in [("plain TCP", plain), ("TLS 1.3  ", tls)] {
        println!(
            "  {what} {mib} MiB: {:.0} MiB/s, CPU (both ends) {:.2} ms per MiB",
            mib as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1000.0 / mib as f64
        );
    }
    println!("  TLS/plain CPU per MiB: {:.2}x", tls.1.as_secs_f64() / plain.1.as_secs_f64().max(1e-9));
}

/// Sends `bytes` from a client to a server over loopback, TLS when `acceptor` is given; returns
/// (wall time, process CPU time).
async fn bulk(
    bytes: usize,
    acceptor: Option<&TlsAcceptor>,
    connector: &TlsConnector,
    name: &ServerName<'static>,
) -> (Duration, Duration) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_acceptor = acceptor.cloned();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        match server_acceptor {
            Some(a) => drain(a.accept(tcp).await.expect("server handshake")).await,
            None => drain(tcp).await,
        }
    });
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let cpu0 = process_cpu();
    match acceptor {
        Some(_) => fill(connector.connect(name.clone(), tcp).await.expect("client handshake"), bytes).await,
        None => fill(tcp, bytes).await,
    }
    let received = server.await.expect("server");
    assert_eq!(received, bytes, "every byte arrived");
    (started.elapsed(), process_cpu().saturating_sub(cpu0))
}

/// Writes `bytes` in chunks of [`WRITE`], then closes.
async fn fill(mut stream: impl AsyncWrite + Unpin, bytes: usize) {
    let chunk = vec![0x5au8; WRITE];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(WRITE);
        stream.write_all(&chunk[..n]).await.expect("write");
        left -= n;
    }
    stream.shutdown().await.expect("shutdown");
}

/// Reads until the end; returns how many bytes came.
async fn drain(mut stream: impl AsyncRead + Unpin) -> usize {
    let mut buf = vec![0u8; WRITE];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await.expect("read") {
            0 => return total,
            n => total += n,
        }
    }
}

/// CPU time this process has used (user + system), from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), utime and stime, are the 12th and 13th after the name.
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_secs_f64(ticks as f64 / 100.0)
}
