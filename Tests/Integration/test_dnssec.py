"""DNSSEC through a real validating resolver (issue: DNSSEC).

Meridian signs gslb.test. with keys from `meridian keygen`; unbound (Debian's) holds the zone's
DS as its trust anchor and reaches Meridian through a stub zone on loopback. Every answer it
hands back must carry AD: static names, each pool mode, NXDOMAIN (compact denial), NODATA,
wildcards, answers after a failover, and answers throughout a ZSK rollover driven by the key
files' timing metadata alone. Every wait is bounded."""
import os
import re
import shutil
import signal
import subprocess
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from conftest import BIN, Server, free_port
from test_health import Backend, eventually

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"

ZONE = """$TTL 2
@        SOA ns1 hostmaster 1 3600 600 604800 2
         NS  ns1
ns1      A   127.0.0.1
static   A   192.0.2.80
static   TXT "signed static text"
*.wild   A   192.0.2.99
alias    CNAME static
big      TXT "record-0-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big      TXT "record-1-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big      TXT "record-2-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big      TXT "record-3-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big      TXT "record-4-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big      TXT "record-5-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
"""


def pools(http_port):
    fast = "interval: 200ms, timeout: 150ms, rise: 1, fall: 1"
    return f"""
pools:
  www:
    names: [www.gslb.test.]
    ttl: 1
    sites:
      primary: {{members: [127.0.0.81]}}
      dr: {{backup: true, members: [127.0.0.82]}}
    checks:
      - {{type: http, port: {http_port}, path: /health, {fast}}}
  nodes:
    names: [nodes.gslb.test.]
    mode: direct
    max_answers: 2
    ttl: 1
    members: [192.0.2.11, 192.0.2.12, 192.0.2.13, "2001:db8::11"]
  spread:
    names: [spread.gslb.test.]
    mode: active-active
    ttl: 1
    sites:
      a: {{members: [198.51.100.1]}}
      b: {{members: [198.51.100.2]}}
"""


def timeline():
    """Absolute key times (YYYYMMDDHHMMSS, UTC) from one origin. "+8s" counts from each keygen
    run, and on a slow machine the second run starts a second or more after the first, which
    left a gap with no active key at all: answers between the two went unsigned."""
    base = int(time.time())
    return lambda seconds: time.strftime("%Y%m%d%H%M%S", time.gmtime(base + seconds))


def keygen(keys, *args):
    out = subprocess.run([BIN, "keygen", "--zone", "gslb.test", "--dir", str(keys), *args], capture_output=True, text=True, timeout=30, check=True).stdout
    ds = [line for line in out.splitlines() if " IN DS " in line]
    tag = int(re.search(r"(KSK|CSK|ZSK) (\d+)", out).group(2))
    return tag, (ds[0] if ds else None)


