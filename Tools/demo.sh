#!/usr/bin/env bash
# The demo: installs what is missing, builds the release binary, checks and serves the
# example zones and pools in Zones/ on 127.0.0.1 and ::1 (port $PORT, default 5300), with the
# admin state file $STATE (default /tmp/meridian-demo.state). Ctrl-C stops it.
#   dig @127.0.0.1 -p 5300 www.gslb.example.com +subnet=10.2.0.0/24
#   echo 'www/iad/* DOWN' > /tmp/meridian-demo.state     # fail iad over, no restart
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-5300}"
STATE="${STATE:-/tmp/meridian-demo.state}"
[ -e "$STATE" ] || echo "# POOL/SITE/MEMBER-glob  UP|DOWN|DRAIN  [weight%]" > "$STATE"
bash Tools/setup.sh
swift build -c release --product meridian
.build/release/meridian check Zones
cat <<MSG
demo: serving Zones/ on 127.0.0.1:$PORT and [::1]:$PORT, admin state file $STATE. Try:
  dig @127.0.0.1 -p $PORT www.gslb.example.com +subnet=10.2.0.0/24     # NA client: iad
  dig @127.0.0.1 -p $PORT www.gslb.example.com +subnet=10.3.0.0/24     # AS client: nrt
  echo 'www/iad/* DOWN' > $STATE                                      # iad fails over to fra
  .build/release/meridian explain www.gslb.example.com --client 10.2.0.1 --state $STATE
MSG
exec .build/release/meridian serve --zones Zones --state "$STATE" --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" \
    --identity meridian-demo --nsid meridian-demo
