import Control
import Foundation
import Health
@testable import HealthCheck
import Logging
import NIOCore

/// The probe executor with a `MonitorBook` over it, as the control core runs them (test glue:
/// the server's core does this on its loop). Observations are handed over after every change.
final class TestMonitor: @unchecked Sendable {
    // @unchecked: `book`, `epoch` and the counters are used under `lock` only.
    private let lock = NSLock()
    private var book = MonitorBook(observer: "test")
    private var epoch = 0
    private var transitions = 0
    private var inconclusive = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private let wall: @Sendable () -> Double
    private let publish: @Sendable ([String: MemberObservations]) -> Void
    private(set) var executor: ProbeExecutor!

    init(maxExec: Int = 16, wall: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }, publish: @escaping @Sendable ([String: MemberObservations]) -> Void) {
        self.wall = wall
        self.publish = publish
        executor = ProbeExecutor(logger: Logger(label: "test"), maxExec: maxExec) { [weak self] e in self?.handle(e) }
    }

    func update(targets: [MonitorTarget]) {
        let e: Int = lock.withLock {
            book.configure(targets, wallNow: wall())
            epoch += 1
            return epoch
        }
        executor.run(targets, epoch: e)
    }

    func firstRound(timeout: Double) async {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !lock.withLock({ book.allObserved }) { try? await Task.sleep(for: .milliseconds(10)) }
    }

    func stats() async -> (checksRun: Int, transitions: Int, inconclusive: Int, execWaits: Int) {
        let s = (try? await executor.currentStats().get()) ?? MonitorStats()
        return lock.withLock { (s.checksRun, transitions, inconclusive, s.execWaits) }
    }

    func shutdown() async { await executor.shutdown() }

    private func handle(_ event: ProbeEvent) {
        let observations: [String: MemberObservations] = lock.withLock {
            switch event {
            case let .checkDone(e, i, j, result, elapsed):
                guard e == epoch else { return [:] }
                switch book.checkDone(member: i, check: j, result: result, elapsed: elapsed, wallNow: wall()) {
                case .recorded(let t, _): if t != nil { transitions += 1 }
                case .late, .localShortage: inconclusive += 1
                }
            case let .agentReplied(e, i, reply):
                guard e == epoch else { return [:] }
                _ = book.agentReplied(member: i, reply, wallNow: wall())
            case let .agentFailed(e, i, message):
                guard e == epoch else { return [:] }
                _ = book.agentFailed(member: i, message, wallNow: wall())
            }
            return book.observations()
        }
        if !observations.isEmpty { publish(observations) }
    }
}
