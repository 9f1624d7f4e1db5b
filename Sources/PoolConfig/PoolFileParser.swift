import Diagnostics
import DNSWire
import Foundation
import GeoTopology
import BoundedYAML
import Yams

/// Reads pool files (YAML) into a validated `PoolSet`, reporting every problem as
/// `file:line: message`. The format is documented in `Zones/README.md`.
public enum PoolFileParser {
    /// The cluster file (peers, verdict policy), which sits beside the pool files but is not one.
    public static let clusterFileName = "cluster.yaml"

    /// The pool files in a directory: `*.yaml` and `*.yml` but the cluster file, sorted.
    public static func poolFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") && $0 != clusterFileName }.sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Parses and validates every pool file in `directory`.
    public static func load(directory: String) -> (pools: PoolSet?, diagnostics: [Diagnostic]) {
        let r = loadPartial(directory: directory)
        return (r.diagnostics.contains { $0.severity == .error } ? nil : r.partial, r.diagnostics)
    }

    /// Like `load`, but also returns the pools that were valid when others were not, so a
    /// check can go on to validate their bindings against the zones and report everything.
    public static func loadPartial(directory: String) -> (partial: PoolSet, diagnostics: [Diagnostic]) {
        var files: [(String, String)] = []
        var diags: [Diagnostic] = []
        for path in poolFiles(in: directory) {
            switch OperatorFile.read(path, maxBytes: OperatorFile.Limit.poolFile) {
            case .success(let text): files.append((path, text))
            case .failure(let d): diags.append(d)
            }
        }
        let r = parsePartial(files: files)
        return (r.partial, diags + r.diagnostics)
    }

    /// Parses pool file texts `(path, text)`; relative `geoip:` paths are relative to the file.
    public static func parse(files: [(path: String, text: String)]) -> (pools: PoolSet?, diagnostics: [Diagnostic]) {
        let r = parsePartial(files: files)
        return (r.diagnostics.contains { $0.severity == .error } ? nil : r.partial, r.diagnostics)
    }

    static func parsePartial(files: [(path: String, text: String)]) -> (partial: PoolSet, diagnostics: [Diagnostic]) {
        var p = Parser()
        for (path, text) in files { p.file(path: path, text: text) }
        return p.finish()
    }
}

/// A YAML node with the file it came from, for error messages.
struct YNode {
    let node: Node
    let file: String
    var line: Int { node.mark?.line ?? 0 }

    var scalar: String? { node.scalar?.string }
    var mapping: [(key: String, keyLine: Int, value: YNode)]? {
        guard let m = node.mapping else { return nil }
        return m.map { ($0.key.scalar?.string ?? "", $0.key.mark?.line ?? 0, YNode(node: $0.value, file: file)) }
    }
    var sequence: [YNode]? { node.sequence.map { $0.map { YNode(node: $0, file: file) } } }
}

struct Parser {
    var diags: [Diagnostic] = []
    var regions: [Region] = []
    var regionLines: [String: (String, Int)] = [:]
    /// Every `depends_on` list read, with where: validated once all pools are read.
    var dependencyLines: [(String, Int, [String])] = []
    var rawPools: [(name: String, line: Int, node: YNode)] = []
    var poolLines: [String: (String, Int)] = [:]
    var geoPath: String?
    var geoWhere: (String, Int)?

    mutating func error(_ n: YNode, _ m: String) { diags.append(Diagnostic(file: n.file, line: n.line, m)) }
    mutating func error(_ file: String, _ line: Int, _ m: String) { diags.append(Diagnostic(file: file, line: line, m)) }

