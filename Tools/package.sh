#!/usr/bin/env bash
# Builds the Debian package meridian_VERSION_amd64.deb (issue 19) from this checkout, on a
# machine with the Swift toolchain: release binaries linked with --static-swift-stdlib (the
# server needs no toolchain; the C libraries are package dependencies), man pages from
# ArgumentParser, bash/zsh/fish completions, the systemd unit, and /etc/meridian with a
# working example (conffiles: an upgrade never overwrites what the operator changed).
# The postinst makes the meridian user, the state directory, the gossip key, the cookie secret
# and the admin token when they are absent (mode 0640, group meridian).
#
#   bash Tools/package.sh            # writes .build-package/meridian_VERSION_amd64.deb
#   bash Tools/package-test.sh       # installs it here, checks, serves, digs, removes it
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(cat VERSION)
OUT=.build-package
STAGE="$OUT/stage/meridian_${VERSION}_amd64"
DEB="$OUT/meridian_${VERSION}_amd64.deb"

for product in meridian meridian-agent; do
  swift build -c release --static-swift-stdlib --build-path "$OUT" --product "$product" 2>&1 | tail -1
done
BIN="$OUT/release"
# No toolchain on the server: nothing may point into it.
if readelf -d "$BIN/meridian" | grep -E 'RUNPATH|RPATH' | grep -q swift; then
  echo "package: $BIN/meridian has a RUNPATH into the toolchain" >&2
  readelf -d "$BIN/meridian" | grep -E 'RUNPATH|RPATH' >&2
  exit 1
fi

rm -rf "$OUT/stage"
install -d "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/etc/meridian/zones" \
  "$STAGE/usr/share/meridian/GeoData" "$STAGE/usr/share/doc/meridian/examples" "$STAGE/usr/share/man/man1" \
  "$STAGE/usr/share/bash-completion/completions" "$STAGE/usr/share/zsh/vendor-completions" "$STAGE/usr/share/fish/vendor_completions.d"
install -m 0755 -s "$BIN/meridian" "$BIN/meridian-agent" "$STAGE/usr/bin/"
install -m 0644 deploy/meridian.service "$STAGE/lib/systemd/system/meridian.service"

# The example configuration: the demo zone and pools, GeoIP data from /usr/share/meridian, one node.
install -m 0644 deploy/meridian.yaml "$STAGE/etc/meridian/meridian.yaml"
install -m 0644 Zones/gslb.example.com.zone "$STAGE/etc/meridian/zones/"
sed 's|^geoip: ../GeoData/test.mmdb|geoip: /usr/share/meridian/GeoData/test.mmdb|' Zones/pools.yaml > "$STAGE/etc/meridian/zones/pools.yaml"
install -m 0644 GeoData/test.mmdb GeoData/README.md "$STAGE/usr/share/meridian/GeoData/"
install -m 0644 Zones/cluster.yaml "$STAGE/usr/share/doc/meridian/examples/cluster.yaml"
install -m 0644 deploy/prometheus/meridian-rules.yml deploy/prometheus/meridian-rules.test.yml deploy/grafana/meridian.json \
  deploy/pre-commit "$STAGE/usr/share/doc/meridian/examples/"
install -m 0644 README.md HARDENING.md "$STAGE/usr/share/doc/meridian/"

# Man pages (ArgumentParser's generator over the same commands) and completions.
man=$(mktemp -d)
swift package --allow-writing-to-directory "$man" generate-manual --multi-page --output-directory "$man" > "$OUT/manual.log" 2>&1 \
  || { tail -5 "$OUT/manual.log" >&2; exit 1; }
for page in "$man"/meridian*.1; do gzip -9n < "$page" > "$STAGE/usr/share/man/man1/$(basename "$page").gz"; done
[ -s "$STAGE/usr/share/man/man1/meridian.1.gz" ] || { echo "package: no man page for meridian" >&2; exit 1; }
rm -rf "$man"
"$BIN/meridian" --generate-completion-script bash > "$STAGE/usr/share/bash-completion/completions/meridian"
"$BIN/meridian" --generate-completion-script zsh > "$STAGE/usr/share/zsh/vendor-completions/_meridian"
"$BIN/meridian" --generate-completion-script fish > "$STAGE/usr/share/fish/vendor_completions.d/meridian.fish"

