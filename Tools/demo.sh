#!/usr/bin/env bash
# The demo: installs what is missing, builds the release binary, checks and serves the
# example zones in Zones/ on 127.0.0.1 and ::1 (port $PORT, default 5300). Ctrl-C stops it.
#   dig @127.0.0.1 -p 5300 www.gslb.example.com
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-5300}"
bash Tools/setup.sh
swift build -c release --product meridian
.build/release/meridian check Zones
echo "demo: serving Zones/ on 127.0.0.1:$PORT and [::1]:$PORT; try: dig @127.0.0.1 -p $PORT www.gslb.example.com"
exec .build/release/meridian serve --zones Zones --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" \
    --identity meridian-demo --nsid meridian-demo
