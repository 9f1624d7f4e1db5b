import Foundation
import Testing
@testable import Diagnostics

@Suite("Operator files")
struct OperatorFileTests {
    let dir: String

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("meridian-opfile-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    /// A FIFO in a file's place is refused at once (it would block a plain open), and so are a
    /// directory, a file over the limit, a file that is not UTF-8, and a missing one.
    @Test func onlyBoundedRegularTextFilesAreRead() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/pools.yaml"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: OperatorFile.Failure.notRegular) { try OperatorFile.text(fifo, maxBytes: 100) }
        #expect(throws: OperatorFile.Failure.notRegular) { try OperatorFile.text(dir, maxBytes: 100) }
        #expect(throws: OperatorFile.Failure.missing) { try OperatorFile.text(dir + "/none", maxBytes: 100) }
        let big = dir + "/big"
        try String(repeating: "x", count: 101).write(toFile: big, atomically: true, encoding: .utf8)
        #expect(throws: OperatorFile.Failure.tooLarge(size: 101, limit: 100)) { try OperatorFile.text(big, maxBytes: 100) }
        let binary = dir + "/bin"
        try Data([0xFF, 0xFE, 0x00]).write(to: URL(fileURLWithPath: binary))
        #expect(throws: OperatorFile.Failure.notText) { try OperatorFile.text(binary, maxBytes: 100) }
        let good = dir + "/good"
        try "peers: {}\n".write(toFile: good, atomically: true, encoding: .utf8)
        #expect(try OperatorFile.text(good, maxBytes: 100) == "peers: {}\n")
        #expect(try OperatorFile.text(good, maxBytes: 10) == "peers: {}\n")  // exactly at the limit
        guard case .failure(let d) = OperatorFile.read(big, maxBytes: 100) else { Issue.record("read a file over the limit"); return }
        #expect(d.description == "\(big):0: the file has 101 octets, more than 100")
    }

    /// Larger than one read: the whole file, never a prefix.
    @Test func largeFilesAreReadWhole() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/large"
        let text = String(repeating: "0123456789abcdef", count: 20_000)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try OperatorFile.text(path, maxBytes: 1 << 20) == text)
    }
}
