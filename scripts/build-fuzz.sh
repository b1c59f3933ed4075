#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (one per decoder of untrusted input) with cargo-fuzz.
#
# cargo-fuzz needs a nightly toolchain. When it or nightly is missing this prints
# "skipped: <reason>" and exits 0, so it is safe to call from any CI script; the target
# bodies are still checked on stable by `cargo test --manifest-path fuzz/Cargo.toml`.
#
#   scripts/build-fuzz.sh                 # build all targets
#   FUZZ_SECONDS=30 scripts/build-fuzz.sh # ...then run each for 30 s (0 = build only)
#
# Artifacts go to $CARGO_TARGET_DIR/fuzz if set, else fuzz/target.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo "skipped: $*"
  exit 0
}

command -v cargo >/dev/null || skip "cargo is not installed"
cargo --version >/dev/null 2>&1 || skip "cargo does not run: $(cargo --version 2>&1 | head -n 1)"
cargo fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz is not installed (cargo install cargo-fuzz)"
command -v rustup >/dev/null || skip "rustup is not installed, so no nightly toolchain can be selected"
cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain (rustup toolchain install nightly)"

target_dir="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}"
target_dir="${target_dir:-fuzz/target}"
seconds="${FUZZ_SECONDS:-0}"

targets=$(cargo fuzz list)
echo "==> cargo +nightly fuzz build ($(echo $targets | tr '\n' ' '))"
cargo +nightly fuzz build --target-dir "$target_dir"

if [ "$seconds" -gt 0 ]; then
  for t in $targets; do
    echo "==> fuzzing $t for ${seconds}s"
    mkdir -p "fuzz/corpus/$t"
    cargo +nightly fuzz run --target-dir "$target_dir" "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1
  done
fi
echo "fuzz targets built: $(echo $targets | tr '\n' ' ')"
