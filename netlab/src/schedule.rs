//! Impairment schedules: which [`LinkConfig`] is in force in each direction at each moment of
//! a run, and the small text syntax used to write them.
//!
//! A schedule is a list of steps, each `AT:PARAMS`, separated by commas or newlines (`#`
//! starts a comment), for example `0s:clean, 10s:loss=15%, 30s:clean`. Each step **replaces**
//! the whole configuration from its time on (parameters it does not name are clean). PARAMS is
//! `clean` or `key=value` pairs separated by spaces or `;`:
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `loss` | `0.15` or `15%` | independent random loss |
//! | `ge` | `P_GB/P_BG[/LOSS_BAD[/LOSS_GOOD]]` | Gilbert–Elliott bursty loss (bad-state loss defaults to 1, good-state to 0) |
//! | `delay` | `40ms` | one-way delay |
//! | `jitter` | `10ms` | uniform jitter ± this much (order kept) |
//! | `reorder` | `0.05` or `5%` | probability a packet is held back and overtaken |
//! | `gap` | `20ms` | how long a reordered packet is held back |
//! | `dup` | `0.01` or `1%` | duplication probability |
//! | `rate` | `500k`, `5M`, `5mbit`, `2000000` | bottleneck rate in bit/s |
//! | `queue` | `64000`, `64k`, `1M` | drop-tail queue of the bottleneck, bytes |
//!
//! A key applies to both directions; prefix it with `up.` (client → upstream) or `down.`
//! (upstream → client) for one direction only, e.g. `up.rate=500k down.loss=2%`.

use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::impair::{LinkConfig, LossModel};

/// A schedule or parameter that could not be parsed; the message says which part and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// The configuration of both directions during one step of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleStep {
    /// Offset from the start of the run at which this step takes effect.
    #[serde(serialize_with = "serialize_secs")]
    pub at: Duration,
    /// The step's text as written, for reports.
    pub label: String,
    /// Client → upstream.
    pub up: LinkConfig,
    /// Upstream → client.
    pub down: LinkConfig,
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Steps sorted by time; the first one is at zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    steps: Vec<ScheduleStep>,
}

impl Default for Schedule {
    /// A clean link for the whole run.
    fn default() -> Self {
        Schedule::constant(LinkConfig::default(), LinkConfig::default())
    }
}

impl Schedule {
    /// The same configuration for the whole run.
    pub fn constant(up: LinkConfig, down: LinkConfig) -> Self {
        Schedule { steps: vec![ScheduleStep { at: Duration::ZERO, label: "constant".into(), up, down }] }
    }

    /// Parses the syntax described in the module documentation. A schedule whose first step
    /// is later than zero starts clean.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut steps = Vec::new();
        for raw in text.split(['\n', ',']) {
            let entry = raw.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let Some((at, params)) = entry.split_once(':') else {
                return err(format!("schedule step `{entry}` is not AT:PARAMS (e.g. `10s:loss=15%`)"));
            };
            let at = parse_duration(at.trim())?;
            let (up, down) = parse_link_params(params)?;
            if let Some(prev) = steps.last().map(|s: &ScheduleStep| s.at) {
                if at <= prev {
                    return err(format!("schedule step `{entry}` is not later than the step before it"));
                }
            }
            steps.push(ScheduleStep { at, label: params.trim().to_string(), up, down });
        }
        if steps.is_empty() {
            return err("empty schedule");
        }
        if steps[0].at > Duration::ZERO {
            let clean = LinkConfig::default();
            steps.insert(0, ScheduleStep { at: Duration::ZERO, label: "clean".into(), up: clean.clone(), down: clean });
        }
        Ok(Schedule { steps })
    }

    /// All steps, the first at zero.
    pub fn steps(&self) -> &[ScheduleStep] {
        &self.steps
    }

    /// The step in force `elapsed` after the start.
    pub fn step_at(&self, elapsed: Duration) -> &ScheduleStep {
        let idx = self.steps.partition_point(|s| s.at <= elapsed);
        // The first step is at zero, so idx >= 1 for every elapsed >= 0.
        &self.steps[idx.saturating_sub(1)]
    }

    /// When the step after the one in force at `elapsed` begins, if there is one.
    pub fn next_change(&self, elapsed: Duration) -> Option<Duration> {
        self.steps.iter().map(|s| s.at).find(|&at| at > elapsed)
    }
}

