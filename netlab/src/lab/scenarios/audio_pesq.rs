//! Scenario 5: speech through 0, 2, 5 and 10% random loss and 5 and 10% bursty loss (mean
//! burst of 3 packets), scored with PESQ wideband; and what the redundant copies cost.

use super::*;

/// One loss condition of the audio scenario.
#[derive(Debug, Clone, Serialize)]
pub struct PesqCondition {
    pub loss: f64,
    /// Mean length of the loss bursts in packets; None for independent (random) loss.
    pub mean_burst: Option<f64>,
    pub pesq_mean: Option<f64>,
    pub pesq_min: Option<f64>,
    pub scores: Vec<f64>,
    /// Loss the proxy actually applied.
    pub measured_loss: f64,
    /// Concealed frames / played frames at this receiver.
    pub concealment_rate: Option<f64>,
    /// Frames rebuilt from a redundant copy / frames lost on the way.
    pub recovered_share: Option<f64>,
    /// Largest number of copies the speaker put in a packet.
    pub max_depth: u8,
    /// The number of copies it sent most of the time while the loss lasted (median of its
    /// once-a-second figures after the first 3 s).
    pub typical_depth: Option<f64>,
    /// The speaker's audio bitrate while the loss lasted (median of its once-a-second figures
    /// after the first 3 s), kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Seconds from the end of the loss until the speaker's bitrate was back at the lossless
    /// speaker's (within 5%); None if it never came back in the run.
    pub back_to_clean_s: Option<f64>,
    pub recording: String,
}

/// The conditions: (loss, mean burst). Each gets its own speaker, listener and proxy.
const CONDITIONS: [(f64, Option<f64>); 6] =
    [(0.0, None), (0.02, None), (0.05, None), (0.10, None), (0.05, Some(3.0)), (0.10, Some(3.0))];

/// The proxy parameters for a loss on the way to the listener.
fn loss_params(loss: f64, burst: Option<f64>) -> String {
    match burst.map(|b| crate::impair::LossModel::bursty(loss, b)) {
        Some(crate::impair::LossModel::GilbertElliott { p_good_to_bad, p_bad_to_good, .. }) => {
            format!("down.ge={p_good_to_bad:.6}/{p_bad_to_good:.6}")
        }
        _ => format!("down.loss={loss}"),
    }
}

