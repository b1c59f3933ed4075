#!/usr/bin/env bash
# Installs what Parlor needs on Debian 12 / Ubuntu 24.04, skipping what is already there:
# the Debian packages (Tauri's WebKitGTK stack, ALSA/PulseAudio, camera headers, PipeWire and
# GBM for screen capture, Xvfb, a window manager (openbox: X11 lists windows to share through
# it), xmessage/xwininfo and the WebDriver for the end-to-end test, Chromium for the UI tests, espeak-ng/sox for the audio
# lab, rpm/D-Bus/desktop-file-utils for the package test, redis-server for the relay-cluster
# tests, which start their own on a Unix socket) and the npm packages of the UI. Safe
# to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config file curl
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
  libasound2-dev libclang-dev libv4l-dev libpipewire-0.3-dev libgbm-dev
  pulseaudio pulseaudio-utils libasound2-plugins
  xvfb openbox x11-utils webkit2gtk-driver chromium
  espeak-ng sox iproute2 python3-venv python3-dev
  rpm dbus-daemon desktop-file-utils
  redis-server
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "==> installing Rust (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || true)
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
  echo "Node.js 20 or newer is needed for the UI build (found: ${node_major:-none})." >&2
  echo "Install it (e.g. from https://nodejs.org or your distribution's backports) and run again." >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing npm packages"
  npm ci --no-audit --no-fund
fi
