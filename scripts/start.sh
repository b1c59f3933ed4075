#!/usr/bin/env bash
# Installs what is missing, builds Parlor's desktop app (release) and starts it.
# "New meeting" hosts the meeting on a relay embedded in the app, so nothing else needs
# to be set up: others on the LAN join with the code and the address the app shows.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-deps.sh
npm run build
cargo build --release -p parlor-app
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No display found: starting Parlor under Xvfb (headless)."
  exec xvfb-run -a target/release/parlor-app "$@"
fi
exec target/release/parlor-app "$@"
