import Testing
@testable import HealthCheck

/// Issue 17, finding 4: a start-up error freed the monitor, and with it the curl runner, before
/// the runner's thread had started; the thread then read its `unowned self` ("Attempted to read
/// an unowned reference but object ... was already destroyed"). A runner stopped and dropped at
/// once must never be read after it is gone.
@Suite("Runner lifetimes")
struct RunnerLifetimeTests {
    @Test func runnersStoppedAndDroppedAtOnceNeverOutliveTheirThreads() {
        for _ in 0..<200 {
            let curl = CurlRunner()
            curl.stop()
        }
        for _ in 0..<50 {
            let tcp = TCPCheckEngine { _ in }
            tcp?.stop()
        }
    }
}
