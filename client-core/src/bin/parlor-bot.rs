//! `parlor-bot`: a headless Parlor client for tests, demos and load.
//!
//! ```text
//! parlor-bot create --relay 127.0.0.1:5000 --name Host --auto-admit --duration 30s
//! parlor-bot join 123456 --relay 127.0.0.1:5000 --name Guest --save-dir /tmp/in
//! parlor-bot join 'parlor://join?relay=127.0.0.1%3A5000&code=123456&fp=…' --name Guest
//! ```
//!
//! Standard output is line-oriented and machine-readable; every line starts with a tag:
//!
//! - `MEETING_CODE 123456` — `create` prints this as soon as the meeting exists (flushed at
//!   once, so a script can start joiners), then `INVITE parlor://join?…`, the invitation with
//!   the relay's certificate fingerprint;
//! - `JOINED code=… participant=…`, `CHAT …`, `FILE_SAVED …`, `FILE_SENT …`, `FILE_FAILED …`;
//! - screen sharing: `SCREEN_SHOWN from=… after_join_ms=…` when a participant's shared screen
//!   is first shown whole (`--screen` shares one), `PRESENTING id=… on=…` as people start and
//!   stop, `SCREEN_SHARE_ENDED reason=…` if our share stopped by itself;
//! - host controls as they reach the bot: `MEETING_LOCKED locked=… by=…`, `MUTED_BY_HOST by=…`,
//!   `MEDIA_REQUESTED by=… device=…`, `HAND id=… raised=…`, `REACTION from=… reaction=…`, and
//!   `MEETING_ENDED by=…` when the host ends the meeting for everyone (the bot then stops);
//! - at the end, the summary: one `SUMMARY …` line about this bot, then one
//!   `SUMMARY_STREAM …` line per remote participant (frames received, loss, jitter-buffer
//!   delay, one-way latency percentiles from the capture timestamps — meaningful when the
//!   bots share a clock, e.g. on one machine), all as `key=value` pairs.
//!
//! Logs go to standard error (`--log-level`). The exit code is 0 after a normal run, 2 if
//! the bot never got into the meeting or was thrown out of it.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use client_core::media::{EchoPath, ScreenChoice, VoicePreferences, MAX_ECHO_MS};
use client_core::stats::{FileDirection, RemoteStreamStats};
use client_core::{AudioChoice, Session, SessionEvent, SessionOptions, SinkChoice, StatsSnapshot, VideoChoice};
use protocol::control::Reaction;

