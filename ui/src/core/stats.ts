/**
 * Stats history for the charts (the last 60 seconds), the connection-quality verdict shown
 * as signal bars on each tile, and the words and figures of the panel's voice and screen lines.
 */
import { formatPercent } from "./format";
import type { ScreenInStats, ScreenOutStats, StatsSnapshot } from "./types";

/** How much history the charts show. */
export const HISTORY_WINDOW_MS = 60_000;
/** Hard cap on stored samples, whatever the sample rate (the shell sends one a second). */
export const HISTORY_MAX_SAMPLES = 240;

/**
 * Appends a sample and drops what is older than {@link HISTORY_WINDOW_MS} before the newest
 * sample or beyond {@link HISTORY_MAX_SAMPLES}. Samples that go back in time (a clock step, a
 * duplicate) replace the history from that point, so x values stay strictly increasing as uPlot
 * requires. Returns a new array; the input is not modified.
 */
export function pushSample(history: readonly StatsSnapshot[], sample: StatsSnapshot): StatsSnapshot[] {
  const kept = history.filter((s) => s.timestampMs < sample.timestampMs);
  kept.push(sample);
  const cutoff = sample.timestampMs - HISTORY_WINDOW_MS;
  const fresh = kept.filter((s) => s.timestampMs >= cutoff);
  return fresh.length > HISTORY_MAX_SAMPLES ? fresh.slice(fresh.length - HISTORY_MAX_SAMPLES) : fresh;
}

/** The series each chart plots, as uPlot's column arrays (x in seconds since the epoch). */
export interface ChartSeries {
  t: number[];
  rttMs: number[];
  lossPct: number[];
  jitterMs: number[];
  fpsSent: number[];
  fpsReceived: number[];
  bitrateInKbps: number[];
  bitrateOutKbps: number[];
  /** Null where no transfer ran, which uPlot draws as a gap. */
  cwndKB: Array<number | null>;
}

/** Splits the history into one array per plotted quantity. */
export function chartSeries(history: readonly StatsSnapshot[]): ChartSeries {
  return {
    t: history.map((s) => s.timestampMs / 1000),
    rttMs: history.map((s) => s.rttMs),
    lossPct: history.map((s) => s.loss * 100),
    jitterMs: history.map((s) => s.jitterMs),
    fpsSent: history.map((s) => s.fpsSent),
    fpsReceived: history.map((s) => s.fpsReceived),
    bitrateInKbps: history.map((s) => s.bitrateInKbps),
    bitrateOutKbps: history.map((s) => s.bitrateOutKbps),
    cwndKB: history.map((s) => (s.cwndBytes === null ? null : s.cwndBytes / 1024)),
  };
}

/** Connection quality, as the signal-bars icon shows it. */
export type Quality = "good" | "fair" | "poor" | "unknown";

/**
 * The verdict from loss and delay: good below 2 % loss and 150 ms, poor from 10 % loss or
 * 400 ms, fair in between. Jitter counts as delay, since the jitter buffer adds about that much.
 */
export function connectionQuality(loss: number | null, delayMs: number | null): Quality {
  if (loss === null || delayMs === null || !Number.isFinite(loss) || !Number.isFinite(delayMs)) return "unknown";
  if (loss >= 0.1 || delayMs >= 400) return "poor";
  if (loss >= 0.02 || delayMs >= 150) return "fair";
  return "good";
}

/** Words for the tooltip of the signal-bars icon. */
export function qualityWords(q: Quality): string {
  switch (q) {
    case "good":
      return "Connection is good";
    case "fair":
      return "Connection is unstable";
    case "poor":
      return "Connection is poor";
    case "unknown":
      return "Connection quality not measured yet";
  }
}

/** What the voice processing does to the microphone, in words for the stats panel: which
 * stages run, and the echo canceller's own estimates once it has them. */
export function voiceWords(s: StatsSnapshot): string {
  const parts: string[] = [];
  if (s.echoCancellation) {
    const estimates = [
      s.erleDb !== null ? `${Math.round(s.erleDb)} dB of echo removed` : null,
      s.aecDelayMs !== null ? `echo delay ${s.aecDelayMs} ms` : null,
    ].filter((x): x is string => x !== null);
    parts.push(estimates.length ? `Echo cancellation on (${estimates.join(", ")})` : "Echo cancellation on");
  } else {
    parts.push("Echo cancellation off");
  }
  parts.push(s.noiseSuppression ? "noise cancellation on" : "noise cancellation off");
  return parts.join(" · ");
}

/** "1920×1080", or "–" before the first picture. */
export function formatResolution(width: number, height: number): string {
  return width > 0 && height > 0 ? `${width}×${height}` : "–";
}

/** This app's shared screen in words for the stats panel: what is sent, how often, at what
 * bitrate, how much of the picture changes and what encoding costs. */
export function screenOutWords(out: ScreenOutStats): string {
  return [
    `${formatResolution(out.width, out.height)} (${out.quality})`,
    `${Math.round(out.fps)} fps`,
    `${Math.round(out.bitrateKbps)} kbps`,
    `${formatPercent(out.changedFraction)} of the picture changing`,
    `encoded in ${Math.round(out.encodeMs)} ms`,
  ].join(" · ");
}

/** The cells of a received presentation's row: resolution, slices/s, kbps, loss, stale tiles. */
export function screenInCells(s: ScreenInStats): string[] {
  const stale = s.staleTiles === 0 ? "0" : `${s.staleTiles} for ${Math.round(s.staleMs)} ms`;
  return [formatResolution(s.width, s.height), String(Math.round(s.slicesPerSecond)), String(Math.round(s.bitrateKbps)), formatPercent(s.loss), stale];
}
