import Diagnostics
import CLDNS
import CZoneStream
import DNSWire
import Foundation

/// Reads a master file (RFC 1035 5) with libldns: `ldns_fget_token_l_st` splits the file into
/// entries (parentheses, comments, quotes), and `ldns_rr_new_frm_str` turns each record into
/// wire form (every type libldns knows, and the RFC 3597 `\# len hex` form for the rest).
///
/// These are the two halves of `ldns_rr_new_frm_fp_l`, called separately because that
/// function frees the entry's text before it returns `LDNS_STATUS_SYNTAX_INCLUDE` (so the file
/// name of an `$INCLUDE` is lost) and reads TTLs with `ldns_str2period`, whose unsigned
/// arithmetic wraps (`9999999w` loads as 685442432 s). This type handles the directives
/// (`$ORIGIN`, `$TTL`, `$INCLUDE`, RFC 1035 5.1, RFC 2308 4), checks every TTL token with
/// `TTLText`, counts lines itself (libldns folds a comment line into the next entry's count),
/// and rejects what libldns 1.8.3 lets through: an unterminated quote, and parentheses still
/// open at the end of the file.
public enum RecordParser {
    /// The most nested `$INCLUDE`s followed.
    static let maxIncludeDepth = 8
    /// The most files one zone may include in all (every `$INCLUDE` followed counts, however
    /// deep), and the most octets they may hold together: a few lines that include each other
    /// k times per level must not cost k^depth opens.
    static let maxIncludes = 256
    static let maxIncludedBytes: Int64 = 1 << 30

    /// What a zone's `$INCLUDE`s have used so far (shared by every file of one zone).
    final class IncludeBudget {
        var files = 0
        var bytes: Int64 = 0
        var exhausted = false
    }
    /// The most of an entry's text quoted in a diagnostic.
    static let quotedTextLimit = 120

