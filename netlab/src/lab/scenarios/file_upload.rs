//! Scenario 3: a file over a 5 Mbit/s tbf uplink during a call, sent by Parlor's Reno-paced
//! upload and by plain TCP (CUBIC, BBR) for comparison, with the call's quality meanwhile.

use super::*;

/// Figures of one upload in the file-upload scenario.
#[derive(Debug, Clone, Serialize)]
pub struct UploadFigures {
    /// "parlor (Reno, delay signal)" or "plain TCP (cubic)" / "plain TCP (bbr)".
    pub kind: String,
    pub bytes: u64,
    /// When the upload started and ended, seconds from its run's time zero.
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub goodput_mbit_s: Option<f64>,
    /// The receiver's one-way delay of the uploader's audio, capture to arrival, over the call
    /// up to the end of the upload (the bot's histogram is cumulative; the upload starts
    /// within a few seconds of the call, so it dominates the sample).
    pub audio_owd_p50_ms: Option<f64>,
    pub audio_owd_p95_ms: Option<f64>,
    /// The same before the upload started (the call alone).
    pub audio_owd_p50_before_ms: Option<f64>,
    /// The uploader's RTT to the relay during the upload (its UDP echo), median of the
    /// per-second values, ms.
    pub uploader_rtt_median_ms: Option<f64>,
    pub mean_cwnd: Option<f64>,
    pub completed: bool,
}

/// Which upload a file-upload run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadKind {
    Parlor,
    /// The kernel's TCP with this congestion control.
    PlainTcp(&'static str),
}

/// Scenario 3: a file over a 5 Mbit/s tbf uplink during a call, by Parlor and by plain TCP
/// with CUBIC (the default of Linux, Windows and macOS) and with BBR (this kernel's default).
pub async fn file_upload(o: &RunOptions) -> Result<Report, LabError> {
    const RATE: u64 = 5_000_000;
    const QUEUE: Duration = Duration::from_millis(300);
    let size: u64 = if o.short { 10_000_000 } else { 50_000_000 };
    let file = o.out_dir.join("upload.bin");
    write_test_file(&file, size)?;
    let ns = NsLink::create(2)?;
    ns.shape(Side::Uplink, RATE, QUEUE)?;
    let relay = RelayProc::start(&o.bins, IpAddr::V4(ns.host_ip), &o.out_dir.join("relay.log")).await?;

    let parlor = upload_run(o, &ns, &relay, &file, size, UploadKind::Parlor).await?;
    let cubic = upload_run(o, &ns, &relay, &file, size, UploadKind::PlainTcp("cubic")).await?;
    let bbr = upload_run(o, &ns, &relay, &file, size, UploadKind::PlainTcp("bbr")).await?;
    relay.stop().await;

    let runs = [&parlor, &cubic, &bbr];
    let x_max = runs.iter().map(|r| r.len).fold(0.0, f64::max);
    let chart = upload_chart(&runs, x_max);
    let plot = write_plot(o, &chart)?;
    let phases = runs
        .iter()
        .map(|r| PhaseOut {
            start_s: r.figures.start_s.unwrap_or(0.0),
            end_s: r.figures.end_s.unwrap_or(r.len),
            label: format!("upload: {}", r.figures.kind),
        })
        .collect();
    let notes = vec![
        format!(
            "uplink: tbf {} Mbit/s, queue {} ms; the call is audio only (tone)",
            RATE / 1_000_000,
            QUEUE.as_millis()
        ),
        "the three uploads run one after another, each in its own call with its own time zero; \
         the plot puts them on one axis"
            .into(),
        "the plain-TCP sink's receive buffer is fixed at 4 MB so the sender's congestion control, \
         not the receiver's window, sets the pace"
            .into(),
    ];
    let duration = runs.iter().map(|r| r.len).sum();
    let figures = serde_json::json!({
        "file_bytes": size,
        "parlor": parlor.figures,
        "tcp_cubic": cubic.figures,
        "tcp_bbr": bbr.figures,
    });
    let mut bots_out = parlor.bots_out;
    bots_out.extend(cubic.bots_out);
    bots_out.extend(bbr.bots_out);
    Ok(report(o, parlor.t0, duration, phases, figures, Outcome { bots: bots_out, proxies: Vec::new(), plot, notes }))
}

