#!/usr/bin/env bash
# Installs what is missing, then runs every check and test Parlor has. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# A one-shot run gains nothing from incremental caches, which would take gigabytes of disk.
export CARGO_INCREMENTAL=0
scripts/install-deps.sh

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "UI type check and build (the Tauri app embeds ui/dist)"
npm run build

step "release configuration: GitHub workflows, tauri.conf.json and the macOS plists against their schemas"
bash scripts/check-release-config.sh

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "Rust tests"
cargo test --workspace

step "fuzz targets: run over seeds and mutations on stable, libFuzzer build where cargo-fuzz exists"
cargo test --manifest-path fuzz/Cargo.toml
scripts/build-fuzz.sh

step "UI unit tests (vitest)"
npm run test:unit

step "UI walk-through in Chromium against the mocked shell (Playwright)"
npm run test:e2e-ui

step "Desktop app end to end: the built app under Xvfb over WebDriver, with a parlor-bot"
bash e2e/run.sh

step "Desktop app packages: .deb and .rpm built; the .deb installed, started from its desktop entry with a link, removed"
bash e2e/run.sh package

echo
echo "All tests passed."