    /// Parses `path` with `origin` (presentation form) as the initial `$ORIGIN` into `sink`;
    /// returns the syntax errors.
    static func parse(path: String, origin: String, into sink: ZoneAccumulator) -> [Diagnostic] {
        var state = State(origin: origin.hasSuffix(".") ? origin : origin + ".", sink: sink)
        state.root = realPath((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
        parseFile(path: path, state: &state, depth: 0, includedFrom: nil)
        return state.diagnostics
    }

    /// Parses zone text held in memory (for tests and tools); `$INCLUDE` paths are relative to
    /// the current directory.
    static func parse(text: String, file: String = "<text>", origin: String, into sink: ZoneAccumulator) -> [Diagnostic] {
        var state = State(origin: origin.hasSuffix(".") ? origin : origin + ".", sink: sink)
        parseBytes(Array(text.utf8), file: file, directory: FileManager.default.currentDirectoryPath, state: &state, depth: 0)
        return state.diagnostics
    }

    /// What carries from one entry to the next. An `$INCLUDE` works on a copy, so the includer's
    /// origin, TTLs and previous owner are restored after it (RFC 1035 5.1).
    struct State {
        var origin: String
        var originName: OwnedName
        var defaultTTL: UInt32?
        var lastTTL: UInt32?
        /// The previous record's owner, for entries that start with white space.
        var previous = OwnedName(nil)
        /// Where records go; shared with the states of `$INCLUDE`d files.
        let sink: ZoneAccumulator
        /// Shared with the states of `$INCLUDE`d files too.
        let budget = IncludeBudget()
        /// The zones directory (symbolic links resolved): every `$INCLUDE` must stay inside it.
        /// nil for text held in memory.
        var root: String?
        var diagnostics: [Diagnostic] = []

        init(origin: String, sink: ZoneAccumulator) {
            self.origin = origin
            self.sink = sink
            self.originName = OwnedName(ldns_dname_new_frm_str(origin))
        }

        /// A copy whose libldns names are its own.
        func forInclude() -> State {
            var inner = self
            inner.originName = originName.clone()
            inner.previous = previous.clone()
            return inner
        }
    }

    static func parseFile(path: String, state: inout State, depth: Int, includedFrom: (String, Int)?) {
        let (f, l) = includedFrom ?? (path, 0)
        func cannot(_ why: String) { state.diagnostics.append(Diagnostic(file: f, line: l, "cannot read \(path)\(why)")) }
        // Non-blocking, and checked after opening, so a FIFO put in the file's place cannot hang the load.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return cannot(" (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return cannot(" (\(String(cString: strerror(errno))))") }
        guard info.st_mode & S_IFMT == S_IFREG else { return cannot(": not a regular file") }
        if includedFrom != nil {
            state.budget.bytes += Int64(info.st_size)
            guard state.budget.bytes <= maxIncludedBytes else {
                return includeLimit(&state, file: f, line: l, "the files $INCLUDEd by this zone hold more than \(maxIncludedBytes) octets in all")
            }
        }
        let stream = UnsafeMutablePointer<meridian_zone_stream>.allocate(capacity: 1)
        defer { stream.deallocate() }
        guard let fp = meridian_zone_stream_open_fd(stream, fd) else { return cannot(" (\(String(cString: strerror(errno))))") }
        lex(fp, stream, file: path, directory: (path as NSString).deletingLastPathComponent, state: &state, depth: depth)
    }

    static func parseBytes(_ bytes: [UInt8], file: String, directory: String, state: inout State, depth: Int) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBufferPointer { raw in
            let stream = UnsafeMutablePointer<meridian_zone_stream>.allocate(capacity: 1)
            defer { stream.deallocate() }
            guard let fp = meridian_zone_stream_open_memory(stream, raw.baseAddress, raw.count) else {
                return state.diagnostics.append(Diagnostic(file: file, line: 0, "cannot open the file's text for reading"))
            }
            lex(fp, stream, file: file, directory: directory, state: &state, depth: depth)
        }
    }

    /// Reads every entry of an open stream, then closes it.
    static func lex(_ fp: UnsafeMutablePointer<FILE>, _ stream: UnsafeMutablePointer<meridian_zone_stream>, file: String, directory: String, state: inout State, depth: Int) {
        defer {
            fclose(fp)
            meridian_zone_stream_release(stream)
        }
        meridian_stream_unlocked(fp)
        var lexer = EntryLexer(fp: fp, stream: stream)
        defer { lexer.release() }
        while let entry = lexer.next() {
            switch entry {
            case .failure(let line, let message):
                state.diagnostics.append(Diagnostic(file: file, line: line, message))
            case .entry(let line, let text):
                handle(text, line: line, file: file, directory: directory, state: &state, depth: depth)
            }
        }
    }

    static func handle(_ text: UnsafePointer<CChar>, line: Int, file: String, directory: String, state: inout State, depth: Int) {
        if text[0] == CChar(UInt8(ascii: "$")) {
            return directive(String(cString: text), line: line, file: file, directory: directory, state: &state, depth: depth)
        }
        if let d = record(text, state: &state, file: file, line: line) { state.diagnostics.append(d) }
    }

    static func directive(_ text: String, line: Int, file: String, directory: String, state: inout State, depth: Int) {
        let f = fields(text)
        func err(_ m: String) { state.diagnostics.append(Diagnostic(file: file, line: line, m)) }
        switch f[0].uppercased() {
        case "$ORIGIN":
            guard f.count == 2, let name = absolute(f[1], origin: state.origin), Name.parse(name) != nil,
                  let rdf = ldns_dname_new_frm_str(name) else {
                return err("$ORIGIN needs one domain name")
            }
            state.origin = name
            state.originName = OwnedName(rdf)
        case "$TTL":
            guard f.count == 2, let ttl = TTLText.seconds(f[1]) else {
                return err("$TTL needs one TTL value (seconds or 1h2m style, at most \(TTLText.max))")
            }
            state.defaultTTL = ttl
        case "$INCLUDE":
            include(f, line: line, file: file, directory: directory, state: &state, depth: depth)
        default:
            err("unknown directive \(quoted(f[0]))")
        }
    }

    static func include(_ f: [String], line: Int, file: String, directory: String, state: inout State, depth: Int) {
        func err(_ m: String) { state.diagnostics.append(Diagnostic(file: file, line: line, m)) }
        guard f.count == 2 || f.count == 3 else { return err("$INCLUDE needs a file name and an optional origin") }
        guard depth < maxIncludeDepth else { return err("$INCLUDE nested more than \(maxIncludeDepth) deep") }
        guard !state.budget.exhausted else { return }
        state.budget.files += 1
        guard state.budget.files <= maxIncludes else {
            return includeLimit(&state, file: file, line: line, "more than \(maxIncludes) $INCLUDEs followed for this zone (each counts, however deep)")
        }
        let target = f[1].hasPrefix("/") ? f[1] : (directory as NSString).appendingPathComponent(f[1])
        // Confined to the zones directory, symbolic links resolved first: an absolute path or a
        // link out of it was followed, and its text quoted in diagnostics (issue 18, finding 8).
        if let root = state.root {
            guard let real = realPath(target) else { return err("cannot read \(target) (\(String(cString: strerror(errno))))") }
            guard real == root || real.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
                return err("$INCLUDE \(f[1]) is outside the zones directory \(root)")
            }
        }
        var inner = state.forInclude()
        if f.count == 3 {
            guard let o = absolute(f[2], origin: state.origin), Name.parse(o) != nil, let rdf = ldns_dname_new_frm_str(o) else {
                return err("bad origin in $INCLUDE")
            }
            inner.origin = o
            inner.originName = OwnedName(rdf)
        }
        parseFile(path: target, state: &inner, depth: depth + 1, includedFrom: (file, line))
        state.diagnostics = inner.diagnostics
    }

    /// `path` with every symbolic link, `.` and `..` resolved; nil when it does not resolve.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Reports the include budget's end once, and stops following includes.
    static func includeLimit(_ state: inout State, file: String, line: Int, _ message: String) {
        guard !state.budget.exhausted else { return }
        state.budget.exhausted = true
        state.diagnostics.append(Diagnostic(file: file, line: line, message))
    }