/// Scenario 5: speech through random and bursty loss, scored with PESQ wideband.
pub async fn audio_pesq(o: &RunOptions) -> Result<Report, LabError> {
    let python = pesq::ensure_venv(&o.venv)?;
    let speech = o.out_dir.join("speech.wav");
    pesq::make_speech(&speech)?;
    let speech_s = wav_seconds(&speech)?;
    let loops = if o.short { 1 } else { 4 };
    // Receivers join at an arbitrary point of the sender's loop, so `loops` whole copies
    // need one more loop of recording, plus the join and warm-up. Then the loss ends and the
    // run goes on clean for `tail` s, to see the copies stop.
    let skip = 1.5;
    let loss_end = skip + speech_s * (loops as f64 + 1.0) + 1.5;
    let tail = 13.0;
    let total = loss_end + tail;

    let relay = RelayProc::start(&o.bins, LOCALHOST, &o.out_dir.join("relay.log")).await?;
    let mut proxies = Vec::new();
    for (i, (loss, burst)) in CONDITIONS.iter().enumerate() {
        // Loss on the way to the listener only: the speech crosses it once.
        let text = format!("0s:{}, {loss_end:.1}s:clean", loss_params(*loss, *burst));
        let schedule = Schedule::parse(&text).map_err(|e| LabError::Startup(e.to_string()))?;
        let ip = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
        proxies.push(loopback_proxy(&relay, ip, schedule, o.seed.wrapping_add(i as u64)).await?);
    }
    let label = |(loss, burst): (f64, Option<f64>)| match burst {
        Some(_) => format!("{}pct-bursty", (loss * 100.0).round()),
        None => format!("{}pct", (loss * 100.0).round()),
    };
    let t0 = now_unix_ms();
    let deadline = Instant::now() + secs(total + 4.0) + EXIT_GRACE;
    let mut cast = Cast::new();
    let mut names = Vec::new();
    for (condition, proxy) in CONDITIONS.iter().zip(&proxies) {
        let tag = label(*condition);
        let speaker = format!("speaker-{tag}");
        let mut sender = BotSpec::new(&speaker, None, relay.tcp_addr, secs(total + 2.0 - since(t0)));
        sender.audio = BotAudio::Wav(speech.clone());
        let code = cast.start(o, &sender, "host, sends the speech on a loop", None).await?;
        let listener = format!("listener-{tag}");
        let mut spec = BotSpec::new(&listener, code, proxy.tcp_addrs()[0], secs(total - since(t0)));
        spec.record_audio = Some(o.out_dir.join(format!("{listener}.wav")));
        cast.start(o, &spec, "records what it plays", None).await?;
        names.push((speaker, listener));
    }
    let bots_out = cast.wait(deadline).await;
    let mut proxy_stats = Vec::new();
    for ((_, listener), p) in names.iter().zip(proxies) {
        proxy_stats.push((listener.clone(), p.shutdown().await));
    }
    relay.stop().await;

    let bots = cast.load(t0);
    let bitrate = |b: &BotStats| b.series(|x| Some(x.audio_out.bitrate_kbps));
    let clean_speaker = find(&bots, &names[0].0)?;
    let clean_kbps = median(bitrate(clean_speaker).iter().filter(|p| p.0 > 3.0 && p.0 < loss_end).map(|p| p.1));
    let mut conditions = Vec::new();
    for (((loss, burst), (speaker, listener)), (_, ps)) in CONDITIONS.iter().zip(&names).zip(&proxy_stats) {
        let rec = o.out_dir.join(format!("{listener}.wav"));
        let result = pesq::score(&python, &o.out_dir, &speech, &rec, skip, loops)?;
        let s = find(&bots, speaker)?;
        let spid = s.participant_id().unwrap_or(u32::MAX);
        let b = find(&bots, listener)?;
        let last = |f: &dyn Fn(&crate::lab::stats::AudioInStats) -> f64| {
            b.series(|x| BotStats::stream_from(x, spid).map(|st| f(&st.audio))).last().map(|p| p.1)
        };
        let (concealed, played, recovered) = (
            last(&|a| a.concealed_frames as f64),
            last(&|a| a.played_frames as f64),
            last(&|a| a.recovered_frames as f64),
        );
        let concealment_rate = match (concealed, played) {
            (Some(c), Some(p)) if p > 0.0 => Some(c / p),
            _ => None,
        };
        let lost = ps.udp_down.dropped_loss as f64;
        let recovered_share = recovered.filter(|_| lost > 0.0).map(|r| r / lost);
        let measured_loss = if ps.udp_down.packets_in > 0 { lost / ps.udp_down.packets_in as f64 } else { 0.0 };
        let depths = s.series(|x| Some(f64::from(x.audio_out.redundancy_depth)));
        let max_depth = depths.iter().fold(0.0f64, |m, p| m.max(p.1));
        let typical_depth = median(depths.iter().filter(|p| p.0 > 3.0 && p.0 < loss_end).map(|p| p.1));
        let series = bitrate(s);
        let bitrate_kbps = median(series.iter().filter(|p| p.0 > 3.0 && p.0 < loss_end).map(|p| p.1));
        let back_to_clean_s = match (clean_kbps, *loss > 0.0) {
            (Some(clean), true) => {
                series.iter().filter(|p| p.0 >= loss_end).find(|p| p.1 <= clean * 1.05).map(|p| p.0 - loss_end)
            }
            _ => None,
        };
        conditions.push(PesqCondition {
            loss: *loss,
            mean_burst: *burst,
            pesq_mean: result.mean,
            pesq_min: result.min,
            scores: result.scores,
            measured_loss,
            concealment_rate,
            recovered_share,
            max_depth: max_depth as u8,
            typical_depth,
            bitrate_kbps,
            back_to_clean_s,
            recording: format!("{listener}.wav"),
        });
    }
    let phases = phases_out(&[
        (skip, loss_end, "speech on a loop through the loss (scored from here)"),
        (loss_end, total, "loss ended"),
    ]);
    let chart = audio_chart(&bots, &names, &phases, total);
    let plot = write_plot(o, &chart)?;
    let figures = serde_json::json!({
        "speech_s": speech_s,
        "loops_scored": loops,
        "clean_bitrate_kbps": clean_kbps,
        "conditions": conditions,
    });
    let notes = vec![
        "loss applies relay → listener only; each condition has its own speaker, listener, proxy and seed".into(),
        "bursty: Gilbert–Elliott, every packet of the bad state lost, mean burst 3 packets".into(),
    ];
    Ok(report(o, t0, total, phases, figures, Outcome { bots: bots_out, proxies: proxy_stats, plot, notes }))
}

