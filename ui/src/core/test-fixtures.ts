/** Shared builders for the unit tests (never imported by the app). */
import type { StatsSnapshot } from "./types";

/** A plausible stats sample at `timestampMs`, with fields overridden by `over`. */
export function sample(timestampMs: number, over: Partial<StatsSnapshot> = {}): StatsSnapshot {
  return {
    timestampMs,
    rttMs: 20,
    loss: 0.01,
    jitterMs: 4,
    fpsSent: 20,
    fpsReceived: 19,
    bitrateInKbps: 800,
    bitrateOutKbps: 600,
    cwndBytes: null,
    qualityLevel: 2,
    participants: [],
    micLevelDbfs: -30,
    echoCancellation: true,
    noiseSuppression: true,
    aecDelayMs: 120,
    erleDb: 30,
    screenOut: null,
    ...over,
  };
}

/** The last element of a list (the UI targets ES2021, which has no Array.prototype.at). */
export function last<T>(xs: readonly T[]): T | undefined {
  return xs[xs.length - 1];
}
