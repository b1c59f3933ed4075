//! Video quality adaptation: picks a rung of the resolution ladder and a frame rate from the
//! loss and RTT measured over each interval (1 s).
//!
//! Rules, evaluated once per interval:
//! - loss above `loss_down` (10 %): one rung down, at once;
//! - loss below `loss_up` (2 %) and RTT not above `rtt_high`: a *good* interval. After
//!   `good_intervals_to_step_up` (3) good intervals in a row, one rung up. Any other interval
//!   resets the count, so a link hovering around 2 % never climbs and never flaps;
//! - RTT above `rtt_high` (300 ms): frame rate down by `fps_step` (5), not below `min_fps`;
//!   RTT below `rtt_low` (120 ms): frame rate up by `fps_step`, up to the rung's maximum.
//!
//! A step up that is followed by a step down within twice the required streak (the higher rung
//! did not hold) doubles the streak needed for the next step up, up to eight times: on a link
//! whose capacity sits between two rungs the controller probes upward ever less often instead of
//! oscillating. A step up that holds for four times the base streak restores the base.

use std::time::{Duration, Instant};

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QualityLevel {
    /// Display name, e.g. "480p".
    pub name: &'static str,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
    /// Highest frame rate at this rung.
    pub max_fps: u8,
    /// JPEG quality factor (1-100).
    pub jpeg_quality: u8,
}

/// The quality ladder, smallest first.
pub const LADDER: [QualityLevel; 4] = [
    QualityLevel { name: "144p", width: 256, height: 144, max_fps: 5, jpeg_quality: 40 },
    QualityLevel { name: "240p", width: 426, height: 240, max_fps: 10, jpeg_quality: 50 },
    QualityLevel { name: "360p", width: 640, height: 360, max_fps: 15, jpeg_quality: 60 },
    QualityLevel { name: "480p", width: 854, height: 480, max_fps: 20, jpeg_quality: 70 },
];

/// The screen stream's ladder, smallest first: sharpness before frame rate. Each rung's size
/// is a box the shared picture is scaled to fit, keeping its aspect ratio.
pub const SCREEN_LADDER: [QualityLevel; 4] = [
    QualityLevel { name: "720p 2 fps", width: 1280, height: 720, max_fps: 2, jpeg_quality: 75 },
    QualityLevel { name: "720p", width: 1280, height: 720, max_fps: 5, jpeg_quality: 85 },
    QualityLevel { name: "1080p 5 fps", width: 1920, height: 1080, max_fps: 5, jpeg_quality: 90 },
    QualityLevel { name: "1080p", width: 1920, height: 1080, max_fps: 10, jpeg_quality: 90 },
];

/// Tuning of [`QualityController`].
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// The rungs to choose from, smallest first (not empty).
    pub ladder: &'static [QualityLevel],
    /// Evaluation period; calls closer together are ignored.
    pub interval: Duration,
    /// Loss fraction above which the level steps down.
    pub loss_down: f64,
    /// Loss fraction below which an interval counts as good.
    pub loss_up: f64,
    /// RTT above which the frame rate is lowered.
    pub rtt_high: Duration,
    /// RTT below which the frame rate is raised.
    pub rtt_low: Duration,
    /// Good intervals in a row needed before a step up.
    pub good_intervals_to_step_up: u32,
    /// Ladder index to start at (clamped to the ladder).
    pub start_level: usize,
    /// Lowest frame rate the RTT rule may choose.
    pub min_fps: u8,
    /// Frame-rate change per interval of the RTT rule.
    pub fps_step: u8,
}

impl QualityConfig {
    /// The screen stream's tuning: [`SCREEN_LADDER`], starting at its top, and frame-rate
    /// steps that suit its 2 to 10 fps.
    pub fn screen() -> Self {
        Self {
            ladder: &SCREEN_LADDER,
            start_level: SCREEN_LADDER.len() - 1,
            min_fps: 2,
            fps_step: 2,
            ..Self::default()
        }
    }
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            ladder: &LADDER,
            interval: Duration::from_secs(1),
            loss_down: 0.10,
            loss_up: 0.02,
            rtt_high: Duration::from_millis(300),
            rtt_low: Duration::from_millis(120),
            good_intervals_to_step_up: 3,
            start_level: LADDER.len() - 1,
            min_fps: 5,
            fps_step: 5,
        }
    }
}