/// Parses PARAMS (see the module documentation) into the (up, down) configurations.
pub fn parse_link_params(params: &str) -> Result<(LinkConfig, LinkConfig), ParseError> {
    let mut up = LinkConfig::default();
    let mut down = LinkConfig::default();
    for token in params.split(|c: char| c.is_whitespace() || c == ';').filter(|t| !t.is_empty()) {
        if token == "clean" {
            continue;
        }
        let Some((key, value)) = token.split_once('=') else {
            return err(format!("`{token}` is not key=value"));
        };
        let (targets, key): (Vec<&mut LinkConfig>, &str) = if let Some(k) = key.strip_prefix("up.") {
            (vec![&mut up], k)
        } else if let Some(k) = key.strip_prefix("down.") {
            (vec![&mut down], k)
        } else {
            (vec![&mut up, &mut down], key)
        };
        for cfg in targets {
            apply_param(cfg, key, value)?;
        }
    }
    Ok((up, down))
}

fn apply_param(cfg: &mut LinkConfig, key: &str, value: &str) -> Result<(), ParseError> {
    match key {
        "loss" => cfg.loss = LossModel::Random { p: parse_probability(value)? },
        "ge" => {
            let parts: Vec<&str> = value.split('/').collect();
            if !(2..=4).contains(&parts.len()) {
                return err(format!("ge=`{value}` is not P_GB/P_BG[/LOSS_BAD[/LOSS_GOOD]]"));
            }
            let p = |i: usize, default: f64| parts.get(i).map_or(Ok(default), |v| parse_probability(v));
            cfg.loss = LossModel::GilbertElliott {
                p_good_to_bad: p(0, 0.0)?,
                p_bad_to_good: p(1, 0.0)?,
                loss_in_bad: p(2, 1.0)?,
                loss_in_good: p(3, 0.0)?,
            };
        }
        "delay" => cfg.delay = parse_duration(value)?,
        "jitter" => cfg.jitter = parse_duration(value)?,
        "reorder" => cfg.reorder = parse_probability(value)?,
        "gap" => cfg.reorder_gap = parse_duration(value)?,
        "dup" => cfg.duplicate = parse_probability(value)?,
        "rate" => cfg.rate_bps = Some(parse_rate(value)?),
        "queue" => cfg.queue_bytes = parse_bytes(value)?,
        _ => {
            return err(format!("unknown impairment `{key}` (loss, ge, delay, jitter, reorder, gap, dup, rate, queue)"))
        }
    }
    Ok(())
}

/// Parses `0.15` or `15%` into a probability in `[0, 1]`.
pub fn parse_probability(s: &str) -> Result<f64, ParseError> {
    let (num, scale) = match s.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (s, 1.0),
    };
    match num.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&(v / scale)) => Ok(v / scale),
        _ => err(format!("`{s}` is not a probability (0..1 or 0%..100%)")),
    }
}

