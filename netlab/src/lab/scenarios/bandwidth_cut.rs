//! Scenario 2: the sender's uplink, a tbf-shaped veth in a network namespace, cut from
//! 5 Mbit/s to 500 kbit/s and back (needs root).

use super::*;

/// Scenario 2: the sender's uplink, a tbf-shaped veth, cut from 5 Mbit/s to 500 kbit/s and back.
pub async fn bandwidth_cut(o: &RunOptions) -> Result<Report, LabError> {
    const FAST: u64 = 5_000_000;
    const SLOW: u64 = 500_000;
    const QUEUE: Duration = Duration::from_millis(200);
    let (start, end, total) = if o.short { (8.0, 20.0, 40.0) } else { (15.0, 45.0, 90.0) };
    // Declared first so it is dropped (namespace deleted) after every process in it.
    let ns = NsLink::create(1)?;
    ns.shape(Side::Uplink, FAST, QUEUE)?;
    let relay = RelayProc::start(&o.bins, IpAddr::V4(ns.host_ip), &o.out_dir.join("relay.log")).await?;
    let t0 = now_unix_ms();
    let t0_instant = Instant::now();
    let deadline = t0_instant + secs(total + 4.0) + EXIT_GRACE;

    let mut cast = Cast::new();
    let host = BotSpec::new("receiver", None, relay.tcp_addr, secs(total + 2.0));
    let code = cast.start(o, &host, "host, receives on the host side", None).await?;
    let mut sender = BotSpec::new("sender", code, relay.tcp_addr, secs(total - since(t0)));
    sender.video = true;
    sender.audio = BotAudio::Tone;
    cast.start(o, &sender, "sends video and audio from the namespace over the shaped uplink", Some(&ns)).await?;

    tokio::time::sleep_until((t0_instant + Duration::from_secs_f64(start)).into()).await;
    ns.shape(Side::Uplink, SLOW, QUEUE)?;
    tokio::time::sleep_until((t0_instant + Duration::from_secs_f64(end)).into()).await;
    ns.shape(Side::Uplink, FAST, QUEUE)?;
    let tc_stats = netns::run("tc", &["-n", &ns.name, "-s", "qdisc", "show", "dev", &ns.ns_if]).unwrap_or_default();
    let bots_out = cast.wait(deadline).await;
    relay.stop().await;

    let bots = cast.load(t0);
    let (s, r) = (find(&bots, "sender")?, find(&bots, "receiver")?);
    let figures = step_figures(s, r, start, end);
    let phases = phases_out(&[(0.0, start, "5 Mbit/s"), (start, end, "500 kbit/s"), (end, total, "5 Mbit/s")]);
    let chart = standard_chart("Scenario 2: uplink 5 → 0.5 → 5 Mbit/s (tbf)", &bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    let notes = vec![
        format!("tbf queue: {} ms at the configured rate", QUEUE.as_millis()),
        format!("tc -s qdisc after the run: {}", tc_stats.split_whitespace().collect::<Vec<_>>().join(" ")),
    ];
    Ok(report(o, t0, total, phases, figures, Outcome { bots: bots_out, proxies: Vec::new(), plot, notes }))
}
