#if canImport(Glibc)
import Glibc
#endif
import Diagnostics
import DNSWire

/// Records as the parser hands them over, kept in flat arrays (no object per record) until
/// `ZoneBuilder` groups them into a `Zone`. Owners are interned as they arrive; RDATA goes
/// into one arena, each record as a 2-octet length and its octets, which the zone keeps as is.
///
/// A class because `$INCLUDE` parses into the same accumulator from a copy of the parser state.
final class ZoneAccumulator {
    /// The apex, lowercased.
    let origin: [UInt8]
    var names = NameInterner()
    /// Owner -> its name as first written, when that differs from the lowercased key.
    var ownerCase: [Int: [UInt8]] = [:]
    var recOwner: [UInt32] = []
    var recType: [UInt16] = []
    var recTTL: [UInt32] = []
    var recLine: [UInt32] = []
    var recFile: [UInt16] = []
    /// Record -> offset in `data` of its RDLENGTH.
    var recData: [UInt32] = []
    var data: [UInt8] = []
    var files: [String] = []
    /// Records refused as they arrived (class, out of zone, type), in file order.
    var rejected: [Diagnostic] = []
    private var lastFile = -1
    private var lower = [UInt8](repeating: 0, count: 256)

    init(origin: [UInt8], expectedBytes: Int = 0) {
        self.origin = Name.lowercased(origin)
        // A rough guess from the text's size: the capacity beyond what is used is address
        // space, never touched, so it costs no memory; it saves the copies of growing.
        let guess = min(expectedBytes / 24, 1 << 26)
        reserveRecords(guess)
        data.reserveCapacity(min(expectedBytes, Int(UInt32.max)))
    }

    private func reserveRecords(_ n: Int) {
        recOwner.reserveCapacity(n)
        recType.reserveCapacity(n)
        recTTL.reserveCapacity(n)
        recLine.reserveCapacity(n)
        recFile.reserveCapacity(n)
        recData.reserveCapacity(n)
    }

    var count: Int { recData.count }

    /// Takes one record: `owner` uncompressed in the case written, `rdata` uncompressed.
    func add(owner: UnsafeRawBufferPointer, type: UInt16, rrclass: UInt16, ttl: UInt32, rdata: UnsafeRawBufferPointer, file: String, line: Int) {
        func reject(_ m: String) { rejected.append(Diagnostic(file: file, line: line, m)) }
        guard rrclass == RRClass.in else { return reject("class \(rrclass) is not IN: only IN zones are served") }
        guard owner.count > 0, owner.count <= 255 else { return reject("bad owner name") }
        var differs = false
        for i in 0..<owner.count {
            lower[i] = Name.lower(owner[i])
            if lower[i] != owner[i] { differs = true }
        }
        let ownerText = { Name.text(Array(owner)) }
        let id: Int? = lower.withUnsafeBytes { l in
            let key = UnsafeRawBufferPointer(rebasing: l[0..<owner.count])
            guard ZoneAccumulator.isAtOrBelow(key, origin) else { return nil }
            return names.intern(key)
        }
        guard let id else {
            return reject("\(ownerText()) is out of zone (not at or below \(Name.text(origin)))")
        }
        if type == RRType.opt || type == RRType.axfr || type == RRType.ixfr || type == RRType.any {
            return reject("\(RRType.name(type)) is not a record type that can be served")
        }
        guard data.count + rdata.count + 2 <= Int(UInt32.max), rdata.count <= 65535, count < Int(UInt32.max) else {
            return reject("the zone holds more than 4 GiB of record data")
        }
        if differs && ownerCase[id] == nil { ownerCase[id] = Array(owner) }
        guard let f = fileIndex(file) else { return reject("more than 65535 files in one zone") }
        recOwner.append(UInt32(id))
        recType.append(type)
        recTTL.append(ttl)
        recLine.append(UInt32(clamping: line))
        recFile.append(f)
        recData.append(UInt32(data.count))
        data.append(UInt8(rdata.count >> 8))
        data.append(UInt8(rdata.count & 0xFF))
        data.append(contentsOf: rdata)
    }

    private func fileIndex(_ file: String) -> UInt16? {
        if lastFile >= 0, files[lastFile] == file { return UInt16(lastFile) }
        if let i = files.firstIndex(of: file) {
            lastFile = i
        } else {
            guard files.count < 65535 else { return nil }
            files.append(file)
            lastFile = files.count - 1
        }
        return UInt16(lastFile)
    }

    /// Record `r`'s file and line.
    func place(_ r: Int) -> (file: String, line: Int) { (files[Int(recFile[r])], Int(recLine[r])) }

    /// A diagnostic at record `r`.
    func diagnostic(_ r: Int, severity: Diagnostic.Severity = .error, _ m: String) -> Diagnostic {
        Diagnostic(file: files[Int(recFile[r])], line: Int(recLine[r]), severity: severity, m)
    }

    /// Calls `body` with record `r`'s RDATA.
    func withRData<T>(_ r: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        Zone.withRData(records: recData, rdata: data, r, body)
    }

    /// Whether lowercased `name` is `ancestor` or below it, on a label boundary.
    static func isAtOrBelow(_ name: UnsafeRawBufferPointer, _ ancestor: [UInt8]) -> Bool {
        guard let n = name.baseAddress else { return false }
        var pos = 0
        while pos < name.count {
            if name.count - pos == ancestor.count {
                return ancestor.withUnsafeBytes { a in a.baseAddress.map { memcmp(n + pos, $0, a.count) == 0 } ?? false }
            }
            if name[pos] == 0 { return false }
            pos += 1 + Int(name[pos])
        }
        return false
    }

    /// Owner `id`'s name as written.
    func ownerName(_ id: Int) -> [UInt8] { ownerCase[id] ?? names.key(id) }
}