# What the binaries link against directly (their NEEDED entries), as the packages holding them.
depends=$(for bin in "$BIN/meridian" "$BIN/meridian-agent"; do
  for soname in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$bin" | awk -v s="$soname" '$1 == s && $3 ~ /^\// {print $3}')
    if [ -n "$path" ]; then { dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true; } | cut -d: -f1 | head -1; fi
  done
done | sort -u | grep -v '^$' | paste -sd, | sed 's/,/, /g')
size=$(du -sk "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: meridian
Version: $VERSION
Architecture: amd64
Maintainer: Meridian maintainers <maintainers@users.noreply.example>
Installed-Size: $size
Depends: $depends, passwd
Section: net
Priority: optional
Homepage: https://github.com/meridian-dns/meridian
Description: authoritative GSLB DNS server
 Meridian answers for a delegated zone from RFC 1035 zone files and, for load-balanced
 names, from pools of members it health-checks itself, with feedback-agent weights,
 topology and GeoIP (with EDNS Client Subnet), in multi-site, direct-to-node and
 active-active modes. Several instances gossip health and overrides so that every
 instance answers alike. Online DNSSEC signing, response rate limiting, DNS Cookies,
 an admin API with a status page and Prometheus metrics.
EOF
(cd "$STAGE" && find etc -type f | sed 's|^|/|' | sort) > "$STAGE/DEBIAN/conffiles"

cat > "$STAGE/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# Makes what the package does not ship: the user, the state and keys directories, and the
# secrets (never overwritten: an operator's own stay).
set -e
if [ "$1" = configure ]; then
  getent group meridian >/dev/null || groupadd --system meridian
  getent passwd meridian >/dev/null || useradd --system --gid meridian --home-dir /var/lib/meridian --no-create-home --shell /usr/sbin/nologin meridian
  install -d -o meridian -g meridian -m 0750 /var/lib/meridian
  install -d -o root -g meridian -m 0750 /etc/meridian /etc/meridian/keys
  umask 027
  [ -e /etc/meridian/gossip.key ] || /usr/bin/meridian keygen > /etc/meridian/gossip.key
  [ -e /etc/meridian/cookie.secret ] || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > /etc/meridian/cookie.secret
  [ -e /etc/meridian/admin.token ] || { head -c 24 /dev/urandom | base64 > /etc/meridian/admin.token; }
  for f in gossip.key cookie.secret admin.token; do
    chgrp meridian "/etc/meridian/$f"
    chmod 0640 "/etc/meridian/$f"
  done
  # DNSSEC keys made by `meridian keygen --dir /etc/meridian/keys` (0600, root) become readable
  # by the service's group.
  chgrp -R meridian /etc/meridian/keys
  chmod -R g+rX /etc/meridian/keys
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    systemctl enable meridian.service >/dev/null 2>&1 || true
    systemctl try-restart meridian.service || true
  fi
fi
exit 0
EOF
cat > "$STAGE/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop meridian.service || true
  systemctl disable meridian.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat > "$STAGE/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# Removal keeps the configuration, the secrets and the state; purge removes what postinst made.
set -e
if [ "$1" = purge ]; then
  rm -f /etc/meridian/gossip.key /etc/meridian/cookie.secret /etc/meridian/admin.token
  rm -rf /var/lib/meridian
  rmdir /etc/meridian/keys /etc/meridian 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
exit 0
EOF
chmod 0755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm" "$STAGE/DEBIAN/postrm"
fakeroot dpkg-deb --build -Zxz "$STAGE" "$DEB" >/dev/null
echo "package: $DEB ($(du -h "$DEB" | cut -f1)), depends: $depends"
