//! The relay embedded in the app: "New meeting" with no relay address configured hosts the
//! meeting on this machine, so one person can host on a LAN with nothing else to install.
//!
//! It listens on all interfaces (others join over the LAN) on the relay's usual ports, or on
//! free ones when those are taken, and tells the page the address others should enter: this
//! machine's LAN IPv4 address (from the routing table, found without sending anything) and the
//! TCP port. The app itself connects over loopback.
//!
//! `PARLOR_EMBEDDED_RELAY_HOST` overrides the listening address (tests bind to 127.0.0.1 only)
//! and `PARLOR_EMBEDDED_RELAY_PORT` the preferred TCP port (UDP uses the next one).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use relay_server::{Relay, RelayConfig, RelayError, RelayHandle};

use crate::error::AppError;

/// TCP port tried first (the standalone relay's default); UDP takes the next one.
pub const DEFAULT_PORT: u16 = 5000;

/// A running embedded relay.
#[derive(Debug)]
pub struct EmbeddedRelay {
    handle: RelayHandle,
    share_addr: String,
}

/// Where and how the embedded relay listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindPlan {
    pub host: IpAddr,
    pub port: u16,
}

impl BindPlan {
    /// From the environment, else all interfaces on [`DEFAULT_PORT`].
    pub fn from_env() -> Self {
        let host = std::env::var("PARLOR_EMBEDDED_RELAY_HOST")
            .ok()
            .and_then(|h| h.parse().ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let port =
            std::env::var("PARLOR_EMBEDDED_RELAY_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_PORT);
        Self { host, port }
    }
}

impl EmbeddedRelay {
    /// Starts the relay on `plan`'s ports, or on free ports when they are taken. `data_dir`
    /// keeps its certificate across restarts (and its spool while it runs).
    pub async fn start(plan: BindPlan, data_dir: PathBuf) -> Result<Self, AppError> {
        let config = |tcp_port: u16, udp_port: u16| RelayConfig {
            host: plan.host,
            tcp_port,
            udp_port,
            data_dir: Some(data_dir.clone()),
            // Quitting the app ends the meetings it hosts, as when a host ends a call.
            keep_meetings_across_restarts: false,
            server_name: "parlor-app".to_string(),
            ..RelayConfig::default()
        };
        let preferred = if plan.port == 0 { None } else { Some((plan.port, plan.port.saturating_add(1))) };
        let handle = match preferred {
            Some((tcp, udp)) => match Relay::start(config(tcp, udp)).await {
                Ok(h) => h,
                Err(RelayError::Bind { .. }) => {
                    tracing::info!(tcp, udp, "relay ports taken; using free ones");
                    Relay::start(config(0, 0)).await.map_err(|e| AppError::EmbeddedRelay(e.to_string()))?
                }
                Err(e) => return Err(AppError::EmbeddedRelay(e.to_string())),
            },
            None => Relay::start(config(0, 0)).await.map_err(|e| AppError::EmbeddedRelay(e.to_string()))?,
        };
        let share_ip = if plan.host.is_unspecified() { lan_ip().unwrap_or(plan.host) } else { plan.host };
        let share_ip = if share_ip.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { share_ip };
        let share_addr = SocketAddr::new(share_ip, handle.tcp_addr().port()).to_string();
        tracing::info!(tcp = %handle.tcp_addr(), udp = %handle.udp_addr(), share = %share_addr, "embedded relay started");
        Ok(Self { handle, share_addr })
    }

    /// Where this app connects: loopback when listening on all interfaces.
    pub fn connect_addr(&self) -> String {
        let addr = self.handle.tcp_addr();
        let ip = if addr.ip().is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { addr.ip() };
        SocketAddr::new(ip, addr.port()).to_string()
    }

    /// The SHA-256 fingerprint of the relay's certificate: the app's own session trusts exactly
    /// it, and invitations carry it.
    pub fn certificate_fingerprint(&self) -> protocol::fingerprint::Fingerprint {
        self.handle.certificate_fingerprint()
    }

    /// The address others should enter.
    pub fn share_addr(&self) -> &str {
        &self.share_addr
    }

    /// Stops the relay, ending its meetings.
    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}

/// This machine's IPv4 address on the LAN: the source address of the default route, else the
/// first non-loopback IPv4 address of any interface. Reads the routing table; sends nothing.
pub fn lan_ip() -> Option<IpAddr> {
    if let Ok(ip @ IpAddr::V4(v4)) = local_ip_address::local_ip() {
        if !v4.is_loopback() && !v4.is_unspecified() {
            return Some(ip);
        }
    }
    let interfaces = local_ip_address::list_afinet_netifas().ok()?;
    pick_lan_ip(interfaces.into_iter().map(|(_, ip)| ip))
}

/// The address to advertise among an interface list: private IPv4 first, then any other
/// non-loopback, non-link-local IPv4.
fn pick_lan_ip(ips: impl Iterator<Item = IpAddr>) -> Option<IpAddr> {
    let v4: Vec<Ipv4Addr> = ips
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() && !v4.is_link_local() => Some(v4),
            _ => None,
        })
        .collect();
    v4.iter().find(|ip| ip.is_private()).or_else(|| v4.first()).map(|ip| IpAddr::V4(*ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_a_private_ipv4_address() {
        let ips = ["127.0.0.1", "169.254.3.4", "fe80::1", "203.0.113.5", "192.168.1.20"].map(|s| s.parse().unwrap());
        assert_eq!(pick_lan_ip(ips.into_iter()), Some("192.168.1.20".parse().unwrap()));
        let ips = ["127.0.0.1", "203.0.113.5"].map(|s| s.parse().unwrap());
        assert_eq!(pick_lan_ip(ips.into_iter()), Some("203.0.113.5".parse().unwrap()));
        assert_eq!(pick_lan_ip(["127.0.0.1".parse().unwrap()].into_iter()), None);
    }

    #[tokio::test]
    async fn starts_on_loopback_and_falls_back_to_free_ports() {
        // Hold a port so the preferred one is taken.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let plan = BindPlan { host: IpAddr::V4(Ipv4Addr::LOCALHOST), port };
        let dir = tempfile::tempdir().unwrap();
        let relay = EmbeddedRelay::start(plan, dir.path().to_path_buf()).await.unwrap();
        let addr: SocketAddr = relay.connect_addr().parse().unwrap();
        assert_ne!(addr.port(), port);
        assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(relay.share_addr(), relay.connect_addr());
        // A real client gets through, checking the relay's certificate.
        let options = client_core::SessionOptions {
            trust: client_core::RelayTrust::expecting(relay.certificate_fingerprint()),
            ..Default::default()
        };
        let (session, _events) = client_core::Session::connect(&relay.connect_addr(), options).await.unwrap();
        assert_eq!(session.udp_addr().port(), relay.handle.udp_addr().port());
        session.close().await;
        let fingerprint = relay.certificate_fingerprint();
        relay.shutdown().await;
        // Started again, it serves the same certificate: invitations and pins stay valid.
        let again = EmbeddedRelay::start(plan, dir.path().to_path_buf()).await.unwrap();
        assert_eq!(again.certificate_fingerprint(), fingerprint);
        again.shutdown().await;
    }
}
