/// What a path names, following symbolic links (`stat`).
package enum FileKind: Equatable, Sendable {
    case regular
    case directory
    /// A FIFO, socket or device: reading one can block or never end.
    case special
    case missing

    package static func of(_ path: String) -> FileKind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        default: return .special
        }
    }
}