#[derive(Parser, Debug)]
#[command(name = "parlor-bot", version, about = "A headless Parlor client")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
    /// The relay's TCP address, HOST:PORT (the UDP port is learned from the relay).
    #[arg(long, global = true, env = "PARLOR_RELAY", default_value = "127.0.0.1:5000")]
    relay: String,
    /// Trust only the relay certificate with this SHA-256 fingerprint (64 hex digits), as an
    /// invitation names it [default: trust the certificate seen first, or the one pinned in
    /// --pins].
    #[arg(long, global = true, env = "PARLOR_RELAY_FINGERPRINT")]
    fingerprint: Option<protocol::fingerprint::Fingerprint>,
    /// Keep the certificates trusted on first use in this JSON file, and refuse a relay whose
    /// certificate differs from the one pinned there [default: remember nothing].
    #[arg(long, global = true)]
    pins: Option<PathBuf>,
    /// Display name in the meeting.
    #[arg(long, global = true, default_value = "parlor-bot")]
    name: String,
    /// Video source: synthetic | none | camera:INDEX.
    #[arg(long, global = true, default_value = "synthetic", value_parser = parse_video)]
    video: VideoChoice,
    /// Audio source: tone | wav:FILE | none | mic | mic:DEVICE | loopback | loopback:FILE.
    /// `loopback` is a simulated laptop without headphones: the "microphone" hears this bot's
    /// own speaker output through a room (--echo-delay-ms, --echo-tail-ms, --echo-gain-db),
    /// plus the near-end talker FILE if given.
    #[arg(long, global = true, default_value = "tone", value_parser = parse_audio)]
    audio: AudioChoice,
    /// Echo loopback: delay of the direct path from the speaker to the microphone.
    #[arg(long, global = true, default_value_t = EchoPath::default().delay_ms,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_ECHO_MS)))]
    echo_delay_ms: u32,
    /// Echo loopback: length of the room's reverberation tail (60 dB decay).
    #[arg(long, global = true, default_value_t = EchoPath::default().tail_ms,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_ECHO_MS)))]
    echo_tail_ms: u32,
    /// Echo loopback: gain of the whole echo path, dB.
    #[arg(long, global = true, default_value_t = EchoPath::default().gain_db, allow_negative_numbers = true)]
    echo_gain_db: i32,
    /// Acoustic echo cancellation on the outgoing audio [default: on for mic and loopback,
    /// off for tone and wav].
    #[arg(long, global = true, value_enum)]
    echo_cancellation: Option<Switch>,
    /// Noise suppression on the outgoing audio [default: as --echo-cancellation].
    #[arg(long, global = true, value_enum)]
    noise_suppression: Option<Switch>,
    /// Automatic gain control on the outgoing audio [default: as --echo-cancellation].
    #[arg(long, global = true, value_enum)]
    gain_control: Option<Switch>,
    /// Audio output: null | speaker | speaker:DEVICE.
    #[arg(long, global = true, default_value = "null", value_parser = parse_sink)]
    sink: SinkChoice,
    /// How long to stay in the meeting once in it (e.g. 30s, 2m, 500ms).
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long `join` waits in the waiting room before giving up.
    #[arg(long, global = true, default_value = "60s", value_parser = humantime::parse_duration)]
    join_timeout: Duration,
    /// Write one JSON stats snapshot per second to this file.
    #[arg(long, global = true)]
    stats_json: Option<PathBuf>,
    /// Upload this file once in the meeting.
    #[arg(long, global = true)]
    send_file: Option<PathBuf>,
    /// Accept every file offer and save it in this directory.
    #[arg(long, global = true)]
    save_dir: Option<PathBuf>,
    /// (host) Admit everyone who knocks.
    #[arg(long, global = true)]
    auto_admit: bool,
    /// Record the mixed incoming audio to this WAV file.
    #[arg(long, global = true)]
    record_audio: Option<PathBuf>,
    /// Send this chat message once in the meeting.
    #[arg(long, global = true)]
    chat: Option<String>,
    /// Raise a hand once in the meeting.
    #[arg(long, global = true)]
    raise_hand: bool,
    /// Send this reaction once in the meeting (thumbs_up, heart, laugh, surprised, clap, party).
    #[arg(long, global = true, value_parser = parse_reaction)]
    react: Option<Reaction>,
    /// Send the `--react` reaction again at this interval (e.g. 2s) while in the meeting.
    #[arg(long, global = true, value_parser = humantime::parse_duration, requires = "react")]
    react_every: Option<Duration>,
    /// (host) Lock the meeting once it exists (new knocks are refused).
    #[arg(long, global = true)]
    lock: bool,
    /// Share a screen once in the meeting: synthetic (slides whose text is typed into, a new
    /// slide every 6 s), x11 (the primary screen of $DISPLAY, or any platform's primary
    /// screen) or x11:ID (a screen by its id).
    #[arg(long, global = true, value_parser = parse_screen)]
    screen: Option<ScreenChoice>,
    /// Compare every shared screen received with the synthetic slides it should show (PSNR),
    /// for senders sharing `--screen synthetic`; the figures go in the summary.
    #[arg(long, global = true)]
    screen_check: bool,
    /// Start at this quality level (0 = 144p … 3 = 480p).
    #[arg(long, global = true)]
    start_level: Option<usize>,
    /// Feed the quality controller this loss fraction instead of the measured one.
    #[arg(long, global = true)]
    loss_override: Option<f64>,
    /// Log filter for standard error (e.g. warn, info, client_core=debug).
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
}

