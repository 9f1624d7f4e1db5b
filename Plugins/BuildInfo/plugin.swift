import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` for the target it is applied to: the version (the `VERSION` file at
/// the package root) and the git commit the build is made from (`unknown` outside a checkout,
/// `-dirty` with uncommitted changes). A prebuild command, so it runs on every build; the file
/// is only replaced when its text changes, so nothing is recompiled for nothing.
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appending(path: "Generated")
        let root = context.package.directoryURL.path
        let script = """
            set -e
            mkdir -p "$2"
            v=$(cat "$1/VERSION" 2>/dev/null || echo 0.0.0)
            c=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            if [ "$c" != unknown ] && ! git -C "$1" diff --quiet HEAD -- Sources Package.swift 2>/dev/null; then c="$c-dirty"; fi
            printf '/// Made by the BuildInfo plugin.\\nenum BuildInfo {\\n    static let version = "%s"\\n    static let commit = "%s"\\n}\\n' "$v" "$c" > "$2/BuildInfo.swift.new"
            if cmp -s "$2/BuildInfo.swift.new" "$2/BuildInfo.swift"; then rm "$2/BuildInfo.swift.new"; else mv "$2/BuildInfo.swift.new" "$2/BuildInfo.swift"; fi
            """
        return [.prebuildCommand(
            displayName: "Build info for \(target.name)",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "sh", root, out.path],
            outputFilesDirectory: out)]
    }
}
