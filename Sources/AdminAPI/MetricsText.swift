import Foundation

/// Prometheus text exposition, read back: series (name and labels) to value.
public enum MetricsText {
    public struct Series: Hashable, Sendable {
        public var name: String
        public var labels: [String: String]
    }

    public static func parse(_ data: Data) -> [Series: Double] {
        var out: [Series: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let head = line[..<space]
            var labels: [String: String] = [:]
            var name = String(head)
            if let open = head.firstIndex(of: "{"), head.hasSuffix("}") {
                name = String(head[..<open])
                let body = head[head.index(after: open)..<head.index(before: head.endIndex)]
                for pair in body.split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2 else { continue }
                    labels[String(kv[0])] = String(kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
                }
            }
            out[Series(name: name, labels: labels)] = value
        }
        return out
    }
}