/// Writes `size` bytes of incompressible data (a xorshift stream).
fn write_test_file(path: &Path, size: u64) -> Result<(), LabError> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = size;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        let n = left.min(8) as usize;
        w.write_all(&bytes[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    Ok(())
}

/// One call with one upload; returns its figures, the bots' stats, their report entries and
/// the run's length in seconds.
async fn upload_run(
    o: &RunOptions,
    ns: &NsLink,
    relay: &RelayProc,
    file: &Path,
    size: u64,
    kind: UploadKind,
) -> Result<UploadRun, LabError> {
    let tag = match kind {
        UploadKind::Parlor => "parlor".to_string(),
        UploadKind::PlainTcp(cc) => format!("tcp-{cc}"),
    };
    // Long enough for the slowest plausible upload; the lab stops the bots when it is done.
    let limit = Duration::from_secs(60) + Duration::from_secs(size * 8 / 1_000_000);
    let t0 = now_unix_ms();
    let t0_instant = Instant::now();
    let mut cast = Cast::new();
    let host = BotSpec::new(&format!("{tag}-receiver"), None, relay.tcp_addr, limit);
    let code = cast.start(o, &host, "host, receives the uploader's audio on the host side", None).await?;
    let mut up = BotSpec::new(&format!("{tag}-uploader"), code, relay.tcp_addr, limit);
    up.audio = BotAudio::Tone;
    if kind == UploadKind::Parlor {
        up.send_file = Some(file.to_path_buf());
    }
    cast.start(o, &up, "in the namespace: audio, and the upload over the shaped uplink", Some(ns)).await?;

    let mut tcp_result = None;
    match kind {
        UploadKind::Parlor => {
            // Done when the uploader's stats say the file is complete.
            let stats_path = cast.bots[1].0.stats_path.clone();
            while t0_instant.elapsed() < limit {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let b = BotStats::load("u", &stats_path, t0).unwrap_or_default();
                let done = b
                    .lines
                    .last()
                    .and_then(|(_, s)| s.files.first())
                    .is_some_and(|f| f.state.is_finished() || (f.total > 0 && f.bytes >= f.total));
                if done {
                    break;
                }
            }
            // One more stats line after completion.
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        UploadKind::PlainTcp(cc) => {
            // Start about when the Parlor upload starts (right after joining, once the file is
            // hashed), so both runs have the same short call-only lead-in.
            tokio::time::sleep(Duration::from_secs(1)).await;
            // A receive buffer larger than the link's queue, so the kernel's congestion
            // control and not the sink's window sets the pace, as on a real path where tens of
            // ms of RTT let autotuning open the window (on this sub-millisecond veth it would
            // stay small and hide what the congestion control does to the queue). The kernel
            // caps it at twice net.core.rmem_max (416 kB by default), which still exceeds the
            // 190 kB tbf queue.
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_recv_buffer_size(4 << 20)?;
            socket.bind(SocketAddr::new(IpAddr::V4(ns.host_ip), 0))?;
            let listener = socket.listen(1)?;
            let to = listener.local_addr()?;
            let exe = std::env::current_exe()?;
            let mut sender = ns.command(&exe);
            let log = std::fs::File::create(o.out_dir.join(format!("{tag}-send.log")))?;
            sender
                .args(["tcp-send", "--to", &to.to_string(), "--bytes", &size.to_string(), "--cc", cc])
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true);
            let mut child = sender.spawn()?;
            let sink = tokio::time::timeout(limit, sink(listener, t0)).await;
            let _ = child.wait().await;
            tcp_result = Some(sink.map_err(|_| LabError::Startup("plain TCP upload did not finish".into()))??);
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
    }
    let bots_out = cast.stop().await;
    let len = t0_instant.elapsed().as_secs_f64();
    let bots = cast.load(t0);
    let receiver = find(&bots, &format!("{tag}-receiver"))?;
    let uploader = find(&bots, &format!("{tag}-uploader"))?;

    let (start_s, end_s, bytes, completed) = match &tcp_result {
        Some(r) => (Some(r.first_s), Some(r.last_s), r.bytes, r.bytes >= size),
        None => {
            let prog = uploader.series(|s| s.files.first().map(|f| f.bytes as f64));
            let start = prog.iter().find(|p| p.1 > 0.0).map(|p| p.0);
            let end = prog.iter().find(|p| p.1 >= size as f64).map(|p| p.0);
            let bytes = prog.last().map_or(0, |p| p.1 as u64);
            // The first stats line with progress is up to a second after the upload began.
            (start.map(|s| (s - 1.0).max(0.0)), end, bytes, end.is_some())
        }
    };
    let upid = uploader.participant_id().unwrap_or(u32::MAX);
    let owd_at = |t: f64, p95: bool| {
        receiver
            .lines
            .iter()
            .rev()
            .find(|(ts, _)| *ts <= t)
            .and_then(|(_, s)| BotStats::stream_from(s, upid))
            .and_then(|st| if p95 { st.audio.latency_p95_ms } else { st.audio.latency_p50_ms })
    };
    let goodput = match (start_s, end_s) {
        (Some(a), Some(b)) if b > a => Some(bytes as f64 * 8.0 / (b - a) / 1e6),
        _ => None,
    };
    let during = |series: Vec<(f64, f64)>| -> Vec<f64> {
        series
            .into_iter()
            .filter(|&(t, _)| start_s.is_some_and(|a| t >= a) && end_s.is_none_or(|b| t <= b))
            .map(|p| p.1)
            .collect()
    };
    let rtts = during(uploader.series(|s| s.rtt_ms));
    let cwnds = during(uploader.series(|s| s.files.first().and_then(|f| f.cwnd).map(f64::from)));
    let figures = UploadFigures {
        kind: match kind {
            UploadKind::Parlor => "parlor (Reno, delay signal)".into(),
            UploadKind::PlainTcp(cc) => format!("plain TCP ({cc})"),
        },
        bytes,
        start_s,
        end_s,
        goodput_mbit_s: goodput,
        audio_owd_p50_ms: end_s.and_then(|t| owd_at(t, false)),
        audio_owd_p95_ms: end_s.and_then(|t| owd_at(t, true)),
        audio_owd_p50_before_ms: start_s.and_then(|t| owd_at(t, false)),
        uploader_rtt_median_ms: crate::lab::metrics::percentile(&rtts, 0.5),
        mean_cwnd: (!cwnds.is_empty()).then(|| cwnds.iter().sum::<f64>() / cwnds.len() as f64),
        completed,
    };
    let progress = match &tcp_result {
        Some(r) => r.progress.clone(),
        None => uploader.series(|s| s.files.first().map(|f| f.bytes as f64 / 1e6)),
    };
    Ok(UploadRun { figures, bots, bots_out, len, t0, progress })
}

/// Everything one upload run produced.
struct UploadRun {
    figures: UploadFigures,
    bots: Vec<BotStats>,
    bots_out: Vec<BotOut>,
    /// Length of the run, seconds.
    len: f64,
    t0: u64,
    /// `(t_s, MB uploaded)`.
    progress: Vec<(f64, f64)>,
}

/// What the plain-TCP sink received.
#[derive(Debug, Clone)]
struct SinkResult {
    bytes: u64,
    first_s: f64,
    last_s: f64,
    /// `(t_s, MB received)`, about every half second.
    progress: Vec<(f64, f64)>,
}

/// Accepts one connection and reads it to the end.
async fn sink(listener: TcpListener, t0_ms: u64) -> Result<SinkResult, LabError> {
    let (mut conn, _) = listener.accept().await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    let mut first_s = None;
    let mut last_s = 0.0;
    let mut progress: Vec<(f64, f64)> = Vec::new();
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        let t = since(t0_ms);
        first_s.get_or_insert(t);
        last_s = t;
        if progress.last().is_none_or(|p| t - p.0 >= 0.5) {
            progress.push((t, bytes as f64 / 1e6));
        }
    }
    progress.push((last_s, bytes as f64 / 1e6));
    Ok(SinkResult { bytes, first_s: first_s.unwrap_or(last_s), last_s, progress })
}

/// The file-upload plot: both runs on one time axis.
fn upload_chart(runs: &[&UploadRun], x_max: f64) -> Chart {
    let mut audio_owd = Vec::new();
    let mut jitter = Vec::new();
    let mut rtt = Vec::new();
    let mut cwnd = Vec::new();
    let mut progress = Vec::new();
    for run in runs {
        let bots = &run.bots;
        let uploader = bots.iter().find(|b| b.name.ends_with("-uploader"));
        let receiver = bots.iter().find(|b| b.name.ends_with("-receiver"));
        let upid = uploader.and_then(|u| u.participant_id()).unwrap_or(u32::MAX);
        if let Some(r) = receiver {
            audio_owd.push(Series {
                name: r.name.clone(),
                points: r.series(|s| BotStats::stream_from(s, upid).and_then(|st| st.audio.latency_p50_ms)),
            });
            jitter.push(Series {
                name: r.name.clone(),
                points: r.series(|s| BotStats::stream_from(s, upid).map(|st| st.audio.jitter_buffer_ms)),
            });
        }
        if let Some(u) = uploader {
            rtt.push(Series { name: u.name.clone(), points: u.series(|s| s.rtt_ms) });
            let c = u.series(|s| s.files.first().and_then(|f| f.cwnd).map(f64::from));
            if !c.is_empty() {
                cwnd.push(Series { name: u.name.clone(), points: c });
            }
            progress.push(Series { name: u.name.clone(), points: run.progress.clone() });
        }
    }
    let panel = |title: &str, series| Panel { title: title.into(), series, ..Default::default() };
    Chart {
        title: "Scenario 3: a file over a 5 Mbit/s uplink during a call".into(),
        panels: vec![
            panel("audio one-way delay ms (receiver, p50 since the call began)", audio_owd),
            panel("uploader RTT ms", rtt),
            panel("cwnd (chunks)", cwnd),
            panel("uploaded MB", progress),
            panel("jitter buffer ms", jitter),
        ],
        phases: Vec::new(),
        x_max,
    }
}

/// `parlor-lab tcp-send`: the plain upload, with the kernel's TCP and, if given, the
/// congestion control `cc` (e.g. "cubic"; root may pick any the kernel has loaded).
pub async fn tcp_send(to: SocketAddr, bytes: u64, cc: Option<&str>) -> std::io::Result<Duration> {
    use std::os::fd::AsRawFd;
    use tokio::io::AsyncWriteExt;
    let start = Instant::now();
    let socket = if to.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if let Some(cc) = cc {
        // SAFETY: the pointer and length describe `cc`'s bytes, which outlive the call, and
        // the descriptor is the open socket owned by `socket`.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_CONGESTION,
                cc.as_ptr().cast(),
                cc.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(std::io::Error::new(err.kind(), format!("congestion control {cc}: {err}")));
        }
    }
    let mut conn = socket.connect(to).await?;
    let chunk: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        conn.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    conn.shutdown().await?;
    Ok(start.elapsed())
}
