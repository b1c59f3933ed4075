#!/usr/bin/env bash
# Checks the release configuration that cannot run on this machine, as far as it can be checked
# here: the GitHub workflows against the GitHub Actions schema (check-jsonschema's vendored
# copy), tauri.conf.json against the Tauri CLI's own schema, and the macOS Info.plist and
# entitlements as property lists with the keys the camera and microphone need.
# check-jsonschema comes from PyPI into target/tools (created once).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/tools/check-jsonschema
if [ ! -x "$venv/bin/check-jsonschema" ]; then
  echo "==> installing check-jsonschema into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'check-jsonschema>=0.33,<1'
fi

"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
# The schema's own patterns are ECMAScript regexes; Python's dialect reads them.
"$venv/bin/check-jsonschema" --regex-variant python --schemafile node_modules/@tauri-apps/cli/config.schema.json src-tauri/tauri.conf.json

python3 - <<'PY'
import plistlib
info = plistlib.load(open("src-tauri/macos/Info.plist", "rb"))
for key in ("NSCameraUsageDescription", "NSMicrophoneUsageDescription"):
    assert info.get(key), f"Info.plist lacks {key}"
entitlements = plistlib.load(open("src-tauri/macos/Entitlements.plist", "rb"))
for key in ("com.apple.security.device.camera", "com.apple.security.device.audio-input"):
    assert entitlements.get(key) is True, f"Entitlements.plist lacks {key}"
print("ok -- macOS Info.plist and entitlements")
PY