/// A voice-processing stage on or off.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(switch: Option<Switch>) -> Option<bool> {
        switch.map(|s| s == Switch::On)
    }
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Create a meeting and print its code.
    Create,
    /// Join the meeting with this code, or the one an invitation (a parlor://join link, or the
    /// whole text around one) names: its relay and fingerprint then override --relay and
    /// --fingerprint.
    Join { code: String },
}

fn parse_video(s: &str) -> Result<VideoChoice, String> {
    match s {
        "synthetic" => Ok(VideoChoice::Synthetic),
        "none" => Ok(VideoChoice::None),
        _ => match s.strip_prefix("camera:") {
            Some(i) => i.parse().map(VideoChoice::Camera).map_err(|e| format!("bad camera index: {e}")),
            None if s == "camera" => Ok(VideoChoice::Camera(0)),
            None => Err("expected synthetic, none or camera:INDEX".into()),
        },
    }
}

fn parse_screen(s: &str) -> Result<ScreenChoice, String> {
    match s {
        "synthetic" => Ok(ScreenChoice::Synthetic),
        "x11" => Ok(ScreenChoice::Monitor(None)),
        _ => match s.strip_prefix("x11:") {
            Some(id) => id.parse().map(|id| ScreenChoice::Monitor(Some(id))).map_err(|e| format!("bad screen id: {e}")),
            None => Err("expected synthetic, x11 or x11:ID".into()),
        },
    }
}

fn parse_audio(s: &str) -> Result<AudioChoice, String> {
    match s {
        "tone" => Ok(AudioChoice::Tone),
        "none" => Ok(AudioChoice::None),
        "mic" => Ok(AudioChoice::Mic(None)),
        "loopback" => Ok(AudioChoice::EchoLoopback { path: EchoPath::default(), near_end: None }),
        _ => {
            if let Some(path) = s.strip_prefix("wav:") {
                Ok(AudioChoice::Wav(path.into()))
            } else if let Some(dev) = s.strip_prefix("mic:") {
                Ok(AudioChoice::Mic(Some(dev.to_string())))
            } else if let Some(near) = s.strip_prefix("loopback:") {
                Ok(AudioChoice::EchoLoopback { path: EchoPath::default(), near_end: Some(near.into()) })
            } else {
                Err("expected tone, wav:FILE, mic, mic:DEVICE, loopback, loopback:FILE or none".into())
            }
        }
    }
}

fn parse_sink(s: &str) -> Result<SinkChoice, String> {
    match s {
        "null" => Ok(SinkChoice::Null),
        "speaker" => Ok(SinkChoice::Speaker(None)),
        _ => match s.strip_prefix("speaker:") {
            Some(dev) => Ok(SinkChoice::Speaker(Some(dev.to_string()))),
            None => Err("expected null, speaker or speaker:DEVICE".into()),
        },
    }
}

/// A reaction by its protocol name, in any case (`clap`, `THUMBS_UP`).
fn parse_reaction(s: &str) -> Result<Reaction, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase().replace('-', "_"))).map_err(|_| {
        let names: Vec<String> =
            Reaction::ALL.iter().map(|r| serde_json::to_string(r).unwrap_or_default().to_lowercase()).collect();
        format!("not a reaction; one of {}", names.join(", "))
    })
}

/// Prints one line to stdout and flushes it, so a script sees it at once.
fn out(line: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.as_ref());
    let _ = stdout.flush();
}

/// Everything the summary needs, gathered from the events.
#[derive(Default)]
struct Tally {
    my_id: Option<u32>,
    names: HashMap<u32, String>,
    last_stats: Option<StatsSnapshot>,
    streams: BTreeMap<u32, RemoteStreamStats>,
    chats_received: u64,
    files_saved: u64,
    files_sent: u64,
    files_failed: u64,
    /// `MUTED_BY_HOST` received.
    muted_by_host: u64,
    /// Who is presenting now, to print each change once.
    presenting: std::collections::BTreeSet<u32>,
}

