import Diagnostics
import CLDNS
import DNSWire
import Foundation

/// One record from a zone file, in wire form.
public struct ZoneRecord: Sendable, Equatable {
    /// Owner name, uncompressed wire form, case as written.
    public var owner: [UInt8]
    public var type: UInt16
    public var rrclass: UInt16
    public var ttl: UInt32
    /// RDATA in uncompressed wire form.
    public var rdata: [UInt8]
    public var file: String
    public var line: Int

    public init(owner: [UInt8], type: UInt16, rrclass: UInt16 = RRClass.in, ttl: UInt32, rdata: [UInt8], file: String = "", line: Int = 0) {
        self.owner = owner
        self.type = type
        self.rrclass = rrclass
        self.ttl = ttl
        self.rdata = rdata
        self.file = file
        self.line = line
    }
}

/// Reads a master file (RFC 1035 5) into records: this type handles the directives
/// (`$ORIGIN`, `$TTL`, `$INCLUDE`, RFC 1035 5.1 and RFC 2308 4) and owner inheritance, and
/// libldns turns each record's text into wire form, which covers every type libldns knows and
/// the RFC 3597 `\# len hex` form for the rest.
public enum RecordParser {
    /// The most nested `$INCLUDE`s followed.
    static let maxIncludeDepth = 8

    /// Parses `path` with `origin` (presentation form) as the initial `$ORIGIN`.
    public static func parse(path: String, origin: String) -> (records: [ZoneRecord], diagnostics: [Diagnostic]) {
        var state = State(origin: origin.hasSuffix(".") ? origin : origin + ".")
        parseFile(path: path, state: &state, depth: 0, includedFrom: nil)
        return (state.records, state.diagnostics)
    }

    /// Parses zone text held in memory (for tests and tools); `$INCLUDE` paths are relative to
    /// the current directory.
    public static func parse(text: String, file: String = "<text>", origin: String) -> (records: [ZoneRecord], diagnostics: [Diagnostic]) {
        var state = State(origin: origin.hasSuffix(".") ? origin : origin + ".")
        parseText(text, file: file, directory: FileManager.default.currentDirectoryPath, state: &state, depth: 0)
        return (state.records, state.diagnostics)
    }

    struct State {
        var origin: String
        var defaultTTL: UInt32?
        var lastTTL: UInt32?
        var previousOwner: String?
        var records: [ZoneRecord] = []
        var diagnostics: [Diagnostic] = []
    }

    static func parseFile(path: String, state: inout State, depth: Int, includedFrom: (String, Int)?) {
        guard let data = FileManager.default.contents(atPath: path) else {
            let (f, l) = includedFrom ?? (path, 0)
            state.diagnostics.append(Diagnostic(file: f, line: l, "cannot read \(path)"))
            return
        }
        guard let text = String(data: data, encoding: .utf8) else {
            state.diagnostics.append(Diagnostic(file: path, line: 1, "not UTF-8 text"))
            return
        }
        parseText(text, file: path, directory: (path as NSString).deletingLastPathComponent, state: &state, depth: depth)
    }

    static func parseText(_ text: String, file: String, directory: String, state: inout State, depth: Int) {
        let entries: [ZoneEntry]
        do { entries = try ZoneFileReader.entries(of: text, file: file) } catch {
            state.diagnostics.append(error)
            return
        }
        for entry in entries {
            if entry.text.hasPrefix("$") {
                directive(entry, directory: directory, state: &state, depth: depth)
                continue
            }
            var text = entry.text
            if entry.blankOwner {
                guard let prev = state.previousOwner else {
                    state.diagnostics.append(Diagnostic(file: entry.file, line: entry.line, "record with no owner name and no previous owner"))
                    continue
                }
                text = prev + " " + text
            }
            switch record(text, state: state, file: entry.file, line: entry.line) {
            case .success(let (rec, ownerText)):
                state.records.append(rec)
                state.previousOwner = ownerText
                // Without $TTL a record with no TTL takes the last one used (RFC 1035 5.1); a
                // record that had none got exactly that, so every record's TTL is "the last".
                state.lastTTL = rec.ttl
            case .failure(let d):
                state.diagnostics.append(d)
            }
        }
    }