class Unbound:
    """A validating unbound with the zone's DS as trust anchor and a stub zone to Meridian."""

    def __init__(self, workdir, anchor, meridian_port):
        self.port = free_port()
        anchors = "\n".join(f'    trust-anchor: "{a}"' for a in ([anchor] if isinstance(anchor, str) else anchor))
        conf = os.path.join(workdir, "unbound.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
    interface: 127.0.0.1
    port: {self.port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: ""
    use-syslog: no
    logfile: "{workdir}/unbound.log"
    verbosity: 1
    val-log-level: 2
    num-threads: 1
    so-reuseport: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    # test. is one of unbound's built-in local zones (RFC 6761): let the stub zone answer.
    local-zone: "test." nodefault
    module-config: "validator iterator"
{anchors}
    cache-max-ttl: 2
    cache-max-negative-ttl: 2
    infra-host-ttl: 2
    serve-expired: no
    prefetch: no
remote-control:
    control-enable: no
stub-zone:
    name: "gslb.test."
    stub-addr: 127.0.0.1@{meridian_port}
""")
        subprocess.run([UNBOUND + "-checkconf", conf], check=True, capture_output=True, timeout=30)
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                dns.query.udp(dns.message.make_query("static.gslb.test.", "A"), "127.0.0.1", port=self.port, timeout=0.5)
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("unbound did not start")

    def ask(self, name, rdtype="A"):
        q = dns.message.make_query(name, rdtype, want_dnssec=True)
        r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=3)
        if r.flags & dns.flags.TC:
            r = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=3)
        return r

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def secure(r):
    return bool(r.flags & dns.flags.AD) and r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)


def answer_set(r, rdtype="A"):
    return sorted(rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype) for rd in rrset)


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    if not os.path.exists(UNBOUND):
        pytest.fail("unbound is not installed: run Tools/setup.sh")
    d = tmp_path_factory.mktemp("dnssec")
    zones, keys = d / "zones", d / "keys"
    zones.mkdir()
    http_port = free_port()
    backends = {h: Backend(h, http_port) for h in ["127.0.0.81", "127.0.0.82"]}
    (zones / "gslb.test.zone").write_text(ZONE)
    (zones / "pools.yaml").write_text(pools(http_port))
    _, ds = keygen(keys, "--role", "csk")
    srv = Server(str(zones), ["--keys", str(keys), "--dnskey-ttl", "2", "--log-level", "info"], ready_name="gslb.test.")
    resolver = Unbound(str(d), ds, srv.port)
    yield {"srv": srv, "unbound": resolver, "backends": backends, "dir": d}
    resolver.stop()
    srv.stop()
    for b in backends.values():
        b.stop()


@pytest.mark.parametrize("name,rdtype", [
    ("static.gslb.test.", "A"), ("static.gslb.test.", "TXT"), ("alias.gslb.test.", "A"), ("gslb.test.", "SOA"),
    ("gslb.test.", "DNSKEY"), ("www.gslb.test.", "A"), ("nodes.gslb.test.", "A"), ("nodes.gslb.test.", "AAAA"),
    ("spread.gslb.test.", "A"), ("anything.wild.gslb.test.", "A")])
def test_answers_validate(signed, name, rdtype):
    r = signed["unbound"].ask(name, rdtype)
    assert secure(r), f"{name} {rdtype}: {r}"
    assert answer_set(r, rdtype), r


def test_nxdomain_and_nodata_validate(signed):
    u = signed["unbound"]
    nx = u.ask("nothere.gslb.test.", "A")
    # Compact denial (RFC 9824): a validated NODATA for a name that does not exist.
    assert secure(nx) and not nx.answer, nx
    nodata = u.ask("static.gslb.test.", "AAAA")
    assert secure(nodata) and not nodata.answer, nodata
    pool_nodata = u.ask("www.gslb.test.", "AAAA")
    assert secure(pool_nodata) and not pool_nodata.answer, pool_nodata


def test_large_signed_answers_truncate_whole_and_come_over_tcp(signed):
    """A signed answer too large for UDP is TC with no partial RRset; over TCP it comes whole
    with its RRSIG, and the resolver (which retries over TCP) validates it."""
    srv = signed["srv"]
    q = dns.message.make_query("big.gslb.test.", "TXT", want_dnssec=True, payload=1232)
    udp = dns.query.udp(q, "127.0.0.1", port=srv.port, timeout=2)
    assert udp.flags & dns.flags.TC and not udp.answer, udp
    tcp = dns.query.tcp(q, "127.0.0.1", port=srv.port, timeout=2)
    assert {rrset.rdtype for rrset in tcp.answer} == {dns.rdatatype.TXT, dns.rdatatype.RRSIG}
    assert sum(len(rrset) for rrset in tcp.answer if rrset.rdtype == dns.rdatatype.TXT) == 6
    r = signed["unbound"].ask("big.gslb.test.", "TXT")
    assert secure(r) and len(answer_set(r, "TXT")) == 6, r


def test_failover_answer_validates(signed):
    u, backends = signed["unbound"], signed["backends"]
    assert answer_set(u.ask("www.gslb.test.")) == ["127.0.0.81"]
    backends["127.0.0.81"].status = 503
    try:
        assert eventually(lambda: answer_set(u.ask("www.gslb.test.")) == ["127.0.0.82"], 15)
        r = u.ask("www.gslb.test.")
        assert secure(r), r
    finally:
        backends["127.0.0.81"].status = 200
    assert eventually(lambda: answer_set(u.ask("www.gslb.test.")) == ["127.0.0.81"], 15)


def test_tampered_answers_are_rejected(signed, tmp_path):
    """The resolver really validates: the same zone signed by a key it does not trust is bogus."""
    keys = tmp_path / "otherkeys"
    keygen(keys, "--role", "csk")
    other = Server(signed["srv"].zones, ["--keys", str(keys), "--no-admin"], listen_v6=False, ready_name="gslb.test.")
    try:
        _, ds = keygen(tmp_path / "unused", "--role", "csk")
        resolver = Unbound(str(tmp_path), ds, other.port)
        try:
            r = resolver.ask("static.gslb.test.")
            assert r.rcode() == dns.rcode.SERVFAIL, r
        finally:
            resolver.stop()
    finally:
        other.stop()


def test_zsk_rollover_with_a_resolver_watching(binary, tmp_path):
    """KSK + ZSK1; ZSK2 pre-published, then it signs, then ZSK1 leaves (RFC 7583 3.2),
    all from the key files' timing metadata; every answer along the way validates."""
    zones, keys = tmp_path / "zones", tmp_path / "keys"
    zones.mkdir()
    (zones / "gslb.test.zone").write_text(ZONE)
    _, ds = keygen(keys, "--role", "ksk")
    at = timeline()
    old, _ = keygen(keys, "--role", "zsk", "--inactive", at(8), "--delete", at(16))
    new, _ = keygen(keys, "--role", "zsk", "--publish", "now", "--activate", at(8))
    srv = Server(str(zones), ["--keys", str(keys), "--dnskey-ttl", "2", "--no-admin", "--log-level", "info"], listen_v6=False, ready_name="gslb.test.")
    resolver = Unbound(str(tmp_path), ds, srv.port)
    try:
        seen_signers, seen_keys = set(), []
        deadline = time.time() + 20
        while time.time() < deadline:
            r = resolver.ask("static.gslb.test.")
            assert secure(r), r
            seen_signers |= {rd.key_tag for rrset in r.answer if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset}
            direct = dns.query.udp(dns.message.make_query("gslb.test.", "DNSKEY", want_dnssec=True), "127.0.0.1", port=srv.port, timeout=2)
            seen_keys.append(sorted(dns.dnssec.key_id(rd) for rrset in direct.answer if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset))
            time.sleep(0.5)
        assert seen_signers == {old, new}, seen_signers
        assert any(old in k and new in k for k in seen_keys) and old not in seen_keys[-1] and new in seen_keys[-1], seen_keys
    finally:
        resolver.stop()
        srv.stop()


def test_status_and_metrics_show_the_keys_and_the_cache(signed):
    import json
    import urllib.request
    srv = signed["srv"]
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.admin}/status", timeout=5) as r:
        status = json.load(r)
    keys = status["zones"][0]["keys"]
    assert [(k["role"], k["algorithm"], k["published"], k["signing"]) for k in keys] == [("CSK", 13, True, True)], keys
    signed["unbound"].ask("static.gslb.test.", "A")

    def counters():
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        return {src: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() for src in ("made", "cache")
                if line.startswith("meridian_dnssec_signatures_total") and f'source="{src}"' in line}
    assert eventually(lambda: counters().get("made", 0) > 0, 5), counters()


def test_ksk_rollover_with_both_ds_at_the_parent(binary, tmp_path):
    """A double-DS KSK rollover (RFC 7583 3.3.2): the parent holds both DS (here, both are
    unbound's trust anchors); the new KSK is published, takes over signing the DNSKEY set, and
    the old one leaves, all from timing metadata, with every answer validating."""
    zones, keys = tmp_path / "zones", tmp_path / "keys"
    zones.mkdir()
    (zones / "gslb.test.zone").write_text(ZONE)
    at = timeline()
    old, old_ds = keygen(keys, "--role", "ksk", "--inactive", at(8), "--delete", at(14))
    new, new_ds = keygen(keys, "--role", "ksk", "--publish", "now", "--activate", at(8))
    keygen(keys, "--role", "zsk")
    srv = Server(str(zones), ["--keys", str(keys), "--dnskey-ttl", "2", "--no-admin"], listen_v6=False, ready_name="gslb.test.")
    resolver = Unbound(str(tmp_path), [old_ds, new_ds], srv.port)
    try:
        key_signers = set()
        deadline = time.time() + 18
        while time.time() < deadline:
            r = resolver.ask("static.gslb.test.")
            assert secure(r), r
            keys_now = resolver.ask("gslb.test.", "DNSKEY")
            assert secure(keys_now), keys_now
            key_signers |= {rd.key_tag for rrset in keys_now.answer if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset}
            time.sleep(0.5)
        assert key_signers == {old, new}, key_signers
        final = dns.query.udp(dns.message.make_query("gslb.test.", "DNSKEY"), "127.0.0.1", port=srv.port, timeout=2)
        tags = {dns.dnssec.key_id(rd) for rrset in final.answer for rd in rrset}
        assert new in tags and old not in tags, tags
    finally:
        resolver.stop()
        srv.stop()