impl Tally {
    /// Keeps the last figures of everyone ever seen: a participant who left is gone from
    /// later snapshots but belongs in the summary.
    fn merge(&mut self, snapshot: &StatsSnapshot) {
        let seen = |r: &RemoteStreamStats| r.video.frames_received + r.audio.packets_received;
        for stream in &snapshot.streams {
            let keep = match self.streams.get(&stream.participant_id) {
                Some(old) => seen(stream) >= seen(old),
                None => true,
            };
            if keep {
                self.streams.insert(stream.participant_id, stream.clone());
            }
        }
    }
}

const MAX_DOWNLOAD_ATTEMPTS: u32 = 3;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("parlor-bot: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run(mut cli: Cli) -> Result<i32> {
    if let Mode::Join { code } = &mut cli.command {
        if code.contains(protocol::invite::LINK_PREFIX) {
            let invite = protocol::invite::Invite::find(code).context("reading the invitation")?;
            cli.relay = invite.relay;
            cli.fingerprint = invite.fingerprint.or(cli.fingerprint);
            *code = invite.code;
        } else if !protocol::control::is_valid_meeting_code(code) {
            bail!("a meeting code is six digits (or give an invitation link), not {code:?}");
        }
    }
    let pins = cli.pins.clone().map(client_core::PinStore::File).unwrap_or_default();
    let trust = client_core::RelayTrust { expected: cli.fingerprint, ..client_core::RelayTrust::with_pins(pins) };
    let mut audio = cli.audio.clone();
    if let AudioChoice::EchoLoopback { path, .. } = &mut audio {
        *path = EchoPath { delay_ms: cli.echo_delay_ms, tail_ms: cli.echo_tail_ms, gain_db: cli.echo_gain_db };
    }
    let options = SessionOptions {
        client_name: format!("parlor-bot/{}", env!("CARGO_PKG_VERSION")),
        video: cli.video.clone(),
        audio,
        voice: VoicePreferences {
            echo_cancellation: Switch::on(cli.echo_cancellation),
            noise_suppression: Switch::on(cli.noise_suppression),
            gain_control: Switch::on(cli.gain_control),
        },
        sink: cli.sink.clone(),
        record_audio: cli.record_audio.clone(),
        stats_path: cli.stats_json.clone(),
        loss_override: cli.loss_override,
        start_level: cli.start_level,
        trust,
        ..Default::default()
    };
    let (session, mut events) =
        Session::connect(&cli.relay, options).await.with_context(|| format!("connecting to {}", cli.relay))?;
    match &cli.command {
        Mode::Create => session.create_meeting(&cli.name).await?,
        Mode::Join { code } => session.join(code, &cli.name).await?,
    }

    let mut tally = Tally::default();
    let mut joined_at: Option<Instant> = None;
    let checker = ScreenChecker::start(session.video_feed(), cli.screen_check);
    let mut cpu = CpuMeter { start: None };
    let started = Instant::now();
    let mut attempts: BTreeMap<u64, u32> = BTreeMap::new();
    let mut exit_code = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Who the relay shows as reconnecting, to print each change once.
    let mut reconnecting = std::collections::BTreeSet::new();
    // Whose hands are up, to print each change once.
    let mut hands = std::collections::BTreeSet::new();
    let mut next_reaction: Option<Instant> = None;

    loop {
        let deadline = match joined_at {
            Some(t) => t + cli.duration,
            None => started + cli.join_timeout,
        };
        let react_at = next_reaction.unwrap_or(deadline);
        let event = tokio::select! {
            ev = events.recv() => ev,
            _ = tokio::time::sleep_until(react_at.into()), if next_reaction.is_some() => {
                if let (Some(reaction), Some(every)) = (cli.react, cli.react_every) {
                    session.react(reaction).await?;
                    next_reaction = Some(Instant::now() + every);
                }
                continue;
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                if joined_at.is_none() {
                    eprintln!("parlor-bot: not admitted within {}", humantime::format_duration(cli.join_timeout));
                    exit_code = 2;
                }
                break;
            }
            _ = &mut ctrl_c => break,
        };
        let Some(event) = event else { break };
        match event {
            SessionEvent::Joined { welcome } => {
                joined_at = Some(Instant::now());
                cpu = CpuMeter::start();
                tally.my_id = Some(welcome.participant_id);
                for p in &welcome.roster {
                    tally.names.insert(p.id, p.display_name.clone());
                }
                if matches!(cli.command, Mode::Create) {
                    out(format!("MEETING_CODE {}", welcome.code));
                    let invite = protocol::invite::Invite {
                        relay: cli.relay.clone(),
                        code: welcome.code.clone(),
                        fingerprint: session.relay_certificate().invitation_pin(),
                    };
                    out(format!("INVITE {}", invite.link()));
                }
                out(format!("JOINED code={} participant={}", welcome.code, welcome.participant_id));
                if let Some(text) = &cli.chat {
                    session.send_chat(text).await?;
                }
                if let Some(path) = &cli.send_file {
                    session.send_file(path.clone()).await?;
                }
                if cli.raise_hand {
                    session.raise_hand(true).await?;
                }
                if let Some(reaction) = cli.react {
                    session.react(reaction).await?;
                    next_reaction = cli.react_every.map(|every| Instant::now() + every);
                }
                if cli.lock && matches!(cli.command, Mode::Create) {
                    session.lock_meeting(true).await?;
                }
                if let Some(choice) = &cli.screen {
                    session.start_screen_share(choice.clone()).await?;
                }
                checker.joined();
            }
            SessionEvent::Waiting { code, request_id } => out(format!("WAITING code={code} request={request_id}")),
            SessionEvent::JoinRefused { reason } => {
                out(format!("JOIN_REFUSED {reason:?}"));
                exit_code = 2;
                break;
            }
            SessionEvent::Knock { request_id, display_name, .. } => {
                out(format!("KNOCK request={request_id} name={display_name:?}"));
                if cli.auto_admit {
                    session.admit(request_id).await?;
                }
            }
            SessionEvent::Encryption { epoch, safety_code } => {
                out(format!("ENCRYPTED epoch={epoch} safety_code={:?}", safety_code))
            }
            SessionEvent::ParticipantJoined { participant } => {
                out(format!("PARTICIPANT_JOINED id={} name={:?}", participant.id, participant.display_name));
                tally.names.insert(participant.id, participant.display_name);
            }
            SessionEvent::ParticipantLeft { participant_id, reason } => {
                out(format!("PARTICIPANT_LEFT id={participant_id} reason={reason:?}"))
            }
            SessionEvent::ParticipantUpdated { participant } => {
                if participant.presenting != tally.presenting.contains(&participant.id) {
                    out(format!("PRESENTING id={} on={}", participant.id, participant.presenting));
                    if participant.presenting {
                        tally.presenting.insert(participant.id);
                    } else {
                        tally.presenting.remove(&participant.id);
                    }
                }
                let raised = participant.hand_raised.is_some();
                if raised != hands.contains(&participant.id) {
                    out(format!("HAND id={} raised={raised}", participant.id));
                    if raised {
                        hands.insert(participant.id);
                    } else {
                        hands.remove(&participant.id);
                    }
                }
                if participant.reconnecting && reconnecting.insert(participant.id) {
                    out(format!("PARTICIPANT_RECONNECTING id={}", participant.id));
                } else if !participant.reconnecting && reconnecting.remove(&participant.id) {
                    out(format!("PARTICIPANT_RESUMED id={}", participant.id));
                }
            }
            SessionEvent::Reconnecting { reason, unheard_ms } => {
                out(format!("RECONNECTING unheard_ms={unheard_ms} reason={reason:?}"))
            }
            SessionEvent::Resumed { after_ms, attempts } => {
                out(format!("RESUMED after_ms={after_ms} attempts={attempts}"))
            }
            SessionEvent::Chat { message } => {
                // File announcements also travel as chat messages; count what people wrote.
                if Some(message.sender_id) != tally.my_id && message.file.is_none() {
                    tally.chats_received += 1;
                }
                out(format!("CHAT from={} text={:?}", message.sender_id, message.text));
            }
            SessionEvent::FileOffer { file } => {
                if let Some(dir) = &cli.save_dir {
                    if Some(file.sender_id) != tally.my_id && !attempts.contains_key(&file.file_id) {
                        attempts.insert(file.file_id, 1);
                        session.accept_file(file.file_id, dir.clone()).await?;
                    }
                }
            }
            SessionEvent::FileDone { file_id, direction, path, sha256, .. } => match direction {
                FileDirection::Upload => {
                    tally.files_sent += 1;
                    out(format!("FILE_SENT id={file_id} sha256={sha256} path={}", path.display()));
                }
                FileDirection::Download => {
                    tally.files_saved += 1;
                    out(format!("FILE_SAVED id={file_id} sha256={sha256} path={}", path.display()));
                }
            },
            SessionEvent::FileFailed { file_id, direction, name, reason, resumable, .. } => {
                let retry = match (file_id, &cli.save_dir) {
                    (Some(id), Some(dir)) if resumable && direction == FileDirection::Download => {
                        let n = attempts.entry(id).or_insert(1);
                        *n += 1;
                        (*n <= MAX_DOWNLOAD_ATTEMPTS).then(|| (id, dir.clone()))
                    }
                    _ => None,
                };
                out(format!("FILE_FAILED name={name:?} reason={reason:?} retrying={}", retry.is_some()));
                match retry {
                    Some((id, dir)) => session.accept_file(id, dir).await?,
                    None => tally.files_failed += 1,
                }
            }
            SessionEvent::Stats(snapshot) => {
                tally.merge(&snapshot);
                tally.last_stats = Some(*snapshot);
            }
            SessionEvent::Removed => {
                out("REMOVED");
                exit_code = 2;
                break;
            }
            SessionEvent::MeetingEnded { by } => {
                out(format!("MEETING_ENDED by={by}"));
                break;
            }
            SessionEvent::MeetingLocked { locked, by } => out(format!("MEETING_LOCKED locked={locked} by={by}")),
            SessionEvent::MutedByHost { by } => {
                tally.muted_by_host += 1;
                out(format!("MUTED_BY_HOST by={by}"));
            }
            SessionEvent::MediaRequested { by, device } => out(format!("MEDIA_REQUESTED by={by} device={device:?}")),
            SessionEvent::ScreenShareEnded { reason } => out(format!("SCREEN_SHARE_ENDED reason={reason:?}")),
            SessionEvent::Reaction { participant_id, reaction } => {
                out(format!("REACTION from={participant_id} reaction={reaction:?}"))
            }
            SessionEvent::Error { code, message, retry_after_ms } => match retry_after_ms {
                Some(ms) => eprintln!("parlor-bot: error {code:?}: {message} (retry after {ms} ms)"),
                None => eprintln!("parlor-bot: error {code:?}: {message}"),
            },
            SessionEvent::Disconnected { reason, meeting_code } => {
                match &meeting_code {
                    Some(code) => out(format!("DISCONNECTED reason={reason:?} lost_meeting={code}")),
                    None => out(format!("DISCONNECTED reason={reason:?}")),
                }
                if joined_at.is_none() || meeting_code.is_some() {
                    exit_code = 2;
                }
                break;
            }
            _ => {}
        }
    }

    let in_meeting_for = joined_at.map(|t| t.elapsed()).unwrap_or_default();
    let cpu_percent = cpu.percent();
    let final_stats = session.stats().or(tally.last_stats.take());
    if let Some(s) = &final_stats {
        tally.merge(s);
    }
    let mic_on = session.mic_on();
    session.close().await;
    let screens = checker.finish().await;
    print_summary(&tally, final_stats.as_ref(), in_meeting_for, cpu_percent, mic_on, &screens);
    Ok(exit_code)
}

