import DNSSEC
import DNSWire
import Diagnostics
import Health
import Foundation
import PoolConfig
import Selection
import ZoneStore

/// Builds a `Snapshot` from a configuration directory: pool files first (their bindings),
/// then the zone files with the bound names placed in them, then the admin state file.
/// `meridian serve`, a reload, `meridian check` and `meridian explain` all go through here,
/// so they accept and reject exactly the same files.
public enum SnapshotBuilder {
    public struct Outcome: Sendable {
        public var snapshot: Snapshot?
        public var diagnostics: [Diagnostic]
        public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    }

    /// - Parameter current: the health view to carry into the new snapshot (a reload keeps
    ///   what the group already knows); by default the state file's overrides alone.
    public static func build(
        directory: String, statePath: String? = nil, config: EngineConfig = EngineConfig(), generation: Int = 1,
        health current: HealthSnapshot? = nil, keysDirectory: String? = nil, signing: SigningPolicy = SigningPolicy(),
        now: UInt32 = 0
    ) -> Outcome {
        var diags: [Diagnostic] = []
        // Pools that are valid are bound even when others are not, so every problem is reported.
        let (pools, poolDiags) = PoolFileParser.loadPartial(directory: directory)
        diags += poolDiags
        let bindings = nameBindings(pools)
        let zoneOutcome: ZoneLoader.Outcome
        do { zoneOutcome = try ZoneLoader.load(directory: directory, bindings: bindings) } catch {
            return Outcome(snapshot: nil, diagnostics: diags + [Diagnostic(file: directory, line: 0, "\(error)")])
        }
        diags += zoneOutcome.diagnostics
        var health = current ?? HealthSnapshot(version: 1)
        if let statePath {
            let (overrides, stateDiags) = AdminStateFile.load(path: statePath)
            diags += stateDiags
            health = HealthSnapshot(version: 1, overrides: overrides)
        }
        guard let zones = zoneOutcome.zones, !diags.contains(where: { $0.severity == .error }) else {
            return Outcome(snapshot: nil, diagnostics: diags)
        }
        var keys: [ZoneKey] = []
        if let keysDirectory {
            let loaded = KeyFiles.load(directory: keysDirectory)
            diags += loaded.diagnostics
            keys = loaded.keys
            diags += keyDiagnostics(keys: keys, zones: zones, directory: keysDirectory, now: now, signing: signing)
        }
        guard !diags.contains(where: { $0.severity == .error }) else { return Outcome(snapshot: nil, diagnostics: diags) }
        let runtime = PoolsRuntime(pools: pools, plans: PoolsRuntime.plans(for: pools), health: health)
        let snapshot = Snapshot(zones: zones, pools: runtime, config: config, generation: generation, keys: keys, signing: signing, now: now)
        return Outcome(snapshot: snapshot, diagnostics: diags)
    }

    /// The names the pool files bind, as the zone loader places them.
    static func nameBindings(_ pools: PoolSet) -> [NameBinding] {
        pools.bindings.map {
            NameBinding(name: $0.name, pool: $0.pool, answersCNAME: pools.pools[$0.pool].isCNAME, file: $0.file, line: $0.line)
        }
    }