    static func directive(_ entry: ZoneEntry, directory: String, state: inout State, depth: Int) {
        let f = ZoneFileReader.fields(entry.text)
        func err(_ m: String) { state.diagnostics.append(Diagnostic(file: entry.file, line: entry.line, m)) }
        switch f[0].uppercased() {
        case "$ORIGIN":
            guard f.count == 2, let name = absolute(f[1], origin: state.origin), Name.parse(name) != nil else {
                return err("$ORIGIN needs one domain name")
            }
            state.origin = name
        case "$TTL":
            guard f.count == 2, let ttl = parseTTL(f[1]) else { return err("$TTL needs one TTL value (seconds or 1h2m style)") }
            state.defaultTTL = ttl
        case "$INCLUDE":
            guard f.count == 2 || f.count == 3 else { return err("$INCLUDE needs a file name and an optional origin") }
            guard depth < maxIncludeDepth else { return err("$INCLUDE nested more than \(maxIncludeDepth) deep") }
            let target = f[1].hasPrefix("/") ? f[1] : (directory as NSString).appendingPathComponent(f[1])
            // RFC 1035 5.1: the included file gets its own origin; the includer's state is restored after.
            var inner = state
            if f.count == 3 {
                guard let o = absolute(f[2], origin: state.origin) else { return err("bad origin in $INCLUDE") }
                inner.origin = o
            }
            parseFile(path: target, state: &inner, depth: depth + 1, includedFrom: (entry.file, entry.line))
            state.records = inner.records
            state.diagnostics = inner.diagnostics
        default:
            err("unknown directive \(f[0])")
        }
    }

    static func absolute(_ name: String, origin: String) -> String? {
        if name == "@" { return origin }
        if name.hasSuffix(".") && !name.hasSuffix("\\.") { return name }
        return origin == "." ? name + "." : name + "." + origin
    }

    /// A TTL in seconds or BIND's unit form (`1h30m`, `2d`, `1w`).
    static func parseTTL(_ s: String) -> UInt32? {
        if let v = UInt32(s) { return v }
        var total: UInt64 = 0
        var num: UInt64 = 0
        var sawDigit = false
        for ch in s.lowercased() {
            if let d = ch.wholeNumberValue, ch.isASCII {
                num = num * 10 + UInt64(d)
                sawDigit = true
                guard num <= UInt64(UInt32.max) else { return nil }
            } else {
                guard sawDigit else { return nil }
                let unit: UInt64
                switch ch {
                case "s": unit = 1
                case "m": unit = 60
                case "h": unit = 3600
                case "d": unit = 86400
                case "w": unit = 604800
                default: return nil
                }
                // Checked: a token of many large units (`4294967295w4294967295w...`) must be
                // rejected, not overflow (issue: hardening, finding 4).
                total += num * unit
                guard total <= UInt64(Int32.max) else { return nil }
                num = 0
                sawDigit = false
            }
        }
        total += num
        return total <= UInt64(Int32.max) ? UInt32(total) : nil
    }