/// CPU time this process used so far (user + system), from `/proc/self/stat` (Linux; the
/// kernel reports it in USER_HZ = 100 ticks per second).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Current and peak resident set size in MiB, from `/proc/self/status`.
fn rss_mib() -> (Option<f64>, Option<f64>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let read = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    (read("VmRSS:"), read("VmHWM:"))
}

/// CPU use over the time in the meeting, in percent of one core.
struct CpuMeter {
    start: Option<(Instant, Duration)>,
}

impl CpuMeter {
    fn start() -> Self {
        Self { start: cpu_time().map(|c| (Instant::now(), c)) }
    }

    fn percent(&self) -> Option<f64> {
        let (wall, cpu) = self.start?;
        let used = cpu_time()?.checked_sub(cpu)?;
        let elapsed = wall.elapsed().as_secs_f64();
        (elapsed > 0.0).then(|| used.as_secs_f64() / elapsed * 100.0)
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "na".to_string(), |v| format!("{v:.0}"))
}

fn print_summary(
    tally: &Tally,
    stats: Option<&StatsSnapshot>,
    in_meeting: Duration,
    cpu_percent: Option<f64>,
    mic_on: bool,
    screens: &BTreeMap<u32, ScreenCheck>,
) {
    let (rss, peak) = rss_mib();
    let cost = format!(
        "mic_on={mic_on} muted_by_host={} cpu_percent={} rss_mib={} peak_rss_mib={}",
        tally.muted_by_host,
        cpu_percent.map_or_else(|| "na".into(), |c| format!("{c:.1}")),
        rss.map_or_else(|| "na".into(), |r| format!("{r:.1}")),
        peak.map_or_else(|| "na".into(), |r| format!("{r:.1}")),
    );
    let Some(s) = stats else {
        out(format!(
            "SUMMARY participant={} duration_s={:.1} video_frames_sent=0 audio_frames_sent=0 streams=0 {cost}",
            tally.my_id.map_or_else(|| "na".into(), |i| i.to_string()),
            in_meeting.as_secs_f64()
        ));
        return;
    };
    out(format!(
        "SUMMARY participant={} duration_s={:.1} video_frames_sent={} video_bytes_last_frame={} audio_frames_sent={} \
         quality={} level_changes={} rtt_ms={} streams={} chats_received={} files_sent={} files_saved={} files_failed={} \
         echo_cancellation={} noise_suppression={} gain_control={} aec_delay_ms={} erle_db={} \
         screen_updates_sent={} screen_slices_sent={} screen_size={}x{} screen_quality={:?} {cost}",
        s.participant_id,
        in_meeting.as_secs_f64(),
        s.video_out.frames_sent,
        s.video_out.last_frame_bytes,
        s.audio_out.frames_sent,
        s.quality.name,
        s.quality.level_changes,
        s.rtt_ms.map_or_else(|| "na".into(), |r| format!("{r:.2}")),
        tally.streams.len(),
        tally.chats_received,
        tally.files_sent,
        tally.files_saved,
        tally.files_failed,
        s.audio_out.echo_cancellation,
        s.audio_out.noise_suppression,
        s.audio_out.gain_control,
        s.audio_out.aec_delay_ms.map_or_else(|| "na".into(), |d| d.to_string()),
        fmt_opt(s.audio_out.erle_db),
        s.screen_out.updates_sent,
        s.screen_out.slices_sent,
        s.screen_out.width,
        s.screen_out.height,
        s.screen_out.quality.name,
    ));
    for r in tally.streams.values() {
        let v = &r.video;
        let a = &r.audio;
        let video_loss = ratio(v.cumulative_lost, v.packets_received + v.cumulative_lost);
        let audio_loss = ratio(a.cumulative_lost, a.packets_received + a.cumulative_lost);
        out(format!(
            "SUMMARY_STREAM participant={} name={:?} video_frames_received={} video_size={}x{} video_loss={video_loss:.4} \
             video_latency_p50_ms={} video_latency_p95_ms={} audio_packets_received={} audio_loss={audio_loss:.4} \
             jitter_buffer_ms={:.0} jitter_target_ms={:.0} concealed_frames={} underruns={} \
             audio_latency_p50_ms={} audio_latency_p95_ms={} {}",
            r.participant_id,
            tally.names.get(&r.participant_id).map_or("", |n| n.as_str()),
            v.frames_received,
            v.last_width,
            v.last_height,
            fmt_opt(v.latency_p50_ms),
            fmt_opt(v.latency_p95_ms),
            a.packets_received,
            a.jitter_buffer_ms,
            a.jitter_target_ms,
            a.concealed_frames,
            a.underruns,
            fmt_opt(a.latency_p50_ms),
            fmt_opt(a.latency_p95_ms),
            screen_summary(r, screens.get(&r.participant_id)),
        ));
    }
}