/// What was measured over the last interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityInput {
    /// Loss fraction, 0.0-1.0.
    pub loss: f64,
    /// Round-trip time, if measured.
    pub rtt: Option<Duration>,
}

/// What the sender should produce.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualitySetting {
    /// Index into the ladder ([`LADDER`] or [`SCREEN_LADDER`]).
    pub level: usize,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
    /// Frames per second.
    pub fps: u8,
    /// JPEG quality factor.
    pub jpeg_quality: u8,
}

/// Chooses the video quality from per-interval measurements. Sans-IO: call
/// [`on_interval`](Self::on_interval) once per `interval`.
#[derive(Debug, Clone)]
pub struct QualityController {
    /// Tuning.
    config: QualityConfig,
    /// Current rung.
    level: usize,
    /// Current frame rate.
    fps: u8,
    /// Good intervals in a row.
    good_streak: u32,
    /// Good intervals needed for the next step up (base, doubled after failed step ups).
    required_good: u32,
    /// Intervals since the last step up, while it is still on probation.
    since_step_up: Option<u32>,
    /// When the last evaluation happened.
    last_eval: Instant,
    /// Number of level changes so far.
    level_changes: u32,
}

impl QualityController {
    /// A controller at `start_level`, full frame rate, whose first evaluation is one interval
    /// after `now`.
    pub fn new(config: QualityConfig, now: Instant) -> Self {
        assert!(!config.ladder.is_empty(), "a quality ladder has at least one rung");
        let level = config.start_level.min(config.ladder.len() - 1);
        let required_good = config.good_intervals_to_step_up.max(1);
        Self {
            fps: config.ladder[level].max_fps,
            level,
            good_streak: 0,
            required_good,
            since_step_up: None,
            last_eval: now,
            level_changes: 0,
            config,
        }
    }

    /// Evaluates one interval's measurements; returns the new setting if it changed. Calls
    /// less than `interval` after the previous evaluation are ignored (return `None`).
    pub fn on_interval(&mut self, now: Instant, input: QualityInput) -> Option<QualitySetting> {
        if now.saturating_duration_since(self.last_eval) < self.config.interval {
            return None;
        }
        self.last_eval = now;
        let before = self.setting();
        let base = self.config.good_intervals_to_step_up.max(1);
        let loss = if input.loss.is_nan() { 0.0 } else { input.loss.clamp(0.0, 1.0) };
        let rtt_high = input.rtt.is_some_and(|r| r > self.config.rtt_high);
        let rtt_low = input.rtt.is_some_and(|r| r < self.config.rtt_low);

        if let Some(n) = self.since_step_up.as_mut() {
            *n += 1;
            if *n >= base.saturating_mul(4) {
                // The last step up held: probing may go back to its normal pace.
                self.since_step_up = None;
                self.required_good = base;
            }
        }

        if loss > self.config.loss_down {
            self.good_streak = 0;
            if self.level > 0 {
                if self.since_step_up.is_some_and(|n| n <= base.saturating_mul(2)) {
                    self.required_good = self.required_good.saturating_mul(2).min(base.saturating_mul(8));
                }
                self.since_step_up = None;
                self.level -= 1;
                self.level_changes += 1;
                self.fps = self.fps.min(self.config.ladder[self.level].max_fps);
            }
        } else {
            if loss < self.config.loss_up && !rtt_high {
                self.good_streak += 1;
            } else {
                self.good_streak = 0;
            }
            if self.good_streak >= self.required_good && self.level + 1 < self.config.ladder.len() {
                let was_full_rate = self.fps >= self.config.ladder[self.level].max_fps;
                self.level += 1;
                self.level_changes += 1;
                self.good_streak = 0;
                self.since_step_up = Some(0);
                if was_full_rate {
                    self.fps = self.config.ladder[self.level].max_fps;
                }
            }
            if rtt_low {
                self.fps = self.fps.saturating_add(self.config.fps_step).min(self.config.ladder[self.level].max_fps);
            }
        }
        if rtt_high {
            let floor = self.config.min_fps.min(self.config.ladder[self.level].max_fps);
            self.fps = self.fps.saturating_sub(self.config.fps_step).max(floor);
        }

        let after = self.setting();
        (after != before).then_some(after)
    }