    /// The current configuration with the named zones read again from their files and nothing
    /// else (`meridian ctl reload ZONE`, as `knotc zone-reload` and `nsd-control reload ZONE`):
    /// pools, keys, the other zones and the health stay as they are, so a zone can be
    /// reloaded while another file of the directory is being edited. Only a served zone can be
    /// reloaded this way; a full reload adds and removes zones.
    public static func reloadZones(_ names: [String], of current: Snapshot, now: UInt32) -> Outcome {
        var diags: [Diagnostic] = []
        var chosen: [Int] = []
        let served = current.zones.zones.map(\.origin)
        let list = served.map(Name.text).joined(separator: ", ")
        for name in names {
            guard let wire = Name.parse(name.hasSuffix(".") ? name : name + ".").map(Name.lowercased) else {
                diags.append(Diagnostic(file: "-", line: 0, "\(name) is not a domain name"))
                continue
            }
            guard let i = served.firstIndex(of: wire) else {
                diags.append(Diagnostic(file: "-", line: 0, "\(Name.text(wire)) is not a served zone (zones: \(list)); a full reload adds new zones"))
                continue
            }
            if !chosen.contains(i) { chosen.append(i) }
        }
        guard diags.isEmpty else { return Outcome(snapshot: nil, diagnostics: diags) }
        // Each pool-bound name goes to the deepest served zone, as in a full load.
        let bindings = nameBindings(current.pools.pools).filter { b in
            let key = Name.lowercased(b.name)
            guard let deepest = served.filter({ Name.isSubdomain(key, of: $0) }).max(by: { $0.count < $1.count }) else { return false }
            return chosen.contains { served[$0] == deepest }
        }
        let files = chosen.map { (path: current.zones.zones[$0].file, origin: Name.text(served[$0])) }
        let loaded = ZoneLoader.load(files: files, bindings: bindings)
        diags += loaded.diagnostics
        guard let fresh = loaded.zones, !diags.contains(where: { $0.severity == .error }) else { return Outcome(snapshot: nil, diagnostics: diags) }
        var zones = current.zones.zones
        for z in fresh.zones { if let i = served.firstIndex(of: z.origin) { zones[i] = z } }
        let set = ZoneSet(zones: zones)
        diags += keyDiagnostics(keys: current.keys, zones: set, directory: "-", now: now, signing: current.signing)
        guard !diags.contains(where: { $0.severity == .error }) else { return Outcome(snapshot: nil, diagnostics: diags) }
        let snapshot = Snapshot(
            zones: set, pools: current.pools, config: current.config, generation: current.generation, keys: current.keys,
            signing: current.signing, now: now, configGeneration: current.configGeneration)
        return Outcome(snapshot: snapshot, diagnostics: diags)
    }

    /// Keys for zones that are not served are errors (a typo would leave a zone unsigned while
    /// its DS says it is signed); a served zone with keys but none active now is a warning.
    static func keyDiagnostics(keys: [ZoneKey], zones: ZoneSet, directory: String, now: UInt32, signing: SigningPolicy) -> [Diagnostic] {
        var diags: [Diagnostic] = []
        let served = Set(zones.zones.map { Name.text($0.origin) })
        for k in keys where !served.contains(Name.text(k.zone)) {
            diags.append(Diagnostic(file: k.file, line: 0, "key \(k.tag) is for \(Name.text(k.zone)), which is not a served zone (zones: \(served.sorted().joined(separator: ", ")))"))
        }
        // A zone signed online must not carry signatures or denial records of its own: they
        // would be served beside Meridian's and contradict them.
        let offline: Set<UInt16> = [RRType.rrsig, RRType.nsec, 50, 51, RRType.dnskey, RRType.cds, RRType.cdnskey]
        for z in zones.zones where keys.contains(where: { $0.zone == z.origin }) {
            for t in Set(z.sets.map(\.type)).intersection(offline).sorted() {
                diags.append(Diagnostic(file: z.file, line: 0, "\(Name.text(z.origin)) is signed online (--keys) but its zone file holds \(RRType.name(t)) records: remove them"))
            }
        }
        for z in zones.zones where keys.contains(where: { $0.zone == z.origin }) && ZoneSigner(apex: z.origin, keys: keys, now: now, policy: signing) == nil {
            diags.append(Diagnostic(file: directory, line: 0, severity: .warning, "\(Name.text(z.origin)) has keys but none is active now: it is served unsigned"))
        }
        return diags
    }

    /// The same configuration with another health view (the peer group's merged view).
    public static func rebuildHealth(of snapshot: Snapshot, health: HealthSnapshot, generation: Int) -> Snapshot {
        snapshot.with(pools: snapshot.pools.with(health: health), generation: generation)
    }

}
