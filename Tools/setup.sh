#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, run, test and benchmark Meridian.
# Idempotent: packages already present are not reinstalled; uses sudo only when not root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Build and runtime libraries, test clients, benchmark tools and reference servers.
APT_PACKAGES=(
  pkg-config
  libldns-dev ldnsutils            # zone parsing (libldns) and drill
  libmaxminddb-dev mmdb-bin        # GeoIP lookups and mmdblookup
  libcurl4-openssl-dev             # HTTP/HTTPS health checks
  libmaxmind-db-writer-perl        # builds GeoData/test.mmdb from its text source
  bind9-dnsutils                   # dig
  dnsperf                          # benchmarks
  gdnsd nsd                        # reference servers for the benchmarks
  knot                             # reference server for the DNSSEC benchmark (online signing)
  unbound                          # the validating resolver of the DNSSEC tests
  python3-pip
  openssl                          # self-signed certificates for the HTTPS check tests
  chromium                         # the status page test (headless)
  iptables                         # the gossip test drops a datagram at the OUTPUT hook; the netns test delays links (NFQUEUE)
  iproute2                         # network namespaces, veth and a bridge for the latency test
  prometheus                       # promtool checks the /metrics exposition
  fstrm-bin                        # fstrm_capture reads the dnstap socket
  dnstap-ldns                      # reads the dnstap Meridian writes
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # Reference servers must not start as system services: the benchmark starts them itself.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "${created_policy:-0}" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi

# Python test dependencies.
if ! python3 -c 'import dns.message, pytest, websockets.sync.client' 2>/dev/null; then
  echo "setup: installing dnspython, pytest and websockets (the status page test drives Chromium over its DevTools protocol)"
  python3 -m pip install -q --disable-pip-version-check dnspython pytest websockets \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages dnspython pytest websockets
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "setup: swift is not on PATH; install a Swift 6 toolchain (https://swift.org/install)" >&2
  exit 1
fi
echo "setup: ok"
