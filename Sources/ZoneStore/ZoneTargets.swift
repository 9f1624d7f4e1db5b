import Diagnostics
import DNSWire

/// Targets inside the zone that lead nowhere (issue 18, finding 9).
extension ZoneAssembly {
    /// Warnings per zone before the rest are summed up in one line.
    static let danglingWarnings = 20

    /// A CNAME, NS, MX or SRV target inside the zone (and not below one of its cuts) that is
    /// no name of the zone, bound pool names included, and is not covered by a wildcard: it
    /// answers NXDOMAIN, almost never what was meant. A warning with the record's `file:line`,
    /// as kzonecheck and named-checkzone report.
    mutating func checkDanglingTargets(_ zone: Zone) {
        var found = 0
        // A target that repeats the origin has its own, more telling warning.
        let doubled = Array(zone.origin.dropLast()) + zone.origin
        for info in zone.sets {
            guard let at = Self.targetOffset(info.type) else { continue }
            for r in Int(info.firstRecord)..<Int(info.firstRecord) + Int(info.count) {
                let target = zone.withRData(r) { d in d.count > at ? Name.lowercased(Array(d[at...])) : [] }
                guard !ZoneAssembly.endsWith(target, doubled), Self.leadsNowhere(target, in: zone) else { continue }
                found += 1
                guard found <= Self.danglingWarnings else { continue }
                let message = "\(RRType.name(info.type)) target \(Name.text(target)) does not exist in \(originText) (it answers NXDOMAIN)"
                if let n = acc.recData.firstIndex(of: records[r]) {
                    diags.append(acc.diagnostic(n, severity: .warning, message))
                } else {
                    diags.append(Diagnostic(file: file, line: 0, severity: .warning, message))
                }
            }
        }
        if found > Self.danglingWarnings {
            diags.append(Diagnostic(file: file, line: 0, severity: .warning, "\(found - Self.danglingWarnings) more targets do not exist in \(originText)"))
        }
    }

    /// Where the target name starts in the RDATA of the types that have one.
    static func targetOffset(_ type: UInt16) -> Int? {
        switch type {
        case RRType.cname, RRType.ns: return 0
        case RRType.mx: return 2
        case RRType.srv: return 6
        default: return nil
        }
    }

    /// Whether `target` (lowercased wire form) is inside `zone`, at no cut or below one, no
    /// name of it and not covered by a wildcard.
    static func leadsNowhere(_ target: [UInt8], in zone: Zone) -> Bool {
        guard target.count > 1, endsWith(target, zone.origin) else { return false }
        var name = target
        var closest: Int? = nil
        while true {
            if let id = zone.table.find(name) {
                if zone.nodes[id].isDelegation { return false }
                if closest == nil { closest = id }
            }
            if name.count == zone.origin.count { break }
            name = Array(name[(Int(name[0]) + 1)...])
        }
        guard let c = closest else { return true }
        if zone.table.find(target) == c { return false }
        return zone.nodes[c].wildcardChild < 0
    }
}