    /// Checks a mapping's keys against the allowed set; reports unknown and repeated keys.
    mutating func fields(_ n: YNode, _ allowed: Set<String>, context: String) -> [String: YNode] {
        guard let m = n.mapping else {
            error(n, "\(context) must be a mapping")
            return [:]
        }
        var out: [String: YNode] = [:]
        for (k, line, v) in m {
            if !allowed.contains(k) {
                error(n.file, line, "unknown key '\(k)' in \(context) (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            } else if out[k] != nil {
                error(n.file, line, "key '\(k)' given twice in \(context)")
            } else {
                out[k] = v
            }
        }
        return out
    }

    mutating func file(path: String, text: String) {
        let root: Node?
        switch BoundedYAML.compose(text, file: path) {
        case let .success(node): root = node
        case let .failure(d):
            diags.append(d)
            return
        }
        guard let root else { return }  // an empty file
        let top = fields(YNode(node: root, file: path), ["geoip", "regions", "pools"], context: "a pool file")
        if let g = top["geoip"] {
            if let s = g.scalar, !s.isEmpty {
                if let (f, l) = geoWhere {
                    error(g, "geoip is already set in \(f):\(l)")
                } else {
                    geoPath = s.hasPrefix("/") ? s : ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(s)
                    geoWhere = (path, g.line)
                }
            } else {
                error(g, "geoip must be the path of a MaxMind DB file")
            }
        }
        if let r = top["regions"] {
            for (name, line, value) in r.mapping ?? [] {
                if let (f, l) = regionLines[name] {
                    error(path, line, "region '\(name)' is already defined in \(f):\(l)")
                    continue
                }
                regionLines[name] = (path, line)
                var cidrs: [CIDR] = []
                guard let list = value.sequence else {
                    error(value, "region '\(name)' must be a list of networks (CIDR)")
                    continue
                }
                for item in list {
                    if let s = item.scalar, let c = CIDR(s) { cidrs.append(c) } else { error(item, "bad network '\(item.scalar ?? "?")' in region '\(name)' (expected ADDRESS/PREFIX with no host bits set)") }
                }
                regions.append(Region(name: name, cidrs: cidrs))
            }
            if r.mapping == nil { error(r, "regions must be a mapping of region name to networks") }
        }
        if let p = top["pools"] {
            guard let m = p.mapping else { return error(p, "pools must be a mapping of pool name to pool") }
            for (name, line, value) in m {
                if let (f, l) = poolLines[name] {
                    error(path, line, "pool '\(name)' is already defined in \(f):\(l)")
                    continue
                }
                poolLines[name] = (path, line)
                rawPools.append((name, line, value))
            }
        }
    }

    mutating func finish() -> (partial: PoolSet, diagnostics: [Diagnostic]) {
        // Topology: the same network in two regions is ambiguous.
        var trie = PrefixTrie()
        for (i, r) in regions.enumerated() {
            for c in r.cidrs {
                if let other = trie.insert(c, value: i), other != i {
                    let (f, l) = regionLines[r.name]!
                    error(f, l, "network \(c) is in region '\(r.name)' and in region '\(regions[other].name)'")
                }
            }
        }
        var geo: GeoDatabase?
        if let path = geoPath, let (f, l) = geoWhere {
            do { geo = try GeoDatabase(path: path) } catch { self.error(f, l, "\(error)") }
        }
        let poolIndex = Dictionary(uniqueKeysWithValues: rawPools.enumerated().map { ($0.element.name, $0.offset) })
        var pools: [Pool] = []
        var bindings: [Binding] = []
        var bound: [[UInt8]: (String, Int, String)] = [:]
        for (name, keyLine, node) in rawPools {
            guard let pool = parsePool(name: name, keyLine: keyLine, node: node, poolIndex: poolIndex, geoConfigured: geoPath != nil) else { continue }
            for (i, n) in pool.names.enumerated() {
                let key = Name.lowercased(n)
                let line = (node.mapping?.first { $0.key == "names" }?.value.sequence?[i].line) ?? node.line
                if let (f, l, other) = bound[key] {
                    error(node.file, line, "\(Name.text(n)) is bound to pool '\(other)' already (\(f):\(l))")
                    continue
                }
                bound[key] = (node.file, line, name)
                bindings.append(Binding(name: n, pool: pools.count, file: node.file, line: line))
            }
            pools.append(pool)
        }
        // Dependencies name members that exist, and do not loop.
        if pools.count == rawPools.count {
            for d in Dependencies.validate(pools, lines: dependencyLines) { error(d.file, d.line, d.message) }
        }
        // Fallback chains must end.
        if pools.count == rawPools.count {
            for (i, p) in pools.enumerated() {
                var seen: Set<Int> = [i]
                var cur = p.allDown
                while case .fallbackPool(let next) = cur {
                    if seen.contains(next) {
                        error(p.file, p.line, "pool '\(p.name)': when_all_down fallbacks form a loop")
                        break
                    }
                    seen.insert(next)
                    cur = pools[next].allDown
                }
            }
        }
        return (PoolSet(regions: regions, pools: pools, bindings: bindings, geo: geo), diags)
    }

    static let poolKeys: Set<String> = [
        "names", "mode", "ttl", "degraded_ttl", "max_answers", "method", "hash_prefix", "site_affinity", "min_up", "address_order",
        "when_all_down", "sites", "members", "order", "checks", "agent", "healthy_if", "depends_on",
    ]

    mutating func parsePool(name: String, keyLine: Int, node: YNode, poolIndex: [String: Int], geoConfigured: Bool) -> Pool? {
        let before = diags.count
        let f = fields(node, Parser.poolKeys, context: "pool '\(name)'")
        var pool = Pool(
            name: name, names: [], mode: .multiSite, ttl: 30, degradedTTL: 10, maxAnswers: 2, method: .weightedShuffle,
            hashPrefixV4: 24, hashPrefixV6: 56, siteAffinity: false, sites: [], members: [], order: SiteOrderRules(),
            allDown: .failOpen, isCNAME: false, file: node.file, line: keyLine)
        // Bound names.
        if let n = f["names"], let list = n.sequence, !list.isEmpty {
            for item in list {
                guard let s = item.scalar, let wire = Name.parse(s), s.hasSuffix(".") else {
                    error(item, "bad name '\(item.scalar ?? "?")' in pool '\(name)' (use an absolute name ending in '.')")
                    continue
                }
                pool.names.append(wire)
            }
        } else {
            error(f["names"] ?? node, "pool '\(name)' needs 'names': the names it answers for")
        }
        if let m = f["mode"] {
            if let v = m.scalar.flatMap(PoolMode.init(rawValue:)) { pool.mode = v } else {
                error(m, "mode must be one of \(PoolMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let m = f["method"] {
            if let v = m.scalar.flatMap(SelectionMethod.init(rawValue:)) { pool.method = v } else {
                error(m, "method must be one of \(SelectionMethod.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let m = f["address_order"] {
            if let v = m.scalar.flatMap(AddressOrder.init(rawValue:)) { pool.addressOrder = v } else {
                error(m, "address_order must be one of \(AddressOrder.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        pool.ttl = UInt32(integer(f["ttl"], "ttl", range: 0...604_800) ?? 30)
        pool.degradedTTL = UInt32(integer(f["degraded_ttl"], "degraded_ttl", range: 0...604_800) ?? Int(min(pool.ttl, 10)))
        if pool.degradedTTL > pool.ttl, let d = f["degraded_ttl"] { error(d, "degraded_ttl \(pool.degradedTTL) is longer than ttl \(pool.ttl)") }
        pool.maxAnswers = integer(f["max_answers"], "max_answers", range: 1...64) ?? 2
        if let s = f["site_affinity"] { pool.siteAffinity = boolean(s, "site_affinity") ?? false }
        if let h = f["hash_prefix"] {
            let hf = fields(h, ["ipv4", "ipv6"], context: "hash_prefix")
            pool.hashPrefixV4 = integer(hf["ipv4"], "hash_prefix.ipv4", range: 0...32) ?? 24
            pool.hashPrefixV6 = integer(hf["ipv6"], "hash_prefix.ipv6", range: 0...128) ?? 56
        }
        let defaultMinUp = f["min_up"].flatMap { minUp($0) } ?? .count(1)

        // Sites and members.
        if let s = f["sites"], f["members"] != nil {
            error(s, "pool '\(name)' has both 'sites' and 'members': put members inside sites")
        }
        if let s = f["sites"] {
            guard let m = s.mapping, !m.isEmpty else {
                error(s, "sites must be a mapping of site name to site")
                return nil
            }
            for (siteName, line, value) in m {
                parseSite(&pool, name: siteName, line: line, node: value, defaultMinUp: defaultMinUp)
            }
        } else if let m = f["members"] {
            parseSite(&pool, name: "default", line: m.line, node: YNode(node: .mapping(Node.Mapping([(Node("members"), m.node)], .implicit, .any, m.node.mark)), file: m.file), defaultMinUp: defaultMinUp, membersNode: m)
        } else {
            error(node.file, keyLine, "pool '\(name)' needs 'sites' (or 'members' for a single site)")
        }
        let kinds = Set(pool.members.map { $0.target != nil })
        if kinds.count > 1 { error(node.file, keyLine, "pool '\(name)' mixes addresses and CNAME targets") }
        pool.isCNAME = kinds == [true]
        if pool.isCNAME && pool.mode == .direct { error(node.file, keyLine, "pool '\(name)': direct mode answers addresses, not CNAME targets") }
        if pool.sites.allSatisfy(\.backup) && !pool.sites.isEmpty { error(node.file, keyLine, "pool '\(name)': every site is a backup") }

        // Order rules.
        let siteIndex = Dictionary(pool.sites.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        func siteList(_ n: YNode, _ what: String) -> [Int] {
            guard let list = n.sequence else {
                error(n, "\(what) must be a list of site names")
                return []
            }
            var out: [Int] = []
            for item in list {
                guard let s = item.scalar, let i = siteIndex[s] else {
                    error(item, "\(what): no site '\(item.scalar ?? "?")' in pool '\(name)' (sites: \(pool.sites.map(\.name).joined(separator: ", ")))")
                    continue
                }
                if out.contains(i) { error(item, "\(what): site '\(s)' listed twice") } else { out.append(i) }
            }
            return out
        }
        if let o = f["order"] {
            let of = fields(o, ["topology", "geo", "nearest", "default", "latency"], context: "order of pool '\(name)'")
            if let l = of["latency"] { pool.order.latency = latencyRule(l, pool: pool) }
            if let t = of["topology"] {
                for (region, line, value) in t.mapping ?? [] {
                    guard let r = regions.firstIndex(where: { $0.name == region }) else {
                        error(t.file, line, "order.topology: no region '\(region)' is defined")
                        continue
                    }
                    pool.order.topology[r] = siteList(value, "order.topology.\(region)")
                }
            }
            if let g = of["geo"] {
                if !geoConfigured { error(g, "order.geo needs a GeoIP database: set 'geoip:' in a pool file") }
                for (key, line, value) in g.mapping ?? [] {
                    let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
                    let sites = siteList(value, "order.geo.\(key)")
                    switch (parts.first, parts.count == 2 ? parts[1] : "") {
                    case ("continent", let c) where ["AF", "AN", "AS", "EU", "NA", "OC", "SA"].contains(c): pool.order.continents[c] = sites
                    case ("country", let c) where c.count == 2 && c == c.uppercased(): pool.order.countries[c] = sites
                    case ("subdivision", let c) where c.contains("-") && c == c.uppercased(): pool.order.subdivisions[c] = sites
                    default:
                        error(g.file, line, "order.geo key '\(key)' must be continent:XX (AF AN AS EU NA OC SA), country:XX (ISO 3166-1) or subdivision:XX-YYY (ISO 3166-2)")
                    }
                }
            }
            if let n = of["nearest"] {
                pool.order.nearest = boolean(n, "order.nearest") ?? false
                if pool.order.nearest {
                    if !geoConfigured { error(n, "order.nearest needs a GeoIP database: set 'geoip:' in a pool file") }
                    for s in pool.sites where !s.backup && (s.latitude == nil || s.longitude == nil) {
                        error(n, "order.nearest: site '\(s.name)' has no location")
                    }
                }
            }
            if let d = of["default"] { pool.order.defaultOrder = siteList(d, "order.default") }
        }
        if pool.order.defaultOrder.isEmpty {
            pool.order.defaultOrder = pool.sites.indices.filter { !pool.sites[$0].backup }
        }
        if pool.siteAffinity && pool.mode != .direct, let s = f["site_affinity"] { error(s, "site_affinity applies to direct pools only") }

        // Health checks and the feedback agent.
        if let c = f["checks"] {
            if pool.isCNAME { error(c, "pool '\(name)': CNAME members cannot be checked (check the target's own pool)") }
            guard let list = c.sequence else {
                error(c, "checks must be a list")
                return nil
            }
            for item in list { if let spec = check(item, pool: name) { pool.checks.append(spec) } }
        }
        if let h = f["healthy_if"] {
            let parts = (h.scalar ?? "").split(separator: " ")
            if parts.count == 3, parts[1] == "of", let k = Int(parts[0]), let n = Int(parts[2]), n == pool.checks.count, (1...n).contains(k) {
                pool.healthyIf = k
            } else {
                error(h, "healthy_if must be 'K of N' with N the pool's \(pool.checks.count) checks and K from 1 to N")
            }
        }
        if let d = f["depends_on"] { pool.dependsOn = memberIDs(d, "depends_on") }
        if let a = f["agent"] {
            let af = fields(a, ["port", "send", "interval", "timeout", "max_age"], context: "agent of pool '\(name)'")
            var spec = AgentSpec(port: 3333, send: nil, interval: 2, timeout: 1, maxAge: 30, line: a.line)
            if let p = af["port"] { spec.port = integer(p, "agent.port", range: 1...65535) ?? 3333 }
            spec.send = af["send"]?.scalar
            if let v = af["interval"] { spec.interval = duration(v, "agent.interval", range: 0.05...3600) ?? 2 }
            if let v = af["timeout"] { spec.timeout = duration(v, "agent.timeout", range: 0.01...60) ?? 1 }
            if let v = af["max_age"] { spec.maxAge = duration(v, "agent.max_age", range: 0...86400) ?? 30 }
            if spec.timeout > spec.interval, let t = af["timeout"] { error(t, "agent.timeout is longer than agent.interval") }
            pool.agent = spec
        }
        if (!pool.checks.isEmpty || pool.agent != nil), pool.members.contains(where: { $0.checkAddress == nil }) {
            error(node.file, keyLine, "pool '\(name)': members without an address need a 'monitor' address to be checked")
        }

        // All down.
        if let a = f["when_all_down"] {
            if let s = a.scalar {
                switch s {
                case "fail-open": pool.allDown = .failOpen
                case "nodata": pool.allDown = .nodata
                default: error(a, "when_all_down must be fail-open, nodata, {fallback: POOL} or {addresses: [...]}")
                }
            } else {
                let af = fields(a, ["fallback", "addresses"], context: "when_all_down")
                if let fb = af["fallback"] {
                    if let target = fb.scalar, let i = poolIndex[target] {
                        if target == name { error(fb, "pool '\(name)' cannot fall back to itself") } else { pool.allDown = .fallbackPool(i) }
                    } else {
                        error(fb, "when_all_down.fallback: no pool '\(fb.scalar ?? "?")'")
                    }
                } else if let ad = af["addresses"] {
                    var addrs: [IPAddress] = []
                    for item in ad.sequence ?? [] {
                        if let s = item.scalar, let ip = IPAddress(s) { addrs.append(ip) } else { error(item, "bad address '\(item.scalar ?? "?")' in when_all_down.addresses") }
                    }
                    if addrs.isEmpty { error(ad, "when_all_down.addresses needs at least one address") }
                    pool.allDown = .addresses(addrs)
                } else {
                    error(a, "when_all_down needs 'fallback' or 'addresses'")
                }
            }
        }
        return diags.count == before ? pool : nil
    }

    mutating func parseSite(_ pool: inout Pool, name: String, line: Int, node: YNode, defaultMinUp: MinUp, membersNode: YNode? = nil) {
        let f = fields(node, ["members", "location", "backup", "weight", "min_up", "depends_on"], context: "site '\(name)' of pool '\(pool.name)'")
        var site = Site(name: name, members: [], latitude: nil, longitude: nil, backup: false, weight: 100, minUp: defaultMinUp, line: line)
        if let l = f["location"] {
            if let seq = l.sequence, seq.count == 2, let la = seq[0].scalar.flatMap(Double.init), let lo = seq[1].scalar.flatMap(Double.init),
                (-90...90).contains(la), (-180...180).contains(lo)
            {
                site.latitude = la
                site.longitude = lo
            } else {
                error(l, "location must be [latitude, longitude] in degrees")
            }
        }
        if let b = f["backup"] { site.backup = boolean(b, "backup") ?? false }
        if let w = f["weight"] { site.weight = Double(integer(w, "weight", range: 1...10000) ?? 100) }
        if let m = f["min_up"], let v = minUp(m) { site.minUp = v }
        if let d = f["depends_on"] { site.dependsOn = memberIDs(d, "depends_on") }
        guard let list = f["members"]?.sequence, !list.isEmpty else {
            error(f["members"] ?? node, "site '\(name)' of pool '\(pool.name)' needs a non-empty 'members' list")
            return
        }
        let siteIndex = pool.sites.count
        var ids = Set(pool.members.map(\.id))
        for item in list {
            var address: IPAddress?
            var target: [UInt8]?
            var memberName: String?
            var weight = 100.0
            var monitor: IPAddress?
            if let s = item.scalar {
                if let ip = IPAddress(s) { address = ip } else if s.hasSuffix("."), let n = Name.parse(s) { target = n } else {
                    error(item, "bad member '\(s)': expected an IP address or an absolute name ending in '.'")
                    continue
                }
                memberName = s
            } else {
                let mf = fields(item, ["name", "address", "target", "weight", "monitor"], context: "a member of site '\(name)'")
                if let m = mf["monitor"] {
                    if let ip = m.scalar.flatMap(IPAddress.init) { monitor = ip } else { error(m, "bad monitor address '\(m.scalar ?? "?")'") }
                }
                if let a = mf["address"] {
                    if let ip = a.scalar.flatMap(IPAddress.init) { address = ip } else { error(a, "bad address '\(a.scalar ?? "?")'") }
                }
                if let t = mf["target"] {
                    if let s = t.scalar, s.hasSuffix("."), let n = Name.parse(s) { target = n } else { error(t, "bad target '\(t.scalar ?? "?")': use an absolute name ending in '.'") }
                }
                if (mf["address"] == nil) == (mf["target"] == nil) { error(item, "a member needs exactly one of 'address' or 'target'") }
                memberName = mf["name"]?.scalar ?? mf["address"]?.scalar ?? mf["target"]?.scalar
                if let w = mf["weight"] { weight = Double(integer(w, "weight", range: 1...10000) ?? 100) }
            }
            guard address != nil || target != nil, let memberName else { continue }
            let id = "\(pool.name)/\(name)/\(memberName)"
            // A set, not a scan of the members so far: a 10,000-member site was quadratic (seconds).
            guard ids.insert(id).inserted else {
                error(item, "member '\(memberName)' appears twice in site '\(name)'")
                continue
            }
            site.members.append(pool.members.count)
            pool.members.append(Member(id: id, name: memberName, site: siteIndex, address: address, target: target, weight: weight, monitor: monitor, line: item.line))
        }
        pool.sites.append(site)
    }

    static let checkKeys: Set<String> = [
        "type", "port", "interval", "timeout", "rise", "fall", "initial", "method", "path", "host", "expect_status", "body",
        "body_regex", "verify_tls", "sni", "client_cert", "client_key", "keepalive", "name", "qtype", "expect_rcode", "expect_answer", "command",
    ]

    /// A list of member ids (`POOL/SITE/NAME`), at most 64; checked against every pool's members
    /// once all are read (`Dependencies.validate`).
    mutating func memberIDs(_ n: YNode, _ what: String) -> [String] {
        guard let list = n.sequence, list.count <= 64, list.allSatisfy({ $0.scalar != nil }) else {
            error(n, "\(what) must be a list of at most 64 member ids (POOL/SITE/NAME)")
            return []
        }
        dependencyLines.append((n.file, n.line, list.compactMap(\.scalar)))
        return list.compactMap(\.scalar)
    }

    mutating func check(_ n: YNode, pool: String) -> CheckSpec? {
        let before = diags.count
        let f = fields(n, Parser.checkKeys, context: "a check of pool '\(pool)'")
        guard let kind = f["type"]?.scalar.flatMap(CheckKind.init(rawValue:)) else {
            error(f["type"] ?? n, "a check needs 'type': one of \(CheckKind.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        let defaultPort = [CheckKind.http: 80, .https: 443, .dns: 53][kind] ?? 0
        var c = CheckSpec(kind: kind, port: defaultPort, interval: 1, timeout: 1, rise: 2, fall: 3, initialUp: true, line: n.line)
        if let p = f["port"] { c.port = integer(p, "port", range: 1...65535) ?? 0 }
        if kind == .tcp && f["port"] == nil { error(n, "a tcp check needs 'port'") }
        if let v = f["interval"] { c.interval = duration(v, "interval", range: 0.05...3600) ?? 1 }
        c.timeout = min(1, c.interval)
        if let v = f["timeout"] { c.timeout = duration(v, "timeout", range: 0.01...300) ?? 1 }
        if c.timeout > c.interval, let t = f["timeout"] { error(t, "timeout \(c.timeout) s is longer than interval \(c.interval) s") }
        if let v = f["rise"] { c.rise = integer(v, "rise", range: 1...100) ?? 2 }
        if let v = f["fall"] { c.fall = integer(v, "fall", range: 1...100) ?? 3 }
        if let v = f["initial"] {
            switch v.scalar {
            case "up": c.initialUp = true
            case "down": c.initialUp = false
            default: error(v, "initial must be up or down")
            }
        }
        let httpKeys = ["method", "path", "host", "expect_status", "body", "body_regex", "verify_tls", "sni", "client_cert", "client_key", "keepalive"]
        let dnsKeys = ["name", "qtype", "expect_rcode", "expect_answer"]
        for (key, kinds) in [(httpKeys, [CheckKind.http, .https]), (dnsKeys, [.dns]), (["command"], [.exec])] {
            for k in key where f[k] != nil && !kinds.contains(kind) { error(f[k]!, "'\(k)' does not apply to a \(kind.rawValue) check") }
        }
        if let v = f["method"]?.scalar { if ["GET", "HEAD", "POST", "OPTIONS"].contains(v) { c.method = v } else { error(f["method"]!, "method must be GET, HEAD, POST or OPTIONS") } }
        if let v = f["path"]?.scalar { if v.hasPrefix("/") && !v.contains(where: { $0 == " " || $0 == "\n" }) { c.path = v } else { error(f["path"]!, "path must start with '/' and have no spaces") } }
        c.host = f["host"]?.scalar
        if let e = f["expect_status"] {
            let values = e.sequence.map { $0.compactMap { $0.scalar.flatMap(Int.init) } } ?? e.scalar.flatMap(Int.init).map { [$0] } ?? []
            if values.isEmpty || values.contains(where: { !(100...599).contains($0) }) { error(e, "expect_status must be HTTP status codes (100-599)") } else { c.expectStatus = values }
        }
        c.bodyContains = f["body"]?.scalar
        if let r = f["body_regex"] {
            if let s = r.scalar, (try? NSRegularExpression(pattern: s)) != nil { c.bodyRegex = s } else { error(r, "body_regex is not a valid regular expression") }
        }
        if let v = f["verify_tls"] { c.verifyTLS = boolean(v, "verify_tls") ?? true }
        if let v = f["keepalive"] { c.keepAlive = boolean(v, "keepalive") ?? false }
        c.sni = f["sni"]?.scalar
        c.clientCert = f["client_cert"]?.scalar
        c.clientKey = f["client_key"]?.scalar
        if (c.clientCert == nil) != (c.clientKey == nil) { error(n, "client_cert and client_key go together") }
        if let q = f["name"] {
            if let s = q.scalar, s.hasSuffix("."), let w = Name.parse(s) { c.queryName = w } else { error(q, "name must be an absolute name ending in '.'") }
        }
        if let t = f["qtype"] {
            // DNSWire's one table of mnemonics; a check asks for data, not a transfer or OPT.
            if let v = t.scalar.flatMap(RRType.value), ![RRType.opt, RRType.ixfr, RRType.axfr, 0].contains(v) { c.queryType = v } else {
                error(t, "qtype must be a record type (A, AAAA, CAA, SOA, TXT, TYPE65400, ...)")
            }
        }
        if let r = f["expect_rcode"] {
            let codes = ["NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5]
            if let v = r.scalar.flatMap({ codes[$0.uppercased()] }) { c.expectRcode = v } else { error(r, "expect_rcode must be one of \(codes.keys.sorted().joined(separator: ", "))") }
        }
        if let a = f["expect_answer"] { c.expectAnswer = boolean(a, "expect_answer") ?? false }
        if kind == .exec {
            guard let list = f["command"]?.sequence?.compactMap(\.scalar), !list.isEmpty, list[0].hasPrefix("/") else {
                error(f["command"] ?? n, "an exec check needs 'command': a list whose first item is an absolute program path (no shell)")
                return nil
            }
            c.command = list
        }
        return diags.count == before ? c : nil
    }

    /// A duration (`DurationText`: `1.5`, `500ms`, `30s`, `10m`, `2h`, `30d`).
    mutating func duration(_ n: YNode, _ what: String, range: ClosedRange<Double>) -> Double? {
        guard let s = n.scalar else {
            error(n, "\(what) must be a duration (\(DurationText.forms))")
            return nil
        }
        guard let value = DurationText.seconds(s) else {
            error(n, "\(what) must be a duration (\(DurationText.forms)), not '\(s.prefix(40))'")
            return nil
        }
        guard range.contains(value) else {
            error(n, "\(what) \(s) is out of range \(range.lowerBound)...\(range.upperBound) s")
            return nil
        }
        return value
    }

    mutating func integer(_ n: YNode?, _ what: String, range: ClosedRange<Int>) -> Int? {
        guard let n else { return nil }
        guard let s = n.scalar, let v = Int(s) else {
            error(n, "\(what) must be a whole number")
            return nil
        }
        guard range.contains(v) else {
            error(n, "\(what) \(v) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return v
    }

    /// `order.latency: {tolerance_ms, min_samples, fallback}` (every field optional).
    mutating func latencyRule(_ n: YNode, pool: Pool) -> LatencyRule? {
        let f = fields(n, ["tolerance_ms", "min_samples", "fallback"], context: "order.latency of pool '\(pool.name)'")
        var rule = LatencyRule()
        if let t = f["tolerance_ms"] {
            if let v = t.scalar.flatMap(Double.init), v >= 0, v <= 10_000 { rule.toleranceMs = v } else {
                error(t, "order.latency.tolerance_ms must be a number of milliseconds from 0 to 10000")
            }
        }
        if let m = integer(f["min_samples"], "order.latency.min_samples", range: 1...1_000_000) { rule.minSamples = m }
        if let b = f["fallback"] {
            if let v = b.scalar.flatMap(LatencyRule.Fallback.init(rawValue:)) { rule.fallback = v } else {
                error(b, "order.latency.fallback must be one of \(LatencyRule.Fallback.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if pool.mode == .direct && !pool.siteAffinity {
            error(n, "order.latency in a direct pool needs site_affinity: true (without it the order of sites is not used)")
        }
        if pool.isCNAME { error(n, "order.latency: a CNAME pool has no addresses to measure; order its target's pool") }
        return rule
    }

    mutating func boolean(_ n: YNode, _ what: String) -> Bool? {
        switch n.scalar {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(n, "\(what) must be true or false")
            return nil
        }
    }

    mutating func minUp(_ n: YNode) -> MinUp? {
        guard let s = n.scalar else {
            error(n, "min_up must be a count or a percentage")
            return nil
        }
        if s.hasSuffix("%"), let p = Double(s.dropLast()), p > 0, p <= 100 { return .fraction(p / 100) }
        if let c = Int(s), c >= 1 { return .count(c) }
        error(n, "min_up must be a count (1 or more) or a percentage (1% to 100%), not '\(s)'")
        return nil
    }
}
