import { describe, expect, it } from "vitest";
import { chartSeries, connectionQuality, formatResolution, HISTORY_MAX_SAMPLES, HISTORY_WINDOW_MS, pushSample, qualityWords, screenInCells, screenOutWords, voiceWords } from "./stats";
import { sample } from "./test-fixtures";
import type { StatsSnapshot } from "./types";

describe("stats history", () => {
  it("keeps only the last 60 seconds", () => {
    let h: StatsSnapshot[] = [];
    for (let t = 0; t <= 120_000; t += 1000) h = pushSample(h, sample(t));
    expect(h[0]!.timestampMs).toBe(120_000 - HISTORY_WINDOW_MS);
    expect(h[h.length - 1]!.timestampMs).toBe(120_000);
    expect(h).toHaveLength(61);
  });
  it("is bounded whatever the sample rate", () => {
    let h: StatsSnapshot[] = [];
    for (let t = 0; t < 10_000; t += 10) h = pushSample(h, sample(t));
    expect(h).toHaveLength(HISTORY_MAX_SAMPLES);
  });
  it("keeps x strictly increasing when time goes back", () => {
    let h: StatsSnapshot[] = [];
    for (const t of [1000, 2000, 3000]) h = pushSample(h, sample(t));
    h = pushSample(h, sample(2000, { rttMs: 99 }));
    expect(h.map((s) => s.timestampMs)).toEqual([1000, 2000]);
    expect(h[1]!.rttMs).toBe(99);
  });
  it("does not modify its input", () => {
    const h = [sample(1000)];
    pushSample(h, sample(2000));
    expect(h).toHaveLength(1);
  });
  it("splits into chart columns in chart units", () => {
    const s = chartSeries([sample(1000, { loss: 0.05, cwndBytes: 65536 }), sample(2000)]);
    expect(s.t).toEqual([1, 2]);
    expect(s.lossPct[0]).toBeCloseTo(5);
    expect(s.cwndKB).toEqual([64, null]);
    expect(s.fpsReceived).toEqual([19, 19]);
  });
});

describe("connection quality", () => {
  it("grades loss and delay", () => {
    expect(connectionQuality(0, 20)).toBe("good");
    expect(connectionQuality(0.03, 20)).toBe("fair");
    expect(connectionQuality(0.01, 200)).toBe("fair");
    expect(connectionQuality(0.12, 20)).toBe("poor");
    expect(connectionQuality(0, 500)).toBe("poor");
    expect(connectionQuality(null, 20)).toBe("unknown");
    expect(connectionQuality(Number.NaN, 20)).toBe("unknown");
    expect(qualityWords("poor")).toMatch(/poor/);
  });
});

describe("voice processing words", () => {
  it("names the stages and the canceller's estimates once it has them", () => {
    expect(voiceWords(sample(0, { erleDb: 31.4, aecDelayMs: 132 }))).toBe("Echo cancellation on (31 dB of echo removed, echo delay 132 ms) · noise cancellation on");
    expect(voiceWords(sample(0, { erleDb: null, aecDelayMs: null }))).toBe("Echo cancellation on · noise cancellation on");
    expect(voiceWords(sample(0, { echoCancellation: false, noiseSuppression: false, erleDb: null, aecDelayMs: null }))).toBe("Echo cancellation off · noise cancellation off");
  });
});

describe("screen stats", () => {
  it("says what this app's presentation sends", () => {
    const words = screenOutWords({ width: 1728, height: 1080, fps: 4.6, bitrateKbps: 812.4, changedFraction: 0.032, quality: "1080p", encodeMs: 13.6 });
    expect(words).toBe("1728×1080 (1080p) · 5 fps · 812 kbps · 3.2% of the picture changing · encoded in 14 ms");
  });
  it("fills a received presentation's row, with stale tiles and for how long", () => {
    const row = { width: 1920, height: 1080, slicesPerSecond: 14.2, bitrateKbps: 640.6, loss: 0.004, staleTiles: 0, staleMs: 0, refreshesRequested: 0 };
    expect(screenInCells(row)).toEqual(["1920×1080", "14", "641", "0.4%", "0"]);
    expect(screenInCells({ ...row, staleTiles: 120, staleMs: 350.2 })[4]).toBe("120 for 350 ms");
  });
  it("shows no resolution before the first picture", () => {
    expect(formatResolution(0, 0)).toBe("–");
    expect(formatResolution(1280, 720)).toBe("1280×720");
  });
});
