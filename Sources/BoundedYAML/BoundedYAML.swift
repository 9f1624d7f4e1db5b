import Diagnostics
import Yams

/// The one way operator YAML (pool files, the cluster file) is composed: bounded before and
/// after Yams sees it. Yams' composer is recursive, so a file nested a few thousand deep
/// overflows the stack of whatever thread reads it (a reload killed the server with SIGSEGV);
/// and aliases are expanded, so ten anchors of ten aliases each make 10^10 nodes for a walk
/// that follows them. Here the text is first scanned for how deep it could nest (without
/// composing, in constant stack), and the composed tree is then walked with a node budget.
public enum BoundedYAML {
    /// How far a file may go.
    public struct Limits: Sendable {
        /// The deepest nesting allowed, as `NestingScan` estimates it (it never under-counts).
        public var depth: Int
        /// The most nodes the composed tree may hold with every alias expanded.
        public var nodes: Int

        public init(depth: Int = 64, nodes: Int = 1_000_000) {
            self.depth = depth
            self.nodes = nodes
        }
    }

    /// The root node of `text` (nil for an empty document), or a `file:line` diagnostic: a YAML
    /// syntax error, nesting past `limits.depth`, or more than `limits.nodes` nodes.
    public static func compose(_ text: String, file: String, limits: Limits = Limits()) -> Result<Node?, Diagnostic> {
        if let deep = NestingScan.firstLine(deeperThan: limits.depth, in: text) {
            return .failure(Diagnostic(file: file, line: deep, "YAML nested more than \(limits.depth) deep"))
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            return .failure(Diagnostic(file: file, line: line(of: error), "YAML: \(problem(of: error))"))
        }
        if let root, let line = overBudget(root, limit: limits.nodes) {
            return .failure(Diagnostic(file: file, line: line, "YAML has more than \(limits.nodes) nodes once aliases are expanded"))
        }
        return .success(root)
    }

    /// The line where a walk of `root` (iterative, aliases already expanded) passes `limit`
    /// nodes; nil within it.
    static func overBudget(_ root: Node, limit: Int) -> Int? {
        var stack = [root]
        var count = 0
        while let n = stack.popLast() {
            count += 1
            if count > limit { return n.mark?.line ?? 1 }
            switch n {
            case .scalar: break
            case let .sequence(s): stack.append(contentsOf: s)
            case let .mapping(m):
                for (k, v) in m {
                    stack.append(k)
                    stack.append(v)
                }
            }
        }
        return nil
    }

    static func line(of error: any Error) -> Int {
        guard let e = error as? YamlError else { return 1 }
        switch e {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _), let .composer(_, _, mark, _): return mark.line
        default: return 1
        }
    }

    static func problem(of error: any Error) -> String {
        guard let e = error as? YamlError else { return "\(error)" }
        switch e {
        case let .scanner(_, problem, _, _), let .parser(_, problem, _, _), let .composer(_, problem, _, _): return problem
        default: return "\(e)"
        }
    }
}