/// The `screen_…` fields of a stream's summary line.
fn screen_summary(r: &RemoteStreamStats, check: Option<&ScreenCheck>) -> String {
    let Some(sc) = &r.screen else { return "screen_slices_received=0".to_string() };
    let mut line = format!(
        "screen_slices_received={} screen_size={}x{} screen_refreshes={} screen_longest_stale_ms={:.0} \
         screen_latency_p50_ms={} screen_latency_p95_ms={}",
        sc.slices_received,
        sc.width,
        sc.height,
        sc.refreshes_requested,
        sc.longest_stale_ms,
        fmt_opt(sc.latency_p50_ms),
        fmt_opt(sc.latency_p95_ms),
    );
    if let Some(c) = check {
        line.push_str(&format!(
            " screen_frames_shown={} screen_first_ms={} screen_psnr_min={:.1} screen_psnr_mean={:.1}",
            c.frames,
            c.first_after_join_ms.map_or_else(|| "na".into(), |ms| ms.to_string()),
            c.psnr_min,
            if c.frames > 0 { c.psnr_sum / c.frames as f64 } else { 0.0 },
        ));
    }
    line
}

/// What the bot saw of one participant's shared screen.
#[derive(Debug, Clone, Default)]
struct ScreenCheck {
    /// Screen pictures shown (one per completed update).
    frames: u64,
    /// From our `JOINED` to the first picture.
    first_after_join_ms: Option<u64>,
    /// PSNR of each picture against the synthetic slides at its capture time (with
    /// `--screen-check`), dB.
    psnr_min: f64,
    psnr_sum: f64,
}

