/// Frame Streams (https://github.com/farsightsec/fstrm, `fstrm/control.h`): data frames are a
/// 32-bit big-endian length and the payload; a control frame is an escape (length 0), its own
/// length, a type and fields. A file is START, data, STOP; a socket is READY from the writer,
/// ACCEPT from the reader, START, data, STOP, and FINISH from the reader.
public enum FrameStreams {
    /// The content type of dnstap.
    public static let dnstapContentType = Array("protobuf:dnstap.Dnstap".utf8)

    public enum Control: UInt32, Sendable {
        case accept = 1, start = 2, stop = 3, ready = 4, finish = 5
    }

    /// The largest control frame read (fstrm's own limit is 512 octets).
    public static let maxControl = 512

    /// A data frame.
    public static func data(_ payload: [UInt8]) -> [UInt8] {
        be32(UInt32(payload.count)) + payload
    }

    /// A control frame, with the content type field when given (READY, ACCEPT, START).
    public static func control(_ type: Control, contentType: [UInt8]? = nil) -> [UInt8] {
        var body = be32(type.rawValue)
        if let contentType { body += be32(1) + be32(UInt32(contentType.count)) + contentType }
        return be32(0) + be32(UInt32(body.count)) + body
    }

    /// Reads a control frame from its escape on: the type and the content types it names, or
    /// nil when the octets are not a whole, well-formed control frame.
    public static func parseControl(_ b: [UInt8]) -> (type: UInt32, contentTypes: [[UInt8]], length: Int)? {
        guard b.count >= 12, u32(b, 0) == 0 else { return nil }
        let length = Int(u32(b, 4))
        guard length >= 4, length <= maxControl, b.count >= 8 + length else { return nil }
        let type = u32(b, 8)
        var types: [[UInt8]] = []
        var i = 12
        while i < 8 + length {
            guard i + 8 <= 8 + length, u32(b, i) == 1 else { return nil }
            let n = Int(u32(b, i + 4))
            guard i + 8 + n <= 8 + length else { return nil }
            types.append(Array(b[(i + 8)..<(i + 8 + n)]))
            i += 8 + n
        }
        return (type, types, 8 + length)
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3]) }
}
