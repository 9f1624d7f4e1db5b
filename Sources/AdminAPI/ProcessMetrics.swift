#if canImport(Glibc)
import Glibc
#endif
import Atomics
import Prometheus

/// The process's own figures, read from /proc at each scrape, under the names Prometheus'
/// client libraries use: `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, `process_max_fds`, `process_start_time_seconds`. Reading procfs does not
/// block; a figure that cannot be read is left as it was.
final class ProcessMetrics: Sendable {
    private let cpu: Counter
    private let resident: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private let start: Gauge
    /// CPU ticks already counted, so each scrape adds what passed since the last (no lock:
    /// scrapes may run at once on the admin API's loops).
    private let ticksCounted = ManagedAtomic<UInt64>(0)

    init(registry: PrometheusCollectorRegistry) {
        func d(_ name: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: MetricCatalog.help[name] ?? "")
        }
        cpu = registry.makeCounter(descriptor: d("process_cpu_seconds_total"))
        resident = registry.makeGauge(descriptor: d("process_resident_memory_bytes"))
        openFDs = registry.makeGauge(descriptor: d("process_open_fds"))
        maxFDs = registry.makeGauge(descriptor: d("process_max_fds"))
        start = registry.makeGauge(descriptor: d("process_start_time_seconds"))
        if let s = Self.stat(), let boot = Self.bootTime() { start.set(boot + s.startTicks / Self.ticks) }
    }

    /// Brings every figure up to date (before `/metrics` is written).
    func update() {
        if let s = Self.stat() {
            let now = UInt64(s.utime + s.stime)
            var old = ticksCounted.load(ordering: .relaxed)
            while now > old {
                let (done, seen) = ticksCounted.compareExchange(expected: old, desired: now, ordering: .relaxed)
                if done {
                    cpu.increment(by: Double(now - old) / Self.ticks)
                    break
                }
                old = seen
            }
        }
        if let statm = Self.read("/proc/self/statm"), let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            resident.set(pages * Double(sysconf(Int32(_SC_PAGESIZE))))
        }
        openFDs.set(Double(Self.countEntries("/proc/self/fd")))
        var rl = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 { maxFDs.set(Double(rl.rlim_cur)) }
    }

    static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// utime, stime and starttime from /proc/self/stat (fields 14, 15 and 22, counted after
    /// the command name, which may hold spaces and parentheses).
    static func stat() -> (utime: Double, stime: Double, startTicks: Double)? {
        guard let text = read("/proc/self/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so field n is fields[n - 3].
        guard fields.count > 19, let u = Double(fields[11]), let s = Double(fields[12]), let st = Double(fields[19]) else { return nil }
        return (u, s, st)
    }

    static func bootTime() -> Double? {
        guard let text = read("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") { return Double(line.dropFirst(6)) }
        return nil
    }

    /// A small procfs file's text (procfs files report size 0, so read until the end).
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while out.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func countEntries(_ path: String) -> Int {
        guard let dir = opendir(path) else { return 0 }
        defer { closedir(dir) }
        var n = 0
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { Array($0.prefix(2)) }
            if name[0] == UInt8(ascii: "."), name[1] == 0 || name[1] == UInt8(ascii: ".") { continue }
            n += 1
        }
        return n - 1  // the descriptor opendir holds
    }
}
