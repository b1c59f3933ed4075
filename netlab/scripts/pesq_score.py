#!/usr/bin/env python3
"""Scores received speech against its reference with PESQ wideband (ITU-T P.862.2).

The sender loops the reference, so the recording holds consecutive copies of it, shifted by
the call's delay and by whatever the receiver's jitter buffer inserted or dropped. Each copy is
found by cross-correlation near where it is expected, cut out at the reference's length and
scored on its own.

Usage: pesq_score.py REF.wav DEGRADED.wav [--skip SECONDS] [--max-loops N]
Prints one JSON object: {"scores": [...], "offsets_s": [...], "mean": x, "min": y}.
"""
import argparse
import json
import sys

import numpy as np
from pesq import pesq
from scipy.io import wavfile
from scipy.signal import correlate

RATE = 16000


def load(path):
    rate, data = wavfile.read(path)
    if rate != RATE:
        sys.exit(f"{path}: sample rate {rate}, expected {RATE}")
    data = data.astype(np.float64)
    if data.ndim > 1:
        data = data.mean(axis=1)
    return data


def best_lag(deg, ref, lo, hi):
    """Lag in [lo, hi) where ref lines up best with deg (normalized cross-correlation)."""
    lo = max(lo, 0)
    hi = min(hi, len(deg) - len(ref))
    if hi <= lo:
        return None
    seg = deg[lo:hi + len(ref)]
    corr = correlate(seg, ref, mode="valid", method="fft")
    # Normalize by the energy under the window so loud silence-free stretches do not win.
    csum = np.concatenate(([0.0], np.cumsum(seg ** 2)))
    energy = np.sqrt(np.maximum(csum[len(ref):] - csum[:-len(ref)], 0.0)) + 1e-9
    score = corr / energy
    return lo + int(np.argmax(score))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ref")
    ap.add_argument("deg")
    ap.add_argument("--skip", type=float, default=1.0, help="seconds of the recording to ignore (join, warm-up)")
    ap.add_argument("--max-loops", type=int, default=100)
    args = ap.parse_args()
    ref = load(args.ref)
    deg = load(args.deg)
    n = len(ref)
    start = int(args.skip * RATE)
    first = best_lag(deg, ref, start, start + n)
    if first is None:
        sys.exit(f"{args.deg}: shorter than --skip plus two copies of the reference")
    scores, offsets = [], []
    lag = first
    while lag is not None and len(scores) < args.max_loops and lag + n <= len(deg):
        seg = deg[lag:lag + n]
        if np.max(np.abs(seg)) < 1.0:
            break  # the call had ended: only silence left
        scores.append(float(pesq(RATE, ref, seg, "wb")))
        offsets.append(lag / RATE)
        # The next copy starts one reference length later, give or take what the jitter
        # buffer inserted or dropped.
        slack = int(0.25 * RATE)
        lag = best_lag(deg, ref, lag + n - slack, lag + n + slack)
    out = {
        "scores": scores,
        "offsets_s": offsets,
        "mean": float(np.mean(scores)) if scores else None,
        "min": float(np.min(scores)) if scores else None,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