    static func record(_ text: String, state: State, file: String, line: Int) -> Result<(ZoneRecord, String), Diagnostic> {
        guard let originRdf = ldns_dname_new_frm_str(state.origin) else {
            return .failure(Diagnostic(file: file, line: line, "bad origin \(state.origin)"))
        }
        defer { ldns_rdf_deep_free(originRdf) }
        let defaultTTL = state.defaultTTL ?? state.lastTTL ?? 3600
        var rrp: UnsafeMutablePointer<ldns_rr>? = nil
        let status = text.withCString { ldns_rr_new_frm_str(&rrp, $0, defaultTTL, originRdf, nil) }
        guard status == LDNS_STATUS_OK, let rr = rrp else {
            let why = String(cString: ldns_get_errorstr_by_id(status))
            return .failure(Diagnostic(file: file, line: line, "\(why.prefix(1).lowercased() + why.dropFirst()): \(text)"))
        }
        defer { ldns_rr_free(rr) }
        guard let ownerRdf = ldns_rr_owner(rr) else { return .failure(Diagnostic(file: file, line: line, "record has no owner")) }
        let owner = Array(UnsafeRawBufferPointer(start: ldns_rdf_data(ownerRdf), count: ldns_rdf_size(ownerRdf)))
        var wire: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        guard ldns_rr2wire(&wire, rr, Int32(LDNS_SECTION_ANSWER.rawValue), &size) == LDNS_STATUS_OK, let wire else {
            return .failure(Diagnostic(file: file, line: line, "cannot convert record to wire form: \(text)"))
        }
        defer { free(wire) }
        let all = UnsafeRawBufferPointer(start: wire, count: size)
        let fixed = owner.count
        guard size >= fixed + 10 else { return .failure(Diagnostic(file: file, line: line, "bad record \(text)")) }
        let rdata = Array(all[(fixed + 10)...])
        let ownerText: String
        if let s = ldns_rdf2str(ownerRdf) {
            ownerText = String(cString: s)
            free(s)
        } else {
            ownerText = Name.text(owner)
        }
        let type = ldns_rr_get_type(rr).rawValue.toUInt16
        if let problem = RdataCheck.problem(type: type, rdata: rdata) {
            return .failure(Diagnostic(file: file, line: line, "\(RRType.name(type)) record: \(problem)"))
        }
        let rec = ZoneRecord(
            owner: owner, type: ldns_rr_get_type(rr).rawValue.toUInt16, rrclass: ldns_rr_get_class(rr).rawValue.toUInt16,
            ttl: ldns_rr_ttl(rr), rdata: rdata, file: file, line: line)
        return .success((rec, ownerText))
    }
}

/// RDATA shapes the answer path relies on: libldns accepts the RFC 3597 form `\# 0` (and any
/// other length) for every type, so a CNAME, NS or SOA with no data would load and then be
/// served malformed. Types not listed are opaque data and pass.
enum RdataCheck {
    static func problem(type: UInt16, rdata: [UInt8]) -> String? {
        switch type {
        case RRType.a: return rdata.count == 4 ? nil : "RDATA must be 4 octets, not \(rdata.count)"
        case RRType.aaaa: return rdata.count == 16 ? nil : "RDATA must be 16 octets, not \(rdata.count)"
        case RRType.ns, RRType.cname, RRType.ptr, RRType.dname:
            return nameEnd(rdata, at: 0) == rdata.count ? nil : "RDATA must be exactly one domain name"
        case RRType.mx:
            return rdata.count > 2 && nameEnd(rdata, at: 2) == rdata.count ? nil : "RDATA must be a preference and a domain name"
        case RRType.srv:
            return rdata.count > 6 && nameEnd(rdata, at: 6) == rdata.count ? nil : "RDATA must be priority, weight, port and a target name"
        case RRType.soa:
            guard let m = nameEnd(rdata, at: 0), let r = nameEnd(rdata, at: m), rdata.count - r == 20 else {
                return "RDATA must be two domain names and five 32-bit numbers"
            }
            return nil
        case RRType.txt: return rdata.isEmpty ? "RDATA must hold at least one character-string" : nil
        default: return nil
        }
    }

    /// Where an uncompressed wire name starting at `start` ends, or nil if it is malformed.
    static func nameEnd(_ b: [UInt8], at start: Int) -> Int? {
        var i = start
        var length = 0
        while i < b.count {
            let n = Int(b[i])
            guard n & 0xC0 == 0 else { return nil }
            i += 1
            length += n + 1
            guard length <= 255 else { return nil }
            if n == 0 { return i }
            i += n
        }
        return nil
    }
}

extension BinaryInteger {
    var toUInt16: UInt16 { UInt16(truncatingIfNeeded: self) }
}
