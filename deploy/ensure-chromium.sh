#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium, for the console's browser test
# (tests/integration/test_console.py). Present: nothing to do. Absent and we are root with
# apt-get: install it. Otherwise: say what to do and exit 1.
# (`npx playwright install` cannot download its own browser here: use the distribution's.)
set -euo pipefail

chromium=/usr/bin/chromium

if [ -x "$chromium" ]; then
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is not installed: installing it with apt-get..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
  if [ ! -x "$chromium" ]; then
    echo "apt-get installed the chromium package, but $chromium is still missing." >&2
    exit 1
  fi
  echo "Chromium is installed: $("$chromium" --version 2>/dev/null || echo "$chromium")"
  exit 0
fi

echo "Chromium is not installed at $chromium; the console's browser test needs it." >&2
echo "Install it (Debian/Ubuntu: sudo apt-get install chromium), then run this again." >&2
exit 1