    /// The current setting.
    pub fn setting(&self) -> QualitySetting {
        let l = self.config.ladder[self.level];
        QualitySetting {
            level: self.level,
            width: l.width,
            height: l.height,
            fps: self.fps,
            jpeg_quality: l.jpeg_quality,
        }
    }

    /// Number of level (rung) changes so far; frame-rate changes are not counted.
    pub fn level_changes(&self) -> u32 {
        self.level_changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Feeds `inputs` one second apart starting one second after `*t`, returning the level
    /// after each.
    fn run(c: &mut QualityController, t: &mut Instant, inputs: &[(f64, u64)]) -> Vec<usize> {
        inputs
            .iter()
            .map(|&(loss, rtt)| {
                *t += ms(1000);
                c.on_interval(*t, QualityInput { loss, rtt: Some(ms(rtt)) });
                c.setting().level
            })
            .collect()
    }

    #[test]
    fn the_screen_ladder_gives_up_frame_rate_before_sharpness() {
        let mut t = Instant::now();
        let mut c = QualityController::new(QualityConfig::screen(), t);
        assert_eq!((c.setting().width, c.setting().fps, c.setting().jpeg_quality), (1920, 10, 90));
        let levels = run(&mut c, &mut t, &[(0.15, 50), (0.15, 50), (0.15, 50), (0.15, 50)]);
        assert_eq!(levels, [2, 1, 0, 0]);
        let s = c.setting();
        assert_eq!((s.width, s.height, s.fps, s.jpeg_quality), (1280, 720, 2, 75));
        // The first step down keeps 1080p and halves the frame rate.
        let mut c = QualityController::new(QualityConfig::screen(), t);
        run(&mut c, &mut t, &[(0.15, 50)]);
        assert_eq!((c.setting().width, c.setting().fps), (1920, 5));
    }

    #[test]
    fn ladder_matches_the_spec() {
        let s: Vec<_> = LADDER.iter().map(|l| (l.name, l.width, l.height, l.max_fps, l.jpeg_quality)).collect();
        assert_eq!(
            s,
            [
                ("144p", 256, 144, 5, 40),
                ("240p", 426, 240, 10, 50),
                ("360p", 640, 360, 15, 60),
                ("480p", 854, 480, 20, 70)
            ]
        );
    }

    #[test]
    fn steps_down_within_one_interval_and_up_only_after_sustained_good_intervals() {
        let t0 = Instant::now();
        let mut c = QualityController::new(QualityConfig::default(), t0);
        assert_eq!(c.setting(), QualitySetting { level: 3, width: 854, height: 480, fps: 20, jpeg_quality: 70 });
        // 12 % loss: one rung down per interval, starting with the first.
        let changed = c.on_interval(t0 + ms(1000), QualityInput { loss: 0.12, rtt: Some(ms(50)) });
        assert_eq!(changed, Some(QualitySetting { level: 2, width: 640, height: 360, fps: 15, jpeg_quality: 60 }));
        let mut t = t0 + ms(1000);
        assert_eq!(run(&mut c, &mut t, &[(0.12, 50); 4]), [1, 0, 0, 0]);
        assert_eq!(c.setting().fps, 5);
        // Clean: up one rung per 3 good intervals.
        assert_eq!(run(&mut c, &mut t, &[(0.0, 50); 9]), [0, 0, 1, 1, 1, 2, 2, 2, 3]);
        assert_eq!(c.setting().fps, 20);
        assert_eq!(c.level_changes(), 6);
        // Moderate loss (2-10 %) holds.
        assert_eq!(run(&mut c, &mut t, &[(0.05, 50); 10]), [3; 10]);
        // Calls closer than the interval are ignored.
        assert_eq!(c.on_interval(t + ms(500), QualityInput { loss: 0.5, rtt: None }), None);
        assert_eq!(c.setting().level, 3);
        assert!(c.on_interval(t + ms(1000), QualityInput { loss: 0.5, rtt: None }).is_some());
    }

    #[test]
    fn does_not_flap_under_alternating_1_and_3_percent_loss() {
        let t0 = Instant::now();
        let config = QualityConfig { start_level: 1, ..QualityConfig::default() };
        let mut c = QualityController::new(config, t0);
        let mut t = t0;
        let inputs: Vec<(f64, u64)> = (0..60).map(|i| (if i % 2 == 0 { 0.01 } else { 0.03 }, 50)).collect();
        assert_eq!(run(&mut c, &mut t, &inputs), [1; 60]);
        assert_eq!(c.level_changes(), 0);
    }

    #[test]
    fn a_rung_that_does_not_hold_is_probed_ever_less_often() {
        let t0 = Instant::now();
        let config = QualityConfig { start_level: 2, ..QualityConfig::default() };
        let mut c = QualityController::new(config, t0);
        let mut t = t0;
        // Capacity sits between 360p and 480p: 480p loses 15 %, 360p is clean.
        let mut levels = Vec::new();
        for _ in 0..120 {
            t += ms(1000);
            let loss = if c.setting().level == 3 { 0.15 } else { 0.0 };
            c.on_interval(t, QualityInput { loss, rtt: Some(ms(50)) });
            levels.push(c.setting().level);
        }
        let ups = levels.windows(2).filter(|w| w[1] > w[0]).count();
        // Without the backoff: one probe every 4 intervals (30). With it: 3, 6, 12, then every
        // 24 + 1 intervals.
        assert!(ups <= 7, "{ups} probes: {levels:?}");
        assert!(ups >= 3);
        assert!(levels.iter().all(|&l| l >= 2));
    }

    #[test]
    fn rtt_moves_the_frame_rate_within_the_rung() {
        let t0 = Instant::now();
        let mut c = QualityController::new(QualityConfig::default(), t0);
        let mut t = t0;
        let mut fps = Vec::new();
        for rtt in [350, 350, 350, 350, 350, 200, 100, 100, 100, 100] {
            t += ms(1000);
            c.on_interval(t, QualityInput { loss: 0.0, rtt: Some(ms(rtt)) });
            fps.push(c.setting().fps);
        }
        assert_eq!(fps, [15, 10, 5, 5, 5, 5, 10, 15, 20, 20]);
        assert_eq!(c.level_changes(), 0, "RTT alone never changes the rung");
        // Between the thresholds, or unknown RTT: unchanged.
        t += ms(1000);
        assert_eq!(c.on_interval(t, QualityInput { loss: 0.0, rtt: None }), None);
        // Stepping down keeps a reduced rate within the new rung's maximum.
        for _ in 0..2 {
            t += ms(1000);
            c.on_interval(t, QualityInput { loss: 0.0, rtt: Some(ms(400)) });
        }
        assert_eq!(c.setting().fps, 10);
        t += ms(1000);
        let s = c.on_interval(t, QualityInput { loss: 0.2, rtt: Some(ms(200)) }).unwrap();
        assert_eq!((s.level, s.fps), (2, 10));
        // 144p never goes under its 5 fps even with a high RTT.
        for _ in 0..5 {
            t += ms(1000);
            c.on_interval(t, QualityInput { loss: 0.2, rtt: Some(ms(400)) });
        }
        assert_eq!((c.setting().level, c.setting().fps), (0, 5));
    }
}
