import Health
import DNSSEC
import Diagnostics
import Foundation
import Gossip
import PoolConfig
import QueryEngine

/// Everything one configuration directory says: the snapshot the answer path reads (zones,
/// pools, the state file's overrides, DNSSEC keys) and the cluster file.
public struct Configuration: Sendable {
    public var directory: String
    public var snapshot: Snapshot
    /// The group this instance belongs to; nil: a lone instance (no `cluster.yaml`).
    public var cluster: ClusterConfig?
}

/// The one entry point to a configuration directory. `meridian serve` (at start and at every
/// reload), `meridian check` and `meridian explain` all call `load`, so they accept and reject
/// exactly the same trees: pool files, zone files (with their `$INCLUDE`s), the state file, the
/// DNSSEC keys and the cluster file, each read through `OperatorFile` or ZoneStore's bounded
/// stream, with `file:line` diagnostics. A directory with any error yields no configuration.
public enum ConfigDirectory {
    public struct Outcome: Sendable {
        public var configuration: Configuration?
        public var diagnostics: [Diagnostic]
        public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    }

    /// The cluster file's name in a configuration directory.
    public static let clusterFile = PoolFileParser.clusterFileName

    /// Loads `directory`.
    /// - Parameters:
    ///   - statePath: the admin state file whose overrides start the health view (serve at
    ///     start, check, explain); nil for a reload, which keeps `health`.
    ///   - health: the view to carry into the new snapshot (a reload keeps what the group knows).
    public static func load(
        directory: String, statePath: String? = nil, engine: EngineConfig = EngineConfig(), keysDirectory: String? = nil,
        signing: SigningPolicy = SigningPolicy(), health: HealthSnapshot? = nil, now: UInt32
    ) -> Outcome {
        let built = SnapshotBuilder.build(
            directory: directory, statePath: statePath, config: engine, health: health, keysDirectory: keysDirectory, signing: signing, now: now)
        let (cluster, clusterDiags) = ClusterConfig.load(path: (directory as NSString).appendingPathComponent(clusterFile))
        let diagnostics = built.diagnostics + clusterDiags
        guard let snapshot = built.snapshot, !clusterDiags.contains(where: { $0.severity == .error }) else {
            return Outcome(configuration: nil, diagnostics: diagnostics)
        }
        return Outcome(configuration: Configuration(directory: directory, snapshot: snapshot, cluster: cluster), diagnostics: diagnostics)
    }

    /// The running configuration with the named zones read again and nothing else (see
    /// `SnapshotBuilder.reloadZones`): the cluster file is not read.
    public static func reloadZones(_ names: [String], of current: Snapshot, now: UInt32) -> Outcome {
        let built = SnapshotBuilder.reloadZones(names, of: current, now: now)
        guard let snapshot = built.snapshot else { return Outcome(configuration: nil, diagnostics: built.diagnostics) }
        return Outcome(configuration: Configuration(directory: "-", snapshot: snapshot, cluster: nil), diagnostics: built.diagnostics)
    }
}
