import CMaxMindDB
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a client is, as far as the GeoIP database says.
public struct GeoInfo: Sendable, Hashable, CustomStringConvertible {
    /// Continent code (`EU`, `NA`, ...), empty when unknown.
    public var continent: String
    /// ISO 3166-1 country code (`DE`), empty when unknown.
    public var country: String
    /// ISO 3166-2 subdivision code without the country (`CA` for US-CA), empty when unknown.
    public var subdivision: String
    public var latitude: Double?
    public var longitude: Double?

    public init(continent: String = "", country: String = "", subdivision: String = "", latitude: Double? = nil, longitude: Double? = nil) {
        self.continent = continent
        self.country = country
        self.subdivision = subdivision
        self.latitude = latitude
        self.longitude = longitude
    }

    public var description: String {
        var parts: [String] = []
        if !continent.isEmpty { parts.append("continent \(continent)") }
        if !country.isEmpty { parts.append("country \(country)") }
        if !subdivision.isEmpty { parts.append("subdivision \(country)-\(subdivision)") }
        if let la = latitude, let lo = longitude { parts.append("at \(la),\(lo)") }
        return parts.isEmpty ? "no location data" : parts.joined(separator: ", ")
    }
}

extension GeoDatabase {
    /// Copies a regular file of at most `maxSize` octets to a new temporary file; returns its
    /// path (the caller unlinks it once opened).
    static func privateCopy(of path: String) throws(GeoError) -> String {
        let input = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard input >= 0 else { throw .open(path: path, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw .open(path: path, reason: "not a regular file") }
        guard st.st_size <= maxSize else { throw .open(path: path, reason: "larger than \(maxSize) octets") }
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(dir)/meridian-geoip.XXXXXX".utf8CString)
        let output = template.withUnsafeMutableBufferPointer { b -> Int32 in
            guard let base = b.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard output >= 0 else { throw .open(path: path, reason: "cannot make a private copy: \(String(cString: strerror(errno)))") }
        defer { close(output) }
        let copyPath = template.withUnsafeBufferPointer { b in b.baseAddress.map { String(cString: $0) } ?? "" }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { b -> Int in
                guard let base = b.baseAddress else { return -1 }
                return read(input, base, b.count)
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                unlink(copyPath)
                throw .open(path: path, reason: "read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
            guard total <= maxSize else {
                unlink(copyPath)
                throw .open(path: path, reason: "grew past \(maxSize) octets while being copied")
            }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { b -> Int in
                    guard let base = b.baseAddress else { return -1 }
                    return write(output, base + done, n - done)
                }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else {
                    unlink(copyPath)
                    throw .open(path: path, reason: "cannot write the private copy: \(String(cString: strerror(errno)))")
                }
                done += w
            }
        }
        return copyPath
    }
}

/// Why a GeoIP database could not be used.
public enum GeoError: Error, Sendable, CustomStringConvertible {
    case open(path: String, reason: String)
    case read(path: String, node: UInt32, reason: String)

    public var description: String {
        switch self {
        case let .open(path, reason): return "\(path): cannot open GeoIP database: \(reason)"
        case let .read(path, node, reason): return "\(path): bad GeoIP database at node \(node): \(reason)"
        }
    }
}

/// A MaxMind DB (GeoIP2/GeoLite2 Country or City, or one built by `Tools/build-geodata.pl`)
/// read through libmaxminddb.
///
/// At open, every data record the search tree points to is decoded once into a `GeoInfo`
/// (walking the nodes with `MMDB_read_node`), so a query only walks the tree
/// (`MMDB_lookup_sockaddr`) and maps the record's offset to an index: no decoding, no strings.
public final class GeoDatabase: @unchecked Sendable {
    // @unchecked: the MMDB_s is only written by MMDB_open in init and freed in deinit;
    // libmaxminddb documents lookups on an opened database as safe from several threads.
    private let mmdb: UnsafeMutablePointer<MMDB_s>
    public let path: String
    /// Every distinct location in the database.
    public let infos: [GeoInfo]
    private let infoByOffset: [UInt32: Int32]
    private let ipv6: Bool

    /// The largest database opened.
    public static let maxSize = 1 << 30

    public init(path: String) throws(GeoError) {
        self.path = path
        // libmaxminddb maps the file it opens. Mapping the operator's file would let a `cp`
        // over it (truncate, then write) pull the pages from under the answer path: SIGBUS
        // (issue: hardening, finding 6). So it maps a private copy, unlinked at once, that no
        // one else can change.
        let copy = try Self.privateCopy(of: path)
        mmdb = .allocate(capacity: 1)
        let status = MMDB_open(copy, UInt32(MMDB_MODE_MMAP), mmdb)
        unlink(copy)
        guard status == MMDB_SUCCESS else {
            mmdb.deallocate()
            throw .open(path: path, reason: String(cString: MMDB_strerror(status)))
        }
        ipv6 = mmdb.pointee.metadata.ip_version == 6
        var infos: [GeoInfo] = []
        var byInfo: [GeoInfo: Int32] = [:]
        var byOffset: [UInt32: Int32] = [:]
        let nodeCount = mmdb.pointee.metadata.node_count
        var node = MMDB_search_node_s()
        for n in 0..<nodeCount {
            let rc = MMDB_read_node(mmdb, n, &node)
            guard rc == MMDB_SUCCESS else {
                MMDB_close(mmdb)
                mmdb.deallocate()
                throw .read(path: path, node: n, reason: String(cString: MMDB_strerror(rc)))
            }
            for (type, entry) in [(node.left_record_type, node.left_record_entry), (node.right_record_type, node.right_record_entry)]
            where type == UInt8(MMDB_RECORD_TYPE_DATA) && byOffset[entry.offset] == nil {
                let info = GeoDatabase.decode(entry)
                let index: Int32
                if let i = byInfo[info] {
                    index = i
                } else {
                    index = Int32(infos.count)
                    byInfo[info] = index
                    infos.append(info)
                }
                byOffset[entry.offset] = index
            }
        }
        self.infos = infos
        infoByOffset = byOffset
    }

    deinit {
        MMDB_close(mmdb)
        mmdb.deallocate()
    }

    /// The location of `address` and the prefix length of the database network holding it,
    /// or nil when the database has no data for it.
    public func lookup(_ address: IPAddress) -> (info: Int, prefix: Int)? {
        let r = match(address)
        return r.info >= 0 ? (r.info, r.prefix) : nil
    }

    /// The location index (-1 when the database has none) and the prefix length of the
    /// database network holding the address, which is also the ECS scope of a miss.
    public func match(_ address: IPAddress) -> (info: Int, prefix: Int) {
        var mmdbError: Int32 = 0
        var result: MMDB_lookup_result_s
        if address.family == .v4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            withUnsafeMutableBytes(of: &sa.sin_addr) { for i in 0..<4 { $0[i] = address.bytes[i] } }
            result = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(mmdb, $0, &mmdbError) }
            }
        } else {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            withUnsafeMutableBytes(of: &sa.sin6_addr) { for i in 0..<16 { $0[i] = address.bytes[i] } }
            result = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(mmdb, $0, &mmdbError) }
            }
        }
        guard mmdbError == MMDB_SUCCESS else { return (-1, 0) }
        var prefix = Int(result.netmask)
        // An IPv6 database reports IPv6 prefix lengths for IPv4 addresses too (libmaxminddb(3)).
        if ipv6 && address.family == .v4 { prefix = max(0, prefix - 96) }
        guard result.found_entry, let index = infoByOffset[result.entry.offset] else { return (-1, prefix) }
        return (Int(index), prefix)
    }

    static func decode(_ entry: MMDB_entry_s) -> GeoInfo {
        var e = entry
        func string(_ path: [String]) -> String {
            var data = MMDB_entry_data_s()
            let rc = withCStrings(path) { MMDB_aget_value(&e, &data, $0) }
            guard rc == MMDB_SUCCESS, data.has_data, data.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING) else { return "" }
            let bytes = UnsafeRawBufferPointer(start: data.utf8_string, count: Int(data.data_size))
            return String(decoding: bytes, as: UTF8.self)
        }
        func double(_ path: [String]) -> Double? {
            var data = MMDB_entry_data_s()
            let rc = withCStrings(path) { MMDB_aget_value(&e, &data, $0) }
            guard rc == MMDB_SUCCESS, data.has_data else { return nil }
            switch data.type {
            case UInt32(MMDB_DATA_TYPE_DOUBLE): return data.double_value
            case UInt32(MMDB_DATA_TYPE_FLOAT): return Double(data.float_value)
            default: return nil
            }
        }
        return GeoInfo(
            continent: string(["continent", "code"]), country: string(["country", "iso_code"]),
            subdivision: string(["subdivisions", "0", "iso_code"]),
            latitude: double(["location", "latitude"]), longitude: double(["location", "longitude"]))
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let c = strings.map { strdup($0) }
    defer { c.forEach { free($0) } }
    let ptrs = c.map { UnsafePointer($0) } + [nil]
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Great-circle distance in kilometres (haversine).
public func greatCircleKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
    let r = 6371.0
    let p1 = lat1 * .pi / 180, p2 = lat2 * .pi / 180
    let dp = (lat2 - lat1) * .pi / 180, dl = (lon2 - lon1) * .pi / 180
    let a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2)
    return 2 * r * atan2(a.squareRoot(), (1 - a).squareRoot())
}
