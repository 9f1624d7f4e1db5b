#!/usr/bin/env bash
# Installs the Debian package on this machine and uses it as an operator would (issue 19), then
# removes and purges it: dpkg -i; the user, directories and secrets the postinst makes (0640,
# group meridian); meridian --version and the man page; `meridian check --config` on
# /etc/meridian; systemd-analyze verify and security on the installed unit; `meridian serve
# --config /etc/meridian/meridian.yaml` as the meridian user with only the unit's capability
# (CAP_NET_BIND_SERVICE, for port 53); dig; dpkg -r keeps the configuration; dpkg -P removes it.
# Needs root. Every wait is bounded; it stops only the server it started.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "package-test: needs root (dpkg -i)" >&2; exit 2; }
DEB=".build-package/meridian_$(cat VERSION)_amd64.deb"
[ -f "$DEB" ] || bash Tools/package.sh
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

dpkg -i "$DEB" >/dev/null
echo "package-test: installed $(dpkg-query -W -f='${Package} ${Version}' meridian)"
id meridian >/dev/null || fail "no meridian user"
for f in gossip.key cookie.secret admin.token; do
  [ "$(stat -c '%a %G' /etc/meridian/$f)" = "640 meridian" ] || fail "/etc/meridian/$f is $(stat -c '%a %G' /etc/meridian/$f)"
done
[ "$(stat -c '%U %a' /var/lib/meridian)" = "meridian 750" ] || fail "/var/lib/meridian is $(stat -c '%U %a' /var/lib/meridian)"
/usr/bin/meridian --version | grep -q "meridian $(cat VERSION)" || fail "--version"
[ -s /usr/share/man/man1/meridian.1.gz ] || fail "no man page"
[ -s /usr/share/bash-completion/completions/meridian ] || fail "no bash completion"
if readelf -d /usr/bin/meridian | grep -E 'RUNPATH|RPATH' | grep -q swift; then fail "RUNPATH into the toolchain"; fi
ldd /usr/bin/meridian | grep -q 'not found' && fail "missing libraries: $(ldd /usr/bin/meridian | grep 'not found')"

# The configuration as shipped passes check, as the unit's ExecStartPre runs it.
/usr/bin/meridian check --config /etc/meridian/meridian.yaml || fail "check --config"

# The unit as systemd reads it.
systemd-analyze verify /lib/systemd/system/meridian.service || fail "systemd-analyze verify"
exposure=$(systemd-analyze security --offline=true /lib/systemd/system/meridian.service 2>/dev/null | tail -1)
echo "package-test: systemd-analyze security: $exposure"

# Serve as the unit would: the meridian user, only CAP_NET_BIND_SERVICE, on port 53.
log=$(mktemp)
setpriv --reuid=meridian --regid=meridian --init-groups --inh-caps=+net_bind_service --ambient-caps=+net_bind_service --bounding-set=-all,+net_bind_service \
  /usr/bin/meridian serve --config /etc/meridian/meridian.yaml --listen 127.0.53.1:53 --admin-listen 127.0.53.1:8053 >"$log" 2>&1 &
pid=$!
answer=""
for _ in $(seq 1 100); do
  answer=$(dig @127.0.53.1 -p 53 +short +time=1 +tries=1 status.gslb.example.com TXT 2>/dev/null | grep -v '^;' || true)
  [ -n "$answer" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
www=$(dig @127.0.53.1 -p 53 +short +time=2 www.gslb.example.com A | grep -v '^;' || true)
token=$(cat /etc/meridian/admin.token)
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" http://127.0.53.1:8053/status || true)
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "serve did not stop on SIGTERM"; }
[ "$answer" = '"ok"' ] || { cat "$log"; fail "dig status.gslb.example.com TXT gave '$answer'"; }
[ -n "$www" ] || { cat "$log"; fail "no A answer for www.gslb.example.com"; }
[ "$status" = 200 ] || fail "/status with the generated token: HTTP $status"
grep -E '"level":"(error|critical)"' "$log" && fail "error lines in the log"
echo "package-test: served as meridian on 127.0.53.1:53: status TXT $answer, www A $(echo $www | tr '\n' ' ')"

# Removal keeps the configuration and secrets; purge removes them.
dpkg -r meridian >/dev/null
[ -f /etc/meridian/meridian.yaml ] && [ -f /etc/meridian/gossip.key ] || fail "dpkg -r removed the configuration"
[ ! -e /usr/bin/meridian ] || fail "dpkg -r left the binary"
dpkg -P meridian >/dev/null
[ ! -e /etc/meridian/meridian.yaml ] && [ ! -e /etc/meridian/gossip.key ] || fail "dpkg -P left the configuration"
rm -f "$log"
echo "package-test: OK (installed, checked, served, removed, purged)"
