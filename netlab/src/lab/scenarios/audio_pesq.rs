//! Scenario 5: speech through 0, 2, 5 and 10% random loss, scored with PESQ wideband.

use super::*;

/// One loss condition of the audio scenario.
#[derive(Debug, Clone, Serialize)]
pub struct PesqCondition {
    pub loss: f64,
    pub pesq_mean: Option<f64>,
    pub pesq_min: Option<f64>,
    pub scores: Vec<f64>,
    /// Loss the proxy actually applied.
    pub measured_loss: f64,
    /// Concealed frames / played frames at this receiver.
    pub concealment_rate: Option<f64>,
    pub recording: String,
}

/// Scenario 5: speech through 0, 2, 5 and 10% random loss, scored with PESQ wideband.
pub async fn audio_pesq(o: &RunOptions) -> Result<Report, LabError> {
    const LOSSES: [f64; 4] = [0.0, 0.02, 0.05, 0.10];
    let python = pesq::ensure_venv(&o.venv)?;
    let speech = o.out_dir.join("speech.wav");
    pesq::make_speech(&speech)?;
    let speech_s = wav_seconds(&speech)?;
    let loops = if o.short { 1 } else { 4 };
    // Receivers join at an arbitrary point of the sender's loop, so `loops` whole copies
    // need one more loop of recording, plus the join and warm-up.
    let skip = 1.5;
    let total = skip + speech_s * (loops as f64 + 1.0) + 1.5;

    let relay = RelayProc::start(&o.bins, LOCALHOST, &o.out_dir.join("relay.log")).await?;
    let mut proxies = Vec::new();
    for (i, loss) in LOSSES.iter().enumerate() {
        // Loss on the way to the receiver only: the speech crosses it once.
        let schedule =
            Schedule::parse(&format!("0s:down.loss={loss}")).map_err(|e| LabError::Startup(e.to_string()))?;
        let ip = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
        proxies.push(loopback_proxy(&relay, ip, schedule, o.seed.wrapping_add(i as u64)).await?);
    }
    let t0 = now_unix_ms();
    let deadline = Instant::now() + secs(total + 4.0) + EXIT_GRACE;
    let mut cast = Cast::new();
    let mut sender = BotSpec::new("speaker", None, relay.tcp_addr, secs(total + 2.0));
    sender.audio = BotAudio::Wav(speech.clone());
    let code = cast.start(o, &sender, "host, sends the speech on a loop", None).await?;
    let names: Vec<String> = LOSSES.iter().map(|l| format!("listener-{}pct", (l * 100.0).round())).collect();
    for (name, proxy) in names.iter().zip(&proxies) {
        let mut spec = BotSpec::new(name, code.clone(), proxy.tcp_addrs()[0], secs(total - since(t0)));
        spec.record_audio = Some(o.out_dir.join(format!("{name}.wav")));
        cast.start(o, &spec, "records what it plays", None).await?;
    }
    let bots_out = cast.wait(deadline).await;
    let mut proxy_stats = Vec::new();
    for (name, p) in names.iter().zip(proxies) {
        proxy_stats.push((name.clone(), p.shutdown().await));
    }
    relay.stop().await;

    let bots = cast.load(t0);
    let s = find(&bots, "speaker")?;
    let spid = s.participant_id().unwrap_or(u32::MAX);
    let mut conditions = Vec::new();
    for ((loss, name), (_, ps)) in LOSSES.iter().zip(&names).zip(&proxy_stats) {
        let rec = o.out_dir.join(format!("{name}.wav"));
        let result = pesq::score(&python, &o.out_dir, &speech, &rec, skip, loops)?;
        let b = find(&bots, name)?;
        let concealed = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.audio.concealed_frames as f64));
        let played = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.audio.played_frames as f64));
        let concealment_rate = match (concealed.last(), played.last()) {
            (Some(c), Some(p)) if p.1 > 0.0 => Some(c.1 / p.1),
            _ => None,
        };
        let measured_loss = if ps.udp_down.packets_in > 0 {
            ps.udp_down.dropped_loss as f64 / ps.udp_down.packets_in as f64
        } else {
            0.0
        };
        conditions.push(PesqCondition {
            loss: *loss,
            pesq_mean: result.mean,
            pesq_min: result.min,
            scores: result.scores,
            measured_loss,
            concealment_rate,
            recording: format!("{name}.wav"),
        });
    }
    let phases = phases_out(&[(skip, total, "speech on a loop (scored from here)")]);
    let chart = audio_chart(&bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    let figures = serde_json::json!({ "speech_s": speech_s, "loops_scored": loops, "conditions": conditions });
    let notes = vec!["loss applies relay → listener only; each listener has its own proxy and seed".into()];
    Ok(report(o, t0, total, phases, figures, Outcome { bots: bots_out, proxies: proxy_stats, plot, notes }))
}

/// The audio scenario's plot: what each listener got of the speaker's audio.
fn audio_chart(bots: &[BotStats], speaker: &BotStats, phases: &[PhaseOut], x_max: f64) -> Chart {
    let spid = speaker.participant_id().unwrap_or(u32::MAX);
    let listeners: Vec<&BotStats> = bots.iter().filter(|b| b.name != speaker.name).collect();
    let series = |f: &dyn Fn(&crate::lab::stats::AudioInStats) -> f64| -> Vec<Series> {
        listeners
            .iter()
            .map(|b| Series {
                name: b.name.clone(),
                points: b.series(|x| BotStats::stream_from(x, spid).map(|st| f(&st.audio))),
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
    let panel = |title: &str, series| Panel { title: title.into(), series, ..Default::default() };
    Chart {
        title: "Scenario 5: speech through 0/2/5/10% loss".into(),
        panels: vec![
            panel("audio loss %", series(&|a| a.loss * 100.0)),
            panel("concealed frames per second (of 50)", concealed),
            panel("jitter buffer ms", series(&|a| a.jitter_buffer_ms)),
            panel(
                "RTT ms",
                bots.iter().map(|b| Series { name: b.name.clone(), points: b.series(|x| x.rtt_ms) }).collect(),
            ),
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
