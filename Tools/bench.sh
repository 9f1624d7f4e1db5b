#!/usr/bin/env bash
# Builds the release binary and runs the dnsperf benchmark against Meridian and the reference
# servers (gdnsd, NSD) in the same run. Settings: see Tools/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/setup.sh
swift build -c release --product meridian
exec python3 Tools/bench.py