/// Watches the session's video feed for shared screens: prints when each is first shown and,
/// with `--screen-check`, compares each picture with the synthetic slides it should be.
struct ScreenChecker {
    joined: tokio::sync::watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<BTreeMap<u32, ScreenCheck>>,
}

impl ScreenChecker {
    fn start(mut feed: client_core::VideoFeed, compare: bool) -> Self {
        let (joined, joined_rx) = tokio::sync::watch::channel(None::<Instant>);
        let task = tokio::spawn(async move {
            let mut checks: BTreeMap<u32, ScreenCheck> = BTreeMap::new();
            let mut slides = client_core::media::SyntheticSlides::new();
            let mut expected = client_core::media::RgbFrame::default();
            let mut scaler = client_core::media::VideoEncoder::new();
            while feed.changed().await {
                for frame in feed.take_new() {
                    let client_core::FrameSource::Screen(id) = frame.source else { continue };
                    let check = checks
                        .entry(id)
                        .or_insert_with(|| ScreenCheck { psnr_min: f64::INFINITY, ..Default::default() });
                    if check.frames == 0 {
                        let after = (*joined_rx.borrow()).map(|t| t.elapsed().as_millis() as u64);
                        check.first_after_join_ms = after;
                        out(format!(
                            "SCREEN_SHOWN from={id} after_join_ms={}",
                            after.map_or_else(|| "na".into(), |ms| ms.to_string())
                        ));
                    }
                    check.frames += 1;
                    if compare {
                        slides.render(frame.capture_ts_us, &mut expected);
                        let Ok((w, h, pixels)) =
                            scaler.scale_to_fit(&expected, frame.width as u16, frame.height as u16)
                        else {
                            continue;
                        };
                        if (u32::from(w), u32::from(h)) == (frame.width, frame.height) {
                            let psnr = client_core::media::psnr_rgb_rgba(pixels, &frame.pixels);
                            check.psnr_min = check.psnr_min.min(psnr);
                            check.psnr_sum += psnr;
                        }
                    }
                }
            }
            checks
        });
        Self { joined, task }
    }

    fn joined(&self) {
        self.joined.send_replace(Some(Instant::now()));
    }

    /// The figures, once the session (and so the feed) closed.
    async fn finish(self) -> BTreeMap<u32, ScreenCheck> {
        self.task.await.unwrap_or_default()
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