    static func absolute(_ name: String, origin: String) -> String? {
        if name == "@" { return origin }
        if name.hasSuffix(".") && !name.hasSuffix("\\.") { return name }
        return origin == "." ? name + "." : name + "." + origin
    }

    /// A TTL in seconds or BIND's unit form (`1h30m`, `2d`, `1w`); see `TTLText`.
    static func parseTTL(_ s: String) -> UInt32? { TTLText.seconds(s) }

    /// One record into the sink, or why not.
    static func record(_ text: UnsafePointer<CChar>, state: inout State, file: String, line: Int) -> Diagnostic? {
        func fail(_ m: String) -> Diagnostic { Diagnostic(file: file, line: line, m) }
        let fields = LeadingFields(text)
        if fields.blankOwner && state.previous.pointer == nil {
            return fail("record with no owner name and no previous owner")
        }
        var explicitTTL: UInt32?
        if let token = fields.ttlToken {
            guard let v = TTLText.seconds(token) else {
                return fail("bad TTL \(quoted(token)) (seconds or 1h2m style, at most \(TTLText.max))")
            }
            explicitTTL = v
        }
        guard let origin = state.originName.pointer else { return fail("bad origin \(state.origin)") }
        var rrp: UnsafeMutablePointer<ldns_rr>? = nil
        let status = ldns_rr_new_frm_str(&rrp, text, 3600, origin, &state.previous.pointer)
        guard status == LDNS_STATUS_OK, let rr = rrp else {
            let why = String(cString: ldns_get_errorstr_by_id(status))
            return fail("\(why.prefix(1).lowercased() + why.dropFirst()): \(quoted(String(cString: text)))")
        }
        defer { ldns_rr_free(rr) }
        if let quoteProblem = LeadingFields.unterminatedQuote(text) { return fail(quoteProblem) }
        let ttl = explicitTTL ?? state.defaultTTL ?? state.lastTTL ?? 3600
        ldns_rr_set_ttl(rr, ttl)
        if let problem = wire(rr, sink: state.sink, file: file, line: line) { return problem }
        // Without $TTL a record with no TTL takes the last one used (RFC 1035 5.1); a record
        // that had none got exactly that, so every record's TTL is "the last".
        state.lastTTL = ttl
        return nil
    }

    /// The record into the sink in wire form, after the RDATA shape checks.
    static func wire(_ rr: UnsafeMutablePointer<ldns_rr>, sink: ZoneAccumulator, file: String, line: Int) -> Diagnostic? {
        func fail(_ m: String) -> Diagnostic { Diagnostic(file: file, line: line, m) }
        guard let ownerRdf = ldns_rr_owner(rr) else { return fail("record has no owner") }
        let ownerCount = ldns_rdf_size(ownerRdf)
        var wire: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        guard ldns_rr2wire(&wire, rr, Int32(LDNS_SECTION_ANSWER.rawValue), &size) == LDNS_STATUS_OK, let wire else {
            return fail("cannot convert the record to wire form")
        }
        defer { free(wire) }
        guard size >= ownerCount + 10 else { return fail("cannot convert the record to wire form") }
        let all = UnsafeRawBufferPointer(start: wire, count: size)
        let owner = UnsafeRawBufferPointer(rebasing: all[0..<ownerCount])
        let rdata = UnsafeRawBufferPointer(rebasing: all[(ownerCount + 10)...])
        let type = ldns_rr_get_type(rr).rawValue.toUInt16
        if let problem = RdataCheck.problem(type: type, rdata: rdata) {
            return fail("\(RRType.name(type)) record: \(problem)")
        }
        sink.add(owner: owner, type: type, rrclass: ldns_rr_get_class(rr).rawValue.toUInt16, ttl: ldns_rr_ttl(rr),
                 rdata: rdata, file: file, line: line)
        return nil
    }

    /// `text` for a diagnostic: at most `quotedTextLimit` characters.
    static func quoted(_ text: String) -> String {
        text.count <= quotedTextLimit ? text : text.prefix(quotedTextLimit) + "… (\(text.utf8.count) bytes)"
    }

    /// Splits a directive's text at white space outside quotes.
    static func fields(_ text: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var inQuote = false
        var escape = false
        for ch in text {
            if escape {
                cur.append(ch)
                escape = false
            } else if ch == "\\" {
                escape = true
                cur.append(ch)
            } else if ch == "\"" {
                inQuote.toggle()
                cur.append(ch)
            } else if (ch == " " || ch == "\t") && !inQuote {
                if !cur.isEmpty { out.append(cur) }
                cur = ""
            } else {
                cur.append(ch)
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }
}

/// A libldns name this code owns: freed when the last copy of the state holding it goes.
final class OwnedName {
    var pointer: UnsafeMutablePointer<ldns_rdf>?
    init(_ pointer: UnsafeMutablePointer<ldns_rdf>?) { self.pointer = pointer }
    func clone() -> OwnedName { OwnedName(pointer.flatMap { ldns_rdf_clone($0) }) }
    deinit { if let pointer { ldns_rdf_deep_free(pointer) } }
}

extension BinaryInteger {
    var toUInt16: UInt16 { UInt16(truncatingIfNeeded: self) }
}
