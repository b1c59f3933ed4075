//! Network namespaces joined to the host by a veth pair, with `tbf` rate limits: a real kernel
//! link whose bandwidth and queue a scenario controls.
//!
//! Each [`NsLink`] creates namespace `plab-<pid>-<index>` with the veth end `pln<index>p<pid>`
//! (address `10.213.<index>.2/24`) and the host end `plh<index>p<pid>` (`10.213.<index>.1/24`).
//! Dropping it deletes the namespace, which destroys the veth pair with it, so a scenario
//! cleans up on every exit path, failures included; [`cleanup_stale`] removes what a killed
//! run left behind.

use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::LabError;

/// True when this process runs as root (needed for namespaces and `tc`).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Fails with a clear message unless this process is root and `ip` and `tc` exist.
pub fn require_root(what: &str) -> Result<(), LabError> {
    if !is_root() {
        return Err(LabError::NotRoot(what.to_string()));
    }
    for tool in ["ip", "tc"] {
        if !Command::new(tool).arg("-V").output().is_ok_and(|o| o.status.success()) {
            return Err(LabError::MissingTool(format!("`{tool}` (Debian package iproute2) is needed for {what}")));
        }
    }
    Ok(())
}

/// Runs a command and turns a failure into an error that shows it and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| LabError::Command { command: format!("{program} {}", args.join(" ")), message: e.to_string() })?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            message: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Which end of the link a rate limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Traffic leaving the namespace (the namespaced host's upload).
    Uplink,
    /// Traffic entering the namespace (its download).
    Downlink,
}

/// A namespace and its veth link to the host.
#[derive(Debug)]
pub struct NsLink {
    pub name: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_ip: Ipv4Addr,
    pub ns_ip: Ipv4Addr,
}

impl NsLink {
    /// Creates the namespace and the link, both ends up. `index` (1..=250) picks the subnet.
    pub fn create(index: u8) -> Result<NsLink, LabError> {
        require_root("network namespaces")?;
        let pid = std::process::id();
        let host_ip = Ipv4Addr::new(10, 213, index, 1);
        let ns_ip = Ipv4Addr::new(10, 213, index, 2);
        let in_use = run("ip", &["-4", "-o", "addr", "show"])?;
        if in_use.contains(&format!(" {host_ip}/")) {
            return Err(LabError::Command {
                command: "ip addr".into(),
                message: format!("{host_ip} is already in use on this host; run `parlor-lab cleanup`"),
            });
        }
        let link = NsLink {
            name: format!("plab-{pid}-{index}"),
            host_if: format!("plh{index}p{pid}"),
            ns_if: format!("pln{index}p{pid}"),
            host_ip,
            ns_ip,
        };
        run("ip", &["netns", "add", &link.name])?;
        // From here on, Drop removes whatever was created.
        let host_cidr = format!("{host_ip}/24");
        let ns_cidr = format!("{ns_ip}/24");
        let host_ip_s = host_ip.to_string();
        let steps: [(&str, Vec<&str>); 7] = [
            (
                "ip",
                vec!["link", "add", &link.host_if, "type", "veth", "peer", "name", &link.ns_if, "netns", &link.name],
            ),
            ("ip", vec!["addr", "add", &host_cidr, "dev", &link.host_if]),
            ("ip", vec!["link", "set", &link.host_if, "up"]),
            ("ip", vec!["-n", &link.name, "addr", "add", &ns_cidr, "dev", &link.ns_if]),
            ("ip", vec!["-n", &link.name, "link", "set", &link.ns_if, "up"]),
            ("ip", vec!["-n", &link.name, "link", "set", "lo", "up"]),
            // Lets the namespace reach any address of the host, not only the link's subnet.
            ("ip", vec!["-n", &link.name, "route", "add", "default", "via", &host_ip_s]),
        ];
        for (program, args) in &steps {
            run(program, args)?;
        }
        tracing::info!(ns = %link.name, host = %host_ip, inside = %ns_ip, "network namespace ready");
        Ok(link)
    }

    /// Limits one direction to `rate_bps` with `tbf`, queueing at most `queue` worth of bytes
    /// at that rate (tbf's `latency`); replaces any earlier limit on that side.
    pub fn shape(&self, side: Side, rate_bps: u64, queue: Duration) -> Result<(), LabError> {
        let rate = format!("{rate_bps}bit");
        // The bucket must hold at least a couple of full-size packets, and about 10 ms of
        // traffic so the kernel's timer granularity does not lower the rate.
        let burst = format!("{}", (rate_bps / 8 / 100).max(3028));
        let latency = format!("{}ms", queue.as_millis().max(1));
        let args = ["qdisc", "replace", "dev", "", "root", "tbf", "rate", &rate, "burst", &burst, "latency", &latency];
        self.tc(side, &args)?;
        tracing::info!(ns = %self.name, ?side, rate_bps, queue_ms = queue.as_millis() as u64, "tbf shaping");
        Ok(())
    }

    /// Removes the rate limit from one direction.
    pub fn unshape(&self, side: Side) -> Result<(), LabError> {
        self.tc(side, &["qdisc", "del", "dev", "", "root"])
    }

    /// Runs `tc ARGS` for the device of `side`; the empty string in `args` is the device.
    fn tc(&self, side: Side, args: &[&str]) -> Result<(), LabError> {
        let (prefix, dev): (Vec<&str>, &str) = match side {
            Side::Uplink => (vec!["-n", &self.name], &self.ns_if),
            Side::Downlink => (vec![], &self.host_if),
        };
        let full: Vec<&str> =
            prefix.into_iter().chain(args.iter().map(|a| if a.is_empty() { dev } else { a })).collect();
        run("tc", &full).map(|_| ())
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for NsLink {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veth end and so the whole pair.
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            tracing::warn!(error = %e, "removing network namespace");
        }
        let _ = run("ip", &["link", "del", &self.host_if]);
    }
}

/// Deletes namespaces left by lab runs whose process is gone (killed with SIGKILL, say).
/// Returns the names it removed.
pub fn cleanup_stale() -> Vec<String> {
    let Ok(list) = run("ip", &["netns", "list"]) else { return Vec::new() };
    let mut removed = Vec::new();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) =
            name.strip_prefix("plab-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if run("ip", &["netns", "del", name]).is_ok() {
            removed.push(name.to_string());
        }
    }
    removed
}
