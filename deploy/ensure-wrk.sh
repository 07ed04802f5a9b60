#!/usr/bin/env bash
# Make sure wrk is installed, for the ingest benchmark's closed-loop load
# (tests/benchmarks/wrkload.py). Present: nothing to do. Absent and we are root with
# apt-get: install Debian's package. Otherwise, or when that fails: say so and exit 0,
# since the benchmark then falls back to its Python load generator (tests/benchmarks/loadgen.py).
set -uo pipefail

if command -v wrk >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "wrk is not installed: installing it with apt-get..."
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq wrk >/dev/null && command -v wrk >/dev/null 2>&1; then
    echo "wrk is installed: $(wrk -v 2>&1 | head -n 1)"
    exit 0
  fi
  echo "apt-get could not install wrk." >&2
fi

echo "wrk is not installed; the ingest benchmark uses its Python load generator instead," >&2
echo "which competes with the receiver for CPU. To use wrk: sudo apt-get install wrk." >&2
exit 0
