//! Scenario 4: one receiver behind 20% loss among three good receivers; the relay thins
//! what it forwards to the lossy one and the others keep their frame rate.

use super::*;

/// Per-receiver figures of the thinning scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverFps {
    pub name: String,
    pub impaired: bool,
    pub fps_mean: Option<f64>,
    pub fps_min: Option<f64>,
    pub video_loss_mean: Option<f64>,
    /// Mean received FPS over the sender's mean sent FPS.
    pub ratio_to_sender: Option<f64>,
}

/// Figures of the thinning scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ThinningFigures {
    /// Seconds ignored at the start while everyone joins.
    pub warmup_s: f64,
    pub sender_fps_mean: Option<f64>,
    pub sender_level_min: Option<f64>,
    pub receivers: Vec<ReceiverFps>,
    /// The worst ratio among the good receivers.
    pub good_min_ratio: Option<f64>,
    pub impaired_ratio: Option<f64>,
}

/// Scenario 4: one receiver behind 20% loss among three good receivers.
pub async fn thinning(o: &RunOptions) -> Result<Report, LabError> {
    let (warmup, total) = if o.short { (6.0, 22.0) } else { (8.0, 45.0) };
    let relay = RelayProc::start(&o.bins, LOCALHOST, &o.out_dir.join("relay.log")).await?;
    let schedule = Schedule::parse("0s:loss=20%").map_err(|e| LabError::Startup(e.to_string()))?;
    let proxy = loopback_proxy(&relay, Ipv4Addr::new(127, 0, 0, 2), schedule, o.seed).await?;
    let t0 = now_unix_ms();
    let deadline = Instant::now() + secs(total + 4.0) + EXIT_GRACE;

    let mut cast = Cast::new();
    let mut sender = BotSpec::new("sender", None, relay.tcp_addr, secs(total + 2.0));
    sender.video = true;
    sender.audio = BotAudio::Tone;
    let code = cast.start(o, &sender, "host, sends video and audio", None).await?;
    for name in ["good-1", "good-2", "good-3"] {
        let spec = BotSpec::new(name, code.clone(), relay.tcp_addr, secs(total - since(t0)));
        cast.start(o, &spec, "receives over a clean path", None).await?;
    }
    let bad = BotSpec::new("lossy", code, proxy.tcp_addrs()[0], secs(total - since(t0)));
    cast.start(o, &bad, "receives behind 20% loss (both directions)", None).await?;
    let bots_out = cast.wait(deadline).await;
    let proxy_stats = proxy.shutdown().await;
    relay.stop().await;

    let bots = cast.load(t0);
    let s = find(&bots, "sender")?;
    let spid = s.participant_id().unwrap_or(u32::MAX);
    let sender_fps = mean_in(&s.series(|x| Some(x.video_out.fps)), warmup, total);
    let mut receivers = Vec::new();
    for name in ["good-1", "good-2", "good-3", "lossy"] {
        let b = find(&bots, name)?;
        let fps = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.video.fps));
        let loss = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.video.loss));
        let fps_mean = mean_in(&fps, warmup, total);
        receivers.push(ReceiverFps {
            name: name.to_string(),
            impaired: name == "lossy",
            fps_mean,
            fps_min: min_in(&fps, warmup, total),
            video_loss_mean: mean_in(&loss, warmup, total),
            ratio_to_sender: fps_mean.zip(sender_fps).filter(|(_, s)| *s > 0.0).map(|(r, s)| r / s),
        });
    }
    let good_min_ratio =
        receivers.iter().filter(|r| !r.impaired).map(|r| r.ratio_to_sender.unwrap_or(0.0)).reduce(f64::min);
    let impaired_ratio = receivers.iter().find(|r| r.impaired).and_then(|r| r.ratio_to_sender);
    let figures = ThinningFigures {
        warmup_s: warmup,
        sender_fps_mean: sender_fps,
        sender_level_min: min_in(&s.series(|x| Some(x.quality.level as f64)), warmup, total),
        receivers,
        good_min_ratio,
        impaired_ratio,
    };
    let phases = phases_out(&[(0.0, warmup, "warm-up (not counted)"), (warmup, total, "measured")]);
    let chart = standard_chart("Scenario 4: one receiver behind 20% loss, three good ones", &bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    Ok(report(
        o,
        t0,
        total,
        phases,
        figures,
        Outcome { bots: bots_out, proxies: vec![("lossy".into(), proxy_stats)], plot, notes: Vec::new() },
    ))
}
