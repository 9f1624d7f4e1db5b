import ArgumentParser
import Health
import Foundation
import HealthCheck
import MeridianServer
import Gossip
import GossipTransport
import Control
import PoolConfig
import QueryEngine

/// `explain --peer`: a running instance's merged state, folded here with the same pure
/// functions the server uses, so explain shows what that instance answers and why.
enum LiveView {
    static func apply(peer: String, keyFile: String?, insecure: Bool, cluster: ClusterConfig?, to snapshot: Snapshot) async throws -> Snapshot {
        guard let address = GossipAddress(peer) else { throw ValidationError("bad --peer \(peer): use IP:PORT") }
        let keys: GossipKeys
        if let keyFile { keys = try GossipKeys.load(path: keyFile) } else if insecure { keys = .insecureKey } else {
            throw ValidationError("--peer needs --gossip-key-file (or --gossip-insecure)")
        }
        let (sender, state) = try await GossipTransport.query(address: address, keys: keys)
        var ledger = Ledger()
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        for raw in state.entries { if let e = try? LedgerCodec.decode(raw) { _ = try? ledger.merge(e, nowMillis: now) } }
        let targets = MonitorTarget.targets(for: snapshot.pools.pools)
        let digest = DNSServer.digest(snapshot.pools.pools, targets)
        var alive: [String] = []
        print("peers, as \(sender) sees them:")
        for u in state.members {
            switch u {
            case let .alive(n, a, i, d):
                alive.append(n)
                print("  \(n) \(a) alive (incarnation \(i))\(n == sender ? " (answering)" : "")\(d == digest ? "" : ", DIFFERENT pool configuration from this directory")")
            case let .suspect(n, i, _):
                print("  \(n) suspect (incarnation \(i)): neither probes nor counts first")
            case let .dead(n, i, _, left):
                print("  \(n) \(left ? "left" : "dead") (incarnation \(i))")
            case .data:
                break
            }
        }
        let definitions = ControlCore.definitions(targets)
        let probers = cluster.map { HealthFold.probers(members: definitions.keys, alive: alive, count: $0.probers) } ?? [:]
        // The server's own fold, at this moment: expired overrides are gone here as they are there.
        let inputs = HealthFold.inputs(ledger: ledger, alive: Set(alive), probers: probers, definitions: definitions, policy: cluster?.verdict ?? .majority)
        let health = HealthFold.snapshot(inputs, nowMillis: now, version: 1)
        return snapshot.with(pools: snapshot.pools.with(health: health), generation: snapshot.generation + 1)
    }

    /// UTC wall time with milliseconds.
    static func time(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        let ms = Int((seconds - Double(Int(seconds))) * 1000)
        return String(format: "%02d:%02d:%02d.%03dZ", parts.tm_hour, parts.tm_min, parts.tm_sec, ms)
    }

    /// Who probes each member of the pool, what each observer sees, and the verdict.
    static func printMembers(of pool: Pool, health: HealthSnapshot) {
        print("health view (verdict policy: \(health.policy)):")
        for m in pool.members {
            let obs = health.observations[m.id]
            let probers = obs?.probers ?? []
            print("  \(m.id): probed by \(probers.isEmpty ? "-" : probers.joined(separator: ", "))")
            for o in obs?.observers ?? [] {
                let checks = obs?.checks.filter { $0.observer == o }.map {
                    "\($0.check) \($0.up ? "up" : "DOWN") (\($0.reason)) since \(time($0.at))\($0.provisional ? ", initial state" : "")"
                } ?? []
                let agent = obs?.agents.first { $0.observer == o }.map { "agent \($0.detail)" }
                print("    \(o) sees: \((checks + [agent].compactMap { $0 }).joined(separator: ", "))")
            }
            print("    verdict: \(health.status(of: m.id))")
        }
    }
}
