/// The one rule for where a command may write: never over one of its inputs, never inside an input
/// folder (a model package, a clip or frame folder), and never replace a folder that holds an
/// input. Paths are compared by device and inode after resolving symbolic links, so no spelling
/// (`./x`, `../dir/x`, a link) gets around it. Every command with an output checks it before
/// reading anything.
package enum OutputPath {
    /// Throws an `.invalidArgument` error naming `option` and the input when `output` would
    /// replace, or be written inside, one of `inputs`.
    package static func check(_ output: String, option: String, inputs: [String]) throws {
        let target = identity(output)
        // Where the output names (a link's target too): its folder and every folder above.
        let ancestors = folderChain(ofOutput: output) + (target != nil ? folderChain(of: output) : [])
        for input in inputs {
            guard let i = identity(input) else { continue }
            if let target, target == i {
                throw BLError(.invalidArgument, "\(option) names the input \(input); it would be overwritten", file: output)
            }
            if FileKind.of(input) == .directory, ancestors.contains(i) {
                throw BLError(.invalidArgument, "\(option) lies inside the input folder \(input); writing there could replace what is being read", file: output)
            }
            if target != nil, FileKind.of(output) == .directory, folderChain(of: input).contains(target!) {
                throw BLError(.invalidArgument, "\(option) is a folder that holds the input \(input); replacing it would delete the input", file: output)
            }
        }
    }

    struct Identity: Equatable { var device: UInt64; var inode: UInt64 }

    /// Device and inode of what `path` names (links followed), or nil when it does not exist.
    static func identity(_ path: String) -> Identity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The folders `output` would be written in: its parent and every folder above it, resolved.
    static func folderChain(ofOutput output: String) -> [Identity] {
        let slash = output.lastIndex(of: "/")
        let parent = slash.map { $0 == output.startIndex ? "/" : String(output[..<$0]) } ?? "."
        return folderChain(of: parent, including: true)
    }

    /// The folders above `path` (and `path` itself when `including`), symbolic links resolved.
    static func folderChain(of path: String, including: Bool = false) -> [Identity] {
        guard let resolved = realpath(path, nil) else { return [] }
        var p = String(cString: resolved)
        free(resolved)
        var out: [Identity] = []
        if !including {
            guard let slash = p.lastIndex(of: "/") else { return [] }
            p = slash == p.startIndex ? "/" : String(p[..<slash])
        }
        while true {
            if let id = identity(p) { out.append(id) }
            guard p != "/", let slash = p.lastIndex(of: "/") else { break }
            p = slash == p.startIndex ? "/" : String(p[..<slash])
        }
        return out
    }
}
