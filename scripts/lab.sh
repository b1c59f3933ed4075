#!/usr/bin/env bash
# Runs the network lab's scenarios (the long versions, i.e. the benchmarks in BENCHMARKS.md)
# with release builds, writing each report and plot under lab-out/<scenario>/.
#   scripts/lab.sh                      # all five
#   scripts/lab.sh loss-step thinning   # some
# bandwidth-cut and file-upload need root (network namespaces and tc).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p relay-server --bin relay-server -p client-core --bin parlor-bot -p netlab --bin parlor-lab
bin="${CARGO_TARGET_DIR:-target}/release"
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  scenarios=(loss-step bandwidth-cut file-upload thinning audio-pesq)
fi
for s in "${scenarios[@]}"; do
  echo "==> $s"
  "$bin/parlor-lab" run "$s" --out "lab-out/$s"
done