/// The median of `values`, None if there are none.
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The audio scenario's plot: what each listener got of its speaker's audio, and what the
/// speakers sent.
fn audio_chart(bots: &[BotStats], names: &[(String, String)], phases: &[PhaseOut], x_max: f64) -> Chart {
    let pairs: Vec<(&BotStats, &BotStats)> = names
        .iter()
        .filter_map(|(s, l)| Some((bots.iter().find(|b| &b.name == s)?, bots.iter().find(|b| &b.name == l)?)))
        .collect();
    let series = |f: &dyn Fn(&crate::lab::stats::AudioInStats) -> f64| -> Vec<Series> {
        pairs
            .iter()
            .map(|(s, l)| {
                let spid = s.participant_id().unwrap_or(u32::MAX);
                Series {
                    name: l.name.clone(),
                    points: l.series(|x| BotStats::stream_from(x, spid).map(|st| f(&st.audio))),
                }
            })
            .collect()
    };
    // Concealed frames per second, from the cumulative counter.
    let concealed: Vec<Series> = series(&|a| a.concealed_frames as f64)
        .into_iter()
        .map(|s| Series {
            name: s.name,
            points: s.points.windows(2).map(|w| (w[1].0, (w[1].1 - w[0].1) / (w[1].0 - w[0].0).max(1e-3))).collect(),
        })
        .collect();
    let speakers = |f: &dyn Fn(&protocol::stats::StatsSnapshot) -> f64| -> Vec<Series> {
        pairs.iter().map(|(s, _)| Series { name: s.name.clone(), points: s.series(|x| Some(f(x))) }).collect()
    };
    let panel = |title: &str, series| Panel { title: title.into(), series, ..Default::default() };
    Chart {
        title: "Scenario 5: speech through random and bursty loss".into(),
        panels: vec![
            panel("audio loss %", series(&|a| a.loss * 100.0)),
            panel("concealed frames per second (of 50)", concealed),
            panel("jitter buffer ms", series(&|a| a.jitter_buffer_ms)),
            panel("speaker's audio kbit/s", speakers(&|x| x.audio_out.bitrate_kbps)),
            panel("redundant copies per packet", speakers(&|x| f64::from(x.audio_out.redundancy_depth))),
        ],
        phases: phases.iter().map(|p| Phase { start_s: p.start_s, end_s: p.end_s, label: p.label.clone() }).collect(),
        x_max,
    }
}

/// Length of a 16-bit PCM WAV file in seconds (from its header and size).
fn wav_seconds(path: &Path) -> Result<f64, LabError> {
    let data = std::fs::read(path)?;
    let rate = data.get(24..28).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
    let channels = data.get(22..24).map(|b| u16::from_le_bytes([b[0], b[1]])).unwrap_or(0);
    if rate == 0 || channels == 0 {
        return Err(LabError::NoData(format!("{} is not a WAV file", path.display())));
    }
    Ok(data.len().saturating_sub(44) as f64 / (rate as f64 * 2.0 * f64::from(channels)))
}
