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
swift build -c release
.build/release/meridian check Zones

# Demo backends for the `web` pool: an HTTP server and a feedback agent on each of
# 127.0.0.11-13 (loopback only). They stop with the demo.
DEMO_DIR="$(mktemp -d /tmp/meridian-demo.XXXXXX)"
echo OK > "$DEMO_DIR/health"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DEMO_DIR"; }
trap cleanup EXIT INT TERM
for i in 1 2 3; do
  (cd "$DEMO_DIR" && exec python3 -m http.server 8081 --bind "127.0.0.1$i" >/dev/null 2>&1) &
  PIDS+=($!)
  echo "demo: backend web-$i http://127.0.0.1$i:8081/health (pid $!)"
  .build/release/meridian-agent --listen "127.0.0.1$i" --port 3333 --drain-file "$DEMO_DIR/drain-web-$i" >/dev/null 2>&1 &
  PIDS+=($!)
done
# Let the backends listen before the first round of checks (bounded: 5 s).
for _ in $(seq 1 50); do
  python3 -c 'import socket,sys; [socket.create_connection(("127.0.0.1%d" % i, 8081), 0.2).close() for i in (1,2,3)]' 2>/dev/null && break
  sleep 0.1
done
cat <<MSG
demo: serving Zones/ on 127.0.0.1:$PORT and [::1]:$PORT, admin state file $STATE. Try:
  dig @127.0.0.1 -p $PORT www.gslb.example.com +subnet=10.2.0.0/24     # NA client: iad
  dig @127.0.0.1 -p $PORT www.gslb.example.com +subnet=10.3.0.0/24     # AS client: nrt
  echo 'www/iad/* DOWN' > $STATE                                      # iad fails over to fra
  .build/release/meridian explain www.gslb.example.com --client 10.2.0.1 --state $STATE
  dig @127.0.0.1 -p $PORT web.gslb.example.com +short                  # three live backends
  kill <pid of a backend above>                                       # it leaves the answer in about 2 s
  touch $DEMO_DIR/drain-web-2                                         # its agent says drain: no new answers
MSG
.build/release/meridian serve --zones Zones --state "$STATE" --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" \
    --identity meridian-demo --nsid meridian-demo
