import ArgumentParser
import BoundedYAML
import Diagnostics
import Foundation
import Yams

/// `meridian serve --config FILE` (issue 19): every `serve` option in one YAML file, so a
/// unit's `ExecStart` is one short line. Keys are the options' long names without the dashes
/// (`rrl-rate: 50`; `rrl_rate` works too), flags are `true` or `false`, and repeatable options
/// (`listen`, `check-source`) take a list. An option given on the command line overrides the
/// file's. The names come from `Serve`'s own options, so the file can hold every option and
/// nothing else; an unknown key, a list for a single option or a mapping is a `file:line` error.
enum ServeConfigFile {
    /// Largest configuration file read.
    static let maxBytes = 1 << 20

    /// One option of `serve`: whether it takes a value, and whether it repeats.
    struct Option: Equatable {
        var takesValue: Bool
        var repeats: Bool
    }

    /// `serve`'s options by long name, read from its help (the one list of them), aliases
    /// included; `config` itself and `help` are not settable from the file.
    static let options: [String: Option] = {
        var out: [String: Option] = [:]
        let repeating = repeatableNames()
        for line in Serve.helpMessage(columns: 10_000).split(separator: "\n") {
            let text = line.drop(while: { $0 == " " })
            guard text.hasPrefix("--") else { continue }
            let head = text.range(of: "  ").map { text[..<$0.lowerBound] } ?? text
            let takesValue = head.contains("<")
            for part in head.split(separator: ",") {
                let name = part.trimmingPrefix(" ").split(separator: " ").first.map(String.init) ?? ""
                guard name.hasPrefix("--") else { continue }
                let option = String(name.dropFirst(2))
                guard option != "config", option != "help" else { continue }
                out[option] = Option(takesValue: takesValue, repeats: repeating.contains(option))
            }
        }
        return out
    }()

    /// The long names of `serve`'s array options, from the types of its properties.
    static func repeatableNames() -> Set<String> {
        var out = Set<String>()
        for child in Mirror(reflecting: Serve()).children {
            guard let label = child.label, "\(type(of: child.value))".contains("Array<") else { continue }
            out.insert(kebab(String(label.drop(while: { $0 == "_" }))))
        }
        return out
    }

    /// `checkSource` -> `check-source`, as ArgumentParser names long options.
    static func kebab(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase {
                out += "-" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// The command-line arguments the file stands for, leaving out every option that
    /// `given` (the command line) names itself.
    static func arguments(file: String, overriddenBy given: Set<String>) -> (args: [String], diagnostics: [Diagnostic]) {
        let text: String
        switch OperatorFile.read(file, maxBytes: maxBytes) {
        case .success(let t): text = t
        case .failure(let d): return ([], [d])
        }
        let root: Node?
        switch BoundedYAML.compose(text, file: file) {
        case .success(let node): root = node
        case .failure(let d): return ([], [d])
        }
        guard let root else { return ([], []) }
        guard let top = root.mapping else { return ([], [Diagnostic(file: file, line: 1, "the configuration must be a mapping of serve options")]) }
        var args: [String] = []
        var diags: [Diagnostic] = []
        var seen = Set<String>()
        for (k, v) in top {
            let line = k.mark?.line ?? 0
            let key = (k.scalar?.string ?? "").replacingOccurrences(of: "_", with: "-")
            guard let option = options[key] else {
                diags.append(Diagnostic(file: file, line: line, "unknown option '\(key.prefix(60))' (see `meridian serve --help`; keys are its long options without the dashes)"))
                continue
            }
            guard seen.insert(key).inserted else {
                diags.append(Diagnostic(file: file, line: line, "\(key) is given twice"))
                continue
            }
            if given.contains(key) { continue }
            switch value(v, option: option, key: key) {
            case .success(let values): args += values
            case .failure(let message): diags.append(Diagnostic(file: file, line: line, message.description))
            }
        }
        return (args, diags)
    }

    /// One key's arguments: `--key value`, `--key` for a true flag, nothing for a false one,
    /// `--key a --key b` for a list.
    static func value(_ v: Node, option: Option, key: String) -> Result<[String], ConfigValueError> {
        if !option.takesValue {
            guard let s = v.scalar?.string, let on = Bool(s.lowercased()) else { return .failure(ConfigValueError("\(key) is a flag: true or false")) }
            return .success(on ? ["--\(key)"] : [])
        }
        if let s = v.scalar?.string { return .success(["--\(key)", s]) }
        if let list = v.sequence {
            guard option.repeats else { return .failure(ConfigValueError("\(key) takes one value, not a list")) }
            var out: [String] = []
            for item in list {
                guard let s = item.scalar?.string else { return .failure(ConfigValueError("\(key): each item is one value")) }
                out += ["--\(key)", s]
            }
            return .success(out)
        }
        return .failure(ConfigValueError("\(key) takes a value, not a mapping"))
    }

    /// `serve ... --config FILE ...` with the file's options put before the command line's
    /// (which override them); other command lines as they are.
    static func expand(_ argv: [String]) throws -> [String] {
        guard argv.first == "serve" else { return argv }
        var rest: [String] = []
        var file: String?
        var i = 1
        while i < argv.count {
            if argv[i] == "--config", i + 1 < argv.count {
                file = argv[i + 1]
                i += 2
                continue
            }
            if argv[i].hasPrefix("--config=") { file = String(argv[i].dropFirst(9)) } else { rest.append(argv[i]) }
            i += 1
        }
        guard let file else { return argv }
        let given = Set(rest.filter { $0.hasPrefix("--") }.map { String($0.dropFirst(2).prefix(while: { $0 != "=" })) })
        let (args, diags) = arguments(file: file, overriddenBy: given)
        guard diags.isEmpty else { throw ValidationError(diags.map { $0.description }.joined(separator: "\n")) }
        return ["serve"] + args + rest
    }
}

/// Why a configuration value is not usable.
struct ConfigValueError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
