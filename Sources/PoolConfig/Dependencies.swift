import Diagnostics

/// `depends_on` (pool or site level): a member goes down with any member it depends on, as
/// F5's dependency lists and Route 53's calculated checks do (a site's uplink, a database
/// the application needs). Ids are `POOL/SITE/NAME` of any pool; the lists must name members
/// that exist and must not loop.
public enum Dependencies {
    /// Member id -> the ids it depends on (its pool's list, then its site's).
    public static func map(_ pools: [Pool]) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for p in pools {
            for m in p.members {
                let deps = p.dependsOn + p.sites[m.site].dependsOn
                if !deps.isEmpty { out[m.id] = deps }
            }
        }
        return out
    }

    /// Unknown ids, and loops (a member that depends on itself through any chain).
    static func validate(_ pools: [Pool], lines: [(String, Int, [String])]) -> [Diagnostic] {
        let ids = Set(pools.flatMap { $0.members.map(\.id) })
        var diags: [Diagnostic] = []
        for (file, line, list) in lines {
            for id in list where !ids.contains(id) {
                diags.append(Diagnostic(file: file, line: line, "depends_on: no member '\(id.prefix(200))' (member ids are POOL/SITE/NAME)"))
            }
        }
        guard diags.isEmpty else { return diags }
        let deps = map(pools)
        var state: [String: Bool] = [:]  // false: on the path; true: done
        func loop(from id: String, path: [String]) -> [String]? {
            if state[id] == true { return nil }
            if state[id] == false { return path + [id] }
            state[id] = false
            for d in deps[id] ?? [] { if let cycle = loop(from: d, path: path + [id]) { return cycle } }
            state[id] = true
            return nil
        }
        for id in deps.keys.sorted() {
            if let cycle = loop(from: id, path: []) {
                let (file, line, _) = lines.first { $0.2.contains(where: cycle.contains) } ?? ("", 0, [])
                diags.append(Diagnostic(file: file, line: line, "depends_on forms a loop: \(cycle.joined(separator: " -> "))"))
                break
            }
        }
        return diags
    }
}
