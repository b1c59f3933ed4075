//! Scenario 1: loss 0% → 15% → 0% on the sender's path, through the impairment proxy: how
//! fast the sender steps down the quality ladder and comes back.

use super::*;

/// Scenario 1: loss 0% → 15% → 0% on the sender's path (both directions, through the proxy).
pub async fn loss_step(o: &RunOptions) -> Result<Report, LabError> {
    let (start, end, total) = if o.short { (6.0, 16.0, 34.0) } else { (10.0, 30.0, 60.0) };
    let relay = RelayProc::start(&o.bins, LOCALHOST, &o.out_dir.join("relay.log")).await?;
    let schedule = Schedule::parse(&format!("0s:clean, {start}s:loss=15%, {end}s:clean"))
        .map_err(|e| LabError::Startup(e.to_string()))?;
    let proxy = loopback_proxy(&relay, Ipv4Addr::new(127, 0, 0, 2), schedule, o.seed).await?;
    let t0 = now_unix_ms();
    let deadline = Instant::now() + secs(total + 4.0) + EXIT_GRACE;

    let mut cast = Cast::new();
    let host = BotSpec::new("receiver", None, relay.tcp_addr, secs(total + 2.0));
    let code = cast.start(o, &host, "host, receives over a clean path", None).await?;
    let mut sender = BotSpec::new("sender", code, proxy.tcp_addrs()[0], secs(total - since(t0)));
    sender.video = true;
    sender.audio = BotAudio::Tone;
    cast.start(o, &sender, "sends video and audio through the lossy proxy", None).await?;
    let bots_out = cast.wait(deadline).await;
    let proxy_stats = proxy.shutdown().await;
    relay.stop().await;

    let bots = cast.load(t0);
    let (s, r) = (find(&bots, "sender")?, find(&bots, "receiver")?);
    let figures = step_figures(s, r, start, end);
    let phases = phases_out(&[(0.0, start, "clean"), (start, end, "loss 15%"), (end, total, "clean")]);
    let chart = standard_chart("Scenario 1: loss 0% → 15% → 0% on the sender's path", &bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    let notes = vec![format!(
        "proxy dropped {} of {} sender→relay datagrams and {} of {} relay→sender",
        proxy_stats.udp_up.dropped_loss,
        proxy_stats.udp_up.packets_in,
        proxy_stats.udp_down.dropped_loss,
        proxy_stats.udp_down.packets_in
    )];
    Ok(report(
        o,
        t0,
        total,
        phases,
        figures,
        Outcome { bots: bots_out, proxies: vec![("sender".into(), proxy_stats)], plot, notes },
    ))
}
