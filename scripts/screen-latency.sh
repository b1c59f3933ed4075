#!/usr/bin/env bash
# Screen sharing's join and change latency with release builds on loopback (BENCHMARKS.md,
# "Screen sharing"): a relay; a bot that creates the meeting and shares the synthetic slides;
# a receiver from the start (its summary gives the capture-to-shown latency of every update
# and the PSNR of every picture); then, 10 s in, five late joiners one after another, each
# printing how long after JOINED the whole screen was first shown.
#   scripts/screen-latency.sh [output directory, default lab-out/screen-latency]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p relay-server --bin relay-server -p client-core --bin parlor-bot
bin="${CARGO_TARGET_DIR:-target}/release"
out="${1:-lab-out/screen-latency}"
rm -rf "$out" && mkdir -p "$out"
relay_tcp=127.0.0.1:5600
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$bin/relay-server" --host 127.0.0.1 --tcp-port 5600 --udp-port 5601 >"$out/relay.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/5600) 2>/dev/null && break
  sleep 0.1
done
"$bin/parlor-bot" create --relay "$relay_tcp" --name Slides --auto-admit --screen synthetic --duration 45s \
  >"$out/sharer.out" 2>"$out/sharer.err" &
pids+=($!)
code=""
for _ in $(seq 100); do
  code=$(awk '/^MEETING_CODE/{print $2}' "$out/sharer.out")
  [ -n "$code" ] && break
  sleep 0.1
done
[ -n "$code" ] || { echo "the sharer never created a meeting; see $out/sharer.err" >&2; exit 1; }
"$bin/parlor-bot" join "$code" --relay "$relay_tcp" --name Early --screen-check --duration 38s \
  >"$out/early.out" 2>"$out/early.err" &
early=$!
pids+=($early)
sleep 10
for k in 1 2 3 4 5; do
  "$bin/parlor-bot" join "$code" --relay "$relay_tcp" --name "Late$k" --screen-check --duration 4s \
    >"$out/late$k.out" 2>"$out/late$k.err"
done
wait "$early"
echo "late joiners, whole screen first shown after JOINED:"
grep -h '^SCREEN_SHOWN' "$out"/late*.out
echo "the receiver from the start, over the share:"
grep -h '^SUMMARY_STREAM' "$out/early.out" | grep 'screen_size=' | tr ' ' '\n' | grep -E '^screen_'
