//! The relay's metrics for operators, on an HTTP port of their own: `GET /metrics` in the
//! OpenMetrics text format that Prometheus scrapes, and `GET /healthz` for a liveness probe.
//!
//! Nothing is counted twice: a `prometheus-client` [`Collector`] reads the relay's own counters
//! ([`Stats`], the same ones [`crate::RelayHandle::stats`] returns) at each scrape. The server
//! is off unless `--metrics-addr` names an address; it should be a private one (the figures say
//! how busy the relay is, nothing about who is in which meeting). It serves a few connections at
//! a time with a header timeout, so a scraper that misbehaves cannot hold it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::stats::{DropReason, LimitHit, Stats};

/// Scrapes served at the same time; more wait in the kernel's accept queue.
const MAX_SCRAPERS: usize = 8;
/// A scraper must send its request headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads [`Stats`] at each scrape.
#[derive(Debug)]
struct RelayCollector {
    stats: Arc<Stats>,
}

impl Collector for RelayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.stats.snapshot();
        let counters: [(&str, &str, u64); 31] = [
            ("parlor_meetings_created", "Meetings created", s.meetings_created),
            ("parlor_participants_joined", "Participants admitted (hosts included)", s.participants_joined),
            ("parlor_knocks", "Knocks that reached a host", s.knocks),
            ("parlor_resumes", "Seats taken back with RESUME after a dropped connection", s.resumes),
            ("parlor_uploads_resumed", "Interrupted uploads taken up again with FILE_UPLOAD_RESUME", s.uploads_resumed),
            ("parlor_control_connections", "Control connections that said HELLO", s.control_connections),
            ("parlor_file_connections", "File-transfer connections", s.file_connections),
            ("parlor_malformed_messages", "Control frames that were not valid messages", s.malformed_messages),
            (
                "parlor_tls_handshake_failures",
                "Connections whose TLS handshake failed or timed out",
                s.tls_handshake_failures,
            ),
            ("parlor_oversized_frames", "Connections closed for an oversized frame", s.oversized_frames),
            ("parlor_slow_consumers", "Connections dropped for a full outbound queue", s.slow_consumers),
            ("parlor_chat_messages", "Chat messages and file offers sent", s.chat_messages),
            ("parlor_files_uploaded", "Files uploaded and verified", s.files_uploaded),
            ("parlor_upload_bytes", "Bytes received by uploads", s.upload_bytes),
            ("parlor_download_bytes", "Bytes sent by downloads", s.download_bytes),
            ("parlor_hash_mismatches", "Uploads refused for a SHA-256 mismatch", s.hash_mismatches),
            ("parlor_udp_packets_in", "Media datagrams received", s.udp_packets_in),
            ("parlor_udp_bytes_in", "Media bytes received", s.udp_bytes_in),
            ("parlor_udp_packets_out", "Media datagrams sent", s.udp_packets_out),
            ("parlor_udp_bytes_out", "Media bytes sent", s.udp_bytes_out),
            ("parlor_thinned_fragments", "Video fragments withheld from a receiver by thinning", s.thinned),
            ("parlor_udp_send_errors", "Datagram sends the kernel refused", s.send_errors),
            ("parlor_rtt_replies", "RTT echoes answered", s.rtt_replies),
            ("parlor_reports_sent", "Receiver reports the relay wrote", s.reports_sent),
            ("parlor_reports_forwarded", "Receivers' own reports forwarded to their source", s.reports_forwarded),
            ("parlor_refreshes_forwarded", "Screen refresh requests forwarded to the sharer", s.refreshes_forwarded),
            ("parlor_redirects", "Requests sent to another relay of the cluster", s.redirects),
            ("parlor_directory_claims", "Meeting codes claimed in the cluster directory", s.directory_claims),
            ("parlor_directory_conflicts", "Codes hosted here found claimed by another relay", s.directory_conflicts),
            ("parlor_directory_failures", "Cluster directory operations that failed", s.directory_failures),
            ("parlor_failovers", "Meetings of a dead relay taken over here", s.directory_takeovers),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let gauges: [(&str, &str, u64); 4] = [
            ("parlor_directory_available", "1 while the cluster directory (Redis) answers", s.directory_available),
            ("parlor_meetings_live", "Meetings in progress", s.meetings_live),
            ("parlor_participants_live", "Participants in meetings now", s.participants_live),
            ("parlor_spool_bytes", "Bytes spooled (files and uploads in progress)", s.spool_bytes),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let drops = ConstCounter::new(0u64);
        let mut family =
            encoder.encode_descriptor("parlor_udp_drops", "Datagrams dropped, by reason", None, drops.metric_type())?;
        for reason in DropReason::ALL {
            ConstCounter::new(s.drops(reason)).encode(family.encode_family(&[("reason", reason.as_str())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "parlor_limit_hits",
            "Requests refused, by the limit that refused them",
            None,
            drops.metric_type(),
        )?;
        for limit in LimitHit::ALL {
            ConstCounter::new(s.limit_hits(limit)).encode(family.encode_family(&[("limit", limit.as_str())])?)?;
        }
        Ok(())
    }
}

/// The registry the endpoint encodes.
fn registry(stats: Arc<Stats>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RelayCollector { stats }));
    registry
}

/// The page for one request.
fn respond(registry: &Registry, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a response from valid parts")
    };
    if request.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => reply(StatusCode::OK, OPENMETRICS_TEXT, body),
                Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "encoding failed\n".into()),
            }
        }
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "try /metrics or /healthz\n".into()),
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown`.
pub(crate) async fn serve(listener: TcpListener, stats: Arc<Stats>, shutdown: CancellationToken) {
    let registry = Arc::new(registry(stats));
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!("metrics: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&registry, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                result = connection => if let Err(e) = result {
                    debug!("metrics: connection ended: {e}");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_and_family_is_in_the_text_with_its_value() {
        let stats = Arc::new(Stats::default());
        Stats::add(&stats.upload_bytes, 12_345);
        stats.limit_hit(LimitHit::Knocks);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry(stats)).unwrap();
        assert!(text.contains("# TYPE parlor_upload_bytes counter\n"), "{text}");
        assert!(text.contains("\nparlor_upload_bytes_total 12345\n"), "{text}");
        assert!(text.contains("\nparlor_meetings_live 0\n"), "{text}");
        assert!(text.contains("parlor_limit_hits_total{limit=\"knocks\"} 1\n"), "{text}");
        assert!(text.contains("parlor_udp_drops_total{reason=\"forged\"} 0\n"), "{text}");
        for limit in LimitHit::ALL {
            assert!(text.contains(&format!("{{limit=\"{}\"}}", limit.as_str())), "{}", limit.as_str());
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_sample_dashboard_asks_only_for_metrics_the_relay_serves() {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry(Arc::new(Stats::default()))).unwrap();
        let served: std::collections::HashSet<&str> =
            text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
        let dashboard = include_str!("../../packaging/relay/grafana-dashboard.json");
        let mut asked = 0;
        for (at, _) in dashboard.match_indices("parlor_") {
            let name: String = dashboard[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(served.contains(name.as_str()), "the dashboard asks for {name}, which /metrics does not serve");
            asked += 1;
        }
        assert!(asked >= 20, "the dashboard's queries were not found ({asked})");
    }
}
