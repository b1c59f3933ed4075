import { describe, expect, it } from "vitest";
import { chartSeries, connectionQuality, HISTORY_MAX_SAMPLES, HISTORY_WINDOW_MS, pushSample, qualityWords, voiceWords } from "./stats";
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
