#!/usr/bin/env bash
# The demo: installs what is missing, builds the release binary, checks the example zones and
# pools in Zones/ and serves them from three Meridian instances that gossip as one group
# (Zones/cluster.yaml: ns1, ns2, ns3 on 127.0.0.1, .2 and .3, DNS on port $PORT, default 5300,
# gossip on 7946, sharing a freshly generated key). Each keeps its admin state file
# $STATE_DIR/nsN.state (default /tmp/meridian-demo) and serves the admin API and status page on
# http://127.0.0.N:8053/ (loopback, no token). They reload Zones/ when it changes (--watch).
# The zone is signed (DNSSEC) with one freshly generated CSK that all three share.
# ns1 also listens on [::1]. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-5300}"
STATE_DIR="${STATE_DIR:-/tmp/meridian-demo}"
mkdir -p "$STATE_DIR"
for i in 1 2 3; do
  [ -e "$STATE_DIR/ns$i.state" ] || echo "# POOL/SITE/MEMBER-glob  UP|DOWN|DRAIN  [weight%] [until=TIME] [reason=\"...\"]" > "$STATE_DIR/ns$i.state"
done
bash Tools/setup.sh
swift build -c release
BIN=.build/release/meridian
$BIN check Zones

DEMO_DIR="$(mktemp -d /tmp/meridian-demo.XXXXXX)"
$BIN keygen > "$DEMO_DIR/gossip.key"
$BIN keygen --zone gslb.example.com --dir "$DEMO_DIR/keys" > "$DEMO_DIR/ds.txt"
echo OK > "$DEMO_DIR/health"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DEMO_DIR"; }
trap cleanup EXIT INT TERM

# Demo backends for the `web` pool: an HTTP server and a feedback agent on each of
# 127.0.0.11-13 (loopback only). They stop with the demo.
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

# ns2 and ns3 in the background (logs in $DEMO_DIR), ns1 in the foreground below.
for i in 2 3; do
  $BIN serve --zones Zones --node-name "ns$i" --gossip-key-file "$DEMO_DIR/gossip.key" --state "$STATE_DIR/ns$i.state" \
      --listen "127.0.0.$i:$PORT" --identity "meridian-demo-ns$i" --nsid "ns$i" --rrl-rate 50 \
      --admin-listen "127.0.0.$i:8053" --watch --keys "$DEMO_DIR/keys" > "$DEMO_DIR/ns$i.log" 2>&1 &
  PIDS+=($!)
  echo "demo: instance ns$i on 127.0.0.$i:$PORT (pid $!, log $DEMO_DIR/ns$i.log)"
done
cat <<MSG
demo: three instances (ns1, ns2, ns3 on 127.0.0.1, .2 and .3, port $PORT) serve Zones/ as one group;
each checks its share of the web backends and all three answer alike. Try:
  for i in 1 2 3; do dig @127.0.0.\$i -p $PORT web.gslb.example.com +short | sort | xargs; done
  kill <pid of a backend above>                      # within about two seconds all three drop it
  .build/release/meridian explain web.gslb.example.com --client 10.2.0.1 --peer 127.0.0.2:7946 \\
      --gossip-key-file $DEMO_DIR/gossip.key          # who probes what, what each peer sees
  dig @127.0.0.1 -p $PORT www.gslb.example.com +subnet=10.2.0.0/24     # NA client: iad
  $BIN ctl drain 'www/iad/*' --reason demo --for 120    # iad fails over to fra on every instance
  $BIN ctl status                                    # who is up, and why
  curl -s 127.0.0.2:8053/status | python3 -m json.tool | head -40
  open http://127.0.0.1:8053/ in a browser           # the status page; /metrics for Prometheus
  dig @::1 -p $PORT api.gslb.example.com +tcp
  touch $DEMO_DIR/drain-web-2                        # its agent says drain: no new answers
  dig @127.0.0.1 -p $PORT www.gslb.example.com +dnssec +subnet=10.2.0.0/24   # the pool's answer, signed
  dig @127.0.0.1 -p $PORT nothere.gslb.example.com +dnssec                   # compact denial: NOERROR + NSEC
  dig @127.0.0.1 -p $PORT gslb.example.com DNSKEY +multi                      # the key; its DS for a parent:
  $(grep ' IN DS ' "$DEMO_DIR/ds.txt")
MSG
$BIN serve --zones Zones --node-name ns1 --gossip-key-file "$DEMO_DIR/gossip.key" --state "$STATE_DIR/ns1.state" \
    --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" --identity meridian-demo --nsid ns1 --rrl-rate 50 \
    --admin-listen 127.0.0.1:8053 --watch --keys "$DEMO_DIR/keys" &
PIDS+=($!)
wait "${PIDS[-1]}"
