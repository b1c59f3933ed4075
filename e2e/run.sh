#!/usr/bin/env bash
# Builds what the end-to-end tests of the desktop app need and runs them under Xvfb:
# the UI (ui/dist, embedded in the app), parlor-app, parlor-bot and relay-server (debug), and
# tauri-driver (cargo install, v2) in front of Debian's WebKitWebDriver (package webkit2gtk-driver).
#
# Usage: bash e2e/run.sh            the end-to-end tests (e2e/app.e2e.mjs, e2e/host.e2e.mjs,
#                                   e2e/screen.e2e.mjs, e2e/reconnect.e2e.mjs)
#        bash e2e/run.sh package    the desktop packages: `tauri build --debug --bundles deb,rpm`
#                                   from the same build, then e2e/package.e2e.mjs installs the
#                                   .deb, starts it from its desktop entry and removes it (root or
#                                   sudo; a private D-Bus session for the single-instance check)
#        bash e2e/run.sh bench      the frame benchmark (e2e/bench-frames.mjs, release build)
# With UPDATE_DOCS_SCREENSHOTS=1 the test also refreshes docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

what="${1:-test}"
profile=debug
cargo_flags=()
if [ "$what" = bench ]; then
  profile=release
  cargo_flags=(--release)
fi

for tool in xvfb-run /usr/bin/WebKitWebDriver openbox xmessage xwininfo; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps.sh" >&2; exit 1; }
done

if ! command -v tauri-driver >/dev/null; then
  echo "==> installing tauri-driver (v2)"
  cargo install tauri-driver --version '^2' --locked
fi

if [ ! -f ui/dist/index.html ] || [ -n "$(find ui/src ui/index.html -newer ui/dist/index.html -print -quit)" ]; then
  echo "==> building the UI"
  npm run build
fi

echo "==> building parlor-app, parlor-bot and relay-server ($profile)"
cargo build "${cargo_flags[@]}" -p parlor-app -p client-core -p relay-server --bin parlor-app --bin parlor-bot --bin relay-server

export PARLOR_PROFILE="$profile"
# A screen larger than the 1280x720 window, 24-bit colour for meaningful pixels.
xvfb=(xvfb-run -a --server-args="-screen 0 1600x900x24 -nolisten tcp")
if [ "$what" = bench ]; then
  exec "${xvfb[@]}" node e2e/bench-frames.mjs "${@:2}"
elif [ "$what" = package ]; then
  echo "==> bundling the .deb and the .rpm (debug, from the build above)"
  npx tauri build --debug --bundles deb,rpm
  exec dbus-run-session -- "${xvfb[@]}" node e2e/package.e2e.mjs
else
  "${xvfb[@]}" node e2e/app.e2e.mjs
  "${xvfb[@]}" node e2e/host.e2e.mjs
  "${xvfb[@]}" node e2e/screen.e2e.mjs
  exec "${xvfb[@]}" node e2e/reconnect.e2e.mjs
fi