/// Parses `250ms`, `10s`, `1.5s`, `2m`, `100us` or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, ParseError> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = match num.parse() {
        Ok(v) => v,
        Err(_) => return err(format!("`{s}` is not a duration (e.g. 250ms, 10s, 2m)")),
    };
    let secs = match unit.trim() {
        "" if value == 0.0 => 0.0,
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return err(format!("`{s}` has no known unit (us, ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).or_else(|_| err(format!("`{s}` is out of range")))
}

/// Parses a rate in bit/s: `2000000`, `500k`, `5M`, `1G`, with an optional `bit`, `bps` or
/// `bit/s` after the multiplier (`5mbit`, `500kbps`).
pub fn parse_rate(s: &str) -> Result<u64, ParseError> {
    let lower = s.trim().to_ascii_lowercase();
    let stripped = lower.trim_end_matches("bit/s").trim_end_matches("bps").trim_end_matches("bit");
    let rate = parse_scaled(stripped).filter(|r| (1.0..1e15).contains(r));
    match rate {
        Some(r) => Ok(r as u64),
        None => err(format!("`{s}` is not a rate in bit/s (e.g. 500k, 5M, 5mbit)")),
    }
}

/// Parses a byte count: `64000`, `64k`, `64kB`, `1M`.
pub fn parse_bytes(s: &str) -> Result<usize, ParseError> {
    let lower = s.trim().to_ascii_lowercase();
    match parse_scaled(lower.trim_end_matches('b')).filter(|b| (1.0..1e12).contains(b)) {
        Some(b) => Ok(b as usize),
        None => err(format!("`{s}` is not a byte count (e.g. 64000, 64k)")),
    }
}

fn parse_scaled(s: &str) -> Option<f64> {
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1e3),
        'm' => (&s[..s.len() - 1], 1e6),
        'g' => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    num.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example_schedule() {
        let s = Schedule::parse("0s:clean,10s:loss=0.15,30s:clean").unwrap();
        assert_eq!(s.steps().len(), 3);
        assert!(s.step_at(Duration::from_secs(5)).up.is_clean());
        let mid = s.step_at(Duration::from_secs(10));
        assert_eq!(mid.up.loss, LossModel::Random { p: 0.15 });
        assert_eq!(mid.down.loss, LossModel::Random { p: 0.15 });
        assert!(s.step_at(Duration::from_secs(30)).down.is_clean());
        assert!(s.step_at(Duration::from_secs(3600)).down.is_clean());
        assert_eq!(s.next_change(Duration::ZERO), Some(Duration::from_secs(10)));
        assert_eq!(s.next_change(Duration::from_secs(10)), Some(Duration::from_secs(30)));
        assert_eq!(s.next_change(Duration::from_secs(31)), None);
    }

    #[test]
    fn directional_and_combined_parameters() {
        let (up, down) = parse_link_params(
            "up.rate=500kbit;down.loss=2% delay=40ms jitter=5ms ge=0.05/0.25 dup=1% reorder=5% gap=30ms queue=32k",
        )
        .unwrap();
        assert_eq!(up.rate_bps, Some(500_000));
        assert_eq!(down.rate_bps, None);
        // `ge` comes after `down.loss` and replaces it.
        let ge =
            LossModel::GilbertElliott { p_good_to_bad: 0.05, p_bad_to_good: 0.25, loss_in_bad: 1.0, loss_in_good: 0.0 };
        assert_eq!(down.loss, ge);
        assert_eq!(up.loss, ge);
        for c in [&up, &down] {
            assert_eq!(c.delay, Duration::from_millis(40));
            assert_eq!(c.jitter, Duration::from_millis(5));
            assert_eq!(c.duplicate, 0.01);
            assert_eq!(c.reorder, 0.05);
            assert_eq!(c.reorder_gap, Duration::from_millis(30));
            assert_eq!(c.queue_bytes, 32_000);
        }
    }

    #[test]
    fn file_style_schedule_with_comments_and_implicit_clean_start() {
        let s = Schedule::parse("# bandwidth cut\n10s: rate=500k\n\n40s: rate=5M # back\n").unwrap();
        assert_eq!(s.steps().len(), 3);
        assert!(s.step_at(Duration::from_secs(9)).up.is_clean());
        assert_eq!(s.step_at(Duration::from_secs(10)).up.rate_bps, Some(500_000));
        assert_eq!(s.step_at(Duration::from_secs(41)).up.rate_bps, Some(5_000_000));
    }

    #[test]
    fn rejects_bad_input_with_a_message() {
        for bad in [
            "",
            "10s",
            "x:clean",
            "10s:loss=2",
            "10s:loss=-1%",
            "10s:foo=1",
            "10s:delay=5",
            "10s:rate=fast",
            "10s:ge=0.1",
            "10s:clean,5s:clean",
            "10s:queue=0",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_rate("5Mbit").unwrap(), 5_000_000);
        assert_eq!(parse_rate("500kbps").unwrap(), 500_000);
        assert_eq!(parse_rate("2000000").unwrap(), 2_000_000);
        assert_eq!(parse_bytes("64kB").unwrap(), 64_000);
        assert_eq!(parse_probability("15%").unwrap(), 0.15);
    }
}
